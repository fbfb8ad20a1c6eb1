//! System timestamps: microseconds since the Unix epoch, written as RFC 3339 UTC with exactly
//! six fractional digits so that text order equals time order.

use serde::{Serialize, Serializer};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

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
        let mut text = Vec::with_capacity(27);
        // Writing to a Vec cannot fail, and only ASCII is written.
        let _ = self.write_rfc3339(&mut text);
        String::from_utf8(text).unwrap_or_default()
    }

    /// Writes [`Micros::to_rfc3339`] to `out`. Hand-written because it runs for every
    /// event `verify` hashes, where a generic formatter showed up in profiles. Years outside
    /// 0000-9999 have no RFC 3339 form and are written as `@<micros>us`.
    pub fn write_rfc3339(self, out: &mut impl std::io::Write) -> std::io::Result<()> {
        let seconds = self.0.div_euclid(1_000_000);
        let (year, month, day) = civil_from_days(seconds.div_euclid(86_400));
        if !(0..=9999).contains(&year) {
            return write!(out, "@{}us", self.0);
        }
        let second_of_day = seconds.rem_euclid(86_400);
        let mut text = *b"0000-00-00T00:00:00.000000Z";
        // Each part right-aligned in its digits, filled from its last digit.
        let parts = [
            (year, 4),
            (month, 7),
            (day, 10),
            (second_of_day / 3600, 13),
            (second_of_day / 60 % 60, 16),
            (second_of_day % 60, 19),
            (self.0.rem_euclid(1_000_000), 26),
        ];
        for (mut value, end) in parts {
            let mut at = end;
            while value > 0 {
                at -= 1;
                text[at] = b'0' + (value % 10) as u8;
                value /= 10;
            }
        }
        out.write_all(&text)
    }
}

/// Year, month and day of a count of days since 1970-01-01 in the proleptic Gregorian
/// calendar (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

impl Serialize for Micros {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_rfc3339())
    }
}

#[cfg(test)]
mod tests {
    use time::OffsetDateTime;
    use time::macros::format_description;

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

    /// The hand-written formatter must agree with the `time` crate everywhere in range,
    /// including leap days, century years and the ends of the range.
    #[test]
    fn formatting_agrees_with_the_time_crate() {
        let format = format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
        );
        let reference = |micros: i64| {
            OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1000)
                .expect("in range")
                .format(&format)
                .expect("formats")
        };
        let first = Micros::parse_rfc3339("0000-01-01T00:00:00Z")
            .expect("first")
            .0;
        let last = Micros::parse_rfc3339("9999-12-31T23:59:59.999999Z")
            .expect("last")
            .0;
        let mut samples = vec![
            first,
            last,
            0,
            -1,
            1,
            951_782_400_000_000,
            4_107_542_400_000_000,
        ];
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..200_000 {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            samples.push(first + (state >> 1) as i64 % (last - first));
        }
        for micros in samples {
            assert_eq!(Micros(micros).to_rfc3339(), reference(micros), "{micros}");
        }
        assert_eq!(Micros(last + 1).to_rfc3339(), format!("@{}us", last + 1));
        assert_eq!(Micros(first - 1).to_rfc3339(), format!("@{}us", first - 1));
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
