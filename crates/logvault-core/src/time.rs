//! System timestamps: microseconds since the Unix epoch, written as RFC 3339 UTC with exactly
//! six fractional digits so that text order equals time order.

use serde::{Serialize, Serializer};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;

/// A UTC instant with microsecond precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Micros(pub i64);

impl Micros {
    /// The system clock, now.
    pub fn now() -> Self {
        let nanos = OffsetDateTime::now_utc().unix_timestamp_nanos();
        Micros((nanos / 1000) as i64)
    }

    /// Parses an RFC 3339 timestamp with any offset; sub-microsecond digits are truncated.
    pub fn parse_rfc3339(text: &str) -> Option<Self> {
        let parsed = OffsetDateTime::parse(text, &Rfc3339).ok()?;
        i64::try_from(parsed.unix_timestamp_nanos() / 1000)
            .ok()
            .map(Micros)
    }

    /// `2026-11-25T10:00:00.000000Z`.
    pub fn to_rfc3339(self) -> String {
        let format = format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
        );
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0) * 1000)
            .ok()
            .and_then(|at| at.format(&format).ok())
            .unwrap_or_else(|| format!("@{}us", self.0))
    }
}

impl Serialize for Micros {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_rfc3339())
    }
}

#[cfg(test)]
mod tests {
    use super::Micros;

    #[test]
    fn round_trips_with_six_digits() {
        let cases = [
            ("2026-11-25T10:00:00Z", "2026-11-25T10:00:00.000000Z"),
            (
                "2026-11-25T10:00:00.1234567Z",
                "2026-11-25T10:00:00.123456Z",
            ),
            ("2026-11-25T12:00:00+02:00", "2026-11-25T10:00:00.000000Z"),
            ("1970-01-01T00:00:00.000001Z", "1970-01-01T00:00:00.000001Z"),
        ];
        for (input, expected) in cases {
            let parsed = Micros::parse_rfc3339(input).expect(input);
            assert_eq!(parsed.to_rfc3339(), expected, "{input}");
        }
    }

    #[test]
    fn rejects_non_rfc3339() {
        for input in [
            "",
            "yesterday",
            "2026-11-25",
            "2026-11-25 10:00:00",
            "2026-13-01T00:00:00Z",
        ] {
            assert_eq!(Micros::parse_rfc3339(input), None, "{input}");
        }
    }
}
