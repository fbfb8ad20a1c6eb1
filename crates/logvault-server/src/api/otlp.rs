//! `POST /v1/logs`: OpenTelemetry logs over OTLP/HTTP, in protobuf or JSON, with the same
//! bearer keys, validation, scrubbing, limits and durable acks as the native ingest. Where the
//! native API refuses a whole request, OTLP's partial success applies: valid records are
//! stored, the rest are counted and explained in `partial_success`. Failures answer as the
//! OTLP specification says: a `google.rpc.Status` in the request's encoding, not problem+json.

use std::io::Read;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use logvault_core::otlp::{self, Encoding};
use logvault_core::validate::validate_event_with;
use logvault_core::{EventKind, NewEvent, Principal};

use super::ingest::{read_body, writable_accounts};
use crate::auth::Ingester;
use crate::{ApiError, AppState};

/// How many rejected records are explained one by one in `partial_success.error_message`;
/// the rest are counted.
const EXPLAINED_REJECTIONS: usize = 5;

pub(crate) async fn post_logs(
    State(state): State<AppState>,
    ingester: Result<Ingester, ApiError>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    // An unknown encoding is answered in JSON, the one a person reading it can see.
    let Some(encoding) = Encoding::from_content_type(content_type) else {
        return failure(ApiError::UnsupportedMediaType, Encoding::Json);
    };
    let result = match ingester {
        Ok(Ingester(principal)) => export(&state, &principal, encoding, &headers, body).await,
        Err(error) => Err(error),
    };
    match result {
        Ok(answer) => {
            let mut response = (StatusCode::OK, answer).into_response();
            let value = HeaderValue::from_static(encoding.content_type());
            response.headers_mut().insert(header::CONTENT_TYPE, value);
            response
        }
        Err(error) => failure(error, encoding),
    }
}

async fn export(
    state: &AppState,
    principal: &Principal,
    encoding: Encoding,
    headers: &HeaderMap,
    body: Body,
) -> Result<Vec<u8>, ApiError> {
    let limits = &state.config.limits;
    let max_bytes = limits.max_otlp_body_bytes;
    let raw = read_body(headers, body, max_bytes).await?;
    let bytes = decompress(headers, raw, max_bytes)?;
    let request = otlp::decode_request(&bytes, encoding).map_err(ApiError::MalformedBody)?;
    let mapped = otlp::map_request(&request);
    if mapped.len() > limits.max_events {
        return Err(ApiError::TooManyEvents {
            found: mapped.len(),
            limit: limits.max_events,
        });
    }
    let mut rejections: Vec<(usize, String)> = Vec::new();
    let mut events: Vec<(usize, NewEvent)> = Vec::new();
    for (index, record) in mapped.into_iter().enumerate() {
        let validated = record.and_then(|(kind, value)| {
            let scrubber = &state.config.scrubber;
            let account = &principal.account_id;
            validate_event_with(kind, index, &value, account, limits, scrubber).map_err(
                |problems| {
                    let each: Vec<String> = problems
                        .iter()
                        .map(|problem| format!("{}: {}", problem.field, problem.message))
                        .collect();
                    format!("{} event: {}", kind.as_str(), each.join(", "))
                },
            )
        });
        match validated {
            Ok(event) => events.push((index, event)),
            Err(reason) => rejections.push((index, reason)),
        }
    }
    // A record for an account the key may not write to is rejected alone, with the same
    // words for unknown and foreign accounts (no probing which accounts exist).
    let writable =
        writable_accounts(state, principal, events.iter().map(|(_, event)| event)).await?;
    let (allowed, refused): (Vec<_>, Vec<_>) = events
        .into_iter()
        .partition(|(_, event)| writable.contains(event.account_id.as_str()));
    for (index, event) in refused {
        let reason = format!("this key may not write to account {:?}", event.account_id);
        rejections.push((index, reason));
    }
    rejections.sort();
    let allowed: Vec<NewEvent> = allowed.into_iter().map(|(_, event)| event).collect();
    if !allowed.is_empty() {
        // The kinds are kept aside so the events move into the store, not a copy of them.
        let kinds: Vec<EventKind> = allowed.iter().map(|event| event.kind).collect();
        let outcomes = state.store.ingest(allowed).await?;
        for kind in [EventKind::Audit, EventKind::Threat] {
            let n_new = outcomes
                .iter()
                .zip(&kinds)
                .filter(|(outcome, event_kind)| !outcome.duplicate && **event_kind == kind)
                .count();
            state.metrics.ingested(kind, n_new);
        }
    }
    Ok(otlp::encode_response(
        rejections.len(),
        &explain(&rejections),
        encoding,
    ))
}

/// The body as sent, or gunzipped when `Content-Encoding: gzip`, within `max_bytes` either way.
fn decompress(headers: &HeaderMap, raw: Vec<u8>, max_bytes: usize) -> Result<Vec<u8>, ApiError> {
    let coding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("identity")
        .trim()
        .to_ascii_lowercase();
    match coding.as_str() {
        "identity" | "" => Ok(raw),
        "gzip" => {
            let mut bytes = Vec::new();
            // One byte past the limit tells "too large" from "exactly the limit".
            let bound = u64::try_from(max_bytes)
                .unwrap_or(u64::MAX)
                .saturating_add(1);
            flate2::read::GzDecoder::new(&raw[..])
                .take(bound)
                .read_to_end(&mut bytes)
                .map_err(|_| ApiError::MalformedBody("the body is not valid gzip".into()))?;
            if bytes.len() > max_bytes {
                return Err(ApiError::PayloadTooLarge(max_bytes));
            }
            Ok(bytes)
        }
        _ => Err(ApiError::UnsupportedMediaType),
    }
}

/// `partial_success.error_message`: the first few rejected records and why, then a count.
fn explain(rejections: &[(usize, String)]) -> String {
    let mut parts: Vec<String> = rejections
        .iter()
        .take(EXPLAINED_REJECTIONS)
        .map(|(index, reason)| format!("log record {index}: {reason}"))
        .collect();
    if rejections.len() > EXPLAINED_REJECTIONS {
        parts.push(format!(
            "and {} more",
            rejections.len() - EXPLAINED_REJECTIONS
        ));
    }
    parts.join("; ")
}

/// The OTLP failure for `error`: its HTTP status and headers (`Retry-After` on 429/503), with a
/// `google.rpc.Status` body in `encoding`.
fn failure(error: ApiError, encoding: Encoding) -> Response {
    let message = error.to_string();
    let mut response = error.into_response();
    let code = grpc_code(response.status());
    *response.body_mut() = Body::from(otlp::encode_status(code, &message, encoding));
    let value = HeaderValue::from_static(encoding.content_type());
    response.headers_mut().insert(header::CONTENT_TYPE, value);
    response
}

/// The gRPC status code closest to an HTTP status (OTLP/HTTP clients do not act on it; it is
/// there for their logs).
fn grpc_code(status: StatusCode) -> i32 {
    match status.as_u16() {
        400 | 413 | 415 => 3, // INVALID_ARGUMENT
        401 => 16,            // UNAUTHENTICATED
        403 => 7,             // PERMISSION_DENIED
        408 => 4,             // DEADLINE_EXCEEDED
        409 => 6,             // ALREADY_EXISTS
        429 => 8,             // RESOURCE_EXHAUSTED
        503 => 14,            // UNAVAILABLE
        _ => 13,              // INTERNAL
    }
}
