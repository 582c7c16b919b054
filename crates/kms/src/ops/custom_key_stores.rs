//! The custom key store operations, answered as AWS answers an account that
//! has no custom key store: ferrokms cannot create one (CreateCustomKeyStore
//! stays unsupported), so DescribeCustomKeyStores lists none and every store
//! a request names is `CustomKeyStoreNotFoundException`, after the caller's
//! authorization (IAM policies, resource `*`).

use ferrokms_policy::Context;

use crate::api::*;
use crate::ops::page;
use crate::{Caller, Kms, KmsError};

/// The answer for a custom key store id or name: none exists.
pub(crate) fn no_such_store(what: &str) -> KmsError {
    KmsError::CustomKeyStoreNotFound(format!("Custom key store {what} does not exist."))
}

impl Kms {
    /// DescribeCustomKeyStores: an empty list, or NotFound for the store named.
    pub fn describe_custom_key_stores(
        &self,
        caller: &Caller,
        req: DescribeCustomKeyStoresRequest,
    ) -> Result<DescribeCustomKeyStoresResponse, KmsError> {
        self.authorize_identity_only(caller, "DescribeCustomKeyStores", "*", Context::new())?;
        if let Some(named) = req.custom_key_store_id.or(req.custom_key_store_name) {
            return Err(no_such_store(&named));
        }
        let (custom_key_stores, next) = page(
            Vec::<CustomKeyStore>::new(),
            |s| match *s {},
            req.limit,
            100,
            1000,
            req.marker.as_deref(),
        )?;
        Ok(DescribeCustomKeyStoresResponse {
            custom_key_stores,
            truncated: next.is_some(),
            next_marker: next,
        })
    }

    /// ConnectCustomKeyStore
    pub fn connect_custom_key_store(
        &self,
        caller: &Caller,
        req: CustomKeyStoreIdRequest,
    ) -> Result<Empty, KmsError> {
        self.named_store(caller, "ConnectCustomKeyStore", &req)
    }

    /// DisconnectCustomKeyStore
    pub fn disconnect_custom_key_store(
        &self,
        caller: &Caller,
        req: CustomKeyStoreIdRequest,
    ) -> Result<Empty, KmsError> {
        self.named_store(caller, "DisconnectCustomKeyStore", &req)
    }

    /// DeleteCustomKeyStore
    pub fn delete_custom_key_store(
        &self,
        caller: &Caller,
        req: CustomKeyStoreIdRequest,
    ) -> Result<Empty, KmsError> {
        self.named_store(caller, "DeleteCustomKeyStore", &req)
    }

    /// UpdateCustomKeyStore
    pub fn update_custom_key_store(
        &self,
        caller: &Caller,
        req: CustomKeyStoreIdRequest,
    ) -> Result<Empty, KmsError> {
        self.named_store(caller, "UpdateCustomKeyStore", &req)
    }

    /// An operation on one named store: authorized, then not found.
    fn named_store(
        &self,
        caller: &Caller,
        action: &str,
        req: &CustomKeyStoreIdRequest,
    ) -> Result<Empty, KmsError> {
        self.authorize_identity_only(caller, action, "*", Context::new())?;
        Err(no_such_store(&req.custom_key_store_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_custom_key_store_serializes_as_an_empty_list() {
        let out = DescribeCustomKeyStoresResponse {
            custom_key_stores: Vec::new(),
            next_marker: None,
            truncated: false,
        };
        assert_eq!(
            serde_json::to_string(&out).unwrap(),
            r#"{"CustomKeyStores":[],"Truncated":false}"#
        );
    }

    #[test]
    fn a_named_store_is_custom_key_store_not_found() {
        assert_eq!(
            no_such_store("cks-1234567890abcdef0").code(),
            "CustomKeyStoreNotFoundException"
        );
    }
}
