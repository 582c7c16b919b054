//! Condition operator names: `[ForAllValues:|ForAnyValue:]Base[IfExists]`.

use std::fmt;

/// The set qualifier used with multivalued keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SetOperator {
    /// Every request value must match (true for a missing key or an empty set).
    ForAllValues,
    /// At least one request value must match (false for a missing key or an empty set).
    ForAnyValue,
}

macro_rules! base_operators {
    ($($name:ident => $negated:expr),* $(,)?) => {
        /// The comparison an operator performs.
        // The variants are IAM's condition operator names, documented by
        // IAM (the policy grammar's reference); a line each here would only
        // repeat the name.
        #[allow(missing_docs)]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum BaseOperator { $($name),* }

        impl BaseOperator {
            /// Every operator, for tests and tooling.
            pub const ALL: &'static [BaseOperator] = &[$(BaseOperator::$name),*];

            /// The operator's name as policies write it, e.g. `StringLike`.
            pub fn name(self) -> &'static str {
                match self { $(BaseOperator::$name => stringify!($name)),* }
            }

            fn from_name(s: &str) -> Option<Self> {
                match s { $(stringify!($name) => Some(BaseOperator::$name),)* _ => None }
            }

            /// Negated operators are true when the key is missing and NOR their values.
            pub fn is_negated(self) -> bool {
                match self { $(BaseOperator::$name => $negated),* }
            }
        }
    };
}

base_operators! {
    StringEquals => false,
    StringNotEquals => true,
    StringEqualsIgnoreCase => false,
    StringNotEqualsIgnoreCase => true,
    StringLike => false,
    StringNotLike => true,
    NumericEquals => false,
    NumericNotEquals => true,
    NumericLessThan => false,
    NumericLessThanEquals => false,
    NumericGreaterThan => false,
    NumericGreaterThanEquals => false,
    DateEquals => false,
    DateNotEquals => true,
    DateLessThan => false,
    DateLessThanEquals => false,
    DateGreaterThan => false,
    DateGreaterThanEquals => false,
    Bool => false,
    BinaryEquals => false,
    IpAddress => false,
    NotIpAddress => true,
    ArnEquals => false,
    ArnLike => false,
    ArnNotEquals => true,
    ArnNotLike => true,
    Null => false,
}

/// A full operator such as `ForAnyValue:StringLikeIfExists`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConditionOperator {
    /// `ForAllValues:` or `ForAnyValue:`, if the name has one.
    pub set: Option<SetOperator>,
    /// The comparison itself.
    pub base: BaseOperator,
    /// The name ends in `IfExists`: an absent key satisfies the condition.
    pub if_exists: bool,
}

impl ConditionOperator {
    /// Parses an operator name. Names are case-sensitive, as policy element names are.
    /// `Null` takes neither a set qualifier nor `IfExists`: it is itself the existence test.
    pub fn parse(name: &str) -> Option<Self> {
        let (set, rest) = if let Some(r) = name.strip_prefix("ForAllValues:") {
            (Some(SetOperator::ForAllValues), r)
        } else if let Some(r) = name.strip_prefix("ForAnyValue:") {
            (Some(SetOperator::ForAnyValue), r)
        } else {
            (None, name)
        };
        let (if_exists, base_name) = match rest.strip_suffix("IfExists") {
            Some(b) => (true, b),
            None => (false, rest),
        };
        let base = BaseOperator::from_name(base_name)?;
        if base == BaseOperator::Null && (if_exists || set.is_some()) {
            return None;
        }
        Some(ConditionOperator {
            set,
            base,
            if_exists,
        })
    }

    /// Whether the base operator is a negated one (`StringNotEquals`, `NotIpAddress`...).
    pub fn is_negated(&self) -> bool {
        self.base.is_negated()
    }
}

impl fmt::Display for ConditionOperator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.set {
            Some(SetOperator::ForAllValues) => f.write_str("ForAllValues:")?,
            Some(SetOperator::ForAnyValue) => f.write_str("ForAnyValue:")?,
            None => {}
        }
        f.write_str(self.base.name())?;
        if self.if_exists {
            f.write_str("IfExists")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operator_round_trips_through_its_name() {
        for &base in BaseOperator::ALL {
            for set in [
                None,
                Some(SetOperator::ForAllValues),
                Some(SetOperator::ForAnyValue),
            ] {
                for if_exists in [false, true] {
                    let op = ConditionOperator {
                        set,
                        base,
                        if_exists,
                    };
                    let parsed = ConditionOperator::parse(&op.to_string());
                    if base == BaseOperator::Null && (set.is_some() || if_exists) {
                        assert_eq!(parsed, None);
                    } else {
                        assert_eq!(parsed, Some(op));
                    }
                }
            }
        }
    }

    #[test]
    fn operator_names_are_case_sensitive() {
        assert!(ConditionOperator::parse("stringequals").is_none());
        assert!(ConditionOperator::parse("forallvalues:StringEquals").is_none());
        assert!(ConditionOperator::parse("StringEqual").is_none());
    }
}
