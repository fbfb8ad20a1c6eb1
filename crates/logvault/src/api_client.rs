//! A keep-alive HTTP/1.1 client of the service's API, for the benchmark (one connection per
//! simulated client, authenticated with an API key or, for the Logs page, a session cookie)
//! and for the terminal commands `tail` and `export`.

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{HeaderMap, HeaderName};
use hyper::{Method, Request, StatusCode, header};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// One open connection to the server under test.
pub(crate) struct Client {
    sender: SendRequest<Full<Bytes>>,
    host: String,
    /// Sent with every request: `Authorization` or `Cookie`.
    credential: Option<(HeaderName, String)>,
}

impl Client {
    /// Connects to `address`, authenticating every request with `key`.
    pub(crate) async fn connect(address: SocketAddr, key: &str) -> anyhow::Result<Self> {
        let mut client = Self::anonymous(address).await?;
        client.credential = Some((header::AUTHORIZATION, format!("Bearer {key}")));
        Ok(client)
    }

    /// Connects to `address` without credentials.
    pub(crate) async fn anonymous(address: SocketAddr) -> anyhow::Result<Self> {
        let stream = TcpStream::connect(address).await?;
        stream.set_nodelay(true)?;
        let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(connection);
        Ok(Client {
            sender,
            host: address.to_string(),
            credential: None,
        })
    }

    /// From now on, sends `cookie` (`name=value`) with every request instead of a key.
    pub(crate) fn use_cookie(&mut self, cookie: String) {
        self.credential = Some((header::COOKIE, cookie));
    }

    /// Sends one request and reads the whole response.
    pub(crate) async fn send(
        &mut self,
        method: Method,
        path: &str,
        body: Option<(&'static str, Bytes)>,
    ) -> anyhow::Result<(StatusCode, Bytes)> {
        let (status, _, body) = self.exchange(method, path, body).await?;
        Ok((status, body))
    }

    /// Sends one request and returns the status, headers and whole body of the response.
    pub(crate) async fn exchange(
        &mut self,
        method: Method,
        path: &str,
        body: Option<(&'static str, Bytes)>,
    ) -> anyhow::Result<(StatusCode, HeaderMap, Bytes)> {
        self.sender.ready().await?;
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, &self.host);
        if let Some((name, value)) = &self.credential {
            request = request.header(name, value);
        }
        let body = match body {
            Some((content_type, body)) => {
                request = request.header(header::CONTENT_TYPE, content_type);
                body
            }
            None => Bytes::new(),
        };
        let response = self
            .sender
            .send_request(request.body(Full::new(body))?)
            .await?;
        let (parts, body) = response.into_parts();
        let body = body.collect().await?.to_bytes();
        Ok((parts.status, parts.headers, body))
    }

    /// `GET path` whose body is read as it arrives (a live tail), not collected.
    pub(crate) async fn open_stream(
        &mut self,
        path: &str,
    ) -> anyhow::Result<(StatusCode, hyper::body::Incoming)> {
        self.sender.ready().await?;
        let mut request = Request::builder()
            .method(Method::GET)
            .uri(path)
            .header(header::HOST, &self.host);
        if let Some((name, value)) = &self.credential {
            request = request.header(name, value);
        }
        let response = self
            .sender
            .send_request(request.body(Full::new(Bytes::new()))?)
            .await?;
        let (parts, body) = response.into_parts();
        Ok((parts.status, body))
    }

    /// `GET path`, failing unless the answer is 200.
    pub(crate) async fn get_ok(&mut self, path: &str) -> anyhow::Result<Bytes> {
        let (status, body) = self.send(Method::GET, path, None).await?;
        anyhow::ensure!(
            status == StatusCode::OK,
            "GET {path}: {status}: {}",
            String::from_utf8_lossy(&body)
        );
        Ok(body)
    }
}
