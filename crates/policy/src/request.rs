//! The request being authorised: who (principal), what (action), on what (resource), and the
//! request context.

use crate::error::PolicyError;
use crate::ids::Action;
use crate::value::{Context, ContextValue};
use ferrokms_types::{AccountId, Arn};

/// What kind of caller made the request. The kind decides which policy principals match it
/// and which same-account rules apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrincipalKind {
    /// The account's root user (`arn:aws:iam::ACCT:root`).
    Root,
    /// An IAM user (`arn:aws:iam::ACCT:user/PATH/NAME`).
    IamUser {
        /// The user's name.
        name: String,
    },
    /// A role session (`arn:aws:sts::ACCT:assumed-role/ROLE/SESSION`). The session ARN omits
    /// the role's path, so the role ARN is carried separately: a role ARN in a `Principal`
    /// matches every session of that role.
    AssumedRole {
        /// The role's ARN, with its path when known.
        role_arn: String,
        /// False when `role_arn` was derived from the session ARN (path unknown); role ARNs in
        /// policies are then compared by account and role name only.
        role_arn_known: bool,
        /// The role's name.
        role_name: String,
        /// The session name the role was assumed with.
        session_name: String,
    },
    /// A federated user from GetFederationToken (`arn:aws:sts::ACCT:federated-user/NAME`).
    FederatedUser {
        /// The federated user's name.
        name: String,
    },
    /// An AWS service principal (`ec2.amazonaws.com`).
    Service {
        /// The service principal's name.
        name: String,
    },
    /// An unauthenticated caller.
    Anonymous,
}

/// The caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestPrincipal {
    arn: String,
    account: Option<AccountId>,
    kind: PrincipalKind,
    unique_id: Option<String>,
    federated_provider: Option<String>,
}

impl RequestPrincipal {
    /// Classifies a caller ARN: root, IAM user, assumed-role session, or federated user.
    /// Also accepts a bare 12-digit account ID (the root user), a service principal name
    /// (`something.amazonaws.com`) and `anonymous`.
    pub fn from_arn(s: &str) -> Result<Self, PolicyError> {
        let bad = |reason| PolicyError::InvalidRequestPrincipal {
            value: s.to_string(),
            reason,
        };
        if s == "anonymous" || s == "*" {
            return Ok(Self::anonymous());
        }
        if let Ok(acct) = AccountId::parse(s) {
            return Ok(Self::root(acct));
        }
        if !s.starts_with("arn:") {
            if s.contains('.') && !s.contains(char::is_whitespace) && !s.contains(':') {
                return Ok(Self::service(s));
            }
            return Err(bad(
                "expected an IAM/STS ARN, an account ID, a service principal or \"anonymous\"",
            ));
        }
        let arn = Arn::parse(s).map_err(|_| bad("not an ARN"))?;
        let account = arn
            .account_id()
            .ok_or_else(|| bad("the ARN's account is not a 12-digit account ID"))?;
        let partition = arn.partition();
        let resource = arn.resource();
        let kind = match arn.service() {
            "iam" if resource == "root" => PrincipalKind::Root,
            "iam" if resource.starts_with("user/") => {
                let name = resource.rsplit('/').next().unwrap_or_default();
                if name.is_empty() {
                    return Err(bad("the user ARN has no user name"));
                }
                PrincipalKind::IamUser {
                    name: name.to_string(),
                }
            }
            "sts" if resource.starts_with("assumed-role/") => {
                let mut it = resource.split('/').skip(1);
                match (it.next(), it.next(), it.next()) {
                    (Some(role), Some(session), None)
                        if !role.is_empty() && !session.is_empty() =>
                    {
                        PrincipalKind::AssumedRole {
                            role_arn: format!("arn:{partition}:iam::{account}:role/{role}"),
                            role_arn_known: false,
                            role_name: role.to_string(),
                            session_name: session.to_string(),
                        }
                    }
                    _ => return Err(bad("expected assumed-role/ROLE/SESSION")),
                }
            }
            "sts" if resource.starts_with("federated-user/") => {
                let name = &resource["federated-user/".len()..];
                if name.is_empty() {
                    return Err(bad("the federated-user ARN has no name"));
                }
                PrincipalKind::FederatedUser {
                    name: name.to_string(),
                }
            }
            _ => return Err(bad("not a root, user, assumed-role or federated-user ARN")),
        };
        Ok(RequestPrincipal {
            arn: s.to_string(),
            account: Some(account),
            kind,
            unique_id: None,
            federated_provider: None,
        })
    }

    /// The root user of `account`.
    pub fn root(account: AccountId) -> Self {
        RequestPrincipal {
            arn: account.iam_arn("root"),
            account: Some(account),
            kind: PrincipalKind::Root,
            unique_id: None,
            federated_provider: None,
        }
    }

    /// An AWS service principal such as `cloudtrail.amazonaws.com`.
    pub fn service(name: &str) -> Self {
        RequestPrincipal {
            arn: name.to_string(),
            account: None,
            kind: PrincipalKind::Service {
                name: name.to_string(),
            },
            unique_id: None,
            federated_provider: None,
        }
    }

    /// An unauthenticated caller; only `"*"` principals match it.
    pub fn anonymous() -> Self {
        RequestPrincipal {
            arn: "anonymous".to_string(),
            account: None,
            kind: PrincipalKind::Anonymous,
            unique_id: None,
            federated_provider: None,
        }
    }

    /// Sets the full role ARN (with path) of an assumed-role session. Ignored for other kinds.
    #[must_use]
    pub fn with_role_arn(mut self, role: &str) -> Self {
        if let PrincipalKind::AssumedRole {
            role_arn,
            role_arn_known,
            ..
        } = &mut self.kind
        {
            *role_arn = role.to_string();
            *role_arn_known = true;
        }
        self
    }

    /// Sets the unique ID (`AIDA...` for users, the role's `AROA...` for sessions), which
    /// policies show in place of a deleted user or role.
    #[must_use]
    pub fn with_unique_id(mut self, id: &str) -> Self {
        self.unique_id = Some(id.to_string());
        self
    }

    /// Sets the identity provider a web-identity or SAML session came through, matched by
    /// `{"Federated": ...}` principals.
    #[must_use]
    pub fn with_federated_provider(mut self, provider: &str) -> Self {
        self.federated_provider = Some(provider.to_string());
        self
    }

    /// The caller ARN as printed in AccessDenied messages (the session ARN for roles).
    pub fn arn(&self) -> &str {
        &self.arn
    }
    /// The caller's account; `None` for service principals and anonymous callers.
    pub fn account(&self) -> Option<&AccountId> {
        self.account.as_ref()
    }
    /// What kind of caller it is.
    pub fn kind(&self) -> &PrincipalKind {
        &self.kind
    }
    /// The unique ID (`AIDA...`, `AROA...`), if set.
    pub fn unique_id(&self) -> Option<&str> {
        self.unique_id.as_deref()
    }
    /// The identity provider of a federated session, if set.
    pub fn federated_provider(&self) -> Option<&str> {
        self.federated_provider.as_deref()
    }

    /// The global condition keys IAM derives from the caller (`aws:PrincipalArn`,
    /// `aws:PrincipalAccount`, `aws:PrincipalType`, `aws:username`, `aws:userid`,
    /// `aws:PrincipalIsAWSService`, `aws:PrincipalServiceName`).
    pub fn context_keys(&self) -> Vec<(&'static str, ContextValue)> {
        let mut out: Vec<(&'static str, ContextValue)> = Vec::new();
        let acct = self.account.as_ref().map(|a| a.as_str().to_string());
        let (ptype, principal_arn, userid, username): (
            &str,
            Option<String>,
            Option<String>,
            Option<String>,
        ) = match &self.kind {
            PrincipalKind::Root => ("Account", Some(self.arn.clone()), acct.clone(), None),
            PrincipalKind::IamUser { name } => (
                "User",
                Some(self.arn.clone()),
                self.unique_id.clone(),
                Some(name.clone()),
            ),
            PrincipalKind::AssumedRole {
                role_arn,
                session_name,
                ..
            } => (
                "AssumedRole",
                Some(role_arn.clone()),
                self.unique_id
                    .as_ref()
                    .map(|u| format!("{u}:{session_name}")),
                None,
            ),
            PrincipalKind::FederatedUser { name } => (
                "FederatedUser",
                Some(self.arn.clone()),
                acct.as_ref().map(|a| format!("{a}:{name}")),
                None,
            ),
            PrincipalKind::Service { .. } => ("AWSService", None, None, None),
            PrincipalKind::Anonymous => ("Anonymous", None, Some("anonymous".to_string()), None),
        };
        out.push(("aws:PrincipalType", ContextValue::String(ptype.to_string())));
        if let Some(a) = principal_arn {
            out.push(("aws:PrincipalArn", ContextValue::Arn(a)));
        }
        if let Some(a) = acct {
            out.push(("aws:PrincipalAccount", ContextValue::String(a)));
        }
        if let Some(u) = userid {
            out.push(("aws:userid", ContextValue::String(u)));
        }
        if let Some(u) = username {
            out.push(("aws:username", ContextValue::String(u)));
        }
        let is_service = matches!(self.kind, PrincipalKind::Service { .. });
        out.push(("aws:PrincipalIsAWSService", ContextValue::Bool(is_service)));
        if let PrincipalKind::Service { name } = &self.kind {
            out.push((
                "aws:PrincipalServiceName",
                ContextValue::String(name.clone()),
            ));
        }
        out
    }
}

/// One authorisation question.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// Who is asking.
    pub principal: RequestPrincipal,
    /// The action asked for.
    pub action: Action,
    /// The resource ARN, or `*` for actions that have no resource.
    pub resource: String,
    /// The account that owns the resource (and so its resource-based policy). Taken from the
    /// resource ARN by [`Request::new`]; `None` means "the caller's own account".
    pub resource_account: Option<AccountId>,
    /// The request's condition keys.
    pub context: Context,
}

impl Request {
    /// A request with an empty context; the resource's account is read from its ARN.
    pub fn new(principal: RequestPrincipal, action: Action, resource: &str) -> Self {
        let resource_account = Arn::parse(resource).ok().and_then(|a| a.account_id());
        Self::in_account(principal, action, resource, resource_account)
    }

    /// [`Request::new`] for a caller that already knows the resource's
    /// account (KMS knows its key's): the ARN is not parsed again.
    pub fn in_account(
        principal: RequestPrincipal,
        action: Action,
        resource: &str,
        resource_account: Option<AccountId>,
    ) -> Self {
        Request {
            principal,
            action,
            resource: resource.to_string(),
            resource_account,
            context: Context::new(),
        }
    }

    /// The same request with `context` as its context.
    #[must_use]
    pub fn with_context(mut self, context: Context) -> Self {
        self.context = context;
        self
    }

    /// The same request with the resource's account set (or cleared).
    #[must_use]
    pub fn with_resource_account(mut self, account: Option<AccountId>) -> Self {
        self.resource_account = account;
        self
    }

    /// Adds the caller-derived global keys ([`RequestPrincipal::context_keys`]) that the
    /// context does not already have. Explicit values win, so tests can override them.
    #[must_use]
    pub fn with_principal_context(mut self) -> Self {
        for (k, v) in self.principal.context_keys() {
            if !self.context.contains(k) {
                self.context.insert(k, v);
            }
        }
        self
    }

    /// Whether the caller and the resource are in the same account. A caller or resource
    /// without an account (service principals, `*` resources) counts as same-account.
    pub fn is_same_account(&self) -> bool {
        match (&self.resource_account, self.principal.account()) {
            (Some(r), Some(p)) => r == p,
            _ => true,
        }
    }
}
