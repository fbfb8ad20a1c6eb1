//! Health, readiness and Prometheus metrics.

use std::sync::atomic::Ordering;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use logvault_core::metrics::render_sample;

use crate::AppState;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
}

async fn ready(State(state): State<AppState>) -> impl IntoResponse {
    match state.store.ready().await {
        Ok(()) => (StatusCode::OK, "ready\n".to_string()),
        Err(error) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {error}\n"),
        ),
    }
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let mut out = String::new();
    state.metrics.render(&mut out);
    let store = state.store.metrics();
    store.batch_events.render(
        &mut out,
        "logvault_commit_batch_events",
        "Events per committed transaction.",
    );
    store.commit_seconds.render(
        &mut out,
        "logvault_commit_seconds",
        "Time from transaction start to durable commit.",
    );
    render_sample(
        &mut out,
        "logvault_queue_events",
        "gauge",
        "Events waiting for the writer.",
        store.queue_events.load(Ordering::Relaxed),
    );
    for source in &state.config.metrics_sources {
        source(&mut out);
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out)
}
