//! STS over the query protocol (Version 2011-06-15).

use ferrokms_iam::sts::AssumeRoleInput;
use ferrokms_iam::{Caller, Credentials, Directory};

use crate::query::{iso8601, Params, QueryError, Xml};

/// The XML namespace of STS's responses.
pub const STS_NAMESPACE: &str = "https://sts.amazonaws.com/doc/2011-06-15/";

fn credentials_xml(x: &mut Xml, s: &Credentials) {
    x.open("Credentials")
        .leaf("AccessKeyId", &s.access_key_id)
        .leaf("SecretAccessKey", &s.secret)
        .leaf("SessionToken", &s.token)
        .leaf("Expiration", &iso8601(s.expires_ms))
        .close("Credentials");
}

/// Runs one STS action; returns the `...Result` element's content.
pub fn dispatch(
    dir: &Directory,
    caller: &Caller,
    action: &str,
    p: &Params,
) -> Result<String, QueryError> {
    let mut x = Xml::default();
    match action {
        "GetCallerIdentity" => {
            x.leaf("UserId", &caller.user_id())
                .leaf("Account", caller.account().as_str())
                .leaf("Arn", &caller.authz.arn);
        }
        "AssumeRole" => {
            let s = dir.assume_role(
                caller,
                AssumeRoleInput {
                    role_arn: p.required("RoleArn")?,
                    session_name: p.required("RoleSessionName")?,
                    duration_seconds: p.u32("DurationSeconds")?,
                    policy: p.get("Policy"),
                    policy_arns: p.list_field("PolicyArns", "arn"),
                    external_id: p.get("ExternalId"),
                    tags: p
                        .tags("Tags")
                        .into_iter()
                        .map(|(key, value)| ferrokms_iam::Tag { key, value })
                        .collect(),
                    transitive_tag_keys: p.list("TransitiveTagKeys"),
                    source_identity: p.get("SourceIdentity"),
                },
            )?;
            credentials_xml(&mut x, &s);
            x.open("AssumedRoleUser")
                .leaf("AssumedRoleId", &s.principal.user_id())
                .leaf("Arn", &s.principal.arn(caller.authz.region.partition()))
                .close("AssumedRoleUser");
            if !s.tags.is_empty() || s.has_session_policies() {
                // The share of the packed-policy quota, as AWS reports it:
                // here, of the largest token (which carries them).
                let max = ferrokms_iam::session_token::MAX_TOKEN_CHARS;
                x.leaf(
                    "PackedPolicySize",
                    &(s.token.len() * 100 / max).clamp(1, 100).to_string(),
                );
            }
            if let Some(si) = &s.source_identity {
                x.leaf("SourceIdentity", si);
            }
        }
        "GetSessionToken" => {
            if caller.is_temporary() {
                return Err(QueryError::new(
                    "AccessDenied",
                    403,
                    "Cannot call GetSessionToken with session credentials",
                ));
            }
            let s = dir.get_session_token(caller, p.u32("DurationSeconds")?)?;
            credentials_xml(&mut x, &s);
        }
        other => {
            return Err(QueryError::new(
                "InvalidAction",
                400,
                format!("Could not find operation {other} for version 2011-06-15"),
            ))
        }
    }
    Ok(x.into_string())
}
