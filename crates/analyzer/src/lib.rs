//! IAM Access Analyzer on the ferrokms endpoint (REST-JSON, signing name
//! `access-analyzer`): the operation catalog (`catalog`), the REST routes
//! of the service model (`routes`), ValidatePolicy (`validate`, with the
//! spans of `span`) and account analyzers (`analyzers`). Every operation
//! authorizes first, through `ferrokms_authz::decide` with its catalog
//! row's action (`authorize`); analyzers live in the store as typed
//! documents, read from it on each request (there are few, and several
//! nodes then agree without a cache to keep current).
//!
//! The custom policy checks (CheckNoPublicAccess, CheckAccessNotGranted,
//! CheckNoNewAccess) are answered by the decision procedure of
//! `ferrokms_reach` (`checks`), and so are the external-access findings of
//! ACCOUNT analyzers for KMS keys and IAM roles (`findings`, served by `account`) and
//! access previews of proposed key policies and grants (`previews`), on
//! the live keys (`live`). The operations of the model that ferrokms does
//! not serve are answered with a ValidationException whose reason is
//! `notSupported`.

pub mod account;
pub mod analyzers;
pub mod catalog;
pub mod checks;
pub mod findings;
pub mod keyset;
pub mod live;
pub mod previews;
pub mod routes;
pub mod span;
pub mod validate;

use ferrokms_authz::catalog::Operation;
use ferrokms_authz::{Caller, Question};
use ferrokms_policy::Context;
use ferrokms_types::AccountId;

pub use analyzers::Analyzers;

/// The `reason` of a ValidationException, as the model's enum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValidationReason {
    /// No such operation.
    UnknownOperation,
    /// The body cannot be read.
    CannotParse,
    /// A member fails its constraint.
    FieldValidationFailed,
    /// An operation or value the service does not support.
    NotSupported,
    /// Anything else.
    Other,
}

impl ValidationReason {
    /// The value as the model spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            ValidationReason::UnknownOperation => "unknownOperation",
            ValidationReason::CannotParse => "cannotParse",
            ValidationReason::FieldValidationFailed => "fieldValidationFailed",
            ValidationReason::NotSupported => "notSupported",
            ValidationReason::Other => "other",
        }
    }
}

/// A member that failed validation (the model's `ValidationExceptionField`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The member's name.
    pub name: String,
    /// What is wrong with it.
    pub message: String,
}

/// Why an Access Analyzer operation failed: each variant is one of the
/// model's errors.
#[derive(Debug, thiserror::Error)]
pub enum AnalyzerError {
    /// ValidationException (400).
    #[error("{message}")]
    Validation {
        /// The message.
        message: String,
        /// The model's reason.
        reason: ValidationReason,
        /// The members that failed, if any.
        fields: Vec<FieldError>,
    },
    /// ResourceNotFoundException (404).
    #[error("{message}")]
    NotFound {
        /// The message.
        message: String,
        /// The resource's id (an analyzer's name or ARN).
        resource_id: String,
        /// Its type (`Analyzer`).
        resource_type: &'static str,
    },
    /// ConflictException (409).
    #[error("{message}")]
    Conflict {
        /// The message.
        message: String,
        /// The resource's id.
        resource_id: String,
        /// Its type.
        resource_type: &'static str,
    },
    /// ServiceQuotaExceededException (402, as the model has it).
    #[error("{message}")]
    QuotaExceeded {
        /// The message.
        message: String,
        /// The resource's id.
        resource_id: String,
        /// Its type.
        resource_type: &'static str,
    },
    /// AccessDeniedException (403), in AWS's words.
    #[error("{0}")]
    AccessDenied(String),
    /// The store failed: InternalServerException (500), its detail logged,
    /// never sent.
    #[error("storage failed: {0}")]
    Store(#[from] ferrokms_store::StoreError),
    /// Stored data does not read back: InternalServerException (500).
    #[error("stored analyzer is corrupt: {0}")]
    Corrupt(String),
    /// The authorization path could not evaluate (an unparsable principal).
    #[error("authorization failed: {0}")]
    Authz(#[from] ferrokms_authz::AuthzError),
}

impl AnalyzerError {
    /// A ValidationException for one member (`fieldValidationFailed`).
    pub fn field(name: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        AnalyzerError::Validation {
            message: format!("Invalid parameter {name}: {message}"),
            reason: ValidationReason::FieldValidationFailed,
            fields: vec![FieldError {
                name: name.to_string(),
                message,
            }],
        }
    }

    /// A ValidationException with a reason and no member.
    pub fn validation(reason: ValidationReason, message: impl Into<String>) -> Self {
        AnalyzerError::Validation {
            message: message.into(),
            reason,
            fields: Vec::new(),
        }
    }

    /// The model's error code.
    pub fn code(&self) -> &'static str {
        match self {
            AnalyzerError::Validation { .. } => "ValidationException",
            AnalyzerError::NotFound { .. } => "ResourceNotFoundException",
            AnalyzerError::Conflict { .. } => "ConflictException",
            AnalyzerError::QuotaExceeded { .. } => "ServiceQuotaExceededException",
            AnalyzerError::AccessDenied(_) => "AccessDeniedException",
            AnalyzerError::Store(_) | AnalyzerError::Corrupt(_) | AnalyzerError::Authz(_) => {
                "InternalServerException"
            }
        }
    }

    /// The HTTP status the model gives the error.
    pub fn status(&self) -> u16 {
        match self {
            AnalyzerError::Validation { .. } => 400,
            AnalyzerError::NotFound { .. } => 404,
            AnalyzerError::Conflict { .. } => 409,
            AnalyzerError::QuotaExceeded { .. } => 402,
            AnalyzerError::AccessDenied(_) => 403,
            AnalyzerError::Store(_) | AnalyzerError::Corrupt(_) | AnalyzerError::Authz(_) => 500,
        }
    }

    /// The error's members beyond `message`, as the model names them.
    pub fn members(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut m = serde_json::Map::new();
        match self {
            AnalyzerError::Validation { reason, fields, .. } => {
                m.insert("reason".into(), reason.as_str().into());
                if !fields.is_empty() {
                    m.insert(
                        "fieldList".into(),
                        fields
                            .iter()
                            .map(|f| serde_json::json!({"name": f.name, "message": f.message}))
                            .collect(),
                    );
                }
            }
            AnalyzerError::NotFound {
                resource_id,
                resource_type,
                ..
            }
            | AnalyzerError::Conflict {
                resource_id,
                resource_type,
                ..
            }
            | AnalyzerError::QuotaExceeded {
                resource_id,
                resource_type,
                ..
            } => {
                m.insert("resourceId".into(), resource_id.as_str().into());
                m.insert("resourceType".into(), (*resource_type).into());
            }
            AnalyzerError::AccessDenied(_)
            | AnalyzerError::Store(_)
            | AnalyzerError::Corrupt(_)
            | AnalyzerError::Authz(_) => {}
        }
        m
    }

    /// The message a client sees (internal failures say nothing of their cause).
    pub fn public_message(&self) -> String {
        match self {
            AnalyzerError::Store(_) | AnalyzerError::Corrupt(_) | AnalyzerError::Authz(_) => {
                "The request processing has failed because of an unknown error.".into()
            }
            other => other.to_string(),
        }
    }
}

/// The ARN of an analyzer.
pub fn analyzer_arn(caller: &Caller, account: &AccountId, name: &str) -> String {
    format!(
        "arn:{}:access-analyzer:{}:{}:analyzer/{name}",
        caller.region.partition(),
        caller.region.as_str(),
        account.as_str()
    )
}

/// Authorizes an operation on `resource` (an ARN, or `*`) through the one
/// authorization path, with the condition keys the operation sets. A
/// resource of another account is refused before any policy is read (no
/// Access Analyzer operation may cross accounts); the root user holds every
/// permission of its own account only. The decision goes into the caller's
/// trace (and so the audit record).
pub fn authorize(
    caller: &Caller,
    op: &Operation,
    resource: &str,
    context: &Context,
) -> Result<(), AnalyzerError> {
    let account = ferrokms_types::Arn::parse(resource)
        .ok()
        .and_then(|a| a.account_id())
        .unwrap_or_else(|| caller.account.clone());
    let mut question = Question::identity(op.action, resource, &account).with_context(context);
    question.cross_account = op.cross_account;
    let (record, outcome) = ferrokms_authz::decide(caller, question)?.conclude(None);
    caller.record(record);
    outcome.map_err(AnalyzerError::AccessDenied)
}
