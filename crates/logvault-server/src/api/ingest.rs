//! `POST /v1/audit-events` and `POST /v1/threat-events`.

use std::collections::BTreeSet;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use logvault_core::validate::{BatchError, parse_batch, validate_event_with};
use logvault_core::{EventKind, NewEvent, Principal};
use serde_json::json;

use crate::auth::Ingester;
use crate::{ApiError, AppState};

pub(crate) async fn post_audit(
    State(state): State<AppState>,
    Ingester(principal): Ingester,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    ingest(state, principal, EventKind::Audit, headers, body).await
}

pub(crate) async fn post_threat(
    State(state): State<AppState>,
    Ingester(principal): Ingester,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    ingest(state, principal, EventKind::Threat, headers, body).await
}

async fn ingest(
    state: AppState,
    principal: Principal,
    kind: EventKind,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let limits = &state.config.limits;
    let ndjson = is_ndjson(&headers)?;
    let declared_length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<usize>().ok());
    if declared_length.is_some_and(|length| length > limits.max_body_bytes) {
        return Err(ApiError::PayloadTooLarge(limits.max_body_bytes));
    }
    let bytes = axum::body::to_bytes(body, limits.max_body_bytes)
        .await
        .map_err(|_| ApiError::PayloadTooLarge(limits.max_body_bytes))?;
    let values = parse_batch(&bytes, ndjson, limits).map_err(|error| match error {
        BatchError::Malformed(message) => ApiError::MalformedBody(message),
        BatchError::TooManyEvents { found, limit } => ApiError::TooManyEvents { found, limit },
    })?;
    let mut events = Vec::with_capacity(values.len());
    let mut problems = Vec::new();
    for (index, value) in values.iter().enumerate() {
        let scrubber = &state.config.scrubber;
        match validate_event_with(kind, index, value, &principal.account_id, limits, scrubber) {
            Ok(event) => events.push(event),
            Err(found) => problems.extend(found),
        }
    }
    if !problems.is_empty() {
        return Err(ApiError::InvalidEvents(problems));
    }
    check_accounts_writable(&state, &principal, &events).await?;
    let outcomes = state.store.ingest(events).await?;
    let n_new = outcomes.iter().filter(|outcome| !outcome.duplicate).count();
    state.metrics.ingested(kind, n_new);
    let data: Vec<_> = outcomes
        .iter()
        .map(|outcome| {
            json!({
                "id": outcome.event_id,
                "account_id": outcome.account_id,
                "seq": outcome.seq,
                "account_seq": outcome.account_seq,
                "received_at": outcome.received_at,
                "leaf_hash": hex::encode(outcome.leaf_hash),
                "duplicate": outcome.duplicate,
            })
        })
        .collect();
    let status = if n_new > 0 {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(json!({ "data": data }))).into_response())
}

/// JSON (one object or an array) or NDJSON; anything else is refused before reading the body.
fn is_ndjson(headers: &HeaderMap) -> Result<bool, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .ok_or(ApiError::UnsupportedMediaType)?;
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        "application/json" => Ok(false),
        "application/x-ndjson" | "application/ndjson" | "application/jsonl" => Ok(true),
        _ => Err(ApiError::UnsupportedMediaType),
    }
}

/// Every event's account must be in the key's scope and accept events. Unknown and foreign
/// accounts get the same answer, so a key cannot probe which accounts exist.
async fn check_accounts_writable(
    state: &AppState,
    principal: &Principal,
    events: &[NewEvent],
) -> Result<(), ApiError> {
    let wanted: BTreeSet<&str> = events
        .iter()
        .map(|event| event.account_id.as_str())
        .collect();
    let ids: Vec<String> = wanted.iter().map(|id| id.to_string()).collect();
    let writable: BTreeSet<String> = state
        .store
        .accounts_in_scope(&principal.scope(), &ids)
        .await?
        .into_iter()
        .filter(|account| !account.disabled)
        .map(|account| account.id)
        .collect();
    match events
        .iter()
        .position(|event| !writable.contains(&event.account_id))
    {
        None => Ok(()),
        Some(index) => Err(ApiError::Forbidden(format!(
            "event {index}: this key may not write to account {:?}; nothing was stored",
            events[index].account_id
        ))),
    }
}
