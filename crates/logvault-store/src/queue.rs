//! The write path every backend shares: a bounded queue of ingest requests in front of one
//! writer, which takes everything waiting into one transaction (group commit) and answers
//! each request only after that transaction is durable.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use logvault_core::NewEvent;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};

use crate::retention::{PurgeBatch, PurgeRecord, RetentionWrite};
use crate::{IngestOutcome, StoreError, StoreMetrics, StoreResult};

/// One ingest request waiting for the writer.
pub struct WriteJob {
    /// The request's events, in order.
    pub events: Vec<NewEvent>,
    /// A retention change or purge the writer applies after appending `events` (its audit
    /// event), in the same savepoint: both happen or neither does.
    pub retention: Option<RetentionWrite>,
    reply: oneshot::Sender<StoreResult<Vec<IngestOutcome>>>,
    /// Held until the job is answered: it is the job's room in the bounded queue.
    _permit: OwnedSemaphorePermit,
}

/// The sending side: admits requests while there is room, else answers `Overloaded`.
pub struct WriteQueue {
    jobs: mpsc::UnboundedSender<WriteJob>,
    room: Arc<Semaphore>,
    max_queued_events: usize,
    metrics: Arc<StoreMetrics>,
}

impl WriteQueue {
    /// A queue holding at most `max_queued_events` events, and the receiver its writer drains.
    pub fn new(
        max_queued_events: usize,
        metrics: Arc<StoreMetrics>,
    ) -> (Self, mpsc::UnboundedReceiver<WriteJob>) {
        let (jobs, receiver) = mpsc::unbounded_channel();
        let room = Arc::new(Semaphore::new(max_queued_events));
        (
            WriteQueue {
                jobs,
                room,
                max_queued_events,
                metrics,
            },
            receiver,
        )
    }

    /// Queues `events` and waits for the writer's answer.
    pub async fn submit(&self, events: Vec<NewEvent>) -> StoreResult<Vec<IngestOutcome>> {
        self.submit_with(events, None).await
    }

    /// Queues `record`, the audit event of `write`, and `write` itself; answers the record's
    /// outcome once both are committed.
    pub async fn submit_retention(
        &self,
        record: NewEvent,
        write: RetentionWrite,
    ) -> StoreResult<IngestOutcome> {
        let mut outcomes = self.submit_with(vec![record], Some(write)).await?;
        outcomes
            .pop()
            .ok_or_else(|| StoreError::Backend("the writer answered no outcome".into()))
    }

    /// Queues the purge of `batch` with the `retention.purged` event describing it; answers
    /// the stored purge once both are committed.
    pub async fn submit_purge(&self, batch: PurgeBatch) -> StoreResult<PurgeRecord> {
        let record = batch.record();
        let outcome = self
            .submit_retention(record, RetentionWrite::Purge(batch.clone()))
            .await?;
        Ok(PurgeRecord {
            record_seq: outcome.seq,
            batch,
        })
    }

    async fn submit_with(
        &self,
        events: Vec<NewEvent>,
        retention: Option<RetentionWrite>,
    ) -> StoreResult<Vec<IngestOutcome>> {
        let n_events = u32::try_from(events.len().max(1)).unwrap_or(u32::MAX);
        if n_events as usize > self.max_queued_events {
            return Err(StoreError::Overloaded);
        }
        let permit = self
            .room
            .clone()
            .try_acquire_many_owned(n_events)
            .map_err(|_| StoreError::Overloaded)?;
        self.metrics
            .queue_events
            .fetch_add(u64::from(n_events), Ordering::Relaxed);
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(WriteJob {
                events,
                retention,
                reply,
                _permit: permit,
            })
            .map_err(|_| StoreError::Unavailable("the writer has stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Unavailable("the writer stopped before answering".into()))?
    }

    /// Whether the writer has stopped.
    pub fn is_closed(&self) -> bool {
        self.jobs.is_closed()
    }
}

/// `first` and whatever else is already waiting, up to `max_events` events: one batch.
pub fn take_batch(
    first: WriteJob,
    receiver: &mut mpsc::UnboundedReceiver<WriteJob>,
    max_events: usize,
    metrics: &StoreMetrics,
) -> Vec<WriteJob> {
    let mut n_events = first.events.len();
    let mut jobs = vec![first];
    while n_events < max_events {
        match receiver.try_recv() {
            Ok(job) => {
                n_events += job.events.len();
                jobs.push(job);
            }
            Err(_) => break,
        }
    }
    metrics
        .queue_events
        .fetch_sub(n_events as u64, Ordering::Relaxed);
    jobs
}

/// Answers every job of a committed (or failed) batch and records the batch's metrics.
pub fn answer(
    jobs: Vec<WriteJob>,
    results: Vec<StoreResult<Vec<IngestOutcome>>>,
    started: Instant,
    metrics: &StoreMetrics,
) {
    metrics
        .commit_seconds
        .observe(started.elapsed().as_secs_f64());
    let n_events: usize = jobs.iter().map(|job| job.events.len()).sum();
    metrics.batch_events.observe(n_events as f64);
    for (job, result) in jobs.into_iter().zip(results) {
        let _ = job.reply.send(result);
    }
}
