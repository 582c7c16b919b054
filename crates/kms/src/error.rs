//! Errors of the KMS layer. Each variant is one AWS error code; the message
//! is AWS's text where it is known. The server maps them onto the wire once.

/// An error of a KMS operation (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KmsError {
    /// `NotFoundException`: the key, alias or grant named does not exist.
    #[error("{0}")]
    NotFound(String),
    /// `DisabledException`: the key is disabled.
    #[error("{0}")]
    Disabled(String),
    /// `KMSInvalidStateException`: the key's state does not allow the operation.
    #[error("{0}")]
    InvalidState(String),
    /// Real KMS sends this without any message.
    #[error("InvalidCiphertextException")]
    InvalidCiphertext,
    /// `IncorrectKeyException`: the ciphertext was not made with the key named.
    #[error("{0}")]
    IncorrectKey(String),
    /// Verify of a signature that does not verify; sent without a message.
    #[error("KMSInvalidSignatureException")]
    InvalidSignature,
    /// VerifyMac of a MAC that does not verify; sent without a message.
    #[error("KMSInvalidMacException")]
    InvalidMac,
    /// `InvalidKeyUsageException`: the key's usage or spec does not allow the operation.
    #[error("{0}")]
    InvalidKeyUsage(String),
    /// `AlreadyExistsException`: the alias is taken.
    #[error("{0}")]
    AlreadyExists(String),
    /// `InvalidAliasNameException`.
    #[error("{0}")]
    InvalidAliasName(String),
    /// `LimitExceededException`: a quota (aliases, grants...) is reached.
    #[error("{0}")]
    LimitExceeded(String),
    /// `TagException`: a tag key or value is not acceptable.
    #[error("{0}")]
    Tag(String),
    /// `MalformedPolicyDocumentException`: the key policy does not parse or is refused.
    #[error("{0}")]
    MalformedPolicyDocument(String),
    /// `UnsupportedOperationException`.
    #[error("{0}")]
    UnsupportedOperation(String),
    /// `InvalidArnException`.
    #[error("{0}")]
    InvalidArn(String),
    /// `InvalidMarkerException`: a pagination marker this server did not issue.
    #[error("{0}")]
    InvalidMarker(String),
    /// `InvalidGrantTokenException`.
    #[error("{0}")]
    InvalidGrantToken(String),
    /// `InvalidGrantIdException`.
    #[error("{0}")]
    InvalidGrantId(String),
    /// `IncorrectKeyMaterialException`: imported material that is not the key's.
    #[error("{0}")]
    IncorrectKeyMaterial(String),
    /// `InvalidImportTokenException`.
    #[error("{0}")]
    InvalidImportToken(String),
    /// `ExpiredImportTokenException`.
    #[error("{0}")]
    ExpiredImportToken(String),
    /// `ConflictException`.
    #[error("{0}")]
    Conflict(String),
    /// `CustomKeyStoreNotFoundException`: no custom key store of the caller's account has that id or name.
    #[error("{0}")]
    CustomKeyStoreNotFound(String),
    /// `CustomKeyStoreNameInUseException`: the account already has a custom key store of that name.
    #[error("{0}")]
    CustomKeyStoreNameInUse(String),
    /// `CustomKeyStoreHasCMKsException`: the custom key store still holds KMS keys.
    #[error("{0}")]
    CustomKeyStoreHasCmks(String),
    /// `CustomKeyStoreInvalidStateException`: the custom key store's connection state does not allow the operation.
    #[error("{0}")]
    CustomKeyStoreInvalidState(String),
    /// `CloudHsmClusterNotFoundException`: no CloudHSM cluster can be found (ferrokms reaches none).
    #[error("{0}")]
    CloudHsmClusterNotFound(String),
    /// `XksProxyUriInUseException`: another external key store of the account uses the same proxy endpoint and path.
    #[error("{0}")]
    XksProxyUriInUse(String),
    /// `XksProxyUriEndpointInUseException`: another external key store uses the same proxy endpoint.
    #[error("{0}")]
    XksProxyUriEndpointInUse(String),
    /// `XksProxyUriUnreachableException`: the proxy could not be reached (TCP, TLS, timeout, throttled).
    #[error("{0}")]
    XksProxyUriUnreachable(String),
    /// `XksProxyIncorrectAuthenticationCredentialException`: the proxy refused the SigV4 credential.
    #[error("{0}")]
    XksProxyIncorrectAuthenticationCredential(String),
    /// `XksProxyInvalidConfigurationException`: the proxy refused the URI path.
    #[error("{0}")]
    XksProxyInvalidConfiguration(String),
    /// `XksProxyInvalidResponseException`: the proxy's answer could not be interpreted.
    #[error("{0}")]
    XksProxyInvalidResponse(String),
    /// `XksProxyVpcEndpointServiceNotFoundException`: the VPC endpoint service cannot be found (ferrokms reaches none).
    #[error("{0}")]
    XksProxyVpcEndpointServiceNotFound(String),
    /// `XksKeyNotFoundException`: the proxy does not know the external key.
    #[error("{0}")]
    XksKeyNotFound(String),
    /// `XksKeyInvalidConfigurationException`: the external key is not an enabled AES-256 encrypt/decrypt key.
    #[error("{0}")]
    XksKeyInvalidConfiguration(String),
    /// `XksKeyAlreadyInUseException`: another KMS key of the store uses the external key.
    #[error("{0}")]
    XksKeyAlreadyInUse(String),
    /// `ValidationException`: a parameter fails the API model's constraints.
    #[error("{0}")]
    Validation(String),
    /// `AccessDeniedException`, with AWS's message.
    #[error("{0}")]
    AccessDenied(String),
    /// `DryRunOperationException`: the request would have succeeded.
    #[error("{0}")]
    DryRunOperation(String),
    /// Our fault (storage failure, corrupt state). Never carries secrets.
    #[error("{0}")]
    Internal(String),
}

impl KmsError {
    /// The AWS error code (`__type`) for this error.
    pub fn code(&self) -> &'static str {
        use KmsError::*;
        match self {
            NotFound(_) => "NotFoundException",
            Disabled(_) => "DisabledException",
            InvalidState(_) => "KMSInvalidStateException",
            InvalidCiphertext => "InvalidCiphertextException",
            IncorrectKey(_) => "IncorrectKeyException",
            InvalidSignature => "KMSInvalidSignatureException",
            InvalidMac => "KMSInvalidMacException",
            InvalidKeyUsage(_) => "InvalidKeyUsageException",
            AlreadyExists(_) => "AlreadyExistsException",
            InvalidAliasName(_) => "InvalidAliasNameException",
            LimitExceeded(_) => "LimitExceededException",
            Tag(_) => "TagException",
            MalformedPolicyDocument(_) => "MalformedPolicyDocumentException",
            UnsupportedOperation(_) => "UnsupportedOperationException",
            InvalidArn(_) => "InvalidArnException",
            InvalidMarker(_) => "InvalidMarkerException",
            InvalidGrantToken(_) => "InvalidGrantTokenException",
            InvalidGrantId(_) => "InvalidGrantIdException",
            IncorrectKeyMaterial(_) => "IncorrectKeyMaterialException",
            InvalidImportToken(_) => "InvalidImportTokenException",
            ExpiredImportToken(_) => "ExpiredImportTokenException",
            Conflict(_) => "ConflictException",
            CustomKeyStoreNotFound(_) => "CustomKeyStoreNotFoundException",
            CustomKeyStoreNameInUse(_) => "CustomKeyStoreNameInUseException",
            CustomKeyStoreHasCmks(_) => "CustomKeyStoreHasCMKsException",
            CustomKeyStoreInvalidState(_) => "CustomKeyStoreInvalidStateException",
            CloudHsmClusterNotFound(_) => "CloudHsmClusterNotFoundException",
            XksProxyUriInUse(_) => "XksProxyUriInUseException",
            XksProxyUriEndpointInUse(_) => "XksProxyUriEndpointInUseException",
            XksProxyUriUnreachable(_) => "XksProxyUriUnreachableException",
            XksProxyIncorrectAuthenticationCredential(_) => {
                "XksProxyIncorrectAuthenticationCredentialException"
            }
            XksProxyInvalidConfiguration(_) => "XksProxyInvalidConfigurationException",
            XksProxyInvalidResponse(_) => "XksProxyInvalidResponseException",
            XksProxyVpcEndpointServiceNotFound(_) => "XksProxyVpcEndpointServiceNotFoundException",
            XksKeyNotFound(_) => "XksKeyNotFoundException",
            XksKeyInvalidConfiguration(_) => "XksKeyInvalidConfigurationException",
            XksKeyAlreadyInUse(_) => "XksKeyAlreadyInUseException",
            Validation(_) => "ValidationException",
            AccessDenied(_) => "AccessDeniedException",
            DryRunOperation(_) => "DryRunOperationException",
            Internal(_) => "KMSInternalException",
        }
    }

    /// The message, or `None` where AWS sends none.
    pub fn message(&self) -> Option<String> {
        match self {
            KmsError::InvalidCiphertext | KmsError::InvalidSignature | KmsError::InvalidMac => None,
            other => Some(other.to_string()),
        }
    }

    /// A single-member ValidationException in AWS's wording.
    pub fn validation(value: Option<&str>, member: &str, constraint: &str) -> KmsError {
        let value = match value {
            Some(v) => format!("Value '{v}' at"),
            None => "Value at".to_string(),
        };
        KmsError::Validation(format!(
            "1 validation error detected: {value} '{member}' failed to satisfy constraint: {constraint}"
        ))
    }
}

impl From<ferrokms_authz::AuthzError> for KmsError {
    fn from(e: ferrokms_authz::AuthzError) -> Self {
        KmsError::Internal(e.to_string())
    }
}

impl From<ferrokms_store::StoreError> for KmsError {
    fn from(e: ferrokms_store::StoreError) -> Self {
        tracing::error!(error = %e, "store failure");
        KmsError::Internal(
            "The request could not be completed because of a storage failure.".into(),
        )
    }
}
