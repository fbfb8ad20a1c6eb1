//! The walk in `seq` order: what no event can be checked for alone — the sequences, time
//! order, block roots, the recomputed tree and the checkpoints it must reach.

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::BuildHasherDefault;

use logvault_core::Micros;
use logvault_core::merkle::{Frontier, Hash, completed_subtree_root};

use super::checks::{Checked, PurgedEvent, Retention};
use super::{Divergence, ExpectedRoot, diverge};
use crate::trends::FxHasher;

/// Levels of a stored Merkle block (256 leaves), as every backend stores them.
const BLOCK_LEVELS: u32 = 8;

/// What the walk in `seq` order carries from one event to the next.
pub(super) struct State {
    pub(super) frontier: Frontier,
    account_seqs: HashMap<String, u64, BuildHasherDefault<FxHasher>>,
    last_received_at: Micros,
    pub(super) expected: std::iter::Peekable<std::vec::IntoIter<ExpectedRoot>>,
    pub(super) blocks: VecDeque<(u64, Hash)>,
    pub(super) next_block: u64,
    /// Each account's partner, for holds placed on a partner.
    pub(super) partners: HashMap<String, String>,
    /// Accounts under hold at the current `seq`, replayed from the hold events.
    holds: HashSet<String>,
    /// Events purged so far, by the `seq` of their purge record.
    pub(super) purged: HashMap<u64, u64>,
    /// Events purged by a purge made after verification started.
    pub(super) purged_later: Vec<(PurgedEvent, u64)>,
}

impl State {
    /// Before the first event; `expected` sorted by size.
    pub(super) fn new(expected: Vec<ExpectedRoot>) -> Self {
        State {
            frontier: Frontier::new(),
            account_seqs: HashMap::default(),
            last_received_at: Micros(i64::MIN),
            expected: expected.into_iter().peekable(),
            blocks: VecDeque::new(),
            next_block: 0,
            partners: HashMap::new(),
            holds: HashSet::new(),
            purged: HashMap::new(),
            purged_later: Vec::new(),
        }
    }

    pub(super) fn check(&mut self, event: &Checked) -> Option<Divergence> {
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
        // Look up before inserting: a new account is rare, and `entry` would need an owned key.
        if !self.account_seqs.contains_key(event.account_id.as_str()) {
            self.account_seqs.insert(event.account_id.to_string(), 0);
        }
        let last = self.account_seqs.get_mut(event.account_id.as_str())?;
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
        if !event.hash_matches {
            return diverge(
                Some(seq),
                "content",
                "the stored fields no longer hash to the stored leaf_hash (body, ids, times, nonce or leaf_hash changed)",
            );
        }
        if let Some(problem) = &event.retention_problem {
            return diverge(Some(seq), "retention", problem.clone());
        }
        match event.retention {
            Retention::None => {}
            Retention::Purged(record_seq) => *self.purged.entry(record_seq).or_default() += 1,
            Retention::PurgedLater(record_seq) => self.purged_later.push((
                PurgedEvent {
                    seq,
                    account_id: event.account_id.clone(),
                    kind: event.kind,
                    received_at: event.received_at,
                },
                record_seq,
            )),
            Retention::PurgeRecord => {
                let partner = self.partners.get(&event.account_id);
                if let Some(held) = std::iter::once(&event.account_id)
                    .chain(partner)
                    .find(|id| self.holds.contains(*id))
                {
                    return diverge(
                        Some(seq),
                        "retention",
                        format!("events were purged while {held} was under legal hold"),
                    );
                }
            }
            Retention::Hold(true) => {
                self.holds.insert(event.account_id.clone());
            }
            Retention::Hold(false) => {
                self.holds.remove(&event.account_id);
            }
        }
        match event.columns {
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
            // Blocks come in order; any before this one belong to events already walked.
            while self.blocks.front().is_some_and(|(b, _)| *b < block) {
                self.blocks.pop_front();
            }
            let Some((_, stored_root)) = self.blocks.pop_front().filter(|(b, _)| *b == block)
            else {
                return diverge(
                    Some(seq),
                    "merkle_blocks",
                    format!("block {block} is missing"),
                );
            };
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

    pub(super) fn check_expected_roots(&mut self) -> Option<Divergence> {
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
