//! The task behind a [`Client`](crate::Client): it gathers events into batches (by count,
//! bytes and age), sends them one at a time per kind, and retries a batch with the same ids
//! until the service has stored it or `retry_for` has passed.

use std::collections::VecDeque;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::StatusCode;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use tokio::time::sleep;

use crate::transport::Transport;
use crate::{Config, Stats};

/// The two kinds of event, which go to two endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Audit = 0,
    Threat = 1,
}

impl Kind {
    fn path(self) -> &'static str {
        match self {
            Kind::Audit => "/v1/audit-events",
            Kind::Threat => "/v1/threat-events",
        }
    }
}

pub(crate) enum Message {
    Event(Kind, Vec<u8>),
    Flush(oneshot::Sender<()>),
}

/// What the worker and the client handles share.
#[derive(Default)]
pub(crate) struct Shared {
    pub(crate) stats: Stats,
    pub(crate) last_error: Option<String>,
}

#[derive(Default)]
struct Pending {
    events: Vec<Vec<u8>>,
    bytes: usize,
    since: Option<Instant>,
}

const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

pub(crate) async fn run(
    mut messages: mpsc::Receiver<Message>,
    mut transport: Transport,
    config: Config,
    shared: Arc<Mutex<Shared>>,
) {
    let mut pending = [Pending::default(), Pending::default()];
    let kinds = [Kind::Audit, Kind::Threat];
    loop {
        let oldest = pending.iter().filter_map(|p| p.since).min();
        let due = oldest.map(|since| since + config.max_delay);
        let message = tokio::select! {
            message = messages.recv() => message,
            () = sleep_until(due), if due.is_some() => {
                for kind in kinds {
                    let p = &mut pending[kind as usize];
                    if p.since.is_some_and(|since| since.elapsed() >= config.max_delay) {
                        send(kind, p, &mut transport, &config, &shared).await;
                    }
                }
                continue;
            }
        };
        match message {
            Some(Message::Event(kind, json)) => {
                let p = &mut pending[kind as usize];
                if !p.events.is_empty() && p.bytes + json.len() + 1 > config.max_batch_bytes {
                    send(kind, p, &mut transport, &config, &shared).await;
                }
                p.bytes += json.len() + 1;
                p.events.push(json);
                p.since.get_or_insert_with(Instant::now);
                if p.events.len() >= config.max_batch {
                    send(kind, p, &mut transport, &config, &shared).await;
                }
            }
            Some(Message::Flush(done)) => {
                send_all(&mut pending, &mut transport, &config, &shared).await;
                let _ = done.send(());
            }
            None => {
                send_all(&mut pending, &mut transport, &config, &shared).await;
                return;
            }
        }
    }
}

/// Sends what is pending of both kinds.
async fn send_all(
    pending: &mut [Pending; 2],
    transport: &mut Transport,
    config: &Config,
    shared: &Mutex<Shared>,
) {
    for kind in [Kind::Audit, Kind::Threat] {
        send(kind, &mut pending[kind as usize], transport, config, shared).await;
    }
}

async fn sleep_until(due: Option<Instant>) {
    if let Some(due) = due {
        tokio::time::sleep_until(due.into()).await;
    }
}

/// Sends what is pending of `kind`, splitting and retrying as the answers say.
async fn send(
    kind: Kind,
    pending: &mut Pending,
    transport: &mut Transport,
    config: &Config,
    shared: &Mutex<Shared>,
) {
    let events = std::mem::take(&mut pending.events);
    pending.bytes = 0;
    pending.since = None;
    let mut batches = VecDeque::from([events]);
    while let Some(batch) = batches.pop_front() {
        if batch.is_empty() {
            continue;
        }
        let started = Instant::now();
        let mut backoff = FIRST_BACKOFF;
        loop {
            let wait = match transport.post_json(kind.path(), body(&batch)).await {
                Ok(answer) if answer.status.is_success() => {
                    let duplicates = count_duplicates(&answer.body);
                    record(shared, |stats| {
                        stats.sent += batch.len() as u64;
                        stats.duplicates += duplicates;
                    });
                    break;
                }
                Ok(answer)
                    if matches!(
                        answer.status,
                        StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
                    ) =>
                {
                    answer.retry_after.unwrap_or(backoff)
                }
                // Too large, or one event's id already used with other content: halve until
                // the answer is about one event.
                Ok(answer)
                    if matches!(
                        answer.status,
                        StatusCode::PAYLOAD_TOO_LARGE | StatusCode::CONFLICT
                    ) && batch.len() > 1 =>
                {
                    let mut first = batch;
                    let second = first.split_off(first.len() / 2);
                    batches.push_front(second);
                    batches.push_front(first);
                    break;
                }
                Ok(answer) if answer.status == StatusCode::BAD_REQUEST => {
                    let invalid = invalid_indexes(&answer.body);
                    let detail = String::from_utf8_lossy(&answer.body).into_owned();
                    if invalid.is_empty() {
                        give_up(shared, batch.len(), detail, true);
                        break;
                    }
                    let valid: Vec<Vec<u8>> = batch
                        .into_iter()
                        .enumerate()
                        .filter(|(index, _)| !invalid.contains(index))
                        .map(|(_, event)| event)
                        .collect();
                    give_up(shared, invalid.len(), detail, true);
                    batches.push_front(valid);
                    break;
                }
                Ok(answer) if answer.status.is_server_error() => backoff,
                Ok(answer) => {
                    let detail = format!(
                        "{}: {}",
                        answer.status,
                        String::from_utf8_lossy(&answer.body)
                    );
                    let refused = answer.status.is_client_error();
                    give_up(shared, batch.len(), detail, refused);
                    break;
                }
                Err(_) => backoff,
            };
            if started.elapsed() + wait > config.retry_for {
                let detail = format!(
                    "not stored after retrying for {}s",
                    config.retry_for.as_secs()
                );
                give_up(shared, batch.len(), detail, false);
                break;
            }
            record(shared, |stats| stats.retries += 1);
            tracing::debug!(?wait, "logvault ingest: retrying a batch");
            sleep(jitter(wait)).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }
}

fn body(batch: &[Vec<u8>]) -> Bytes {
    let mut body = Vec::with_capacity(batch.iter().map(|e| e.len() + 1).sum::<usize>() + 2);
    body.push(b'[');
    for (index, event) in batch.iter().enumerate() {
        if index > 0 {
            body.push(b',');
        }
        body.extend_from_slice(event);
    }
    body.push(b']');
    Bytes::from(body)
}

fn count_duplicates(answer: &[u8]) -> u64 {
    let answer: Value = serde_json::from_slice(answer).unwrap_or_default();
    let data = answer["data"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    data.iter().filter(|ack| ack["duplicate"] == true).count() as u64
}

/// The events a 400 `invalid-events` problem names (`errors[].index`).
fn invalid_indexes(problem: &[u8]) -> Vec<usize> {
    let problem: Value = serde_json::from_slice(problem).unwrap_or_default();
    let mut indexes: Vec<usize> = problem["errors"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter_map(|error| error["index"].as_u64())
        .map(|index| index as usize)
        .collect();
    indexes.sort_unstable();
    indexes.dedup();
    indexes
}

fn record(shared: &Mutex<Shared>, change: impl FnOnce(&mut Stats)) {
    if let Ok(mut shared) = shared.lock() {
        change(&mut shared.stats);
    }
}

/// `n` events are not stored: `refused` by the service (they would never be), or `failed`.
fn give_up(shared: &Mutex<Shared>, n: usize, detail: String, refused: bool) {
    tracing::warn!(events = n, %detail, "logvault ingest: events not stored");
    if let Ok(mut shared) = shared.lock() {
        if refused {
            shared.stats.rejected += n as u64;
        } else {
            shared.stats.failed += n as u64;
        }
        shared.last_error = Some(detail);
    }
}

/// `wait` plus up to a quarter more, so that many clients do not retry in step.
fn jitter(wait: Duration) -> Duration {
    let random = RandomState::new().build_hasher().finish();
    let extra = wait.as_millis() as u64 / 4;
    wait + Duration::from_millis(if extra == 0 { 0 } else { random % extra })
}
