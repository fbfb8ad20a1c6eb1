//! Retention over HTTP: every reader sees the policies, hold and purges of the accounts in its
//! scope; only an admin key changes them, and every change is an audit event.
//!
//! - `GET /v1/retention`
//! - `PUT /v1/retention/{account_id}/{audit|threat}` with `{"days": N, "archive": bool}` or
//!   `{"inherit": true}`
//! - `PUT /v1/retention/{account_id}/hold` with `{"reason": "..."}`, `DELETE` to lift it

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use logvault_core::{EventKind, Permission, Principal, Role, Scope};
use logvault_store::retention::{RetentionChange, apply_change, check_days, overview};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::auth::{Caller, Reader};
use crate::{ApiError, AppState};

/// The retention of every account in the caller's scope.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct RetentionOverview {
    /// One entry per account.
    data: Vec<AccountRetention>,
}

/// One account's policies, hold and purges.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AccountRetention {
    /// The account.
    account_id: String,
    /// Its audit events.
    audit: KindRetention,
    /// Its threat events.
    threat: KindRetention,
    /// The legal hold placed on the account itself, if any.
    hold: Option<Hold>,
}

/// The policy that applies to one kind of event of an account, and what it purged.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct KindRetention {
    /// Days events are kept.
    days: u32,
    /// Whether purged events are archived first.
    archive: bool,
    /// Where the policy comes from: `default` or `account:ID` (the account or its partner).
    source: String,
    /// The account whose hold stops purging (the account or its partner), if any.
    held_by: Option<String>,
    /// Events purged so far.
    purged_events: u64,
    /// The cutoff of the latest purge.
    #[schema(format = DateTime)]
    purged_before: Option<String>,
    /// The last `seq` the latest purge reached.
    purged_through_seq: Option<u64>,
}

/// A legal hold.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Hold {
    /// Why (a case number, say).
    reason: String,
    /// When it was placed.
    #[schema(format = DateTime)]
    placed_at: String,
}

/// A new policy for one kind of event of an account: keep events `days` days (at least the
/// deployment's floor, 30 by default), or inherit the partner's or the default.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)] // The body's schema; `set_policy` reads the JSON itself.
pub(crate) enum PolicyChange {
    /// Keep events this many days.
    Keep {
        /// Days events are kept.
        #[schema(minimum = 30, maximum = 53_375_995)]
        days: u32,
        /// Whether purged events are archived first (default false).
        #[serde(default)]
        #[schema(nullable = false)]
        archive: Option<bool>,
    },
    /// Drop the account's own policy.
    Inherit {
        /// Always `true`.
        #[schema(schema_with = literal_true)]
        inherit: bool,
    },
}

/// The JSON value `true`.
fn literal_true() -> utoipa::openapi::schema::Schema {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::Boolean)
        .enum_values(Some([true]))
        .into()
}

/// A legal hold to place.
#[derive(Debug, Deserialize, ToSchema)]
#[allow(dead_code)] // The body's schema; `place_hold` reads the JSON itself.
pub(crate) struct HoldRequest {
    /// Why (a case number, say): 1 to 1024 bytes, not only spaces.
    #[schema(min_length = 1, max_length = 1024, pattern = "\\S")]
    reason: String,
}

/// The account a retention change is for.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // The path's documentation.
struct AccountPath {
    /// The account (an admin key may change any).
    account_id: String,
}

/// The account and kind a policy is for.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // The path's documentation.
struct PolicyPath {
    /// The account (an admin key may change any).
    account_id: String,
    /// Which events.
    kind: logvault_core::event::wire::Kind,
}

/// The store's overview, as the typed answer (so the schema and the bytes agree).
async fn typed_overview(state: &AppState, scope: &Scope) -> Result<RetentionOverview, ApiError> {
    let data = overview(state.store.as_ref(), scope, &state.config.retention).await?;
    let data = serde_json::from_value(Value::Array(data))
        .map_err(|e| ApiError::Internal(format!("retention overview: {e}")))?;
    Ok(RetentionOverview { data })
}

#[utoipa::path(
    get,
    path = "/v1/retention",
    tag = "retention",
    operation_id = "showRetention",
    summary = "Policies, holds and purges of every account in the caller's scope",
    responses((status = 200, description = "The retention of each account", body = RetentionOverview)),
)]
pub(crate) async fn show(
    State(state): State<AppState>,
    Reader(principal): Reader,
) -> Result<Json<RetentionOverview>, ApiError> {
    Ok(Json(typed_overview(&state, &principal.scope()).await?))
}

#[utoipa::path(
    put,
    path = "/v1/retention/{account_id}/{kind}",
    tag = "retention",
    operation_id = "setRetentionPolicy",
    summary = "Set or drop an account's policy (admin key with `admin`); recorded as an audit event",
    params(PolicyPath),
    request_body(content = PolicyChange, content_type = "application/json"),
    responses(
        (status = 200, description = "The account's retention as it now is", body = RetentionOverview),
        (status = 400, response = super::openapi::Problem),
        (status = 404, response = super::openapi::Problem),
        (status = 409, response = super::openapi::Problem),
    ),
)]
pub(crate) async fn set_policy(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path((account_id, kind)): Path<(String, String)>,
    body: Bytes,
) -> Result<Json<RetentionOverview>, ApiError> {
    let kind = EventKind::parse(&kind).ok_or(ApiError::NotFound)?;
    let body = object(&body)?;
    let policy = if body.get("inherit") == Some(&Value::Bool(true)) {
        None
    } else {
        // `35.0` is a whole number too (JSON and JSON Schema do not tell it from `35`).
        let days = body
            .get("days")
            .and_then(Value::as_f64)
            .filter(|days| days.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(days))
            .map(|days| days as u32)
            .ok_or_else(|| {
                ApiError::InvalidSetting(
                    "give \"days\" (a whole number of days) or \"inherit\": true".into(),
                )
            })?;
        let archive = match body.get("archive") {
            None => false,
            Some(Value::Bool(archive)) => *archive,
            Some(_) => {
                return Err(ApiError::InvalidSetting(
                    "\"archive\" must be true or false".into(),
                ));
            }
        };
        check_days(days, &state.config.retention).map_err(ApiError::InvalidSetting)?;
        Some((days, archive))
    };
    let change = RetentionChange::SetPolicy {
        account_id,
        kind,
        policy,
    };
    apply(&state, &principal, change).await
}

#[utoipa::path(
    put,
    path = "/v1/retention/{account_id}/hold",
    tag = "retention",
    operation_id = "placeHold",
    summary = "Place a legal hold: nothing of the account (or a partner's merchants) is purged",
    params(AccountPath),
    request_body(content = HoldRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "The account's retention as it now is", body = RetentionOverview),
        (status = 400, response = super::openapi::Problem),
        (status = 404, response = super::openapi::Problem),
        (status = 409, response = super::openapi::Problem),
    ),
)]
pub(crate) async fn place_hold(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(account_id): Path<String>,
    body: Bytes,
) -> Result<Json<RetentionOverview>, ApiError> {
    let reason = object(&body)?
        .get("reason")
        .and_then(Value::as_str)
        .filter(|reason| !reason.trim().is_empty() && reason.len() <= 1024)
        .map(str::to_string)
        .ok_or_else(|| ApiError::InvalidSetting("give a \"reason\" of up to 1024 bytes".into()))?;
    let change = RetentionChange::PlaceHold { account_id, reason };
    apply(&state, &principal, change).await
}

#[utoipa::path(
    delete,
    path = "/v1/retention/{account_id}/hold",
    tag = "retention",
    operation_id = "liftHold",
    summary = "Lift the account's legal hold",
    params(AccountPath),
    responses(
        (status = 200, description = "The account's retention as it now is", body = RetentionOverview),
        (status = 404, response = super::openapi::Problem),
        (status = 409, description = "`refused`: no hold to lift", body = crate::problem::ProblemDetails, content_type = "application/problem+json"),
    ),
)]
pub(crate) async fn lift_hold(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(account_id): Path<String>,
) -> Result<Json<RetentionOverview>, ApiError> {
    apply(&state, &principal, RetentionChange::LiftHold { account_id }).await
}

fn object(body: &[u8]) -> Result<serde_json::Map<String, Value>, ApiError> {
    match serde_json::from_slice(body) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(_) => Err(ApiError::MalformedBody(
            "the body must be a JSON object".into(),
        )),
        Err(error) => Err(ApiError::MalformedBody(format!("not JSON: {error}"))),
    }
}

/// Applies a change for an admin key, answering with the account's retention as it now is.
async fn apply(
    state: &AppState,
    principal: &Principal,
    change: RetentionChange,
) -> Result<Json<RetentionOverview>, ApiError> {
    if principal.role != Role::Admin || !principal.permissions.contains(Permission::Admin) {
        return Err(ApiError::Forbidden(
            "changing retention takes an admin key with the admin permission".into(),
        ));
    }
    let scope = Scope::Account(change.account_id().to_string());
    let store = state.store.as_ref();
    if store.list_accounts(&scope).await?.is_empty() {
        return Err(ApiError::NotFound);
    }
    apply_change(
        store,
        &state.config.retention,
        change,
        &principal.actor_id,
        principal.actor_type.as_str(),
    )
    .await?;
    Ok(Json(typed_overview(state, &scope).await?))
}
