//! ferrokms as an AWS KMS external key store proxy (the "XKS Proxy API",
//! v1): AWS KMS, or the KMS of another ferrokms, sends its
//! GetKeyMetadata, Encrypt, Decrypt and GetHealthStatus calls here, signed
//! with SigV4 for the service `kms-xks-proxy` under a credential this proxy
//! issued. docs/xks.md says how to run it and what of the spec it covers.
//!
//! `docs`: the keys and credentials as store documents.

pub mod docs;
