//! One SIEM stream's task: read the log in `seq` order from the stream's cursor through the
//! scoped store read every reader uses, write each batch as framed messages, flush, and only
//! then advance and persist the cursor. Delivery is at least once: what was written but not
//! yet recorded when the process died is sent again after a restart, and every message
//! carries the event id for de-duplication. A stream is a reader like any other (the read
//! pool, no lock the writer takes for long), so a slow or absent collector never holds
//! ingest back; it only grows the stream's lag.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use logvault_core::siem::{cef, ocsf, syslog};
use logvault_core::{Scope, StoredEvent};
use logvault_server::{ServerName, TlsConnector};
use logvault_store::Store;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::{StreamFormat, StreamMetrics, StreamSpec};

/// Most events read and written at once. After a kill -9, at most one batch (the one being
/// written when the process died) is sent again.
const BATCH_EVENTS: usize = 500;

/// How often a stream that has caught up looks for new events.
const POLL: Duration = Duration::from_millis(200);
/// The first and the longest wait before connecting again.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// How often a cursor that only passed other accounts' events is stored.
const SKIPPED_CURSOR_EVERY: Duration = Duration::from_secs(5);
/// A connection or a batch's write that takes longer fails, and the stream reconnects.
const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// A connection to a collector, plain or TLS.
trait Connection: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Connection for T {}

/// A configured stream, ready to run.
pub(super) struct Stream {
    pub(super) spec: StreamSpec,
    pub(super) scope: Scope,
    pub(super) tls: Option<TlsConnector>,
    pub(super) host: String,
    pub(super) metrics: Arc<StreamMetrics>,
}

/// Whether the stream should stop: asked to, or nobody is left to ask.
fn stopping(stop: &watch::Receiver<bool>) -> bool {
    *stop.borrow() || stop.has_changed().is_err()
}

/// Sleeps for `duration` unless asked to stop first.
async fn pause(stop: &mut watch::Receiver<bool>, duration: Duration) {
    tokio::select! {
        _ = tokio::time::sleep(duration) => {}
        _ = stop.changed() => {}
    }
}

impl Stream {
    pub(super) async fn run(self, store: Arc<dyn Store>, mut stop: watch::Receiver<bool>) {
        let name = self.spec.name.clone();
        let mut backoff = BACKOFF_MIN;
        let mut cursor = loop {
            match store.stream_cursor(&name).await {
                Ok(cursor) => break cursor,
                Err(error) => {
                    tracing::warn!(stream = %name, %error, "cannot read the stream's cursor");
                    pause(&mut stop, backoff).await;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
            if stopping(&stop) {
                return;
            }
        };
        self.metrics.cursor.store(cursor, Ordering::Relaxed);
        while !stopping(&stop) {
            let connection = match self.connect().await {
                Ok(connection) => connection,
                Err(error) => {
                    self.metrics.errors.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(stream = %name, address = %self.spec.address, %error,
                        retry_in = ?backoff, "cannot connect to the SIEM collector");
                    pause(&mut stop, backoff).await;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                    continue;
                }
            };
            self.metrics.connected.store(1, Ordering::Relaxed);
            tracing::info!(stream = %name, address = %self.spec.address, cursor,
                "connected to the SIEM collector");
            let result = self
                .deliver(
                    store.as_ref(),
                    connection,
                    &mut cursor,
                    &mut stop,
                    &mut backoff,
                )
                .await;
            self.metrics.connected.store(0, Ordering::Relaxed);
            if let Err(error) = result {
                self.metrics.errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(stream = %name, %error, retry_in = ?backoff,
                    "the SIEM connection failed; reconnecting");
                pause(&mut stop, backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
        tracing::info!(stream = %name, cursor, "SIEM stream stopped");
    }

    async fn connect(&self) -> std::io::Result<Box<dyn Connection>> {
        let tcp = tokio::time::timeout(IO_TIMEOUT, TcpStream::connect(&self.spec.address))
            .await
            .map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out")
            })??;
        tcp.set_nodelay(true)?;
        let Some(connector) = &self.tls else {
            return Ok(Box::new(tcp));
        };
        let name = self.spec.tls_name.clone().unwrap_or_else(|| {
            let host = self
                .spec
                .address
                .rsplit_once(':')
                .map_or(self.spec.address.as_str(), |(host, _)| host);
            host.trim_start_matches('[')
                .trim_end_matches(']')
                .to_string()
        });
        let name = ServerName::try_from(name)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        let tls = tokio::time::timeout(IO_TIMEOUT, connector.connect(name, tcp))
            .await
            .map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::TimedOut, "TLS handshake timed out")
            })??;
        Ok(Box::new(tls))
    }

    /// Sends batches on `connection` until asked to stop (then `Ok`) or the connection
    /// fails (then the error; the cursor is where the last flushed batch left it).
    async fn deliver(
        &self,
        store: &dyn Store,
        connection: Box<dyn Connection>,
        cursor: &mut u64,
        stop: &mut watch::Receiver<bool>,
        backoff: &mut Duration,
    ) -> std::io::Result<()> {
        let name = &self.spec.name;
        let (mut reader, mut writer) = tokio::io::split(connection);
        let mut ignored = [0u8; 512];
        let mut frames = Vec::new();
        let mut last_stored = std::time::Instant::now();
        loop {
            if stopping(stop) {
                let _ = tokio::time::timeout(Duration::from_secs(1), writer.shutdown()).await;
                return Ok(());
            }
            // Every event up to the log's size as read now is committed and visible to the
            // scan that follows (positions are handed out in commit order), so a batch short
            // of the limit is every event of the scope up to that size, and the cursor may
            // pass the other accounts' events after it: a stream of a small account does not
            // read the same stretch of the log again at every poll.
            let batch = match store.log_size().await {
                Ok(size) => match store.scan(&self.scope, *cursor, BATCH_EVENTS).await {
                    Ok(batch) => Ok((size, batch)),
                    Err(error) => Err(error),
                },
                Err(error) => Err(error),
            };
            let (size, batch) = match batch {
                Ok(read) => read,
                Err(error) => {
                    tracing::warn!(stream = %name, %error, "cannot read the log; retrying");
                    pause(stop, POLL).await;
                    continue;
                }
            };
            let complete = batch.len() < BATCH_EVENTS;
            let last_read = batch.last().map_or(*cursor, |last| last.event.seq);
            let upto = if complete {
                size.max(last_read)
            } else {
                last_read
            };
            self.metrics
                .lag
                .store(size.saturating_sub(upto), Ordering::Relaxed);
            let Some(last) = batch.last().map(|scanned| scanned.event.seq) else {
                if upto > *cursor {
                    *cursor = upto;
                    self.metrics.cursor.store(upto, Ordering::Relaxed);
                    // Nothing was sent: storing this is only a shortcut for the next start,
                    // so it is not worth a write at every poll.
                    if last_stored.elapsed() >= SKIPPED_CURSOR_EVERY {
                        self.store_cursor(store, upto).await;
                        last_stored = std::time::Instant::now();
                    }
                }
                // Caught up: wait for new events, noticing meanwhile a collector that hung up.
                tokio::select! {
                    _ = tokio::time::sleep(POLL) => {}
                    _ = stop.changed() => {}
                    read = reader.read(&mut ignored) => match read {
                        Ok(0) => return Err(std::io::Error::new(
                            std::io::ErrorKind::ConnectionAborted,
                            "the collector closed the connection",
                        )),
                        Ok(_) => {}
                        Err(error) => return Err(error),
                    },
                }
                continue;
            };
            frames.clear();
            let mut n_events = 0;
            // A purged event has no payload left to send; the cursor passes it.
            for scanned in batch.iter().filter(|scanned| scanned.purged_by.is_none()) {
                frame(self.spec.format, &scanned.event, &self.host, &mut frames);
                n_events += 1;
            }
            let written = async {
                writer.write_all(&frames).await?;
                writer.flush().await
            };
            tokio::time::timeout(IO_TIMEOUT, written)
                .await
                .map_err(|_| {
                    std::io::Error::new(std::io::ErrorKind::TimedOut, "write timed out")
                })??;
            debug_assert!(upto >= last);
            *cursor = upto;
            *backoff = BACKOFF_MIN;
            self.metrics.sent.fetch_add(n_events, Ordering::Relaxed);
            self.metrics.cursor.store(upto, Ordering::Relaxed);
            self.store_cursor(store, upto).await;
            last_stored = std::time::Instant::now();
        }
    }

    /// Stores the cursor. One that could not be stored is stored with the next batch; until
    /// then a restart would send those events again, which at-least-once allows.
    async fn store_cursor(&self, store: &dyn Store, seq: u64) {
        if let Err(error) = store.set_stream_cursor(&self.spec.name, seq).await {
            tracing::warn!(stream = %self.spec.name, %error, "cannot store the stream's cursor");
        }
    }
}

/// Appends `event` to `out` as one framed message of `format`.
fn frame(format: StreamFormat, event: &StoredEvent, host: &str, out: &mut Vec<u8>) {
    match format {
        StreamFormat::Syslog => out.extend(syslog::octet_counted(&syslog::message(event, host))),
        StreamFormat::Cef => {
            out.extend(cef::syslog_line(event, host).into_bytes());
            out.push(b'\n');
        }
        StreamFormat::Ocsf => {
            out.extend(ocsf::event(event).to_string().into_bytes());
            out.push(b'\n');
        }
    }
}
