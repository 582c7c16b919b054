use std::fmt;
use std::time::SystemTime;

use time::format_description::FormatItem;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime};

use crate::SigV4Error;

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
        let at = PrimitiveDateTime::parse(raw, ISO_BASIC)
            .map_err(|_| bad_date(raw))?
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

    pub fn source(&self) -> TimestampSource {
        self.source
    }

    pub fn to_system_time(&self) -> SystemTime {
        SystemTime::from(self.at)
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

fn bad_date(raw: &str) -> SigV4Error {
    SigV4Error::IncompleteSignature(format!(
        "Date must be in ISO-8601 'basic format'. Got '{raw}'. See http://en.wikipedia.org/wiki/ISO_8601"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

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
