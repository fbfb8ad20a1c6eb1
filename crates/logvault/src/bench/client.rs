//! A keep-alive HTTP/1.1 client for the benchmark: one connection per simulated client.

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::{Method, Request, StatusCode, header};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// One open connection to the server under test.
pub(crate) struct Client {
    sender: SendRequest<Full<Bytes>>,
    host: String,
    authorization: String,
}

impl Client {
    /// Connects to `address`, authenticating every request with `key`.
    pub(crate) async fn connect(address: SocketAddr, key: &str) -> anyhow::Result<Self> {
        let stream = TcpStream::connect(address).await?;
        stream.set_nodelay(true)?;
        let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(connection);
        Ok(Client {
            sender,
            host: address.to_string(),
            authorization: format!("Bearer {key}"),
        })
    }

    /// Sends one request and reads the whole response.
    pub(crate) async fn send(
        &mut self,
        method: Method,
        path: &str,
        body: Option<(&'static str, Bytes)>,
    ) -> anyhow::Result<(StatusCode, Bytes)> {
        self.sender.ready().await?;
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, &self.host)
            .header(header::AUTHORIZATION, &self.authorization);
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
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        Ok((status, body))
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
