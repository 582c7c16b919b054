//! EnableKeyRotation, DisableKeyRotation, GetKeyRotationStatus. The setting
//! is stored; performing rotations on schedule is the lifecycle work.

use crate::api::*;
use crate::ids::Accepts;
use crate::model::{KeyRecord, KeySpec, KeyState, Origin};
use crate::ops::require_not_pending_deletion;
use crate::{Caller, Kms, KmsError};

const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// Automatic rotation exists only for symmetric keys with AWS_KMS origin.
fn check_rotatable(r: &KeyRecord) -> Result<(), KmsError> {
    if r.key_spec != KeySpec::SymmetricDefault || r.origin != Origin::AwsKms {
        return Err(KmsError::UnsupportedOperation(format!(
            "{} does not support automatic key rotation: only symmetric encryption keys with AWS_KMS origin rotate.",
            r.arn()
        )));
    }
    if r.state == KeyState::Disabled {
        return Err(KmsError::Disabled(format!("{} is disabled.", r.arn())));
    }
    require_not_pending_deletion(r)?;
    Ok(())
}

impl Kms {
    /// EnableKeyRotation: 90 to 2560 days, 365 by default.
    pub fn enable_key_rotation(
        &self,
        caller: &Caller,
        req: EnableKeyRotationRequest,
    ) -> Result<Empty, KmsError> {
        let mut cond = ferrokms_policy::Context::new();
        cond.insert(
            "kms:RotationPeriodInDays",
            i64::from(req.rotation_period_in_days.unwrap_or(365)),
        );
        let key = self.resolve_with(
            caller,
            &req.key_id,
            Accepts::KeyOnly,
            "EnableKeyRotation",
            cond,
        )?;
        let period = req.rotation_period_in_days.unwrap_or(365);
        self.update_key(&key.record.addr, |r| {
            crate::ops::require_customer_managed(r)?;
            check_rotatable(r)?;
            r.rotation.enabled = true;
            r.rotation.period_days = period;
            Ok(())
        })?;
        Ok(Empty {})
    }

    /// DisableKeyRotation
    pub fn disable_key_rotation(
        &self,
        caller: &Caller,
        req: DisableKeyRotationRequest,
    ) -> Result<Empty, KmsError> {
        let key = self.resolve(caller, &req.key_id, Accepts::KeyOnly, "DisableKeyRotation")?;
        self.update_key(&key.record.addr, |r| {
            crate::ops::require_customer_managed(r)?;
            check_rotatable(r)?;
            r.rotation.enabled = false;
            Ok(())
        })?;
        Ok(Empty {})
    }

    /// GetKeyRotationStatus: reads false while the key is pending deletion.
    pub fn get_key_rotation_status(
        &self,
        caller: &Caller,
        req: GetKeyRotationStatusRequest,
    ) -> Result<GetKeyRotationStatusResponse, KmsError> {
        let key = self.resolve(
            caller,
            &req.key_id,
            Accepts::KeyOnly,
            "GetKeyRotationStatus",
        )?;
        let r = &key.record;
        if r.origin == Origin::External {
            return Err(KmsError::UnsupportedOperation(format!(
                "{} origin is EXTERNAL which is not valid for this operation.",
                r.arn()
            )));
        }
        let enabled = r.rotation.enabled && r.state != KeyState::PendingDeletion;
        let last = r
            .materials
            .last()
            .map(|m| m.created_ms)
            .unwrap_or(r.created_ms);
        Ok(GetKeyRotationStatusResponse {
            key_rotation_enabled: enabled,
            key_id: r.arn(),
            rotation_period_in_days: r.rotation.enabled.then_some(r.rotation.period_days),
            next_rotation_date: enabled.then(|| {
                crate::model::ms_to_epoch_seconds(last + i64::from(r.rotation.period_days) * DAY_MS)
            }),
        })
    }
}
