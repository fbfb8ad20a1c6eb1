//! Sessions of people signed in to the Logs page: the `logvault_session` cookie holds a
//! random token the server issued at sign-in (only its SHA-256 is stored), and the
//! [`SignedIn`] extractor turns a live session into a read-only [`Principal`]. A token the
//! client made up is simply not a session, so fixation is impossible: sign-in always issues
//! a new token.
//!
//! A session lives [`SessionLifetimes::idle`] without a request and never longer than
//! [`SessionLifetimes::absolute`] after sign-in. The stored expiry is the idle deadline: a
//! page request made once a tenth of the idle time has passed replaces the token with a new
//! one expiring a full idle time later (same sign-in time, same CSRF token) and ends the old
//! one, so activity is recorded by the store every node shares, and no store row changes.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use logvault_core::password::{new_token, token_hash};
use logvault_core::{ActorType, Micros, Permissions, Principal};
use logvault_store::{SessionRecord, Store, StoreResult, UserRecord};

use super::WebError;
use super::embed::{EmbedChrome, EmbedView, Embedded};
use super::render::Chrome;
use crate::AppState;

/// The session cookie's name.
pub(crate) const SESSION_COOKIE: &str = "logvault_session";
/// The sign-in form's double-submit CSRF cookie (there is no session yet to hold a token).
pub(crate) const LOGIN_CSRF_COOKIE: &str = "logvault_login_csrf";

/// How long a session of the Logs page lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLifetimes {
    /// A session with no page request for this long ends.
    pub idle: Duration,
    /// A session ends this long after sign-in, however busy it is.
    pub absolute: Duration,
}

impl Default for SessionLifetimes {
    /// 30 minutes idle, 12 hours in all: a working day, and a screen left unlocked over
    /// lunch is signed out.
    fn default() -> Self {
        SessionLifetimes {
            idle: Duration::from_secs(30 * 60),
            absolute: Duration::from_secs(12 * 3600),
        }
    }
}

fn micros(duration: Duration) -> i64 {
    i64::try_from(duration.as_micros()).unwrap_or(i64::MAX)
}

impl SessionLifetimes {
    /// When a session issued at `now`, of a sign-in at `signed_in_at`, expires.
    pub(crate) fn expiry(&self, signed_in_at: Micros, now: Micros) -> Micros {
        let idle = now.0.saturating_add(micros(self.idle));
        Micros(idle.min(self.absolute_end(signed_in_at).0))
    }

    fn absolute_end(&self, signed_in_at: Micros) -> Micros {
        Micros(signed_in_at.0.saturating_add(micros(self.absolute)))
    }

    /// Whether `session` of `user` is usable at `now`.
    pub(crate) fn live(&self, session: &SessionRecord, user: &UserRecord, now: Micros) -> bool {
        session.ended_at.is_none()
            && session.expires_at > now
            && self.absolute_end(session.created_at) > now
            && !user.disabled
    }

    /// Whether renewing `session` at `now` would push its expiry back by a tenth of the idle
    /// time or more (renewing on every request would write on every request).
    fn due(&self, session: &SessionRecord, now: Micros) -> bool {
        let gained = self.expiry(session.created_at, now).0 - session.expires_at.0;
        gained >= micros(self.idle) / 10
    }

    /// The cookie's `Max-Age` for a sign-in at `signed_in_at`: the absolute end, since the
    /// server enforces the idle one.
    pub(crate) fn cookie_max_age(&self, signed_in_at: Micros, now: Micros) -> i64 {
        (self.absolute_end(signed_in_at).0 - now.0).max(0) / 1_000_000
    }
}

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
    /// Set for an embedded view (`super::embed`): what it may show and how it looks.
    pub embed: Option<Arc<EmbedView>>,
}

impl SignedIn {
    /// Refuses a form that does not carry this session's CSRF token.
    pub(crate) fn check_form_token(&self, given: &str) -> Result<(), super::WebError> {
        if tokens_match(&self.csrf_token, given) {
            Ok(())
        } else {
            Err(super::WebError::Forbidden(
                "This form did not come from your session. Reload the page and try again.".into(),
            ))
        }
    }

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
            embed: self.embed.as_deref().map(EmbedChrome::from),
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

/// The live session the request's cookies name, if any: a live embedded view
/// (`super::embed`) first, else a person's session, which must exist, not be ended or
/// expired, and belong to a user who is not disabled.
pub(crate) async fn signed_in(
    headers: &HeaderMap,
    state: &AppState,
) -> StoreResult<Option<SignedIn>> {
    if let Some(embedded) = super::embed::session(headers, state).await? {
        return Ok(Some(embedded));
    }
    let Some((session, user)) = live_session(headers, state).await? else {
        return Ok(None);
    };
    Ok(Some(SignedIn {
        principal: Principal {
            actor_id: user.user_id.clone(),
            actor_type: ActorType::User,
            role: user.role,
            account_id: user.account_id.clone(),
            // People read the logs; ingest and administration stay with API keys.
            permissions: Permissions::parse("read").unwrap_or_default(),
            actor_name: None,
            viewer_token: None,
        },
        user,
        csrf_token: session.csrf_token,
        token_hash: session.token_hash,
        embed: None,
    }))
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, WebError> {
        if let Some(Embedded(embedded)) = parts.extensions.get::<Embedded>() {
            return Ok(embedded.clone());
        }
        signed_in(&parts.headers, state)
            .await?
            .ok_or(WebError::SignIn)
    }
}

/// The live session the request's cookie names, with its user.
async fn live_session(
    headers: &HeaderMap,
    state: &AppState,
) -> StoreResult<Option<(SessionRecord, UserRecord)>> {
    let Some(token) = cookie(headers, SESSION_COOKIE).filter(|t| is_token_shaped(t)) else {
        return Ok(None);
    };
    let Some((session, user)) = state.store.session(&token_hash(token)).await? else {
        return Ok(None);
    };
    let live = state.config.sessions.live(&session, &user, Micros::now());
    Ok(live.then_some((session, user)))
}

/// Middleware of the Logs page: renews a live session that is due (see the module comment),
/// so the handler sees the new token and the browser gets it.
pub(crate) async fn renew(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    // Assets are fetched beside a page, and sign-in makes its own session.
    let path = request.uri().path();
    if path.starts_with("/static/") || path == "/login" {
        return next.run(request).await;
    }
    let renewed = match renewal(request.headers(), &state).await {
        Ok(renewed) => renewed,
        Err(error) => {
            // The old session still works until its own expiry; the page can go on.
            tracing::warn!(%error, "cannot renew a session");
            None
        }
    };
    let Some((token, max_age)) = renewed else {
        return next.run(request).await;
    };
    let headers = request.headers_mut();
    let others: Vec<HeaderValue> = headers.get_all(header::COOKIE).iter().cloned().collect();
    headers.remove(header::COOKIE);
    if let Ok(value) = HeaderValue::from_str(&format!("{SESSION_COOKIE}={token}")) {
        // First, so `cookie` finds it before the old token.
        headers.append(header::COOKIE, value);
    }
    for value in others {
        headers.append(header::COOKIE, value);
    }
    let tls = over_tls(request.headers());
    let mut response = next.run(request).await;
    // A handler that set the session cookie itself (sign-out clears it) has the last word.
    let prefix = format!("{SESSION_COOKIE}=");
    let handler_set_it = response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .any(|value| value.as_bytes().starts_with(prefix.as_bytes()));
    if !handler_set_it
        && let Ok(value) =
            HeaderValue::from_str(&set_cookie(SESSION_COOKIE, &token, "/", max_age, tls))
    {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// A new token for the request's session if it is live and due: the successor is stored
/// before the old one ends, so a failure in between leaves the old one working.
async fn renewal(headers: &HeaderMap, state: &AppState) -> StoreResult<Option<(String, i64)>> {
    let Some((session, _)) = live_session(headers, state).await? else {
        return Ok(None);
    };
    let (lifetimes, now) = (state.config.sessions, Micros::now());
    if !lifetimes.due(&session, now) {
        return Ok(None);
    }
    let token = new_token().map_err(|e| logvault_store::StoreError::Backend(e.to_string()))?;
    state
        .store
        .create_session(SessionRecord {
            token_hash: token_hash(&token).to_vec(),
            user_id: session.user_id.clone(),
            csrf_token: session.csrf_token.clone(),
            created_at: session.created_at,
            expires_at: lifetimes.expiry(session.created_at, now),
            ended_at: None,
        })
        .await?;
    state.store.end_session(&session.token_hash).await?;
    Ok(Some((
        token,
        lifetimes.cookie_max_age(session.created_at, now),
    )))
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
