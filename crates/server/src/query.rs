//! The AWS query protocol shared by IAM and STS: form-encoded parameters in,
//! XML out, `ErrorResponse` documents for errors.

use std::collections::HashMap;
use std::fmt::Write;

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::auth::{AuthError, Identity};
use crate::pipeline::{Fault, Inbound, Operated, Placement, Protocol};
use crate::App;

/// Form parameters of one request (`Action`, `Version`, members...).
#[derive(Debug, Default)]
pub struct Params(HashMap<String, String>);

impl Params {
    /// Reads the parameters from the URL query and the form-encoded body.
    pub fn parse(query: &str, body: &[u8]) -> Params {
        let mut map = HashMap::new();
        for (k, v) in form_urlencoded::parse(query.as_bytes()).chain(form_urlencoded::parse(body)) {
            map.insert(k.into_owned(), v.into_owned());
        }
        Params(map)
    }

    /// The parameters as an audit record shows them (camelCase, without
    /// Action and Version), in name order.
    pub fn audit_json(&self) -> serde_json::Value {
        let mut names: Vec<&String> = self
            .0
            .keys()
            .filter(|k| *k != "Action" && *k != "Version")
            .collect();
        names.sort();
        let mut out = serde_json::Map::new();
        for k in names {
            let mut c = k.chars();
            let camel: String = match c.next() {
                Some(f) => f.to_lowercase().chain(c).collect(),
                None => continue,
            };
            out.insert(camel, serde_json::Value::String(self.0[k].clone()));
        }
        serde_json::Value::Object(out)
    }

    /// A member, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// A required member; missing -> AWS's ValidationError wording.
    pub fn required(&self, name: &str) -> Result<&str, QueryError> {
        self.get(name).ok_or_else(|| {
            let mut chars = name.chars();
            let camel: String = match chars.next() {
                Some(c) => c.to_lowercase().chain(chars).collect(),
                None => String::new(),
            };
            QueryError::new(
                "ValidationError",
                400,
                format!("1 validation error detected: Value null at '{camel}' failed to satisfy constraint: Member must not be null"),
            )
        })
    }

    /// An integer member; a value that is not one is AWS's ValidationError.
    pub fn u32(&self, name: &str) -> Result<Option<u32>, QueryError> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| {
                QueryError::new(
                    "ValidationError",
                    400,
                    format!("Invalid value '{v}' for {name}: expected an integer"),
                )
            }),
        }
    }

    /// A boolean member: `true` in any case is true, anything else (or absence) false.
    pub fn bool(&self, name: &str) -> bool {
        self.get(name)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }

    /// A list member: `Name.member.1`, `Name.member.2`, ...
    pub fn list(&self, name: &str) -> Vec<String> {
        (1..)
            .map_while(|i| self.get(&format!("{name}.member.{i}")).map(str::to_string))
            .collect()
    }

    /// A list of structures with one field: `Name.member.N.Field`.
    pub fn list_field(&self, name: &str, field: &str) -> Vec<String> {
        (1..)
            .map_while(|i| {
                self.get(&format!("{name}.member.{i}.{field}"))
                    .map(str::to_string)
            })
            .collect()
    }

    /// Key/Value structures: `Tags.member.N.Key` / `.Value`.
    pub fn tags(&self, name: &str) -> Vec<(String, String)> {
        (1..)
            .map_while(|i| {
                let k = self.get(&format!("{name}.member.{i}.Key"))?;
                let v = self.get(&format!("{name}.member.{i}.Value")).unwrap_or("");
                Some((k.to_string(), v.to_string()))
            })
            .collect()
    }
}

/// An error in the query protocol's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryError {
    /// The error code, e.g. `NoSuchEntity`.
    pub code: String,
    /// The HTTP status.
    pub status: u16,
    /// The message.
    pub message: String,
}

impl QueryError {
    /// An error with its code, status and message.
    pub fn new(code: &str, status: u16, message: impl Into<String>) -> Self {
        QueryError {
            code: code.to_string(),
            status,
            message: message.into(),
        }
    }

    /// The `<ErrorResponse>` document.
    pub fn to_xml(&self, namespace: &str, request_id: &str) -> String {
        let kind = if self.status >= 500 {
            "Receiver"
        } else {
            "Sender"
        };
        format!(
            "<ErrorResponse xmlns=\"{namespace}\">\n  <Error>\n    <Type>{kind}</Type>\n    <Code>{}</Code>\n    <Message>{}</Message>\n  </Error>\n  <RequestId>{}</RequestId>\n</ErrorResponse>\n",
            escape(&self.code),
            escape(&self.message),
            escape(request_id)
        )
    }
}

impl From<ferrokms_iam::IamError> for QueryError {
    fn from(e: ferrokms_iam::IamError) -> Self {
        let (code, status) = e.code_and_status();
        QueryError::new(code, status, e.to_string())
    }
}

/// Whether XML 1.0 allows `c` in a document at all (its `Char` production:
/// `#x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] | [#x10000-#x10FFFF]`;
/// a Rust `char` is never a surrogate). Not even a character reference may
/// name one of the others (`&#xB;` is as fatal to a parser as the byte).
pub fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// Text (or attribute value) for an XML 1.0 document: the five markup
/// characters escaped; a carriage return written `&#xD;` so that parsers do
/// not turn it into a line feed; every character XML 1.0 forbids (C0 controls
/// other than tab, LF and CR, U+FFFE, U+FFFF) written as U+FFFD, the
/// replacement character. Input validation keeps such characters out of
/// what IAM stores today, but older data and fields without a pattern (a
/// managed policy's description) may still hold them, and one bad character
/// must not make a whole ListUsers or GetAccountAuthorizationDetails response
/// unparseable for every SDK.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\r' => out.push_str("&#xD;"),
            c if is_xml_char(c) => out.push(c),
            _ => out.push(char::REPLACEMENT_CHARACTER),
        }
    }
    out
}

/// Policy documents travel URL-encoded inside IAM's XML (SDKs decode them).
pub fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 2);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// ISO 8601 UTC with seconds, as IAM and STS print dates.
pub fn iso8601(ms: i64) -> String {
    ferrokms_types::calendar::iso8601_seconds(ms)
}

/// A small XML builder for response documents.
#[derive(Default)]
pub struct Xml(String);

impl Xml {
    /// Writes `<tag>`.
    pub fn open(&mut self, tag: &str) -> &mut Self {
        let _ = write!(self.0, "<{tag}>");
        self
    }
    /// Writes `</tag>`.
    pub fn close(&mut self, tag: &str) -> &mut Self {
        let _ = write!(self.0, "</{tag}>");
        self
    }
    /// Writes `<tag>value</tag>`, escaping the value.
    pub fn leaf(&mut self, tag: &str, value: &str) -> &mut Self {
        let _ = write!(self.0, "<{tag}>{}</{tag}>", escape(value));
        self
    }
    /// The document.
    pub fn into_string(self) -> String {
        self.0
    }
}

/// Wraps a result body into `<ActionResponse><ActionResult>...`; actions
/// without output (DeleteUser, ...) have no Result element, as on AWS.
pub fn response(action: &str, namespace: &str, result: &str, request_id: &str) -> String {
    let result = if result.is_empty() {
        String::new()
    } else {
        format!("\n  <{action}Result>{result}</{action}Result>")
    };
    format!(
        "<{action}Response xmlns=\"{namespace}\">{result}\n  <ResponseMetadata>\n    <RequestId>{}</RequestId>\n  </ResponseMetadata>\n</{action}Response>\n",
        escape(request_id)
    )
}

/// An IAM or STS request in the pipeline (`crate::pipeline`): the form's
/// parameters and the service its credential scope (or, unsigned, the
/// default) points at.
pub(crate) struct QueryRequest {
    params: Params,
    action: String,
    /// The credential scope's service, read before authentication: it
    /// chooses the error document's namespace and the audit record's
    /// service for requests that are not authenticated.
    scoped: Option<String>,
    namespace: &'static str,
    /// The service the client signed for, once authenticated.
    service: String,
}

impl QueryRequest {
    pub fn new(req: &Inbound<'_>) -> Self {
        let params = Params::parse(req.uri.query().unwrap_or(""), &req.body);
        let scoped = req.with_sigv4(|r| ferrokms_sigv4::parse(r).ok().map(|p| p.scope.service));
        let namespace = match scoped.as_deref() {
            Some("sts") => crate::sts_api::STS_NAMESPACE,
            _ => crate::iam_api::IAM_NAMESPACE,
        };
        QueryRequest {
            action: params.get("Action").unwrap_or("").to_string(),
            params,
            service: scoped.clone().unwrap_or_else(|| "iam".into()),
            scoped,
            namespace,
        }
    }
}

impl From<QueryError> for Fault {
    fn from(e: QueryError) -> Self {
        Fault {
            code: e.code.into(),
            status: e.status,
            message: Some(e.message),
        }
    }
}

impl Protocol for QueryRequest {
    type Caller = ferrokms_iam::Caller;
    type Call = (String, String, Params);
    type Output = String;

    const SERVICES: &'static [&'static str] = &["iam", "sts"];

    fn service<'a>(&'a self, identity: Option<&'a Identity>) -> &'a str {
        match identity {
            Some(i) => &i.service,
            None => self.scoped.as_deref().unwrap_or("iam"),
        }
    }

    fn operation(&self) -> &str {
        &self.action
    }

    fn unavailable() -> Fault {
        QueryError::new(
            "ServiceUnavailable",
            503,
            "The service is unavailable: its storage cannot be reached. Retry the request.",
        )
        .into()
    }

    fn unauthenticated(&self, e: &AuthError) -> Fault {
        let (code, status) = e.query_code();
        QueryError::new(code, status, e.message()).into()
    }

    fn internal() -> Fault {
        QueryError::new(
            "ServiceFailure",
            500,
            "The request processing has failed because of an unknown error.",
        )
        .into()
    }

    /// The caller; a named action; and the rule for GetSessionToken's
    /// credentials: without MFA (never, here) they may not call IAM at all,
    /// and of STS only AssumeRole and GetCallerIdentity (GetSessionToken
    /// itself answers AWS's own refusal). AWS answers as if the token were
    /// not valid for them.
    fn admit(
        &mut self,
        app: &App,
        req: &Inbound<'_>,
        identity: &Identity,
    ) -> Result<ferrokms_iam::Caller, Fault> {
        self.service.clone_from(&identity.service);
        if self.params.get("Action").is_none() {
            return Err(QueryError::new("MissingAction", 400, "Missing Action").into());
        }
        let caller = crate::auth::iam_caller(&app.directory, &app.profiles, identity, req.origin);
        if caller.is_temporary()
            && !matches!(
                caller.principal,
                ferrokms_iam::Principal::AssumedRole { .. }
            )
            && (identity.service == "iam"
                || !matches!(
                    self.action.as_str(),
                    "AssumeRole" | "GetCallerIdentity" | "GetSessionToken"
                ))
        {
            return Err(QueryError::new(
                "InvalidClientTokenId",
                403,
                "The security token included in the request is invalid",
            )
            .into());
        }
        Ok(caller)
    }

    fn audit_parameters(&self, memo: Option<&mut crate::audit::ParamsMemo>) -> Vec<u8> {
        crate::audit::request_parameters_json(&self.params.audit_json(), memo)
    }

    fn event_id(&self) -> Option<[u8; 36]> {
        None
    }

    /// IAM and STS read and write the store: always off the async workers,
    /// and writes under the cluster write lock on several nodes.
    fn placement(&self, app: &App) -> Placement {
        if app.cluster.is_some()
            && !crate::cluster::query_action_reads_only(&self.service, &self.action)
        {
            Placement::Locked
        } else {
            Placement::Blocking
        }
    }

    fn call(&mut self) -> Self::Call {
        (
            self.service.clone(),
            self.action.clone(),
            std::mem::take(&mut self.params),
        )
    }

    fn operate(
        app: &App,
        (service, action, params): Self::Call,
        caller: ferrokms_iam::Caller,
    ) -> Operated<String> {
        let dispatch = if service == "sts" {
            crate::sts_api::dispatch
        } else {
            crate::iam_api::dispatch
        };
        let result = dispatch(&app.directory, &caller, &action, &params);
        Operated {
            result: result.map_err(Fault::from),
            trace: caller.authz.into_trace(),
        }
    }

    /// IAM and STS records carry no response elements.
    fn response_elements(&self, _: &String) -> Vec<u8> {
        Vec::new()
    }

    fn respond(&self, body: String, request_id: &str) -> Response {
        xml_response(
            200,
            response(&self.action, self.namespace, &body, request_id),
        )
    }

    fn respond_error(&self, fault: &Fault, request_id: &str) -> Response {
        // The KMS protocol's codes travel in a header; these only in the XML.
        crate::metrics::record_error(
            crate::metrics::Labels::new(
                if self.namespace == crate::sts_api::STS_NAMESPACE {
                    "sts"
                } else {
                    "iam"
                },
                "",
            ),
            &fault.code,
        );
        let e = QueryError::new(
            &fault.code,
            fault.status,
            fault.message.clone().unwrap_or_default(),
        );
        xml_response(fault.status, e.to_xml(self.namespace, request_id))
    }
}

pub(crate) fn xml_response(status: u16, body: String) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    let mut resp = (status, body).into_response();
    resp.headers_mut().insert(
        crate::hdr::CONTENT_TYPE,
        HeaderValue::from_static("text/xml"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso8601_matches_known_instants() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso8601(951_782_400_000), "2000-02-29T00:00:00Z");
        assert_eq!(iso8601(1_795_478_575_729), "2026-11-24T00:02:55Z");
    }

    #[test]
    fn list_members_follow_the_query_protocol_numbering() {
        let p = Params::parse("", b"Action=AssumeRole&PolicyArns.member.1.arn=a&PolicyArns.member.2.arn=b&Tags.member.1.Key=k&Tags.member.1.Value=v");
        assert_eq!(p.list_field("PolicyArns", "arn"), ["a", "b"]);
        assert_eq!(p.tags("Tags"), [("k".to_string(), "v".to_string())]);
    }

    #[test]
    fn actions_without_output_have_no_result_element() {
        let r = response("DeleteUser", "ns", "", "id-1");
        assert!(!r.contains("DeleteUserResult"));
        assert!(r.contains("<RequestId>id-1</RequestId>"));
        let r = response("GetUser", "ns", "<User/>", "id-2");
        assert!(r.contains("<GetUserResult><User/></GetUserResult>"));
    }

    /// XML 1.0's Char production: only #x9 | #xA | #xD | [#x20-#xD7FF] |
    /// [#xE000-#xFFFD] | [#x10000-#x10FFFF] may appear, escaped or not.
    #[test]
    fn xml_writer_never_emits_characters_outside_xml_1_0() {
        for c in [
            '\u{0}', '\u{1}', '\u{8}', '\u{b}', '\u{c}', '\u{1f}', '\u{fffe}', '\u{ffff}',
        ] {
            let text = format!("a{c}b");
            let mut x = Xml::default();
            x.open("Tags").leaf("Value", &text).close("Tags");
            let doc = x.into_string();
            assert_eq!(doc, "<Tags><Value>a\u{fffd}b</Value></Tags>", "{c:?}");
            assert!(doc.chars().all(is_xml_char));
            let err = QueryError::new("ValidationError", 400, text).to_xml("ns", "id");
            assert!(err.chars().all(is_xml_char), "{err:?}");
        }
        // Allowed characters pass through (CR as a reference, so it survives
        // end-of-line normalisation).
        let kept = "tab\there\nnl \u{7f}\u{85}\u{d7ff}\u{e000}\u{fffd}\u{10000}\u{10ffff}";
        assert_eq!(escape(kept), kept);
        assert_eq!(escape("a\r\nb"), "a&#xD;\nb");
        for c in (0u32..=0x10_ffff).filter_map(char::from_u32) {
            assert!(escape(&c.to_string()).chars().all(is_xml_char), "{c:?}");
        }
    }

    #[test]
    fn xml_text_is_escaped_and_policies_url_encoded() {
        assert_eq!(escape("a<b&\"c\""), "a&lt;b&amp;&quot;c&quot;");
        assert_eq!(url_encode("{\"A\": 1}"), "%7B%22A%22%3A%201%7D");
    }
}
