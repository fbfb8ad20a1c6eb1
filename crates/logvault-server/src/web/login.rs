//! Signing in and out. The sign-in form is protected by a double-submit cookie (there is no
//! session yet); sign-out by the session's CSRF token. Every attempt is an audit event
//! (`user.login`, `user.logout`) written and acknowledged before the answer goes out.

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use logvault_core::password::{hash_password, new_token, token_hash, verify_password};
use logvault_core::validate::validate_event_with;
use logvault_core::{EventKind, Micros, PLATFORM_ACCOUNT};
use logvault_store::{SessionRecord, UserRecord};
use serde::Deserialize;
use serde_json::json;

use super::WebError;
use super::render::render;
use super::session::{
    LOGIN_CSRF_COOKIE, SESSION_COOKIE, SignedIn, cookie, is_token_shaped, over_tls, set_cookie,
    signed_in, tokens_match,
};
use super::throttle::LoginThrottle;
use crate::AppState;
use crate::auth::RequestOrigin;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct LoginForm {
    username: String,
    password: String,
    csrf: String,
}

impl LoginForm {
    /// Reads a sign-in form body; a body that is not a form is an empty form.
    pub(crate) fn parse(body: &[u8]) -> Self {
        serde_urlencoded::from_bytes(body).unwrap_or_default()
    }

    /// Whether the form's token is the one in the browser's double-submit cookie.
    pub(crate) fn double_submitted(&self, headers: &HeaderMap) -> bool {
        cookie(headers, LOGIN_CSRF_COOKIE)
            .filter(|token| is_token_shaped(token))
            .is_some_and(|token| tokens_match(token, &self.csrf))
    }

    /// The username as looked up and recorded: trimmed, and bounded so a pasted novel cannot
    /// bloat the audit event.
    pub(crate) fn username(&self) -> String {
        self.username.trim().chars().take(128).collect()
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct LogoutForm {
    csrf: String,
}

fn internal(error: impl std::fmt::Display) -> WebError {
    WebError::Internal(error.to_string())
}

/// The sign-in form, with a fresh double-submit token (or the one the browser already holds,
/// so two open tabs both work).
fn login_page(
    headers: &HeaderMap,
    status: StatusCode,
    username: &str,
    error: Option<&str>,
) -> Result<Response, WebError> {
    let token = match cookie(headers, LOGIN_CSRF_COOKIE).filter(|t| is_token_shaped(t)) {
        Some(token) => token.to_string(),
        None => new_token().map_err(internal)?,
    };
    let html = render(
        "login.html",
        json!({"title": "Sign in", "csrf": token, "username": username, "error": error}),
    )?;
    let cookie = set_cookie(LOGIN_CSRF_COOKIE, &token, "/login", 3600, over_tls(headers));
    let mut response = (status, Html(html)).into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).map_err(internal)?,
    );
    Ok(response)
}

pub(crate) async fn form(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    if signed_in(&headers, &state).await?.is_some() {
        return Ok(Redirect::to("/").into_response());
    }
    login_page(&headers, StatusCode::OK, "", None)
}

/// A PHC string no password matches in practice, verified for unknown usernames so that
/// they cost as much time as known ones.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| hash_password("logvault timing equaliser").unwrap_or_default())
}

/// Why a sign-in failed, as recorded in the audit event's `reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Failure {
    UnknownUser,
    BadPassword,
    Disabled,
    Locked,
}

impl Failure {
    fn reason(self) -> &'static str {
        match self {
            Failure::UnknownUser => "unknown_user",
            Failure::BadPassword => "bad_password",
            Failure::Disabled => "disabled",
            Failure::Locked => "locked",
        }
    }
}

/// Writes one audit event about a person's session and waits for the store's ack.
pub(super) async fn record(
    state: &AppState,
    account_id: &str,
    action: &str,
    outcome: Result<(), Failure>,
    actor: (&str, &str),
    origin: &RequestOrigin,
) -> Result<(), WebError> {
    let (actor_id, username) = actor;
    let mut event = json!({
        "action": action,
        "outcome": if outcome.is_ok() { "success" } else { "failure" },
        "actor": {"id": actor_id, "type": "user", "name": username},
        "metadata": {"via": "logs page"},
    });
    if let Err(failure) = outcome {
        event["reason"] = failure.reason().into();
    }
    if let Some(origin) = origin.to_json() {
        event["origin"] = origin;
    }
    let config = &state.config;
    let new_event = validate_event_with(
        EventKind::Audit,
        0,
        &event,
        account_id,
        &config.limits,
        &config.scrubber,
    )
    .map_err(|problems| WebError::Internal(format!("{action} event: {problems:?}")))?;
    state.store.ingest(vec![new_event]).await?;
    Ok(())
}

/// Checks the password off the async threads (argon2id is deliberately slow).
pub(super) async fn password_matches(password: String, phc: String) -> Result<bool, WebError> {
    tokio::task::spawn_blocking(move || verify_password(&password, &phc))
        .await
        .map_err(internal)
}

pub(crate) async fn submit(
    State(state): State<AppState>,
    Extension(throttle): Extension<Arc<LoginThrottle>>,
    origin: RequestOrigin,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, WebError> {
    let form = LoginForm::parse(&body);
    if !form.double_submitted(&headers) {
        return Err(WebError::Forbidden(
            "The sign-in form expired or did not come from this site. Reload it and try again."
                .into(),
        ));
    }
    let username = form.username();
    let mut keys = vec![format!("user:{}", username.to_lowercase())];
    if let Some(ip) = &origin.ip {
        keys.push(format!("ip:{ip}"));
    }
    let user = state.store.user_by_name(&username).await?;
    let account = user
        .as_ref()
        .map_or(PLATFORM_ACCOUNT, |user| user.account_id.as_str())
        .to_string();
    let actor_id = user
        .as_ref()
        .map_or(username.as_str(), |user| user.user_id.as_str())
        .to_string();
    let actor = (actor_id.as_str(), username.as_str());

    if let Some(wait) = throttle.wait(&keys, Instant::now()) {
        let outcome = Err(Failure::Locked);
        record(&state, &account, "user.login", outcome, actor, &origin).await?;
        let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        let message = format!("Too many failed sign-ins. Try again in {seconds} s.");
        let mut response = login_page(
            &headers,
            StatusCode::TOO_MANY_REQUESTS,
            &username,
            Some(&message),
        )?;
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        return Ok(response);
    }

    let phc = user
        .as_ref()
        .map_or_else(|| dummy_hash().to_string(), |u| u.password_hash.clone());
    let matches = password_matches(form.password, phc).await?;
    let verdict = match &user {
        None => Err(Failure::UnknownUser),
        Some(_) if !matches => Err(Failure::BadPassword),
        Some(user) if user.disabled => Err(Failure::Disabled),
        Some(_) => Ok(()),
    };
    let user = match (verdict, user) {
        (Ok(()), Some(user)) => user,
        (verdict, _) => {
            throttle.fail(&keys, Instant::now());
            let outcome = Err(verdict.err().unwrap_or(Failure::UnknownUser));
            record(&state, &account, "user.login", outcome, actor, &origin).await?;
            // One message for every reason: the form must not reveal which usernames exist.
            return login_page(
                &headers,
                StatusCode::OK,
                &username,
                Some("Wrong username or password."),
            );
        }
    };
    throttle.clear(&keys[0]);
    start_session(&state, &headers, &user, &origin).await
}

/// Issues a brand-new session token (never one the client offered), records the sign-in and
/// sends the person to the overview.
async fn start_session(
    state: &AppState,
    headers: &HeaderMap,
    user: &UserRecord,
    origin: &RequestOrigin,
) -> Result<Response, WebError> {
    let token = new_token().map_err(internal)?;
    let (lifetimes, now) = (state.config.sessions, Micros::now());
    state
        .store
        .create_session(SessionRecord {
            token_hash: token_hash(&token).to_vec(),
            user_id: user.user_id.clone(),
            csrf_token: new_token().map_err(internal)?,
            created_at: now,
            expires_at: lifetimes.expiry(now, now),
            ended_at: None,
        })
        .await?;
    let actor = (user.user_id.as_str(), user.username.as_str());
    record(state, &user.account_id, "user.login", Ok(()), actor, origin).await?;
    let tls = over_tls(headers);
    let mut response = Redirect::to("/").into_response();
    let cookies = [
        set_cookie(
            SESSION_COOKIE,
            &token,
            "/",
            lifetimes.cookie_max_age(now, now),
            tls,
        ),
        set_cookie(LOGIN_CSRF_COOKIE, "", "/login", 0, tls),
    ];
    for value in cookies {
        response.headers_mut().append(
            header::SET_COOKIE,
            HeaderValue::from_str(&value).map_err(internal)?,
        );
    }
    Ok(response)
}

pub(crate) async fn logout(
    State(state): State<AppState>,
    signed_in: SignedIn,
    origin: RequestOrigin,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, WebError> {
    let form: LogoutForm = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    signed_in.check_form_token(&form.csrf)?;
    state.store.end_session(&signed_in.token_hash).await?;
    let user = &signed_in.user;
    let actor = (user.user_id.as_str(), user.username.as_str());
    record(
        &state,
        &user.account_id,
        "user.logout",
        Ok(()),
        actor,
        &origin,
    )
    .await?;
    let mut response = Redirect::to("/login").into_response();
    let cleared = set_cookie(SESSION_COOKIE, "", "/", 0, over_tls(&headers));
    response.headers_mut().append(
        header::SET_COOKIE,
        HeaderValue::from_str(&cleared).map_err(internal)?,
    );
    Ok(response)
}
