//! Error groups of threat events: `GET /v1/threat-groups` (the problems of the caller's
//! scope, with their statuses and a sparkline) and `GET /v1/threat-groups/{fingerprint}`
//! (one group's counts by version × environment and its hourly series). Counts come from
//! the rollups the writers keep (`logvault_store::groups`), never from the log. Every read is
//! recorded as a `logs.viewed` event.

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use logvault_core::{Micros, Principal};
use logvault_store::groups::{
    self, GroupQuery, GroupSort, GroupStatus, RETURN_GAP, ThreatGroup, fingerprint_number,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use super::params::parse_query;
use crate::auth::{Reader, RequestOrigin};
use crate::viewed::query_summary;
use crate::{ApiError, AppState};

const DEFAULT_LIMIT: usize = 50;
const MAX_LIMIT: usize = 200;

/// The parameters of a group list; the detail takes the counting ones only.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct GroupParams {
    /// Count only events of this environment (groups without any are left out).
    environment: Option<String>,
    /// Count only events of this version; with `status=new`, groups first seen in it.
    version: Option<String>,
    /// Count only events received at or after this time (RFC 3339); also the window of
    /// `status=new` (default: the last 7 days).
    #[param(format = DateTime)]
    since: Option<String>,
    /// Count only events received before this time (RFC 3339, not before `since`).
    #[param(format = DateTime)]
    until: Option<String>,
    /// Only groups that are `new` (first seen in the window), `regressed` (back after the
    /// quiet period in a version not seen before it) or `spiking` (the current hour above
    /// 3 × the mean of the 24 before it, and at least 10 events).
    #[param(value_type = Option<StatusName>)]
    status: Option<String>,
    /// `last_seen` (default, newest first) or `count` (largest first).
    #[param(value_type = Option<SortName>)]
    sort: Option<String>,
    /// The quiet period of a regression, in days (default 7).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 3650)]
    quiet_days: Option<String>,
    /// Groups per page (default 50).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 200)]
    limit: Option<String>,
    /// Where the previous page ended: its `next_cursor`, as returned.
    #[param(pattern = "^g[0-9a-f]{32}$")]
    cursor: Option<String>,
}

/// `status=` values.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)] // The parameter's documentation; the handler parses the string.
pub(crate) enum StatusName {
    New,
    Regressed,
    Spiking,
}

/// `sort=` values.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)] // The parameter's documentation; the handler parses the string.
pub(crate) enum SortName {
    LastSeen,
    Count,
}

impl GroupParams {
    /// The store query these parameters ask for, at `now`; `listing` allows the list-only
    /// parameters.
    pub(crate) fn to_query(&self, now: Micros, listing: bool) -> Result<GroupQuery, ApiError> {
        let invalid = |message: &str| ApiError::InvalidQuery(message.to_string());
        if !listing
            && (self.status.is_some()
                || self.sort.is_some()
                || self.limit.is_some()
                || self.cursor.is_some())
        {
            return Err(invalid(
                "status, sort, limit and cursor apply to the list only",
            ));
        }
        let time = |name: &str, text: &Option<String>| {
            text.as_deref()
                .map(|text| {
                    Micros::parse_rfc3339(text).ok_or_else(|| {
                        ApiError::InvalidQuery(format!("{name} must be an RFC 3339 timestamp"))
                    })
                })
                .transpose()
        };
        let since = time("since", &self.since)?;
        let until = time("until", &self.until)?;
        if let (Some(since), Some(until)) = (since, until)
            && since > until
        {
            return Err(invalid("since must not be after until"));
        }
        let status = match self.status.as_deref() {
            None => None,
            Some("new") => Some(GroupStatus::New),
            Some("regressed") => Some(GroupStatus::Regressed),
            Some("spiking") => Some(GroupStatus::Spiking),
            Some(_) => return Err(invalid("status must be new, regressed or spiking")),
        };
        let sort = match self.sort.as_deref() {
            None | Some("last_seen") => GroupSort::LastSeen,
            Some("count") => GroupSort::Count,
            Some(_) => return Err(invalid("sort must be last_seen or count")),
        };
        let quiet = match self.quiet_days.as_deref() {
            None => groups::DEFAULT_QUIET,
            Some(text) => text
                .parse::<i64>()
                .ok()
                .filter(|days| (1..=3650).contains(days))
                .map(|days| days * RETURN_GAP)
                .ok_or_else(|| invalid("quiet_days must be 1-3650"))?,
        };
        let limit = match self.limit.as_deref() {
            None => DEFAULT_LIMIT,
            Some(text) => text
                .parse::<usize>()
                .ok()
                .filter(|limit| (1..=MAX_LIMIT).contains(limit))
                .ok_or_else(|| ApiError::InvalidQuery(format!("limit must be 1-{MAX_LIMIT}")))?,
        };
        let after = self
            .cursor
            .as_deref()
            .map(|cursor| decode_cursor(cursor).ok_or(ApiError::InvalidCursor))
            .transpose()?;
        Ok(GroupQuery {
            environment: self.environment.clone(),
            version: self.version.clone(),
            since,
            until,
            status,
            sort,
            quiet,
            limit,
            after,
            now,
        })
    }
}

/// A cursor names the sort key and fingerprint of the last group of a page. Editing one
/// cannot widen what is seen: every page is read in the caller's scope.
pub(crate) fn encode_cursor((key, fingerprint): (i64, i64)) -> String {
    format!("g{:016x}{:016x}", key as u64, fingerprint as u64)
}

/// The inverse of [`encode_cursor`]; `None` for anything this service did not produce.
pub(crate) fn decode_cursor(cursor: &str) -> Option<(i64, i64)> {
    let hex = cursor.strip_prefix('g')?;
    if hex.len() != 32 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    let key = u64::from_str_radix(&hex[..16], 16).ok()? as i64;
    let fingerprint = u64::from_str_radix(&hex[16..], 16).ok()? as i64;
    Some((key, fingerprint))
}

/// A group that returned after a quiet period in a version not seen before it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RegressionJson {
    /// The last event before the quiet period.
    #[schema(value_type = String, format = DateTime)]
    quiet_since: Micros,
    /// The first event after it.
    #[schema(value_type = String, format = DateTime)]
    returned_at: Micros,
    /// The versions first seen after it.
    new_versions: Vec<String>,
}

/// A group whose current hour is far above its baseline.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SpikeJson {
    /// Events in the current clock hour.
    current_hour: u64,
    /// Mean events per hour over the 24 hours before it.
    baseline: f64,
}

/// Hourly counts, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct HourlyJson {
    /// Start of the first hour.
    #[schema(value_type = String, format = DateTime)]
    from: Micros,
    /// One count per hour.
    counts: Vec<u64>,
}

/// The events of one version in one environment.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct VersionCount {
    /// `""` for events without a version.
    version: String,
    /// `""` for events without an environment.
    environment: String,
    /// Events counted.
    count: u64,
}

/// An error group: the threat events of the caller's scope with one fingerprint.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ThreatGroupJson {
    /// 16 hex digits; `GET /v1/threat-events?fingerprint=` lists the group's events.
    fingerprint: String,
    /// The events' error type.
    error_type: String,
    /// `sdk` or `api`.
    source: String,
    /// The message with numbers, ids, hex, addresses and quoted values masked.
    message: String,
    /// `METHOD /path/{id}` of the API call, the top stack frame, or `""`.
    location: String,
    /// First event of the scope.
    #[schema(value_type = String, format = DateTime)]
    first_seen: Micros,
    /// Last event of the scope.
    #[schema(value_type = String, format = DateTime)]
    last_seen: Micros,
    /// The version of the first event: the group is new in this version.
    first_version: String,
    /// Events counted by the filters (all of them without filters).
    count: u64,
    /// Events of the scope ever.
    total: u64,
    /// Accounts of the scope with events in the group.
    n_accounts: u64,
    /// Of `new`, `regressed`, `spiking`: those that hold.
    status: Vec<String>,
    /// Its latest regression, if it regressed.
    regression: Option<RegressionJson>,
    /// Its spike, if it is spiking.
    spike: Option<SpikeJson>,
    /// Hourly counts: the last 25 hours in a list, 7 days (or the window, up to 31 days)
    /// in a detail.
    hourly: HourlyJson,
    /// The group's events: a `GET /v1/threat-events` path.
    events: String,
    /// Detail only: counts by version and environment, largest first.
    #[serde(skip_serializing_if = "Option::is_none")]
    by_version: Option<Vec<VersionCount>>,
}

impl ThreatGroupJson {
    pub(crate) fn new(group: ThreatGroup, detail: bool) -> Self {
        let mut status = Vec::new();
        if group.new {
            status.push("new".to_string());
        }
        if group.regression.is_some() {
            status.push("regressed".to_string());
        }
        if group.spike.is_some() {
            status.push("spiking".to_string());
        }
        ThreatGroupJson {
            events: format!("/v1/threat-events?fingerprint={}", group.fingerprint),
            fingerprint: group.fingerprint,
            error_type: group.error_type,
            source: group.source,
            message: group.message,
            location: group.location,
            first_seen: group.first_seen,
            last_seen: group.last_seen,
            first_version: group.first_version,
            count: group.count,
            total: group.total,
            n_accounts: group.n_accounts,
            status,
            regression: group.regression.map(|r| RegressionJson {
                quiet_since: r.quiet_since,
                returned_at: r.returned_at,
                new_versions: r.new_versions,
            }),
            spike: group.spike.map(|s| SpikeJson {
                current_hour: s.current_hour,
                baseline: s.baseline,
            }),
            hourly: HourlyJson {
                from: group.series_from,
                counts: group.series,
            },
            by_version: detail.then(|| {
                group
                    .by_version
                    .into_iter()
                    .map(|(version, environment, count)| VersionCount {
                        version,
                        environment,
                        count,
                    })
                    .collect()
            }),
        }
    }
}

/// One page of groups.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ThreatGroupPage {
    /// The groups.
    data: Vec<ThreatGroupJson>,
    /// Pass as `cursor=` for the next page; null on the last page.
    next_cursor: Option<String>,
    /// The clock the statuses were decided by.
    #[schema(value_type = String, format = DateTime)]
    generated_at: Micros,
}

/// A group's fingerprint.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // The path's documentation; the handler takes it as a string.
struct FingerprintPath {
    /// 16 hex digits.
    fingerprint: String,
}

/// The groups of `principal`'s scope that `query` asks for: the page and the store's rows.
pub(crate) async fn list_groups(
    state: &AppState,
    principal: &Principal,
    query: &GroupQuery,
) -> Result<groups::GroupPage, ApiError> {
    let data = state
        .store
        .threat_group_data(&principal.scope(), &query.data_query(None))
        .await?;
    Ok(groups::list(&data, query))
}

/// The group `fingerprint` of `principal`'s scope, if there is one.
pub(crate) async fn group_detail(
    state: &AppState,
    principal: &Principal,
    query: &GroupQuery,
    fingerprint: i64,
) -> Result<Option<ThreatGroup>, ApiError> {
    let data = state
        .store
        .threat_group_data(&principal.scope(), &query.data_query(Some(fingerprint)))
        .await?;
    Ok(groups::detail(&data, query, fingerprint))
}

#[utoipa::path(
    get,
    path = "/v1/threat-groups",
    tag = "read",
    operation_id = "listThreatGroups",
    summary = "Error groups of the threat events in the caller's scope",
    description = "Threat events grouped by fingerprint (error type, source, the message with its \
        variable parts masked, and the API path template or top stack frame), with first and \
        last seen, counts and statuses, from the rollups the writer keeps. A partner's groups \
        add up its merchants'. Recorded as a `logs.viewed` audit event on the caller's account.",
    params(GroupParams),
    responses(
        (status = 200, description = "A page of groups", body = ThreatGroupPage),
        (status = 400, response = super::openapi::Problem),
    ),
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    Reader(principal): Reader,
    origin: RequestOrigin,
    RawQuery(raw): RawQuery,
) -> Result<Json<ThreatGroupPage>, ApiError> {
    let params: GroupParams = parse_query(raw.as_deref())?;
    let now = Micros::now();
    let query = params.to_query(now, true)?;
    let page = list_groups(&state, &principal, &query).await?;
    let metadata = json!({
        "kind": "threat",
        "view": "threat-groups",
        "query": query_summary(raw.as_deref()),
        "n_results": page.groups.len(),
    });
    state
        .viewed
        .record(&principal, &origin, "logs.viewed", metadata)
        .await;
    Ok(Json(ThreatGroupPage {
        next_cursor: page.next.map(encode_cursor),
        data: page
            .groups
            .into_iter()
            .map(|group| ThreatGroupJson::new(group, false))
            .collect(),
        generated_at: now,
    }))
}

#[utoipa::path(
    get,
    path = "/v1/threat-groups/{fingerprint}",
    tag = "read",
    operation_id = "getThreatGroup",
    summary = "One error group of the caller's scope, with counts by version and environment",
    description = "Its hourly series covers the last 7 days, or `since`..`until` (up to 31 days). \
        A group with no event in the caller's scope is 404.",
    params(FingerprintPath, GroupParams),
    responses(
        (status = 200, description = "The group", body = ThreatGroupJson),
        (status = 400, response = super::openapi::Problem),
        (status = 404, response = super::openapi::Problem),
    ),
)]
pub(crate) async fn get(
    State(state): State<AppState>,
    Reader(principal): Reader,
    origin: RequestOrigin,
    fingerprint: Result<Path<String>, PathRejection>,
    RawQuery(raw): RawQuery,
) -> Result<Json<ThreatGroupJson>, ApiError> {
    let Path(hash) = fingerprint.map_err(|_| ApiError::NotFound)?;
    let number = fingerprint_number(&hash)
        .filter(|_| !hash.bytes().any(|b| b.is_ascii_uppercase()))
        .ok_or(ApiError::NotFound)?;
    let params: GroupParams = parse_query(raw.as_deref())?;
    let query = params.to_query(Micros::now(), false)?;
    let group = group_detail(&state, &principal, &query, number)
        .await?
        .ok_or(ApiError::NotFound)?;
    let metadata = json!({"kind": "threat", "view": "threat-group", "fingerprint": hash});
    state
        .viewed
        .record(&principal, &origin, "logs.viewed", metadata)
        .await;
    Ok(Json(ThreatGroupJson::new(group, true)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        for pair in [(0, 0), (-1, i64::MIN), (1_764_000_000_000_000, 42)] {
            assert_eq!(decode_cursor(&encode_cursor(pair)), Some(pair));
        }
        for bad in [
            "",
            "g",
            "c0000000000000001",
            &format!("g{}", "A".repeat(32)),
            &format!("g{}", "0".repeat(31)),
        ] {
            assert_eq!(decode_cursor(bad), None, "{bad}");
        }
    }
}
