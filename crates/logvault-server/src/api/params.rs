//! Query-string parsing for reads: filters, cursors and trend options. Unknown parameters
//! and bad values are errors, never silently ignored.

use std::net::IpAddr;

use logvault_core::event::wire;
use logvault_core::validate::ip_bytes;
use logvault_core::{EventKind, Micros};
use logvault_store::{EventQuery, IpRange, TrendGroup, TrendInterval, TrendQuery};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::ApiError;

const DEFAULT_LIMIT: usize = 50;
const MAX_LIMIT: usize = 1000;

/// Every parameter a list request may carry; kind-specific ones are checked after parsing.
/// Its fields, with their bounds, are also the parameters the OpenAPI document lists.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListParams {
    /// Only this account's events; it must be in the caller's scope (else 404).
    account_id: Option<String>,
    /// Only events received at or after this time (RFC 3339).
    #[param(format = DateTime)]
    from: Option<String>,
    /// Only events received at or before this time (RFC 3339, not before `from`).
    #[param(format = DateTime)]
    to: Option<String>,
    /// Text search over the event's words (at most 256 bytes).
    #[param(max_length = 256)]
    q: Option<String>,
    /// Events per page (default 50).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1000)]
    limit: Option<String>,
    /// Where the previous page ended: its `next_cursor`, as returned.
    #[param(pattern = "^c[0-9a-f]{16}$")]
    cursor: Option<String>,
    /// Audit events: the action, e.g. `user.login`.
    action: Option<String>,
    /// Audit events: `success` or `failure`.
    #[param(value_type = Option<wire::Outcome>)]
    outcome: Option<String>,
    /// Audit events: the actor's id.
    actor_id: Option<String>,
    /// Audit events: the origin address, or a CIDR block containing it.
    #[param(schema_with = ip_or_cidr)]
    ip: Option<String>,
    /// Audit events: the client's request id.
    request_id: Option<String>,
    /// Threat events: the error type.
    error_type: Option<String>,
    /// Threat events: `sdk` or `api`.
    #[param(value_type = Option<wire::ThreatSource>)]
    source: Option<String>,
    /// Threat events: the version.
    version: Option<String>,
    /// Threat events: the environment.
    environment: Option<String>,
    /// Threat events: only those of this error group (its 16 hex digit fingerprint, as
    /// `GET /v1/threat-groups` gives it).
    #[param(pattern = "^[0-9a-f]{16}$")]
    fingerprint: Option<String>,
}

/// An address, or an IPv4 CIDR block (IPv6 blocks such as `2001:db8::/32` are taken too).
fn ip_or_cidr() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::KnownFormat;
    use utoipa::openapi::schema::{ObjectBuilder, SchemaFormat, Type};
    let format = |known| {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(known)))
    };
    let octet = "(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])";
    let v4_block = format!(r"^({octet}\.){{3}}{octet}/(3[0-2]|[12]?[0-9])$");
    utoipa::openapi::schema::AnyOfBuilder::new()
        .item(format(KnownFormat::Ipv4))
        .item(format(KnownFormat::Ipv6))
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(v4_block)),
        )
        .description(Some("An IP address or CIDR block"))
        .into()
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
        let given = |name: &str| match name {
            "action" => self.action.is_some(),
            "outcome" => self.outcome.is_some(),
            "actor_id" => self.actor_id.is_some(),
            "ip" => self.ip.is_some(),
            "request_id" => self.request_id.is_some(),
            "error_type" => self.error_type.is_some(),
            "source" => self.source.is_some(),
            "version" => self.version.is_some(),
            "environment" => self.environment.is_some(),
            "fingerprint" => self.fingerprint.is_some(),
            _ => false,
        };
        if let Some(name) = Self::filters_of_other_kind(kind)
            .iter()
            .find(|name| given(name))
        {
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
            fingerprint: self
                .fingerprint
                .as_deref()
                .map(|hash| {
                    logvault_store::groups::fingerprint_number(hash)
                        .filter(|_| !hash.bytes().any(|b| b.is_ascii_uppercase()))
                        .ok_or_else(|| {
                            ApiError::InvalidQuery("fingerprint must be 16 hex digits".into())
                        })
                })
                .transpose()?,
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

    /// The filters that belong to the other kind of event, refused for `kind`.
    pub(crate) fn filters_of_other_kind(kind: EventKind) -> &'static [&'static str] {
        match kind {
            EventKind::Audit => &[
                "error_type",
                "source",
                "version",
                "environment",
                "fingerprint",
            ],
            EventKind::Threat => &["action", "outcome", "actor_id", "ip", "request_id"],
        }
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
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct TrendParams {
    /// Only this account's events; it must be in the caller's scope (else 404).
    account_id: Option<String>,
    /// What to count events by (default `error_type`).
    #[param(value_type = Option<TrendGroupName>)]
    group_by: Option<String>,
    /// Bucket width (default `hour`).
    #[param(value_type = Option<TrendIntervalName>)]
    interval: Option<String>,
    /// Start (RFC 3339; default 24 hours or 30 days before `to`). At most 9,600 buckets
    /// between `from` and `to`.
    #[param(format = DateTime)]
    from: Option<String>,
    /// End (RFC 3339; default now; not before `from`).
    #[param(format = DateTime)]
    to: Option<String>,
}

/// What trends count events by.
#[derive(utoipa::ToSchema, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)] // The schema of `group_by`; `TrendParams::to_query` parses it.
pub(crate) enum TrendGroupName {
    /// By `version`.
    Version,
    /// By `environment`.
    Environment,
    /// By `error_type`.
    ErrorType,
}

/// The width of a trend bucket.
#[derive(Debug, utoipa::ToSchema, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum TrendIntervalName {
    /// An hour.
    Hour,
    /// A day.
    Day,
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
        // `time_range` orders the two only when both are given; `to` may be the clock's.
        if from > to {
            return Err(ApiError::InvalidQuery(
                "from must not be after to (which is now when not given)".into(),
            ));
        }
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
