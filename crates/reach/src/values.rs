//! Representative values of one request-context key: one per cell of the
//! partition that the conditions reading the key induce.
//!
//! A condition entry's verdict on a key depends only on which of its values
//! the request's value matches (or, for a multivalued key, on which such
//! match sets its values have). So the key's possible values fall into
//! cells: values with the same answer to every comparison some policy
//! makes. One representative per non-empty cell, plus "absent", covers every
//! request. Per operator family:
//!
//! * strings and ARNs: the Venn cells of the literal and wildcard patterns,
//!   found by [`crate::pattern::cells`];
//! * numbers and dates: every constant, one point strictly between each
//!   two consecutive constants, one below and one above them all (the
//!   comparisons `=`, `<`, `<=`, `>`, `>=` against the constants are
//!   constant on each open interval), and a value that is not a number or
//!   date (never satisfies the operator);
//! * IP addresses: each range is an interval of addresses; the elementary
//!   intervals between range boundaries start at `0`, at a range's first
//!   address or right after a range's last one, so those addresses are the
//!   representatives (IPv4 and IPv6; an IPv4-mapped IPv6 address compares as
//!   its IPv4 address, so it adds no cell);
//! * `Bool`: `true` and `false`;
//! * `Null` alone: absent or present (any value).
//!
//! A key read with a set operator (`ForAnyValue:`, `ForAllValues:`) is
//! multivalued: its representatives are the empty set and every non-empty
//! set of the single-value representatives (the verdict depends on which
//! cells the values fall in, not on how many values share one), bounded by
//! [`MAX_SET_CELLS`]. Keys compared by two families (a string operator and a
//! numeric one), by both case-sensitive and `IgnoreCase` string operators,
//! with `BinaryEquals`, or with policy variables are outside the encoding:
//! [`KeyUse::representatives`] says so and why.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ferrokms_policy::{
    BaseOperator, Cidr, ConditionOperator, ContextValue, ContextValues, Number, Timestamp,
};

use crate::pattern::{cells, Pattern};

/// At most this many single-value cells for a multivalued key (its sets
/// of cells number 2^n).
pub const MAX_SET_CELLS: usize = 8;

/// States the string-cell search may visit per key.
const PATTERN_STATES: usize = 200_000;

/// The operator families, which must not mix on one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Text { fold: bool },
    Number,
    Date,
    Ip,
    Bool,
}

/// What the policies compare one context key with.
#[derive(Debug, Clone, Default)]
pub struct KeyUse {
    /// The key, lowercased.
    pub key: String,
    family: Option<Family>,
    patterns: Vec<Pattern>,
    numbers: Vec<Number>,
    dates: Vec<Timestamp>,
    cidrs: Vec<Cidr>,
    multi: bool,
    problem: Option<String>,
    /// The values compared for equality (not as patterns).
    literals: Vec<String>,
}

impl KeyUse {
    /// A key no condition has compared yet.
    pub fn new(key: &str) -> Self {
        KeyUse {
            key: key.to_lowercase(),
            ..KeyUse::default()
        }
    }

    fn family(&mut self, f: Family) {
        match self.family {
            None => self.family = Some(f),
            Some(g) if g == f => {}
            Some(Family::Text { .. }) if matches!(f, Family::Text { .. }) => {
                self.fail("compared both case-sensitively and with an IgnoreCase operator");
            }
            Some(_) => {
                self.fail("compared by operators of two types (string, number, date, IP, Bool)");
            }
        }
    }

    fn fail(&mut self, why: &str) {
        if self.problem.is_none() {
            self.problem = Some(format!("condition key {}: {why}", self.key));
        }
    }

    /// Records one condition entry: its operator and its values as
    /// written. `variables`: the policy interprets `${...}`.
    pub fn add(&mut self, op: &ConditionOperator, values: &[&str], variables: bool) {
        use BaseOperator as B;
        if op.set.is_some() {
            self.multi = true;
        }
        if variables && values.iter().any(|v| v.contains("${")) {
            self.fail("a policy variable in a condition value");
            return;
        }
        match op.base {
            B::Null => {}
            B::StringEquals | B::StringNotEquals => {
                self.family(Family::Text { fold: false });
                self.literals
                    .extend(values.iter().map(|v| (*v).to_string()));
                self.patterns
                    .extend(values.iter().map(|v| Pattern::literal(v)));
            }
            B::StringEqualsIgnoreCase | B::StringNotEqualsIgnoreCase => {
                self.family(Family::Text { fold: true });
                if values.iter().any(|v| !v.is_ascii()) {
                    self.fail("a non-ASCII value under an IgnoreCase operator");
                }
                self.patterns
                    .extend(values.iter().map(|v| Pattern::literal(&v.to_lowercase())));
            }
            B::StringLike | B::StringNotLike => {
                self.family(Family::Text { fold: false });
                self.patterns
                    .extend(values.iter().map(|v| Pattern::glob(v)));
            }
            B::ArnEquals | B::ArnLike | B::ArnNotEquals | B::ArnNotLike => {
                self.family(Family::Text { fold: false });
                self.patterns.extend(values.iter().map(|v| Pattern::arn(v)));
            }
            B::NumericEquals
            | B::NumericNotEquals
            | B::NumericLessThan
            | B::NumericLessThanEquals
            | B::NumericGreaterThan
            | B::NumericGreaterThanEquals => {
                self.family(Family::Number);
                self.numbers
                    .extend(values.iter().filter_map(|v| v.parse::<Number>().ok()));
            }
            B::DateEquals
            | B::DateNotEquals
            | B::DateLessThan
            | B::DateLessThanEquals
            | B::DateGreaterThan
            | B::DateGreaterThanEquals => {
                self.family(Family::Date);
                self.dates
                    .extend(values.iter().filter_map(|v| v.parse::<Timestamp>().ok()));
            }
            B::IpAddress | B::NotIpAddress => {
                self.family(Family::Ip);
                self.cidrs
                    .extend(values.iter().filter_map(|v| v.parse::<Cidr>().ok()));
            }
            B::Bool => self.family(Family::Bool),
            B::BinaryEquals => self.fail("BinaryEquals is outside the encoding"),
        }
    }

    /// Whether some policy compares the key with a set operator.
    pub fn is_multi(&self) -> bool {
        self.multi
    }

    /// Takes the key as multivalued: some policy of the analysis (not
    /// necessarily one this pair reads) compares it with a set operator.
    pub fn set_multi(&mut self) {
        self.multi = true;
    }

    /// A value something other than a condition compares exactly (a grant
    /// constraint's encryption-context value, its source ARN).
    pub fn add_literal(&mut self, value: &str) {
        self.family(Family::Text { fold: false });
        self.patterns.push(Pattern::literal(value));
        self.literals.push(value.to_string());
    }

    /// The string patterns and the literal values, for a key whose values
    /// are searched under a shape (account ids); an error if the key is
    /// compared otherwise than as a string.
    pub fn text_patterns(&self) -> Result<(Vec<Pattern>, Vec<String>), String> {
        if let Some(p) = &self.problem {
            return Err(p.clone());
        }
        match self.family {
            None | Some(Family::Text { .. }) => Ok((self.patterns.clone(), self.literals.clone())),
            Some(_) => Err(format!(
                "condition key {}: compared otherwise than as a string",
                self.key
            )),
        }
    }

    /// One value per cell, `None` standing for "absent"; or why the key is
    /// outside the encoding.
    pub fn representatives(&self) -> Result<Vec<Option<ContextValues>>, String> {
        if let Some(p) = &self.problem {
            return Err(p.clone());
        }
        let singles: Vec<ContextValue> = match self.family {
            None => vec![ContextValue::String("reach-value".into())],
            Some(Family::Text { fold }) => cells(&self.patterns, &[], fold, PATTERN_STATES)
                .map_err(|e| {
                    format!(
                        "condition key {}: more than {} pattern states",
                        self.key, e.0
                    )
                })?
                .into_iter()
                .map(|c| ContextValue::String(c.witness))
                .collect(),
            Some(Family::Number) => number_points(&self.numbers)
                .map_err(|e| format!("condition key {}: {e}", self.key))?
                .into_iter()
                .map(ContextValue::Number)
                .chain([ContextValue::String("reach-not-a-number".into())])
                .collect(),
            Some(Family::Date) => date_points(&self.dates)
                .map_err(|e| format!("condition key {}: {e}", self.key))?
                .into_iter()
                .map(ContextValue::Date)
                .chain([ContextValue::String("reach-not-a-date".into())])
                .collect(),
            Some(Family::Ip) => ip_points(&self.cidrs)
                .into_iter()
                .map(ContextValue::Ip)
                .collect(),
            Some(Family::Bool) => vec![ContextValue::Bool(true), ContextValue::Bool(false)],
        };
        let mut out: Vec<Option<ContextValues>> = vec![None];
        if self.multi {
            if singles.len() > MAX_SET_CELLS {
                return Err(format!(
                    "multivalued condition key {}: {} cells, over the bound of {MAX_SET_CELLS}",
                    self.key,
                    singles.len()
                ));
            }
            for mask in 0u32..(1 << singles.len()) {
                let set: Vec<ContextValue> = singles
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| mask & (1 << i) != 0)
                    .map(|(_, v)| v.clone())
                    .collect();
                out.push(Some(ContextValues::Multi(set)));
            }
        } else {
            out.extend(singles.into_iter().map(|v| Some(ContextValues::Single(v))));
        }
        Ok(out)
    }
}

fn number_points(consts: &[Number]) -> Result<Vec<Number>, String> {
    let mut c: Vec<Number> = consts.to_vec();
    c.sort();
    c.dedup();
    let Some((first, last)) = c.first().zip(c.last()) else {
        return Ok(vec![parse_num("0")?]);
    };
    let f = |n: &Number| n.to_string().parse::<f64>().unwrap_or(0.0);
    let mut out = vec![
        checked_num(f(first) - 1.0, Some(first), None)?,
        checked_num(f(last) + 1.0, None, Some(last))?,
    ];
    for w in c.windows(2) {
        out.push(checked_num(
            (f(&w[0]) + f(&w[1])) / 2.0,
            Some(&w[1]),
            Some(&w[0]),
        )?);
    }
    out.extend(c);
    Ok(out)
}

fn parse_num(s: &str) -> Result<Number, String> {
    s.parse::<Number>()
        .map_err(|_| format!("cannot write {s} as a number"))
}

/// `x` as a decimal strictly below `below` and above `above`.
fn checked_num(x: f64, below: Option<&Number>, above: Option<&Number>) -> Result<Number, String> {
    let n = parse_num(&format!("{x:.6}"))?;
    let ok = below.is_none_or(|b| n < *b) && above.is_none_or(|a| n > *a);
    if ok {
        Ok(n)
    } else {
        Err("numeric constants too close together to separate".into())
    }
}

fn date_points(consts: &[Timestamp]) -> Result<Vec<Timestamp>, String> {
    let mut c: Vec<Timestamp> = consts.to_vec();
    c.sort();
    c.dedup();
    let (early, late) = (
        Timestamp::from_epoch_seconds(-(1i64 << 40)),
        Timestamp::from_epoch_seconds(1i64 << 40),
    );
    let Some((first, last)) = c.first().copied().zip(c.last().copied()) else {
        return Ok(vec![Timestamp::from_epoch_seconds(0)]);
    };
    if early >= first || late <= last {
        return Err("date constant out of range".into());
    }
    let mut out = vec![early, late];
    for w in c.windows(2) {
        // One nanosecond after the earlier constant: if that is not
        // before the later one, the gap between them is empty.
        let m = next_nanosecond(w[0])?;
        if m < w[1] {
            out.push(m);
        }
    }
    out.extend(c);
    Ok(out)
}

/// The instant one nanosecond after `t` (written as ISO 8601 with nine
/// fraction digits and read back by the engine's own parser).
fn next_nanosecond(t: Timestamp) -> Result<Timestamp, String> {
    let text = t.to_string();
    let body = text.strip_suffix('Z').unwrap_or(&text);
    let (head, frac) = body.split_once('.').unwrap_or((body, ""));
    let nanos: u32 = format!("{frac:0<9}").parse().unwrap_or(0);
    let next = if nanos < 999_999_999 {
        format!("{head}.{:09}Z", nanos + 1)
    } else {
        return Err("a date constant one nanosecond before a whole second".into());
    };
    let n: Timestamp = next
        .parse()
        .map_err(|_| format!("cannot write the instant after {text}"))?;
    if n > t {
        Ok(n)
    } else {
        Err(format!("cannot write the instant after {text}"))
    }
}

fn ip_points(cidrs: &[Cidr]) -> Vec<IpAddr> {
    let mut v4: Vec<u32> = vec![0];
    let mut v6: Vec<u128> = vec![2];
    for c in cidrs {
        let text = c.to_string();
        let Some((net, prefix)) = text.split_once('/') else {
            continue;
        };
        let Ok(prefix) = prefix.parse::<u32>() else {
            continue;
        };
        match net.parse::<IpAddr>() {
            Ok(IpAddr::V4(a)) => {
                let mask = if prefix == 0 {
                    0
                } else {
                    u32::MAX << (32 - prefix.min(32))
                };
                let lo = u32::from(a) & mask;
                let hi = lo | !mask;
                v4.push(lo);
                if let Some(n) = hi.checked_add(1) {
                    v4.push(n);
                }
            }
            Ok(IpAddr::V6(a)) => {
                let mask = if prefix == 0 {
                    0
                } else {
                    u128::MAX << (128 - prefix.min(128))
                };
                let lo = u128::from(a) & mask;
                let hi = lo | !mask;
                v6.push(lo);
                if let Some(n) = hi.checked_add(1) {
                    v6.push(n);
                }
            }
            Err(_) => {}
        }
    }
    v4.sort_unstable();
    v4.dedup();
    v6.sort_unstable();
    v6.dedup();
    // IPv4-mapped IPv6 addresses compare as IPv4: keep only IPv6 points
    // outside ::ffff:0:0/96 (move one that falls in it just past it).
    let mapped = 0xffff_u128 << 32;
    let v6 = v6.into_iter().map(|a| {
        if a >> 32 == 0xffff {
            mapped + (1 << 32)
        } else {
            a
        }
    });
    v4.into_iter()
        .map(|a| IpAddr::V4(Ipv4Addr::from(a)))
        .chain(v6.map(|a| IpAddr::V6(Ipv6Addr::from(a))))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(name: &str) -> ConditionOperator {
        ConditionOperator::parse(name).expect("operator")
    }

    fn count(u: &KeyUse) -> usize {
        u.representatives().expect("covered").len()
    }

    #[test]
    fn numbers_get_every_constant_and_a_point_in_each_gap() {
        let mut u = KeyUse::new("k");
        u.add(&op("NumericLessThan"), &["5", "10"], true);
        // absent, 4, 11, 7.5, 5, 10, not-a-number
        assert_eq!(count(&u), 7);
    }

    #[test]
    fn dates_get_an_instant_between_constants() {
        let mut u = KeyUse::new("aws:currenttime");
        u.add(
            &op("DateGreaterThan"),
            &["2024-01-01T00:00:00Z", "2024-01-01T00:00:02Z"],
            true,
        );
        let reps = u.representatives().expect("covered");
        let lo: Timestamp = "2024-01-01T00:00:00Z".parse().expect("date");
        let hi: Timestamp = "2024-01-01T00:00:02Z".parse().expect("date");
        assert!(reps.iter().any(
            |r| matches!(r, Some(ContextValues::Single(ContextValue::Date(d))) if *d > lo && *d < hi)
        ));
        // and one before and after both
        assert!(reps
            .iter()
            .any(|r| matches!(r, Some(ContextValues::Single(ContextValue::Date(d))) if *d < lo)));
        assert!(reps
            .iter()
            .any(|r| matches!(r, Some(ContextValues::Single(ContextValue::Date(d))) if *d > hi)));
    }

    #[test]
    fn ip_ranges_give_their_first_address_and_the_one_past_their_last() {
        let c: Cidr = "10.0.0.0/8".parse().expect("cidr");
        let pts = ip_points(&[c]);
        for want in ["0.0.0.0", "10.0.0.0", "11.0.0.0"] {
            assert!(
                pts.contains(&want.parse().expect("ip")),
                "{want} in {pts:?}"
            );
        }
    }

    #[test]
    fn mixing_families_is_outside_the_encoding() {
        let mut u = KeyUse::new("k");
        u.add(&op("StringEquals"), &["1"], true);
        u.add(&op("NumericEquals"), &["1"], true);
        assert!(u.representatives().is_err());
        let mut v = KeyUse::new("k");
        v.add(&op("StringLike"), &["${aws:username}"], true);
        assert!(v.representatives().is_err());
    }

    #[test]
    fn set_operators_make_sets_of_cells() {
        let mut u = KeyUse::new("aws:tagkeys");
        u.add(&op("ForAllValues:StringEquals"), &["a", "b"], true);
        // absent + 2^3 sets over the cells {a}, {b}, neither.
        assert_eq!(count(&u), 9);
    }
}
