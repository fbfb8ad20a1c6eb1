//! The Logs page: server-rendered HTML for people who sign in with a username and password.
//! Every page reads the store through the signed-in person's `Principal::scope()`, the same
//! scope rules as the API; charts are SVG drawn on the server; the only script is the small
//! hand-written `/static/app.js` (progressive enhancement: local times, live tail).

mod assets;
mod charts;
mod error;
pub(crate) mod filters;
pub(crate) mod login;
mod logs;
mod overview;
mod render;
pub(crate) mod session;
mod tail;
mod throttle;
mod trends;

use std::sync::Arc;

use axum::http::{HeaderName, HeaderValue, header};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Extension, Router, middleware};

use crate::AppState;

pub(crate) use error::WebError;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(overview::page))
        .route("/login", get(login::form).post(login::submit))
        .route("/logout", post(login::logout))
        .route("/audit", get(logs::list_audit))
        .route("/threat", get(logs::list_threat))
        .route("/audit/{id}", get(logs::detail_audit))
        .route("/threat/{id}", get(logs::detail_threat))
        .route("/trends", get(trends::page))
        .route("/tail/{kind}", get(tail::stream))
        .route("/static/app.css", get(assets::css))
        .route("/static/app.js", get(assets::js))
        // One throttle per application instance: failures are counted in memory.
        .layer(Extension(Arc::new(throttle::LoginThrottle::default())))
        .layer(middleware::map_response(security_headers))
}

/// No inline script or style, no framing, no third-party anything: the pages need nothing
/// but their own origin, so the policy says exactly that.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; \
     base-uri 'none'; object-src 'none'; frame-ancestors 'none'";

async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    let fixed: [(HeaderName, &str); 5] = [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (
            HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ),
    ];
    for (name, value) in fixed {
        headers.insert(name, HeaderValue::from_static(value));
    }
    // Pages show logs: keep them out of shared and back-forward caches. Static assets are
    // versioned by the binary and may be cached briefly.
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}
