//! The overview: counts for the chosen period, failed vs successful sign-ins over time, errors
//! over time by version and by environment, the top error types, failed-login bursts (many
//! failures from one address within an hour) and recent password, MFA, role and key changes.
//! Counts come from the stores' trend rollups, so the page costs the same at any log size.

use std::net::Ipv6Addr;

use axum::extract::{RawQuery, State};
use axum::response::Html;
use logvault_core::{EventKind, Micros};
use logvault_store::trends::HOUR;
use logvault_store::{EventQuery, SIGN_IN_ACTION, TrendGroup, TrendInterval, TrendQuery, TrendRow};
use serde_json::{Value, json};

use super::WebError;
use super::charts::{Series, bar_chart, buckets, color, legend, line_chart, series_from_rows};
use super::filters::{Filters, RANGES};
use super::logs::{account_options, names, row_view, scoped_accounts};
use super::render::{query_string, render, short_time};
use super::session::SignedIn;
use crate::AppState;
use crate::auth::RequestOrigin;
use crate::viewed::query_summary;

/// Failures from one address within an hour that make a burst.
const BURST_THRESHOLD: u64 = 10;
/// Actions that change who can get in or with what, counted on the overview.
const SECURITY_CHANGES: [&str; 8] = [
    "user.created",
    "user.password_changed",
    "user.password_reset",
    "user.mfa_enabled",
    "user.mfa_disabled",
    "user.role_changed",
    "api_key.created",
    "api_key.revoked",
];
/// Rows in each list of recent events.
const RECENT_ROWS: usize = 8;

/// The width of the chart buckets for a period.
pub(crate) fn interval_for(range: &str) -> TrendInterval {
    match range {
        "1h" | "24h" => TrendInterval::Hour,
        _ => TrendInterval::Day,
    }
}

/// The query for the newest failed sign-ins of the period.
fn recent_failures(account_id: Option<String>, from: Micros) -> EventQuery {
    let mut query = EventQuery::new(EventKind::Audit, RECENT_ROWS);
    query.action = Some(SIGN_IN_ACTION.into());
    query.outcome = Some("failure".into());
    query.account_id = account_id;
    query.from = Some(from);
    query
}

/// The hours in which one address failed to sign in at least [`BURST_THRESHOLD`] times,
/// largest first, from the rollup's counts per address and hour.
fn bursts(rows: &[TrendRow]) -> Vec<Value> {
    let mut rows: Vec<&TrendRow> = rows.iter().collect();
    rows.sort_by(|a, b| b.count.cmp(&a.count).then(b.bucket.cmp(&a.bucket)));
    rows.into_iter()
        .filter_map(|row| {
            let bytes: [u8; 16] = hex::decode(&row.key).ok()?.try_into().ok()?;
            let ip = Ipv6Addr::from(bytes).to_canonical().to_string();
            let link = query_string([
                ("range", "custom".to_string()),
                ("from", row.bucket.to_rfc3339()),
                ("to", Micros(row.bucket.0 + HOUR).to_rfc3339()),
                ("action", SIGN_IN_ACTION.into()),
                ("outcome", "failure".into()),
                ("ip", ip.clone()),
            ]);
            Some(json!({"hour": short_time(row.bucket), "iso": row.bucket.to_rfc3339(), "ip": ip, "count": row.count, "url": format!("/audit?{link}")}))
        })
        .take(5)
        .collect()
}

/// How many password, MFA, role, user and API-key changes the period holds, by action, each
/// linking to the audit log filtered to it.
fn security_changes(rows: &[TrendRow], period: &[(&'static str, String)]) -> Vec<Value> {
    SECURITY_CHANGES
        .iter()
        .filter_map(|action| {
            let count: u64 = rows
                .iter()
                .filter(|row| row.key == *action)
                .map(|row| row.count)
                .sum();
            let mut pairs = period.to_vec();
            pairs.push(("action", action.to_string()));
            (count > 0).then(|| {
                json!({"action": action, "count": count, "url": format!("/audit?{}", query_string(pairs))})
            })
        })
        .collect()
}

/// Accounts shown in the retention panel at most.
const RETENTION_ROWS: usize = 20;

/// Each account's retention (from `retention::overview`) as the panel shows it: how long each
/// kind is kept and by whose policy, the hold, and what was purged before when.
fn retention_rows(accounts: &[Value], only: Option<&str>) -> Vec<Value> {
    let kept = |policy: &Value| {
        let days = policy["days"].as_u64().unwrap_or_default();
        match policy["source"].as_str() {
            Some("default") | None => format!("{days} days (default)"),
            Some(source) => format!(
                "{days} days (set on {})",
                source.trim_start_matches("account:")
            ),
        }
    };
    let purged = |kind: &str, policy: &Value| {
        let events = policy["purged_events"].as_u64().unwrap_or_default();
        let before = policy["purged_before"].as_str().unwrap_or_default();
        (events > 0).then(|| {
            format!(
                "{events} {kind} events received before {}",
                &before[..before.len().min(10)]
            )
        })
    };
    accounts
        .iter()
        .filter(|account| only.is_none_or(|id| account["account_id"] == id))
        .take(RETENTION_ROWS)
        .map(|account| {
            let purges: Vec<String> = [("audit", &account["audit"]), ("threat", &account["threat"])]
                .into_iter()
                .filter_map(|(kind, policy)| purged(kind, policy))
                .collect();
            let held_by = account["audit"]["held_by"].as_str();
            json!({
                "account_id": account["account_id"],
                "audit": kept(&account["audit"]),
                "threat": kept(&account["threat"]),
                "hold": match (&account["hold"], held_by) {
                    (Value::Object(hold), _) => format!("held: {}", hold["reason"].as_str().unwrap_or_default()),
                    (_, Some(partner)) => format!("held through {partner}"),
                    _ => String::new(),
                },
                "purged": if purges.is_empty() { "nothing".to_string() } else { purges.join("; ") },
            })
        })
        .collect()
}

pub(crate) async fn page(
    State(state): State<AppState>,
    signed_in: SignedIn,
    origin: RequestOrigin,
    RawQuery(raw): RawQuery,
) -> Result<Html<String>, WebError> {
    let chrome = signed_in.chrome(state.store.as_ref(), "overview").await?;
    let bad = |message: String| WebError::BadRequest(message, Some(Box::new(chrome.clone())));
    let mut filters = Filters::parse(raw.as_deref()).map_err(bad)?;
    if !RANGES.iter().any(|(name, _, _)| *name == filters.range) {
        filters.range = "24h".into();
    }
    let accounts = scoped_accounts(&state, &signed_in, &chrome, &filters.account_id).await?;
    let names = names(&accounts);
    let now = Micros::now();
    let (from, _) = filters.window(now).map_err(bad)?;
    let from = from.unwrap_or(now);
    let interval = interval_for(&filters.range);
    let width = interval.micros();
    let starts = buckets(from, Micros(now.0 + 1), width);
    let account_id = (!filters.account_id.is_empty()).then(|| filters.account_id.clone());

    let scope = signed_in.principal.scope();
    let trend = |group_by| TrendQuery {
        min_count: 0,
        account_id: account_id.clone(),
        from,
        to: Micros(now.0 + 1),
        group_by,
        interval,
    };
    let bursts_query = TrendQuery {
        interval: TrendInterval::Hour,
        min_count: BURST_THRESHOLD,
        ..trend(TrendGroup::FailedSignInIp)
    };
    // Independent reads: run at once, each on its own pooled connection.
    let store = state.store.as_ref();
    let [
        sign_ins_query,
        action_query,
        version_query,
        environment_query,
        type_query,
    ] = [
        TrendGroup::SignInOutcome,
        TrendGroup::AuditAction,
        TrendGroup::Version,
        TrendGroup::Environment,
        TrendGroup::ErrorType,
    ]
    .map(trend);
    let failures_query = recent_failures(account_id.clone(), from);
    let (sign_ins, burst_rows, by_action, by_version, by_environment, by_type, failures, retention) =
        tokio::try_join!(
            store.trends(&scope, &sign_ins_query),
            store.trends(&scope, &bursts_query),
            store.trends(&scope, &action_query),
            store.trends(&scope, &version_query),
            store.trends(&scope, &environment_query),
            store.trends(&scope, &type_query),
            store.query(&scope, &failures_query),
            logvault_store::retention::overview(store, &scope, &state.config.retention),
        )?;
    let failures: Vec<Value> = failures
        .events
        .iter()
        .map(|event| row_view(event, &names))
        .collect();
    state
        .viewed
        .record(
            &signed_in.principal,
            &origin,
            "logs.viewed",
            json!({"kind": "overview", "via": "logs page", "query": query_summary(raw.as_deref())}),
        )
        .await;

    let outcome_points = |outcome: &str| {
        let mut points = vec![0; starts.len()];
        for row in sign_ins.iter().filter(|row| row.key == outcome) {
            if let Ok(i) = starts.binary_search(&row.bucket) {
                points[i] += row.count;
            }
        }
        points
    };
    let sign_in_series =
        [("successful", "success", 2), ("failed", "failure", 1)].map(|(name, outcome, shade)| {
            let points = outcome_points(outcome);
            Series {
                name: name.into(),
                color: color(shade),
                total: points.iter().sum(),
                points,
            }
        });
    let version_series = series_from_rows(&by_version, &starts, 6);
    let environment_series = series_from_rows(&by_environment, &starts, 6);
    let type_series = series_from_rows(&by_type, &starts, 8);
    let n_threats: u64 = by_type.iter().map(|row| row.count).sum();
    let top_types: Vec<(String, u64)> = type_series
        .iter()
        .filter(|s| s.name != "other")
        .map(|s| (s.name.clone(), s.total))
        .collect();
    let (n_ok, n_failed) = (sign_in_series[0].total, sign_in_series[1].total);
    let failure_rate = if n_ok + n_failed == 0 {
        "–".to_string()
    } else {
        format!(
            "{:.1} %",
            100.0 * n_failed as f64 / (n_ok + n_failed) as f64
        )
    };
    let chart = |label: &str, series: &[Series]| json!({"svg": line_chart(label, &starts, width, series), "legend": legend(series)});
    let pairs_for = |range: &str| {
        let mut pairs = vec![("range", range.to_string())];
        if let Some(account) = &account_id {
            pairs.push(("account_id", account.clone()));
        }
        pairs
    };
    let range_pairs = |value: &str| format!("/?{}", query_string(pairs_for(value)));
    let period_pairs = pairs_for(&filters.range);
    let context = json!({
        "chrome": chrome,
        "title": "Overview",
        "range": filters.range,
        "ranges": RANGES.iter().map(|(v, l, _)| json!({"value": v, "label": l, "url": range_pairs(v), "active": *v == filters.range})).collect::<Vec<_>>(),
        "accounts": account_options(&chrome, &accounts, &filters.account_id),
        "account_id": filters.account_id,
        "from": short_time(from),
        "stats": [
            {"label": "Successful sign-ins", "value": n_ok},
            {"label": "Failed sign-ins", "value": n_failed},
            {"label": "Sign-in failure rate", "value": failure_rate},
            {"label": "Threat events", "value": n_threats},
            {"label": "Error types", "value": by_type.iter().map(|r| r.key.as_str()).collect::<std::collections::BTreeSet<_>>().len()},
        ],
        "sign_ins": chart("Sign-ins over time", &sign_in_series),
        "by_version": chart("Errors by version over time", &version_series),
        "by_environment": chart("Errors by environment over time", &environment_series),
        "top_types": bar_chart("Top error types", &top_types),
        "bursts": bursts(&burst_rows),
        "rows": failures,
        "changes": security_changes(&by_action, &period_pairs),
        "kind": "audit",
        "show_account": accounts.len() > 1,
        "retention": retention_rows(&retention, account_id.as_deref()),
    });
    Ok(Html(render("overview.html", context)?))
}
