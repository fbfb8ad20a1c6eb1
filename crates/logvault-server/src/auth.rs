//! Authentication: the `Authorization: Bearer lv_…` key becomes a [`Principal`], and
//! capability extractors ([`Reader`], [`Ingester`]) check its permission so a handler cannot
//! forget to.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;
use logvault_core::{ActorType, Permission, Principal, key};

use crate::{ApiError, AppState};

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller(pub Principal);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        // RFC 9110 §11.1: the scheme name is case-insensitive.
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.trim().split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token)
            .ok_or(ApiError::Unauthorized)?;
        let (key_id, secret) = key::parse(token.trim()).ok_or(ApiError::Unauthorized)?;
        let record = state
            .store
            .key(key_id)
            .await?
            .ok_or(ApiError::Unauthorized)?;
        // Check the secret even for revoked keys so both paths cost the same.
        let matches = key::secret_matches(secret, &record.secret_hash);
        if !matches || record.revoked_at.is_some() {
            return Err(ApiError::Unauthorized);
        }
        state
            .rate_limiter
            .take(&record.key_id)
            .map_err(|retry_after| ApiError::RateLimited { retry_after })?;
        Ok(Caller(Principal {
            actor_id: record.key_id,
            actor_type: ActorType::ApiKey,
            role: record.role,
            account_id: record.account_id,
            permissions: record.permissions,
            actor_name: None,
            viewer_token: None,
        }))
    }
}

async fn with_permission(
    parts: &mut Parts,
    state: &AppState,
    permission: Permission,
    name: &str,
) -> Result<Principal, ApiError> {
    let Caller(principal) = Caller::from_request_parts(parts, state).await?;
    if principal.permissions.contains(permission) {
        Ok(principal)
    } else {
        Err(ApiError::Forbidden(format!(
            "this key lacks the {name} permission"
        )))
    }
}

/// A caller allowed to read logs.
#[derive(Debug, Clone)]
pub struct Reader(pub Principal);

impl FromRequestParts<AppState> for Reader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        with_permission(parts, state, Permission::Read, "read")
            .await
            .map(Reader)
    }
}

/// A caller allowed to ingest events.
#[derive(Debug, Clone)]
pub struct Ingester(pub Principal);

impl FromRequestParts<AppState> for Ingester {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        with_permission(parts, state, Permission::Ingest, "ingest")
            .await
            .map(Ingester)
    }
}

/// Where a request came from: peer address and user agent, when known.
#[derive(Debug, Clone, Default)]
pub struct RequestOrigin {
    /// The TCP peer's address.
    pub ip: Option<String>,
    /// The `User-Agent` header, truncated.
    pub user_agent: Option<String>,
}

impl RequestOrigin {
    /// The `origin` object of an audit event, or `None` when nothing is known.
    pub fn to_json(&self) -> Option<serde_json::Value> {
        let mut origin = serde_json::Map::new();
        if let Some(ip) = &self.ip {
            origin.insert("ip".into(), ip.clone().into());
        }
        if let Some(agent) = &self.user_agent {
            origin.insert("user_agent".into(), agent.clone().into());
        }
        (!origin.is_empty()).then_some(serde_json::Value::Object(origin))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for RequestOrigin {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip().to_string());
        let user_agent = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|value| value.to_str().ok())
            .map(|agent| agent.chars().take(512).collect());
        Ok(RequestOrigin { ip, user_agent })
    }
}
