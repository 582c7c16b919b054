//! REST routing: an Access Analyzer request is named by its HTTP method and
//! path (the service is REST-JSON), e.g. `POST /policy/validation` is
//! ValidatePolicy and `GET /analyzer/{analyzerName}` GetAnalyzer. The table
//! holds every operation of the service model (accessanalyzer 2019-11-01),
//! served or not, so that an operation ferrokms does not serve yet is told
//! apart from a path that is no operation at all.

/// One operation of the service model: method, path template, name.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    /// The HTTP method.
    pub method: &'static str,
    /// The path template; `{name}` is one path segment.
    pub template: &'static str,
    /// The operation's name in the service model.
    pub name: &'static str,
}

const fn route(method: &'static str, template: &'static str, name: &'static str) -> Route {
    Route {
        method,
        template,
        name,
    }
}

/// Every operation of the service model, by name.
pub const MODEL_ROUTES: &[Route] = &[
    route("PUT", "/archive-rule", "ApplyArchiveRule"),
    route(
        "PUT",
        "/policy/generation/{jobId}",
        "CancelPolicyGeneration",
    ),
    route(
        "POST",
        "/policy/check-access-not-granted",
        "CheckAccessNotGranted",
    ),
    route("POST", "/policy/check-no-new-access", "CheckNoNewAccess"),
    route(
        "POST",
        "/policy/check-no-public-access",
        "CheckNoPublicAccess",
    ),
    route("PUT", "/access-preview", "CreateAccessPreview"),
    route("PUT", "/analyzer", "CreateAnalyzer"),
    route(
        "PUT",
        "/analyzer/{analyzerName}/archive-rule",
        "CreateArchiveRule",
    ),
    route(
        "PUT",
        "/service-linked-analyzer",
        "CreateServiceLinkedAnalyzer",
    ),
    route("DELETE", "/analyzer/{analyzerName}", "DeleteAnalyzer"),
    route(
        "DELETE",
        "/analyzer/{analyzerName}/archive-rule/{ruleName}",
        "DeleteArchiveRule",
    ),
    route(
        "DELETE",
        "/service-linked-analyzer/{analyzerName}",
        "DeleteServiceLinkedAnalyzer",
    ),
    route(
        "POST",
        "/recommendation/{id}",
        "GenerateFindingRecommendation",
    ),
    route(
        "GET",
        "/access-preview/{accessPreviewId}",
        "GetAccessPreview",
    ),
    route("GET", "/analyzed-resource", "GetAnalyzedResource"),
    route("GET", "/analyzer/{analyzerName}", "GetAnalyzer"),
    route(
        "GET",
        "/analyzer/{analyzerName}/archive-rule/{ruleName}",
        "GetArchiveRule",
    ),
    route("GET", "/finding/{id}", "GetFinding"),
    route("GET", "/recommendation/{id}", "GetFindingRecommendation"),
    route("GET", "/findingv2/{id}", "GetFindingV2"),
    route(
        "POST",
        "/analyzer/findings/statistics",
        "GetFindingsStatistics",
    ),
    route("GET", "/policy/generation/{jobId}", "GetGeneratedPolicy"),
    route(
        "POST",
        "/access-preview/{accessPreviewId}",
        "ListAccessPreviewFindings",
    ),
    route("GET", "/access-preview", "ListAccessPreviews"),
    route("POST", "/analyzed-resource", "ListAnalyzedResources"),
    route("GET", "/analyzer", "ListAnalyzers"),
    route(
        "GET",
        "/analyzer/{analyzerName}/archive-rule",
        "ListArchiveRules",
    ),
    route("POST", "/finding", "ListFindings"),
    route("POST", "/findingv2", "ListFindingsV2"),
    route("GET", "/policy/generation", "ListPolicyGenerations"),
    route("GET", "/tags/{resourceArn}", "ListTagsForResource"),
    route("PUT", "/policy/generation", "StartPolicyGeneration"),
    route("POST", "/resource/scan", "StartResourceScan"),
    route("POST", "/tags/{resourceArn}", "TagResource"),
    route("DELETE", "/tags/{resourceArn}", "UntagResource"),
    route("PUT", "/analyzer/{analyzerName}", "UpdateAnalyzer"),
    route(
        "PUT",
        "/analyzer/{analyzerName}/archive-rule/{ruleName}",
        "UpdateArchiveRule",
    ),
    route("PUT", "/finding", "UpdateFindings"),
    route("POST", "/policy/validation", "ValidatePolicy"),
];

/// A request's operation and the values of its path's labels, in template
/// order (percent-decoded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routed {
    /// The operation's name in the service model.
    pub name: &'static str,
    /// The labels' values (`{analyzerName}`, `{resourceArn}`...).
    pub labels: Vec<String>,
}

/// The operation a method and path name, if any. A path segment with a
/// literal in the template beats a label (`POST /analyzer/findings/statistics`
/// is GetFindingsStatistics, never a label match). A label's value is one
/// segment: a `/` inside it travels percent-encoded (`%2F`), as the SDKs
/// send an analyzer ARN in `/tags/{resourceArn}`.
pub fn route_of(method: &str, path: &str) -> Option<Routed> {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let mut best: Option<(usize, Routed)> = None;
    for r in MODEL_ROUTES.iter().filter(|r| r.method == method) {
        let parts: Vec<&str> = r.template.trim_start_matches('/').split('/').collect();
        if parts.len() != segments.len() {
            continue;
        }
        let mut literals = 0;
        let mut labels = Vec::new();
        let matched = parts.iter().zip(&segments).all(|(p, s)| {
            if p.starts_with('{') {
                match percent_decode(s) {
                    Some(v) if !v.is_empty() => {
                        labels.push(v);
                        true
                    }
                    _ => false,
                }
            } else {
                literals += 1;
                p == s
            }
        });
        if matched && best.as_ref().is_none_or(|(l, _)| literals > *l) {
            best = Some((
                literals,
                Routed {
                    name: r.name,
                    labels,
                },
            ));
        }
    }
    best.map(|(_, r)| r)
}

/// Whether a path is one of the service's (whatever the method): how the
/// server recognizes an unsigned Access Analyzer request.
pub fn is_service_path(path: &str) -> bool {
    let first = path.trim_start_matches('/').split('/').next().unwrap_or("");
    !first.is_empty()
        && MODEL_ROUTES
            .iter()
            .any(|r| r.template.trim_start_matches('/').split('/').next() == Some(first))
}

/// `%XX` decoding of one path segment; `None` when it is not valid UTF-8
/// or an escape is malformed.
pub fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_and_paths_name_their_operations() {
        let r = route_of("POST", "/policy/validation").unwrap();
        assert_eq!((r.name, r.labels.len()), ("ValidatePolicy", 0));
        assert_eq!(route_of("PUT", "/analyzer").unwrap().name, "CreateAnalyzer");
        assert_eq!(route_of("GET", "/analyzer").unwrap().name, "ListAnalyzers");
        let r = route_of("GET", "/analyzer/my-analyzer").unwrap();
        assert_eq!(
            (r.name, r.labels),
            ("GetAnalyzer", vec!["my-analyzer".to_string()])
        );
        assert_eq!(
            route_of("DELETE", "/analyzer/a").unwrap().name,
            "DeleteAnalyzer"
        );
        assert_eq!(
            route_of("POST", "/analyzer/findings/statistics")
                .unwrap()
                .name,
            "GetFindingsStatistics"
        );
        let r = route_of(
            "POST",
            "/tags/arn%3Aaws%3Aaccess-analyzer%3Aus-east-1%3A111122223333%3Aanalyzer%2Fa",
        )
        .unwrap();
        assert_eq!(r.name, "TagResource");
        assert_eq!(
            r.labels,
            ["arn:aws:access-analyzer:us-east-1:111122223333:analyzer/a"]
        );
        assert!(route_of("GET", "/policy/validation").is_none());
        assert!(route_of("POST", "/nothing").is_none());
        assert!(route_of("GET", "/analyzer/").is_none());
        assert!(route_of("GET", "/analyzer/%zz").is_none());
        assert!(is_service_path("/analyzer/x"));
        assert!(is_service_path("/policy/validation"));
        assert!(!is_service_path("/"));
        assert!(!is_service_path("/health"));
    }

    #[test]
    fn the_table_has_the_39_operations_of_the_model_once_each() {
        assert_eq!(MODEL_ROUTES.len(), 39);
        for (i, a) in MODEL_ROUTES.iter().enumerate() {
            for b in &MODEL_ROUTES[i + 1..] {
                assert!(a.name != b.name);
                assert!(!(a.method == b.method && a.template == b.template));
            }
        }
    }
}
