//! The IAM and STS operation catalogs: for each operation ferrokms serves,
//! the action it is authorized by, what it acts on, the condition keys it
//! sets itself, and whether it changes state. Every IAM operation acts in
//! the caller's account only (no IAM resource has a resource policy); STS's
//! AssumeRole reaches another account's role through the role's trust
//! policy. The server's pipeline reads this table (which operations exist,
//! which need the cluster write lock); tests check it against the service
//! models' operation lists and against what each operation really sets.

use ferrokms_authz::catalog::{Operation, Resource, Service};

const fn iam(name: &'static str, action: &'static str) -> Operation {
    Operation::new(Service::Iam, name, action)
}

const fn sts(name: &'static str, action: &'static str) -> Operation {
    Operation::new(Service::Sts, name, action)
}

/// The keys a user or role adds to questions about itself.
const ENTITY: &[&str] = &[
    "aws:ResourceTag/",
    "iam:ResourceTag/",
    "iam:PermissionsBoundary",
];
const CREATE: &[&str] = &["aws:RequestTag/", "aws:TagKeys", "iam:PermissionsBoundary"];
const TAG: &[&str] = &[
    "aws:RequestTag/",
    "aws:TagKeys",
    "aws:ResourceTag/",
    "iam:ResourceTag/",
    "iam:PermissionsBoundary",
];
const UNTAG: &[&str] = &[
    "aws:TagKeys",
    "aws:ResourceTag/",
    "iam:ResourceTag/",
    "iam:PermissionsBoundary",
];
const ATTACH: &[&str] = &[
    "iam:PolicyARN",
    "aws:ResourceTag/",
    "iam:ResourceTag/",
    "iam:PermissionsBoundary",
];
const GROUP_ATTACH: &[&str] = &["iam:PolicyARN"];
/// Policies and instance profiles: their tags are `aws:ResourceTag/*` only.
const RESOURCE_TAG: &[&str] = &["aws:ResourceTag/"];
const REQUEST_TAG: &[&str] = &["aws:RequestTag/", "aws:TagKeys"];
const TAG_OTHER: &[&str] = &["aws:RequestTag/", "aws:TagKeys", "aws:ResourceTag/"];
const UNTAG_OTHER: &[&str] = &["aws:TagKeys", "aws:ResourceTag/"];

/// Every IAM operation ferrokms serves, sorted by name.
pub const IAM_OPERATIONS: &[Operation] = &[
    // Also needs iam:PassRole on the role, as on AWS.
    iam("AddRoleToInstanceProfile", "iam:AddRoleToInstanceProfile")
        .also(&["iam:PassRole"])
        .on(Resource::InstanceProfile)
        .keys(RESOURCE_TAG),
    iam("AddUserToGroup", "iam:AddUserToGroup").on(Resource::Group),
    iam("AttachGroupPolicy", "iam:AttachGroupPolicy")
        .on(Resource::Group)
        .keys(GROUP_ATTACH),
    iam("AttachRolePolicy", "iam:AttachRolePolicy")
        .on(Resource::Role)
        .keys(ATTACH),
    iam("AttachUserPolicy", "iam:AttachUserPolicy")
        .on(Resource::User)
        .keys(ATTACH),
    iam("CreateAccessKey", "iam:CreateAccessKey")
        .on(Resource::User)
        .keys(ENTITY),
    iam("CreateGroup", "iam:CreateGroup").on(Resource::Group),
    iam("CreateInstanceProfile", "iam:CreateInstanceProfile")
        .on(Resource::InstanceProfile)
        .keys(REQUEST_TAG),
    iam("CreatePolicy", "iam:CreatePolicy")
        .on(Resource::Policy)
        .keys(REQUEST_TAG),
    iam("CreatePolicyVersion", "iam:CreatePolicyVersion").on(Resource::Policy),
    iam("CreateRole", "iam:CreateRole")
        .on(Resource::Role)
        .keys(CREATE),
    iam("CreateUser", "iam:CreateUser")
        .on(Resource::User)
        .keys(CREATE),
    iam("DeleteAccessKey", "iam:DeleteAccessKey")
        .on(Resource::User)
        .keys(ENTITY),
    iam("DeleteGroup", "iam:DeleteGroup").on(Resource::Group),
    iam("DeleteGroupPolicy", "iam:DeleteGroupPolicy").on(Resource::Group),
    iam("DeleteInstanceProfile", "iam:DeleteInstanceProfile")
        .on(Resource::InstanceProfile)
        .keys(RESOURCE_TAG),
    iam("DeletePolicy", "iam:DeletePolicy").on(Resource::Policy),
    iam("DeletePolicyVersion", "iam:DeletePolicyVersion").on(Resource::Policy),
    iam("DeleteRole", "iam:DeleteRole")
        .on(Resource::Role)
        .keys(ENTITY),
    iam(
        "DeleteRolePermissionsBoundary",
        "iam:DeleteRolePermissionsBoundary",
    )
    .on(Resource::Role)
    .keys(ENTITY),
    iam("DeleteRolePolicy", "iam:DeleteRolePolicy")
        .on(Resource::Role)
        .keys(ENTITY),
    iam("DeleteUser", "iam:DeleteUser")
        .on(Resource::User)
        .keys(ENTITY),
    iam(
        "DeleteUserPermissionsBoundary",
        "iam:DeleteUserPermissionsBoundary",
    )
    .on(Resource::User)
    .keys(ENTITY),
    iam("DeleteUserPolicy", "iam:DeleteUserPolicy")
        .on(Resource::User)
        .keys(ENTITY),
    iam("DetachGroupPolicy", "iam:DetachGroupPolicy")
        .on(Resource::Group)
        .keys(GROUP_ATTACH),
    iam("DetachRolePolicy", "iam:DetachRolePolicy")
        .on(Resource::Role)
        .keys(ATTACH),
    iam("DetachUserPolicy", "iam:DetachUserPolicy")
        .on(Resource::User)
        .keys(ATTACH),
    iam(
        "GetAccountAuthorizationDetails",
        "iam:GetAccountAuthorizationDetails",
    )
    .reads_only(),
    iam(
        "GetContextKeysForCustomPolicy",
        "iam:GetContextKeysForCustomPolicy",
    )
    .reads_only(),
    iam(
        "GetContextKeysForPrincipalPolicy",
        "iam:GetContextKeysForPrincipalPolicy",
    )
    .reads_only(),
    iam("GetGroup", "iam:GetGroup")
        .on(Resource::Group)
        .reads_only(),
    iam("GetGroupPolicy", "iam:GetGroupPolicy")
        .on(Resource::Group)
        .reads_only(),
    iam("GetInstanceProfile", "iam:GetInstanceProfile")
        .on(Resource::InstanceProfile)
        .keys(RESOURCE_TAG)
        .reads_only(),
    iam("GetPolicy", "iam:GetPolicy")
        .on(Resource::Policy)
        .reads_only(),
    iam("GetPolicyVersion", "iam:GetPolicyVersion")
        .on(Resource::Policy)
        .reads_only(),
    iam("GetRole", "iam:GetRole")
        .on(Resource::Role)
        .keys(ENTITY)
        .reads_only(),
    iam("GetRolePolicy", "iam:GetRolePolicy")
        .on(Resource::Role)
        .keys(ENTITY)
        .reads_only(),
    iam("GetUser", "iam:GetUser")
        .on(Resource::User)
        .keys(ENTITY)
        .reads_only(),
    iam("GetUserPolicy", "iam:GetUserPolicy")
        .on(Resource::User)
        .keys(ENTITY)
        .reads_only(),
    iam("ListAccessKeys", "iam:ListAccessKeys")
        .on(Resource::User)
        .keys(ENTITY)
        .reads_only(),
    iam("ListAttachedGroupPolicies", "iam:ListAttachedGroupPolicies")
        .on(Resource::Group)
        .reads_only(),
    iam("ListAttachedRolePolicies", "iam:ListAttachedRolePolicies")
        .on(Resource::Role)
        .keys(ENTITY)
        .reads_only(),
    iam("ListAttachedUserPolicies", "iam:ListAttachedUserPolicies")
        .on(Resource::User)
        .keys(ENTITY)
        .reads_only(),
    iam("ListEntitiesForPolicy", "iam:ListEntitiesForPolicy")
        .on(Resource::Policy)
        .reads_only(),
    iam("ListGroupPolicies", "iam:ListGroupPolicies")
        .on(Resource::Group)
        .reads_only(),
    iam("ListGroups", "iam:ListGroups")
        .on(Resource::AccountEntities)
        .reads_only(),
    iam("ListGroupsForUser", "iam:ListGroupsForUser")
        .on(Resource::User)
        .keys(ENTITY)
        .reads_only(),
    iam("ListInstanceProfileTags", "iam:ListInstanceProfileTags")
        .on(Resource::InstanceProfile)
        .keys(RESOURCE_TAG)
        .reads_only(),
    iam("ListInstanceProfiles", "iam:ListInstanceProfiles")
        .on(Resource::AccountEntities)
        .reads_only(),
    iam(
        "ListInstanceProfilesForRole",
        "iam:ListInstanceProfilesForRole",
    )
    .on(Resource::Role)
    .keys(ENTITY)
    .reads_only(),
    iam("ListPolicies", "iam:ListPolicies")
        .on(Resource::AccountEntities)
        .reads_only(),
    iam("ListPolicyTags", "iam:ListPolicyTags")
        .on(Resource::Policy)
        .keys(RESOURCE_TAG)
        .reads_only(),
    iam("ListPolicyVersions", "iam:ListPolicyVersions")
        .on(Resource::Policy)
        .reads_only(),
    iam("ListRolePolicies", "iam:ListRolePolicies")
        .on(Resource::Role)
        .keys(ENTITY)
        .reads_only(),
    iam("ListRoleTags", "iam:ListRoleTags")
        .on(Resource::Role)
        .keys(ENTITY)
        .reads_only(),
    iam("ListRoles", "iam:ListRoles")
        .on(Resource::AccountEntities)
        .reads_only(),
    iam("ListUserPolicies", "iam:ListUserPolicies")
        .on(Resource::User)
        .keys(ENTITY)
        .reads_only(),
    iam("ListUserTags", "iam:ListUserTags")
        .on(Resource::User)
        .keys(ENTITY)
        .reads_only(),
    iam("ListUsers", "iam:ListUsers")
        .on(Resource::AccountEntities)
        .reads_only(),
    iam("PutGroupPolicy", "iam:PutGroupPolicy").on(Resource::Group),
    iam(
        "PutRolePermissionsBoundary",
        "iam:PutRolePermissionsBoundary",
    )
    .on(Resource::Role)
    .keys(ENTITY),
    iam("PutRolePolicy", "iam:PutRolePolicy")
        .on(Resource::Role)
        .keys(ENTITY),
    iam(
        "PutUserPermissionsBoundary",
        "iam:PutUserPermissionsBoundary",
    )
    .on(Resource::User)
    .keys(ENTITY),
    iam("PutUserPolicy", "iam:PutUserPolicy")
        .on(Resource::User)
        .keys(ENTITY),
    iam(
        "RemoveRoleFromInstanceProfile",
        "iam:RemoveRoleFromInstanceProfile",
    )
    .on(Resource::InstanceProfile)
    .keys(RESOURCE_TAG),
    iam("RemoveUserFromGroup", "iam:RemoveUserFromGroup").on(Resource::Group),
    iam("SetDefaultPolicyVersion", "iam:SetDefaultPolicyVersion").on(Resource::Policy),
    iam("SimulateCustomPolicy", "iam:SimulateCustomPolicy").reads_only(),
    iam("SimulatePrincipalPolicy", "iam:SimulatePrincipalPolicy")
        .on(Resource::User)
        .reads_only(),
    iam("TagInstanceProfile", "iam:TagInstanceProfile")
        .on(Resource::InstanceProfile)
        .keys(TAG_OTHER),
    iam("TagPolicy", "iam:TagPolicy")
        .on(Resource::Policy)
        .keys(TAG_OTHER),
    iam("TagRole", "iam:TagRole").on(Resource::Role).keys(TAG),
    iam("TagUser", "iam:TagUser").on(Resource::User).keys(TAG),
    iam("UntagInstanceProfile", "iam:UntagInstanceProfile")
        .on(Resource::InstanceProfile)
        .keys(UNTAG_OTHER),
    iam("UntagPolicy", "iam:UntagPolicy")
        .on(Resource::Policy)
        .keys(UNTAG_OTHER),
    iam("UntagRole", "iam:UntagRole")
        .on(Resource::Role)
        .keys(UNTAG),
    iam("UntagUser", "iam:UntagUser")
        .on(Resource::User)
        .keys(UNTAG),
    iam("UpdateAccessKey", "iam:UpdateAccessKey")
        .on(Resource::User)
        .keys(ENTITY),
    iam("UpdateAssumeRolePolicy", "iam:UpdateAssumeRolePolicy")
        .on(Resource::Role)
        .keys(ENTITY),
    iam("UpdateUser", "iam:UpdateUser")
        .on(Resource::User)
        .keys(ENTITY),
];

/// Every STS operation ferrokms serves, sorted by name.
pub const STS_OPERATIONS: &[Operation] = &[
    // The role's trust policy decides, across accounts too; tags and a
    // source identity need their own actions.
    sts("AssumeRole", "sts:AssumeRole")
        .also(&["sts:TagSession", "sts:SetSourceIdentity"])
        .on(Resource::Role)
        .cross_account()
        .keys(&[
            "sts:ExternalId",
            "sts:RoleSessionName",
            "sts:SourceIdentity",
            "sts:TransitiveTagKeys",
            "aws:RequestTag/",
            "aws:TagKeys",
            "aws:ResourceTag/",
        ]),
    // Needs no permission and no policy can refuse it (AWS: "You cannot use
    // policies to control authentication operations").
    sts("GetCallerIdentity", "sts:GetCallerIdentity").reads_only(),
    sts("GetSessionToken", "sts:GetSessionToken"),
];

/// The catalog row of an operation of `service` (`iam` or `sts`).
pub fn operation(service: &str, name: &str) -> Option<&'static Operation> {
    let catalog = match service {
        "sts" => STS_OPERATIONS,
        _ => IAM_OPERATIONS,
    };
    ferrokms_authz::catalog::find(catalog, name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_catalog_is_sorted_and_names_each_operation_once() {
        for catalog in [IAM_OPERATIONS, STS_OPERATIONS] {
            for w in catalog.windows(2) {
                assert!(w[0].name < w[1].name, "{} before {}", w[0].name, w[1].name);
            }
        }
    }

    #[test]
    fn each_operation_is_authorized_by_its_own_action() {
        for o in IAM_OPERATIONS.iter().chain(STS_OPERATIONS) {
            let expected = format!("{}:{}", o.service.prefix(), o.name);
            assert_eq!(o.action, expected);
        }
    }

    #[test]
    fn no_iam_operation_reaches_another_account() {
        assert!(IAM_OPERATIONS.iter().all(|o| !o.cross_account));
        let crossing: Vec<&str> = STS_OPERATIONS
            .iter()
            .filter(|o| o.cross_account)
            .map(|o| o.name)
            .collect();
        assert_eq!(crossing, ["AssumeRole"]);
    }

    #[test]
    fn reading_operations_are_the_get_list_and_simulate_ones() {
        for o in IAM_OPERATIONS {
            let reads = ["Get", "List", "Simulate"]
                .iter()
                .any(|p| o.name.starts_with(p));
            assert_eq!(o.reads_only, reads, "{}", o.name);
        }
    }
}
