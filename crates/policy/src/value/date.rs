//! Points in time for the `Date*` operators.
//!
//! IAM accepts the W3C profile of ISO 8601 (`2024-01-31`, `2024-01-31T12:00:00Z`,
//! `2024-01-31T12:00:00.5+02:00`, ...) and epoch seconds. We parse both into one UTC instant so
//! that a policy written one way compares correctly with a request value written the other.

use std::fmt;
use std::str::FromStr;

/// A UTC instant with nanosecond precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    secs: i64,
    nanos: u32,
}

/// The string is neither an ISO 8601 date/time nor epoch seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotADate;

impl Timestamp {
    /// Seconds since 1970-01-01T00:00:00Z.
    pub const fn from_epoch_seconds(secs: i64) -> Self {
        Timestamp { secs, nanos: 0 }
    }

    /// Seconds since the epoch (rounded down).
    pub const fn epoch_seconds(&self) -> i64 {
        self.secs
    }
}

use ferrokms_types::calendar::{civil_from_days, days_from_civil, days_in_month};

/// Reads exactly `n` ASCII digits.
fn digits(s: &[u8], at: &mut usize, n: usize) -> Result<u32, NotADate> {
    let part = s.get(*at..*at + n).ok_or(NotADate)?;
    let mut v = 0u32;
    for &b in part {
        if !b.is_ascii_digit() {
            return Err(NotADate);
        }
        v = v * 10 + u32::from(b - b'0');
    }
    *at += n;
    Ok(v)
}

fn expect(s: &[u8], at: &mut usize, c: u8) -> Result<(), NotADate> {
    if s.get(*at) == Some(&c) {
        *at += 1;
        Ok(())
    } else {
        Err(NotADate)
    }
}

fn parse_epoch(t: &str) -> Result<Timestamp, NotADate> {
    let (neg, body) = match t.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, t),
    };
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    if int.is_empty() || !int.bytes().all(|b| b.is_ascii_digit()) {
        return Err(NotADate);
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) || (body.contains('.') && frac.is_empty()) {
        return Err(NotADate);
    }
    let secs: i64 = int.parse().map_err(|_| NotADate)?;
    let mut nanos = 0u32;
    for (i, b) in frac.bytes().take(9).enumerate() {
        nanos += u32::from(b - b'0') * 10u32.pow(8 - i as u32);
    }
    if neg {
        if nanos == 0 {
            Ok(Timestamp { secs: -secs, nanos })
        } else {
            Ok(Timestamp {
                secs: -secs - 1,
                nanos: 1_000_000_000 - nanos,
            })
        }
    } else {
        Ok(Timestamp { secs, nanos })
    }
}

fn parse_iso(t: &str) -> Result<Timestamp, NotADate> {
    let s = t.as_bytes();
    let mut at = 0;
    let year = i64::from(digits(s, &mut at, 4)?);
    let (mut month, mut day) = (1, 1);
    let (mut hour, mut minute, mut second, mut nanos) = (0u32, 0u32, 0u32, 0u32);
    let mut offset_secs: i64 = 0;
    if at < s.len() {
        expect(s, &mut at, b'-')?;
        month = digits(s, &mut at, 2)?;
        if at < s.len() {
            expect(s, &mut at, b'-')?;
            day = digits(s, &mut at, 2)?;
            if at < s.len() {
                match s.get(at) {
                    Some(b'T' | b't') => at += 1,
                    _ => return Err(NotADate),
                }
                hour = digits(s, &mut at, 2)?;
                expect(s, &mut at, b':')?;
                minute = digits(s, &mut at, 2)?;
                if s.get(at) == Some(&b':') {
                    at += 1;
                    second = digits(s, &mut at, 2)?;
                    if s.get(at) == Some(&b'.') {
                        at += 1;
                        let start = at;
                        while s.get(at).is_some_and(u8::is_ascii_digit) {
                            if at - start < 9 {
                                nanos +=
                                    u32::from(s[at] - b'0') * 10u32.pow(8 - (at - start) as u32);
                            }
                            at += 1;
                        }
                        if at == start {
                            return Err(NotADate);
                        }
                    }
                }
                // Time zone designator; a missing one is read as UTC.
                match s.get(at) {
                    None => {}
                    Some(b'Z' | b'z') => at += 1,
                    Some(&sign @ (b'+' | b'-')) => {
                        at += 1;
                        let oh = digits(s, &mut at, 2)?;
                        expect(s, &mut at, b':')?;
                        let om = digits(s, &mut at, 2)?;
                        if oh > 23 || om > 59 {
                            return Err(NotADate);
                        }
                        let off = i64::from(oh * 3600 + om * 60);
                        offset_secs = if sign == b'+' { off } else { -off };
                    }
                    Some(_) => return Err(NotADate),
                }
            }
        }
    }
    if at != s.len()
        || !(1..=12).contains(&month)
        || day == 0
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return Err(NotADate);
    }
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + i64::from(hour * 3600 + minute * 60 + second) - offset_secs;
    Ok(Timestamp { secs, nanos })
}

impl FromStr for Timestamp {
    type Err = NotADate;

    /// All-digit strings (optionally signed, optionally with a fraction) are epoch seconds;
    /// anything else must be W3C ISO 8601.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        if t.len() > 64 {
            return Err(NotADate);
        }
        let body = t.strip_prefix('-').unwrap_or(t);
        if !body.is_empty() && body.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            parse_epoch(t)
        } else {
            parse_iso(t)
        }
    }
}

impl fmt::Display for Timestamp {
    /// RFC 3339 in UTC, the form `aws:CurrentTime` uses.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days = self.secs.div_euclid(86_400);
        let rem = self.secs.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        write!(
            f,
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
            rem / 3600,
            (rem % 3600) / 60,
            rem % 60
        )?;
        if self.nanos != 0 {
            let frac = format!("{:09}", self.nanos);
            write!(f, ".{}", frac.trim_end_matches('0'))?;
        }
        f.write_str("Z")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap_or_else(|_| panic!("{s} should parse"))
    }

    #[test]
    fn iso_and_epoch_forms_agree() {
        assert_eq!(t("1970-01-01T00:00:00Z"), Timestamp::from_epoch_seconds(0));
        assert_eq!(t("2020-01-01T00:00:00Z"), t("1577836800"));
        assert_eq!(t("2020-01-01T02:00:00+02:00"), t("2020-01-01T00:00:00Z"));
        assert_eq!(t("2020-01-01"), t("2020-01-01T00:00Z"));
        assert_eq!(t("2020-01"), t("2020-01-01"));
        assert!(t("2020-01-01T00:00:00.5Z") > t("2020-01-01T00:00:00Z"));
        assert_eq!(
            t("2024-02-29T12:30:15Z").to_string(),
            "2024-02-29T12:30:15Z"
        );
        assert_eq!(t("-1.5").to_string(), "1969-12-31T23:59:58.5Z");
    }

    #[test]
    fn rejects_invalid_dates() {
        for s in [
            "",
            "2020-13-01",
            "2023-02-29",
            "2020-01-01T25:00:00Z",
            "yesterday",
            "2020-01-01T00:00:00+2",
            "2020-1-1",
            "1.",
            "99999999999999999999999",
        ] {
            assert!(s.parse::<Timestamp>().is_err(), "{s}");
        }
    }
}
