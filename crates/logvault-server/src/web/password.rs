//! Changing one's own password on the Logs page: the current password, the new one twice,
//! and the session's CSRF token. A change ends every session of the person (the store does
//! it in the same transaction as the new hash), this one included, so a password that leaked
//! stops working everywhere at once; the person signs in again. Attempts are audit events
//! (`user.password_changed`), and wrong current passwords are throttled like sign-ins.

use std::sync::Arc;
use std::time::Instant;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use logvault_core::password::hash_password;
use serde::Deserialize;
use serde_json::json;

use super::WebError;
use super::login::{Failure, password_matches, record};
use super::render::render;
use super::session::{SESSION_COOKIE, SignedIn, over_tls, set_cookie};
use super::throttle::LoginThrottle;
use crate::AppState;
use crate::auth::RequestOrigin;

/// The shortest password accepted, as for `logvault users`.
const MIN_PASSWORD_CHARS: usize = 12;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct PasswordForm {
    csrf: String,
    current: String,
    new: String,
    confirm: String,
}

async fn page(
    state: &AppState,
    signed_in: &SignedIn,
    status: StatusCode,
    error: Option<&str>,
) -> Result<Response, WebError> {
    let chrome = signed_in.chrome(state.store.as_ref(), "password").await?;
    let html = render(
        "password.html",
        json!({"title": "Change password", "chrome": chrome, "error": error,
            "min_chars": MIN_PASSWORD_CHARS}),
    )?;
    Ok((status, Html(html)).into_response())
}

pub(crate) async fn form(
    State(state): State<AppState>,
    signed_in: SignedIn,
) -> Result<Response, WebError> {
    page(&state, &signed_in, StatusCode::OK, None).await
}

pub(crate) async fn change(
    State(state): State<AppState>,
    Extension(throttle): Extension<Arc<LoginThrottle>>,
    signed_in: SignedIn,
    origin: RequestOrigin,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, WebError> {
    let form: PasswordForm = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    signed_in.check_form_token(&form.csrf)?;
    let user = &signed_in.user;
    let actor = (user.user_id.as_str(), user.username.as_str());
    let account = user.account_id.as_str();
    // The same key as sign-in: guessing the current password here is guessing it there.
    let keys = [format!("user:{}", user.username.to_lowercase())];
    if let Some(wait) = throttle.wait(&keys, Instant::now()) {
        let outcome = Err(Failure::Locked);
        record(
            &state,
            account,
            "user.password_changed",
            outcome,
            actor,
            &origin,
        )
        .await?;
        let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        let message = format!("Too many wrong passwords. Try again in {seconds} s.");
        let mut response = page(
            &state,
            &signed_in,
            StatusCode::TOO_MANY_REQUESTS,
            Some(&message),
        )
        .await?;
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        return Ok(response);
    }
    if !password_matches(form.current.clone(), user.password_hash.clone()).await? {
        throttle.fail(&keys, Instant::now());
        let outcome = Err(Failure::BadPassword);
        record(
            &state,
            account,
            "user.password_changed",
            outcome,
            actor,
            &origin,
        )
        .await?;
        let message = "The current password is wrong.";
        return page(&state, &signed_in, StatusCode::BAD_REQUEST, Some(message)).await;
    }
    let problem = if form.new.chars().count() < MIN_PASSWORD_CHARS {
        Some(format!(
            "The new password needs at least {MIN_PASSWORD_CHARS} characters."
        ))
    } else if form.new != form.confirm {
        Some("The two new passwords differ.".to_string())
    } else {
        None
    };
    if let Some(message) = problem {
        return page(&state, &signed_in, StatusCode::BAD_REQUEST, Some(&message)).await;
    }
    let new = form.new;
    let hash = tokio::task::spawn_blocking(move || hash_password(&new))
        .await
        .map_err(|e| WebError::Internal(e.to_string()))?
        .map_err(|e| WebError::Internal(e.to_string()))?;
    state.store.set_password(&user.user_id, &hash).await?;
    throttle.clear(&keys[0]);
    record(
        &state,
        account,
        "user.password_changed",
        Ok(()),
        actor,
        &origin,
    )
    .await?;
    let mut response = Redirect::to("/login").into_response();
    let cleared = set_cookie(SESSION_COOKIE, "", "/", 0, over_tls(&headers));
    let cleared = HeaderValue::from_str(&cleared).map_err(|e| WebError::Internal(e.to_string()))?;
    response.headers_mut().append(header::SET_COOKIE, cleared);
    Ok(response)
}
