//! Tamper evidence over HTTP: the latest signed checkpoint, inclusion proofs for events in
//! the reader's scope, and consistency proofs between tree sizes.

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use logvault_core::{EventKind, Principal};
use logvault_store::Lookup;
use serde::Deserialize;
use serde_json::{Value, json};

use super::params::parse_query;
use crate::auth::{Reader, RequestOrigin};
use crate::{ApiError, AppState};

pub(crate) async fn latest_checkpoint(
    State(state): State<AppState>,
    Reader(_): Reader,
) -> Result<Response, ApiError> {
    let checkpoint = state
        .store
        .latest_checkpoint()
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok((
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        checkpoint.note,
    )
        .into_response())
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct InclusionParams {
    event_id: Option<String>,
    account_id: Option<String>,
    tree_size: Option<String>,
}

fn parse_size(name: &str, text: &str) -> Result<u64, ApiError> {
    text.parse()
        .map_err(|_| ApiError::InvalidQuery(format!("{name} must be a non-negative integer")))
}

/// Finds an event by id in the reader's scope, whichever its kind.
async fn find_event(
    state: &AppState,
    principal: &Principal,
    event_id: &str,
    account_id: Option<&str>,
) -> Result<logvault_core::StoredEvent, ApiError> {
    let scope = principal.scope();
    let mut found = Vec::new();
    for kind in [EventKind::Audit, EventKind::Threat] {
        match state
            .store
            .event(&scope, kind, event_id, account_id)
            .await?
        {
            Lookup::Found(event) => found.push(*event),
            Lookup::NotFound => {}
            Lookup::Ambiguous => return Err(ApiError::AmbiguousId),
        }
    }
    match found.len() {
        0 => Err(ApiError::NotFound),
        1 => Ok(found.remove(0)),
        _ => Err(ApiError::AmbiguousId),
    }
}

pub(crate) async fn inclusion(
    State(state): State<AppState>,
    Reader(principal): Reader,
    origin: RequestOrigin,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let params: InclusionParams = parse_query(raw.as_deref())?;
    let event_id = params
        .event_id
        .as_deref()
        .ok_or_else(|| ApiError::InvalidQuery("event_id is required".into()))?;
    let event = find_event(&state, &principal, event_id, params.account_id.as_deref()).await?;
    let checkpoint = state.store.latest_checkpoint().await?;
    let tree_size = match (&params.tree_size, &checkpoint) {
        (Some(text), _) => parse_size("tree_size", text)?,
        (None, Some(checkpoint)) => checkpoint.size,
        (None, None) => return Err(ApiError::NotCheckpointed),
    };
    if event.seq > tree_size {
        return Err(if params.tree_size.is_some() {
            ApiError::InvalidQuery(format!(
                "event seq {} is not in a tree of {tree_size}",
                event.seq
            ))
        } else {
            ApiError::NotCheckpointed
        });
    }
    let proof = state
        .store
        .inclusion_proof(&principal.scope(), event.seq, tree_size)
        .await
        .map_err(size_error)?
        .ok_or(ApiError::NotFound)?;
    let metadata = json!({"kind": event.kind.as_str(), "event_id": event.event_id, "seq": event.seq, "proof": "inclusion"});
    state
        .viewed
        .record(&principal, &origin, "logs.viewed", metadata)
        .await;
    let note = checkpoint.filter(|c| c.size == tree_size).map(|c| c.note);
    Ok(Json(json!({
        "event_id": event.event_id,
        "account_id": event.account_id,
        "seq": event.seq,
        "leaf_index": event.seq - 1,
        "tree_size": tree_size,
        "leaf_hash": hex::encode(event.leaf_hash),
        "proof": proof.iter().map(hex::encode).collect::<Vec<_>>(),
        "checkpoint": note,
    })))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConsistencyParams {
    from: Option<String>,
    to: Option<String>,
}

pub(crate) async fn consistency(
    State(state): State<AppState>,
    Reader(_): Reader,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let params: ConsistencyParams = parse_query(raw.as_deref())?;
    let required = |value: &Option<String>, name: &str| {
        value
            .as_deref()
            .ok_or_else(|| ApiError::InvalidQuery(format!("{name} is required")))
            .and_then(|text| parse_size(name, text))
    };
    let (from, to) = (required(&params.from, "from")?, required(&params.to, "to")?);
    if from > to {
        return Err(ApiError::InvalidQuery(
            "from must not be larger than to".into(),
        ));
    }
    let proof = state
        .store
        .consistency_proof(from, to)
        .await
        .map_err(size_error)?;
    Ok(Json(json!({
        "from": from,
        "to": to,
        "proof": proof.iter().map(hex::encode).collect::<Vec<_>>(),
    })))
}

/// Sizes beyond the log are the caller's mistake, not a server failure.
fn size_error(error: logvault_store::StoreError) -> ApiError {
    match error {
        logvault_store::StoreError::Invalid(message) => ApiError::InvalidQuery(message),
        other => other.into(),
    }
}
