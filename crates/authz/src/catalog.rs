//! The operation catalog: what each operation of each service needs from
//! the request pipeline. One table per service (`ferrokms_kms::catalog`,
//! `ferrokms_iam::catalog`, `ferrokms_analyzer::catalog`), each checked by a test against the service's
//! model; the pipeline, the cluster lock, the metrics and the cross-account
//! rule all read the table instead of keeping lists of their own.

/// The services on the one endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Service {
    /// AWS Key Management Service.
    Kms,
    /// AWS Identity and Access Management.
    Iam,
    /// AWS Security Token Service.
    Sts,
    /// IAM Access Analyzer (REST-JSON, signing name `access-analyzer`).
    AccessAnalyzer,
    /// AWS CloudTrail's event history (AWS JSON 1.1, signing name
    /// `cloudtrail`): LookupEvents over the audit trail.
    CloudTrail,
}

impl Service {
    /// The action prefix and SigV4 signing name.
    pub fn prefix(self) -> &'static str {
        match self {
            Service::Kms => "kms",
            Service::Iam => "iam",
            Service::Sts => "sts",
            Service::AccessAnalyzer => "access-analyzer",
            Service::CloudTrail => "cloudtrail",
        }
    }
}

/// What an operation acts on, as its IAM action's resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    /// No resource: the action is authorized on `*` (ListKeys, CreateKey).
    None,
    /// A KMS key.
    Key,
    /// A KMS alias and the key it names.
    AliasAndKey,
    /// An IAM user (by name or, absent, the caller).
    User,
    /// An IAM role, by name.
    Role,
    /// An IAM group, by name.
    Group,
    /// A customer-managed policy, by ARN.
    Policy,
    /// An IAM instance profile, by name.
    InstanceProfile,
    /// Every entity of a kind in the caller's account (`List*`).
    AccountEntities,
    /// An IAM Access Analyzer analyzer, by name
    /// (`arn:aws:access-analyzer:REGION:ACCOUNT:analyzer/NAME`).
    Analyzer,
}

/// One operation of a service.
#[derive(Debug, Clone, Copy)]
pub struct Operation {
    /// The service the operation belongs to.
    pub service: Service,
    /// The operation's name in the service model.
    pub name: &'static str,
    /// The IAM actions it is authorized by, in the order they are checked
    /// (AssumeRole with tags also needs sts:TagSession: those that depend
    /// on the request are named in `conditional_actions`).
    pub action: &'static str,
    /// Actions checked only when the request asks for what they cover (see `action`).
    pub conditional_actions: &'static [&'static str],
    /// What the action is authorized on.
    pub resource: Resource,
    /// Condition keys the operation itself sets (beyond the request-wide
    /// and principal keys every request has). A trailing `/` means a
    /// family (`aws:RequestTag/`).
    pub condition_keys: &'static [&'static str],
    /// May act on a resource of another account (KMS's cryptographic
    /// operations, grants, DescribeKey...). Every IAM operation: no.
    pub cross_account: bool,
    /// Changes nothing: runs without the cluster write lock, and (KMS) on
    /// the async workers.
    pub reads_only: bool,
    /// Runs on a blocking thread although it changes nothing (RSA key pair
    /// generation takes seconds); every operation that writes does too.
    pub slow: bool,
    /// A grant can allow it (KMS grant operations).
    pub grant_operation: bool,
    /// Counted by GetKeyLastUsage (KMS).
    pub counts_for_last_usage: bool,
}

impl Operation {
    /// The base row: same-account, changing state, no conditions.
    pub const fn new(service: Service, name: &'static str, action: &'static str) -> Self {
        Operation {
            service,
            name,
            action,
            conditional_actions: &[],
            resource: Resource::None,
            condition_keys: &[],
            cross_account: false,
            reads_only: false,
            slow: false,
            grant_operation: false,
            counts_for_last_usage: false,
        }
    }

    /// The row with its resource set.
    pub const fn on(mut self, resource: Resource) -> Self {
        self.resource = resource;
        self
    }

    /// The row with the condition keys the operation sets.
    pub const fn keys(mut self, keys: &'static [&'static str]) -> Self {
        self.condition_keys = keys;
        self
    }

    /// The row with its conditional actions.
    pub const fn also(mut self, actions: &'static [&'static str]) -> Self {
        self.conditional_actions = actions;
        self
    }

    /// The row, allowed to act on another account's resource.
    pub const fn cross_account(mut self) -> Self {
        self.cross_account = true;
        self
    }

    /// The row, marked as changing nothing.
    pub const fn reads_only(mut self) -> Self {
        self.reads_only = true;
        self
    }

    /// The row, marked slow (run on a blocking thread even though it reads only).
    pub const fn slow(mut self) -> Self {
        self.slow = true;
        self
    }

    /// Whether the server runs it off the async workers: it writes to the
    /// store (which blocks), or it is slow.
    pub fn runs_blocking(&self) -> bool {
        !self.reads_only || self.slow
    }

    /// The row, marked as allowable by a grant.
    pub const fn grant_operation(mut self) -> Self {
        self.grant_operation = true;
        self
    }

    /// The row, marked as counted by GetKeyLastUsage.
    pub const fn counts_for_last_usage(mut self) -> Self {
        self.counts_for_last_usage = true;
        self
    }

    /// Whether `key` (as a policy names it) is one of the operation's own
    /// condition keys, a family member included.
    pub fn sets_key(&self, key: &str) -> bool {
        self.condition_keys.iter().any(|k| {
            if k.ends_with('/') {
                key.len() > k.len()
                    && key.is_char_boundary(k.len())
                    && key[..k.len()].eq_ignore_ascii_case(k)
            } else {
                key.eq_ignore_ascii_case(k)
            }
        })
    }
}

/// Finds an operation in a catalog by its exact name. INVARIANT: every
/// catalog is sorted by name (each service's tests check it), so this is a
/// binary search: it runs on every request.
pub fn find<'a>(catalog: &'a [Operation], name: &str) -> Option<&'a Operation> {
    catalog
        .binary_search_by(|o| o.name.cmp(name))
        .ok()
        .map(|i| &catalog[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    const CATALOG: &[Operation] = &[
        Operation::new(Service::Iam, "A", "iam:A").keys(&["aws:RequestTag/", "iam:PolicyARN"]),
        Operation::new(Service::Iam, "B", "iam:B").reads_only(),
        Operation::new(Service::Kms, "C", "kms:C").slow(),
    ];

    #[test]
    fn a_key_family_covers_its_members_and_nothing_else() {
        let a = find(CATALOG, "A").expect("A");
        assert!(a.sets_key("aws:RequestTag/team"));
        assert!(a.sets_key("AWS:requesttag/Team"));
        assert!(!a.sets_key("aws:RequestTag/"));
        assert!(!a.sets_key("aws:RequestTagX"));
        assert!(a.sets_key("iam:policyarn"));
        assert!(!a.sets_key("iam:PolicyARN/x"));
    }

    #[test]
    fn operations_are_found_by_exact_name_and_writes_run_blocking() {
        assert!(find(CATALOG, "a").is_none());
        assert!(find(CATALOG, "D").is_none());
        assert!(find(CATALOG, "A").is_some_and(super::Operation::runs_blocking));
        assert!(find(CATALOG, "B").is_some_and(|o| !o.runs_blocking()));
        assert!(find(CATALOG, "C").is_some_and(super::Operation::runs_blocking));
    }
}
