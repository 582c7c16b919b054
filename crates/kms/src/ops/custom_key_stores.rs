//! The custom key store operations, for external key stores (XKS) with
//! public endpoint connectivity: CreateCustomKeyStore, DescribeCustomKeyStores,
//! UpdateCustomKeyStore, ConnectCustomKeyStore, DisconnectCustomKeyStore and
//! DeleteCustomKeyStore, authorized by IAM policies alone (resource `*`, as
//! on AWS: a store is no resource of its own). A store belongs to one
//! account and Region; another account's store is not found.
//!
//! CloudHSM key stores and VPC endpoint service connectivity need AWS
//! infrastructure ferrokms cannot reach: they are answered as AWS answers
//! when that infrastructure cannot be found (docs/xks.md).
//!
//! The proxy credential's secret is stored sealed under the root key (as
//! key material) and is never shown, logged or audited.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use base64::Engine as _;
use ferrokms_policy::Context;
use ferrokms_store::Change;
use ferrokms_types::{AccountId, Region};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::api::*;
use crate::ops::page;
use crate::xks::{self, ProxyTarget, XksFailure};
use crate::{Caller, Kms, KmsError};

/// The store document kind.
pub(crate) const KIND_CUSTOM_KEY_STORE: &str = "kms.custom_key_store";

/// Custom key stores an account may have in a Region (AWS's quota is 10).
const MAX_STORES_PER_ACCOUNT: usize = 10;

/// The answer for a custom key store id or name that names none of the caller's.
pub(crate) fn no_such_store(what: &str) -> KmsError {
    KmsError::CustomKeyStoreNotFound(format!("Custom key store {what} does not exist."))
}

/// `ConnectionStateType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ConnectionState {
    /// Usable: keys in the store encrypt and decrypt.
    Connected,
    /// A connection attempt (its health check) is under way.
    Connecting,
    /// Not connected (new, or disconnected).
    Disconnected,
    /// Being disconnected (ferrokms disconnects at once: never stored).
    Disconnecting,
    /// The last connection attempt failed: see the error code.
    Failed,
}

impl ConnectionState {
    fn as_str(self) -> &'static str {
        match self {
            ConnectionState::Connected => "CONNECTED",
            ConnectionState::Connecting => "CONNECTING",
            ConnectionState::Disconnected => "DISCONNECTED",
            ConnectionState::Disconnecting => "DISCONNECTING",
            ConnectionState::Failed => "FAILED",
        }
    }
}

/// One external key store, as stored (the secret sealed).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StoreRecord {
    pub id: String,
    pub account: AccountId,
    pub region: Region,
    pub name: String,
    pub created_ms: i64,
    pub uri_endpoint: String,
    pub uri_path: String,
    pub access_key_id: String,
    /// The secret, sealed under the root key (base64); additional data is the store id.
    pub sealed_secret: String,
    pub state: ConnectionState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
}

impl std::fmt::Debug for StoreRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreRecord")
            .field("id", &self.id)
            .field("account", &self.account)
            .field("name", &self.name)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

/// A store in memory: its record and the unsealed secret (wiped on drop).
pub(crate) struct LoadedStore {
    pub record: StoreRecord,
    secret: Zeroizing<String>,
}

impl LoadedStore {
    fn target(&self) -> ProxyTarget<'_> {
        ProxyTarget {
            endpoint: &self.record.uri_endpoint,
            path: &self.record.uri_path,
            access_key_id: &self.record.access_key_id,
            secret: &self.secret,
            region: self.record.region.as_str(),
        }
    }

    fn entry(&self) -> CustomKeyStore {
        let r = &self.record;
        CustomKeyStore {
            custom_key_store_id: r.id.clone(),
            custom_key_store_name: r.name.clone(),
            connection_state: r.state.as_str().to_owned(),
            connection_error_code: match r.state {
                ConnectionState::Failed => r.error_code.clone(),
                _ => None,
            },
            creation_date: crate::model::ms_to_epoch_seconds(r.created_ms),
            custom_key_store_type: "EXTERNAL_KEY_STORE".into(),
            xks_proxy_configuration: XksProxyConfiguration {
                connectivity: "PUBLIC_ENDPOINT".into(),
                access_key_id: r.access_key_id.clone(),
                uri_endpoint: r.uri_endpoint.clone(),
                uri_path: r.uri_path.clone(),
            },
        }
    }
}

fn seal_aad(id: &str) -> Vec<u8> {
    format!("{KIND_CUSTOM_KEY_STORE}/{id}").into_bytes()
}

/// Unseals a stored record (at load, and from another node's change).
pub(crate) fn load_store(
    sealer: &ferrokms_store::Sealer,
    id: &str,
    body: &[u8],
) -> Result<Arc<LoadedStore>, KmsError> {
    let mut record: StoreRecord = serde_json::from_slice(body).map_err(|e| {
        KmsError::Internal(format!("stored custom key store {id} is unreadable: {e}"))
    })?;
    let sealed = base64::engine::general_purpose::STANDARD
        .decode(&record.sealed_secret)
        .map_err(|_| KmsError::Internal(format!("stored custom key store {id} is unreadable")))?;
    let secret = sealer.open(&seal_aad(&record.id), &sealed).map_err(|_| {
        KmsError::Internal(format!(
            "the credential of custom key store {id} does not unseal (another root key?)"
        ))
    })?;
    let secret =
        Zeroizing::new(String::from_utf8(secret.to_vec()).map_err(|_| {
            KmsError::Internal(format!("stored custom key store {id} is unreadable"))
        })?);
    // A node that stopped mid-connect left no CONNECTING behind (it is
    // never stored), so the record is as it was acknowledged.
    if record.state == ConnectionState::Connecting {
        record.state = ConnectionState::Disconnected;
    }
    Ok(Arc::new(LoadedStore { record, secret }))
}

fn put_store_change(r: &StoreRecord) -> Result<Change, KmsError> {
    Ok(Change::Put {
        kind: KIND_CUSTOM_KEY_STORE,
        id: r.id.clone(),
        body: serde_json::to_vec(r).map_err(|e| KmsError::Internal(e.to_string()))?,
    })
}

/// A new store id: `cks-` and 17 hex digits, as AWS's.
fn new_store_id() -> Result<String, KmsError> {
    let bytes = crate::crypto::random_bytes(9)?;
    let hex = hex::encode(bytes.as_slice());
    Ok(format!("cks-{}", &hex[..17]))
}

fn invalid_state(msg: &str) -> KmsError {
    KmsError::CustomKeyStoreInvalidState(msg.to_owned())
}

fn not_valid_for_xks(member: &str) -> KmsError {
    KmsError::Validation(format!(
        "{member} is not valid for a custom key store of type EXTERNAL_KEY_STORE."
    ))
}

impl Kms {
    /// The caller's store with this id.
    pub(crate) fn store_of(
        &self,
        account: &AccountId,
        region: &Region,
        id: &str,
    ) -> Result<Arc<LoadedStore>, KmsError> {
        self.state
            .read()
            .custom_key_stores
            .get(id)
            .filter(|s| &s.record.account == account && &s.record.region == region)
            .cloned()
            .ok_or_else(|| no_such_store(id))
    }

    /// Installs the HTTPS client that reaches proxies (the server does, at start).
    pub fn set_xks_transport(&self, t: Arc<dyn xks::XksTransport>) {
        *self.xks_transport.write() = Some(t);
    }

    /// Whether any custom key store exists: the server then runs the
    /// cryptographic operations on its blocking pool, since one may wait for
    /// a proxy.
    pub fn has_custom_key_stores(&self) -> bool {
        self.has_stores.load(Ordering::Relaxed)
    }

    pub(crate) fn refresh_has_stores(&self) {
        let any = !self.state.read().custom_key_stores.is_empty();
        self.has_stores.store(any, Ordering::Relaxed);
    }

    /// The proxy's GetHealthStatus for `store`, asked in the name of
    /// `operation` (Create, Update and Connect check the proxy first).
    fn proxy_health(&self, store: &LoadedStore, operation: &str) -> Result<(), XksFailure> {
        let transport = self.transport();
        xks::health(
            transport.as_deref(),
            &store.target(),
            operation,
            &crate::usage::current_request_id(),
        )
    }

    fn transport(&self) -> Option<Arc<dyn xks::XksTransport>> {
        self.xks_transport.read().clone()
    }

    /// Replaces a store durably, then in memory. The caller holds the writer lock.
    fn put_store_locked(&self, store: Arc<LoadedStore>) -> Result<(), KmsError> {
        self.store.apply(&[put_store_change(&store.record)?])?;
        self.state
            .write()
            .custom_key_stores
            .insert(store.record.id.clone(), store);
        self.refresh_has_stores();
        Ok(())
    }

    fn with_record(store: &LoadedStore, record: StoreRecord) -> Arc<LoadedStore> {
        Arc::new(LoadedStore {
            record,
            secret: store.secret.clone(),
        })
    }

    /// Uniqueness within the account and Region, as AWS documents it: the
    /// name (CustomKeyStoreNameInUseException) and the endpoint with the
    /// path (XksProxyUriInUseException). Another account may name the same
    /// proxy. (XksProxyUriEndpointInUseException concerns VPC endpoint
    /// service connectivity, which ferrokms has not: never raised.)
    fn check_unique(
        &self,
        caller: &Caller,
        except: Option<&str>,
        name: Option<&str>,
        endpoint: &str,
        path: &str,
    ) -> Result<(), KmsError> {
        let state = self.state.read();
        for s in state.custom_key_stores.values() {
            let r = &s.record;
            if Some(r.id.as_str()) == except
                || r.region != caller.region
                || r.account != caller.account
            {
                continue;
            }
            if name == Some(r.name.as_str()) {
                return Err(KmsError::CustomKeyStoreNameInUse(format!(
                    "Custom key store name {} is already in use.",
                    r.name
                )));
            }
            if r.uri_endpoint == endpoint && r.uri_path == path {
                return Err(KmsError::XksProxyUriInUse(format!(
                    "The XksProxyUriEndpoint and XksProxyUriPath {endpoint}{path} are already associated with another external key store in this account and Region."
                )));
            }
        }
        Ok(())
    }

    /// CreateCustomKeyStore
    pub fn create_custom_key_store(
        &self,
        caller: &Caller,
        mut req: CreateCustomKeyStoreRequest,
    ) -> Result<CreateCustomKeyStoreResponse, KmsError> {
        self.authorize_identity_only(caller, "CreateCustomKeyStore", "*", Context::new())?;
        match req
            .custom_key_store_type
            .as_deref()
            .unwrap_or("AWS_CLOUDHSM")
        {
            "EXTERNAL_KEY_STORE" => {}
            _ => {
                // No CloudHSM cluster is reachable from ferrokms: every
                // cluster id is one that cannot be found.
                let id = req.cloud_hsm_cluster_id.as_deref().unwrap_or("");
                return Err(KmsError::CloudHsmClusterNotFound(format!(
                    "Cannot find the CloudHSM cluster with cluster ID {id}. ferrokms has no CloudHSM key stores."
                )));
            }
        }
        if req.cloud_hsm_cluster_id.is_some() {
            return Err(not_valid_for_xks("CloudHsmClusterId"));
        }
        if req.trust_anchor_certificate.is_some() {
            return Err(not_valid_for_xks("TrustAnchorCertificate"));
        }
        if req.key_store_password.is_some() {
            return Err(not_valid_for_xks("KeyStorePassword"));
        }
        let missing = |m: &str| {
            KmsError::Validation(format!(
                "{m} is required for a custom key store of type EXTERNAL_KEY_STORE."
            ))
        };
        match req.xks_proxy_connectivity.as_deref() {
            Some("PUBLIC_ENDPOINT") => {
                if req.xks_proxy_vpc_endpoint_service_name.is_some() {
                    return Err(KmsError::Validation(
                        "XksProxyVpcEndpointServiceName is valid only with XksProxyConnectivity VPC_ENDPOINT_SERVICE.".into(),
                    ));
                }
            }
            Some(_) => {
                // VPC_ENDPOINT_SERVICE: ferrokms runs outside any VPC and
                // cannot reach or verify an endpoint service.
                let name = req
                    .xks_proxy_vpc_endpoint_service_name
                    .as_deref()
                    .ok_or_else(|| missing("XksProxyVpcEndpointServiceName"))?;
                return Err(KmsError::XksProxyVpcEndpointServiceNotFound(format!(
                    "The VPC endpoint service {name} cannot be found: ferrokms reaches external key store proxies only through public endpoints (XksProxyConnectivity PUBLIC_ENDPOINT)."
                )));
            }
            None => return Err(missing("XksProxyConnectivity")),
        }
        let endpoint = req
            .xks_proxy_uri_endpoint
            .take()
            .ok_or_else(|| missing("XksProxyUriEndpoint"))?;
        let path = req
            .xks_proxy_uri_path
            .take()
            .ok_or_else(|| missing("XksProxyUriPath"))?;
        let mut cred = req
            .xks_proxy_authentication_credential
            .take()
            .ok_or_else(|| missing("XksProxyAuthenticationCredential"))?;
        let secret = std::mem::take(&mut cred.raw_secret_access_key.0);
        self.check_unique(
            caller,
            None,
            Some(&req.custom_key_store_name),
            &endpoint,
            &path,
        )?;
        {
            let state = self.state.read();
            let count = state
                .custom_key_stores
                .values()
                .filter(|s| s.record.account == caller.account && s.record.region == caller.region)
                .count();
            if count >= MAX_STORES_PER_ACCOUNT {
                return Err(KmsError::LimitExceeded(format!(
                    "An account may have at most {MAX_STORES_PER_ACCOUNT} custom key stores in a Region."
                )));
            }
        }
        let id = new_store_id()?;
        let sealed = self
            .sealer
            .seal(&seal_aad(&id), secret.as_bytes())
            .map_err(|e| KmsError::Internal(e.to_string()))?;
        let store = Arc::new(LoadedStore {
            record: StoreRecord {
                id: id.clone(),
                account: caller.account.clone(),
                region: caller.region.clone(),
                name: req.custom_key_store_name.clone(),
                created_ms: self.clock.now_ms(),
                uri_endpoint: endpoint,
                uri_path: path,
                access_key_id: cred.access_key_id.clone(),
                sealed_secret: base64::engine::general_purpose::STANDARD.encode(sealed),
                state: ConnectionState::Disconnected,
                error_code: None,
            },
            secret,
        });
        // The proxy must answer before the store exists (as on AWS).
        self.proxy_health(&store, "CreateCustomKeyStore")
            .map_err(XksFailure::store_error)?;
        let _w = self.writer.lock();
        // Checked again under the lock: another request may have taken the name.
        self.check_unique(
            caller,
            None,
            Some(&store.record.name),
            &store.record.uri_endpoint,
            &store.record.uri_path,
        )?;
        self.put_store_locked(store)?;
        Ok(CreateCustomKeyStoreResponse {
            custom_key_store_id: id,
        })
    }

    /// DescribeCustomKeyStores: the caller's stores in the Region, or the one named.
    pub fn describe_custom_key_stores(
        &self,
        caller: &Caller,
        req: DescribeCustomKeyStoresRequest,
    ) -> Result<DescribeCustomKeyStoresResponse, KmsError> {
        self.authorize_identity_only(caller, "DescribeCustomKeyStores", "*", Context::new())?;
        if req.custom_key_store_id.is_some() && req.custom_key_store_name.is_some() {
            return Err(KmsError::Validation(
                "You cannot specify both CustomKeyStoreId and CustomKeyStoreName.".into(),
            ));
        }
        let stores: Vec<CustomKeyStore> = self
            .state
            .read()
            .custom_key_stores
            .values()
            .filter(|s| s.record.account == caller.account && s.record.region == caller.region)
            .filter(|s| {
                req.custom_key_store_id
                    .as_deref()
                    .is_none_or(|id| s.record.id == id)
                    && req
                        .custom_key_store_name
                        .as_deref()
                        .is_none_or(|n| s.record.name == n)
            })
            .map(|s| s.entry())
            .collect();
        if stores.is_empty() {
            if let Some(named) = req.custom_key_store_id.or(req.custom_key_store_name) {
                return Err(no_such_store(&named));
            }
        }
        let (custom_key_stores, next) = page(
            stores,
            |s| s.custom_key_store_id.clone(),
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

    /// ConnectCustomKeyStore: a health check through the proxy; the store
    /// is CONNECTING meanwhile, then CONNECTED, or FAILED with its
    /// ConnectionErrorCode. (AWS returns before the check ends; ferrokms's
    /// check is bounded by the proxy timeout, so it answers after it, and
    /// DescribeCustomKeyStores shows the outcome at once.)
    pub fn connect_custom_key_store(
        &self,
        caller: &Caller,
        req: CustomKeyStoreIdRequest,
    ) -> Result<Empty, KmsError> {
        self.authorize_identity_only(caller, "ConnectCustomKeyStore", "*", Context::new())?;
        let store = {
            let _w = self.writer.lock();
            let store = self.store_of(&caller.account, &caller.region, &req.custom_key_store_id)?;
            match store.record.state {
                ConnectionState::Connected | ConnectionState::Connecting => return Ok(Empty {}),
                ConnectionState::Failed | ConnectionState::Disconnecting => {
                    return Err(invalid_state(&format!(
                        "Custom key store {} is in state {}: disconnect it before connecting it again.",
                        store.record.id,
                        store.record.state.as_str()
                    )))
                }
                ConnectionState::Disconnected => {}
            }
            // CONNECTING is shown, never stored: a stop mid-check leaves
            // the store DISCONNECTED.
            let mut record = store.record.clone();
            record.state = ConnectionState::Connecting;
            let connecting = Self::with_record(&store, record);
            self.state
                .write()
                .custom_key_stores
                .insert(connecting.record.id.clone(), connecting.clone());
            connecting
        };
        let outcome = self.proxy_health(&store, "ConnectCustomKeyStore");
        let _w = self.writer.lock();
        let current = self.store_of(&caller.account, &caller.region, &req.custom_key_store_id)?;
        if current.record.state != ConnectionState::Connecting {
            // Disconnected (or deleted and re-made) meanwhile: that wins.
            return Ok(Empty {});
        }
        let mut record = current.record.clone();
        match outcome {
            Ok(()) => {
                record.state = ConnectionState::Connected;
                record.error_code = None;
            }
            Err(f) => {
                record.state = ConnectionState::Failed;
                record.error_code = Some(f.connection_error_code().to_owned());
            }
        }
        let done = Self::with_record(&current, record);
        if let Err(e) = self.put_store_locked(done) {
            // Not stored: back to what is stored.
            let mut back = current.record.clone();
            back.state = ConnectionState::Disconnected;
            self.state
                .write()
                .custom_key_stores
                .insert(back.id.clone(), Self::with_record(&current, back));
            return Err(e);
        }
        Ok(Empty {})
    }

    /// DisconnectCustomKeyStore
    pub fn disconnect_custom_key_store(
        &self,
        caller: &Caller,
        req: CustomKeyStoreIdRequest,
    ) -> Result<Empty, KmsError> {
        self.authorize_identity_only(caller, "DisconnectCustomKeyStore", "*", Context::new())?;
        let _w = self.writer.lock();
        let store = self.store_of(&caller.account, &caller.region, &req.custom_key_store_id)?;
        if matches!(
            store.record.state,
            ConnectionState::Disconnected | ConnectionState::Disconnecting
        ) {
            return Err(invalid_state(&format!(
                "Custom key store {} is already disconnected.",
                store.record.id
            )));
        }
        let mut record = store.record.clone();
        record.state = ConnectionState::Disconnected;
        record.error_code = None;
        self.put_store_locked(Self::with_record(&store, record))?;
        Ok(Empty {})
    }

    /// DeleteCustomKeyStore: only a DISCONNECTED store without KMS keys.
    pub fn delete_custom_key_store(
        &self,
        caller: &Caller,
        req: CustomKeyStoreIdRequest,
    ) -> Result<Empty, KmsError> {
        self.authorize_identity_only(caller, "DeleteCustomKeyStore", "*", Context::new())?;
        let _w = self.writer.lock();
        let store = self.store_of(&caller.account, &caller.region, &req.custom_key_store_id)?;
        if store.record.state != ConnectionState::Disconnected {
            return Err(invalid_state(&format!(
                "Custom key store {} must be disconnected before it is deleted.",
                store.record.id
            )));
        }
        if self.store_has_keys(&store.record.id) {
            return Err(KmsError::CustomKeyStoreHasCmks(format!(
                "Custom key store {} still holds KMS keys: delete them first.",
                store.record.id
            )));
        }
        self.store.apply(&[Change::Delete {
            kind: KIND_CUSTOM_KEY_STORE,
            id: store.record.id.clone(),
        }])?;
        self.state
            .write()
            .custom_key_stores
            .remove(&store.record.id);
        self.refresh_has_stores();
        Ok(Empty {})
    }

    fn store_has_keys(&self, id: &str) -> bool {
        self.state.read().keys.values().any(|k| {
            k.record
                .xks
                .as_ref()
                .is_some_and(|x| x.custom_key_store_id == id)
        })
    }

    /// UpdateCustomKeyStore: the name in any state; the proxy settings only
    /// while DISCONNECTED, checked with a health check before they are kept.
    pub fn update_custom_key_store(
        &self,
        caller: &Caller,
        mut req: UpdateCustomKeyStoreRequest,
    ) -> Result<Empty, KmsError> {
        self.authorize_identity_only(caller, "UpdateCustomKeyStore", "*", Context::new())?;
        if req.cloud_hsm_cluster_id.is_some() {
            return Err(not_valid_for_xks("CloudHsmClusterId"));
        }
        if req.key_store_password.is_some() {
            return Err(not_valid_for_xks("KeyStorePassword"));
        }
        match req.xks_proxy_connectivity.as_deref() {
            None | Some("PUBLIC_ENDPOINT") => {}
            Some(_) => {
                let name = req
                    .xks_proxy_vpc_endpoint_service_name
                    .as_deref()
                    .unwrap_or("(none given)");
                return Err(KmsError::XksProxyVpcEndpointServiceNotFound(format!(
                    "The VPC endpoint service {name} cannot be found: ferrokms reaches external key store proxies only through public endpoints (XksProxyConnectivity PUBLIC_ENDPOINT)."
                )));
            }
        }
        if req.xks_proxy_vpc_endpoint_service_name.is_some() {
            return Err(KmsError::Validation(
                "XksProxyVpcEndpointServiceName is valid only with XksProxyConnectivity VPC_ENDPOINT_SERVICE.".into(),
            ));
        }
        let store = self.store_of(&caller.account, &caller.region, &req.custom_key_store_id)?;
        let proxy_change = req.xks_proxy_uri_endpoint.is_some()
            || req.xks_proxy_uri_path.is_some()
            || req.xks_proxy_authentication_credential.is_some()
            || req.xks_proxy_connectivity.is_some();
        if proxy_change && store.record.state != ConnectionState::Disconnected {
            return Err(invalid_state(&format!(
                "Custom key store {} must be disconnected to change its proxy settings; only its name can change while it is {}.",
                store.record.id,
                store.record.state.as_str()
            )));
        }
        let mut record = store.record.clone();
        let mut secret = store.secret.clone();
        if let Some(n) = req.new_custom_key_store_name.take() {
            record.name = n;
        }
        if let Some(e) = req.xks_proxy_uri_endpoint.take() {
            record.uri_endpoint = e;
        }
        if let Some(p) = req.xks_proxy_uri_path.take() {
            record.uri_path = p;
        }
        if let Some(mut c) = req.xks_proxy_authentication_credential.take() {
            record.access_key_id = c.access_key_id.clone();
            secret = std::mem::take(&mut c.raw_secret_access_key.0);
            let sealed = self
                .sealer
                .seal(&seal_aad(&record.id), secret.as_bytes())
                .map_err(|e| KmsError::Internal(e.to_string()))?;
            record.sealed_secret = base64::engine::general_purpose::STANDARD.encode(sealed);
        }
        self.check_unique(
            caller,
            Some(&record.id),
            Some(&record.name),
            &record.uri_endpoint,
            &record.uri_path,
        )?;
        let updated = Arc::new(LoadedStore { record, secret });
        if proxy_change {
            self.proxy_health(&updated, "UpdateCustomKeyStore")
                .map_err(XksFailure::store_error)?;
        }
        let _w = self.writer.lock();
        let current = self.store_of(&caller.account, &caller.region, &req.custom_key_store_id)?;
        if current.record != store.record {
            return Err(invalid_state(&format!(
                "Custom key store {} changed while it was being updated: retry.",
                store.record.id
            )));
        }
        self.put_store_locked(updated)?;
        Ok(Empty {})
    }

    /// The store of a key in an external key store, if it is usable:
    /// KMSInvalidStateException otherwise (the specification's message for
    /// a store that is not connected).
    pub(crate) fn connected_store(
        &self,
        r: &crate::model::KeyRecord,
        x: &crate::model::XksKeyInfo,
    ) -> Result<Arc<LoadedStore>, KmsError> {
        let store = self
            .state
            .read()
            .custom_key_stores
            .get(&x.custom_key_store_id)
            .cloned();
        match store {
            Some(s) if s.record.state == ConnectionState::Connected => Ok(s),
            _ => Err(KmsError::InvalidState(format!(
                "{} is unavailable: this KMS key is in a custom key store that is not connected to its external key store proxy. Connect the external key store and try the request again.",
                r.arn()
            ))),
        }
    }

    /// Whether the key's store is connected (DescribeKey shows the key
    /// Unavailable otherwise).
    pub(crate) fn store_connected(&self, x: &crate::model::XksKeyInfo) -> bool {
        self.state
            .read()
            .custom_key_stores
            .get(&x.custom_key_store_id)
            .is_some_and(|s| s.record.state == ConnectionState::Connected)
    }

    /// CreateKey in an external key store: the store must be the caller's
    /// and CONNECTED, the external key unused by another KMS key of the
    /// store, and the proxy must describe it as an enabled AES-256 key for
    /// encrypt and decrypt.
    pub(crate) fn check_new_xks_key(
        &self,
        caller: &Caller,
        store_id: &str,
        xks_key_id: &str,
    ) -> Result<(), KmsError> {
        let store = self.store_of(&caller.account, &caller.region, store_id)?;
        if store.record.state != ConnectionState::Connected {
            return Err(invalid_state(&format!(
                "Custom key store {store_id} is not connected: connect it before creating keys in it."
            )));
        }
        let in_use = self.state.read().keys.values().any(|k| {
            k.record
                .xks
                .as_ref()
                .is_some_and(|x| x.custom_key_store_id == store_id && x.xks_key_id == xks_key_id)
        });
        if in_use {
            return Err(KmsError::XksKeyAlreadyInUse(format!(
                "The external key {xks_key_id} is already associated with a KMS key in custom key store {store_id}."
            )));
        }
        let transport = self.transport();
        let meta = xks::key_metadata(
            transport.as_deref(),
            &store.target(),
            xks_key_id,
            xks::RequestMetadata {
                aws_principal_arn: Some(&caller.arn),
                kms_key_arn: None,
                kms_operation: "CreateKey",
                kms_request_id: &crate::usage::current_request_id(),
            },
        )
        .map_err(XksFailure::create_key_error)?;
        let usable = meta.key_spec == "AES_256"
            && meta.key_usage.iter().any(|u| u == "ENCRYPT")
            && meta.key_usage.iter().any(|u| u == "DECRYPT")
            && meta.key_status == "ENABLED";
        if !usable {
            return Err(KmsError::XksKeyInvalidConfiguration(format!(
                "The external key {xks_key_id} must be an enabled AES_256 key that allows ENCRYPT and DECRYPT."
            )));
        }
        Ok(())
    }

    /// The second layer of Encrypt: `inner` (a version-1 blob) sealed by the
    /// proxy under the external key; the version-2 blob.
    pub(crate) fn xks_seal(
        &self,
        key: &crate::state::Key,
        x: &crate::model::XksKeyInfo,
        header: &crate::crypto::BlobHeader,
        ctx: &crate::crypto::EncryptionContext,
        inner: &[u8],
        who: &XksCaller<'_>,
    ) -> Result<Vec<u8>, KmsError> {
        let store = self.connected_store(&key.record, x)?;
        let outer_header = xks::outer_header(header);
        let aad = xks::outer_aad(&outer_header, &ctx.canonical_bytes());
        let arn = key.record.arn();
        let transport = self.transport();
        let parts = xks::encrypt(
            transport.as_deref(),
            &store.target(),
            &x.xks_key_id,
            xks::RequestMetadata {
                aws_principal_arn: Some(who.principal_arn),
                kms_key_arn: Some(&arn),
                kms_operation: who.operation,
                kms_request_id: &crate::usage::current_request_id(),
            },
            inner,
            &aad,
        )
        .map_err(XksFailure::crypto_error)?;
        Ok(xks::seal_outer(&outer_header, &parts))
    }

    /// The first step of Decrypt of a version-2 blob: the proxy's decrypt,
    /// which gives back the version-1 blob.
    pub(crate) fn xks_open(
        &self,
        key: &crate::state::Key,
        x: &crate::model::XksKeyInfo,
        blob: &[u8],
        header_len: usize,
        ctx: &crate::crypto::EncryptionContext,
        who: &XksCaller<'_>,
    ) -> Result<Vec<u8>, KmsError> {
        let store = self.connected_store(&key.record, x)?;
        let outer_header = blob.get(..header_len).ok_or(KmsError::InvalidCiphertext)?;
        let parts = xks::open_outer(blob, header_len)?;
        let aad = xks::outer_aad(outer_header, &ctx.canonical_bytes());
        let arn = key.record.arn();
        let transport = self.transport();
        xks::decrypt(
            transport.as_deref(),
            &store.target(),
            &x.xks_key_id,
            xks::RequestMetadata {
                aws_principal_arn: Some(who.principal_arn),
                kms_key_arn: Some(&arn),
                kms_operation: who.operation,
                kms_request_id: &crate::usage::current_request_id(),
            },
            &parts,
            &aad,
        )
        .map_err(XksFailure::crypto_error)
    }
}

/// Who asks the proxy, for its `requestMetadata`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct XksCaller<'a> {
    /// The caller's ARN.
    pub principal_arn: &'a str,
    /// The KMS operation.
    pub operation: &'a str,
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

    #[test]
    fn store_ids_look_like_aws_ones() {
        let id = new_store_id().unwrap();
        assert_eq!(id.len(), 21);
        assert!(id.starts_with("cks-"));
        assert!(id[4..].chars().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn a_store_record_never_debug_prints_its_secret() {
        let r = StoreRecord {
            id: "cks-1".into(),
            account: AccountId::parse("111122223333").unwrap(),
            region: Region::parse("us-east-1").unwrap(),
            name: "n".into(),
            created_ms: 0,
            uri_endpoint: "https://x".into(),
            uri_path: "/kms/xks/v1".into(),
            access_key_id: "AKID".into(),
            sealed_secret: "SEALEDSECRET".into(),
            state: ConnectionState::Disconnected,
            error_code: None,
        };
        assert!(!format!("{r:?}").contains("SEALEDSECRET"));
    }
}
