//! The single writer: it drains every request waiting in the queue into one transaction
//! (group commit), so one fsync acknowledges many requests. Each request runs inside its own
//! savepoint, so a rejected request leaves the others in the batch untouched.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use logvault_core::event::IndexFields;
use logvault_core::merkle::{Frontier, completed_subtree_root};
use logvault_core::{Micros, NewEvent, StoredEvent};
use logvault_store::groups::GroupCounts;
use logvault_store::queue::{WriteJob, answer, take_batch};
use logvault_store::retention::RetentionWrite;
use logvault_store::trends::TrendCounts;
use logvault_store::{IngestOutcome, StoreError, StoreMetrics, StoreResult};
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use tokio::sync::mpsc;

use crate::read::{BLOCK_LEAVES, BLOCK_LEVELS, kind_code};
use crate::{event_id, retention};

/// The log head as the writer advances it inside a transaction.
#[derive(Debug, Clone)]
struct Head {
    size: u64,
    last_received_at: Micros,
    frontier: Frontier,
}

/// Why one job of a batch failed.
enum JobError {
    /// The request is refused; the rest of the batch goes on.
    Rejected(StoreError),
    /// The database failed; the whole batch is rolled back.
    Database(rusqlite::Error),
}

impl From<rusqlite::Error> for JobError {
    fn from(error: rusqlite::Error) -> Self {
        JobError::Database(error)
    }
}

pub(crate) struct Writer {
    connection: Connection,
    max_batch_events: usize,
    metrics: Arc<StoreMetrics>,
}

impl Writer {
    pub(crate) fn new(
        connection: Connection,
        max_batch_events: usize,
        metrics: Arc<StoreMetrics>,
    ) -> Self {
        Writer {
            connection,
            max_batch_events,
            metrics,
        }
    }

    /// Runs until every sender is gone and the queue is empty.
    pub(crate) fn run(mut self, mut receiver: mpsc::UnboundedReceiver<WriteJob>) {
        while let Some(first) = receiver.blocking_recv() {
            let jobs = take_batch(first, &mut receiver, self.max_batch_events, &self.metrics);
            let started = Instant::now();
            let results = match commit(&mut self.connection, &jobs) {
                Ok(results) => results,
                Err(error) => {
                    tracing::error!(%error, n_jobs = jobs.len(), "group commit failed; batch rolled back");
                    let message = error.to_string();
                    jobs.iter()
                        .map(|_| Err(StoreError::Backend(message.clone())))
                        .collect()
                }
            };
            answer(jobs, results, started, &self.metrics);
        }
    }
}

/// Appends every job in one transaction and commits it durably.
fn commit(
    connection: &mut Connection,
    jobs: &[WriteJob],
) -> rusqlite::Result<Vec<StoreResult<Vec<IngestOutcome>>>> {
    let transaction =
        connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let mut head = read_head(&transaction)?;
    let mut account_seqs = AccountSeqs::default();
    let mut trends = TrendCounts::default();
    let mut groups = GroupCounts::default();
    // One clock reading per batch; never behind the last one handed out.
    let now = Micros::now().max(head.last_received_at);
    let mut results = Vec::with_capacity(jobs.len());
    for job in jobs {
        transaction.execute_batch("SAVEPOINT job")?;
        let before = head.clone();
        account_seqs.begin_job();
        let mut job_trends = TrendCounts::default();
        let mut job_groups = GroupCounts::default();
        let appended = append(
            &transaction,
            &job.events,
            &mut head,
            &mut account_seqs,
            (&mut job_trends, &mut job_groups),
            now,
        )
        .and_then(|outcomes| apply_retention(&transaction, job, &outcomes, now).map(|()| outcomes));
        match appended {
            Ok(outcomes) => {
                transaction.execute_batch("RELEASE job")?;
                trends.merge(job_trends);
                groups.merge(job_groups);
                results.push(Ok(outcomes));
            }
            Err(JobError::Rejected(error)) => {
                transaction.execute_batch("ROLLBACK TO job; RELEASE job")?;
                head = before;
                account_seqs.undo_job();
                results.push(Err(error));
            }
            Err(JobError::Database(error)) => return Err(error),
        }
    }
    account_seqs.write(&transaction)?;
    write_trends(&transaction, &trends)?;
    crate::groups::write(&transaction, &groups)?;
    transaction.execute(
        "UPDATE log_head SET size = ?1, last_received_at = ?2, frontier = ?3 WHERE id = 1",
        params![head.size, head.last_received_at.0, head.frontier.to_bytes()],
    )?;
    transaction.commit()?;
    Ok(results)
}

/// Applies the job's retention change or purge, recorded by the event just appended.
fn apply_retention(
    transaction: &Transaction<'_>,
    job: &WriteJob,
    outcomes: &[IngestOutcome],
    now: Micros,
) -> Result<(), JobError> {
    let Some(write) = &job.retention else {
        return Ok(());
    };
    let record_seq = outcomes.last().map_or(0, |outcome| outcome.seq);
    let applied = match write {
        RetentionWrite::Change(change) => retention::change(transaction, change, now),
        RetentionWrite::Purge(batch) => retention::purge(transaction, batch, record_seq),
    };
    applied.map_err(|refused| match refused {
        retention::Refused::Invalid(message) => JobError::Rejected(StoreError::Invalid(message)),
        retention::Refused::Database(error) => JobError::Database(error),
    })
}

/// The last `account_seq` of every account a transaction touches, read once and written back
/// once at commit, with what each account held before the current request so a rejected
/// request leaves no trace.
#[derive(Default)]
struct AccountSeqs {
    last: HashMap<String, u64>,
    before_job: HashMap<String, Option<u64>>,
}

impl AccountSeqs {
    fn begin_job(&mut self) {
        self.before_job.clear();
    }

    fn undo_job(&mut self) {
        for (account, previous) in self.before_job.drain() {
            match previous {
                Some(seq) => self.last.insert(account, seq),
                None => self.last.remove(&account),
            };
        }
    }

    /// Returns the `account_seq` just taken by [`AccountSeqs::next`], unused.
    fn give_back(&mut self, account: &str) {
        if let Some(seq) = self.last.get_mut(account) {
            *seq -= 1;
        }
    }

    /// The next `account_seq` of `account`, or `None` if it does not accept events.
    fn next(
        &mut self,
        transaction: &Transaction<'_>,
        account: &str,
    ) -> rusqlite::Result<Option<u64>> {
        if let Some(seq) = self.last.get_mut(account) {
            if !self.before_job.contains_key(account) {
                self.before_job.insert(account.to_string(), Some(*seq));
            }
            *seq += 1;
            return Ok(Some(*seq));
        }
        let stored: Option<u64> = transaction
            .prepare_cached("SELECT last_account_seq FROM accounts WHERE id = ?1 AND disabled = 0")?
            .query_row([account], |row| row.get(0))
            .optional()?;
        let Some(stored) = stored else {
            return Ok(None);
        };
        self.before_job.insert(account.to_string(), None);
        self.last.insert(account.to_string(), stored + 1);
        Ok(Some(stored + 1))
    }

    fn write(&self, transaction: &Transaction<'_>) -> rusqlite::Result<()> {
        let mut statement = transaction
            .prepare_cached("UPDATE accounts SET last_account_seq = ?2 WHERE id = ?1")?;
        for (account, seq) in &self.last {
            statement.execute(params![account, seq])?;
        }
        Ok(())
    }
}

/// Adds a transaction's trend counts to `event_trends`.
fn write_trends(transaction: &Transaction<'_>, trends: &TrendCounts) -> rusqlite::Result<()> {
    let mut statement = transaction.prepare_cached(
        "INSERT INTO event_trends (dimension, account_id, hour, key, count) VALUES (?1, ?2, ?3, ?4, ?5) \
         ON CONFLICT DO UPDATE SET count = count + excluded.count",
    )?;
    for (dimension, account, hour, key, count) in trends.rows() {
        statement.execute(params![dimension, account, hour, key, count])?;
    }
    Ok(())
}

/// Appends one request's events, or rejects the request as a whole.
fn append(
    transaction: &Transaction<'_>,
    events: &[NewEvent],
    head: &mut Head,
    account_seqs: &mut AccountSeqs,
    (trends, groups): (&mut TrendCounts, &mut GroupCounts),
    now: Micros,
) -> Result<Vec<IngestOutcome>, JobError> {
    let mut nonces = vec![0u8; 16 * events.len()];
    getrandom::fill(&mut nonces)
        .map_err(|e| JobError::Rejected(StoreError::Backend(e.to_string())))?;
    let mut outcomes = Vec::with_capacity(events.len());
    for (index, (event, nonce)) in events.iter().zip(nonces.chunks_exact(16)).enumerate() {
        let account_seq = account_seqs.next(transaction, &event.account_id)?;
        let Some(account_seq) = account_seq else {
            // A retry is still a duplicate after its account stopped accepting events.
            match repeated(transaction, event, index)? {
                Some(outcome) => outcomes.push(outcome),
                None => return Err(JobError::Rejected(StoreError::AccountNotWritable { index })),
            }
            continue;
        };
        let received_at = event
            .demo_received_at
            .map_or(now, |at| at.max(head.last_received_at));
        let stored = event.stored(
            head.size + 1,
            account_seq,
            received_at,
            nonce.try_into().unwrap_or_default(),
        );
        // Only a client's id can repeat (a server-assigned UUIDv7 is new by construction).
        // The unique id index finds a repeat in the insert's own check, so a new event costs
        // no lookup beforehand; a repeat hands its account_seq back and is answered as before.
        match insert_event(transaction, &stored, &event.index) {
            Ok(()) => {}
            Err(error) if event.id_from_client && is_repeated_id(&error) => {
                account_seqs.give_back(&event.account_id);
                match repeated(transaction, event, index)? {
                    Some(outcome) => outcomes.push(outcome),
                    None => return Err(error.into()),
                }
                continue;
            }
            Err(error) => return Err(error.into()),
        }
        head.size += 1;
        head.last_received_at = received_at;
        trends.add(event, received_at);
        groups.add(event, stored.seq, received_at);
        if let Some(root) = completed_subtree_root(&head.frontier, &stored.leaf_hash, BLOCK_LEVELS)
        {
            transaction
                .prepare_cached("INSERT INTO merkle_blocks (block, root) VALUES (?1, ?2)")?
                .execute(params![stored.seq / BLOCK_LEAVES - 1, root])?;
        }
        head.frontier.push(stored.leaf_hash);
        outcomes.push(IngestOutcome::of(&stored, false));
    }
    Ok(outcomes)
}

/// Reads the log head, checking that the frontier agrees with the size.
fn read_head(transaction: &Transaction<'_>) -> rusqlite::Result<Head> {
    let (size, last_received_at, frontier): (u64, i64, Vec<u8>) = transaction.query_row(
        "SELECT size, last_received_at, frontier FROM log_head WHERE id = 1",
        [],
        |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
    )?;
    let frontier = Frontier::from_bytes(&frontier)
        .ok()
        .filter(|frontier| frontier.size() == size)
        .ok_or_else(|| {
            rusqlite::Error::InvalidColumnType(
                2,
                "log_head.frontier does not match size".into(),
                rusqlite::types::Type::Blob,
            )
        })?;
    Ok(Head {
        size,
        last_received_at: Micros(last_received_at),
        frontier,
    })
}

/// Inserts one fully sequenced event row. The filter columns are virtual columns over the
/// body and the text index is kept by the indexer (`crate::search`): only the origin
/// address, in its 16-byte form, is written beside the body.
pub(crate) fn insert_event(
    transaction: &Transaction<'_>,
    stored: &StoredEvent,
    index_fields: &IndexFields,
) -> rusqlite::Result<()> {
    transaction
        .prepare_cached(
            "INSERT INTO events (seq, kind, account_id, account_seq, event_id, received_at, \
             occurred_at, nonce, leaf_hash, ip, body) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        )?
        .execute(params![
            stored.seq,
            kind_code(stored.kind),
            stored.account_id,
            stored.account_seq,
            event_id::to_sql(&stored.event_id),
            stored.received_at.0,
            stored.occurred_at.map(|at| at.0),
            stored.nonce,
            stored.leaf_hash,
            index_fields.ip,
            stored.body,
        ])?;
    Ok(())
}

/// Whether `error` is the unique id index refusing an id already stored for the account.
fn is_repeated_id(error: &rusqlite::Error) -> bool {
    matches!(error, rusqlite::Error::SqliteFailure(failure, Some(message))
        if failure.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
            && message.contains("events.event_id"))
}

/// The answer for an event whose id the account already has: the stored event as a
/// duplicate when it is the same event, an id conflict when it is not; `None` when the id is
/// new.
fn repeated(
    transaction: &Transaction<'_>,
    event: &NewEvent,
    index: usize,
) -> Result<Option<IngestOutcome>, JobError> {
    if !event.id_from_client {
        return Ok(None);
    }
    let Some(existing) = existing(transaction, event)? else {
        return Ok(None);
    };
    if existing.kind != event.kind
        || existing.body != event.body
        || existing.occurred_at != event.occurred_at
    {
        return Err(JobError::Rejected(StoreError::IdConflict {
            index,
            event_id: event.event_id.clone(),
        }));
    }
    Ok(Some(IngestOutcome::of(&existing, true)))
}

fn existing(
    transaction: &Transaction<'_>,
    event: &NewEvent,
) -> rusqlite::Result<Option<StoredEvent>> {
    transaction
        .prepare_cached(&format!(
            "SELECT {} FROM events WHERE event_id = ?1 AND account_id = ?2",
            crate::read::EVENT_COLUMNS
        ))?
        .query_row(
            params![event_id::to_sql(&event.event_id), event.account_id],
            crate::read::event_from_row,
        )
        .optional()
}
