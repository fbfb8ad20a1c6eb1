//! Trends of threat events: counts over time grouped by version, environment or error type,
//! the same numbers as `GET /v1/threat-events/trends`, as a chart and a table.

use axum::extract::{RawQuery, State};
use axum::response::Html;
use logvault_core::Micros;
use logvault_store::{TrendGroup, TrendInterval, TrendQuery};
use serde::Deserialize;
use serde_json::{Value, json};

use super::WebError;
use super::charts::{buckets, legend, line_chart, series_from_rows};
use super::filters::RANGES;
use super::logs::{account_options, scoped_accounts};
use super::render::{query_string, render, short_time};
use super::session::SignedIn;
use crate::AppState;
use crate::auth::RequestOrigin;
use crate::viewed::query_summary;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct TrendForm {
    group_by: String,
    interval: String,
    range: String,
    account_id: String,
}

const GROUPS: [(&str, &str, TrendGroup); 3] = [
    ("error_type", "Error type", TrendGroup::ErrorType),
    ("version", "Version", TrendGroup::Version),
    ("environment", "Environment", TrendGroup::Environment),
];

pub(crate) async fn page(
    State(state): State<AppState>,
    signed_in: SignedIn,
    origin: RequestOrigin,
    RawQuery(raw): RawQuery,
) -> Result<Html<String>, WebError> {
    let chrome = signed_in.chrome(state.store.as_ref(), "trends").await?;
    let bad = |message: String| WebError::BadRequest(message, Some(Box::new(chrome.clone())));
    let form: TrendForm = serde_urlencoded::from_str(raw.as_deref().unwrap_or_default())
        .map_err(|e| bad(format!("bad query string: {e}")))?;
    let (group_name, _, group_by) = GROUPS
        .iter()
        .find(|(name, _, _)| *name == form.group_by)
        .copied()
        .unwrap_or(GROUPS[0]);
    let (range, _, span) = RANGES
        .iter()
        .find(|(name, _, _)| *name == form.range)
        .copied()
        .unwrap_or(RANGES[2]);
    let interval = match form.interval.as_str() {
        "hour" => TrendInterval::Hour,
        "day" => TrendInterval::Day,
        _ if span <= RANGES[1].2 => TrendInterval::Hour,
        _ => TrendInterval::Day,
    };
    let interval_name = match interval {
        TrendInterval::Hour => "hour",
        TrendInterval::Day => "day",
    };
    let accounts = scoped_accounts(&state, &signed_in, &chrome, &form.account_id).await?;
    let now = Micros::now();
    let (from, to) = (Micros(now.0 - span), Micros(now.0 + 1));
    let query = TrendQuery {
        min_count: 0,
        account_id: (!form.account_id.is_empty()).then(|| form.account_id.clone()),
        from,
        to,
        group_by,
        interval,
    };
    let rows = state
        .store
        .trends(&signed_in.principal.scope(), &query)
        .await?;
    state
        .viewed
        .record(
            &signed_in.principal,
            &origin,
            "logs.viewed",
            json!({"kind": "threat", "trends": true, "via": "logs page", "query": query_summary(raw.as_deref())}),
        )
        .await;
    let starts = buckets(from, to, interval.micros());
    let series = series_from_rows(&rows, &starts, 7);
    let n_total: u64 = rows.iter().map(|row| row.count).sum();
    // The table lists every key, not only those drawn as their own line.
    let every_key = series_from_rows(&rows, &starts, usize::MAX);
    let table: Vec<Value> = every_key
        .iter()
        .map(|line| {
            let (peak_i, peak) = line
                .points
                .iter()
                .enumerate()
                .max_by_key(|(_, n)| **n)
                .map_or((0, 0), |(i, n)| (i, *n));
            let mut filter = vec![
                ("range", range.to_string()),
                (group_name, line.name.clone()),
            ];
            if !form.account_id.is_empty() {
                filter.push(("account_id", form.account_id.clone()));
            }
            json!({
                "key": line.name,
                "total": line.total,
                "share": format!("{:.1} %", 100.0 * line.total as f64 / n_total.max(1) as f64),
                "peak": peak,
                "peak_at": starts.get(peak_i).map(|at| short_time(*at)),
                "url": (line.name != "(none)").then(|| format!("/threat?{}", query_string(filter))),
            })
        })
        .collect();
    let context = json!({
        "chrome": chrome,
        "title": "Trends",
        "groups": GROUPS.iter().map(|(v, l, _)| json!({"value": v, "label": l, "selected": *v == group_name})).collect::<Vec<_>>(),
        "ranges": RANGES.iter().skip(1).map(|(v, l, _)| json!({"value": v, "label": l, "selected": *v == range})).collect::<Vec<_>>(),
        "interval": interval_name,
        "interval_label": if interval_name == "hour" { "hourly" } else { "daily" },
        "accounts": account_options(&chrome, &accounts, &form.account_id),
        "group_label": GROUPS.iter().find(|g| g.0 == group_name).map_or("", |g| g.1),
        "svg": line_chart("Threat events over time", &starts, interval.micros(), &series),
        "legend": legend(&series),
        "table": table,
        "total": n_total,
        "from": short_time(from),
    });
    Ok(Html(render("trends.html", context)?))
}
