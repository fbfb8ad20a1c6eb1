//! Viewer tokens for the embedded Logs page, and each partner's embedding settings. A key
//! with the `embed` permission (partner or admin) mints a short-lived token for one account
//! in its scope, naming its end user and what the view shows; the partner's page frames
//! `/embed?token=…` (see `web::embed`). Minting, revoking and changing the settings are audit
//! events on the account concerned.
//!
//! - `POST /v1/viewer-tokens`, `GET /v1/viewer-tokens`
//! - `GET|DELETE /v1/viewer-tokens/{token_id}`
//! - `GET|PUT /v1/embed-settings/{partner_id}`

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use logvault_core::embed::{
    self, SETTINGS_SET_ACTION, TOKEN_MINTED_ACTION, TOKEN_REVOKED_ACTION, ViewGrant,
};
use logvault_core::password::{new_token, token_hash};
use logvault_core::validate::{Limits, validate_event};
use logvault_core::{AccountKind, EventKind, Micros, Permission, Principal, Role};
use logvault_store::embed::{EmbedSettings, ViewerTokenRecord};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

use crate::auth::Caller;
use crate::{ApiError, AppState};

/// Most tokens a list answers with.
const LIST_LIMIT: usize = 500;

/// A key allowed to embed: `embed` permission, partner or admin role.
fn embedder(principal: &Principal) -> Result<(), ApiError> {
    if !principal.permissions.contains(Permission::Embed) {
        return Err(ApiError::Forbidden(
            "this key lacks the embed permission".into(),
        ));
    }
    if principal.role == Role::Merchant {
        return Err(ApiError::Forbidden(
            "viewer tokens are minted by partner and admin keys".into(),
        ));
    }
    Ok(())
}

/// What the embedded view may show (audit and threat by default, exports not).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct View {
    /// The Audit Logs tab.
    #[serde(default = "yes")]
    audit: bool,
    /// The Threat Logs tab.
    #[serde(default = "yes")]
    threat: bool,
    /// The export links (CSV, NDJSON) of the tabs shown.
    #[serde(default)]
    export: bool,
}

fn yes() -> bool {
    true
}

impl From<ViewGrant> for View {
    fn from(grant: ViewGrant) -> Self {
        View {
            audit: grant.audit,
            threat: grant.threat,
            export: grant.export,
        }
    }
}

/// A request to mint a viewer token.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct MintRequest {
    /// The one account the view shows (in the key's scope; not the platform account).
    #[schema(min_length = 1, max_length = 128)]
    account_id: String,
    /// The partner's end user, recorded as the actor of every read of the view.
    #[schema(min_length = 1, max_length = 128)]
    actor_id: String,
    /// The end user's display name, shown in the view and recorded with its reads.
    #[schema(min_length = 1, max_length = 128)]
    actor_name: Option<String>,
    /// Seconds the token may be exchanged (default 600, at most 3600).
    #[schema(minimum = 1, maximum = 3600)]
    ttl_seconds: Option<u64>,
    /// What the view shows.
    view: Option<View>,
}

/// A viewer token as listed: never the token itself.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct ViewerToken {
    /// Public id, to revoke it.
    id: String,
    /// The account the view shows.
    account_id: String,
    /// The end user.
    actor_id: String,
    /// Their display name.
    actor_name: Option<String>,
    /// What the view shows.
    view: View,
    /// `unused`, `exchanged` (its session may still be open), `expired` or `revoked`.
    status: String,
    /// The key that minted it.
    issued_by: String,
    /// Minting time.
    #[schema(format = DateTime)]
    created_at: String,
    /// The token cannot be exchanged after this.
    #[schema(format = DateTime)]
    expires_at: String,
    /// When it was exchanged.
    #[schema(format = DateTime)]
    exchanged_at: Option<String>,
    /// When its session ends.
    #[schema(format = DateTime)]
    session_expires_at: Option<String>,
    /// When it was revoked.
    #[schema(format = DateTime)]
    revoked_at: Option<String>,
}

impl ViewerToken {
    fn of(record: &ViewerTokenRecord, now: Micros) -> Self {
        let status = if record.revoked_at.is_some() {
            "revoked"
        } else if record.redeemed_at.is_some() {
            "exchanged"
        } else if record.expires_at <= now {
            "expired"
        } else {
            "unused"
        };
        ViewerToken {
            id: record.token_id.clone(),
            account_id: record.account_id.clone(),
            actor_id: record.actor_id.clone(),
            actor_name: record.actor_name.clone(),
            view: record.grant.into(),
            status: status.into(),
            issued_by: record.issued_by.clone(),
            created_at: record.created_at.to_rfc3339(),
            expires_at: record.expires_at.to_rfc3339(),
            exchanged_at: record.redeemed_at.map(Micros::to_rfc3339),
            session_expires_at: record.session_expires_at.map(Micros::to_rfc3339),
            revoked_at: record.revoked_at.map(Micros::to_rfc3339),
        }
    }
}

/// A minted token: `token` is shown this once and never again.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct MintedToken {
    /// The token, exchanged once at `url`.
    token: String,
    /// Where the partner's page points its frame: `/embed?token=…` on this service.
    url: String,
    /// The token's record.
    #[serde(flatten)]
    record: ViewerToken,
}

/// Viewer tokens of the accounts in the caller's scope, newest first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub(crate) struct ViewerTokenList {
    /// At most 500.
    data: Vec<ViewerToken>,
}

/// The token a path names.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // The path's documentation.
struct TokenPath {
    /// The token's id (`vt_…`).
    token_id: String,
}

/// The partner a path names.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // The path's documentation.
struct PartnerPath {
    /// The partner account.
    partner_id: String,
}

/// The name and colours of the embedded view.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Brand {
    /// Shown in the view's header instead of the account's name.
    #[schema(min_length = 1, max_length = 64)]
    name: Option<String>,
    /// The accent colour, `#rrggbb`.
    #[schema(pattern = "^#[0-9a-fA-F]{6}$")]
    accent: Option<String>,
    /// The header's background colour, `#rrggbb`.
    #[schema(pattern = "^#[0-9a-fA-F]{6}$")]
    background: Option<String>,
}

/// A partner's embedding settings.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Settings {
    /// Origins allowed to frame the view: `https://host[:port]`, or `http://127.0.0.1:port`
    /// (also `localhost`, `[::1]`) for a page on the same machine. At most 16.
    #[schema(max_items = 16)]
    frame_origins: Vec<String>,
    /// Name and colours.
    #[serde(default)]
    brand: Brand,
}

fn object_from(body: &[u8]) -> Result<Value, ApiError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(value @ Value::Object(_)) => Ok(value),
        Ok(_) => Err(ApiError::MalformedBody(
            "the body must be a JSON object".into(),
        )),
        Err(error) => Err(ApiError::MalformedBody(format!("not JSON: {error}"))),
    }
}

fn typed<T: for<'de> Deserialize<'de>>(value: Value) -> Result<T, ApiError> {
    serde_json::from_value(value).map_err(|e| ApiError::InvalidSetting(e.to_string()))
}

/// Appends the audit event recording an embedding change on `account_id`, and waits for it.
async fn record(
    state: &AppState,
    principal: &Principal,
    account_id: &str,
    action: &str,
    metadata: Value,
) -> Result<(), ApiError> {
    let event = json!({
        "account_id": account_id,
        "action": action,
        "outcome": "success",
        "actor": {"id": principal.actor_id, "type": principal.actor_type.as_str()},
        "metadata": metadata,
    });
    let new_event = validate_event(EventKind::Audit, 0, &event, account_id, &Limits::default())
        .map_err(|problems| ApiError::Internal(format!("{action} event: {problems:?}")))?;
    state.store.ingest(vec![new_event]).await?;
    Ok(())
}

#[utoipa::path(
    post,
    path = "/v1/viewer-tokens",
    tag = "embed",
    operation_id = "mintViewerToken",
    summary = "Mint a short-lived, single-use token for the embedded Logs page of one account (key with `embed`)",
    request_body(content = MintRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "The token (shown once) and where to frame it", body = MintedToken),
        (status = 400, response = super::openapi::Problem),
        (status = 403, response = super::openapi::Problem),
        (status = 404, response = super::openapi::Problem),
    ),
)]
pub(crate) async fn mint(
    State(state): State<AppState>,
    Caller(principal): Caller,
    body: Bytes,
) -> Result<(StatusCode, Json<MintedToken>), ApiError> {
    embedder(&principal)?;
    let request: MintRequest = typed(object_from(&body)?)?;
    embed::check_actor(&request.actor_id, request.actor_name.as_deref())
        .map_err(ApiError::InvalidSetting)?;
    let ttl = embed::token_ttl(request.ttl_seconds).map_err(ApiError::InvalidSetting)?;
    let view = request.view.unwrap_or(View {
        audit: true,
        threat: true,
        export: false,
    });
    if !view.audit && !view.threat {
        return Err(ApiError::InvalidSetting(
            "the view must show audit or threat events".into(),
        ));
    }
    // Out of scope looks like absent, as for every read.
    let accounts = state
        .store
        .accounts_in_scope(
            &principal.scope(),
            std::slice::from_ref(&request.account_id),
        )
        .await?;
    let account = accounts.first().ok_or(ApiError::NotFound)?;
    if account.kind == AccountKind::Platform {
        return Err(ApiError::InvalidSetting(
            "viewer tokens show a partner's or a merchant's account".into(),
        ));
    }
    let token = new_token().map_err(|e| ApiError::Internal(e.to_string()))?;
    let token_id = embed::new_token_id().map_err(|e| ApiError::Internal(e.to_string()))?;
    let now = Micros::now();
    let ttl = i64::try_from(ttl.as_micros()).unwrap_or(i64::MAX);
    let record = ViewerTokenRecord {
        token_id: token_id.clone(),
        token_hash: token_hash(&token).to_vec(),
        account_id: account.id.clone(),
        issued_by: principal.actor_id.clone(),
        actor_id: request.actor_id,
        actor_name: request.actor_name.map(|n| n.trim().to_string()),
        grant: ViewGrant {
            audit: view.audit,
            threat: view.threat,
            export: view.export,
        },
        created_at: now,
        expires_at: Micros(now.0.saturating_add(ttl)),
        redeemed_at: None,
        session_hash: None,
        session_expires_at: None,
        revoked_at: None,
    };
    state.store.create_viewer_token(record.clone()).await?;
    let listed = ViewerToken::of(&record, now);
    record_minted(&state, &principal, &listed).await?;
    Ok((
        StatusCode::CREATED,
        Json(MintedToken {
            url: format!("/embed?token={token}"),
            token,
            record: listed,
        }),
    ))
}

async fn record_minted(
    state: &AppState,
    principal: &Principal,
    token: &ViewerToken,
) -> Result<(), ApiError> {
    let metadata = json!({
        "view_id": token.id,
        "for_actor": token.actor_id,
        "view": token.view,
        "expires_at": token.expires_at,
    });
    record(
        state,
        principal,
        &token.account_id,
        TOKEN_MINTED_ACTION,
        metadata,
    )
    .await
}

#[utoipa::path(
    get,
    path = "/v1/viewer-tokens",
    tag = "embed",
    operation_id = "listViewerTokens",
    summary = "Viewer tokens of the accounts in the caller's scope, newest first (key with `embed`)",
    responses(
        (status = 200, description = "The tokens, never the tokens' secrets", body = ViewerTokenList),
        (status = 403, response = super::openapi::Problem),
    ),
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    Caller(principal): Caller,
) -> Result<Json<ViewerTokenList>, ApiError> {
    embedder(&principal)?;
    let now = Micros::now();
    let data = state
        .store
        .viewer_tokens(&principal.scope(), LIST_LIMIT)
        .await?
        .iter()
        .map(|record| ViewerToken::of(record, now))
        .collect();
    Ok(Json(ViewerTokenList { data }))
}

async fn scoped_token(
    state: &AppState,
    principal: &Principal,
    token_id: &str,
) -> Result<ViewerTokenRecord, ApiError> {
    if !embed::is_token_id(token_id) {
        return Err(ApiError::NotFound);
    }
    state
        .store
        .viewer_token(&principal.scope(), token_id)
        .await?
        .ok_or(ApiError::NotFound)
}

#[utoipa::path(
    get,
    path = "/v1/viewer-tokens/{token_id}",
    tag = "embed",
    operation_id = "getViewerToken",
    summary = "One viewer token of an account in the caller's scope (key with `embed`)",
    params(TokenPath),
    responses(
        (status = 200, description = "The token", body = ViewerToken),
        (status = 403, response = super::openapi::Problem),
        (status = 404, response = super::openapi::Problem),
    ),
)]
pub(crate) async fn get(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(token_id): Path<String>,
) -> Result<Json<ViewerToken>, ApiError> {
    embedder(&principal)?;
    let record = scoped_token(&state, &principal, &token_id).await?;
    Ok(Json(ViewerToken::of(&record, Micros::now())))
}

#[utoipa::path(
    delete,
    path = "/v1/viewer-tokens/{token_id}",
    tag = "embed",
    operation_id = "revokeViewerToken",
    summary = "Revoke a viewer token and end the session it was exchanged for; recorded as an audit event",
    params(TokenPath),
    responses(
        (status = 200, description = "The token as it now is (revoking again changes nothing)", body = ViewerToken),
        (status = 403, response = super::openapi::Problem),
        (status = 404, response = super::openapi::Problem),
    ),
)]
pub(crate) async fn revoke(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(token_id): Path<String>,
) -> Result<Json<ViewerToken>, ApiError> {
    embedder(&principal)?;
    let record = scoped_token(&state, &principal, &token_id).await?;
    let now = Micros::now();
    if record.revoked_at.is_none()
        && state
            .store
            .revoke_viewer_token(&principal.scope(), &token_id, now)
            .await?
    {
        let metadata = json!({"view_id": token_id, "for_actor": record.actor_id});
        record_event(&state, &principal, &record.account_id, metadata).await?;
    }
    let record = scoped_token(&state, &principal, &token_id).await?;
    Ok(Json(ViewerToken::of(&record, now)))
}

async fn record_event(
    state: &AppState,
    principal: &Principal,
    account_id: &str,
    metadata: Value,
) -> Result<(), ApiError> {
    record(state, principal, account_id, TOKEN_REVOKED_ACTION, metadata).await
}

/// The partner account `partner_id` if the caller may manage its embedding: an admin key
/// with `admin` or `embed`, or the partner's own key with `embed`.
async fn managed_partner(
    state: &AppState,
    principal: &Principal,
    partner_id: &str,
) -> Result<(), ApiError> {
    let allowed = match principal.role {
        Role::Admin => {
            principal.permissions.contains(Permission::Admin)
                || principal.permissions.contains(Permission::Embed)
        }
        Role::Partner => {
            principal.permissions.contains(Permission::Embed) && principal.account_id == partner_id
        }
        Role::Merchant => false,
    };
    let accounts = state
        .store
        .accounts_in_scope(&principal.scope(), &[partner_id.to_string()])
        .await?;
    let Some(account) = accounts.first() else {
        return Err(ApiError::NotFound);
    };
    if !allowed {
        return Err(ApiError::Forbidden(
            "embedding settings take the partner's key with embed, or an admin key".into(),
        ));
    }
    if account.kind != AccountKind::Partner {
        return Err(ApiError::NotFound);
    }
    Ok(())
}

fn settings_view(settings: Option<EmbedSettings>) -> Settings {
    match settings {
        Some(s) => Settings {
            frame_origins: s.frame_origins,
            brand: Brand {
                name: s.brand_name,
                accent: s.brand_colour,
                background: s.brand_background,
            },
        },
        None => Settings {
            frame_origins: Vec::new(),
            brand: Brand::default(),
        },
    }
}

#[utoipa::path(
    get,
    path = "/v1/embed-settings/{partner_id}",
    tag = "embed",
    operation_id = "getEmbedSettings",
    summary = "A partner's embedding settings: the origins that may frame its view, its name and colours",
    params(PartnerPath),
    responses(
        (status = 200, description = "The settings (empty when none were set)", body = Settings),
        (status = 403, response = super::openapi::Problem),
        (status = 404, response = super::openapi::Problem),
    ),
)]
pub(crate) async fn show_settings(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(partner_id): Path<String>,
) -> Result<Json<Settings>, ApiError> {
    managed_partner(&state, &principal, &partner_id).await?;
    Ok(Json(settings_view(
        state.store.embed_settings(&partner_id).await?,
    )))
}

#[utoipa::path(
    put,
    path = "/v1/embed-settings/{partner_id}",
    tag = "embed",
    operation_id = "setEmbedSettings",
    summary = "Replace a partner's embedding settings (its key with `embed`, or an admin key); recorded as an audit event",
    params(PartnerPath),
    request_body(content = Settings, content_type = "application/json"),
    responses(
        (status = 200, description = "The settings as they now are", body = Settings),
        (status = 400, response = super::openapi::Problem),
        (status = 403, response = super::openapi::Problem),
        (status = 404, response = super::openapi::Problem),
    ),
)]
pub(crate) async fn set_settings(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(partner_id): Path<String>,
    body: Bytes,
) -> Result<Json<Settings>, ApiError> {
    managed_partner(&state, &principal, &partner_id).await?;
    let request: Settings = typed(object_from(&body)?)?;
    if request.frame_origins.len() > embed::MAX_FRAME_ORIGINS {
        return Err(ApiError::InvalidSetting(format!(
            "at most {} frame origins",
            embed::MAX_FRAME_ORIGINS
        )));
    }
    let mut origins: Vec<String> = Vec::new();
    for origin in &request.frame_origins {
        let origin = embed::parse_frame_origin(origin).map_err(ApiError::InvalidSetting)?;
        if !origins.contains(&origin) {
            origins.push(origin);
        }
    }
    let colour = |value: &Option<String>| {
        value
            .as_deref()
            .map(embed::parse_colour)
            .transpose()
            .map_err(ApiError::InvalidSetting)
    };
    let settings = EmbedSettings {
        partner_id: partner_id.clone(),
        frame_origins: origins,
        brand_name: request
            .brand
            .name
            .as_deref()
            .map(embed::parse_brand_name)
            .transpose()
            .map_err(ApiError::InvalidSetting)?,
        brand_colour: colour(&request.brand.accent)?,
        brand_background: colour(&request.brand.background)?,
        updated_at: Micros::now(),
    };
    state.store.set_embed_settings(settings.clone()).await?;
    let shown = settings_view(Some(settings));
    let metadata = json!({"frame_origins": shown.frame_origins, "brand": shown.brand});
    record(
        &state,
        &principal,
        &partner_id,
        SETTINGS_SET_ACTION,
        metadata,
    )
    .await?;
    Ok(Json(shown))
}

#[cfg(test)]
mod tests {
    use logvault_core::Scope;

    use super::*;

    #[test]
    fn a_view_defaults_to_both_tabs_without_exports() {
        let view: View = serde_json::from_value(json!({})).expect("view");
        assert!(view.audit && view.threat && !view.export);
        assert!(serde_json::from_value::<View>(json!({"audit": true, "css": "x"})).is_err());
    }

    #[test]
    fn scope_of_the_embedded_principal_is_one_account() {
        // The principal of an embedded view is bound to the token's account (see web::embed):
        // a merchant role, so a partner account's own view does not reach its merchants.
        let principal = Principal {
            actor_id: "end-user".into(),
            actor_type: logvault_core::ActorType::User,
            role: Role::Merchant,
            account_id: "par_x".into(),
            permissions: Default::default(),
            actor_name: None,
            viewer_token: None,
        };
        assert_eq!(principal.scope(), Scope::Account("par_x".into()));
    }
}
