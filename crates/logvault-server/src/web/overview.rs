//! The overview: counts for the chosen period, failed vs successful sign-ins over time, errors
//! over time by version and by environment, the top error types, failed-login bursts (many
//! failures from one address within an hour) and recent password, MFA, role and key changes.
//! Counts come from the stores' trend rollups, so the page costs the same at any log size.

use std::collections::HashMap;

use axum::extract::{RawQuery, State};
use axum::response::Html;
use logvault_core::{EventKind, Micros, Scope};
use logvault_store::{EventQuery, SIGN_IN_ACTION, TrendGroup, TrendInterval, TrendQuery};
use serde_json::{Value, json};

use super::WebError;
use super::charts::{Series, bar_chart, buckets, color, legend, line_chart, series_from_rows};
use super::filters::{Filters, RANGES};
use super::logs::{account_options, names, row_view, scoped_accounts};
use super::render::{query_string, render, short_time};
use super::session::SignedIn;
use crate::AppState;
use crate::auth::RequestOrigin;

const HOUR: i64 = 3_600_000_000;
/// The newest failed sign-ins read for bursts, at most: bursts are about what is happening
/// now, and reading a period's every failure would make the page as slow as the log is long.
const MAX_FAILURES_READ: usize = 2_000;
/// Failures from one address within an hour that make a burst.
const BURST_THRESHOLD: u64 = 10;
/// Actions that change who can get in or with what, listed with the failed sign-ins.
const SECURITY_CHANGES: [&str; 7] = [
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

/// Failed-login bursts and the newest failures, from the newest failed sign-ins.
struct Failures {
    bursts: Vec<Value>,
    recent: Vec<Value>,
    /// More failures happened in the period than were read.
    truncated: bool,
}

async fn failures(
    state: &AppState,
    scope: &Scope,
    account_id: Option<String>,
    from: Micros,
    names: &HashMap<String, String>,
) -> Result<Failures, WebError> {
    let mut query = EventQuery::new(EventKind::Audit, 1000);
    query.action = Some(SIGN_IN_ACTION.into());
    query.outcome = Some("failure".into());
    query.account_id = account_id;
    query.from = Some(from);
    let mut result = Failures {
        bursts: Vec::new(),
        recent: Vec::new(),
        truncated: false,
    };
    let mut per_ip_hour: HashMap<(i64, String), u64> = HashMap::new();
    let mut read = 0;
    loop {
        let page = state.store.query(scope, &query).await?;
        read += page.events.len();
        for event in &page.events {
            if result.recent.len() < RECENT_ROWS {
                result.recent.push(row_view(event, names));
            }
            let body: Value = serde_json::from_str(&event.body).unwrap_or(Value::Null);
            if let Some(ip) = body["origin"]["ip"].as_str() {
                let hour = event.received_at.0.div_euclid(HOUR) * HOUR;
                *per_ip_hour.entry((hour, ip.to_string())).or_default() += 1;
            }
        }
        match page.next_before_seq {
            Some(_) if read >= MAX_FAILURES_READ => {
                result.truncated = true;
                break;
            }
            Some(seq) => query.before_seq = Some(seq),
            None => break,
        }
    }
    let mut bursts: Vec<((i64, String), u64)> = per_ip_hour
        .into_iter()
        .filter(|(_, count)| *count >= BURST_THRESHOLD)
        .collect();
    bursts.sort_by(|a, b| b.1.cmp(&a.1).then(b.0.0.cmp(&a.0.0)));
    result.bursts = bursts
        .into_iter()
        .take(5)
        .map(|((hour, ip), count)| {
            let link = query_string([
                ("range", "custom".to_string()),
                ("from", Micros(hour).to_rfc3339()),
                ("to", Micros(hour + HOUR).to_rfc3339()),
                ("action", SIGN_IN_ACTION.into()),
                ("outcome", "failure".into()),
                ("ip", ip.clone()),
            ]);
            json!({"hour": short_time(Micros(hour)), "iso": Micros(hour).to_rfc3339(), "ip": ip, "count": count, "url": format!("/audit?{link}")})
        })
        .collect();
    Ok(result)
}

/// The newest password, MFA, role and API-key changes of the period, newest first.
async fn security_changes(
    state: &AppState,
    scope: &Scope,
    account_id: Option<String>,
    from: Micros,
    names: &HashMap<String, String>,
) -> Result<Vec<Value>, WebError> {
    let pages = SECURITY_CHANGES.map(|action| {
        let mut query = EventQuery::new(EventKind::Audit, RECENT_ROWS);
        query.action = Some(action.into());
        query.account_id = account_id.clone();
        query.from = Some(from);
        async move { state.store.query(scope, &query).await }
    });
    let mut events = Vec::new();
    for page in futures_util::future::join_all(pages).await {
        events.extend(page?.events);
    }
    events.sort_by_key(|event| std::cmp::Reverse(event.seq));
    Ok(events
        .iter()
        .take(RECENT_ROWS)
        .map(|event| row_view(event, names))
        .collect())
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
        account_id: account_id.clone(),
        from,
        to: Micros(now.0 + 1),
        group_by,
        interval,
    };
    let sign_ins = state
        .store
        .trends(&scope, &trend(TrendGroup::SignInOutcome))
        .await?;
    let failures = failures(&state, &scope, account_id.clone(), from, &names).await?;
    let changes = security_changes(&state, &scope, account_id.clone(), from, &names).await?;
    let by_version = state
        .store
        .trends(&scope, &trend(TrendGroup::Version))
        .await?;
    let by_environment = state
        .store
        .trends(&scope, &trend(TrendGroup::Environment))
        .await?;
    let by_type = state
        .store
        .trends(&scope, &trend(TrendGroup::ErrorType))
        .await?;
    state
        .viewed
        .record(
            &signed_in.principal,
            &origin,
            "logs.viewed",
            json!({"kind": "overview", "via": "logs page", "query": raw.as_deref().unwrap_or_default().chars().take(1024).collect::<String>()}),
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
    let range_pairs = |value: &str| {
        let mut pairs = vec![("range", value.to_string())];
        if let Some(account) = &account_id {
            pairs.push(("account_id", account.clone()));
        }
        format!("/?{}", query_string(pairs))
    };
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
        "truncated": failures.truncated,
        "max_failures": MAX_FAILURES_READ,
        "sign_ins": chart("Sign-ins over time", &sign_in_series),
        "by_version": chart("Errors by version over time", &version_series),
        "by_environment": chart("Errors by environment over time", &environment_series),
        "top_types": bar_chart("Top error types", &top_types),
        "bursts": failures.bursts,
        "rows": failures.recent,
        "changes": changes,
        "kind": "audit",
        "show_account": accounts.len() > 1,
    });
    Ok(Html(render("overview.html", context)?))
}
