//! Sessions of people signed in to the Logs page: the `logvault_session` cookie holds a
//! random token the server issued at sign-in (only its SHA-256 is stored), and the
//! [`SignedIn`] extractor turns a live session into a read-only [`Principal`]. A token the
//! client made up is simply not a session, so fixation is impossible: sign-in always issues
//! a new token.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use logvault_core::password::token_hash;
use logvault_core::{ActorType, Micros, Permissions, Principal};
use logvault_store::{Store, StoreResult, UserRecord};

use super::WebError;
use super::render::Chrome;
use crate::AppState;

/// The session cookie's name.
pub(crate) const SESSION_COOKIE: &str = "logvault_session";
/// The sign-in form's double-submit CSRF cookie (there is no session yet to hold a token).
pub(crate) const LOGIN_CSRF_COOKIE: &str = "logvault_login_csrf";
/// How long a session lasts.
pub(crate) const SESSION_MICROS: i64 = 12 * 3_600_000_000;

/// A person with a live session.
#[derive(Debug, Clone)]
pub(crate) struct SignedIn {
    /// The person as a reader: their user id, role and account, permission `read` only.
    pub principal: Principal,
    /// The user record.
    pub user: UserRecord,
    /// The token every form of this session must carry.
    pub csrf_token: String,
    /// SHA-256 of the cookie token, to end the session.
    pub token_hash: Vec<u8>,
}

impl SignedIn {
    /// The layout context for a page of tab `active`.
    pub(crate) async fn chrome(
        &self,
        store: &dyn Store,
        active: &'static str,
    ) -> StoreResult<Chrome> {
        let own = store
            .accounts_in_scope(
                &self.principal.scope(),
                std::slice::from_ref(&self.user.account_id),
            )
            .await?;
        Ok(Chrome {
            username: self.user.username.clone(),
            role: self.user.role.as_str(),
            account_id: self.user.account_id.clone(),
            account_name: own
                .first()
                .map_or_else(|| self.user.account_id.clone(), |a| a.name.clone()),
            csrf_token: self.csrf_token.clone(),
            active,
        })
    }
}

/// The value of cookie `name`, if the request carries it.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim())
}

/// Whether `token` has the shape of a token this service issues (64 hex digits).
pub(crate) fn is_token_shaped(token: &str) -> bool {
    token.len() == 64 && token.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The live session the request's cookie names, if any: it must exist, not be ended or
/// expired, and belong to a user who is not disabled.
pub(crate) async fn signed_in(
    headers: &HeaderMap,
    store: &dyn Store,
) -> StoreResult<Option<SignedIn>> {
    let Some(token) = cookie(headers, SESSION_COOKIE).filter(|t| is_token_shaped(t)) else {
        return Ok(None);
    };
    let hash = token_hash(token);
    let Some((session, user)) = store.session(&hash).await? else {
        return Ok(None);
    };
    let live = session.ended_at.is_none() && session.expires_at > Micros::now() && !user.disabled;
    if !live {
        return Ok(None);
    }
    Ok(Some(SignedIn {
        principal: Principal {
            actor_id: user.user_id.clone(),
            actor_type: ActorType::User,
            role: user.role,
            account_id: user.account_id.clone(),
            // People read the logs; ingest and administration stay with API keys.
            permissions: Permissions::parse("read").unwrap_or_default(),
        },
        user,
        csrf_token: session.csrf_token,
        token_hash: session.token_hash,
    }))
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, WebError> {
        signed_in(&parts.headers, state.store.as_ref())
            .await?
            .ok_or(WebError::SignIn)
    }
}

/// Whether the request reached us over TLS (directly or through a proxy that says so), so
/// cookies get the `Secure` attribute.
pub(crate) fn over_tls(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|value| value.to_str().ok())
        .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https"))
}

/// A `Set-Cookie` value. Lax rather than Strict so a shared link opened from mail or chat
/// finds the person signed in; state changes are POSTs, which Lax does not send cross-site.
pub(crate) fn set_cookie(name: &str, value: &str, path: &str, max_age: i64, tls: bool) -> String {
    let secure = if tls { "; Secure" } else { "" };
    format!("{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}")
}

/// Constant-time comparison of two tokens, so a wrong guess reveals nothing about how much
/// of it was right.
pub(crate) fn tokens_match(expected: &str, given: &str) -> bool {
    let (a, b) = (expected.as_bytes(), given.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn cookies_are_found_by_exact_name() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; logvault_session_x=2"),
        );
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("logvault_session=abc"),
        );
        assert_eq!(cookie(&headers, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie(&headers, "a"), Some("1"));
        assert_eq!(cookie(&headers, "b"), None);
    }

    #[test]
    fn token_checks() {
        let token = "ab".repeat(32);
        let cases = [
            (token.as_str(), true),
            ("ab", false),
            (&"zz".repeat(32), false),
        ];
        for (candidate, shaped) in cases {
            assert_eq!(is_token_shaped(candidate), shaped, "{candidate}");
        }
        assert!(tokens_match(&token, &token));
        assert!(!tokens_match(&token, &"ac".repeat(32)));
        assert!(!tokens_match(&token, ""));
    }
}
