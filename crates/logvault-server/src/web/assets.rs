//! The stylesheet and script, compiled into the binary: no CDN, no build step.

use axum::http::header;
use axum::response::IntoResponse;

const CSS: &str = include_str!("static/app.css");
const JS: &str = include_str!("static/app.js");
/// Short, so a new binary's assets are picked up within minutes.
const CACHE: &str = "public, max-age=300";

pub(crate) async fn css() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, CACHE),
        ],
        CSS,
    )
}

pub(crate) async fn js() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, CACHE),
        ],
        JS,
    )
}
