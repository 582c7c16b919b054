//! Points in time given on the command line (`ferrokms audit --since/--until`)
//! and written in audit records (`eventTime`), as instants to compare.
//!
//! Accepted: RFC 3339 with a `Z` or a numeric offset
//! (`2026-11-24T01:00:00Z`, `2026-11-24T02:00:00.5+01:00`; `t`, `z` and a
//! space for `T` as RFC 3339 allows), a bare date (`2026-11-24`, midnight
//! UTC), and an age relative to now: a whole number and one unit, `s`, `m`,
//! `h` or `d` (`45s`, `30m`, `1h`, `7d`). Nothing else: a text that is none of
//! these is refused, never compared as text.

use ferrokms_types::calendar::{days_from_civil, days_in_month};

/// The forms [`parse_arg`] accepts, for error messages and `--help`.
pub const ACCEPTED: &str = "RFC 3339 (2026-11-24T01:00:00Z, 2026-11-24T02:00:00+01:00), \
a date (2026-11-24, midnight UTC) or an age (45s, 30m, 1h, 7d)";

/// Nanoseconds since 1970-01-01T00:00:00Z.
pub type Instant = i128;

const NANOS_PER_SECOND: i128 = 1_000_000_000;

/// The instant a command-line time names; `now` anchors the relative forms.
pub fn parse_arg(text: &str, now: Instant) -> Option<Instant> {
    parse_age(text)
        .and_then(|age| now.checked_sub(age))
        .or_else(|| parse_rfc3339(text))
        .or_else(|| parse_date(text))
}

/// The value of a time flag (`--since`, `--until`), if given; the error
/// names the flag and the forms it takes.
pub fn flag(flag: &str, text: Option<&str>, now: Instant) -> Result<Option<Instant>, String> {
    text.map(|t| {
        parse_arg(t, now).ok_or_else(|| format!("{flag} '{t}' is not a time: give {ACCEPTED}"))
    })
    .transpose()
}

/// Now, as an [`Instant`].
pub fn now() -> Instant {
    match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => i128::try_from(d.as_nanos()).unwrap_or(i128::MAX),
        Err(e) => -i128::try_from(e.duration().as_nanos()).unwrap_or(i128::MAX),
    }
}

/// `45s`, `30m`, `1h`, `7d`: the age in nanoseconds.
fn parse_age(text: &str) -> Option<Instant> {
    let unit = text.bytes().last()?;
    let seconds: i128 = match unit {
        b's' => 1,
        b'm' => 60,
        b'h' => 3600,
        b'd' => 86_400,
        _ => return None,
    };
    let number = &text[..text.len() - 1];
    if number.is_empty() || number.len() > 12 || !number.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: i128 = number.parse().ok()?;
    Some(n * seconds * NANOS_PER_SECOND)
}

/// `2026-11-24`: midnight UTC of that day.
fn parse_date(text: &str) -> Option<Instant> {
    let b = text.as_bytes();
    if b.len() != 10 {
        return None;
    }
    let (days, _) = date_part(b)?;
    Some(i128::from(days) * 86_400 * NANOS_PER_SECOND)
}

/// `YYYY-MM-DD` at the start of `b`: days since the epoch, and the bytes read.
fn date_part(b: &[u8]) -> Option<(i64, usize)> {
    let year = digits(b, 0, 4)?;
    if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return None;
    }
    let month = digits(b, 5, 2)?;
    let day = digits(b, 8, 2)?;
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(i64::from(year), month) {
        return None;
    }
    Some((days_from_civil(i64::from(year), month, day), 10))
}

/// RFC 3339 `date-time`: `YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)`.
pub fn parse_rfc3339(text: &str) -> Option<Instant> {
    let b = text.as_bytes();
    let (days, mut at) = date_part(b)?;
    if !matches!(b.get(at), Some(b'T' | b't' | b' ')) {
        return None;
    }
    at += 1;
    let hour = digits(b, at, 2)?;
    let minute = digits(b, at + 3, 2)?;
    let second = digits(b, at + 6, 2)?;
    if b.get(at + 2) != Some(&b':') || b.get(at + 5) != Some(&b':') {
        return None;
    }
    // 60: a leap second, which RFC 3339 allows; it counts as the next second.
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    at += 8;
    let mut nanos: i128 = 0;
    if b.get(at) == Some(&b'.') {
        at += 1;
        let start = at;
        while b.get(at).is_some_and(u8::is_ascii_digit) {
            at += 1;
        }
        let fraction = &text[start..at];
        if fraction.is_empty() {
            return None;
        }
        // Nanosecond precision; further digits cannot change an instant
        // compared with the records' whole seconds.
        let kept = &fraction[..fraction.len().min(9)];
        nanos = kept.parse::<i128>().ok()? * 10i128.pow(9 - kept.len() as u32);
    }
    let offset_seconds: i64 = match b.get(at) {
        Some(b'Z' | b'z') if at + 1 == b.len() => 0,
        Some(&sign @ (b'+' | b'-')) if at + 6 == b.len() => {
            let oh = digits(b, at + 1, 2)?;
            let om = digits(b, at + 4, 2)?;
            if b.get(at + 3) != Some(&b':') || oh > 23 || om > 59 {
                return None;
            }
            let o = i64::from(oh * 3600 + om * 60);
            if sign == b'+' {
                o
            } else {
                -o
            }
        }
        _ => return None,
    };
    let seconds = days * 86_400 + i64::from(hour * 3600 + minute * 60 + second) - offset_seconds;
    Some(i128::from(seconds) * NANOS_PER_SECOND + nanos)
}

/// Exactly `n` ASCII digits at `at`.
fn digits(b: &[u8], at: usize, n: usize) -> Option<u32> {
    let part = b.get(at..at + n)?;
    part.iter().try_fold(0u32, |v, &d| {
        d.is_ascii_digit().then(|| v * 10 + u32::from(d - b'0'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i128 = NANOS_PER_SECOND;
    /// 2026-11-24T01:00:00Z
    const T: i128 = 1_795_482_000 * S;

    #[test]
    fn rfc3339_with_z_offset_or_fraction_is_one_instant() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("2026-11-24T01:00:00Z"), Some(T));
        assert_eq!(parse_rfc3339("2026-11-24T02:00:00+01:00"), Some(T));
        assert_eq!(parse_rfc3339("2026-11-23T20:30:00-04:30"), Some(T));
        assert_eq!(parse_rfc3339("2026-11-24t01:00:00z"), Some(T));
        assert_eq!(parse_rfc3339("2026-11-24 01:00:00Z"), Some(T));
        assert_eq!(parse_rfc3339("2026-11-24T01:00:00.5Z"), Some(T + S / 2));
        assert_eq!(
            parse_rfc3339("2026-11-24T01:00:00.123456789123Z"),
            Some(T + 123_456_789)
        );
        assert_eq!(
            parse_rfc3339("2026-12-31T23:59:60Z"),
            parse_arg("2027-01-01", 0)
        );
    }

    #[test]
    fn a_bare_date_is_midnight_utc() {
        assert_eq!(parse_arg("2026-11-24", 0), Some(T - 3600 * S));
        assert_eq!(parse_arg("2024-02-29", 0), Some(1_709_164_800 * S));
    }

    #[test]
    fn ages_count_back_from_now() {
        let now = T;
        assert_eq!(parse_arg("45s", now), Some(now - 45 * S));
        assert_eq!(parse_arg("30m", now), Some(now - 1800 * S));
        assert_eq!(parse_arg("1h", now), Some(now - 3600 * S));
        assert_eq!(parse_arg("7d", now), Some(now - 7 * 86_400 * S));
        assert_eq!(parse_arg("0s", now), Some(now));
    }

    #[test]
    fn anything_else_is_refused() {
        for bad in [
            "",
            "garbage",
            "1",
            "h",
            "1w",
            "-1h",
            "+1h",
            "1.5h",
            "1h30m",
            " 1h",
            "1H",
            "2026-11-24T01:00:00",
            "2026-11-24T01:00Z",
            "2026-11-24T01:00:00+0100",
            "2026-11-24T01:00:00+01",
            "2026-11-24T01:00:00.Z",
            "2026-11-24T24:00:00Z",
            "2026-11-24T01:60:00Z",
            "2026-11-24T01:00:00Zjunk",
            "2026-13-01",
            "2026-02-29",
            "2026-11-31",
            "2026-11-00",
            "2026-11-4",
            "26-11-24",
            "2026/11/24",
            "1795482000",
            "2026-11",
            "yesterday",
            "9999999999999d",
        ] {
            assert_eq!(parse_arg(bad, T), None, "{bad:?} was accepted");
        }
    }
}
