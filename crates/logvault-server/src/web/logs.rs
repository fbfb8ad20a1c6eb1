//! The Audit Logs and Threat Logs tabs: a filtered table, newest first, with cursor
//! pagination, export links and live tail; and the detail page of one event. An event
//! outside the reader's scope gets exactly the page a missing one gets.

use std::collections::HashMap;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::response::Html;
use logvault_core::{Account, EventKind, Micros, StoredEvent};
use logvault_store::Lookup;
use serde_json::{Value, json};

use super::WebError;
use super::filters::{AUDIT_FIELDS, Filters, RANGES, THREAT_FIELDS, encode_cursor, local_input};
use super::render::{Chrome, encode, query_string, render, short_time};
use super::session::SignedIn;
use crate::AppState;
use crate::auth::RequestOrigin;
use crate::viewed::query_summary;

/// Rows per page.
const PAGE_SIZE: usize = 50;

/// `/audit` or `/threat`.
pub(crate) fn tab(kind: EventKind) -> &'static str {
    match kind {
        EventKind::Audit => "/audit",
        EventKind::Threat => "/threat",
    }
}

/// The detail page of `event`.
pub(crate) fn detail_url(event: &StoredEvent) -> String {
    format!(
        "{}/{}?account_id={}",
        tab(event.kind),
        encode(&event.event_id),
        encode(&event.account_id)
    )
}

fn text(body: &Value, path: &[&str]) -> String {
    let mut value = body;
    for key in path {
        value = &value[*key];
    }
    match value {
        Value::String(text) => text.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// What one table row shows (the same for the page and the live tail).
pub(crate) fn row_view(event: &StoredEvent, names: &HashMap<String, String>) -> Value {
    let body: Value = serde_json::from_str(&event.body).unwrap_or(Value::Null);
    let message: String = text(&body, &["message"]).chars().take(160).collect();
    json!({
        "seq": event.seq,
        "time": short_time(event.received_at),
        "iso": event.received_at.to_rfc3339(),
        "account_id": event.account_id,
        "account_name": names.get(&event.account_id).cloned().unwrap_or_default(),
        "url": detail_url(event),
        "id": event.event_id,
        "action": text(&body, &["action"]),
        "outcome": text(&body, &["outcome"]),
        "reason": text(&body, &["reason"]),
        "actor": text(&body, &["actor", "id"]),
        "ip": text(&body, &["origin", "ip"]),
        "source": text(&body, &["source"]),
        "error_type": text(&body, &["error_type"]),
        "message": message,
        "version": text(&body, &["version"]),
        "environment": text(&body, &["environment"]),
    })
}

/// Account names by id, for the accounts the reader may see.
pub(crate) fn names(accounts: &[Account]) -> HashMap<String, String> {
    accounts
        .iter()
        .map(|account| (account.id.clone(), account.name.clone()))
        .collect()
}

/// The account selector's options; empty for a merchant, who gets no selector.
pub(crate) fn account_options(chrome: &Chrome, accounts: &[Account], selected: &str) -> Value {
    if chrome.role == "merchant" {
        return json!([]);
    }
    accounts
        .iter()
        .map(|a| json!({"id": a.id, "name": a.name, "kind": a.kind.as_str(), "selected": a.id == selected}))
        .collect()
}

/// The reader's accounts, and a 404 when the URL names an account outside them.
pub(crate) async fn scoped_accounts(
    state: &AppState,
    signed_in: &SignedIn,
    chrome: &Chrome,
    selected: &str,
) -> Result<Vec<Account>, WebError> {
    let accounts = state
        .store
        .list_accounts(&signed_in.principal.scope())
        .await?;
    if !selected.is_empty() && !accounts.iter().any(|a| a.id == selected) {
        return Err(WebError::NotFound(Some(Box::new(chrome.clone()))));
    }
    Ok(accounts)
}

pub(crate) async fn list_audit(
    state: State<AppState>,
    signed_in: SignedIn,
    origin: RequestOrigin,
    raw: RawQuery,
) -> Result<Html<String>, WebError> {
    list(state, signed_in, origin, raw, EventKind::Audit).await
}

pub(crate) async fn list_threat(
    state: State<AppState>,
    signed_in: SignedIn,
    origin: RequestOrigin,
    raw: RawQuery,
) -> Result<Html<String>, WebError> {
    list(state, signed_in, origin, raw, EventKind::Threat).await
}

async fn list(
    State(state): State<AppState>,
    signed_in: SignedIn,
    origin: RequestOrigin,
    RawQuery(raw): RawQuery,
    kind: EventKind,
) -> Result<Html<String>, WebError> {
    let chrome = signed_in
        .chrome(state.store.as_ref(), kind.as_str())
        .await?;
    let bad = |message: String| WebError::BadRequest(message, Some(Box::new(chrome.clone())));
    let filters = Filters::parse(raw.as_deref()).map_err(bad)?;
    let accounts = scoped_accounts(&state, &signed_in, &chrome, &filters.account_id).await?;
    let now = Micros::now();
    let query = filters.to_query(kind, now, PAGE_SIZE).map_err(bad)?;
    let page = state
        .store
        .query(&signed_in.principal.scope(), &query)
        .await?;
    let metadata = json!({
        "kind": kind.as_str(),
        "via": "logs page",
        "query": query_summary(raw.as_deref()),
        "n_results": page.events.len(),
    });
    state
        .viewed
        .record(&signed_in.principal, &origin, "logs.viewed", metadata)
        .await;

    let names = names(&accounts);
    let rows: Vec<Value> = page.events.iter().map(|e| row_view(e, &names)).collect();
    let keep = filters.pairs(kind);
    let link = |extra: Option<(&'static str, String)>| {
        let pairs = keep.iter().cloned().chain(extra);
        let query = query_string(pairs);
        if query.is_empty() {
            tab(kind).to_string()
        } else {
            format!("{}?{query}", tab(kind))
        }
    };
    let older = page
        .next_before_seq
        .map(|seq| link(Some(("cursor", encode_cursor(seq)))));
    let export_query = query_string(filters.api_pairs(kind, now));
    let export = |format: &str| {
        let sep = if export_query.is_empty() { "" } else { "&" };
        format!(
            "/v1/{}-events/export?format={format}{sep}{export_query}",
            kind.as_str()
        )
    };
    let kind_fields: &[&str] = match kind {
        EventKind::Audit => &AUDIT_FIELDS,
        EventKind::Threat => &THREAT_FIELDS,
    };
    let values: serde_json::Map<String, Value> = ["range", "from", "to", "q", "account_id"]
        .iter()
        .chain(kind_fields)
        .map(|name| (name.to_string(), filters.get(name).into()))
        .collect();
    let (from, to) = filters.window(now).unwrap_or((None, None));
    let context = json!({
        "chrome": chrome,
        "title": match kind { EventKind::Audit => "Audit logs", EventKind::Threat => "Threat logs" },
        "kind": kind.as_str(),
        "action": tab(kind),
        "values": values,
        "from_input": from.map(local_input).unwrap_or_default(),
        "to_input": to.map(local_input).unwrap_or_default(),
        "ranges": RANGES.iter().map(|(v, l, _)| json!({"value": v, "label": l})).collect::<Vec<_>>(),
        "accounts": account_options(&chrome, &accounts, &filters.account_id),
        "show_account": accounts.len() > 1,
        "rows": rows,
        "older_url": older,
        "newest_url": (!filters.cursor.is_empty()).then(|| link(None)),
        "filtered": !keep.is_empty(),
        "export_csv": export("csv"),
        "export_ndjson": export("ndjson"),
        "tail_url": format!("/tail/{}?{}", kind.as_str(), query_string(keep.iter().cloned())),
        "first_page": filters.cursor.is_empty(),
        "top_seq": page.events.first().map_or(0, |e| e.seq),
    });
    Ok(Html(render("logs.html", context)?))
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct DetailParams {
    account_id: String,
}

pub(crate) async fn detail_audit(
    state: State<AppState>,
    signed_in: SignedIn,
    origin: RequestOrigin,
    id: Result<Path<String>, PathRejection>,
    raw: RawQuery,
) -> Result<Html<String>, WebError> {
    detail(state, signed_in, origin, id, raw, EventKind::Audit).await
}

pub(crate) async fn detail_threat(
    state: State<AppState>,
    signed_in: SignedIn,
    origin: RequestOrigin,
    id: Result<Path<String>, PathRejection>,
    raw: RawQuery,
) -> Result<Html<String>, WebError> {
    detail(state, signed_in, origin, id, raw, EventKind::Threat).await
}

async fn detail(
    State(state): State<AppState>,
    signed_in: SignedIn,
    origin: RequestOrigin,
    id: Result<Path<String>, PathRejection>,
    RawQuery(raw): RawQuery,
    kind: EventKind,
) -> Result<Html<String>, WebError> {
    let chrome = signed_in
        .chrome(state.store.as_ref(), kind.as_str())
        .await?;
    let not_found = || WebError::NotFound(Some(Box::new(chrome.clone())));
    let Ok(Path(event_id)) = id else {
        return Err(not_found());
    };
    let params: DetailParams =
        serde_urlencoded::from_str(raw.as_deref().unwrap_or_default()).unwrap_or_default();
    let account = (!params.account_id.is_empty()).then_some(params.account_id.as_str());
    let scope = signed_in.principal.scope();
    let event = match state.store.event(&scope, kind, &event_id, account).await? {
        Lookup::Found(event) => event,
        Lookup::NotFound => return Err(not_found()),
        Lookup::Ambiguous => return ambiguous(&state, &signed_in, chrome, kind, &event_id).await,
    };
    let metadata =
        json!({"kind": kind.as_str(), "via": "logs page", "event_id": event_id, "seq": event.seq});
    state
        .viewed
        .record(&signed_in.principal, &origin, "logs.viewed", metadata)
        .await;
    let accounts = state.store.list_accounts(&scope).await?;
    let checkpoint = state.store.latest_checkpoint().await?;
    let context = json!({
        "chrome": chrome,
        "title": format!("{} event", match kind { EventKind::Audit => "Audit", EventKind::Threat => "Threat" }),
        "kind": kind.as_str(),
        "back": tab(kind),
        "event": event_view(&event, &names(&accounts)),
        "leaf_ok": event.compute_leaf_hash() == event.leaf_hash,
        "checkpoint_size": checkpoint.as_ref().map(|c| c.size),
        "checkpointed": checkpoint.is_some_and(|c| c.size >= event.seq),
    });
    Ok(Html(render("detail.html", context)?))
}

/// Every field of an event, ready to show: the simple ones as text, objects as pretty JSON.
fn event_view(event: &StoredEvent, names: &HashMap<String, String>) -> Value {
    let body: serde_json::Map<String, Value> =
        serde_json::from_str(&event.body).unwrap_or_default();
    let pretty = |value: &Value| serde_json::to_string_pretty(value).unwrap_or_default();
    let fields: Vec<Value> = body
        .iter()
        .filter(|(name, _)| !matches!(name.as_str(), "metadata" | "redactions" | "stacktrace"))
        .map(|(name, value)| match value {
            Value::String(text) => json!({"name": name, "value": text}),
            Value::Object(_) | Value::Array(_) => json!({"name": name, "json": pretty(value)}),
            other => json!({"name": name, "value": other.to_string()}),
        })
        .collect();
    let redactions: Option<Vec<Value>> =
        body.get("redactions")
            .and_then(Value::as_object)
            .map(|map| {
                map.iter()
                    .map(|(kind, count)| json!({"kind": kind, "count": count.to_string()}))
                    .collect()
            });
    json!({
        "id": event.event_id,
        "account_id": event.account_id,
        "account_name": names.get(&event.account_id).cloned().unwrap_or_default(),
        "seq": event.seq,
        "account_seq": event.account_seq,
        "received_at": event.received_at.to_rfc3339(),
        "received_short": short_time(event.received_at),
        "occurred_at": event.occurred_at.map(|at| at.to_rfc3339()),
        "leaf_hash": hex::encode(event.leaf_hash),
        "nonce": hex::encode(event.nonce),
        "fields": fields,
        "metadata": body.get("metadata").map(pretty),
        "stacktrace": body.get("stacktrace").and_then(Value::as_str),
        "redactions": redactions,
        "raw": pretty(&event.to_json()),
    })
}

/// Several accounts in scope used this id: list them so the reader can choose.
async fn ambiguous(
    state: &AppState,
    signed_in: &SignedIn,
    chrome: Chrome,
    kind: EventKind,
    event_id: &str,
) -> Result<Html<String>, WebError> {
    let scope = signed_in.principal.scope();
    let mut choices = Vec::new();
    for account in state.store.list_accounts(&scope).await? {
        let lookup = state
            .store
            .event(&scope, kind, event_id, Some(&account.id))
            .await?;
        if let Lookup::Found(event) = lookup {
            choices.push(
                json!({"url": detail_url(&event), "account_id": account.id, "name": account.name}),
            );
        }
    }
    let message = format!("Several of your accounts used the id {event_id:?}. Choose one:");
    let context = json!({
        "chrome": chrome, "title": "Choose an account", "status": 409,
        "message": message, "choices": choices,
    });
    Ok(Html(render("error.html", context)?))
}
