//! RFC 9457 problem details: the one error type of the HTTP layer and its response.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use logvault_core::FieldProblem;
use logvault_store::StoreError;
use serde_json::json;

/// Every way a request can fail, each with its status and stable problem `type`.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No credentials, or credentials that do not authenticate.
    #[error("a valid API key is required (Authorization: Bearer lv_...)")]
    Unauthorized,
    /// Authenticated, but not allowed to do this.
    #[error("{0}")]
    Forbidden(String),
    /// Nothing here, or nothing the caller may see.
    #[error("not found")]
    NotFound,
    /// The method is not allowed on this path.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// An id is used by several accounts in the caller's scope.
    #[error("several accounts in your scope use this id; add account_id= to choose one")]
    AmbiguousId,
    /// An event id was reused with different content.
    #[error("event {index} reuses id {event_id:?} with different content")]
    IdConflict {
        /// Position in the request.
        index: usize,
        /// The reused id.
        event_id: String,
    },
    /// One or more events are invalid; nothing was stored.
    #[error("{} problem(s) in the request; nothing was stored", .0.len())]
    InvalidEvents(Vec<FieldProblem>),
    /// The body is not what the content type promises.
    #[error("{0}")]
    MalformedBody(String),
    /// The content type is not accepted here.
    #[error("send application/json or application/x-ndjson")]
    UnsupportedMediaType,
    /// The body is over the size limit.
    #[error("the request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    /// Too many events in one request.
    #[error("{found} events in one request; the limit is {limit}")]
    TooManyEvents {
        /// Events found.
        found: usize,
        /// The limit.
        limit: usize,
    },
    /// A query parameter is unknown or has a bad value.
    #[error("{0}")]
    InvalidQuery(String),
    /// The cursor was not produced by this service.
    #[error("the cursor is not valid; start again from the first page")]
    InvalidCursor,
    /// The event is newer than the latest signed checkpoint.
    #[error("no signed checkpoint covers this event yet; retry in a few seconds or pass tree_size")]
    NotCheckpointed,
    /// The write queue is full.
    #[error("the service is busy; retry shortly")]
    Overloaded,
    /// This key made more requests than its rate limit allows.
    #[error("too many requests for this key; retry in {retry_after} s")]
    RateLimited {
        /// Seconds until a request will be accepted.
        retry_after: u64,
    },
    /// The server is serving as many connections as it may.
    #[error("the server is at its connection limit; retry shortly")]
    TooManyConnections,
    /// The request body did not arrive within the body timeout.
    #[error("the request body did not arrive within {0} s")]
    BodyTimeout(f64),
    /// This person already has as many live tails open as allowed.
    #[error("you already have {limit} live tails open; close one and retry")]
    TooManyTails {
        /// Live tails allowed per person.
        limit: usize,
    },
    /// A setting that is not allowed (a retention policy below the deployment's floor, say).
    #[error("{0}")]
    InvalidSetting(String),
    /// The store refused the change as things stand (no hold to lift, say).
    #[error("{0}")]
    Refused(String),
    /// Something failed inside the service; details are in the service's log only.
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    fn status_and_slug(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::NotFound => (StatusCode::NOT_FOUND, "not-found"),
            ApiError::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method-not-allowed"),
            ApiError::AmbiguousId => (StatusCode::CONFLICT, "ambiguous-id"),
            ApiError::IdConflict { .. } => (StatusCode::CONFLICT, "id-conflict"),
            ApiError::InvalidEvents(_) => (StatusCode::BAD_REQUEST, "invalid-events"),
            ApiError::MalformedBody(_) => (StatusCode::BAD_REQUEST, "malformed-body"),
            ApiError::UnsupportedMediaType => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported-media-type")
            }
            ApiError::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload-too-large"),
            ApiError::TooManyEvents { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "too-many-events"),
            ApiError::InvalidQuery(_) => (StatusCode::BAD_REQUEST, "invalid-query"),
            ApiError::InvalidCursor => (StatusCode::BAD_REQUEST, "invalid-cursor"),
            ApiError::NotCheckpointed => (StatusCode::CONFLICT, "not-checkpointed"),
            ApiError::Overloaded => (StatusCode::SERVICE_UNAVAILABLE, "overloaded"),
            ApiError::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate-limited"),
            ApiError::TooManyConnections => {
                (StatusCode::SERVICE_UNAVAILABLE, "too-many-connections")
            }
            ApiError::BodyTimeout(_) => (StatusCode::REQUEST_TIMEOUT, "body-timeout"),
            ApiError::TooManyTails { .. } => (StatusCode::TOO_MANY_REQUESTS, "too-many-tails"),
            ApiError::InvalidSetting(_) => (StatusCode::BAD_REQUEST, "invalid-setting"),
            ApiError::Refused(_) => (StatusCode::CONFLICT, "refused"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }

    /// The stable problem `type` URI for a slug.
    pub fn type_uri(slug: &str) -> String {
        format!("urn:logvault:problem:{slug}")
    }
}

/// The slug of the problem a response carries, for the rejected-requests metric.
#[derive(Debug, Clone, Copy)]
pub struct ProblemSlug(pub &'static str);

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::IdConflict { index, event_id } => ApiError::IdConflict { index, event_id },
            StoreError::AccountNotWritable { index } => ApiError::Forbidden(format!(
                "event {index}: this key may not write to that account"
            )),
            StoreError::Overloaded => ApiError::Overloaded,
            StoreError::Invalid(message) => ApiError::Refused(message),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, slug) = self.status_and_slug();
        if let ApiError::Internal(detail) = &self {
            tracing::error!(%detail, "request failed");
        }
        let mut body = json!({
            "type": ApiError::type_uri(slug),
            "title": status.canonical_reason().unwrap_or("error"),
            "status": status.as_u16(),
            "detail": self.to_string(),
        });
        if let ApiError::InvalidEvents(problems) = &self {
            body["errors"] = json!(problems);
        }
        let mut response = (status, body.to_string()).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        match self {
            ApiError::Unauthorized => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            ApiError::Overloaded | ApiError::TooManyConnections => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            ApiError::TooManyTails { .. } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            }
            ApiError::RateLimited { retry_after } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
            }
            _ => {}
        }
        response.extensions_mut().insert(ProblemSlug(slug));
        response
    }
}
