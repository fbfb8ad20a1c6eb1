//! RFC 9457 problem details: the one error type of the HTTP layer and its response.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use logvault_core::FieldProblem;
use logvault_store::StoreError;
use serde::Serialize;
use utoipa::ToSchema;

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

/// Declares [`ProblemKind`], one variant per problem `type`, with its status, slug and
/// summary, and [`ProblemKind::ALL`] from the same list, so the catalogue the OpenAPI document
/// publishes cannot miss a kind.
macro_rules! problem_kinds {
    ($($kind:ident => ($status:ident, $slug:literal, $summary:literal),)*) => {
        /// The kinds of problem, one per stable `type`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub(crate) enum ProblemKind {
            $(#[doc = $summary] $kind,)*
        }

        impl ProblemKind {
            /// Every kind, in the order of the catalogue.
            pub(crate) const ALL: &[ProblemKind] = &[$(ProblemKind::$kind,)*];

            /// The HTTP status it is answered with.
            pub(crate) fn status(self) -> StatusCode {
                match self { $(ProblemKind::$kind => StatusCode::$status,)* }
            }

            /// The last part of its `type` URI.
            pub(crate) fn slug(self) -> &'static str {
                match self { $(ProblemKind::$kind => $slug,)* }
            }

            /// When it is answered.
            pub(crate) fn summary(self) -> &'static str {
                match self { $(ProblemKind::$kind => $summary,)* }
            }
        }
    };
}

problem_kinds! {
    Unauthorized => (UNAUTHORIZED, "unauthorized", "No API key, or one that does not authenticate (unknown, revoked, malformed)."),
    Forbidden => (FORBIDDEN, "forbidden", "The key lacks the permission, or may not write to an account named in the events."),
    NotFound => (NOT_FOUND, "not-found", "Nothing here, or nothing the caller may see: out of scope looks like absent."),
    MethodNotAllowed => (METHOD_NOT_ALLOWED, "method-not-allowed", "The path does not take this method; `Allow` lists those it takes."),
    AmbiguousId => (CONFLICT, "ambiguous-id", "Several accounts in the caller's scope use this event id; add `account_id=`."),
    IdConflict => (CONFLICT, "id-conflict", "An event reuses a stored id with different content; nothing was stored."),
    InvalidEvents => (BAD_REQUEST, "invalid-events", "Events are invalid; `errors` lists every problem and nothing was stored."),
    MalformedBody => (BAD_REQUEST, "malformed-body", "The body is not what its content type promises (not UTF-8, not JSON, no events)."),
    UnsupportedMediaType => (UNSUPPORTED_MEDIA_TYPE, "unsupported-media-type", "The content type is not one this operation accepts."),
    PayloadTooLarge => (PAYLOAD_TOO_LARGE, "payload-too-large", "The body is larger than the limit (1 MiB by default)."),
    TooManyEvents => (PAYLOAD_TOO_LARGE, "too-many-events", "More events in one request than the limit (1000 by default)."),
    InvalidQuery => (BAD_REQUEST, "invalid-query", "A query parameter is unknown, repeated or has a bad value."),
    InvalidCursor => (BAD_REQUEST, "invalid-cursor", "The cursor was not produced by this service."),
    NotCheckpointed => (CONFLICT, "not-checkpointed", "No signed checkpoint covers the event yet; retry shortly or pass `tree_size`."),
    Overloaded => (SERVICE_UNAVAILABLE, "overloaded", "The write queue is full; retry after `Retry-After` seconds."),
    RateLimited => (TOO_MANY_REQUESTS, "rate-limited", "The key went over its request rate; retry after `Retry-After` seconds."),
    TooManyConnections => (SERVICE_UNAVAILABLE, "too-many-connections", "The server is at its connection limit; retry after `Retry-After` seconds."),
    BodyTimeout => (REQUEST_TIMEOUT, "body-timeout", "The request head or body did not arrive within the server's timeout."),
    TooManyTails => (TOO_MANY_REQUESTS, "too-many-tails", "The person already has as many live tails open as allowed (Logs page)."),
    InvalidSetting => (BAD_REQUEST, "invalid-setting", "A setting that is not allowed, such as a retention policy below the floor."),
    Refused => (CONFLICT, "refused", "The store refused the change as things stand, such as lifting a hold that is not there."),
    Internal => (INTERNAL_SERVER_ERROR, "internal", "Something failed inside the service; details are in its log only."),
}

impl ApiError {
    /// Which kind of problem this is.
    pub(crate) fn kind(&self) -> ProblemKind {
        match self {
            ApiError::Unauthorized => ProblemKind::Unauthorized,
            ApiError::Forbidden(_) => ProblemKind::Forbidden,
            ApiError::NotFound => ProblemKind::NotFound,
            ApiError::MethodNotAllowed => ProblemKind::MethodNotAllowed,
            ApiError::AmbiguousId => ProblemKind::AmbiguousId,
            ApiError::IdConflict { .. } => ProblemKind::IdConflict,
            ApiError::InvalidEvents(_) => ProblemKind::InvalidEvents,
            ApiError::MalformedBody(_) => ProblemKind::MalformedBody,
            ApiError::UnsupportedMediaType => ProblemKind::UnsupportedMediaType,
            ApiError::PayloadTooLarge(_) => ProblemKind::PayloadTooLarge,
            ApiError::TooManyEvents { .. } => ProblemKind::TooManyEvents,
            ApiError::InvalidQuery(_) => ProblemKind::InvalidQuery,
            ApiError::InvalidCursor => ProblemKind::InvalidCursor,
            ApiError::NotCheckpointed => ProblemKind::NotCheckpointed,
            ApiError::Overloaded => ProblemKind::Overloaded,
            ApiError::RateLimited { .. } => ProblemKind::RateLimited,
            ApiError::TooManyConnections => ProblemKind::TooManyConnections,
            ApiError::BodyTimeout(_) => ProblemKind::BodyTimeout,
            ApiError::TooManyTails { .. } => ProblemKind::TooManyTails,
            ApiError::InvalidSetting(_) => ProblemKind::InvalidSetting,
            ApiError::Refused(_) => ProblemKind::Refused,
            ApiError::Internal(_) => ProblemKind::Internal,
        }
    }

    /// The stable problem `type` URI for a slug.
    pub fn type_uri(slug: &str) -> String {
        format!("urn:logvault:problem:{slug}")
    }
}

/// An RFC 9457 problem details object, as every error of the API answers it
/// (`application/problem+json`).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ProblemDetails {
    /// The stable problem type: `urn:logvault:problem:` and a slug (see `x-problem-types`).
    #[serde(rename = "type")]
    #[schema(schema_with = crate::api::openapi::problem_type_uris)]
    pub(crate) type_uri: String,
    /// The status's reason phrase.
    pub(crate) title: String,
    /// The HTTP status.
    #[schema(minimum = 400, maximum = 599)]
    pub(crate) status: u16,
    /// What went wrong, for people; never echoes secrets.
    pub(crate) detail: String,
    /// For `invalid-events`: every problem of every event.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub(crate) errors: Option<Vec<FieldProblem>>,
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
        let kind = self.kind();
        let (status, slug) = (kind.status(), kind.slug());
        if let ApiError::Internal(detail) = &self {
            tracing::error!(%detail, "request failed");
        }
        let body = ProblemDetails {
            type_uri: ApiError::type_uri(slug),
            title: status.canonical_reason().unwrap_or("error").to_string(),
            status: status.as_u16(),
            detail: self.to_string(),
            errors: match &self {
                ApiError::InvalidEvents(problems) => Some(problems.clone()),
                _ => None,
            },
        };
        // Serializing strings and numbers cannot fail; the fallback is still a problem.
        let body = serde_json::to_string(&body).unwrap_or_else(|_| {
            format!(
                r#"{{"type":"{}","status":500}}"#,
                ApiError::type_uri("internal")
            )
        });
        let mut response = (status, body).into_response();
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
