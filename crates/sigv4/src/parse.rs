use std::time::Duration;

use crate::canonical::{self, header, ALGORITHM, X_AMZ_SIGNATURE};
use crate::timestamp::SigningTime;
use crate::{HttpRequest, SigV4Error};

/// Longest validity AWS allows for a presigned URL (7 days).
pub const MAX_PRESIGNED_EXPIRES_SECS: u64 = 604_800;

/// Where the client put its signature; presigned requests follow slightly
/// different rules (`X-Amz-Expires` instead of the skew window).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureLocation {
    /// `Authorization: AWS4-HMAC-SHA256 Credential=...` (SDKs, the CLI).
    AuthorizationHeader,
    /// `X-Amz-Algorithm`, `X-Amz-Credential`, ... in the query string (a presigned URL).
    QueryString,
}

/// `YYYYMMDD/region/service/terminator` from the Credential. Stored unchecked:
/// whether a scope is acceptable is a verification decision, not a parse one.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CredentialScope {
    /// The scope's day, `YYYYMMDD`; it must match the day of the signing time.
    pub date: String,
    /// The region the client signed for, e.g. `us-east-1`.
    pub region: String,
    /// The service the client signed for, e.g. `kms`.
    pub service: String,
    /// The scope's last element; valid signatures carry `aws4_request`.
    pub terminator: String,
}

impl CredentialScope {
    /// The scope string as it appears in the string to sign.
    pub fn to_scope_string(&self) -> String {
        let parts = [&self.date, &self.region, &self.service, &self.terminator];
        let mut out = String::with_capacity(parts.iter().map(|p| p.len() + 1).sum());
        for (i, part) in parts.into_iter().enumerate() {
            if i > 0 {
                out.push('/');
            }
            out.push_str(part);
        }
        out
    }
}

/// Everything the server needs before it can look up the secret: who claims to
/// have signed, for which scope, when, and over what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedSignature {
    /// Where the signature was found, which decides the freshness rule.
    pub location: SignatureLocation,
    /// The access key id the client claims to sign with; the server looks its secret up by it.
    pub access_key_id: String,
    /// The credential scope (day, region, service) the signing key was derived for.
    pub scope: CredentialScope,
    /// The signing time the request claims (`X-Amz-Date` or `Date`).
    pub timestamp: SigningTime,
    /// Names exactly as the client listed them (normally lowercase, sorted).
    pub signed_headers: Vec<String>,
    /// The raw `SignedHeaders` value; it is part of the canonical request as sent.
    pub signed_headers_raw: String,
    /// Hex signature as sent by the client.
    pub signature: String,
    /// `X-Amz-Security-Token` header or query parameter, for temporary credentials.
    pub session_token: Option<String>,
    /// `X-Amz-Expires` of a presigned URL.
    pub expires: Option<Duration>,
}

fn incomplete(msg: impl Into<String>) -> SigV4Error {
    SigV4Error::IncompleteSignature(msg.into())
}

/// Finds and parses the signature; performs no cryptography and needs no secret.
pub fn parse(req: &HttpRequest<'_>) -> Result<ParsedSignature, SigV4Error> {
    if let Some(auth) = header(req, "authorization") {
        return parse_header(req, auth);
    }
    if has_presign_params(req.query) {
        return parse_query(req);
    }
    Err(SigV4Error::MissingAuthenticationToken)
}

/// Whether a query string carries a presigned URL's signature parameters
/// (`X-Amz-Algorithm`, `X-Amz-Credential` or `X-Amz-Signature`): with no
/// `Authorization` header either, [`parse`] finds no signature at all. The
/// server uses this to tell unsigned requests before reading their body.
pub fn has_presign_params(query: &str) -> bool {
    canonical::query_pairs(query).any(|(k, _)| {
        k == b"X-Amz-Algorithm" || k == b"X-Amz-Credential" || k == X_AMZ_SIGNATURE.as_bytes()
    })
}

/// The non-empty pieces of `s` between commas and ASCII whitespace. Splits
/// on bytes: every separator is ASCII, so each piece is still valid UTF-8,
/// and the header is not decoded char by char (a splitting closure on
/// `char`s did that; docs/performance.md).
fn auth_tokens(s: &str) -> impl Iterator<Item = &str> {
    let bytes = s.as_bytes();
    let mut start = 0;
    std::iter::from_fn(move || {
        while start < bytes.len() {
            let len = bytes[start..]
                .iter()
                .position(|&b| b == b',' || b.is_ascii_whitespace())
                .unwrap_or(bytes.len() - start);
            let token = s.get(start..start + len);
            start += len + 1;
            if len > 0 {
                return token;
            }
        }
        None
    })
}

fn parse_header(req: &HttpRequest<'_>, auth: &str) -> Result<ParsedSignature, SigV4Error> {
    let trimmed = auth.trim();
    let (algorithm, rest) = trimmed
        .split_once(|c: char| c.is_ascii_whitespace())
        .unwrap_or((trimmed, ""));

    // AWS tokenises on both commas and whitespace, which is why a stray space
    // inside the Credential shows up as a separate "missing equal-sign" token.
    let mut credential = None;
    let mut signed_headers = None;
    let mut signature = None;
    for token in auth_tokens(rest) {
        let Some((key, value)) = token
            .bytes()
            .position(|b| b == b'=')
            .and_then(|at| Some((token.get(..at)?, token.get(at + 1..)?)))
        else {
            return Err(incomplete(format!(
                "'{token}' not a valid key=value pair (missing equal-sign) in Authorization header: '{auth}'."
            )));
        };
        let slot = match key {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed_headers,
            "Signature" => &mut signature,
            _ => continue,
        };
        if slot.is_none() {
            *slot = Some(value);
        }
    }

    let date_raw = header(req, "x-amz-date");
    let http_date = header(req, "date");
    let mut missing = String::new();
    if credential.is_none() {
        missing.push_str("Authorization header requires 'Credential' parameter. ");
    }
    if signature.is_none() {
        missing.push_str("Authorization header requires 'Signature' parameter. ");
    }
    if signed_headers.is_none() {
        missing.push_str("Authorization header requires 'SignedHeaders' parameter. ");
    }
    if date_raw.is_none() && http_date.is_none() {
        missing.push_str(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. ",
        );
    }
    let (Some(credential), Some(signature), Some(signed_headers), false) =
        (credential, signature, signed_headers, !missing.is_empty())
    else {
        return Err(incomplete(format!("{missing}Authorization={auth}")));
    };

    if algorithm != ALGORITHM {
        return Err(incomplete(format!(
            "Unsupported AWS 'algorithm': '{algorithm}'."
        )));
    }

    let (access_key_id, scope) = parse_credential(credential)?;
    let timestamp = match (date_raw, http_date) {
        (Some(d), _) => SigningTime::parse_iso_basic(d.trim())?,
        (None, Some(d)) => SigningTime::parse_http_date(d)?,
        (None, None) => return Err(incomplete(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
        )),
    };
    let session_token = header(req, "x-amz-security-token")
        .map(str::to_owned)
        .or_else(|| query_param(req.query, "X-Amz-Security-Token"));

    Ok(ParsedSignature {
        location: SignatureLocation::AuthorizationHeader,
        access_key_id,
        scope,
        timestamp,
        signed_headers: split_signed_headers(signed_headers),
        signed_headers_raw: signed_headers.to_owned(),
        signature: signature.to_owned(),
        session_token,
        expires: None,
    })
}

fn parse_query(req: &HttpRequest<'_>) -> Result<ParsedSignature, SigV4Error> {
    let get = |name: &str| query_param(req.query, name);
    let algorithm = get("X-Amz-Algorithm");
    let credential = get("X-Amz-Credential");
    let signature = get(X_AMZ_SIGNATURE);
    let date = get("X-Amz-Date");
    let signed_headers = get("X-Amz-SignedHeaders");

    let mut missing = String::new();
    for (value, name) in [
        (&algorithm, "X-Amz-Algorithm"),
        (&credential, "X-Amz-Credential"),
        (&signature, "X-Amz-Signature"),
        (&date, "X-Amz-Date"),
        (&signed_headers, "X-Amz-SignedHeaders"),
    ] {
        if value.is_none() {
            missing.push_str(&format!(
                "AWS query-string parameters must include '{name}'. "
            ));
        }
    }
    let (Some(algorithm), Some(credential), Some(signature), Some(date), Some(signed_headers)) =
        (algorithm, credential, signature, date, signed_headers)
    else {
        return Err(incomplete(format!(
            "{missing}Re-examine the query-string parameters."
        )));
    };
    if algorithm != ALGORITHM {
        return Err(incomplete(format!(
            "X-Amz-Algorithm only supports '{ALGORITHM}'"
        )));
    }
    let expires = match get("X-Amz-Expires") {
        None => None,
        Some(raw) => {
            let secs: u64 = raw
                .parse()
                .map_err(|_| incomplete("X-Amz-Expires should be a number"))?;
            if secs > MAX_PRESIGNED_EXPIRES_SECS {
                return Err(incomplete(format!(
                    "X-Amz-Expires must be less than a week (in seconds) that is {MAX_PRESIGNED_EXPIRES_SECS}"
                )));
            }
            Some(Duration::from_secs(secs))
        }
    };
    let (access_key_id, scope) = parse_credential(&credential)?;
    let timestamp = SigningTime::parse_iso_basic(&date)?;
    let session_token = get("X-Amz-Security-Token")
        .or_else(|| header(req, "x-amz-security-token").map(str::to_owned));

    Ok(ParsedSignature {
        location: SignatureLocation::QueryString,
        access_key_id,
        scope,
        timestamp,
        signed_headers: split_signed_headers(&signed_headers),
        signed_headers_raw: signed_headers,
        signature,
        session_token,
        expires,
    })
}

/// First occurrence of a query parameter, decoded. Lossy UTF-8 is fine here:
/// a non-UTF-8 credential or signature can never verify anyway.
fn query_param(query: &str, name: &str) -> Option<String> {
    canonical::query_pairs(query)
        .find(|(k, _)| k.as_slice() == name.as_bytes())
        .map(|(_, v)| String::from_utf8_lossy(&v).into_owned())
}

fn split_signed_headers(raw: &str) -> Vec<String> {
    raw.split(';')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn parse_credential(credential: &str) -> Result<(String, CredentialScope), SigV4Error> {
    // Exactly five fields: the fifth may not hold another slash.
    let Some([akid, date, region, service, terminator]) =
        ferrokms_textfast::split_fields::<5>(credential, b'/')
            .filter(|f| !f[4].bytes().any(|b| b == b'/'))
    else {
        return Err(incomplete(format!(
            "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '{credential}'"
        )));
    };
    Ok((
        akid.to_owned(),
        CredentialScope {
            date: date.to_owned(),
            region: region.to_owned(),
            service: service.to_owned(),
            terminator: terminator.to_owned(),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorization_tokens_split_on_commas_and_whitespace_like_aws() {
        let cases = [
            "Credential=a/b, SignedHeaders=host;x-amz-date, Signature=ff",
            "Credential=a/b,SignedHeaders=h,Signature=s",
            " ,, Credential=\u{e9}/\u{fc} \t\r\nSignature=x ,",
            "",
            ",,, \t",
            "one",
        ];
        for case in cases {
            let want: Vec<&str> = case
                .split(|c: char| c == ',' || c.is_ascii_whitespace())
                .filter(|t| !t.is_empty())
                .collect();
            assert_eq!(auth_tokens(case).collect::<Vec<_>>(), want, "{case:?}");
        }
    }

    #[test]
    fn a_credential_has_exactly_five_slash_delimited_elements() {
        let (akid, scope) =
            parse_credential("AKIDEXAMPLE/20150830/us-east-1/kms/aws4_request").unwrap();
        assert_eq!(akid, "AKIDEXAMPLE");
        assert_eq!(
            [scope.date, scope.region, scope.service, scope.terminator],
            ["20150830", "us-east-1", "kms", "aws4_request"]
        );
        let (akid, scope) = parse_credential("\u{e9}////").unwrap();
        assert_eq!((akid.as_str(), scope.terminator.as_str()), ("\u{e9}", ""));
        for bad in ["", "a/b/c/d", "a/b/c/d/e/f", "a/b/c/d/e/", "/////"] {
            assert!(parse_credential(bad).is_err(), "{bad}");
        }
    }
}
