//! `verify`: recompute everything the log promises from what is stored — down to the trend
//! rollup derived from it — and report the first divergence. It works through the [`Store`]
//! trait, so every backend is verified by the same code.

mod checks;
mod rollup;
mod walk;

use logvault_core::Scope;
use logvault_core::checkpoint::{Checkpoint, VerifierKey, verify_note};
use logvault_core::merkle::Hash;

use futures_util::{StreamExt, stream};
use tokio::sync::mpsc;

use std::collections::HashMap;
use std::sync::Arc;

use self::checks::{Checked, Purges, check_purged, standalone_checks};
use self::rollup::DerivedTrends;
use self::walk::State;
use crate::retention::PurgeRecord;
use crate::{ScannedEvent, Store, StoreResult, StoredCheckpoint};

/// Events read per scan request by default.
const CHUNK: usize = 2_048;
/// Scans running at once, each on its own connection. Chunks are read by `seq` position: if
/// events are missing, a chunk runs into the next one and the walk reports the first gap.
const READS_IN_FLIGHT: usize = 2;

/// What to check beyond the stored data itself.
#[derive(Debug, Default)]
pub struct VerifyOptions {
    /// Check every stored checkpoint's signature with this key.
    pub public_key: Option<VerifierKey>,
    /// A checkpoint note saved elsewhere: the log must still contain that tree.
    pub external_checkpoint: Option<String>,
    /// Events per read; `None` for the default. Small chunks put every kind of damage
    /// across chunk boundaries in tests.
    pub chunk_events: Option<usize>,
}

/// The first thing found wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Divergence {
    /// The event where it was found, if it concerns one.
    pub seq: Option<u64>,
    /// The stored field or structure that is wrong.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for Divergence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.seq {
            Some(seq) => write!(f, "seq {seq}, {}: {}", self.field, self.message),
            None => write!(f, "{}: {}", self.field, self.message),
        }
    }
}

/// The outcome of a verification run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Events checked.
    pub events: u64,
    /// Checkpoints whose root (and signature, with a key) was checked.
    pub checkpoints: usize,
    /// Whether signatures were checked.
    pub signatures_checked: bool,
    /// `None` when everything holds.
    pub divergence: Option<Divergence>,
    /// The purges the log records (by policy), checked against the purged events.
    pub purges: Vec<PurgeRecord>,
}

fn diverge(seq: Option<u64>, field: &str, message: impl Into<String>) -> Option<Divergence> {
    Some(Divergence {
        seq,
        field: field.to_string(),
        message: message.into(),
    })
}

/// A root the recomputed tree must match when it reaches `size`.
struct ExpectedRoot {
    size: u64,
    root: Hash,
    what: String,
}

/// Runs every check, calling `progress(events_checked, log_size)` after each chunk.
pub async fn verify_log(
    store: &dyn Store,
    options: &VerifyOptions,
    progress: &mut (dyn FnMut(u64, u64) + Send),
) -> StoreResult<VerifyReport> {
    // The rollup first, then the head: the writers update it in the inserting transaction,
    // so it counts exactly the events up to its own log size, which the walk up to the
    // (later, so no smaller) head then covers while ingest goes on.
    let trend_snapshot = store.trend_snapshot(&Scope::All).await?;
    let head = store.log_head().await?;
    let mut report = VerifyReport {
        events: 0,
        checkpoints: 0,
        signatures_checked: options.public_key.is_some(),
        divergence: None,
        purges: Vec::new(),
    };
    if trend_snapshot.log_size > head.size {
        report.divergence = diverge(
            None,
            "log",
            format!(
                "the log head went back from {} to {} events while verify ran",
                trend_snapshot.log_size, head.size
            ),
        );
        return Ok(report);
    }
    let mut expected = Vec::new();
    let stored_checkpoints = store.checkpoints().await?;
    for checkpoint in &stored_checkpoints {
        if let Some(divergence) = check_stored_checkpoint(checkpoint, options.public_key.as_ref()) {
            report.divergence = Some(divergence);
            return Ok(report);
        }
        expected.push(ExpectedRoot {
            size: checkpoint.size,
            root: checkpoint.root,
            what: format!("stored checkpoint at size {}", checkpoint.size),
        });
    }
    if let Some(note) = &options.external_checkpoint {
        match external(note, options.public_key.as_ref()) {
            Ok(checkpoint) => expected.push(ExpectedRoot {
                size: checkpoint.size,
                root: checkpoint.root,
                what: format!("the saved checkpoint at size {}", checkpoint.size),
            }),
            Err(message) => {
                report.divergence = diverge(None, "checkpoint", message);
                return Ok(report);
            }
        }
    }
    report.checkpoints = expected.len();
    expected.sort_by_key(|e| e.size);
    if let Some(beyond) = expected.iter().find(|e| e.size > head.size) {
        report.divergence = diverge(
            None,
            "log",
            format!(
                "{} covers {} events but the log holds {}: events were removed",
                beyond.what, beyond.size, head.size
            ),
        );
        return Ok(report);
    }

    // Read after the head, so every purge recorded within it is here; a purge made later is
    // checked again at the end.
    let purges: Arc<Purges> = Arc::new(
        store
            .purges(&Scope::All)
            .await?
            .into_iter()
            .filter(|purge| purge.record_seq <= head.size)
            .map(|purge| (purge.record_seq, purge.batch))
            .collect(),
    );
    let mut state = State::new(expected);
    state.partners = store
        .list_accounts(&Scope::All)
        .await?
        .into_iter()
        .filter_map(|account| account.partner_id.map(|partner| (account.id, partner)))
        .collect();
    if let Some(divergence) = state.check_expected_roots() {
        report.divergence = Some(divergence);
        return Ok(report);
    }
    // Events committed after the head was read are left for the next run. Three stages run
    // at once, each a chunk or more ahead of the next: reading (several chunks on several
    // connections), the per-event checks that need no other event (hashing, parsing, trend
    // counts; on every core), and the walk in `seq` order (frontier, sequences, block roots).
    let (read_tx, mut read_rx) = mpsc::channel::<Vec<ScannedEvent>>(4);
    let (checked_tx, checked_rx) = mpsc::channel::<Vec<Checked>>(4);
    let reading = async move {
        let chunk = options.chunk_events.unwrap_or(CHUNK).max(1);
        let mut chunks = stream::iter((0..head.size).step_by(chunk))
            .map(|after| {
                let wanted = (head.size - after).min(chunk as u64) as usize;
                store.scan(&Scope::All, after, wanted)
            })
            .buffered(READS_IN_FLIGHT);
        while let Some(chunk) = chunks.next().await {
            if read_tx.send(chunk?).await.is_err() {
                break; // the walk stopped at a divergence
            }
        }
        StoreResult::Ok(())
    };
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 8);
    let mut derived = DerivedTrends::new(trend_snapshot.log_size);
    let checked_purges = purges.clone();
    let checking = async move {
        while let Some(chunk) = read_rx.recv().await {
            let checked = standalone_checks(chunk, threads, &mut derived, &checked_purges).await?;
            if checked_tx.send(checked).await.is_err() {
                break;
            }
        }
        StoreResult::Ok(derived.total())
    };
    let walking = async {
        // Owned here, so that stopping at a divergence closes the channel and the other
        // stages stop too.
        let mut checked_rx = checked_rx;
        while let Some(chunk) = checked_rx.recv().await {
            let wanted_blocks = (state.frontier.size() + chunk.len() as u64) / 256;
            while (state.next_block + state.blocks.len() as u64) < wanted_blocks {
                let from = state.next_block + state.blocks.len() as u64;
                let more = store.merkle_blocks(from, CHUNK).await?;
                if more.is_empty() {
                    break;
                }
                state.blocks.extend(more);
            }
            let mut walked = std::mem::replace(&mut state, State::new(Vec::new()));
            let (walked, divergence) = tokio::task::spawn_blocking(move || {
                let divergence = chunk.iter().find_map(|event| walked.check(event));
                (walked, divergence)
            })
            .await
            .map_err(task_failed)?;
            state = walked;
            report.events = state.frontier.size();
            if divergence.is_some() {
                return Ok(divergence);
            }
            progress(report.events, head.size);
        }
        StoreResult::Ok(None)
    };
    let (read, checked, walked) = tokio::join!(reading, checking, walking);
    if let Some(divergence) = walked? {
        report.divergence = Some(divergence);
        return Ok(report);
    }
    read?;
    let derived = checked?;
    // Events purged by a purge made while this ran, checked against the purges stored now.
    let late_purge = if state.purged_later.is_empty() {
        None
    } else {
        let now_stored: Purges = store
            .purges(&Scope::All)
            .await?
            .into_iter()
            .map(|purge| (purge.record_seq, purge.batch))
            .collect();
        state.purged_later.iter().find_map(|(event, record_seq)| {
            check_purged(event, *record_seq, &now_stored)
                .and_then(|problem| diverge(Some(event.seq), "retention", problem))
        })
    };
    report.divergence = if state.frontier.size() != head.size {
        diverge(
            Some(state.frontier.size() + 1),
            "seq",
            format!(
                "the log head says {} events but only {} are stored",
                head.size,
                state.frontier.size()
            ),
        )
    } else if state.frontier.root() != head.root {
        diverge(
            None,
            "log_head.frontier",
            "the stored frontier does not match the recomputed tree",
        )
    } else {
        state.expected.next().map(|e| Divergence {
            seq: None,
            field: "checkpoint".into(),
            message: format!("{} was never reached", e.what),
        })
    }
    .or(late_purge)
    .or_else(|| rollup::compare(&trend_snapshot, derived))
    .or_else(|| purge_counts(&purges, &state.purged));
    let mut recorded: Vec<PurgeRecord> = purges
        .iter()
        .map(|(record_seq, batch)| PurgeRecord {
            record_seq: *record_seq,
            batch: batch.clone(),
        })
        .collect();
    recorded.sort_by_key(|purge| purge.record_seq);
    report.purges = recorded;
    Ok(report)
}

/// Every stored purge within the walked log purged exactly the events its record counts.
fn purge_counts(purges: &Purges, purged: &HashMap<u64, u64>) -> Option<Divergence> {
    let mut records: Vec<_> = purges.iter().collect();
    records.sort_by_key(|(record_seq, _)| **record_seq);
    records.into_iter().find_map(|(record_seq, batch)| {
        let found = purged.get(record_seq).copied().unwrap_or_default();
        (found != batch.count).then(|| Divergence {
            seq: Some(*record_seq),
            field: "retention".into(),
            message: format!(
                "the purge recorded here counts {} events but {found} are purged by it",
                batch.count
            ),
        })
    })
}

fn check_stored_checkpoint(
    checkpoint: &StoredCheckpoint,
    key: Option<&VerifierKey>,
) -> Option<Divergence> {
    let parsed = match key {
        Some(key) => verify_note(&checkpoint.note, key)
            .map_err(|e| format!("signature does not verify: {e}")),
        None => checkpoint
            .note
            .split_once("\n\n")
            .ok_or_else(|| "not a signed note".to_string())
            .and_then(|(body, _)| {
                Checkpoint::parse_body(&format!("{body}\n")).map_err(|e| e.to_string())
            }),
    };
    match parsed {
        Err(message) => diverge(
            None,
            "checkpoints.note",
            format!("checkpoint at size {}: {message}", checkpoint.size),
        ),
        Ok(note) if note.size != checkpoint.size || note.root != checkpoint.root => diverge(
            None,
            "checkpoints.root",
            format!(
                "checkpoint at size {}: the stored size or root differs from the signed note",
                checkpoint.size
            ),
        ),
        Ok(_) => None,
    }
}

fn external(note: &str, key: Option<&VerifierKey>) -> Result<Checkpoint, String> {
    let key = key.ok_or("a saved checkpoint can only be trusted with --public-key")?;
    verify_note(note, key).map_err(|e| format!("the saved checkpoint does not verify: {e}"))
}

fn task_failed(error: tokio::task::JoinError) -> crate::StoreError {
    crate::StoreError::Backend(format!("verification task failed: {error}"))
}
