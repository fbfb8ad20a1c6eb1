//! One keep-alive HTTP/1.1 connection to the service, opened when first needed and again
//! after any failure.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::{Method, Request, StatusCode, header};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// How long one request may take, connecting included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// What came back: the status, `Retry-After` in seconds (when given), the body.
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) retry_after: Option<Duration>,
    pub(crate) body: Bytes,
}

pub(crate) struct Transport {
    /// `host:port`.
    authority: String,
    authorization: String,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Transport {
    pub(crate) fn new(authority: String, key: &str) -> Self {
        Transport {
            authority,
            authorization: format!("Bearer {key}"),
            sender: None,
        }
    }

    /// `POST path` with a JSON body; an `Err` means no answer came (nothing is known to be
    /// stored, and the same request may be sent again).
    pub(crate) async fn post_json(&mut self, path: &str, body: Bytes) -> Result<Answer, String> {
        let exchange = self.exchange(path, body);
        match tokio::time::timeout(REQUEST_TIMEOUT, exchange).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(error)) => {
                self.sender = None;
                Err(error)
            }
            Err(_) => {
                self.sender = None;
                Err(format!("no answer within {}s", REQUEST_TIMEOUT.as_secs()))
            }
        }
    }

    async fn exchange(&mut self, path: &str, body: Bytes) -> Result<Answer, String> {
        let sender = match &mut self.sender {
            Some(sender) if !sender.is_closed() => sender,
            _ => self.sender.insert(self.connect().await?),
        };
        sender.ready().await.map_err(|e| e.to_string())?;
        let request = Request::builder()
            .method(Method::POST)
            .uri(path)
            .header(header::HOST, &self.authority)
            .header(header::AUTHORIZATION, &self.authorization)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(body))
            .map_err(|e| e.to_string())?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(header::RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok(Answer {
            status,
            retry_after,
            body,
        })
    }

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, String> {
        let stream = TcpStream::connect(&self.authority)
            .await
            .map_err(|e| format!("connecting to {}: {e}", self.authority))?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        let (sender, connection) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(connection);
        Ok(sender)
    }
}
