//! `POST /v1/audit-events` and `POST /v1/threat-events`.

use std::collections::BTreeSet;
use std::time::Duration;

use axum::Json;
use axum::body::{Body, BodyDataStream};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use logvault_core::event::wire::{
    AuditEventInput, AuditIngestBody, ThreatEventInput, ThreatIngestBody,
};
use logvault_core::validate::{BatchError, parse_batch, validate_event_with};
use logvault_core::{EventKind, Micros, NewEvent, Principal};
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::Ingester;
use crate::{ApiError, AppState};

/// How much of a refused oversized body is read and thrown away before the 413 goes out, and
/// for how long at most. Hyper closes a connection whose request body is unread, and a client
/// that writes the whole body before reading (urllib, many SDKs) then gets a reset instead of
/// the 413. 8 MiB or 5 s, whichever comes first, lets ordinary mistakes (a batch a few times
/// the limit) read their answer, while a huge or slow upload holds one task for at most 5 s
/// and no memory (chunks are dropped as they arrive); past the bound the reset is accepted.
const DISCARD_BYTES: usize = 8 * 1024 * 1024;
const DISCARD_TIME: Duration = Duration::from_secs(5);

/// What an ingest answers: one acknowledgement per event, in the request's order.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct IngestResponse {
    /// The events, each durably committed.
    data: Vec<IngestAck>,
}

/// One committed event.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct IngestAck {
    /// The event's id (the client's, or a UUIDv7 the service assigned).
    id: String,
    /// Its account.
    account_id: String,
    /// Its position in the deployment's log.
    seq: u64,
    /// Its position within the account.
    account_seq: u64,
    /// The service's clock at commit.
    #[schema(value_type = String, format = DateTime)]
    received_at: Micros,
    /// Its RFC 6962 leaf hash, in hex.
    #[schema(pattern = "^[0-9a-f]{64}$")]
    leaf_hash: String,
    /// Whether it repeats an event stored earlier with the same id and content (which is
    /// answered as first stored and not stored again).
    duplicate: bool,
}

#[utoipa::path(
    post,
    path = "/v1/audit-events",
    tag = "ingest",
    operation_id = "ingestAuditEvents",
    summary = "Store audit events (the key needs `ingest`)",
    description = "One event, an array, or NDJSON. The request is validated as a whole: if any \
        event is invalid nothing is stored and the 400 lists every problem. A 2xx means every \
        event is durably committed.",
    request_body(
        description = "One audit event or an array of them (JSON), or one per line (NDJSON)",
        content(
            (AuditIngestBody = "application/json"),
            (AuditEventInput = "application/x-ndjson"),
        ),
    ),
    responses(
        (status = 201, description = "Stored (at least one event is new)", body = IngestResponse),
        (status = 200, description = "Every event repeats one stored before", body = IngestResponse),
        (status = 400, response = super::openapi::Problem),
        (status = 409, description = "`id-conflict`: an id reused with other content", body = crate::problem::ProblemDetails, content_type = "application/problem+json"),
        (status = 413, response = super::openapi::Problem),
        (status = 415, response = super::openapi::Problem),
    ),
)]
pub(crate) async fn post_audit(
    State(state): State<AppState>,
    Ingester(principal): Ingester,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    ingest(state, principal, EventKind::Audit, headers, body).await
}

#[utoipa::path(
    post,
    path = "/v1/threat-events",
    tag = "ingest",
    operation_id = "ingestThreatEvents",
    summary = "Store threat events (the key needs `ingest`); customer data is scrubbed first",
    description = "One event, an array, or NDJSON. The request is validated as a whole: if any \
        event is invalid nothing is stored and the 400 lists every problem. A 2xx means every \
        event is durably committed.",
    request_body(
        description = "One threat event or an array of them (JSON), or one per line (NDJSON)",
        content(
            (ThreatIngestBody = "application/json"),
            (ThreatEventInput = "application/x-ndjson"),
        ),
    ),
    responses(
        (status = 201, description = "Stored (at least one event is new)", body = IngestResponse),
        (status = 200, description = "Every event repeats one stored before", body = IngestResponse),
        (status = 400, response = super::openapi::Problem),
        (status = 409, description = "`id-conflict`: an id reused with other content", body = crate::problem::ProblemDetails, content_type = "application/problem+json"),
        (status = 413, response = super::openapi::Problem),
        (status = 415, response = super::openapi::Problem),
    ),
)]
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
    let bytes = read_body(&headers, body, limits.max_body_bytes).await?;
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
    let data = outcomes
        .iter()
        .map(|outcome| IngestAck {
            id: outcome.event_id.clone(),
            account_id: outcome.account_id.clone(),
            seq: outcome.seq,
            account_seq: outcome.account_seq,
            received_at: outcome.received_at,
            leaf_hash: hex::encode(outcome.leaf_hash),
            duplicate: outcome.duplicate,
        })
        .collect();
    let status = if n_new > 0 {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(IngestResponse { data })).into_response())
}

/// The whole body, or 413 when `Content-Length` or the bytes themselves go over `max_bytes`;
/// either way the rest of a refused body is discarded first so the client can read the 413.
pub(crate) async fn read_body(
    headers: &HeaderMap,
    body: Body,
    max_bytes: usize,
) -> Result<Vec<u8>, ApiError> {
    let declared_length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<usize>().ok());
    let mut stream = body.into_data_stream();
    if let Some(length) = declared_length.filter(|length| *length > max_bytes) {
        // A client waiting for `100 Continue` has sent nothing yet, and reading would invite
        // it to; a body past the bound would be cut off anyway, so do not spend time on it.
        let waits_for_continue = headers
            .get(header::EXPECT)
            .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"100-continue"));
        if !waits_for_continue && length <= DISCARD_BYTES {
            discard(stream).await;
        }
        return Err(ApiError::PayloadTooLarge(max_bytes));
    }
    // `declared_length` is at most `max_bytes` here, so the reservation is bounded.
    let mut bytes = Vec::with_capacity(declared_length.unwrap_or(0));
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| {
            ApiError::MalformedBody("the request body could not be read".to_string())
        })?;
        if bytes.len() + chunk.len() > max_bytes {
            discard(stream).await;
            return Err(ApiError::PayloadTooLarge(max_bytes));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

/// Reads and drops the rest of a refused body, within [`DISCARD_BYTES`] and [`DISCARD_TIME`].
async fn discard(mut stream: BodyDataStream) {
    let drain = async {
        let mut n_discarded = 0;
        while let Some(Ok(chunk)) = stream.next().await {
            n_discarded += chunk.len();
            if n_discarded > DISCARD_BYTES {
                break;
            }
        }
    };
    // Running out of time is the bound working, not an error: the 413 goes out regardless.
    let _ = tokio::time::timeout(DISCARD_TIME, drain).await;
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
    let writable = writable_accounts(state, principal, events).await?;
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

/// The accounts among `events`' that the key may write to: in its scope and not disabled.
pub(crate) async fn writable_accounts<'a>(
    state: &AppState,
    principal: &Principal,
    events: impl IntoIterator<Item = &'a NewEvent>,
) -> Result<BTreeSet<String>, ApiError> {
    let wanted: BTreeSet<&str> = events
        .into_iter()
        .map(|event| event.account_id.as_str())
        .collect();
    let ids: Vec<String> = wanted.iter().map(|id| id.to_string()).collect();
    Ok(state
        .store
        .accounts_in_scope(&principal.scope(), &ids)
        .await?
        .into_iter()
        .filter(|account| !account.disabled)
        .map(|account| account.id)
        .collect())
}
