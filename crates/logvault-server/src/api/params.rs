//! Query-string parsing for reads: filters, cursors and trend options. Unknown parameters
//! and bad values are errors, never silently ignored.

use std::net::IpAddr;

use logvault_core::validate::ip_bytes;
use logvault_core::{EventKind, Micros};
use logvault_store::{EventQuery, IpRange, TrendGroup, TrendInterval, TrendQuery};
use serde::Deserialize;

use crate::ApiError;

const DEFAULT_LIMIT: usize = 50;
const MAX_LIMIT: usize = 1000;

/// Every parameter a list request may carry; kind-specific ones are checked after parsing.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListParams {
    account_id: Option<String>,
    from: Option<String>,
    to: Option<String>,
    q: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
    action: Option<String>,
    outcome: Option<String>,
    actor_id: Option<String>,
    ip: Option<String>,
    request_id: Option<String>,
    error_type: Option<String>,
    source: Option<String>,
    version: Option<String>,
    environment: Option<String>,
}

/// Parses a raw query string into `T`, naming the offending parameter on failure.
pub(crate) fn parse_query<T: for<'de> Deserialize<'de> + Default>(
    raw: Option<&str>,
) -> Result<T, ApiError> {
    match raw {
        None | Some("") => Ok(T::default()),
        Some(raw) => serde_urlencoded::from_str(raw)
            .map_err(|e| ApiError::InvalidQuery(format!("bad query string: {e}"))),
    }
}

impl ListParams {
    /// The store query these parameters ask for.
    pub(crate) fn to_query(&self, kind: EventKind) -> Result<EventQuery, ApiError> {
        let wrong_kind: &[(&str, bool)] = match kind {
            EventKind::Audit => &[
                ("error_type", self.error_type.is_some()),
                ("source", self.source.is_some()),
                ("version", self.version.is_some()),
                ("environment", self.environment.is_some()),
            ],
            EventKind::Threat => &[
                ("action", self.action.is_some()),
                ("outcome", self.outcome.is_some()),
                ("actor_id", self.actor_id.is_some()),
                ("ip", self.ip.is_some()),
                ("request_id", self.request_id.is_some()),
            ],
        };
        if let Some((name, _)) = wrong_kind.iter().find(|(_, present)| *present) {
            return Err(ApiError::InvalidQuery(format!(
                "{name} does not filter {} events",
                kind.as_str()
            )));
        }
        let limit = match &self.limit {
            None => DEFAULT_LIMIT,
            Some(text) => text
                .parse::<usize>()
                .ok()
                .filter(|limit| (1..=MAX_LIMIT).contains(limit))
                .ok_or_else(|| ApiError::InvalidQuery(format!("limit must be 1-{MAX_LIMIT}")))?,
        };
        if self
            .outcome
            .as_deref()
            .is_some_and(|o| o != "success" && o != "failure")
        {
            return Err(ApiError::InvalidQuery(
                "outcome must be success or failure".into(),
            ));
        }
        if self
            .source
            .as_deref()
            .is_some_and(|s| s != "sdk" && s != "api")
        {
            return Err(ApiError::InvalidQuery("source must be sdk or api".into()));
        }
        let (from, to) = time_range(self.from.as_deref(), self.to.as_deref())?;
        let text = match self.q.as_deref().map(str::trim) {
            Some(q) if q.len() > 256 => {
                return Err(ApiError::InvalidQuery("q must be at most 256 bytes".into()));
            }
            Some("") | None => None,
            Some(q) => Some(q.to_string()),
        };
        Ok(EventQuery {
            kind,
            account_id: self.account_id.clone(),
            from,
            to,
            text,
            action: self.action.clone(),
            outcome: self.outcome.clone(),
            actor_id: self.actor_id.clone(),
            ip: self
                .ip
                .as_deref()
                .map(parse_ip_range)
                .transpose()
                .map_err(ApiError::InvalidQuery)?,
            request_id: self.request_id.clone(),
            error_type: self.error_type.clone(),
            source: self.source.clone(),
            version: self.version.clone(),
            environment: self.environment.clone(),
            before_seq: self
                .cursor
                .as_deref()
                .map(|cursor| decode_cursor(cursor).ok_or(ApiError::InvalidCursor))
                .transpose()?,
            limit,
        })
    }

    /// The account filter, if any.
    pub(crate) fn account_id(&self) -> Option<&str> {
        self.account_id.as_deref()
    }
}

fn parse_time(name: &str, text: &str) -> Result<Micros, ApiError> {
    Micros::parse_rfc3339(text)
        .ok_or_else(|| ApiError::InvalidQuery(format!("{name} must be an RFC 3339 timestamp")))
}

fn time_range(
    from: Option<&str>,
    to: Option<&str>,
) -> Result<(Option<Micros>, Option<Micros>), ApiError> {
    let from = from.map(|text| parse_time("from", text)).transpose()?;
    let to = to.map(|text| parse_time("to", text)).transpose()?;
    if let (Some(from), Some(to)) = (from, to)
        && from > to
    {
        return Err(ApiError::InvalidQuery("from must not be after to".into()));
    }
    Ok((from, to))
}

/// An address (`203.0.113.7`) or a CIDR block (`203.0.113.0/24`, `2001:db8::/32`) as an
/// inclusive range of 16-byte addresses (IPv4 mapped). Shared by the API and the Logs page.
pub(crate) fn parse_ip_range(text: &str) -> Result<IpRange, String> {
    let bad = || "ip must be an IP address or CIDR block".to_string();
    let (addr, prefix) = match text.split_once('/') {
        Some((addr, prefix)) => (addr, Some(prefix)),
        None => (text, None),
    };
    let addr: IpAddr = addr.parse().map_err(|_| bad())?;
    let max_prefix = if addr.is_ipv4() { 32 } else { 128 };
    let prefix: u32 = match prefix {
        None => max_prefix,
        Some(prefix) => prefix
            .parse()
            .ok()
            .filter(|p| *p <= max_prefix)
            .ok_or_else(bad)?,
    };
    // In the 128-bit space an IPv4 prefix sits after the 96-bit mapping prefix.
    let prefix_128 = prefix + (128 - max_prefix);
    let bits = u128::from_be_bytes(ip_bytes(addr));
    let host_mask = u128::MAX.checked_shr(prefix_128).unwrap_or(0);
    Ok(IpRange {
        low: (bits & !host_mask).to_be_bytes(),
        high: (bits | host_mask).to_be_bytes(),
    })
}

/// Cursors name the last `seq` returned. They are opaque to clients, and editing one cannot
/// widen what is seen: the scope is applied to every page independently of the cursor.
pub(crate) fn encode_cursor(before_seq: u64) -> String {
    format!("c{before_seq:016x}")
}

/// The inverse of [`encode_cursor`]; `None` for anything this service did not produce.
/// Only lowercase hex digits: `from_str_radix` alone would also take capitals and a sign.
pub(crate) fn decode_cursor(cursor: &str) -> Option<u64> {
    cursor
        .strip_prefix('c')
        .filter(|hex| {
            hex.len() == 16 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        })
        .and_then(|hex| u64::from_str_radix(hex, 16).ok())
}

/// Parameters of `GET /v1/threat-events/trends`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TrendParams {
    account_id: Option<String>,
    group_by: Option<String>,
    interval: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

/// Most buckets one trends request may ask for.
const MAX_BUCKETS: i64 = 24 * 400;

impl TrendParams {
    pub(crate) fn to_query(&self) -> Result<TrendQuery, ApiError> {
        let group_by = match self.group_by.as_deref().unwrap_or("error_type") {
            "version" => TrendGroup::Version,
            "environment" => TrendGroup::Environment,
            "error_type" => TrendGroup::ErrorType,
            _ => {
                return Err(ApiError::InvalidQuery(
                    "group_by must be version, environment or error_type".into(),
                ));
            }
        };
        let interval = match self.interval.as_deref().unwrap_or("hour") {
            "hour" => TrendInterval::Hour,
            "day" => TrendInterval::Day,
            _ => {
                return Err(ApiError::InvalidQuery(
                    "interval must be hour or day".into(),
                ));
            }
        };
        let (from, to) = time_range(self.from.as_deref(), self.to.as_deref())?;
        let to = to.unwrap_or_else(Micros::now);
        let default_span = match interval {
            TrendInterval::Hour => 24,
            TrendInterval::Day => 30,
        };
        let from = from.unwrap_or(Micros(to.0 - default_span * interval.micros()));
        if (to.0 - from.0) / interval.micros() > MAX_BUCKETS {
            return Err(ApiError::InvalidQuery(format!(
                "at most {MAX_BUCKETS} buckets per request"
            )));
        }
        Ok(TrendQuery {
            min_count: 0,
            account_id: self.account_id.clone(),
            from,
            to,
            group_by,
            interval,
        })
    }

    /// The account filter, if any.
    pub(crate) fn account_id(&self) -> Option<&str> {
        self.account_id.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_ranges() {
        let range = |text: &str| {
            parse_ip_range(text).map(|r| {
                (
                    std::net::Ipv6Addr::from(r.low).to_string(),
                    std::net::Ipv6Addr::from(r.high).to_string(),
                )
            })
        };
        let cases = [
            (
                "203.0.113.7",
                Some(("::ffff:203.0.113.7", "::ffff:203.0.113.7")),
            ),
            (
                "203.0.113.0/24",
                Some(("::ffff:203.0.113.0", "::ffff:203.0.113.255")),
            ),
            (
                "0.0.0.0/0",
                Some(("::ffff:0.0.0.0", "::ffff:255.255.255.255")),
            ),
            (
                "2001:db8::/32",
                Some(("2001:db8::", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff")),
            ),
            ("203.0.113.0/33", None),
            ("nope", None),
            ("10.0.0.0/x", None),
        ];
        for (input, expected) in cases {
            let got = range(input).ok();
            let expected = expected.map(|(a, b)| (a.to_string(), b.to_string()));
            assert_eq!(got, expected, "{input}");
        }
    }

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        assert_eq!(decode_cursor(&encode_cursor(1234)), Some(1234));
        let bad_cursors = [
            "",
            "c",
            "x00000000000004d2",
            "c00000000000004dz",
            "c4d2",
            // Found by fuzzing: other spellings of a position were accepted.
            "c1A111111111119c8",
            "c00000000000004D2",
            "c+0000000000004d2",
        ];
        for bad in bad_cursors {
            assert!(decode_cursor(bad).is_none(), "{bad}");
        }
    }
}
