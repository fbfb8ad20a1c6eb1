//! The listener over real sockets: a request head or body that trickles in is cut off at its
//! deadline (slowloris), idle connections are closed, connections over the cap get a quick
//! 503, and HTTPS with rustls keeps all of that and marks cookies `Secure`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use hyper_util::rt::TokioIo;
use logvault_server::{ListenerConfig, ServerConfig, TlsAcceptor, tls_acceptor};
use logvault_sqlite::SqliteConfig;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

use crate::support::{Who, World};

/// Short deadlines so the tests are quick; a closed connection must come within
/// [`GRACE`] after its deadline.
const HEADER_TIMEOUT: Duration = Duration::from_millis(800);
const BODY_TIMEOUT: Duration = Duration::from_millis(800);
const GRACE: Duration = Duration::from_millis(1500);

fn listener_config(max_connections: usize, tls: Option<TlsAcceptor>) -> ListenerConfig {
    ListenerConfig {
        header_timeout: HEADER_TIMEOUT,
        body_timeout: BODY_TIMEOUT,
        max_connections,
        tls,
    }
}

async fn serve(listener: ListenerConfig) -> (World, SocketAddr) {
    let config = ServerConfig {
        listener,
        ..ServerConfig::default()
    };
    let world = World::with_configs(SqliteConfig::default(), config, true).await;
    let addr = world.listen().await;
    (world, addr)
}

/// Writes `bytes` one at a time, `every` apart, until done or the peer closes.
async fn trickle<S: AsyncWrite + Unpin + Send>(stream: &mut S, bytes: &[u8], every: Duration) {
    for byte in bytes {
        if stream.write_all(&[*byte]).await.is_err() || stream.flush().await.is_err() {
            return;
        }
        tokio::time::sleep(every).await;
    }
}

/// Reads until the server closes the connection (or 10 s pass); what it sent and when it
/// closed.
async fn read_until_closed<S: AsyncRead + Unpin>(
    stream: &mut S,
    started: Instant,
) -> (String, Duration) {
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    let deadline = started + Duration::from_secs(10);
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => received.extend_from_slice(&buffer[..n]),
            Err(_) => panic!("the server kept the connection open for 10 s"),
        }
    }
    (
        String::from_utf8_lossy(&received).into_owned(),
        started.elapsed(),
    )
}

/// Sends `head` slowly while reading: when did the server close, and what did it say.
async fn trickled<S: AsyncRead + AsyncWrite + Unpin + Send + 'static>(
    stream: S,
    head: &[u8],
) -> (String, Duration) {
    let started = Instant::now();
    let (mut reader, mut writer) = tokio::io::split(stream);
    let head = head.to_vec();
    let writing = tokio::spawn(async move {
        trickle(&mut writer, &head, Duration::from_millis(100)).await;
        // Keep the write half open, as a slow client would.
        tokio::time::sleep(Duration::from_secs(30)).await;
    });
    let outcome = read_until_closed(&mut reader, started).await;
    writing.abort();
    outcome
}

/// How many refusals of `reason` `/metrics` reports.
async fn rejected(world: &World, reason: &str) -> u64 {
    let request = Request::builder()
        .uri("/metrics")
        .body(Body::empty())
        .expect("request");
    let text = world.send_request(request).await.text();
    let prefix = format!("logvault_requests_rejected_total{{reason=\"{reason}\"}} ");
    text.lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .map_or(0, |count| count.trim().parse().expect("a count"))
}

#[track_caller]
fn assert_closed_at(elapsed: Duration, deadline: Duration, what: &str) {
    assert!(
        elapsed >= deadline.mul_f64(0.9) && elapsed <= deadline + GRACE,
        "{what}: closed after {elapsed:?}, deadline {deadline:?}"
    );
}

const SLOW_HEAD: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";

#[tokio::test(flavor = "multi_thread")]
async fn a_request_head_that_trickles_in_is_cut_off() {
    let (world, addr) = serve(listener_config(64, None)).await;
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (answer, elapsed) = trickled(stream, SLOW_HEAD).await;
    assert_closed_at(elapsed, HEADER_TIMEOUT, "slow head");
    assert!(
        !answer.contains("200 OK"),
        "the slow request was served: {answer}"
    );
    assert_eq!(rejected(&world, "header-timeout").await, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_connections_are_closed() {
    let (world, addr) = serve(listener_config(64, None)).await;
    // Never sends anything.
    let started = Instant::now();
    let mut silent = TcpStream::connect(addr).await.expect("connect");
    let (_, elapsed) = read_until_closed(&mut silent, started).await;
    assert_closed_at(elapsed, HEADER_TIMEOUT, "silent connection");
    // Keeps the connection after a complete request and then says nothing.
    let mut kept = TcpStream::connect(addr).await.expect("connect");
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .expect("write");
    let (answer, elapsed) = read_until_closed(&mut kept, Instant::now()).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_closed_at(elapsed, HEADER_TIMEOUT, "idle keep-alive connection");
    // The silent client is a refusal; closing an idle keep-alive connection is not.
    assert_eq!(rejected(&world, "header-timeout").await, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_body_that_trickles_in_gets_408_and_the_connection_closes() {
    let (world, addr) = serve(listener_config(64, None)).await;
    let authorization = world.authorization(Who::MerchantA1).expect("token");
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let head = format!(
        "POST /v1/audit-events HTTP/1.1\r\nHost: localhost\r\nAuthorization: {authorization}\r\n\
         Content-Type: application/json\r\nContent-Length: 200\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.expect("head");
    let body =
        br#"{"action": "user.login", "outcome": "success", "actor": {"id": "u", "type": "user"}}"#;
    let (answer, elapsed) = trickled(stream, body).await;
    assert_closed_at(elapsed, BODY_TIMEOUT, "slow body");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert_eq!(rejected(&world, "body-timeout").await, 1);
    assert!(
        answer.contains("application/problem+json")
            && answer.contains("urn:logvault:problem:body-timeout"),
        "{answer}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn connections_over_the_cap_are_answered_503() {
    let mut listener = listener_config(2, None);
    listener.header_timeout = Duration::from_secs(20);
    let (world, addr) = serve(listener).await;
    let held = [
        TcpStream::connect(addr).await.expect("connect"),
        TcpStream::connect(addr).await.expect("connect"),
    ];
    // Let the server accept both before the third arrives.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut third = TcpStream::connect(addr).await.expect("connect");
    third
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .expect("write");
    let (answer, elapsed) = read_until_closed(&mut third, Instant::now()).await;
    assert!(
        elapsed < Duration::from_secs(2),
        "answered after {elapsed:?}"
    );
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    let lower = answer.to_ascii_lowercase();
    assert!(lower.contains("retry-after: 1"), "{answer}");
    assert!(
        answer.contains("urn:logvault:problem:too-many-connections"),
        "{answer}"
    );
    assert_eq!(rejected(&world, "too-many-connections").await, 1);
    drop(held);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut fourth = TcpStream::connect(addr).await.expect("connect");
    fourth
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let (answer, _) = read_until_closed(&mut fourth, Instant::now()).await;
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "a freed slot serves again: {answer}"
    );
}

/// A self-signed certificate for `localhost`, its PEM files, and a client trusting it.
struct Certificate {
    _dir: tempfile::TempDir,
    cert_file: std::path::PathBuf,
    key_file: std::path::PathBuf,
    connector: TlsConnector,
}

fn certificate() -> Certificate {
    let generated =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("certificate");
    let dir = tempfile::tempdir().expect("temporary directory");
    let (cert_file, key_file) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_file, generated.cert.pem()).expect("write cert");
    std::fs::write(&key_file, generated.signing_key.serialize_pem()).expect("write key");
    let mut roots = RootCertStore::empty();
    roots
        .add(generated.cert.der().clone())
        .expect("trust the certificate");
    let config = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    Certificate {
        _dir: dir,
        cert_file,
        key_file,
        connector: TlsConnector::from(Arc::new(config)),
    }
}

async fn tls_connect(
    certificate: &Certificate,
    addr: SocketAddr,
) -> tokio_rustls::client::TlsStream<TcpStream> {
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let name = ServerName::try_from("localhost").expect("server name");
    certificate
        .connector
        .connect(name, tcp)
        .await
        .expect("TLS handshake")
}

/// `GET uri` over HTTPS with hyper's client; status and headers.
async fn https_get(
    certificate: &Certificate,
    addr: SocketAddr,
    uri: &str,
) -> (StatusCode, axum::http::HeaderMap) {
    let stream = tls_connect(certificate, addr).await;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("HTTP handshake");
    tokio::spawn(connection);
    let request = Request::builder()
        .uri(uri)
        .header(header::HOST, "localhost")
        .body(Body::empty())
        .expect("request");
    let response = sender.send_request(request).await.expect("response");
    (response.status(), response.headers().clone())
}

#[tokio::test(flavor = "multi_thread")]
async fn https_serves_with_secure_cookies_and_keeps_the_deadlines() {
    let certificate = certificate();
    let acceptor = tls_acceptor(&certificate.cert_file, &certificate.key_file).expect("acceptor");
    let (_world, addr) = serve(listener_config(64, Some(acceptor))).await;

    let (status, _) = https_get(&certificate, addr, "/healthz").await;
    assert_eq!(status, StatusCode::OK);
    let (status, headers) = https_get(&certificate, addr, "/login").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        headers
            .get(header::STRICT_TRANSPORT_SECURITY)
            .map(|v| v.as_bytes()),
        Some(&b"max-age=31536000"[..])
    );
    let cookies: Vec<&str> = headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .collect();
    assert!(!cookies.is_empty());
    for cookie in &cookies {
        for attribute in ["; Secure", "; HttpOnly", "; SameSite=Lax"] {
            assert!(
                cookie.contains(attribute),
                "{attribute} missing in {cookie}"
            );
        }
    }

    // Plain HTTP on the TLS port gets no page.
    let mut plain = TcpStream::connect(addr).await.expect("connect");
    plain
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .expect("write");
    let (answer, _) = read_until_closed(&mut plain, Instant::now()).await;
    assert!(!answer.contains("200 OK"), "{answer}");

    // A client that never starts the handshake, and one that trickles its head after it.
    let started = Instant::now();
    let mut silent = TcpStream::connect(addr).await.expect("connect");
    let (_, elapsed) = read_until_closed(&mut silent, started).await;
    assert_closed_at(elapsed, HEADER_TIMEOUT, "silent TLS client");
    let stream = tls_connect(&certificate, addr).await;
    let (answer, elapsed) = trickled(stream, SLOW_HEAD).await;
    assert_closed_at(elapsed, HEADER_TIMEOUT, "slow head over TLS");
    assert!(!answer.contains("200 OK"), "{answer}");
}

#[test]
fn unusable_certificates_are_refused_by_name() {
    let certificate = certificate();
    let dir = tempfile::tempdir().expect("temporary directory");
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "not a certificate\n").expect("write");
    let missing = dir.path().join("missing.pem");
    let cases = [
        (&missing, &certificate.key_file, "missing.pem"),
        (&empty, &certificate.key_file, "empty.pem"),
        (&certificate.cert_file, &empty, "empty.pem"),
        // A key that does not belong to the certificate.
        (&certificate.cert_file, &other_key(dir.path()), "cert.pem"),
    ];
    for (cert_file, key_file, named) in cases {
        let error = tls_acceptor(cert_file, key_file).err().unwrap_or_else(|| {
            panic!(
                "{} with {} was accepted",
                cert_file.display(),
                key_file.display()
            )
        });
        assert!(error.to_string().contains(named), "{error}");
        assert!(!error.to_string().contains("PRIVATE KEY"), "{error}");
    }
}

fn other_key(dir: &std::path::Path) -> std::path::PathBuf {
    let generated =
        rcgen::generate_simple_self_signed(vec!["other".to_string()]).expect("certificate");
    let path = dir.join("other-key.pem");
    std::fs::write(&path, generated.signing_key.serialize_pem()).expect("write key");
    path
}
