//! logvault's HTTP layer: the axum router, authentication and scope, problem+json errors,
//! and the operational endpoints. Only this crate knows HTTP.

mod api;
mod auth;
#[doc(hidden)]
pub mod fuzzing;
mod listener;
mod metrics;
mod ops;
mod problem;
mod rate;
mod viewed;
mod web;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::Response;
use logvault_core::scrub::{ScrubConfig, Scrubber};
use logvault_core::validate::Limits;
use logvault_store::Store;
use logvault_store::retention::RetentionDefaults;
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;

pub use auth::Caller;
pub use listener::{
    ListenerConfig, ServerName, TlsAcceptor, TlsConnector, TlsError, tls_acceptor, tls_connector,
};
pub use metrics::HttpMetrics;
pub use problem::ApiError;
pub use rate::RateLimit;
pub use viewed::ViewRecorder;
pub use web::{FrameAncestors, SessionLifetimes};

/// Settings of the HTTP layer.
#[derive(Clone)]
pub struct ServerConfig {
    /// Ingest size limits.
    pub limits: Limits,
    /// Removes sensitive data from events before they are stored.
    pub scrubber: Arc<Scrubber>,
    /// Requests per API key; `None` turns the limit off.
    pub rate_limit: Option<RateLimit>,
    /// Timeouts, connection cap and TLS of the listener.
    pub listener: ListenerConfig,
    /// Who may show the Logs page in a frame.
    pub frame_ancestors: FrameAncestors,
    /// How long a session of the Logs page lasts.
    pub sessions: SessionLifetimes,
    /// Live tails one person may have open at once.
    pub max_tails_per_person: usize,
    /// Retention defaults, for the policies the API shows and the floor it enforces.
    pub retention: RetentionDefaults,
    /// More samples for `/metrics` from tasks beside the server (the SIEM streams).
    pub metrics_sources: Vec<MetricsSource>,
}

/// Appends Prometheus text samples to the `/metrics` answer.
pub type MetricsSource = Arc<dyn Fn(&mut String) + Send + Sync>;

impl ServerConfig {
    /// The default limits with `scrubber`.
    pub fn new(scrubber: Scrubber) -> Self {
        ServerConfig {
            limits: Limits::default(),
            scrubber: Arc::new(scrubber),
            rate_limit: Some(RateLimit::default()),
            listener: ListenerConfig::default(),
            frame_ancestors: FrameAncestors::default(),
            sessions: SessionLifetimes::default(),
            max_tails_per_person: 8,
            retention: RetentionDefaults::default(),
            metrics_sources: Vec::new(),
        }
    }
}

impl Default for ServerConfig {
    /// Default limits and the built-in scrubbing rules.
    fn default() -> Self {
        let scrubber = Scrubber::new(&ScrubConfig::default())
            .unwrap_or_else(|e| unreachable!("the built-in scrub rules always compile: {e}"));
        ServerConfig::new(scrubber)
    }
}

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The storage backend.
    pub store: Arc<dyn Store>,
    /// HTTP settings.
    pub config: Arc<ServerConfig>,
    /// Request counters.
    pub metrics: Arc<HttpMetrics>,
    /// Records reads of the logs as `logs.viewed` events.
    pub viewed: ViewRecorder,
    /// Per-key request budgets.
    rate_limiter: Arc<rate::RateLimiter>,
    /// Live tails open per person.
    tails: Arc<web::TailSlots>,
}

impl AppState {
    /// State over `store`; starts the background task that records reads.
    pub fn new(store: Arc<dyn Store>, config: ServerConfig) -> Self {
        let metrics = Arc::new(HttpMetrics::default());
        AppState {
            rate_limiter: Arc::new(rate::RateLimiter::new(config.rate_limit)),
            tails: Arc::new(web::TailSlots::new(config.max_tails_per_person)),
            viewed: ViewRecorder::start(store.clone(), metrics.clone()),
            store,
            config: Arc::new(config),
            metrics,
        }
    }
}

/// The whole HTTP application.
pub fn app(state: AppState) -> Router {
    Router::new()
        .merge(api::router())
        .merge(ops::router())
        .merge(web::router(&state))
        .fallback(|| async { ApiError::NotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(middleware::from_fn_with_state(
            state.clone(),
            count_rejections,
        ))
        .layer(middleware::map_response(nosniff))
        .layer(CatchPanicLayer::custom(|_| {
            axum::response::IntoResponse::into_response(ApiError::Internal(
                "handler panicked".into(),
            ))
        }))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Every answer is exactly the type it says (an export or a problem is never sniffed into
/// HTML); the Logs page adds the rest of its defences in `web`.
async fn nosniff(mut response: Response) -> Response {
    response.headers_mut().insert(
        axum::http::header::X_CONTENT_TYPE_OPTIONS,
        axum::http::HeaderValue::from_static("nosniff"),
    );
    response
}

async fn count_rejections(
    axum::extract::State(state): axum::extract::State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let response = next.run(request).await;
    if let Some(slug) = response.extensions().get::<problem::ProblemSlug>() {
        state.metrics.reject(slug.0);
    }
    response
}

/// Serves `state` on `listener` (with the timeouts, connection cap and TLS of its
/// [`ListenerConfig`]) until `shutdown` resolves, then finishes in-flight requests and
/// flushes pending `logs.viewed` events.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let viewed = state.viewed.clone();
    let (config, metrics) = (state.config.listener.clone(), state.metrics.clone());
    listener::run(listener, app(state), config, metrics, shutdown).await;
    viewed.flush_and_stop().await;
    Ok(())
}
