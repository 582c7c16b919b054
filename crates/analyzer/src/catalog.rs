//! The IAM Access Analyzer operation catalog: for each operation ferrokms
//! serves, the action it is authorized by, what it acts on, the condition
//! keys it sets and whether it changes state. Every operation acts in the
//! caller's account only (analyzers have no resource policy), so none may
//! cross accounts. The server's pipeline reads this table (which
//! operations exist, which need the cluster write lock); `routes.rs` maps
//! the REST method and path of every operation of the service model to its
//! name, and the tests check both against each other.

use ferrokms_authz::catalog::{Operation, Resource, Service};

const fn aa(name: &'static str, action: &'static str) -> Operation {
    Operation::new(Service::AccessAnalyzer, name, action)
}

/// An analyzer's own keys: its tags.
const RESOURCE_TAG: &[&str] = &["aws:ResourceTag/"];
/// A request that sets tags.
const REQUEST_TAG: &[&str] = &["aws:RequestTag/", "aws:TagKeys"];
/// TagResource: the tags set and the analyzer's own.
const TAG: &[&str] = &["aws:RequestTag/", "aws:TagKeys", "aws:ResourceTag/"];
/// UntagResource: the keys removed and the analyzer's tags.
const UNTAG: &[&str] = &["aws:TagKeys", "aws:ResourceTag/"];

/// Every Access Analyzer operation ferrokms serves, sorted by name.
pub const ANALYZER_OPERATIONS: &[Operation] = &[
    aa(
        "CheckAccessNotGranted",
        "access-analyzer:CheckAccessNotGranted",
    )
    .reads_only(),
    aa("CheckNoNewAccess", "access-analyzer:CheckNoNewAccess").reads_only(),
    aa("CheckNoPublicAccess", "access-analyzer:CheckNoPublicAccess").reads_only(),
    aa("CreateAccessPreview", "access-analyzer:CreateAccessPreview")
        .on(Resource::Analyzer)
        .keys(RESOURCE_TAG),
    aa("CreateAnalyzer", "access-analyzer:CreateAnalyzer")
        .on(Resource::Analyzer)
        .keys(REQUEST_TAG),
    aa("DeleteAnalyzer", "access-analyzer:DeleteAnalyzer")
        .on(Resource::Analyzer)
        .keys(RESOURCE_TAG),
    aa("GetAccessPreview", "access-analyzer:GetAccessPreview")
        .on(Resource::Analyzer)
        .keys(RESOURCE_TAG)
        .reads_only(),
    aa("GetAnalyzer", "access-analyzer:GetAnalyzer")
        .on(Resource::Analyzer)
        .keys(RESOURCE_TAG)
        .reads_only(),
    // The findings operations bring the analyzer's findings current before
    // they answer (crate::account), which writes: not `reads_only`.
    aa("GetFinding", "access-analyzer:GetFinding")
        .on(Resource::Analyzer)
        .keys(RESOURCE_TAG),
    aa("GetFindingV2", "access-analyzer:GetFindingV2")
        .on(Resource::Analyzer)
        .keys(RESOURCE_TAG),
    aa(
        "GetFindingsStatistics",
        "access-analyzer:GetFindingsStatistics",
    )
    .on(Resource::Analyzer)
    .keys(RESOURCE_TAG),
    aa(
        "ListAccessPreviewFindings",
        "access-analyzer:ListAccessPreviewFindings",
    )
    .on(Resource::Analyzer)
    .keys(RESOURCE_TAG)
    .reads_only(),
    aa("ListAccessPreviews", "access-analyzer:ListAccessPreviews")
        .on(Resource::Analyzer)
        .keys(RESOURCE_TAG)
        .reads_only(),
    aa("ListAnalyzers", "access-analyzer:ListAnalyzers").reads_only(),
    aa("ListFindings", "access-analyzer:ListFindings")
        .on(Resource::Analyzer)
        .keys(RESOURCE_TAG),
    aa("ListFindingsV2", "access-analyzer:ListFindingsV2")
        .on(Resource::Analyzer)
        .keys(RESOURCE_TAG),
    aa("ListTagsForResource", "access-analyzer:ListTagsForResource")
        .on(Resource::Analyzer)
        .keys(RESOURCE_TAG)
        .reads_only(),
    aa("TagResource", "access-analyzer:TagResource")
        .on(Resource::Analyzer)
        .keys(TAG),
    aa("UntagResource", "access-analyzer:UntagResource")
        .on(Resource::Analyzer)
        .keys(UNTAG),
    aa("UpdateFindings", "access-analyzer:UpdateFindings")
        .on(Resource::Analyzer)
        .keys(RESOURCE_TAG),
    aa("ValidatePolicy", "access-analyzer:ValidatePolicy").reads_only(),
];

/// Operations that write but run their slow part (an analysis by reach)
/// outside any lock and take the cluster write lock themselves only for
/// their store update (`Analyzers::exclusive`): the server must not run
/// them under the cluster lock as a whole, or one account's analysis would
/// hold up every node's writes.
pub const TAKES_OWN_LOCK: &[&str] = &[
    "CreateAccessPreview",
    "GetFinding",
    "GetFindingV2",
    "GetFindingsStatistics",
    "ListFindings",
    "ListFindingsV2",
    "UpdateFindings",
];

/// The catalog row of an operation ferrokms serves.
pub fn find(name: &str) -> Option<&'static Operation> {
    ferrokms_authz::catalog::find(ANALYZER_OPERATIONS, name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_is_sorted_and_every_row_is_same_account_access_analyzer() {
        assert!(ANALYZER_OPERATIONS
            .windows(2)
            .all(|w| w[0].name < w[1].name));
        for op in ANALYZER_OPERATIONS {
            assert_eq!(op.service, Service::AccessAnalyzer);
            assert_eq!(op.action, format!("access-analyzer:{}", op.name));
            assert!(!op.cross_account, "{}", op.name);
            assert!(!op.grant_operation && !op.counts_for_last_usage);
        }
    }

    #[test]
    fn every_served_operation_has_a_route_of_the_service_model() {
        for op in ANALYZER_OPERATIONS {
            assert!(
                crate::routes::MODEL_ROUTES
                    .iter()
                    .any(|r| r.name == op.name),
                "{} has no route",
                op.name
            );
        }
        assert_eq!(find("ValidatePolicy").map(|o| o.reads_only), Some(true));
        assert!(find("ListFindings").is_some_and(|o| !o.reads_only));
        assert!(find("StartPolicyGeneration").is_none());
        for name in TAKES_OWN_LOCK {
            assert!(find(name).is_some_and(|o| !o.reads_only), "{name}");
        }
    }
}
