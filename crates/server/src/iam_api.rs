//! IAM over the query protocol (Version 2010-05-08): parameters in, XML out.

use ferrokms_iam::{
    AccessKeyStatus, Directory, ManagedPolicyRecord, Principal, RoleRecord, Tag, UserRecord,
};

use crate::query::{iso8601, url_encode, Params, QueryError, Xml};

pub const IAM_NAMESPACE: &str = "https://iam.amazonaws.com/doc/2010-05-08/";

use ferrokms_iam::ops_owner::Owner;

fn user_xml(x: &mut Xml, tag: &str, u: &UserRecord) {
    x.open(tag)
        .leaf("Path", &u.path)
        .leaf("UserName", &u.name)
        .leaf("UserId", &u.id)
        .leaf("Arn", &u.arn())
        .leaf("CreateDate", &iso8601(u.created_ms));
    tags_xml(x, &u.tags);
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

fn policy_xml(x: &mut Xml, tag: &str, p: &ManagedPolicyRecord, attachments: usize) {
    x.open(tag)
        .leaf("PolicyName", &p.name)
        .leaf("PolicyId", &p.id)
        .leaf("Arn", &p.arn())
        .leaf("Path", &p.path)
        .leaf("DefaultVersionId", &p.default_version)
        .leaf("AttachmentCount", &attachments.to_string())
        .leaf("PermissionsBoundaryUsageCount", "0")
        .leaf("IsAttachable", "true")
        .leaf("Description", &p.description)
        .leaf("CreateDate", &iso8601(p.created_ms))
        .leaf("UpdateDate", &iso8601(p.updated_ms))
        .close(tag);
}

fn tags_param(p: &Params) -> Vec<Tag> {
    p.tags("Tags")
        .into_iter()
        .map(|(key, value)| Tag { key, value })
        .collect()
}

fn untruncated(x: &mut Xml) {
    x.leaf("IsTruncated", "false");
}

/// Runs one IAM action; returns the `...Result` element's content.
pub fn dispatch(
    dir: &Directory,
    caller: &Principal,
    action: &str,
    p: &Params,
) -> Result<String, QueryError> {
    let mut x = Xml::default();
    match action {
        "CreateUser" => {
            let u = dir.create_user(
                caller,
                p.required("UserName")?,
                p.get("Path"),
                tags_param(p),
            )?;
            user_xml(&mut x, "User", &u);
        }
        "GetUser" => match (p.get("UserName"), caller) {
            (None, Principal::Root { account }) => {
                x.open("User")
                    .leaf("UserId", account.as_str())
                    .leaf("Arn", &caller.arn("aws"))
                    .leaf("CreateDate", &iso8601(0))
                    .close("User");
            }
            (name, _) => {
                let u = dir.get_user(caller, name)?;
                user_xml(&mut x, "User", &u);
            }
        },
        "ListUsers" => {
            x.open("Users");
            for u in dir.list_users(caller, p.get("PathPrefix"))? {
                user_xml(&mut x, "member", &u);
            }
            x.close("Users");
            untruncated(&mut x);
        }
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
            )?;
            role_xml(&mut x, "Role", &r);
        }
        "GetRole" => {
            let r = dir.get_role(caller, p.required("RoleName")?)?;
            role_xml(&mut x, "Role", &r);
        }
        "ListRoles" => {
            x.open("Roles");
            for r in dir.list_roles(caller, p.get("PathPrefix"))? {
                role_xml(&mut x, "member", &r);
            }
            x.close("Roles");
            untruncated(&mut x);
        }
        "DeleteRole" => dir.delete_role(caller, p.required("RoleName")?)?,
        "UpdateAssumeRolePolicy" => dir.update_assume_role_policy(
            caller,
            p.required("RoleName")?,
            p.required("PolicyDocument")?,
        )?,
        "PutUserPolicy" | "PutRolePolicy" => {
            let (owner, member) = owner_of(action);
            dir.put_inline_policy(
                caller,
                owner,
                p.required(member)?,
                p.required("PolicyName")?,
                p.required("PolicyDocument")?,
            )?;
        }
        "GetUserPolicy" | "GetRolePolicy" => {
            let (owner, member) = owner_of(action);
            let owner_name = p.required(member)?;
            let name = p.required("PolicyName")?;
            let doc = dir.get_inline_policy(caller, owner, owner_name, name)?;
            x.leaf(member, owner_name)
                .leaf("PolicyName", name)
                .leaf("PolicyDocument", &url_encode(&doc));
        }
        "DeleteUserPolicy" | "DeleteRolePolicy" => {
            let (owner, member) = owner_of(action);
            dir.delete_inline_policy(
                caller,
                owner,
                p.required(member)?,
                p.required("PolicyName")?,
            )?;
        }
        "ListUserPolicies" | "ListRolePolicies" => {
            let (owner, member) = owner_of(action);
            x.open("PolicyNames");
            for n in dir.list_inline_policies(caller, owner, p.required(member)?)? {
                x.leaf("member", &n);
            }
            x.close("PolicyNames");
            untruncated(&mut x);
        }
        "CreatePolicy" => {
            let pol = dir.create_policy(
                caller,
                p.required("PolicyName")?,
                p.get("Path"),
                p.required("PolicyDocument")?,
                p.get("Description"),
            )?;
            policy_xml(&mut x, "Policy", &pol, 0);
        }
        "GetPolicy" => {
            let (pol, n) = dir.get_policy(caller, p.required("PolicyArn")?)?;
            policy_xml(&mut x, "Policy", &pol, n);
        }
        "DeletePolicy" => dir.delete_policy(caller, p.required("PolicyArn")?)?,
        "ListPolicies" => {
            x.open("Policies");
            for (pol, n) in dir.list_policies(caller, p.bool("OnlyAttached"))? {
                policy_xml(&mut x, "member", &pol, n);
            }
            x.close("Policies");
            untruncated(&mut x);
        }
        "GetPolicyVersion" => {
            let (v, is_default) =
                dir.get_policy_version(caller, p.required("PolicyArn")?, p.required("VersionId")?)?;
            x.open("PolicyVersion")
                .leaf("Document", &url_encode(&v.doc.text))
                .leaf("VersionId", &v.version_id)
                .leaf(
                    "IsDefaultVersion",
                    if is_default { "true" } else { "false" },
                )
                .leaf("CreateDate", &iso8601(v.created_ms))
                .close("PolicyVersion");
        }
        "CreatePolicyVersion" => {
            let v = dir.create_policy_version(
                caller,
                p.required("PolicyArn")?,
                p.required("PolicyDocument")?,
                p.bool("SetAsDefault"),
            )?;
            x.open("PolicyVersion")
                .leaf("VersionId", &v.version_id)
                .leaf(
                    "IsDefaultVersion",
                    if p.bool("SetAsDefault") {
                        "true"
                    } else {
                        "false"
                    },
                )
                .leaf("CreateDate", &iso8601(v.created_ms))
                .close("PolicyVersion");
        }
        "DeletePolicyVersion" => {
            dir.delete_policy_version(caller, p.required("PolicyArn")?, p.required("VersionId")?)?
        }
        "AttachUserPolicy" | "AttachRolePolicy" => {
            let (owner, member) = owner_of(action);
            dir.attach_policy(caller, owner, p.required(member)?, p.required("PolicyArn")?)?;
        }
        "DetachUserPolicy" | "DetachRolePolicy" => {
            let (owner, member) = owner_of(action);
            dir.detach_policy(caller, owner, p.required(member)?, p.required("PolicyArn")?)?;
        }
        "ListAttachedUserPolicies" | "ListAttachedRolePolicies" => {
            let (owner, member) = owner_of(action);
            x.open("AttachedPolicies");
            for (name, arn) in dir.list_attached_policies(caller, owner, p.required(member)?)? {
                x.open("member")
                    .leaf("PolicyName", &name)
                    .leaf("PolicyArn", &arn)
                    .close("member");
            }
            x.close("AttachedPolicies");
            untruncated(&mut x);
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
            x.open("AccessKeyMetadata");
            for k in dir.list_access_keys(caller, p.get("UserName"))? {
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
            untruncated(&mut x);
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
            dir.delete_access_key(caller, p.get("UserName"), p.required("AccessKeyId")?)?
        }
        other => {
            return Err(QueryError::new(
                "InvalidAction",
                400,
                format!("Could not find operation {other} for version 2010-05-08"),
            ))
        }
    }
    Ok(x.into_string())
}

fn owner_of(action: &str) -> (Owner, &'static str) {
    if action.contains("User") {
        (Owner::User, "UserName")
    } else {
        (Owner::Role, "RoleName")
    }
}
