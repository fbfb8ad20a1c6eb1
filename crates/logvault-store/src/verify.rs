//! `verify`: recompute everything the log promises from what is stored, and report the
//! first divergence. It works through the [`Store`] trait, so every backend is verified by
//! the same code.

use std::collections::HashMap;

use logvault_core::checkpoint::{Checkpoint, VerifierKey, verify_note};
use logvault_core::event::IndexFields;
use logvault_core::merkle::{Frontier, Hash, completed_subtree_root};
use logvault_core::{Micros, Scope};
use serde_json::Value;

use crate::{ScannedEvent, Store, StoreResult, StoredCheckpoint};

/// Events read per scan request.
const CHUNK: usize = 20_000;
/// Levels of a stored Merkle block (256 leaves), as every backend stores them.
const BLOCK_LEVELS: u32 = 8;

/// What to check beyond the stored data itself.
#[derive(Debug, Default)]
pub struct VerifyOptions {
    /// Check every stored checkpoint's signature with this key.
    pub public_key: Option<VerifierKey>,
    /// A checkpoint note saved elsewhere: the log must still contain that tree.
    pub external_checkpoint: Option<String>,
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
    let head = store.log_head().await?;
    let mut report = VerifyReport {
        events: 0,
        checkpoints: 0,
        signatures_checked: options.public_key.is_some(),
        divergence: None,
    };
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

    let mut state = State {
        frontier: Frontier::new(),
        account_seqs: HashMap::new(),
        last_received_at: Micros(i64::MIN),
        expected: expected.into_iter().peekable(),
        blocks: Vec::new(),
        next_block: 0,
    };
    if let Some(divergence) = state.check_expected_roots() {
        report.divergence = Some(divergence);
        return Ok(report);
    }
    // Events committed after the head was read are left for the next run.
    // Reading the next chunk overlaps checking this one, and the per-event checks (hashing,
    // parsing) run on every core; only the frontier and the sequences are walked in order.
    let wanted = |after: u64| (head.size.saturating_sub(after)).min(CHUNK as u64) as usize;
    let mut next_chunk = store.scan(&Scope::All, 0, wanted(0)).await?;
    while !next_chunk.is_empty() {
        let chunk = std::mem::take(&mut next_chunk);
        let after = chunk.last().map_or(0, |last| last.event.seq);
        let checking = tokio::task::spawn_blocking(move || {
            let checks = standalone_checks(&chunk);
            (chunk, checks)
        });
        let reading = async {
            match wanted(after) {
                0 => Ok(Vec::new()),
                n => store.scan(&Scope::All, after, n).await,
            }
        };
        let (checked, read) = tokio::join!(checking, reading);
        let (chunk, checks) = checked
            .map_err(|e| crate::StoreError::Backend(format!("verification task failed: {e}")))?;
        next_chunk = read?;
        let wanted_blocks = (state.frontier.size() + chunk.len() as u64) / 256;
        while (state.next_block + state.blocks.len() as u64) < wanted_blocks {
            let from = state.next_block + state.blocks.len() as u64;
            let more = store.merkle_blocks(from, CHUNK).await?;
            if more.is_empty() {
                break;
            }
            state.blocks.extend(more);
        }
        for (scanned, standalone) in chunk.iter().zip(checks) {
            if let Some(divergence) = state.check(scanned, standalone) {
                report.divergence = Some(divergence);
                report.events = state.frontier.size();
                return Ok(report);
            }
        }
        report.events = state.frontier.size();
        progress(report.events, head.size);
    }
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
    };
    Ok(report)
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

struct State<I: Iterator<Item = ExpectedRoot>> {
    frontier: Frontier,
    account_seqs: HashMap<String, u64>,
    last_received_at: Micros,
    expected: std::iter::Peekable<I>,
    blocks: Vec<(u64, Hash)>,
    next_block: u64,
}

impl<I: Iterator<Item = ExpectedRoot>> State<I> {
    fn check(&mut self, scanned: &ScannedEvent, standalone: Standalone) -> Option<Divergence> {
        let event = &scanned.event;
        let seq = self.frontier.size() + 1;
        if event.seq != seq {
            return diverge(
                Some(seq),
                "seq",
                format!(
                    "expected seq {seq}, found {}: events are missing or out of order",
                    event.seq
                ),
            );
        }
        if !self.account_seqs.contains_key(&event.account_id) {
            self.account_seqs.insert(event.account_id.clone(), 0);
        }
        let last = self.account_seqs.get_mut(&event.account_id)?;
        if event.account_seq != *last + 1 {
            return diverge(
                Some(seq),
                "account_seq",
                format!(
                    "account {} jumps from {} to {}",
                    event.account_id, last, event.account_seq
                ),
            );
        }
        *last = event.account_seq;
        if event.received_at < self.last_received_at {
            return diverge(Some(seq), "received_at", "goes back in time along seq");
        }
        self.last_received_at = event.received_at;
        if !standalone.hash_matches {
            return diverge(
                Some(seq),
                "content",
                "the stored fields no longer hash to the stored leaf_hash (body, ids, times, nonce or leaf_hash changed)",
            );
        }
        match standalone.columns {
            Err(()) => return diverge(Some(seq), "body", "is not a JSON object"),
            Ok(Some(field)) => {
                return diverge(
                    Some(seq),
                    field,
                    "the stored column does not match the event body",
                );
            }
            Ok(None) => {}
        }
        if let Some(root) = completed_subtree_root(&self.frontier, &event.leaf_hash, BLOCK_LEVELS) {
            let block = seq / 256 - 1;
            let stored = self.blocks.iter().position(|(b, _)| *b == block);
            let Some(position) = stored else {
                return diverge(
                    Some(seq),
                    "merkle_blocks",
                    format!("block {block} is missing"),
                );
            };
            let (_, stored_root) = self.blocks.remove(position);
            self.blocks.retain(|(b, _)| *b > block);
            self.next_block = block + 1;
            if stored_root != root {
                return diverge(
                    Some(seq),
                    "leaf_hash",
                    format!("the stored leaf hashes of block {block} do not match its stored root"),
                );
            }
        }
        self.frontier.push(event.leaf_hash);
        self.check_expected_roots()
    }

    fn check_expected_roots(&mut self) -> Option<Divergence> {
        while let Some(expected) = self.expected.next_if(|e| e.size == self.frontier.size()) {
            if self.frontier.root() != expected.root {
                return diverge(
                    Some(expected.size),
                    "checkpoint",
                    format!(
                        "the tree recomputed from storage differs from {}",
                        expected.what
                    ),
                );
            }
        }
        None
    }
}

/// What can be checked of one event on its own, so it runs on every core.
struct Standalone {
    /// The stored fields hash to the stored leaf hash.
    hash_matches: bool,
    /// The first filter column that disagrees with the body, or `Err` if the body is not a
    /// JSON object.
    columns: Result<Option<&'static str>, ()>,
}

fn standalone_check(scanned: &ScannedEvent) -> Standalone {
    let event = &scanned.event;
    let columns = match serde_json::from_str::<Value>(&event.body) {
        Ok(Value::Object(body)) => Ok(index_mismatch(
            &IndexFields::from_body(event.kind, &body),
            &scanned.index,
        )),
        _ => Err(()),
    };
    Standalone {
        hash_matches: event.compute_leaf_hash() == event.leaf_hash,
        columns,
    }
}

/// [`standalone_check`] of every event, split across the machine's cores.
fn standalone_checks(chunk: &[ScannedEvent]) -> Vec<Standalone> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 8);
    let part = chunk.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let workers: Vec<_> = chunk
            .chunks(part)
            .map(|events| {
                scope.spawn(move || events.iter().map(standalone_check).collect::<Vec<_>>())
            })
            .collect();
        // A worker that panicked yields fewer results; the zip in the caller then stops early
        // and the log head check reports the events it did not reach.
        workers
            .into_iter()
            .flat_map(|worker| worker.join().unwrap_or_default())
            .collect()
    })
}

fn index_mismatch(derived: &IndexFields, stored: &IndexFields) -> Option<&'static str> {
    let pairs: [(&'static str, bool); 10] = [
        ("action", derived.action == stored.action),
        ("outcome", derived.outcome == stored.outcome),
        ("actor_id", derived.actor_id == stored.actor_id),
        ("ip", derived.ip == stored.ip),
        ("request_id", derived.request_id == stored.request_id),
        ("error_type", derived.error_type == stored.error_type),
        ("source", derived.source == stored.source),
        ("version", derived.version == stored.version),
        ("environment", derived.environment == stored.environment),
        ("search_text", derived.search_text == stored.search_text),
    ];
    pairs
        .into_iter()
        .find(|(_, equal)| !equal)
        .map(|(name, _)| name)
}
