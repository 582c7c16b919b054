//! Exact decimal numbers for the `Numeric*` operators.
//!
//! IAM compares integers and decimals. Converting to `f64` would make `9007199254740993`
//! equal to `9007199254740992`, so we compare the digits themselves instead.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

/// A decimal number, compared exactly. Parsed from `[+-]digits[.digits]`.
#[derive(Debug, Clone)]
pub struct Number {
    negative: bool,
    /// Integer digits without leading zeros ("" for zero).
    int: String,
    /// Fraction digits without trailing zeros.
    frac: String,
}

impl Number {
    fn is_zero(&self) -> bool {
        self.int.is_empty() && self.frac.is_empty()
    }

    fn cmp_magnitude(&self, other: &Self) -> Ordering {
        self.int
            .len()
            .cmp(&other.int.len())
            .then_with(|| self.int.cmp(&other.int))
            // With trailing zeros removed, comparing fraction strings as text compares values.
            .then_with(|| self.frac.cmp(&other.frac))
    }
}

/// Why a string is not a number; kept simple because callers wrap it in their own error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotANumber;

impl FromStr for Number {
    type Err = NotANumber;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let (negative, rest) = match t.as_bytes().first() {
            Some(b'-') => (true, &t[1..]),
            Some(b'+') => (false, &t[1..]),
            _ => (false, t),
        };
        let (int, frac) = match rest.split_once('.') {
            Some((i, f)) => (i, f),
            None => (rest, ""),
        };
        if int.is_empty() && frac.is_empty() {
            return Err(NotANumber);
        }
        if !int.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return Err(NotANumber);
        }
        if rest.contains('.') && frac.is_empty() && int.is_empty() {
            return Err(NotANumber);
        }
        let n = Number {
            negative,
            int: int.trim_start_matches('0').to_string(),
            frac: frac.trim_end_matches('0').to_string(),
        };
        Ok(Number {
            negative: negative && !n.is_zero(),
            ..n
        })
    }
}

impl PartialEq for Number {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Number {}

impl PartialOrd for Number {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Number {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self.negative, other.negative) {
            (false, true) => Ordering::Greater,
            (true, false) => Ordering::Less,
            (false, false) => self.cmp_magnitude(other),
            (true, true) => other.cmp_magnitude(self),
        }
    }
}

impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.negative {
            f.write_str("-")?;
        }
        if self.int.is_empty() {
            f.write_str("0")?;
        } else {
            f.write_str(&self.int)?;
        }
        if !self.frac.is_empty() {
            write!(f, ".{}", self.frac)?;
        }
        Ok(())
    }
}

impl From<i64> for Number {
    fn from(v: i64) -> Self {
        Number {
            negative: v < 0,
            int: v
                .unsigned_abs()
                .to_string()
                .trim_start_matches('0')
                .to_string(),
            frac: String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> Number {
        s.parse().unwrap_or_else(|_| panic!("{s} should parse"))
    }

    #[test]
    fn compares_exactly_beyond_f64_precision() {
        assert!(n("9007199254740993") > n("9007199254740992"));
        assert_eq!(n("10"), n("10.000"));
        assert_eq!(n("-0"), n("0"));
        assert!(n("-1.5") < n("-1.25"));
        assert!(n("0.5") < n("0.51"));
        assert!(n(".5") == n("0.5"));
        assert_eq!(n("007").to_string(), "7");
        assert_eq!(Number::from(-42).to_string(), "-42");
    }

    #[test]
    fn rejects_non_numbers() {
        for s in ["", "-", ".", "1e3", "abc", "1.2.3", "0x10", "1 2"] {
            assert!(s.parse::<Number>().is_err(), "{s}");
        }
    }
}
