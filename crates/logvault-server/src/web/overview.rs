//! The overview: counts for the chosen period, failed vs successful sign-ins over time, errors
//! over time by version and by environment, the top error types, and failed-login bursts
//! (many failures from one address within an hour).

use std::collections::HashMap;

use axum::extract::{RawQuery, State};
use axum::response::Html;
use logvault_core::{EventKind, Micros};
use logvault_store::{EventQuery, TrendGroup, TrendInterval, TrendQuery};
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
/// Sign-in events read per overview, at most (pages of 1000).
const MAX_SIGN_IN_PAGES: usize = 50;
/// Failures from one address within an hour that make a burst.
const BURST_THRESHOLD: u64 = 10;

/// The width of the chart buckets for a period.
pub(crate) fn interval_for(range: &str) -> TrendInterval {
    match range {
        "1h" | "24h" => TrendInterval::Hour,
        _ => TrendInterval::Day,
    }
}

struct SignIns {
    success: Vec<u64>,
    failure: Vec<u64>,
    bursts: Vec<Value>,
    recent_failures: Vec<Value>,
    truncated: bool,
}

async fn sign_ins(
    state: &AppState,
    signed_in: &SignedIn,
    account_id: Option<String>,
    from: Micros,
    starts: &[Micros],
    width: i64,
    names: &HashMap<String, String>,
) -> Result<SignIns, WebError> {
    let mut query = EventQuery::new(EventKind::Audit, 1000);
    query.action = Some("user.login".into());
    query.account_id = account_id;
    query.from = Some(from);
    let index = |at: Micros| {
        starts
            .binary_search(&Micros(at.0.div_euclid(width) * width))
            .ok()
    };
    let mut result = SignIns {
        success: vec![0; starts.len()],
        failure: vec![0; starts.len()],
        bursts: Vec::new(),
        recent_failures: Vec::new(),
        truncated: false,
    };
    let mut per_ip_hour: HashMap<(i64, String), (u64, Micros)> = HashMap::new();
    for page_number in 0.. {
        if page_number == MAX_SIGN_IN_PAGES {
            result.truncated = true;
            break;
        }
        let page = state
            .store
            .query(&signed_in.principal.scope(), &query)
            .await?;
        for event in &page.events {
            let body: Value = serde_json::from_str(&event.body).unwrap_or(Value::Null);
            let failed = body["outcome"] == "failure";
            if let Some(i) = index(event.received_at) {
                let counts = if failed {
                    &mut result.failure
                } else {
                    &mut result.success
                };
                counts[i] += 1;
            }
            if failed {
                if result.recent_failures.len() < 8 {
                    result.recent_failures.push(row_view(event, names));
                }
                if let Some(ip) = body["origin"]["ip"].as_str() {
                    let hour = event.received_at.0.div_euclid(HOUR) * HOUR;
                    let entry = per_ip_hour
                        .entry((hour, ip.to_string()))
                        .or_insert((0, event.received_at));
                    entry.0 += 1;
                }
            }
        }
        match page.next_before_seq {
            Some(seq) => query.before_seq = Some(seq),
            None => break,
        }
    }
    let mut bursts: Vec<((i64, String), (u64, Micros))> = per_ip_hour
        .into_iter()
        .filter(|(_, (count, _))| *count >= BURST_THRESHOLD)
        .collect();
    bursts.sort_by(|a, b| b.1.0.cmp(&a.1.0).then(b.0.0.cmp(&a.0.0)));
    result.bursts = bursts
        .into_iter()
        .take(5)
        .map(|((hour, ip), (count, _))| {
            let link = query_string([
                ("range", "custom".to_string()),
                ("from", Micros(hour).to_rfc3339()),
                ("to", Micros(hour + HOUR).to_rfc3339()),
                ("action", "user.login".into()),
                ("outcome", "failure".into()),
                ("ip", ip.clone()),
            ]);
            json!({"hour": short_time(Micros(hour)), "iso": Micros(hour).to_rfc3339(), "ip": ip, "count": count, "url": format!("/audit?{link}")})
        })
        .collect();
    Ok(result)
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

    let logins = sign_ins(
        &state,
        &signed_in,
        account_id.clone(),
        from,
        &starts,
        width,
        &names,
    )
    .await?;
    let scope = signed_in.principal.scope();
    let trend = |group_by| TrendQuery {
        account_id: account_id.clone(),
        from,
        to: Micros(now.0 + 1),
        group_by,
        interval,
    };
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

    let sign_in_series = [
        Series {
            name: "successful".into(),
            color: color(2),
            total: logins.success.iter().sum(),
            points: logins.success,
        },
        Series {
            name: "failed".into(),
            color: color(1),
            total: logins.failure.iter().sum(),
            points: logins.failure,
        },
    ];
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
        "truncated": logins.truncated,
        "sign_ins": chart("Sign-ins over time", &sign_in_series),
        "by_version": chart("Errors by version over time", &version_series),
        "by_environment": chart("Errors by environment over time", &environment_series),
        "top_types": bar_chart("Top error types", &top_types),
        "bursts": logins.bursts,
        "rows": logins.recent_failures,
        "kind": "audit",
        "show_account": accounts.len() > 1,
    });
    Ok(Html(render("overview.html", context)?))
}
