//! Condition evaluation.
//!
//! The rules, from the IAM condition-operator and multivalued-key documentation:
//! * blocks AND, keys within a block AND, values of one key OR — except negated operators,
//!   whose values NOR (the request value must differ from every listed value);
//! * a key absent from the request makes a positive operator false and a negated one true;
//!   `...IfExists` makes any operator true on an absent key; `Null` tests absence itself;
//! * `ForAllValues:` is true when every request value matches (vacuously true for an absent
//!   key or an empty set); `ForAnyValue:` needs at least one matching request value (false for
//!   an absent key or an empty set); with a negated base operator, "matches" means "differs
//!   from every listed value";
//! * a plain operator applied to a multivalued key behaves like `ForAnyValue:` for positive
//!   operators and like its exact negation (no request value matches) for negated ones.
//!
//! A request value that cannot be read as the operator's type (`"abc"` for `NumericEquals`)
//! never satisfies the condition, whether the operator is positive or negated.

use super::{BaseOperator, Compiled, Condition, ConditionEntry, OperatorBlock, SetOperator, Text};
use crate::matching::arn::ArnPattern;
use crate::matching::glob::{Glob, Subject};
use crate::value::{Context, ContextValue, ContextValues};
use std::cmp::Ordering;

/// Why a condition did not hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConditionFailReason {
    /// The key is absent from the request and the operator needs it.
    KeyMissing,
    /// `ForAnyValue:` found no request values (absent key or empty set).
    NoRequestValues,
    /// No request value matched any policy value (positive operator).
    NoValueMatched,
    /// Some request value did not match (`ForAllValues:`).
    NotAllValuesMatched,
    /// A request value matched a listed value of a negated operator.
    NegatedValueMatched,
    /// A request value could not be read as the operator's type.
    IncomparableValue,
    /// `Null`: the key's presence is the opposite of what the policy requires.
    NullCheckFailed {
        /// Whether the key was present in the request.
        key_present: bool,
    },
}

/// The first condition entry that did not hold, with references into the policy.
#[derive(Debug, Clone, Copy)]
pub struct ConditionFailure<'a> {
    /// The operator block the entry belongs to.
    pub block: &'a OperatorBlock,
    /// The key and values that did not hold.
    pub entry: &'a ConditionEntry,
    /// Why the entry did not hold.
    pub reason: ConditionFailReason,
}

pub(crate) fn evaluate_condition<'a>(
    cond: &'a Condition,
    ctx: &Context,
) -> Result<(), ConditionFailure<'a>> {
    for block in &cond.blocks {
        for entry in &block.entries {
            if let Err(reason) = evaluate_entry(block, entry, ctx) {
                return Err(ConditionFailure {
                    block,
                    entry,
                    reason,
                });
            }
        }
    }
    Ok(())
}

fn evaluate_entry(
    block: &OperatorBlock,
    entry: &ConditionEntry,
    ctx: &Context,
) -> Result<(), ConditionFailReason> {
    let op = &block.operator;
    let found = ctx.get_lower(&entry.key.lower).map(|e| &e.values);
    if op.base == BaseOperator::Null {
        // An empty multivalued set counts as null, like an absent key.
        let absent = match found {
            None => true,
            Some(ContextValues::Multi(v)) => v.is_empty(),
            Some(ContextValues::Single(_)) => false,
        };
        let ok = entry
            .values
            .iter()
            .any(|v| matches!(v.compiled, Compiled::Null(want_absent) if want_absent == absent));
        return if ok {
            Ok(())
        } else {
            Err(ConditionFailReason::NullCheckFailed {
                key_present: !absent,
            })
        };
    }
    let negated = op.is_negated();
    let Some(found) = found else {
        if op.if_exists {
            return Ok(());
        }
        return match op.set {
            Some(SetOperator::ForAllValues) => Ok(()),
            Some(SetOperator::ForAnyValue) => Err(ConditionFailReason::NoRequestValues),
            None if negated => Ok(()),
            None => Err(ConditionFailReason::KeyMissing),
        };
    };
    let values = found.as_slice();
    // A multivalued key tries every listed value on each of its values: substitute policy
    // variables (and compile the patterns they make) once, not once per request value.
    let prepared = if values.len() > 1 {
        prepare(&entry.values, ctx)
    } else {
        None
    };
    // Per request value: Some(true) = matches some listed value (positive sense).
    let m = |r: &ContextValue| matches_any(op.base, &entry.values, prepared.as_deref(), r, ctx);
    match op.set {
        Some(SetOperator::ForAllValues) => {
            for r in values {
                match (m(r), negated) {
                    (Some(true), false) | (Some(false), true) => {}
                    (None, _) => return Err(ConditionFailReason::IncomparableValue),
                    (Some(true), true) => return Err(ConditionFailReason::NegatedValueMatched),
                    (Some(false), false) => return Err(ConditionFailReason::NotAllValuesMatched),
                }
            }
            Ok(())
        }
        Some(SetOperator::ForAnyValue) => {
            if values.is_empty() {
                return Err(ConditionFailReason::NoRequestValues);
            }
            let mut saw_incomparable = false;
            for r in values {
                match (m(r), negated) {
                    (Some(true), false) | (Some(false), true) => return Ok(()),
                    (None, _) => saw_incomparable = true,
                    _ => {}
                }
            }
            Err(if saw_incomparable {
                ConditionFailReason::IncomparableValue
            } else if negated {
                ConditionFailReason::NegatedValueMatched
            } else {
                ConditionFailReason::NoValueMatched
            })
        }
        None if !negated => {
            let mut saw_incomparable = false;
            for r in values {
                match m(r) {
                    Some(true) => return Ok(()),
                    None => saw_incomparable = true,
                    Some(false) => {}
                }
            }
            Err(if saw_incomparable {
                ConditionFailReason::IncomparableValue
            } else {
                ConditionFailReason::NoValueMatched
            })
        }
        None => {
            for r in values {
                match m(r) {
                    Some(false) => {}
                    Some(true) => return Err(ConditionFailReason::NegatedValueMatched),
                    None => return Err(ConditionFailReason::IncomparableValue),
                }
            }
            Ok(())
        }
    }
}

/// A policy value with its variables substituted, for a request key with several values.
enum Resolved<'c> {
    /// No variables: the compiled value serves as it is.
    Static,
    /// A variable without a value (and no default): matches nothing.
    Nothing,
    /// Equality operators' text (lowercased for the IgnoreCase ones).
    Text(String),
    Like(Glob<'c>),
    Arn(ArnPattern<'c>),
}

/// The entry's values with their variables substituted, or `None` if none has variables.
fn prepare<'c>(values: &'c [super::ConditionValue], ctx: &'c Context) -> Option<Vec<Resolved<'c>>> {
    let dynamic = |c: &Compiled| {
        matches!(
            c,
            Compiled::Exact(Text::Dynamic(_))
                | Compiled::IgnoreCase(Text::Dynamic(_))
                | Compiled::Like(Text::Dynamic(_))
                | Compiled::Arn(Text::Dynamic(_))
        )
    };
    if !values.iter().any(|v| dynamic(&v.compiled)) {
        return None;
    }
    Some(
        values
            .iter()
            .map(|v| match &v.compiled {
                Compiled::Exact(Text::Dynamic(t)) => t
                    .resolve_text(ctx)
                    .map_or(Resolved::Nothing, Resolved::Text),
                Compiled::IgnoreCase(Text::Dynamic(t)) => t
                    .resolve_text(ctx)
                    .map_or(Resolved::Nothing, |s| Resolved::Text(s.to_lowercase())),
                Compiled::Like(Text::Dynamic(t)) => {
                    t.resolve_segs(ctx).map_or(Resolved::Nothing, |segs| {
                        Resolved::Like(Glob::from_segs(&segs))
                    })
                }
                Compiled::Arn(Text::Dynamic(t)) => {
                    t.resolve_segs(ctx).map_or(Resolved::Nothing, |segs| {
                        Resolved::Arn(ArnPattern::from_segs(&segs))
                    })
                }
                _ => Resolved::Static,
            })
            .collect(),
    )
}

/// Whether a string or ARN operator's policy value matches `text` (the subject's text).
fn string_value_matches(
    v: &super::ConditionValue,
    text: &str,
    subject: &mut Subject<'_>,
    ctx: &Context,
) -> bool {
    let len = text.len();
    match &v.compiled {
        Compiled::Exact(Text::Static(s)) => s == text,
        Compiled::Exact(Text::Dynamic(t)) => t.resolve_text(ctx).is_some_and(|s| s == text),
        Compiled::Like(Text::Static(g)) => g.matches(subject, 0, len),
        Compiled::Like(Text::Dynamic(t)) => t
            .resolve_segs(ctx)
            .is_some_and(|segs| Glob::from_segs(&segs).matches(subject, 0, len)),
        Compiled::Arn(Text::Static(p)) => p.matches(subject),
        Compiled::Arn(Text::Dynamic(t)) => t
            .resolve_segs(ctx)
            .is_some_and(|segs| ArnPattern::from_segs(&segs).matches(subject)),
        _ => false,
    }
}

/// Whether request value `r` matches any of the policy values in the operator's positive sense
/// (`StringNotEquals` is asked "equal to any?"). `None` if `r` cannot be read as the
/// operator's type. A policy value whose variables do not resolve matches nothing.
/// `prepared`, when given, holds the values with their variables already substituted.
fn matches_any(
    base: BaseOperator,
    values: &[super::ConditionValue],
    prepared: Option<&[Resolved<'_>]>,
    r: &ContextValue,
    ctx: &Context,
) -> Option<bool> {
    use BaseOperator as B;
    match base {
        B::StringEquals
        | B::StringNotEquals
        | B::StringLike
        | B::StringNotLike
        | B::ArnEquals
        | B::ArnLike
        | B::ArnNotEquals
        | B::ArnNotLike => {
            let text = r.as_text();
            // One subject for all the values: patterns share its index (see `glob`).
            let mut subject = Subject::new(&text, ctx.scratch());
            let len = text.len();
            Some(match prepared {
                None => values
                    .iter()
                    .any(|v| string_value_matches(v, &text, &mut subject, ctx)),
                Some(p) => values.iter().zip(p).any(|(v, pr)| match pr {
                    Resolved::Static => string_value_matches(v, &text, &mut subject, ctx),
                    Resolved::Nothing => false,
                    Resolved::Text(s) => *s == *text,
                    Resolved::Like(g) => g.matches(&mut subject, 0, len),
                    Resolved::Arn(a) => a.matches(&mut subject),
                }),
            })
        }
        B::StringEqualsIgnoreCase | B::StringNotEqualsIgnoreCase => {
            let text = r.as_text().to_lowercase();
            Some(values.iter().enumerate().any(|(i, v)| {
                match (&v.compiled, prepared.and_then(|p| p.get(i))) {
                    (_, Some(Resolved::Nothing)) => false,
                    (_, Some(Resolved::Text(s))) => *s == text,
                    (Compiled::IgnoreCase(Text::Static(s)), _) => *s == text,
                    (Compiled::IgnoreCase(Text::Dynamic(t)), _) => t
                        .resolve_text(ctx)
                        .is_some_and(|s| s.to_lowercase() == text),
                    _ => false,
                }
            }))
        }
        B::NumericEquals
        | B::NumericNotEquals
        | B::NumericLessThan
        | B::NumericLessThanEquals
        | B::NumericGreaterThan
        | B::NumericGreaterThanEquals => {
            let n = r.as_number()?;
            Some(values.iter().any(|v| match &v.compiled {
                Compiled::Number(p) => ordered(base, n.cmp(p)),
                _ => false,
            }))
        }
        B::DateEquals
        | B::DateNotEquals
        | B::DateLessThan
        | B::DateLessThanEquals
        | B::DateGreaterThan
        | B::DateGreaterThanEquals => {
            let d = r.as_date()?;
            Some(values.iter().any(|v| match &v.compiled {
                Compiled::Date(p) => ordered(base, d.cmp(p)),
                _ => false,
            }))
        }
        B::Bool => {
            let b = r.as_bool()?;
            Some(values.iter().any(|v| match &v.compiled {
                Compiled::Bool(Text::Static(p)) => *p == b,
                Compiled::Bool(Text::Dynamic(t)) => t.resolve_text(ctx).is_some_and(|s| {
                    (s.eq_ignore_ascii_case("true") && b) || (s.eq_ignore_ascii_case("false") && !b)
                }),
                _ => false,
            }))
        }
        B::BinaryEquals => {
            let bytes = r.as_bytes()?;
            Some(values.iter().any(|v| match &v.compiled {
                Compiled::Binary(p) => p.as_slice() == bytes.as_ref(),
                _ => false,
            }))
        }
        B::IpAddress | B::NotIpAddress => {
            let ip = r.as_ip()?;
            Some(values.iter().any(|v| match &v.compiled {
                Compiled::Ip(c) => c.contains(ip),
                _ => false,
            }))
        }
        B::Null => Some(false),
    }
}

/// `request <op> policy` for the ordered operators; the Equals/NotEquals forms ask "equal?".
fn ordered(base: BaseOperator, ord: Ordering) -> bool {
    use BaseOperator as B;
    match base {
        B::NumericEquals | B::NumericNotEquals | B::DateEquals | B::DateNotEquals => {
            ord == Ordering::Equal
        }
        B::NumericLessThan | B::DateLessThan => ord == Ordering::Less,
        B::NumericLessThanEquals | B::DateLessThanEquals => ord != Ordering::Greater,
        B::NumericGreaterThan | B::DateGreaterThan => ord == Ordering::Greater,
        B::NumericGreaterThanEquals | B::DateGreaterThanEquals => ord != Ordering::Less,
        _ => false,
    }
}
