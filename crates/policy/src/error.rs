//! The crate's single error type.
//!
//! Every rejection names *where* in the document it happened (`at`, a JSON path such as
//! `Statement[1].Condition.StringEquals`) and *why*, so a caller can put the text straight
//! into a `MalformedPolicyDocumentException` message and a policy author can find the fault.

/// Why a policy document, a request or a context value was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// The document is larger than [`crate::Limits::max_bytes`].
    #[error("policy document is {size} bytes, larger than the limit of {limit} bytes")]
    TooLarge {
        /// The document's size in bytes.
        size: usize,
        /// The limit in bytes.
        limit: usize,
    },

    /// The bytes are not UTF-8; JSON policy text must be.
    #[error("policy document is not valid UTF-8 (first bad byte at offset {offset})")]
    InvalidUtf8 {
        /// Byte offset of the first byte that is not UTF-8.
        offset: usize,
    },

    /// The text is not JSON.
    #[error("invalid JSON at line {line}, column {column}: {message}")]
    Json {
        /// Line of the fault, from 1.
        line: usize,
        /// Column of the fault.
        column: usize,
        /// What the JSON reader found wrong.
        message: String,
    },

    /// Objects/arrays nest deeper than [`crate::Limits::max_depth`] (guards the stack).
    #[error("JSON nesting deeper than {limit} levels at line {line}, column {column}")]
    TooDeep {
        /// The deepest nesting allowed.
        limit: usize,
        /// Line where the limit was passed, from 1.
        line: usize,
        /// Column where the limit was passed.
        column: usize,
    },

    /// A JSON object repeats a key. AWS rejects such documents and silently picking one of the
    /// values would make the stored policy mean something its author may not have intended.
    #[error("{at}: duplicate key \"{key}\"")]
    DuplicateKey {
        /// The object holding the key, as a JSON path.
        at: String,
        /// The repeated key.
        key: String,
    },

    /// A JSON value has the wrong type for its position (for example a number as `Effect`).
    #[error("{at}: expected {expected}, found {found}")]
    WrongType {
        /// The element, as a JSON path.
        at: String,
        /// The JSON type the grammar wants there.
        expected: &'static str,
        /// The JSON type found.
        found: &'static str,
    },

    /// An element name the policy grammar does not define (element names are case-sensitive).
    #[error("{at}: unknown element \"{element}\"")]
    UnknownElement {
        /// The object holding the element, as a JSON path.
        at: String,
        /// The element name as written.
        element: String,
    },

    /// A required element is absent (`Statement`, `Effect`, or one required by [`crate::ParseOptions`]).
    #[error("{at}: missing required element \"{element}\"")]
    MissingElement {
        /// The object that lacks it, as a JSON path.
        at: String,
        /// The required element.
        element: &'static str,
    },

    /// Two mutually exclusive elements appear together (e.g. `Action` and `NotAction`).
    #[error("{at}: \"{first}\" and \"{second}\" cannot both appear in one statement")]
    ConflictingElements {
        /// The statement, as a JSON path.
        at: String,
        /// The first of the two elements.
        first: &'static str,
        /// The element that may not appear with it.
        second: &'static str,
    },

    /// An element that this kind of policy must not contain (e.g. `Principal` in an identity policy).
    #[error("{at}: \"{element}\" is not allowed in {policy_kind}")]
    ElementNotAllowed {
        /// The statement, as a JSON path.
        at: String,
        /// The element.
        element: &'static str,
        /// The policy's kind as the message names it (`an identity-based policy`...).
        policy_kind: &'static str,
    },

    /// `Version` is neither `2012-10-17` nor `2008-10-17`.
    #[error("Version: unsupported policy version \"{found}\" (expected \"2012-10-17\" or \"2008-10-17\")")]
    InvalidVersion {
        /// The `Version` value as written.
        found: String,
    },

    /// A `Sid` outside `[0-9A-Za-z]*` where IAM's rule applies
    /// ([`crate::ParseOptions::iam_statement_ids`]); the text is IAM's
    /// MalformedPolicyDocument message.
    #[error("Statement IDs (SID) must be alpha-numeric. Check that your input satisfies the regular expression [0-9A-Za-z]*")]
    SidNotAlphanumeric {
        /// The `Sid`, as a JSON path.
        at: String,
        /// The `Sid` as written.
        sid: String,
    },

    /// Two statements with one `Sid` where IAM's rule applies.
    #[error("Statement IDs (SID) in a single policy must be unique.")]
    DuplicateSid {
        /// The repeated `Sid`, as a JSON path.
        at: String,
        /// The `Sid` as written.
        sid: String,
    },

    /// `Effect` is neither `Allow` nor `Deny` (the values are case-sensitive).
    #[error("{at}: Effect must be \"Allow\" or \"Deny\", found \"{found}\"")]
    InvalidEffect {
        /// The `Effect`, as a JSON path.
        at: String,
        /// The value as written.
        found: String,
    },

    /// An array that must have at least one member is empty.
    #[error("{at}: must not be empty")]
    Empty {
        /// The empty array, as a JSON path.
        at: String,
    },

    /// An `Action`/`NotAction` entry is not `*` or `service:pattern`.
    #[error("{at}: invalid action \"{value}\": {reason}")]
    InvalidAction {
        /// The action, as a JSON path.
        at: String,
        /// The action as written.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// A `Resource`/`NotResource` entry is not `*` or an ARN pattern.
    #[error("{at}: invalid resource \"{value}\": {reason}")]
    InvalidResource {
        /// The resource, as a JSON path.
        at: String,
        /// The resource as written.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// A `Principal`/`NotPrincipal` entry is malformed.
    #[error("{at}: invalid principal \"{value}\": {reason}")]
    InvalidPrincipal {
        /// The principal, as a JSON path.
        at: String,
        /// The principal value as written.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// A condition operator name that is not defined (names are case-sensitive).
    #[error("{at}: unknown condition operator \"{operator}\"")]
    UnknownConditionOperator {
        /// The `Condition` block, as a JSON path.
        at: String,
        /// The operator name as written.
        operator: String,
    },

    /// A condition value that its operator cannot use (a non-number for `NumericEquals`...).
    #[error("{at}: invalid value \"{value}\" for {operator}: {reason}")]
    InvalidConditionValue {
        /// The value, as a JSON path.
        at: String,
        /// The operator the value is for.
        operator: String,
        /// The value as written.
        value: String,
        /// Why the operator cannot read it.
        reason: String,
    },

    /// A `${...}` policy variable that cannot be parsed, or one in a place AWS does not allow.
    #[error("{at}: invalid policy variable in \"{value}\": {reason}")]
    InvalidPolicyVariable {
        /// The element, as a JSON path.
        at: String,
        /// The text holding the variable.
        value: String,
        /// What is wrong with the variable.
        reason: &'static str,
    },

    /// A request principal ARN (the caller) that cannot be classified.
    #[error("invalid request principal \"{value}\": {reason}")]
    InvalidRequestPrincipal {
        /// The ARN as given.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// A request action that is not `service:Name`.
    #[error("invalid request action \"{value}\": {reason}")]
    InvalidRequestAction {
        /// The action as given.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// A request context value that cannot be read (bad `KEY=VALUE`, bad context JSON).
    #[error("invalid context value for \"{key}\": {reason}")]
    InvalidContextValue {
        /// The context key.
        key: String,
        /// What is wrong with its value.
        reason: String,
    },

    /// An error inside one of several labelled policies (the CLI evaluates many at once).
    #[error("policy {label:?}: {source}")]
    InPolicy {
        /// The policy's label (the CLI uses the file name).
        label: String,
        /// The error in that policy.
        source: Box<PolicyError>,
    },

    /// An unknown policy kind name (`resource`, `identity`, `boundary`, `session`).
    #[error("unknown policy kind \"{found}\" (expected resource, identity, boundary or session)")]
    UnknownPolicyKind {
        /// The kind name as given.
        found: String,
    },
}

/// The JSON type names used in [`PolicyError::WrongType`].
pub(crate) const fn type_name_of(v: &crate::json::Json) -> &'static str {
    use crate::json::Json;
    match v {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}
