//! The `Condition` element: operators, compiled values, and their evaluation.
//!
//! Values are compiled when the policy is parsed (numbers parsed, CIDRs parsed, wildcard
//! patterns compiled, base64 decoded) so that evaluation does no parsing of policy text.

mod eval;
mod operator;

pub use eval::{ConditionFailReason, ConditionFailure};
pub use operator::{BaseOperator, ConditionOperator, SetOperator};

pub(crate) use eval::evaluate_condition;

use crate::matching::arn::ArnPattern;
use crate::matching::glob::Glob;
use crate::model::Form;
use crate::value::{Cidr, Number, Timestamp};
use crate::variables::Template;
use base64::Engine as _;

/// A whole `Condition` element: every block must hold (AND).
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub(crate) blocks: Vec<OperatorBlock>,
}

impl Condition {
    /// The operator blocks in document order.
    pub fn blocks(&self) -> &[OperatorBlock] {
        &self.blocks
    }
}

/// One operator and the keys under it (`"StringEquals": { "k1": ..., "k2": ... }`); every key
/// must hold (AND).
#[derive(Debug, Clone, PartialEq)]
pub struct OperatorBlock {
    pub(crate) operator: ConditionOperator,
    pub(crate) entries: Vec<ConditionEntry>,
}

impl OperatorBlock {
    /// The operator, e.g. `ForAnyValue:StringLike`.
    pub fn operator(&self) -> &ConditionOperator {
        &self.operator
    }
    /// The keys under the operator, each with its values; all must hold.
    pub fn entries(&self) -> &[ConditionEntry] {
        &self.entries
    }
}

/// One key and its values; the values are ORed (NORed for negated operators).
#[derive(Debug, Clone, PartialEq)]
pub struct ConditionEntry {
    pub(crate) key: ConditionKey,
    pub(crate) values: Vec<ConditionValue>,
    pub(crate) form: Form,
}

impl ConditionEntry {
    /// The condition key, as written.
    pub fn key(&self) -> &ConditionKey {
        &self.key
    }
    /// The values the key is compared with; any one may match (OR).
    pub fn values(&self) -> &[ConditionValue] {
        &self.values
    }
}

/// A condition key name. Names are case-insensitive, so we keep the lowercase form for lookup
/// and the author's spelling for display and re-serialisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConditionKey {
    pub(crate) text: String,
    pub(crate) lower: String,
}

impl ConditionKey {
    pub(crate) fn new(text: &str) -> Self {
        ConditionKey {
            text: text.to_string(),
            lower: text.to_lowercase(),
        }
    }
    /// The key as the policy spells it (lookups ignore case).
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// A condition value as written (JSON numbers and booleans are kept as their text, which is
/// how IAM treats them) plus its compiled form.
#[derive(Debug, Clone)]
pub struct ConditionValue {
    pub(crate) text: String,
    pub(crate) compiled: Compiled,
}

impl PartialEq for ConditionValue {
    /// The compiled form is a function of the text and the operator, so the text decides.
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl ConditionValue {
    /// The value as written in the policy.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// Text that may contain policy variables.
#[derive(Debug, Clone)]
pub(crate) enum Text<T> {
    Static(T),
    Dynamic(Template),
}

#[derive(Debug, Clone)]
pub(crate) enum Compiled {
    /// StringEquals / StringNotEquals.
    Exact(Text<String>),
    /// StringEqualsIgnoreCase / StringNotEqualsIgnoreCase (static text already lowercased).
    IgnoreCase(Text<String>),
    /// StringLike / StringNotLike.
    Like(Text<Glob<'static>>),
    Arn(Text<ArnPattern<'static>>),
    Number(Number),
    Date(Timestamp),
    Bool(Text<bool>),
    Binary(Vec<u8>),
    Ip(Cidr),
    Null(bool),
}

/// Compiles one condition value for `op`. `variables` is true only for 2012-10-17 documents.
pub(crate) fn compile_value(
    op: &ConditionOperator,
    text: &str,
    variables: bool,
) -> Result<Compiled, String> {
    use BaseOperator as B;
    let template = |t: &str| -> Result<Option<Template>, String> {
        if variables {
            crate::variables::parse(t).map_err(|e| format!("invalid policy variable: {e}"))
        } else {
            Ok(None)
        }
    };
    Ok(match op.base {
        B::StringEquals | B::StringNotEquals => Compiled::Exact(match template(text)? {
            Some(t) => Text::Dynamic(t),
            None => Text::Static(text.to_string()),
        }),
        B::StringEqualsIgnoreCase | B::StringNotEqualsIgnoreCase => {
            Compiled::IgnoreCase(match template(text)? {
                Some(t) => Text::Dynamic(t),
                None => Text::Static(text.to_lowercase()),
            })
        }
        B::StringLike | B::StringNotLike => Compiled::Like(match template(text)? {
            Some(t) => Text::Dynamic(t),
            None => Text::Static(Glob::new(text)),
        }),
        B::ArnEquals | B::ArnLike | B::ArnNotEquals | B::ArnNotLike => {
            Compiled::Arn(match template(text)? {
                Some(t) => Text::Dynamic(t),
                None => Text::Static(ArnPattern::new(text)),
            })
        }
        B::NumericEquals
        | B::NumericNotEquals
        | B::NumericLessThan
        | B::NumericLessThanEquals
        | B::NumericGreaterThan
        | B::NumericGreaterThanEquals => Compiled::Number(
            text.parse()
                .map_err(|_| "not an integer or decimal number".to_string())?,
        ),
        B::DateEquals
        | B::DateNotEquals
        | B::DateLessThan
        | B::DateLessThanEquals
        | B::DateGreaterThan
        | B::DateGreaterThanEquals => Compiled::Date(
            text.parse()
                .map_err(|_| "not an ISO 8601 date/time or epoch seconds".to_string())?,
        ),
        B::Bool => match template(text)? {
            Some(t) => Compiled::Bool(Text::Dynamic(t)),
            None => Compiled::Bool(Text::Static(parse_bool(text)?)),
        },
        B::BinaryEquals => Compiled::Binary(
            base64::engine::general_purpose::STANDARD
                .decode(text.trim())
                .map_err(|_| "not base64".to_string())?,
        ),
        B::IpAddress | B::NotIpAddress => Compiled::Ip(
            text.parse()
                .map_err(|e: crate::value::NotACidr| e.0.to_string())?,
        ),
        B::Null => Compiled::Null(parse_bool(text)?),
    })
}

fn parse_bool(text: &str) -> Result<bool, String> {
    if text.eq_ignore_ascii_case("true") {
        Ok(true)
    } else if text.eq_ignore_ascii_case("false") {
        Ok(false)
    } else {
        Err("expected true or false".to_string())
    }
}
