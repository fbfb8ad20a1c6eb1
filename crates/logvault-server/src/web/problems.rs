//! The Problems page: the error groups of the threat events in the reader's scope — the same
//! groups, counts and statuses as `GET /v1/threat-groups` — each with a sparkline of its last
//! 24 hours drawn on the server and a link to the threat log filtered to its events.

use std::fmt::Write;

use axum::extract::{RawQuery, State};
use axum::response::Html;
use logvault_core::Micros;
use logvault_store::groups::{self, GroupQuery, GroupSort, GroupStatus, RETURN_GAP, ThreatGroup};
use serde::Deserialize;
use serde_json::{Value, json};

use super::WebError;
use super::charts::escape;
use super::render::{query_string, render, short_time};
use super::session::SignedIn;
use crate::AppState;
use crate::api::groups::{decode_cursor, encode_cursor};
use crate::auth::RequestOrigin;
use crate::viewed::query_summary;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ProblemForm {
    environment: String,
    version: String,
    status: String,
    sort: String,
    quiet_days: String,
    cursor: String,
}

const STATUSES: [(&str, &str); 4] = [
    ("", "Any"),
    ("new", "New"),
    ("regressed", "Regressed"),
    ("spiking", "Spiking"),
];
const SORTS: [(&str, &str); 2] = [("last_seen", "Last seen"), ("count", "Events")];

fn some(text: &str) -> Option<String> {
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_string())
}

impl ProblemForm {
    fn to_query(&self, now: Micros) -> Result<GroupQuery, String> {
        let status = match self.status.as_str() {
            "" => None,
            "new" => Some(GroupStatus::New),
            "regressed" => Some(GroupStatus::Regressed),
            "spiking" => Some(GroupStatus::Spiking),
            _ => return Err("status must be new, regressed or spiking".into()),
        };
        let sort = match self.sort.as_str() {
            "" | "last_seen" => GroupSort::LastSeen,
            "count" => GroupSort::Count,
            _ => return Err("sort must be last_seen or count".into()),
        };
        let quiet_days = match some(&self.quiet_days) {
            None => 7,
            Some(text) => text
                .parse::<i64>()
                .ok()
                .filter(|days| (1..=3650).contains(days))
                .ok_or("the quiet period is 1-3650 days")?,
        };
        let after = some(&self.cursor)
            .map(|cursor| decode_cursor(&cursor).ok_or("the cursor is not valid"))
            .transpose()?;
        Ok(GroupQuery {
            environment: some(&self.environment),
            version: some(&self.version),
            status,
            sort,
            quiet: quiet_days * RETURN_GAP,
            after,
            ..GroupQuery::new(now, 50)
        })
    }

    /// The form's values as URL pairs, without the cursor.
    fn pairs(&self) -> Vec<(&'static str, String)> {
        [
            ("environment", &self.environment),
            ("version", &self.version),
            ("status", &self.status),
            ("sort", &self.sort),
            ("quiet_days", &self.quiet_days),
        ]
        .into_iter()
        .filter_map(|(name, value)| some(value).map(|value| (name, value)))
        .collect()
    }
}

const SPARK_WIDTH: f64 = 120.0;
const SPARK_HEIGHT: f64 = 28.0;

/// A sparkline of hourly `counts` (oldest first) as inline SVG, the last hour marked; `title`
/// names it for screen readers and on hover.
pub(crate) fn sparkline(title: &str, counts: &[u64]) -> String {
    let max = counts.iter().copied().max().unwrap_or(0).max(1) as f64;
    let n = counts.len().max(2) as f64 - 1.0;
    let point = |i: usize, count: u64| {
        let x = 1.0 + (SPARK_WIDTH - 2.0) * i as f64 / n;
        let y = SPARK_HEIGHT - 2.0 - (SPARK_HEIGHT - 4.0) * count as f64 / max;
        (x, y)
    };
    let mut path = String::new();
    for (i, count) in counts.iter().enumerate() {
        let (x, y) = point(i, *count);
        let _ = write!(path, "{}{x:.1},{y:.1}", if i == 0 { "M" } else { " L" });
    }
    let mut svg = format!(
        "<svg class=\"sparkline\" viewBox=\"0 0 {SPARK_WIDTH} {SPARK_HEIGHT}\" width=\"{SPARK_WIDTH}\" \
         height=\"{SPARK_HEIGHT}\" role=\"img\" aria-label=\"{title}\"><title>{title}</title>",
        title = escape(title)
    );
    let baseline = SPARK_HEIGHT - 2.0;
    let _ = write!(
        svg,
        "<line x1=\"1\" y1=\"{baseline}\" x2=\"{}\" y2=\"{baseline}\" class=\"spark-axis\"/>",
        SPARK_WIDTH - 1.0
    );
    if !counts.is_empty() {
        let _ = write!(svg, "<path d=\"{path}\" class=\"spark-line\"/>");
        let (x, y) = point(counts.len() - 1, counts[counts.len() - 1]);
        let _ = write!(
            svg,
            "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"2.5\" class=\"spark-now\"/>"
        );
    }
    svg.push_str("</svg>");
    svg
}

fn row(group: &ThreatGroup, show_accounts: bool) -> Value {
    let mut status = Vec::new();
    if group.new {
        status.push(json!({"name": "new", "label": format!("new in {}", if group.first_version.is_empty() { "(no version)" } else { &group.first_version })}));
    }
    if let Some(regression) = &group.regression {
        status.push(json!({"name": "regressed", "label": format!(
            "regressed in {} after {} quiet days",
            regression.new_versions.join(", "),
            (regression.returned_at.0 - regression.quiet_since.0) / RETURN_GAP
        )}));
    }
    if let Some(spike) = &group.spike {
        status.push(json!({"name": "spiking", "label": format!(
            "spiking: {} this hour, {:.1}/h before",
            spike.current_hour, spike.baseline
        )}));
    }
    let last_24h: u64 = group.series.iter().sum();
    json!({
        "fingerprint": group.fingerprint,
        "error_type": group.error_type,
        "source": group.source,
        "message": group.message,
        "location": group.location,
        "count": group.count,
        "n_accounts": show_accounts.then_some(group.n_accounts),
        "first_seen": short_time(group.first_seen),
        "first_seen_rfc": group.first_seen.to_rfc3339(),
        "first_version": group.first_version,
        "last_seen": short_time(group.last_seen),
        "last_seen_rfc": group.last_seen.to_rfc3339(),
        "status": status,
        "sparkline": sparkline(&format!("{last_24h} events in the last 25 hours, hourly"), &group.series),
        "events_url": format!("/threat?{}", query_string([("range", "all".to_string()), ("fingerprint", group.fingerprint.clone())])),
    })
}

pub(crate) async fn page(
    State(state): State<AppState>,
    signed_in: SignedIn,
    origin: RequestOrigin,
    RawQuery(raw): RawQuery,
) -> Result<Html<String>, WebError> {
    let chrome = signed_in.chrome(state.store.as_ref(), "problems").await?;
    let bad = |message: String| WebError::BadRequest(message, Some(Box::new(chrome.clone())));
    let form: ProblemForm = serde_urlencoded::from_str(raw.as_deref().unwrap_or_default())
        .map_err(|e| bad(format!("bad query string: {e}")))?;
    let now = Micros::now();
    let query = form.to_query(now).map_err(bad)?;
    let data = state
        .store
        .threat_group_data(&signed_in.principal.scope(), &query.data_query(None))
        .await?;
    let page = groups::list(&data, &query);
    state
        .viewed
        .record(
            &signed_in.principal,
            &origin,
            "logs.viewed",
            json!({"kind": "threat", "view": "problems", "via": "logs page", "query": query_summary(raw.as_deref())}),
        )
        .await;
    let show_accounts = !matches!(
        signed_in.principal.scope(),
        logvault_core::Scope::Account(_)
    );
    let rows: Vec<Value> = page.groups.iter().map(|g| row(g, show_accounts)).collect();
    let next_url = page.next.map(|next| {
        let mut pairs = form.pairs();
        pairs.push(("cursor", encode_cursor(next)));
        format!("/problems?{}", query_string(pairs))
    });
    let option = |(value, label): &(&str, &str), current: &str| json!({"value": value, "label": label, "selected": *value == current});
    let context = json!({
        "chrome": chrome,
        "title": "Problems",
        "values": {"environment": form.environment, "version": form.version, "quiet_days": form.quiet_days},
        "statuses": STATUSES.iter().map(|s| option(s, &form.status)).collect::<Vec<_>>(),
        "sorts": SORTS.iter().map(|s| option(s, if form.sort.is_empty() { "last_seen" } else { &form.sort })).collect::<Vec<_>>(),
        "rows": rows,
        "show_accounts": show_accounts,
        "next_url": next_url,
        "first_url": (!form.cursor.is_empty()).then(|| format!("/problems?{}", query_string(form.pairs()))),
        "counted": if query.environment.is_some() || query.version.is_some() { "Events (filtered)" } else { "Events" },
    });
    Ok(Html(render("problems.html", context)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparklines_scale_to_the_peak_and_escape_their_title() {
        let svg = sparkline("<3 & more", &[0, 5, 10]);
        assert!(svg.contains("aria-label=\"&lt;3 &amp; more\""), "{svg}");
        assert!(svg.contains("M1.0,26.0 L60.0,14.0 L119.0,2.0"), "{svg}");
        assert!(svg.contains("<circle cx=\"119.0\" cy=\"2.0\""), "{svg}");
        let flat = sparkline("none", &[0, 0]);
        assert!(flat.contains("M1.0,26.0 L119.0,26.0"), "{flat}");
        assert!(!sparkline("empty", &[]).contains("<path"));
    }
}
