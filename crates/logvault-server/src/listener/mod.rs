//! The listener: accepts TCP connections, optionally behind TLS, and serves HTTP/1.1 on each
//! with the defences a service facing the internet needs: a deadline for the request head
//! and one for the body (a slow client cannot hold a connection open: slowloris), and a cap
//! on open connections, past which a client gets a quick 503 instead of a hung socket.

mod deadline;
mod tls;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, Request, header};
use axum::response::{IntoResponse, Response};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower::ServiceExt;

pub use tls::{TlsError, tls_acceptor, tls_connector};
pub use tokio_rustls::rustls::pki_types::ServerName;
pub use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::{ApiError, HttpMetrics};

/// Connections over the cap that are still answered 503 at once; past this many they are
/// simply closed, so a flood cannot make the refusals themselves a resource.
const REFUSALS_AT_ONCE: usize = 64;
/// How long a stopping server waits for open connections (a live tail never ends by itself).
const DRAIN_FOR: Duration = Duration::from_secs(10);

/// Timeouts, the connection cap and TLS of the listener.
#[derive(Clone)]
pub struct ListenerConfig {
    /// Time a client has to send a request's head (request line and headers), from the
    /// connection's start or the end of its previous response; also bounds the TLS handshake.
    pub header_timeout: Duration,
    /// Time a client has to send a request's whole body once its head has arrived.
    pub body_timeout: Duration,
    /// Connections served at once; more are answered 503.
    pub max_connections: usize,
    /// Serve HTTPS with this certificate and key instead of plain HTTP.
    pub tls: Option<TlsAcceptor>,
}

impl Default for ListenerConfig {
    fn default() -> Self {
        ListenerConfig {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            max_connections: 1024,
            tls: None,
        }
    }
}

impl std::fmt::Debug for ListenerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ListenerConfig")
            .field("header_timeout", &self.header_timeout)
            .field("body_timeout", &self.body_timeout)
            .field("max_connections", &self.max_connections)
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

/// Accepts connections on `listener` and serves `router` on them until `shutdown`
/// resolves, then lets open connections finish (for at most [`DRAIN_FOR`]). What the
/// listener itself refuses is counted in `metrics` like the application's problems.
pub(crate) async fn run(
    listener: TcpListener,
    router: Router,
    config: ListenerConfig,
    metrics: Arc<HttpMetrics>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let config = Arc::new(config);
    let connections = Arc::new(Semaphore::new(config.max_connections));
    let refusals = Arc::new(Semaphore::new(REFUSALS_AT_ONCE));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors, most likely: wait instead of spinning.
                    tracing::warn!(%error, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let connection = Connection {
            config: config.clone(),
            metrics: metrics.clone(),
            peer,
        };
        if let Ok(permit) = connections.clone().try_acquire_owned() {
            let (router, watcher) = (router.clone(), graceful.watcher());
            tokio::spawn(connection.serve(stream, router, watcher, permit));
        } else {
            metrics.reject(TOO_MANY_CONNECTIONS);
            if let Ok(permit) = refusals.clone().try_acquire_owned() {
                tokio::spawn(connection.refuse(stream, permit));
            }
        }
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_FOR, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after {DRAIN_FOR:?}; closing them");
    }
}

/// One accepted connection.
struct Connection {
    config: Arc<ListenerConfig>,
    metrics: Arc<HttpMetrics>,
    peer: SocketAddr,
}

/// The problem slugs of what the listener refuses, as `/metrics` counts them.
const TOO_MANY_CONNECTIONS: &str = "too-many-connections";
const HEADER_TIMEOUT: &str = "header-timeout";
const BODY_TIMEOUT: &str = "body-timeout";

impl Connection {
    fn http1(&self) -> http1::Builder {
        let mut builder = http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(self.config.header_timeout);
        builder
    }

    /// Serves the application on the connection until either side closes it.
    async fn serve(
        self,
        stream: TcpStream,
        router: Router,
        watcher: Watcher,
        _permit: OwnedSemaphorePermit,
    ) {
        let tls = self.config.tls.is_some();
        let (config, metrics, peer) = (self.config.clone(), self.metrics.clone(), self.peer);
        let n_requests = Arc::new(AtomicUsize::new(0));
        let counted = n_requests.clone();
        let service = service_fn(move |request: Request<Incoming>| {
            counted.fetch_add(1, Ordering::Relaxed);
            let connection = (config.clone(), metrics.clone(), peer, tls);
            handle(router.clone(), connection, request)
        });
        let builder = self.http1();
        let served = match self.handshake(stream).await {
            Some(Stream::Plain(stream)) => {
                let connection = builder.serve_connection(TokioIo::new(stream), service);
                watcher.watch(connection).await
            }
            Some(Stream::Tls(stream)) => {
                let connection = builder.serve_connection(TokioIo::new(stream), service);
                watcher.watch(connection).await
            }
            None => return,
        };
        if let Err(error) = served {
            // A connection that never completed a request head is a slow or silent client;
            // one that times out after its requests is an idle keep-alive, closed as usual.
            if error.is_timeout() && n_requests.load(Ordering::Relaxed) == 0 {
                self.metrics.reject(HEADER_TIMEOUT);
            }
            tracing::debug!(%error, peer = %self.peer, "connection ended");
        }
    }

    /// Answers the connection's first request 503 and closes it, within
    /// [`REFUSAL_LIFETIME`] whatever the client does.
    async fn refuse(self, stream: TcpStream, _permit: OwnedSemaphorePermit) {
        tracing::warn!(peer = %self.peer, "connection limit reached; answering 503");
        if tokio::time::timeout(REFUSAL_LIFETIME, self.answer_busy(stream))
            .await
            .is_err()
        {
            tracing::debug!(peer = %self.peer, "refused connection timed out");
        }
    }

    async fn answer_busy(&self, stream: TcpStream) {
        let service = service_fn(|_: Request<Incoming>| async {
            let mut response = ApiError::TooManyConnections.into_response();
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            Ok::<_, Infallible>(response)
        });
        let mut builder = self.http1();
        builder.keep_alive(false);
        let answered = match self.handshake(stream).await {
            Some(Stream::Plain(stream)) => {
                builder
                    .serve_connection(TokioIo::new(stream), service)
                    .await
            }
            Some(Stream::Tls(stream)) => {
                builder
                    .serve_connection(TokioIo::new(stream), service)
                    .await
            }
            None => return,
        };
        if let Err(error) = answered {
            tracing::debug!(%error, peer = %self.peer, "refused connection ended");
        }
    }

    /// The TLS handshake when serving HTTPS, within the head deadline; `None` if it fails.
    async fn handshake(&self, stream: TcpStream) -> Option<Stream> {
        let Some(acceptor) = &self.config.tls else {
            return Some(Stream::Plain(stream));
        };
        match tokio::time::timeout(self.config.header_timeout, acceptor.accept(stream)).await {
            Ok(Ok(stream)) => Some(Stream::Tls(Box::new(stream))),
            Ok(Err(error)) => {
                tracing::debug!(%error, peer = %self.peer, "TLS handshake failed");
                None
            }
            Err(_) => {
                self.metrics.reject(HEADER_TIMEOUT);
                tracing::debug!(peer = %self.peer, "TLS handshake timed out");
                None
            }
        }
    }
}

/// A connection after the optional handshake.
enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

/// The longest a refused connection stays open.
const REFUSAL_LIFETIME: Duration = Duration::from_secs(5);

/// One request: the peer address and scheme for the application, the body under its
/// deadline, and a 408 instead of whatever the handler made of a body that came too late.
async fn handle(
    router: Router,
    (config, metrics, peer, tls): (Arc<ListenerConfig>, Arc<HttpMetrics>, SocketAddr, bool),
    request: Request<Incoming>,
) -> Result<Response, Infallible> {
    let (mut parts, body) = request.into_parts();
    parts.extensions.insert(ConnectInfo(peer));
    if tls {
        // The scheme as a proxy in front would state it, so the application has one way to
        // know it (cookies get `Secure`); a client cannot claim plain HTTP over TLS.
        parts
            .headers
            .insert("x-forwarded-proto", HeaderValue::from_static("https"));
    }
    let expired = Arc::new(AtomicBool::new(false));
    let body = deadline::DeadlineBody::new(body, config.body_timeout, expired.clone());
    let request = Request::from_parts(parts, Body::new(body));
    let response = router.oneshot(request).await?;
    if !expired.load(Ordering::Relaxed) {
        return Ok(response);
    }
    metrics.reject(BODY_TIMEOUT);
    let mut response = ApiError::BodyTimeout(config.body_timeout.as_secs_f64()).into_response();
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    Ok(response)
}
