//! IAM over the query protocol (Version 2010-05-08): parameters in, XML out.
//!
//! About 910 lines of code: one arm per IAM operation, each reading its
//! parameters, calling the `Directory` and writing AWS's XML; a table that
//! is read by operation name, with the operations' own logic in crates/iam.

use ferrokms_iam::simulate::{ContextEntryInput, Position, SimulationInput, SimulationResult};
use ferrokms_iam::Taggable;
use ferrokms_iam::{
    AccessKeyStatus, Caller, Directory, GroupRecord, InstanceProfileRecord, ManagedPolicyRecord,
    PolicyVersion, Principal, RoleRecord, Tag, UserRecord,
};

use crate::query::{iso8601, url_encode, Params, QueryError, Xml};

/// The XML namespace of IAM's responses.
pub const IAM_NAMESPACE: &str = "https://iam.amazonaws.com/doc/2010-05-08/";

use ferrokms_iam::ops_owner::Owner;

fn user_xml(x: &mut Xml, tag: &str, u: &UserRecord) {
    x.open(tag)
        .leaf("Path", &u.path)
        .leaf("UserName", &u.name)
        .leaf("UserId", &u.id)
        .leaf("Arn", &u.arn())
        .leaf("CreateDate", &iso8601(u.created_ms));
    boundary_xml(x, u.boundary.as_deref());
    tags_xml(x, &u.tags);
    x.close(tag);
}

fn boundary_xml(x: &mut Xml, boundary: Option<&str>) {
    if let Some(b) = boundary {
        x.open("PermissionsBoundary")
            .leaf("PermissionsBoundaryType", "PermissionsBoundaryPolicy")
            .leaf("PermissionsBoundaryArn", b)
            .close("PermissionsBoundary");
    }
}

fn group_xml(x: &mut Xml, tag: &str, g: &GroupRecord) {
    x.open(tag)
        .leaf("Path", &g.path)
        .leaf("GroupName", &g.name)
        .leaf("GroupId", &g.id)
        .leaf("Arn", &g.arn())
        .leaf("CreateDate", &iso8601(g.created_ms))
        .close(tag);
}

fn version_xml(x: &mut Xml, tag: &str, v: &PolicyVersion, is_default: bool, with_doc: bool) {
    x.open(tag);
    if with_doc {
        x.leaf("Document", &url_encode(&v.doc.text));
    }
    x.leaf("VersionId", &v.version_id)
        .leaf(
            "IsDefaultVersion",
            if is_default { "true" } else { "false" },
        )
        .leaf("CreateDate", &iso8601(v.created_ms))
        .close(tag);
}

/// One page of a List* result: `MaxItems` (1..=1000, default 100) items
/// after the opaque `Marker` a previous page returned.
fn page<T>(items: Vec<T>, p: &Params) -> Result<(Vec<T>, Option<String>), QueryError> {
    let (window, marker) = page_window(p, items.len())?;
    Ok((
        items
            .into_iter()
            .skip(window.start)
            .take(window.len())
            .collect(),
        marker,
    ))
}

/// Which of `total` items one page holds, and the marker of the next.
fn page_window(
    p: &Params,
    total: usize,
) -> Result<(std::ops::Range<usize>, Option<String>), QueryError> {
    let max = match p.u32("MaxItems")? {
        None => 100,
        Some(n) if (1..=1000).contains(&n) => n as usize,
        Some(n) => {
            return Err(QueryError::new(
                "ValidationError",
                400,
                format!("1 validation error detected: Value '{n}' at 'maxItems' failed to satisfy constraint: Member must have value between 1 and 1000"),
            ))
        }
    };
    let start = match p.get("Marker") {
        None => 0,
        Some(m) => m
            .strip_prefix("ferrokms-page-")
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|n| *n <= total)
            .ok_or_else(|| QueryError::new("ValidationError", 400, "Invalid Marker."))?,
    };
    let end = (start + max).min(total);
    let marker = (end < total).then(|| format!("ferrokms-page-{end}"));
    Ok((start..end, marker))
}

fn page_end(x: &mut Xml, marker: Option<String>) {
    match marker {
        Some(m) => {
            x.leaf("IsTruncated", "true").leaf("Marker", &m);
        }
        None => {
            x.leaf("IsTruncated", "false");
        }
    }
}

/// The simulation's input, with the page it asks for: only that page's
/// pairs are evaluated.
fn sim_input(p: &Params) -> Result<(SimulationInput, Option<String>), QueryError> {
    let context = (1..)
        .map_while(|i| {
            let pre = format!("ContextEntries.member.{i}");
            let key = p.get(&format!("{pre}.ContextKeyName"))?;
            Some(ContextEntryInput {
                key: key.to_string(),
                values: p.list(&format!("{pre}.ContextKeyValues")),
                key_type: p
                    .get(&format!("{pre}.ContextKeyType"))
                    .unwrap_or("string")
                    .to_string(),
            })
        })
        .collect();
    let input = SimulationInput {
        policies: p.list("PolicyInputList"),
        boundaries: p.list("PermissionsBoundaryPolicyInputList"),
        resource_policy: p.get("ResourcePolicy").map(str::to_string),
        resource_owner: p.get("ResourceOwner").map(str::to_string),
        caller_arn: p.get("CallerArn").map(str::to_string),
        actions: p.list("ActionNames"),
        resources: p.list("ResourceArns"),
        context,
        window: None,
    };
    let (window, marker) = page_window(p, input.pairs())?;
    Ok((
        SimulationInput {
            window: Some(window),
            ..input
        },
        marker,
    ))
}

fn position_xml(x: &mut Xml, tag: &str, pos: Position) {
    x.open(tag)
        .leaf("Line", &pos.line.to_string())
        .leaf("Column", &pos.column.to_string())
        .close(tag);
}

fn simulation_xml(
    x: &mut Xml,
    results: Vec<SimulationResult>,
    marker: Option<String>,
) -> Result<(), QueryError> {
    x.open("EvaluationResults");
    for r in results {
        x.open("member")
            .leaf("EvalActionName", &r.action)
            .leaf("EvalResourceName", &r.resource)
            .leaf("EvalDecision", r.decision);
        x.open("MatchedStatements");
        for m in &r.matched {
            x.open("member")
                .leaf("SourcePolicyId", &m.source_policy_id)
                .leaf("SourcePolicyType", m.source_policy_type);
            position_xml(x, "StartPosition", m.start);
            position_xml(x, "EndPosition", m.end);
            x.close("member");
        }
        x.close("MatchedStatements");
        x.open("MissingContextValues");
        for k in &r.missing_context {
            x.leaf("member", k);
        }
        x.close("MissingContextValues");
        if let Some(b) = r.allowed_by_boundary {
            x.open("PermissionsBoundaryDecisionDetail")
                .leaf(
                    "AllowedByPermissionsBoundary",
                    if b { "true" } else { "false" },
                )
                .close("PermissionsBoundaryDecisionDetail");
        }
        if !r.details.is_empty() {
            x.open("EvalDecisionDetails");
            for (k, v) in &r.details {
                x.open("entry")
                    .leaf("key", k)
                    .leaf("value", v)
                    .close("entry");
            }
            x.close("EvalDecisionDetails");
        }
        x.close("member");
    }
    x.close("EvaluationResults");
    page_end(x, marker);
    Ok(())
}

fn names_xml(x: &mut Xml, tag: &str, names: &[String]) {
    x.open(tag);
    for n in names {
        x.leaf("member", n);
    }
    x.close(tag);
}

fn attached_xml(x: &mut Xml, tag: &str, attached: &[String]) {
    x.open(tag);
    for a in attached {
        x.open("member")
            .leaf("PolicyName", a.rsplit('/').next().unwrap_or(a))
            .leaf("PolicyArn", a)
            .close("member");
    }
    x.close(tag);
}

fn inline_detail_xml(
    x: &mut Xml,
    tag: &str,
    inline: &std::collections::BTreeMap<String, ferrokms_iam::PolicyDoc>,
) {
    x.open(tag);
    for (n, d) in inline {
        x.open("member")
            .leaf("PolicyName", n)
            .leaf("PolicyDocument", &url_encode(&d.text))
            .close("member");
    }
    x.close(tag);
}

fn role_xml(x: &mut Xml, tag: &str, r: &RoleRecord) {
    x.open(tag)
        .leaf("Path", &r.path)
        .leaf("RoleName", &r.name)
        .leaf("RoleId", &r.id)
        .leaf("Arn", &r.arn())
        .leaf("CreateDate", &iso8601(r.created_ms))
        .leaf("AssumeRolePolicyDocument", &url_encode(&r.trust.text))
        .leaf("Description", &r.description)
        .leaf("MaxSessionDuration", &r.max_session_duration.to_string());
    boundary_xml(x, r.boundary.as_deref());
    tags_xml(x, &r.tags);
    x.close(tag);
}

fn tags_xml(x: &mut Xml, tags: &[Tag]) {
    if tags.is_empty() {
        return;
    }
    x.open("Tags");
    for t in tags {
        x.open("member")
            .leaf("Key", &t.key)
            .leaf("Value", &t.value)
            .close("member");
    }
    x.close("Tags");
}

/// A `Policy` element; CreatePolicy and GetPolicy show the tags,
/// ListPolicies does not (as on AWS).
fn policy_xml(
    x: &mut Xml,
    tag: &str,
    p: &ManagedPolicyRecord,
    counts: (usize, usize),
    with_tags: bool,
) {
    policy_open(x, tag, p, counts);
    if with_tags {
        tags_xml(x, &p.tags);
    }
    x.close(tag);
}

/// An `InstanceProfile` element with its roles (full `Role` shapes) and tags.
fn instance_profile_xml(x: &mut Xml, tag: &str, dir: &Directory, p: &InstanceProfileRecord) {
    x.open(tag)
        .leaf("Path", &p.path)
        .leaf("InstanceProfileName", &p.name)
        .leaf("InstanceProfileId", &p.id)
        .leaf("Arn", &p.arn())
        .leaf("CreateDate", &iso8601(p.created_ms));
    x.open("Roles");
    for r in dir.instance_profile_roles(p) {
        role_xml(x, "member", &r);
    }
    x.close("Roles");
    tags_xml(x, &p.tags);
    x.close(tag);
}

fn tag_list_xml(x: &mut Xml, items: Vec<Tag>) {
    x.open("Tags");
    for t in items {
        x.open("member")
            .leaf("Key", &t.key)
            .leaf("Value", &t.value)
            .close("member");
    }
    x.close("Tags");
}

/// Tags of a Tag* request: at least one (`Value null at 'tags'`).
fn required_tags(p: &Params) -> Result<Vec<Tag>, QueryError> {
    let tags = tags_param(p);
    if tags.is_empty() {
        return Err(QueryError::new(
            "ValidationError",
            400,
            "1 validation error detected: Value null at 'tags' failed to satisfy constraint: Member must not be null",
        ));
    }
    Ok(tags)
}

/// Tag keys of an Untag* request: at least one.
fn required_tag_keys(p: &Params) -> Result<Vec<String>, QueryError> {
    let keys = p.list("TagKeys");
    if keys.is_empty() {
        return Err(QueryError::new(
            "ValidationError",
            400,
            "1 validation error detected: Value null at 'tagKeys' failed to satisfy constraint: Member must not be null",
        ));
    }
    Ok(keys)
}

fn policy_open(
    x: &mut Xml,
    tag: &str,
    p: &ManagedPolicyRecord,
    (attachments, boundaries): (usize, usize),
) {
    x.open(tag)
        .leaf("PolicyName", &p.name)
        .leaf("PolicyId", &p.id)
        .leaf("Arn", &p.arn())
        .leaf("Path", &p.path)
        .leaf("DefaultVersionId", &p.default_version)
        .leaf("AttachmentCount", &attachments.to_string())
        .leaf("PermissionsBoundaryUsageCount", &boundaries.to_string())
        .leaf("IsAttachable", "true")
        .leaf("Description", &p.description)
        .leaf("CreateDate", &iso8601(p.created_ms))
        .leaf("UpdateDate", &iso8601(p.updated_ms));
}

fn tags_param(p: &Params) -> Vec<Tag> {
    p.tags("Tags")
        .into_iter()
        .map(|(key, value)| Tag { key, value })
        .collect()
}

/// Runs one IAM action; returns the `...Result` element's content. Only
/// the operations of the catalog exist.
pub fn dispatch(
    dir: &Directory,
    caller: &Caller,
    action: &str,
    p: &Params,
) -> Result<String, QueryError> {
    if ferrokms_iam::catalog::operation("iam", action).is_none() {
        return Err(invalid_action(action));
    }
    let mut x = Xml::default();
    match action {
        "CreateUser" => {
            let u = dir.create_user(
                caller,
                p.required("UserName")?,
                p.get("Path"),
                tags_param(p),
                p.get("PermissionsBoundary"),
            )?;
            user_xml(&mut x, "User", &u);
        }
        "GetUser" => match (p.get("UserName"), &caller.principal) {
            (None, Principal::Root { account }) => {
                x.open("User")
                    .leaf("UserId", account.as_str())
                    .leaf("Arn", &caller.authz.arn)
                    .leaf("CreateDate", &iso8601(0))
                    .close("User");
            }
            (name, _) => {
                let u = dir.get_user(caller, name)?;
                user_xml(&mut x, "User", &u);
            }
        },
        "ListUsers" => {
            let (items, marker) = page(dir.list_users(caller, p.get("PathPrefix"))?, p)?;
            x.open("Users");
            for u in items {
                user_xml(&mut x, "member", &u);
            }
            x.close("Users");
            page_end(&mut x, marker);
        }
        "UpdateUser" => dir.update_user(
            caller,
            p.required("UserName")?,
            p.get("NewUserName"),
            p.get("NewPath"),
        )?,
        "DeleteUser" => dir.delete_user(caller, p.required("UserName")?)?,
        "CreateRole" => {
            let r = dir.create_role(
                caller,
                p.required("RoleName")?,
                p.get("Path"),
                p.required("AssumeRolePolicyDocument")?,
                p.get("Description"),
                p.u32("MaxSessionDuration")?,
                tags_param(p),
                p.get("PermissionsBoundary"),
            )?;
            role_xml(&mut x, "Role", &r);
        }
        "GetRole" => {
            let r = dir.get_role(caller, p.required("RoleName")?)?;
            role_xml(&mut x, "Role", &r);
        }
        "ListRoles" => {
            let (items, marker) = page(dir.list_roles(caller, p.get("PathPrefix"))?, p)?;
            x.open("Roles");
            for r in items {
                role_xml(&mut x, "member", &r);
            }
            x.close("Roles");
            page_end(&mut x, marker);
        }
        "DeleteRole" => dir.delete_role(caller, p.required("RoleName")?)?,
        "UpdateAssumeRolePolicy" => dir.update_assume_role_policy(
            caller,
            p.required("RoleName")?,
            p.required("PolicyDocument")?,
        )?,
        "CreateGroup" => {
            let g = dir.create_group(caller, p.required("GroupName")?, p.get("Path"))?;
            group_xml(&mut x, "Group", &g);
        }
        "GetGroup" => {
            let (g, users) = dir.get_group(caller, p.required("GroupName")?)?;
            group_xml(&mut x, "Group", &g);
            let (users, marker) = page(users, p)?;
            x.open("Users");
            for u in users {
                user_xml(&mut x, "member", &u);
            }
            x.close("Users");
            page_end(&mut x, marker);
        }
        "ListGroups" => {
            let (items, marker) = page(dir.list_groups(caller, p.get("PathPrefix"))?, p)?;
            x.open("Groups");
            for g in items {
                group_xml(&mut x, "member", &g);
            }
            x.close("Groups");
            page_end(&mut x, marker);
        }
        "DeleteGroup" => dir.delete_group(caller, p.required("GroupName")?)?,
        "AddUserToGroup" => {
            dir.add_user_to_group(caller, p.required("GroupName")?, p.required("UserName")?)?;
        }
        "RemoveUserFromGroup" => {
            dir.remove_user_from_group(caller, p.required("GroupName")?, p.required("UserName")?)?;
        }
        "ListGroupsForUser" => {
            let (items, marker) = page(
                dir.list_groups_for_user(caller, p.required("UserName")?)?,
                p,
            )?;
            x.open("Groups");
            for g in items {
                group_xml(&mut x, "member", &g);
            }
            x.close("Groups");
            page_end(&mut x, marker);
        }
        "PutUserPolicy" | "PutRolePolicy" | "PutGroupPolicy" => {
            let (owner, member) = owner_of(action);
            dir.put_inline_policy(
                caller,
                owner,
                p.required(member)?,
                p.required("PolicyName")?,
                p.required("PolicyDocument")?,
            )?;
        }
        "GetUserPolicy" | "GetRolePolicy" | "GetGroupPolicy" => {
            let (owner, member) = owner_of(action);
            let owner_name = p.required(member)?;
            let name = p.required("PolicyName")?;
            let doc = dir.get_inline_policy(caller, owner, owner_name, name)?;
            x.leaf(member, owner_name)
                .leaf("PolicyName", name)
                .leaf("PolicyDocument", &url_encode(&doc));
        }
        "DeleteUserPolicy" | "DeleteRolePolicy" | "DeleteGroupPolicy" => {
            let (owner, member) = owner_of(action);
            dir.delete_inline_policy(
                caller,
                owner,
                p.required(member)?,
                p.required("PolicyName")?,
            )?;
        }
        "ListUserPolicies" | "ListRolePolicies" | "ListGroupPolicies" => {
            let (owner, member) = owner_of(action);
            let (items, marker) = page(
                dir.list_inline_policies(caller, owner, p.required(member)?)?,
                p,
            )?;
            names_xml(&mut x, "PolicyNames", &items);
            page_end(&mut x, marker);
        }
        "CreatePolicy" => {
            let pol = dir.create_policy_tagged(
                caller,
                p.required("PolicyName")?,
                p.get("Path"),
                p.required("PolicyDocument")?,
                p.get("Description"),
                tags_param(p),
            )?;
            policy_xml(&mut x, "Policy", &pol, (0, 0), true);
        }
        "TagPolicy" => {
            let tags = required_tags(p)?;
            dir.tag_policy(caller, p.required("PolicyArn")?, tags)?;
        }
        "UntagPolicy" => {
            let keys = required_tag_keys(p)?;
            dir.untag_policy(caller, p.required("PolicyArn")?, &keys)?;
        }
        "ListPolicyTags" => {
            let (items, marker) = page(dir.list_policy_tags(caller, p.required("PolicyArn")?)?, p)?;
            tag_list_xml(&mut x, items);
            page_end(&mut x, marker);
        }
        "CreateInstanceProfile" => {
            let ip = dir.create_instance_profile(
                caller,
                p.required("InstanceProfileName")?,
                p.get("Path"),
                tags_param(p),
            )?;
            instance_profile_xml(&mut x, "InstanceProfile", dir, &ip);
        }
        "GetInstanceProfile" => {
            let ip = dir.get_instance_profile(caller, p.required("InstanceProfileName")?)?;
            instance_profile_xml(&mut x, "InstanceProfile", dir, &ip);
        }
        "DeleteInstanceProfile" => {
            dir.delete_instance_profile(caller, p.required("InstanceProfileName")?)?;
        }
        "ListInstanceProfiles" | "ListInstanceProfilesForRole" => {
            let all = if action == "ListInstanceProfiles" {
                dir.list_instance_profiles(caller, p.get("PathPrefix"))?
            } else {
                dir.list_instance_profiles_for_role(caller, p.required("RoleName")?)?
            };
            let (items, marker) = page(all, p)?;
            x.open("InstanceProfiles");
            for ip in items {
                instance_profile_xml(&mut x, "member", dir, &ip);
            }
            x.close("InstanceProfiles");
            page_end(&mut x, marker);
        }
        "AddRoleToInstanceProfile" => dir.add_role_to_instance_profile(
            caller,
            p.required("InstanceProfileName")?,
            p.required("RoleName")?,
        )?,
        "RemoveRoleFromInstanceProfile" => dir.remove_role_from_instance_profile(
            caller,
            p.required("InstanceProfileName")?,
            p.required("RoleName")?,
        )?,
        "TagInstanceProfile" => {
            let tags = required_tags(p)?;
            dir.tag_instance_profile(caller, p.required("InstanceProfileName")?, tags)?;
        }
        "UntagInstanceProfile" => {
            let keys = required_tag_keys(p)?;
            dir.untag_instance_profile(caller, p.required("InstanceProfileName")?, &keys)?;
        }
        "ListInstanceProfileTags" => {
            let (items, marker) = page(
                dir.list_instance_profile_tags(caller, p.required("InstanceProfileName")?)?,
                p,
            )?;
            tag_list_xml(&mut x, items);
            page_end(&mut x, marker);
        }
        "GetPolicy" => {
            let arn = p.required("PolicyArn")?;
            let (pol, n) = dir.get_policy(caller, arn)?;
            policy_xml(
                &mut x,
                "Policy",
                &pol,
                (n, dir.permissions_boundary_usage(arn)),
                true,
            );
        }
        "DeletePolicy" => dir.delete_policy(caller, p.required("PolicyArn")?)?,
        "ListPolicies" => {
            let mut all = dir.list_policies(caller, p.bool("OnlyAttached"))?;
            if let Some(prefix) = p.get("PathPrefix") {
                all.retain(|(pol, _)| pol.path.starts_with(prefix));
            }
            if p.get("Scope") == Some("AWS") {
                all.clear();
            }
            if p.get("PolicyUsageFilter") == Some("PermissionsBoundary") {
                all.retain(|(pol, _)| dir.permissions_boundary_usage(&pol.arn()) > 0);
            }
            let (items, marker) = page(all, p)?;
            x.open("Policies");
            for (pol, n) in items {
                let b = dir.permissions_boundary_usage(&pol.arn());
                policy_xml(&mut x, "member", &pol, (n, b), false);
            }
            x.close("Policies");
            page_end(&mut x, marker);
        }
        "GetPolicyVersion" => {
            let (v, is_default) =
                dir.get_policy_version(caller, p.required("PolicyArn")?, p.required("VersionId")?)?;
            version_xml(&mut x, "PolicyVersion", &v, is_default, true);
        }
        "CreatePolicyVersion" => {
            let v = dir.create_policy_version(
                caller,
                p.required("PolicyArn")?,
                p.required("PolicyDocument")?,
                p.bool("SetAsDefault"),
            )?;
            version_xml(&mut x, "PolicyVersion", &v, p.bool("SetAsDefault"), false);
        }
        "DeletePolicyVersion" => {
            dir.delete_policy_version(caller, p.required("PolicyArn")?, p.required("VersionId")?)?;
        }
        "ListPolicyVersions" => {
            let (versions, default) = dir.list_policy_versions(caller, p.required("PolicyArn")?)?;
            let (items, marker) = page(versions, p)?;
            x.open("Versions");
            for v in items {
                let d = v.version_id == default;
                version_xml(&mut x, "member", &v, d, false);
            }
            x.close("Versions");
            page_end(&mut x, marker);
        }
        "SetDefaultPolicyVersion" => dir.set_default_policy_version(
            caller,
            p.required("PolicyArn")?,
            p.required("VersionId")?,
        )?,
        "ListEntitiesForPolicy" => {
            let filter = p.get("EntityFilter");
            if let Some(f) = filter {
                if ![
                    "User",
                    "Role",
                    "Group",
                    "LocalManagedPolicy",
                    "AWSManagedPolicy",
                ]
                .contains(&f)
                {
                    return Err(QueryError::new(
                        "ValidationError",
                        400,
                        format!("1 validation error detected: Value '{f}' at 'entityFilter' failed to satisfy constraint: Member must satisfy enum value set: [LocalManagedPolicy, Group, Role, AWSManagedPolicy, User]"),
                    ));
                }
            }
            let e = dir.list_entities_for_policy(
                caller,
                p.required("PolicyArn")?,
                filter,
                p.get("PolicyUsageFilter") == Some("PermissionsBoundary"),
            )?;
            for (tag, name_tag, id_tag, list) in [
                ("PolicyGroups", "GroupName", "GroupId", &e.groups),
                ("PolicyUsers", "UserName", "UserId", &e.users),
                ("PolicyRoles", "RoleName", "RoleId", &e.roles),
            ] {
                x.open(tag);
                for (n, id) in list {
                    x.open("member")
                        .leaf(name_tag, n)
                        .leaf(id_tag, id)
                        .close("member");
                }
                x.close(tag);
            }
            x.leaf("IsTruncated", "false");
        }
        "AttachUserPolicy" | "AttachRolePolicy" | "AttachGroupPolicy" => {
            let (owner, member) = owner_of(action);
            dir.attach_policy(caller, owner, p.required(member)?, p.required("PolicyArn")?)?;
        }
        "DetachUserPolicy" | "DetachRolePolicy" | "DetachGroupPolicy" => {
            let (owner, member) = owner_of(action);
            dir.detach_policy(caller, owner, p.required(member)?, p.required("PolicyArn")?)?;
        }
        "ListAttachedUserPolicies" | "ListAttachedRolePolicies" | "ListAttachedGroupPolicies" => {
            let (owner, member) = owner_of(action);
            let (items, marker) = page(
                dir.list_attached_policies(caller, owner, p.required(member)?)?,
                p,
            )?;
            x.open("AttachedPolicies");
            for (name, arn) in items {
                x.open("member")
                    .leaf("PolicyName", &name)
                    .leaf("PolicyArn", &arn)
                    .close("member");
            }
            x.close("AttachedPolicies");
            page_end(&mut x, marker);
        }
        "PutUserPermissionsBoundary" | "PutRolePermissionsBoundary" => {
            let (what, member) = taggable_of(action);
            dir.put_permissions_boundary(
                caller,
                what,
                p.required(member)?,
                p.required("PermissionsBoundary")?,
            )?;
        }
        "DeleteUserPermissionsBoundary" | "DeleteRolePermissionsBoundary" => {
            let (what, member) = taggable_of(action);
            dir.delete_permissions_boundary(caller, what, p.required(member)?)?;
        }
        "TagUser" | "TagRole" => {
            let (what, member) = taggable_of(action);
            let tags = required_tags(p)?;
            dir.tag(caller, what, p.required(member)?, tags)?;
        }
        "UntagUser" | "UntagRole" => {
            let (what, member) = taggable_of(action);
            let keys = required_tag_keys(p)?;
            dir.untag(caller, what, p.required(member)?, &keys)?;
        }
        "ListUserTags" | "ListRoleTags" => {
            let (what, member) = taggable_of(action);
            let (items, marker) = page(dir.list_tags(caller, what, p.required(member)?)?, p)?;
            tag_list_xml(&mut x, items);
            page_end(&mut x, marker);
        }
        "GetAccountAuthorizationDetails" => {
            let d = dir.account_authorization_details(caller)?;
            let filter = p.list("Filter");
            let want = |k: &str| filter.is_empty() || filter.iter().any(|f| f == k);
            x.open("UserDetailList");
            if want("User") {
                for (u, groups) in &d.users {
                    x.open("member")
                        .leaf("Path", &u.path)
                        .leaf("UserName", &u.name)
                        .leaf("UserId", &u.id)
                        .leaf("Arn", &u.arn())
                        .leaf("CreateDate", &iso8601(u.created_ms));
                    inline_detail_xml(&mut x, "UserPolicyList", &u.inline);
                    names_xml(&mut x, "GroupList", groups);
                    attached_xml(&mut x, "AttachedManagedPolicies", &u.attached);
                    boundary_xml(&mut x, u.boundary.as_deref());
                    tags_xml(&mut x, &u.tags);
                    x.close("member");
                }
            }
            x.close("UserDetailList");
            x.open("GroupDetailList");
            if want("Group") {
                for g in &d.groups {
                    x.open("member")
                        .leaf("Path", &g.path)
                        .leaf("GroupName", &g.name)
                        .leaf("GroupId", &g.id)
                        .leaf("Arn", &g.arn())
                        .leaf("CreateDate", &iso8601(g.created_ms));
                    inline_detail_xml(&mut x, "GroupPolicyList", &g.inline);
                    attached_xml(&mut x, "AttachedManagedPolicies", &g.attached);
                    x.close("member");
                }
            }
            x.close("GroupDetailList");
            x.open("RoleDetailList");
            if want("Role") {
                for r in &d.roles {
                    x.open("member")
                        .leaf("Path", &r.path)
                        .leaf("RoleName", &r.name)
                        .leaf("RoleId", &r.id)
                        .leaf("Arn", &r.arn())
                        .leaf("CreateDate", &iso8601(r.created_ms))
                        .leaf("AssumeRolePolicyDocument", &url_encode(&r.trust.text));
                    x.open("InstanceProfileList");
                    for ip in &d.profiles_of_role(r) {
                        instance_profile_xml(&mut x, "member", dir, ip);
                    }
                    x.close("InstanceProfileList");
                    inline_detail_xml(&mut x, "RolePolicyList", &r.inline);
                    attached_xml(&mut x, "AttachedManagedPolicies", &r.attached);
                    boundary_xml(&mut x, r.boundary.as_deref());
                    tags_xml(&mut x, &r.tags);
                    x.close("member");
                }
            }
            x.close("RoleDetailList");
            x.open("Policies");
            if want("LocalManagedPolicy") {
                for (pol, a, b) in &d.policies {
                    policy_open(&mut x, "member", pol, (*a, *b));
                    x.open("PolicyVersionList");
                    for v in &pol.versions {
                        version_xml(
                            &mut x,
                            "member",
                            v,
                            v.version_id == pol.default_version,
                            true,
                        );
                    }
                    x.close("PolicyVersionList");
                    x.close("member");
                }
            }
            x.close("Policies");
            x.leaf("IsTruncated", "false");
        }
        "SimulateCustomPolicy" => {
            let (input, marker) = sim_input(p)?;
            let results = dir.simulate_custom_policy(caller, &input)?;
            simulation_xml(&mut x, results, marker)?;
        }
        "SimulatePrincipalPolicy" => {
            let (input, marker) = sim_input(p)?;
            let results =
                dir.simulate_principal_policy(caller, p.required("PolicySourceArn")?, &input)?;
            simulation_xml(&mut x, results, marker)?;
        }
        "GetContextKeysForCustomPolicy" => {
            let keys = dir.context_keys_for_custom_policy(caller, &p.list("PolicyInputList"))?;
            names_xml(&mut x, "ContextKeyNames", &keys);
        }
        "GetContextKeysForPrincipalPolicy" => {
            let keys = dir.context_keys_for_principal_policy(
                caller,
                p.required("PolicySourceArn")?,
                &p.list("PolicyInputList"),
            )?;
            names_xml(&mut x, "ContextKeyNames", &keys);
        }
        "CreateAccessKey" => {
            let k = dir.create_access_key(caller, p.get("UserName"))?;
            x.open("AccessKey");
            if let Principal::User { name, .. } = &k.principal {
                x.leaf("UserName", name);
            }
            x.leaf("AccessKeyId", &k.id)
                .leaf("Status", k.status.as_str())
                .leaf("SecretAccessKey", &k.secret)
                .leaf("CreateDate", &iso8601(k.created_ms))
                .close("AccessKey");
        }
        "ListAccessKeys" => {
            let (items, marker) = page(dir.list_access_keys(caller, p.get("UserName"))?, p)?;
            x.open("AccessKeyMetadata");
            for k in items {
                x.open("member");
                if let Principal::User { name, .. } = &k.principal {
                    x.leaf("UserName", name);
                }
                x.leaf("AccessKeyId", &k.id)
                    .leaf("Status", k.status.as_str())
                    .leaf("CreateDate", &iso8601(k.created_ms))
                    .close("member");
            }
            x.close("AccessKeyMetadata");
            page_end(&mut x, marker);
        }
        "UpdateAccessKey" => {
            let status = match p.required("Status")? {
                "Active" => AccessKeyStatus::Active,
                "Inactive" => AccessKeyStatus::Inactive,
                other => {
                    return Err(QueryError::new(
                        "ValidationError",
                        400,
                        format!("1 validation error detected: Value '{other}' at 'status' failed to satisfy constraint: Member must satisfy enum value set: [Active, Inactive]"),
                    ))
                }
            };
            dir.update_access_key(
                caller,
                p.get("UserName"),
                p.required("AccessKeyId")?,
                status,
            )?;
        }
        "DeleteAccessKey" => {
            dir.delete_access_key(caller, p.get("UserName"), p.required("AccessKeyId")?)?;
        }
        other => return Err(invalid_action(other)),
    }
    Ok(x.into_string())
}

fn invalid_action(action: &str) -> QueryError {
    QueryError::new(
        "InvalidAction",
        400,
        format!("Could not find operation {action} for version 2010-05-08"),
    )
}

fn taggable_of(action: &str) -> (Taggable, &'static str) {
    if action.contains("User") {
        (Taggable::User, "UserName")
    } else {
        (Taggable::Role, "RoleName")
    }
}

fn owner_of(action: &str) -> (Owner, &'static str) {
    if action.contains("User") {
        (Owner::User, "UserName")
    } else if action.contains("Group") {
        (Owner::Group, "GroupName")
    } else {
        (Owner::Role, "RoleName")
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use ferrokms_store::{MemoryStore, Sealer};
    use ferrokms_types::AccountId;

    use super::*;

    /// The catalog is the gate: every operation it names is served (it
    /// answers something other than InvalidAction, here a missing
    /// parameter or a result), and nothing else is.
    #[test]
    fn the_dispatcher_serves_exactly_the_catalogs_operations() {
        let dir = Directory::open(
            Arc::new(MemoryStore::default()),
            Arc::new(Sealer::ephemeral().expect("sealer")),
        )
        .expect("directory");
        let account = AccountId::parse("111122223333").expect("account");
        dir.create_account(&account).expect("account");
        let root = Caller::root(account);
        let empty = Params::parse("", b"");
        for op in ferrokms_iam::catalog::IAM_OPERATIONS {
            if let Err(e) = dispatch(&dir, &root, op.name, &empty) {
                assert_ne!(e.code, "InvalidAction", "{}", op.name);
            }
        }
        for other in ["CreateLoginProfile", "ListMFADevices", "Nope"] {
            let e = dispatch(&dir, &root, other, &empty).expect_err(other);
            assert_eq!(e.code, "InvalidAction");
        }
    }
}
