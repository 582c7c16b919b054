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
        format!(
            "{:04}{:02}{:02}",
            self.at.year(),
            u8::from(self.at.month()),
            self.at.day()
        )
    }
}

impl fmt::Debug for SigningTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({:?})", self.iso_basic(), self.source)
    }
}

pub(crate) fn format_iso_basic(at: OffsetDateTime) -> String {
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

fn bad_date(raw: &str) -> SigV4Error {
    SigV4Error::IncompleteSignature(format!(
        "Date must be in ISO-8601 'basic format'. Got '{raw}'. See http://en.wikipedia.org/wiki/ISO_8601"
    ))
}
