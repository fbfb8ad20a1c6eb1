//! Reading events: `GET /v1/{audit,threat}-events`, `…/{id}` and threat trends. Every read
//! is recorded as a `logs.viewed` event on the reader's account.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use logvault_core::event::wire::{AuditEvent, ThreatEvent};
use logvault_core::{EventKind, Micros, Principal};
use logvault_store::Lookup;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

use super::params::{ListParams, TrendIntervalName, TrendParams, encode_cursor, parse_query};
use crate::auth::{Reader, RequestOrigin};
use crate::viewed::query_summary;
use crate::{ApiError, AppState};

/// A stored event as [`StoredEvent::to_json`](logvault_core::StoredEvent::to_json) renders
/// it; its schema is `E`'s, the output type of its kind.
#[derive(Debug, Serialize)]
#[serde(transparent)]
pub(crate) struct EventJson<E>(Value, #[serde(skip)] std::marker::PhantomData<E>);

impl<E> EventJson<E> {
    fn new(event: &logvault_core::StoredEvent) -> Self {
        EventJson(event.to_json(), std::marker::PhantomData)
    }
}

impl<E: ToSchema> utoipa::PartialSchema for EventJson<E> {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::Ref::from_schema_name(E::name()).into()
    }
}

impl<E: ToSchema> ToSchema for EventJson<E> {
    fn name() -> std::borrow::Cow<'static, str> {
        E::name()
    }

    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        schemas.push((E::name().into(), E::schema()));
        E::schemas(schemas);
    }
}

/// One page of events, newest first.
#[derive(Debug, Serialize)]
pub(crate) struct EventPage<E> {
    /// The events.
    data: Vec<EventJson<E>>,
    /// Pass as `cursor=` for the next page; null on the last page.
    next_cursor: Option<String>,
}

impl<E: ToSchema> utoipa::PartialSchema for EventPage<E> {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Type};
        let cursor = ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::SchemaType::from_iter([
                Type::String,
                Type::Null,
            ]))
            .description(Some(
                "Pass as `cursor=` for the next page; null on the last page",
            ));
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .property(
                "data",
                ArrayBuilder::new()
                    .items(utoipa::openapi::Ref::from_schema_name(E::name()))
                    .description(Some("The events, newest first")),
            )
            .property("next_cursor", cursor)
            .required("data")
            .required("next_cursor")
            .description(Some("One page of events, newest first"))
            .into()
    }
}

impl<E: ToSchema> ToSchema for EventPage<E> {
    fn name() -> std::borrow::Cow<'static, str> {
        format!("{}Page", E::name()).into()
    }

    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        schemas.push((E::name().into(), E::schema()));
        E::schemas(schemas);
    }
}

// Plain names for the OpenAPI derive, which composes generic arguments itself.
type AuditEventPage = EventPage<AuditEvent>;
type ThreatEventPage = EventPage<ThreatEvent>;
type AuditEventJson = EventJson<AuditEvent>;
type ThreatEventJson = EventJson<ThreatEvent>;

/// An event's id: the client's or the one the service assigned.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // The path's documentation; the handlers take it as a string.
struct EventIdPath {
    /// The event's id.
    id: String,
}

#[utoipa::path(
    get,
    path = "/v1/audit-events",
    tag = "read",
    operation_id = "listAuditEvents",
    summary = "Audit events in the caller's scope, newest first",
    description = "Filters combine; `from`/`to` are on `received_at`. Recorded as a `logs.viewed` \
        audit event on the caller's account.",
    params(ListParams),
    responses(
        (status = 200, description = "A page of audit events", body = AuditEventPage),
        (status = 400, response = super::openapi::Problem),
        (status = 404, response = super::openapi::Problem),
    ),
)]
pub(crate) async fn list_audit(
    state: State<AppState>,
    reader: Reader,
    origin: RequestOrigin,
    query: RawQuery,
) -> Result<Json<EventPage<AuditEvent>>, ApiError> {
    list(state, reader, origin, query, EventKind::Audit).await
}

#[utoipa::path(
    get,
    path = "/v1/threat-events",
    tag = "read",
    operation_id = "listThreatEvents",
    summary = "Threat events in the caller's scope, newest first",
    description = "Filters combine; `from`/`to` are on `received_at`. Recorded as a `logs.viewed` \
        audit event on the caller's account.",
    params(ListParams),
    responses(
        (status = 200, description = "A page of threat events", body = ThreatEventPage),
        (status = 400, response = super::openapi::Problem),
        (status = 404, response = super::openapi::Problem),
    ),
)]
pub(crate) async fn list_threat(
    state: State<AppState>,
    reader: Reader,
    origin: RequestOrigin,
    query: RawQuery,
) -> Result<Json<EventPage<ThreatEvent>>, ApiError> {
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

async fn list<E: ToSchema>(
    State(state): State<AppState>,
    Reader(principal): Reader,
    origin: RequestOrigin,
    RawQuery(raw): RawQuery,
    kind: EventKind,
) -> Result<Json<EventPage<E>>, ApiError> {
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
    Ok(Json(EventPage {
        data: page.events.iter().map(EventJson::new).collect(),
        next_cursor: page.next_before_seq.map(encode_cursor),
    }))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct GetParams {
    /// Which account's event, when several accounts in the caller's scope use the id.
    account_id: Option<String>,
}

#[utoipa::path(
    get,
    path = "/v1/audit-events/{id}",
    tag = "read",
    operation_id = "getAuditEvent",
    summary = "One audit event by id, within the caller's scope",
    params(EventIdPath, GetParams),
    responses(
        (status = 200, description = "The audit event", body = AuditEventJson),
        (status = 400, response = super::openapi::Problem),
        (status = 404, response = super::openapi::Problem),
        (status = 409, description = "`ambiguous-id`: add `account_id=`", body = crate::problem::ProblemDetails, content_type = "application/problem+json"),
    ),
)]
pub(crate) async fn get_audit(
    state: State<AppState>,
    reader: Reader,
    origin: RequestOrigin,
    id: Result<Path<String>, PathRejection>,
    query: RawQuery,
) -> Result<Json<EventJson<AuditEvent>>, ApiError> {
    get(state, reader, origin, id, query, EventKind::Audit).await
}

#[utoipa::path(
    get,
    path = "/v1/threat-events/{id}",
    tag = "read",
    operation_id = "getThreatEvent",
    summary = "One threat event by id, within the caller's scope",
    params(EventIdPath, GetParams),
    responses(
        (status = 200, description = "The threat event", body = ThreatEventJson),
        (status = 400, response = super::openapi::Problem),
        (status = 404, response = super::openapi::Problem),
        (status = 409, description = "`ambiguous-id`: add `account_id=`", body = crate::problem::ProblemDetails, content_type = "application/problem+json"),
    ),
)]
pub(crate) async fn get_threat(
    state: State<AppState>,
    reader: Reader,
    origin: RequestOrigin,
    id: Result<Path<String>, PathRejection>,
    query: RawQuery,
) -> Result<Json<EventJson<ThreatEvent>>, ApiError> {
    get(state, reader, origin, id, query, EventKind::Threat).await
}

async fn get<E>(
    State(state): State<AppState>,
    Reader(principal): Reader,
    origin: RequestOrigin,
    id: Result<Path<String>, PathRejection>,
    RawQuery(raw): RawQuery,
    kind: EventKind,
) -> Result<Json<EventJson<E>>, ApiError> {
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
    Ok(Json(EventJson::new(&event)))
}

/// Threat events counted per group value and bucket.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Trends {
    /// Start of the range.
    #[schema(value_type = String, format = DateTime)]
    from: Micros,
    /// End of the range.
    #[schema(value_type = String, format = DateTime)]
    to: Micros,
    /// Bucket width.
    interval: TrendIntervalName,
    /// One series per group value (`""` for events without one), by value.
    series: Vec<TrendSeries>,
    /// Events counted in all series.
    total: u64,
    /// When the counts were read.
    #[schema(value_type = String, format = DateTime)]
    generated_at: Micros,
}

/// The counts of one group value.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TrendSeries {
    /// The group value.
    key: String,
    /// Buckets that counted events, oldest first.
    points: Vec<TrendPoint>,
}

/// One bucket's count.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TrendPoint {
    /// Start of the bucket.
    #[schema(value_type = String, format = DateTime)]
    start: Micros,
    /// Events in it.
    count: u64,
}

#[utoipa::path(
    get,
    path = "/v1/threat-events/trends",
    tag = "read",
    operation_id = "threatTrends",
    summary = "Threat events counted by version, environment or error type per hour or day",
    params(TrendParams),
    responses(
        (status = 200, description = "The counts", body = Trends),
        (status = 400, response = super::openapi::Problem),
        (status = 404, response = super::openapi::Problem),
    ),
)]
pub(crate) async fn trends(
    State(state): State<AppState>,
    Reader(principal): Reader,
    origin: RequestOrigin,
    RawQuery(raw): RawQuery,
) -> Result<Json<Trends>, ApiError> {
    let params: TrendParams = parse_query(raw.as_deref())?;
    let query = params.to_query()?;
    check_account(&state, &principal, params.account_id()).await?;
    let rows = state.store.trends(&principal.scope(), &query).await?;
    let mut series: BTreeMap<&str, Vec<TrendPoint>> = BTreeMap::new();
    for row in &rows {
        series
            .entry(row.key.as_str())
            .or_default()
            .push(TrendPoint {
                start: row.bucket,
                count: row.count,
            });
    }
    let metadata =
        json!({"kind": "threat", "query": query_summary(raw.as_deref()), "trends": true});
    state
        .viewed
        .record(&principal, &origin, "logs.viewed", metadata)
        .await;
    Ok(Json(Trends {
        from: query.from,
        to: query.to,
        interval: match query.interval {
            logvault_store::TrendInterval::Hour => TrendIntervalName::Hour,
            logvault_store::TrendInterval::Day => TrendIntervalName::Day,
        },
        series: series
            .into_iter()
            .map(|(key, points)| TrendSeries {
                key: key.to_string(),
                points,
            })
            .collect(),
        total: rows.iter().map(|row| row.count).sum::<u64>(),
        generated_at: Micros::now(),
    }))
}
