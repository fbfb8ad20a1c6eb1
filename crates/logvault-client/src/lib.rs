//! A client for [logvault](https://crates.io/crates/logvault)'s ingest API.
//!
//! Events are typed ([`AuditEvent`], [`ThreatEvent`]) and get their id when they are made, so
//! a retried request stores nothing twice. The client gathers them into batches (up to 500
//! events, 900 KiB, or one second old), keeps at most `buffer` events waiting (sending waits
//! for room; `try_*` refuses instead), and retries a batch until the service has stored it:
//! after `Retry-After` on 429 and 503, with exponential backoff and jitter on other server
//! errors and broken connections, for up to `retry_for` (five minutes by default). Events the
//! service refuses as invalid are dropped and counted, the rest of their batch is sent.
//! [`Client::flush`] waits until everything handed over so far is stored; [`Client::shutdown`]
//! does that and stops. Dropping the client also sends what is buffered, as long as the Tokio
//! runtime keeps running.
//!
//! ```no_run
//! use logvault_client::{AuditEvent, Client, Outcome, Source, ThreatEvent};
//!
//! # async fn example() -> Result<(), logvault_client::Error> {
//! let client = Client::builder("http://127.0.0.1:8080", "lv_…").build()?;
//! client
//!     .audit(AuditEvent::new("user.login", Outcome::Failure, "usr_42")
//!         .reason("bad_password")
//!         .ip("203.0.113.7"))
//!     .await?;
//! client
//!     .threat(ThreatEvent::new(Source::Sdk, "NetworkTimeout", "request timed out after 30s")
//!         .version("ios-sdk 4.2.1")
//!         .environment("production"))
//!     .await?;
//! let stats = client.shutdown().await?;
//! assert_eq!(stats.sent, 2);
//! # Ok(())
//! # }
//! ```
//!
//! Plain HTTP only: for HTTPS, reach the service through a local TLS proxy or sidecar.

pub mod event;
mod transport;
mod worker;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

pub use event::{Actor, Api, AuditEvent, Origin, Outcome, Sdk, Source, ThreatEvent};
use worker::{Kind, Message, Shared};

/// What went wrong.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The service URL is not `http://HOST[:PORT]`.
    #[error("the service URL must look like http://HOST[:PORT], not {0:?}")]
    Url(String),
    /// `try_audit`/`try_threat` found the buffer full.
    #[error("the buffer is full ({0} events wait to be sent)")]
    Full(usize),
    /// The client has stopped.
    #[error("the client has shut down")]
    Closed,
    /// Since the last flush, some events were refused or could not be stored.
    #[error("{rejected} events were refused and {failed} could not be stored; last: {last}")]
    Undelivered {
        /// Refused by the service (invalid, or an id reused with other content).
        rejected: u64,
        /// Not stored after retrying for `retry_for`, or refused for the key.
        failed: u64,
        /// The last problem, as the service or the connection gave it.
        last: String,
    },
    /// An event could not be written as JSON.
    #[error("an event could not be serialized: {0}")]
    Json(#[from] serde_json::Error),
}

/// Counts since the client was made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Events the service has acknowledged (stored durably), duplicates included.
    pub sent: u64,
    /// Of those, events it already had (a retry after a lost answer).
    pub duplicates: u64,
    /// Events the service refused and that will never be stored.
    pub rejected: u64,
    /// Events given up on after `retry_for`, or refused for the key (401, 403).
    pub failed: u64,
    /// Requests sent again.
    pub retries: u64,
}

#[derive(Debug, Clone)]
pub(crate) struct Config {
    max_batch: usize,
    max_batch_bytes: usize,
    max_delay: Duration,
    buffer: usize,
    retry_for: Duration,
}

/// Settings of a [`Client`]; [`Client::builder`] makes one with the defaults.
#[derive(Debug, Clone)]
pub struct Builder {
    url: String,
    key: String,
    config: Config,
}

impl Builder {
    /// Most events in one request (default 500; the service takes up to 1,000).
    pub fn max_batch(mut self, events: usize) -> Self {
        self.config.max_batch = events.clamp(1, 1000);
        self
    }

    /// Largest request body (default 900 KiB; the service takes up to 1 MiB).
    pub fn max_batch_bytes(mut self, bytes: usize) -> Self {
        self.config.max_batch_bytes = bytes.max(1);
        self
    }

    /// The longest an event waits for its batch to fill (default 1 s).
    pub fn max_delay(mut self, delay: Duration) -> Self {
        self.config.max_delay = delay;
        self
    }

    /// Most events waiting to be sent (default 10,000).
    pub fn buffer(mut self, events: usize) -> Self {
        self.config.buffer = events.max(1);
        self
    }

    /// How long a batch is retried before its events count as failed (default 5 min).
    pub fn retry_for(mut self, retry_for: Duration) -> Self {
        self.config.retry_for = retry_for;
        self
    }

    /// Starts the client's task on the current Tokio runtime.
    pub fn build(self) -> Result<Client, Error> {
        let authority = self
            .url
            .strip_prefix("http://")
            .map(|rest| rest.trim_end_matches('/'))
            .filter(|rest| !rest.is_empty() && !rest.contains('/'))
            .ok_or_else(|| Error::Url(self.url.clone()))?;
        let authority = if authority.contains(':') && !authority.ends_with(']') {
            authority.to_string()
        } else {
            format!("{authority}:80")
        };
        let (sender, receiver) = mpsc::channel(self.config.buffer);
        let shared = Arc::new(Mutex::new(Shared::default()));
        let transport = transport::Transport::new(authority, &self.key);
        let worker = tokio::spawn(worker::run(
            receiver,
            transport,
            self.config.clone(),
            shared.clone(),
        ));
        Ok(Client {
            sender,
            shared,
            reported: Mutex::new(Stats::default()),
            worker: Some(worker),
            buffer: self.config.buffer,
        })
    }
}

/// A handle on the batching, retrying sender. Cheap to share behind an `Arc`.
pub struct Client {
    sender: mpsc::Sender<Message>,
    shared: Arc<Mutex<Shared>>,
    /// The counts at the last flush, to tell what went wrong since.
    reported: Mutex<Stats>,
    worker: Option<JoinHandle<()>>,
    buffer: usize,
}

impl Client {
    /// A builder for the service at `url` (`http://HOST:PORT`) with API key `key` (its
    /// permissions must include `ingest`).
    pub fn builder(url: impl Into<String>, key: impl Into<String>) -> Builder {
        Builder {
            url: url.into(),
            key: key.into(),
            config: Config {
                max_batch: 500,
                max_batch_bytes: 900 * 1024,
                max_delay: Duration::from_secs(1),
                buffer: 10_000,
                retry_for: Duration::from_secs(300),
            },
        }
    }

    /// Hands `event` over, waiting while the buffer is full.
    pub async fn audit(&self, event: AuditEvent) -> Result<(), Error> {
        let json = serde_json::to_vec(&event)?;
        self.sender
            .send(Message::Event(Kind::Audit, json))
            .await
            .map_err(|_| Error::Closed)
    }

    /// Hands `event` over, waiting while the buffer is full.
    pub async fn threat(&self, event: ThreatEvent) -> Result<(), Error> {
        let json = serde_json::to_vec(&event)?;
        self.sender
            .send(Message::Event(Kind::Threat, json))
            .await
            .map_err(|_| Error::Closed)
    }

    /// Hands `event` over, or [`Error::Full`] at once when the buffer is full.
    pub fn try_audit(&self, event: AuditEvent) -> Result<(), Error> {
        self.try_send(Kind::Audit, serde_json::to_vec(&event)?)
    }

    /// Hands `event` over, or [`Error::Full`] at once when the buffer is full.
    pub fn try_threat(&self, event: ThreatEvent) -> Result<(), Error> {
        self.try_send(Kind::Threat, serde_json::to_vec(&event)?)
    }

    fn try_send(&self, kind: Kind, json: Vec<u8>) -> Result<(), Error> {
        self.sender
            .try_send(Message::Event(kind, json))
            .map_err(|error| match error {
                mpsc::error::TrySendError::Full(_) => Error::Full(self.buffer),
                mpsc::error::TrySendError::Closed(_) => Error::Closed,
            })
    }

    /// Waits until every event handed over before this call is stored, refused or given up
    /// on; [`Error::Undelivered`] when any was refused or given up on since the last flush.
    pub async fn flush(&self) -> Result<Stats, Error> {
        let (done, flushed) = oneshot::channel();
        self.sender
            .send(Message::Flush(done))
            .await
            .map_err(|_| Error::Closed)?;
        flushed.await.map_err(|_| Error::Closed)?;
        self.check()
    }

    /// The counts so far.
    pub fn stats(&self) -> Stats {
        self.shared
            .lock()
            .map(|shared| shared.stats)
            .unwrap_or_default()
    }

    /// Sends everything buffered, stops the task, and reports as [`Client::flush`] does.
    pub async fn shutdown(mut self) -> Result<Stats, Error> {
        let worker = self.worker.take();
        // Closing the channel tells the task to send what it holds and return.
        let (sender, _) = mpsc::channel(1);
        drop(std::mem::replace(&mut self.sender, sender));
        if let Some(worker) = worker {
            worker.await.map_err(|_| Error::Closed)?;
        }
        self.check()
    }

    fn check(&self) -> Result<Stats, Error> {
        let (stats, last) = self
            .shared
            .lock()
            .map(|shared| (shared.stats, shared.last_error.clone()))
            .unwrap_or_default();
        let Ok(mut reported) = self.reported.lock() else {
            return Ok(stats);
        };
        let rejected = stats.rejected - reported.rejected;
        let failed = stats.failed - reported.failed;
        *reported = stats;
        if rejected > 0 || failed > 0 {
            return Err(Error::Undelivered {
                rejected,
                failed,
                last: last.unwrap_or_default(),
            });
        }
        Ok(stats)
    }
}
