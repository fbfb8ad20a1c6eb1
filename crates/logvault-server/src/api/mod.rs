//! The v1 JSON API: ingest, list, get and trends for audit and threat events.

mod events;
mod export;
pub(crate) mod groups;
mod ingest;
pub(crate) mod openapi;
mod otlp;
pub(crate) mod params;
mod proofs;
mod retention;
mod viewer_tokens;

use axum::Router;
use axum::routing::{get, post, put};

use crate::AppState;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/audit-events",
            get(events::list_audit).post(ingest::post_audit),
        )
        .route(
            "/v1/threat-events",
            get(events::list_threat).post(ingest::post_threat),
        )
        .route("/v1/logs", post(otlp::post_logs))
        .route("/v1/threat-events/trends", get(events::trends))
        .route("/v1/threat-groups", get(groups::list))
        .route("/v1/threat-groups/{fingerprint}", get(groups::get))
        .route("/v1/audit-events/export", get(export::export_audit))
        .route("/v1/threat-events/export", get(export::export_threat))
        .route("/v1/audit-events/{id}", get(events::get_audit))
        .route("/v1/threat-events/{id}", get(events::get_threat))
        .route("/v1/checkpoints/latest", get(proofs::latest_checkpoint))
        .route("/v1/proofs/inclusion", get(proofs::inclusion))
        .route("/v1/proofs/consistency", get(proofs::consistency))
        .route("/v1/openapi.json", get(openapi::serve))
        .route("/v1/retention", get(retention::show))
        .route(
            "/v1/retention/{account_id}/hold",
            put(retention::place_hold).delete(retention::lift_hold),
        )
        .route(
            "/v1/retention/{account_id}/{kind}",
            put(retention::set_policy),
        )
        .route(
            "/v1/viewer-tokens",
            post(viewer_tokens::mint).get(viewer_tokens::list),
        )
        .route(
            "/v1/viewer-tokens/{token_id}",
            get(viewer_tokens::get).delete(viewer_tokens::revoke),
        )
        .route(
            "/v1/embed-settings/{partner_id}",
            get(viewer_tokens::show_settings).put(viewer_tokens::set_settings),
        )
}
