//! Typed request-context values (`aws:SourceIp`, `kms:EncryptionContext:...`, ...).
//!
//! Callers hand us values already typed where they know the type (an IP, a date, a number);
//! condition operators coerce when they must (a string `"10.0.0.1"` still works with
//! `IpAddress`) so that CLI users can pass everything as text.

mod date;
mod ip;
mod number;

pub use date::{NotADate, Timestamp};
pub use ip::{Cidr, NotACidr};
pub use number::{NotANumber, Number};

pub(crate) use ip::parse_ip;

use base64::Engine as _;
use std::borrow::Cow;
use std::collections::HashMap;
use std::net::IpAddr;

/// One value of a request context key.
#[derive(Debug, Clone, PartialEq)]
pub enum ContextValue {
    /// Text; what most keys hold.
    String(String),
    /// A number, for the `Numeric*` operators (`kms:ValidTo`).
    Number(Number),
    /// `true` or `false` (`aws:SecureTransport`).
    Bool(bool),
    /// A point in time (`aws:CurrentTime`).
    Date(Timestamp),
    /// An IP address (`aws:SourceIp`).
    Ip(IpAddr),
    /// An ARN (`aws:SourceArn`, `aws:PrincipalArn`).
    Arn(String),
    /// Bytes, compared by `BinaryEquals` with base64 values.
    Binary(Vec<u8>),
}

impl ContextValue {
    /// The value as text, which is what string operators and policy variables see.
    pub fn as_text(&self) -> Cow<'_, str> {
        match self {
            ContextValue::String(s) | ContextValue::Arn(s) => Cow::Borrowed(s),
            ContextValue::Number(n) => Cow::Owned(n.to_string()),
            ContextValue::Bool(b) => Cow::Borrowed(if *b { "true" } else { "false" }),
            ContextValue::Date(d) => Cow::Owned(d.to_string()),
            ContextValue::Ip(ip) => Cow::Owned(ip.to_string()),
            ContextValue::Binary(b) => {
                Cow::Owned(base64::engine::general_purpose::STANDARD.encode(b))
            }
        }
    }

    pub(crate) fn as_number(&self) -> Option<Number> {
        match self {
            ContextValue::Number(n) => Some(n.clone()),
            ContextValue::String(s) => s.parse().ok(),
            _ => None,
        }
    }

    pub(crate) fn as_date(&self) -> Option<Timestamp> {
        match self {
            ContextValue::Date(d) => Some(*d),
            ContextValue::Number(n) => n.to_string().parse().ok(),
            ContextValue::String(s) => s.parse().ok(),
            _ => None,
        }
    }

    pub(crate) fn as_bool(&self) -> Option<bool> {
        match self {
            ContextValue::Bool(b) => Some(*b),
            ContextValue::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
            ContextValue::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
            _ => None,
        }
    }

    pub(crate) fn as_ip(&self) -> Option<IpAddr> {
        match self {
            ContextValue::Ip(ip) => Some(*ip),
            ContextValue::String(s) => parse_ip(s),
            _ => None,
        }
    }

    pub(crate) fn as_bytes(&self) -> Option<Cow<'_, [u8]>> {
        match self {
            ContextValue::Binary(b) => Some(Cow::Borrowed(b)),
            ContextValue::String(s) => base64::engine::general_purpose::STANDARD
                .decode(s.trim())
                .ok()
                .map(Cow::Owned),
            _ => None,
        }
    }

    /// A short type name for traces.
    pub fn type_name(&self) -> &'static str {
        match self {
            ContextValue::String(_) => "string",
            ContextValue::Number(_) => "number",
            ContextValue::Bool(_) => "bool",
            ContextValue::Date(_) => "date",
            ContextValue::Ip(_) => "ip",
            ContextValue::Arn(_) => "arn",
            ContextValue::Binary(_) => "binary",
        }
    }
}

impl From<&str> for ContextValue {
    fn from(s: &str) -> Self {
        ContextValue::String(s.to_string())
    }
}
impl From<String> for ContextValue {
    fn from(s: String) -> Self {
        ContextValue::String(s)
    }
}
impl From<bool> for ContextValue {
    fn from(b: bool) -> Self {
        ContextValue::Bool(b)
    }
}
impl From<i64> for ContextValue {
    fn from(n: i64) -> Self {
        ContextValue::Number(Number::from(n))
    }
}
impl From<IpAddr> for ContextValue {
    fn from(ip: IpAddr) -> Self {
        ContextValue::Ip(ip)
    }
}
impl From<Timestamp> for ContextValue {
    fn from(t: Timestamp) -> Self {
        ContextValue::Date(t)
    }
}

/// The values of one context key: single-valued keys hold one value, multivalued keys
/// (`aws:TagKeys`, `kms:EncryptionContextKeys`, ...) hold a set that may be empty.
#[derive(Debug, Clone, PartialEq)]
pub enum ContextValues {
    /// One value.
    Single(ContextValue),
    /// A set of values, possibly empty.
    Multi(Vec<ContextValue>),
}

impl ContextValues {
    /// The values as a slice, whatever the shape.
    pub fn as_slice(&self) -> &[ContextValue] {
        match self {
            ContextValues::Single(v) => std::slice::from_ref(v),
            ContextValues::Multi(v) => v,
        }
    }
}

/// A context entry: the key as the caller spelled it and its values.
#[derive(Debug, Clone, PartialEq)]
pub struct ContextEntry {
    /// The key as the caller spelled it.
    pub name: String,
    /// The key's value or values.
    pub values: ContextValues,
}

/// The index form of a key name (and of an action name). Context keys are ASCII in practice
/// (`kms:EncryptionContext:` keys are the exception that may not be), and
/// the ASCII lowering is several times cheaper than Unicode's; both give the
/// same result on ASCII.
pub(crate) fn lower_key(name: &str) -> String {
    if name.is_ascii() {
        name.to_ascii_lowercase()
    } else {
        name.to_lowercase()
    }
}

/// Whether two key names index the same context entry: the context folds
/// case (Unicode's lowercase beyond ASCII), so `aws:RequestTag/Team` and
/// `aws:RequestTag/team` are one key. Callers that put user-chosen names into
/// key names (tag keys) use this to refuse names that would collide.
pub fn same_context_key(a: &str, b: &str) -> bool {
    if a.is_ascii() && b.is_ascii() {
        a.eq_ignore_ascii_case(b)
    } else {
        lower_key(a) == lower_key(b)
    }
}

/// The request context. Key names are case-insensitive, as in IAM, so we index by the
/// lowercased name and keep the caller's spelling for display.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Context {
    entries: HashMap<String, ContextEntry>,
    /// Wildcard matching's index of the value it last searched, kept for the next pattern of
    /// the same request (a cache: empty in a clone, ignored by `==`).
    scratch: crate::matching::glob::Scratch,
}

impl Context {
    /// An empty context.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets a single-valued key, replacing any earlier value.
    pub fn insert(&mut self, name: &str, value: impl Into<ContextValue>) {
        self.entries.insert(
            lower_key(name),
            ContextEntry {
                name: name.to_string(),
                values: ContextValues::Single(value.into()),
            },
        );
    }

    /// Sets a multivalued key (possibly to the empty set), replacing any earlier value.
    pub fn insert_multi(&mut self, name: &str, values: Vec<ContextValue>) {
        self.entries.insert(
            lower_key(name),
            ContextEntry {
                name: name.to_string(),
                values: ContextValues::Multi(values),
            },
        );
    }

    /// Builder form of [`Context::insert`].
    #[must_use]
    pub fn with(mut self, name: &str, value: impl Into<ContextValue>) -> Self {
        self.insert(name, value);
        self
    }

    /// Builder form of [`Context::insert_multi`].
    #[must_use]
    pub fn with_multi(mut self, name: &str, values: Vec<ContextValue>) -> Self {
        self.insert_multi(name, values);
        self
    }

    /// Looks a key up, ignoring case.
    pub fn get(&self, name: &str) -> Option<&ContextEntry> {
        if name.bytes().any(|b| b.is_ascii_uppercase()) || !name.is_ascii() {
            self.entries.get(&lower_key(name))
        } else {
            self.entries.get(name)
        }
    }

    pub(crate) fn scratch(&self) -> &crate::matching::glob::Scratch {
        &self.scratch
    }

    /// Looks up a key whose name is already lowercase (the form the parser stores).
    pub(crate) fn get_lower(&self, lower: &str) -> Option<&ContextEntry> {
        self.entries.get(lower)
    }

    /// Whether the key is present, ignoring case.
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Whether the context has no keys.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Entries sorted by lowercased name, for stable output.
    pub fn iter(&self) -> impl Iterator<Item = &ContextEntry> {
        let mut v: Vec<(&String, &ContextEntry)> = self.entries.iter().collect();
        v.sort_by(|a, b| a.0.cmp(b.0));
        v.into_iter().map(|(_, e)| e)
    }

    /// The text of a single-valued key, for policy-variable substitution. Multivalued keys
    /// cannot be policy variables in IAM, so they resolve to nothing.
    pub(crate) fn variable_value(&self, lower: &str) -> Option<Cow<'_, str>> {
        match &self.get_lower(lower)?.values {
            ContextValues::Single(v) => Some(v.as_text()),
            ContextValues::Multi(_) => None,
        }
    }
}
