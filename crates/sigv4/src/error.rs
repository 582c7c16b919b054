use std::fmt;

/// Every way a SigV4-authenticated request can be rejected by this crate.
///
/// Each variant is exactly one AWS error code so the server can render the
/// wire error without a second mapping table. The payload is the message AWS
/// sends for that case, already formatted, because clients and operators grep
/// for those texts.
///
/// Unknown access keys and invalid or expired session tokens are not here: the
/// caller owns the credential store and answers `UnrecognizedClientException`
/// or `ExpiredTokenException` itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SigV4Error {
    /// No `Authorization` header and no presigned query parameters.
    MissingAuthenticationToken,
    /// The signature is present but cannot be interpreted (missing or malformed
    /// parts, unparsable date, a signed header that is absent from the request).
    IncompleteSignature(String),
    /// The signature was understood and is wrong: mismatch, clock skew, expired
    /// presigned URL, or a credential scope this server does not accept.
    InvalidSignature(String),
}

/// AWS's text for a signature mismatch; SDKs and docs quote it verbatim.
pub const SIGNATURE_MISMATCH_MESSAGE: &str = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.";

/// AWS's text when no authentication was attempted at all.
pub const MISSING_AUTHENTICATION_TOKEN_MESSAGE: &str = "Missing Authentication Token";

impl SigV4Error {
    /// The `__type` for JSON protocols (KMS). `http_status` is 400 for all of
    /// them in observed KMS traffic.
    pub fn aws_code(&self) -> &'static str {
        match self {
            SigV4Error::MissingAuthenticationToken => "MissingAuthenticationTokenException",
            SigV4Error::IncompleteSignature(_) => "IncompleteSignatureException",
            SigV4Error::InvalidSignature(_) => "InvalidSignatureException",
        }
    }

    /// The `<Code>` for the query/XML protocol (IAM, STS), which names the same
    /// failures differently; a signature mismatch there is `SignatureDoesNotMatch`.
    pub fn query_protocol_code(&self) -> &'static str {
        match self {
            SigV4Error::MissingAuthenticationToken => "MissingAuthenticationToken",
            SigV4Error::IncompleteSignature(_) => "IncompleteSignature",
            SigV4Error::InvalidSignature(_) => "SignatureDoesNotMatch",
        }
    }

    /// Observed KMS status for every authentication failure.
    pub fn http_status(&self) -> u16 {
        400
    }

    /// The human-readable message for the error body (`message` in JSON, `<Message>` in XML), worded as AWS words it.
    pub fn message(&self) -> String {
        match self {
            SigV4Error::MissingAuthenticationToken => {
                MISSING_AUTHENTICATION_TOKEN_MESSAGE.to_owned()
            }
            SigV4Error::IncompleteSignature(m) | SigV4Error::InvalidSignature(m) => m.clone(),
        }
    }

    pub(crate) fn mismatch() -> Self {
        SigV4Error::InvalidSignature(SIGNATURE_MISMATCH_MESSAGE.to_owned())
    }
}

impl fmt::Display for SigV4Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.aws_code(), self.message())
    }
}

impl std::error::Error for SigV4Error {}
