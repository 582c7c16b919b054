use std::fmt;
use std::time::SystemTime;

use time::format_description::FormatItem;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime};

use crate::SigV4Error;

/// The reference the hand-written reader is tested against.
#[cfg(test)]
const ISO_BASIC: &[FormatItem<'static>] =
    format_description!("[year][month][day]T[hour][minute][second]Z");
/// RFC 7231 IMF-fixdate, the only `Date` form SDKs send.
const IMF_FIXDATE: &[FormatItem<'static>] = format_description!(
    "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
);

/// Where the request's signing time came from; matters because the canonical
/// headers carry the raw header text while the string to sign carries ISO basic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampSource {
    /// `X-Amz-Date` header, or the `X-Amz-Date` query parameter when presigned.
    XAmzDate,
    /// The HTTP `Date` header (only when no `X-Amz-Date` was sent).
    DateHeader,
}

/// The signing time claimed by the request, second precision, UTC.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SigningTime {
    at: OffsetDateTime,
    source: TimestampSource,
}

impl SigningTime {
    pub(crate) fn parse_iso_basic(raw: &str) -> Result<Self, SigV4Error> {
        let at = parse_iso_basic_fields(raw.as_bytes())
            .ok_or_else(|| bad_date(raw))?
            .assume_utc();
        Ok(SigningTime {
            at,
            source: TimestampSource::XAmzDate,
        })
    }

    pub(crate) fn parse_http_date(raw: &str) -> Result<Self, SigV4Error> {
        let at = PrimitiveDateTime::parse(raw.trim(), IMF_FIXDATE)
            .map_err(|_| bad_date(raw))?
            .assume_utc();
        Ok(SigningTime {
            at,
            source: TimestampSource::DateHeader,
        })
    }

    pub(crate) fn from_system_time(t: SystemTime) -> Self {
        let at = OffsetDateTime::from(t);
        // Signatures carry whole seconds; dropping the fraction keeps skew
        // messages and comparisons identical to what the client computed.
        let at = at.replace_nanosecond(0).unwrap_or(at);
        SigningTime {
            at,
            source: TimestampSource::XAmzDate,
        }
    }

    pub(crate) fn offset(&self) -> OffsetDateTime {
        self.at
    }

    /// Which header the signing time came from.
    pub fn source(&self) -> TimestampSource {
        self.source
    }

    /// `YYYYMMDD'T'HHMMSS'Z'`, the form used in the string to sign.
    pub fn iso_basic(&self) -> String {
        format_iso_basic(self.at)
    }

    /// `YYYYMMDD`, the form used in the credential scope.
    pub fn date_stamp(&self) -> String {
        let mut out = String::with_capacity(8);
        push_date(&mut out, self.at);
        out
    }
}

impl fmt::Debug for SigningTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({:?})", self.iso_basic(), self.source)
    }
}

/// Written digit by digit: this runs on every verified request, where
/// `format!` cost more than the rest of the string to sign.
pub(crate) fn format_iso_basic(at: OffsetDateTime) -> String {
    let mut out = String::with_capacity(16);
    push_date(&mut out, at);
    out.push('T');
    push_2digits(&mut out, at.hour());
    push_2digits(&mut out, at.minute());
    push_2digits(&mut out, at.second());
    out.push('Z');
    out
}

/// `YYYYMMDD`; years outside 0..=9999 cannot be parsed from a request, and
/// clocks do not produce them.
fn push_date(out: &mut String, at: OffsetDateTime) {
    let year = at.year().clamp(0, 9999) as u32;
    push_2digits(out, (year / 100) as u8);
    push_2digits(out, (year % 100) as u8);
    push_2digits(out, u8::from(at.month()));
    push_2digits(out, at.day());
}

fn push_2digits(out: &mut String, n: u8) {
    out.push(char::from(b'0' + n / 10 % 10));
    out.push(char::from(b'0' + n % 10));
}

/// `YYYYMMDD'T'HHMMSS'Z'` read digit by digit: every request carries one,
/// and the `time` crate's format-description parser cost several times more.
/// Accepts exactly what `PrimitiveDateTime::parse(raw, ISO_BASIC)` accepts
/// (a test checks the two against each other).
fn parse_iso_basic_fields(raw: &[u8]) -> Option<PrimitiveDateTime> {
    let b: &[u8; 16] = raw.try_into().ok()?;
    if b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<u16> {
        b[range].iter().try_fold(0u16, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + u16::from(c - b'0'))
        })
    };
    let year = i32::from(num(0..4)?);
    let month = time::Month::try_from(u8::try_from(num(4..6)?).ok()?).ok()?;
    let day = u8::try_from(num(6..8)?).ok()?;
    let hour = u8::try_from(num(9..11)?).ok()?;
    let minute = u8::try_from(num(11..13)?).ok()?;
    let second = u8::try_from(num(13..15)?).ok()?;
    let date = time::Date::from_calendar_date(year, month, day).ok()?;
    let time = time::Time::from_hms(hour, minute, second).ok()?;
    Some(PrimitiveDateTime::new(date, time))
}

fn bad_date(raw: &str) -> SigV4Error {
    SigV4Error::IncompleteSignature(format!(
        "Date must be in ISO-8601 'basic format'. Got '{raw}'. See http://en.wikipedia.org/wiki/ISO_8601"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_basic_reader_accepts_exactly_what_the_time_crate_parser_accepts() {
        let cases = [
            "20240229T235959Z",
            "20230229T000000Z",
            "20241301T000000Z",
            "20241200T000000Z",
            "20241231T240000Z",
            "20241231T236000Z",
            "20241231T235960Z",
            "00000101T000000Z",
            "2024123T235959Z",
            "20241231T2359590Z",
            "20241231 235959Z",
            "20241231T235959z",
            "2024-1231T235959",
            "+2024123T235959Z",
            "2024123aT235959Z",
            "20241231T23595\u{e9}",
            "",
            "20150830T123600Z",
        ];
        for raw in cases {
            let ours = parse_iso_basic_fields(raw.as_bytes());
            let theirs = PrimitiveDateTime::parse(raw, ISO_BASIC).ok();
            assert_eq!(ours, theirs, "{raw:?}");
        }
    }

    #[test]
    fn iso_basic_and_date_stamp_are_zero_padded_utc_fields() {
        for (secs, iso) in [
            (0i64, "19700101T000000Z"),
            (1_329_264_000, "20120215T000000Z"),
            (4_102_444_799, "20991231T235959Z"),
            (1_700_000_005, "20231114T221325Z"),
        ] {
            let at =
                OffsetDateTime::from_unix_timestamp(secs).unwrap_or(OffsetDateTime::UNIX_EPOCH);
            assert_eq!(format_iso_basic(at), iso);
            let t = SigningTime {
                at,
                source: TimestampSource::XAmzDate,
            };
            assert_eq!(t.date_stamp(), &iso[..8]);
            assert_eq!(t.iso_basic(), iso);
        }
    }
}
