//! Tamper evidence over HTTP: the latest signed checkpoint, inclusion proofs for events in
//! the reader's scope, and consistency proofs between tree sizes.

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use logvault_core::{EventKind, Principal};
use logvault_store::Lookup;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use super::params::parse_query;
use crate::auth::{Reader, RequestOrigin};
use crate::{ApiError, AppState};

#[utoipa::path(
    get,
    path = "/v1/checkpoints/latest",
    tag = "integrity",
    operation_id = "latestCheckpoint",
    summary = "The latest signed checkpoint (C2SP tlog-checkpoint in a signed note, Ed25519)",
    responses(
        (status = 200, description = "The signed note", content_type = "text/plain; charset=utf-8", body = String),
        (status = 404, description = "Nothing signed yet", body = crate::problem::ProblemDetails, content_type = "application/problem+json"),
    ),
)]
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

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct InclusionParams {
    /// The event's id, within the caller's scope.
    #[param(required = true)]
    event_id: Option<String>,
    /// Which account's event, when several accounts in the caller's scope use the id.
    account_id: Option<String>,
    /// The tree to prove inclusion in (default: the latest checkpoint's).
    #[param(value_type = Option<u64>, minimum = 0)]
    tree_size: Option<String>,
}

/// An RFC 6962/9162 inclusion proof of one event.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct InclusionProof {
    /// The event's id.
    event_id: String,
    /// Its account.
    account_id: String,
    /// Its position in the log (from 1).
    seq: u64,
    /// Its leaf index (`seq - 1`).
    leaf_index: u64,
    /// The size of the tree proved against.
    tree_size: u64,
    /// The event's leaf hash, in hex.
    #[schema(pattern = "^[0-9a-f]{64}$")]
    leaf_hash: String,
    /// The audit path, leaf to root, each hash in hex.
    proof: Vec<String>,
    /// The signed checkpoint of `tree_size`, when the latest checkpoint has that size.
    checkpoint: Option<String>,
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

#[utoipa::path(
    get,
    path = "/v1/proofs/inclusion",
    tag = "integrity",
    operation_id = "inclusionProof",
    summary = "Proof that an event in the caller's scope is in the signed log",
    params(InclusionParams),
    responses(
        (status = 200, description = "The proof", body = InclusionProof),
        (status = 400, response = super::openapi::Problem),
        (status = 404, response = super::openapi::Problem),
        (status = 409, description = "`ambiguous-id` or `not-checkpointed`", body = crate::problem::ProblemDetails, content_type = "application/problem+json"),
    ),
)]
pub(crate) async fn inclusion(
    State(state): State<AppState>,
    Reader(principal): Reader,
    origin: RequestOrigin,
    RawQuery(raw): RawQuery,
) -> Result<Json<InclusionProof>, ApiError> {
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
    Ok(Json(InclusionProof {
        leaf_index: event.seq - 1,
        leaf_hash: hex::encode(event.leaf_hash),
        proof: proof.iter().map(hex::encode).collect(),
        checkpoint: note,
        event_id: event.event_id,
        account_id: event.account_id,
        seq: event.seq,
        tree_size,
    }))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ConsistencyParams {
    /// The older tree size.
    #[param(value_type = u64, minimum = 0, required = true)]
    from: Option<String>,
    /// The newer tree size (at least `from`, at most the log's).
    #[param(value_type = u64, minimum = 0, required = true)]
    to: Option<String>,
}

/// An RFC 6962/9162 consistency proof between two tree sizes.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ConsistencyProof {
    /// The older tree size.
    from: u64,
    /// The newer tree size.
    to: u64,
    /// The proof's hashes, in hex.
    proof: Vec<String>,
}

#[utoipa::path(
    get,
    path = "/v1/proofs/consistency",
    tag = "integrity",
    operation_id = "consistencyProof",
    summary = "Proof that the tree of size `to` extends the tree of size `from`",
    params(ConsistencyParams),
    responses(
        (status = 200, description = "The proof", body = ConsistencyProof),
        (status = 400, response = super::openapi::Problem),
    ),
)]
pub(crate) async fn consistency(
    State(state): State<AppState>,
    Reader(_): Reader,
    RawQuery(raw): RawQuery,
) -> Result<Json<ConsistencyProof>, ApiError> {
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
    Ok(Json(ConsistencyProof {
        from,
        to,
        proof: proof.iter().map(hex::encode).collect(),
    }))
}

/// Sizes beyond the log are the caller's mistake, not a server failure.
fn size_error(error: logvault_store::StoreError) -> ApiError {
    match error {
        logvault_store::StoreError::Invalid(message) => ApiError::InvalidQuery(message),
        other => other.into(),
    }
}
