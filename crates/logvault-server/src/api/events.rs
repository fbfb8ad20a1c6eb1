//! Reading events: `GET /v1/{audit,threat}-events`, `…/{id}` and threat trends. Every read
//! is recorded as a `logs.viewed` event on the reader's account.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use logvault_core::{EventKind, Micros, Principal};
use logvault_store::Lookup;
use serde::Deserialize;
use serde_json::{Value, json};

use super::params::{ListParams, TrendParams, encode_cursor, parse_query};
use crate::auth::{Reader, RequestOrigin};
use crate::viewed::query_summary;
use crate::{ApiError, AppState};

pub(crate) async fn list_audit(
    state: State<AppState>,
    reader: Reader,
    origin: RequestOrigin,
    query: RawQuery,
) -> Result<Json<Value>, ApiError> {
    list(state, reader, origin, query, EventKind::Audit).await
}

pub(crate) async fn list_threat(
    state: State<AppState>,
    reader: Reader,
    origin: RequestOrigin,
    query: RawQuery,
) -> Result<Json<Value>, ApiError> {
    list(state, reader, origin, query, EventKind::Threat).await
}

/// A named account must be in scope; otherwise it is as if it did not exist.
async fn check_account(
    state: &AppState,
    principal: &Principal,
    account_id: Option<&str>,
) -> Result<(), ApiError> {
    let Some(account_id) = account_id else {
        return Ok(());
    };
    let found = state
        .store
        .accounts_in_scope(&principal.scope(), &[account_id.to_string()])
        .await?;
    if found.is_empty() {
        Err(ApiError::NotFound)
    } else {
        Ok(())
    }
}

async fn list(
    State(state): State<AppState>,
    Reader(principal): Reader,
    origin: RequestOrigin,
    RawQuery(raw): RawQuery,
    kind: EventKind,
) -> Result<Json<Value>, ApiError> {
    let params: ListParams = parse_query(raw.as_deref())?;
    let query = params.to_query(kind)?;
    check_account(&state, &principal, params.account_id()).await?;
    let page = state.store.query(&principal.scope(), &query).await?;
    let metadata = json!({
        "kind": kind.as_str(),
        "query": query_summary(raw.as_deref()),
        "n_results": page.events.len(),
    });
    state
        .viewed
        .record(&principal, &origin, "logs.viewed", metadata)
        .await;
    Ok(Json(json!({
        "data": page.events.iter().map(|event| event.to_json()).collect::<Vec<_>>(),
        "next_cursor": page.next_before_seq.map(encode_cursor),
    })))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct GetParams {
    account_id: Option<String>,
}

pub(crate) async fn get_audit(
    state: State<AppState>,
    reader: Reader,
    origin: RequestOrigin,
    id: Result<Path<String>, PathRejection>,
    query: RawQuery,
) -> Result<Json<Value>, ApiError> {
    get(state, reader, origin, id, query, EventKind::Audit).await
}

pub(crate) async fn get_threat(
    state: State<AppState>,
    reader: Reader,
    origin: RequestOrigin,
    id: Result<Path<String>, PathRejection>,
    query: RawQuery,
) -> Result<Json<Value>, ApiError> {
    get(state, reader, origin, id, query, EventKind::Threat).await
}

async fn get(
    State(state): State<AppState>,
    Reader(principal): Reader,
    origin: RequestOrigin,
    id: Result<Path<String>, PathRejection>,
    RawQuery(raw): RawQuery,
    kind: EventKind,
) -> Result<Json<Value>, ApiError> {
    // An id that is not even valid UTF-8 names no event.
    let Path(event_id) = id.map_err(|_| ApiError::NotFound)?;
    let params: GetParams = parse_query(raw.as_deref())?;
    let lookup = state
        .store
        .event(
            &principal.scope(),
            kind,
            &event_id,
            params.account_id.as_deref(),
        )
        .await?;
    let event = match lookup {
        Lookup::Found(event) => event,
        Lookup::NotFound => return Err(ApiError::NotFound),
        Lookup::Ambiguous => return Err(ApiError::AmbiguousId),
    };
    let metadata = json!({"kind": kind.as_str(), "event_id": event_id, "seq": event.seq});
    state
        .viewed
        .record(&principal, &origin, "logs.viewed", metadata)
        .await;
    Ok(Json(event.to_json()))
}

pub(crate) async fn trends(
    State(state): State<AppState>,
    Reader(principal): Reader,
    origin: RequestOrigin,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let params: TrendParams = parse_query(raw.as_deref())?;
    let query = params.to_query()?;
    check_account(&state, &principal, params.account_id()).await?;
    let rows = state.store.trends(&principal.scope(), &query).await?;
    let mut series: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
    for row in &rows {
        series
            .entry(row.key.as_str())
            .or_default()
            .push(json!({"start": row.bucket, "count": row.count}));
    }
    let metadata =
        json!({"kind": "threat", "query": query_summary(raw.as_deref()), "trends": true});
    state
        .viewed
        .record(&principal, &origin, "logs.viewed", metadata)
        .await;
    Ok(Json(json!({
        "from": query.from,
        "to": query.to,
        "interval": match query.interval { logvault_store::TrendInterval::Hour => "hour", logvault_store::TrendInterval::Day => "day" },
        "series": series.into_iter().map(|(key, points)| json!({"key": key, "points": points})).collect::<Vec<_>>(),
        "total": rows.iter().map(|row| row.count).sum::<u64>(),
        "generated_at": Micros::now(),
    })))
}
