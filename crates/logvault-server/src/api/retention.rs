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
use serde_json::{Value, json};

use crate::auth::{Caller, Reader};
use crate::{ApiError, AppState};

pub(crate) async fn show(
    State(state): State<AppState>,
    Reader(principal): Reader,
) -> Result<Json<Value>, ApiError> {
    let data = overview(
        state.store.as_ref(),
        &principal.scope(),
        &state.config.retention,
    )
    .await?;
    Ok(Json(json!({ "data": data })))
}

pub(crate) async fn set_policy(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path((account_id, kind)): Path<(String, String)>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let kind = EventKind::parse(&kind).ok_or(ApiError::NotFound)?;
    let body = object(&body)?;
    let policy = if body.get("inherit") == Some(&Value::Bool(true)) {
        None
    } else {
        let days = body
            .get("days")
            .and_then(Value::as_u64)
            .and_then(|days| u32::try_from(days).ok())
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

pub(crate) async fn place_hold(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(account_id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let reason = object(&body)?
        .get("reason")
        .and_then(Value::as_str)
        .filter(|reason| !reason.trim().is_empty() && reason.len() <= 1024)
        .map(str::to_string)
        .ok_or_else(|| ApiError::InvalidSetting("give a \"reason\" of up to 1024 bytes".into()))?;
    let change = RetentionChange::PlaceHold { account_id, reason };
    apply(&state, &principal, change).await
}

pub(crate) async fn lift_hold(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(account_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
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
) -> Result<Json<Value>, ApiError> {
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
    let data = overview(store, &scope, &state.config.retention).await?;
    Ok(Json(json!({ "data": data })))
}
