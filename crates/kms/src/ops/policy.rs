//! GetKeyPolicy, PutKeyPolicy, ListKeyPolicies. Every key has exactly one
//! policy, named `default`.

use crate::api::*;
use crate::ids::Accepts;
use ferrokms_policy::Context;

use crate::ops::page;
use crate::{Caller, Kms, KmsError};

const POLICY_NAME: &str = "default";

fn check_policy_name(name: Option<&str>) -> Result<(), KmsError> {
    match name {
        None | Some(POLICY_NAME) => Ok(()),
        Some(other) => Err(KmsError::NotFound(format!(
            "No such policy exists: '{other}'. The only key policy name is 'default'."
        ))),
    }
}

impl Kms {
    /// GetKeyPolicy: the stored text, exactly as it was given.
    pub fn get_key_policy(
        &self,
        caller: &Caller,
        req: GetKeyPolicyRequest,
    ) -> Result<GetKeyPolicyResponse, KmsError> {
        check_policy_name(req.policy_name.as_deref())?;
        let key = self.resolve(caller, &req.key_id, Accepts::KeyOnly, "GetKeyPolicy")?;
        Ok(GetKeyPolicyResponse {
            policy: key.record.policy.to_string(),
            policy_name: POLICY_NAME.into(),
        })
    }

    /// PutKeyPolicy (allowed in every key state).
    pub fn put_key_policy(
        &self,
        caller: &Caller,
        req: PutKeyPolicyRequest,
    ) -> Result<Empty, KmsError> {
        check_policy_name(req.policy_name.as_deref())?;
        let mut cond = Context::new();
        if let Some(b) = req.bypass_policy_lockout_safety_check {
            cond.insert("kms:BypassPolicyLockoutSafetyCheck", b);
        }
        let key = self.resolve_with(caller, &req.key_id, Accepts::KeyOnly, "PutKeyPolicy", cond)?;
        let parsed = self.validate_key_policy(&req.policy)?;
        self.check_lockout(
            caller,
            &key.record,
            &parsed,
            req.bypass_policy_lockout_safety_check,
        )?;
        self.update_key(&key.record.addr, |r| {
            crate::ops::require_customer_managed(r)?;
            r.policy = req.policy.into();
            Ok(())
        })?;
        Ok(Empty {})
    }

    /// ListKeyPolicies
    pub fn list_key_policies(
        &self,
        caller: &Caller,
        req: ListKeyPoliciesRequest,
    ) -> Result<ListKeyPoliciesResponse, KmsError> {
        self.resolve(caller, &req.key_id, Accepts::KeyOnly, "ListKeyPolicies")?;
        let (names, next) = page(
            vec![POLICY_NAME.to_string()],
            std::clone::Clone::clone,
            req.limit,
            100,
            1000,
            req.marker.as_deref(),
        )?;
        Ok(ListKeyPoliciesResponse {
            policy_names: names,
            truncated: next.is_some(),
            next_marker: next,
        })
    }
}
