//! The Logs page: server-rendered HTML for people who sign in with a username and password.
//! Every page reads the store through the signed-in person's `Principal::scope()`, the same
//! scope rules as the API; charts are SVG drawn on the server; the only script is the small
//! hand-written `/static/app.js` (progressive enhancement: local times, live tail).

mod assets;
mod charts;
pub(crate) mod embed;
mod error;
pub(crate) mod filters;
mod headers;
pub(crate) mod login;
mod logs;
mod overview;
mod password;
mod problems;
mod render;
pub(crate) mod session;
mod tail;
mod tail_slots;
mod throttle;
mod trends;

use std::sync::Arc;

use axum::routing::{get, post};
use axum::{Extension, Router, middleware};

use crate::AppState;

pub(crate) use error::WebError;
pub use headers::FrameAncestors;
pub use session::SessionLifetimes;
pub(crate) use tail_slots::TailSlots;

pub(crate) fn router(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/", get(overview::page))
        .route("/login", get(login::form).post(login::submit))
        .route("/logout", post(login::logout))
        .route("/password", get(password::form).post(password::change))
        .route("/audit", get(logs::list_audit))
        .route("/threat", get(logs::list_threat))
        .route("/audit/{id}", get(logs::detail_audit))
        .route("/threat/{id}", get(logs::detail_threat))
        .route("/trends", get(trends::page))
        .route("/problems", get(problems::page))
        .route("/tail/{kind}", get(tail::stream))
        .route("/static/app.css", get(assets::css))
        .route("/static/app.js", get(assets::js))
        .route("/embed", get(embed::exchange))
        .route("/static/brand.css", get(embed::brand_css))
        // One throttle per application instance: failures are counted in memory.
        .layer(Extension(Arc::new(throttle::LoginThrottle::default())))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            session::renew,
        ))
        .layer(middleware::from_fn_with_state(state.clone(), embed::layer))
        .layer(middleware::from_fn_with_state(
            headers::SecurityHeaders::new(&state.config.frame_ancestors),
            headers::add,
        ))
}
