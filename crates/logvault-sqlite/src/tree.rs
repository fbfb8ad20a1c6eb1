//! The Merkle side of the log: head, stored block roots, proofs and checkpoints.

use logvault_core::merkle::{
    Frontier, Hash, LeafSource, ProveError, consistency_proof, inclusion_proof, root_of,
};
use std::collections::HashMap;

use logvault_core::{Micros, Scope};
use logvault_store::{LogHead, StoreError, StoreResult, StoredCheckpoint};
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};

use crate::backend;
use crate::read::{BLOCK_LEAVES, scope_clause};

pub(crate) fn log_head(connection: &Connection) -> StoreResult<LogHead> {
    let frontier: Vec<u8> = connection
        .query_row("SELECT frontier FROM log_head WHERE id = 1", [], |row| {
            row.get(0)
        })
        .map_err(backend)?;
    let frontier = Frontier::from_bytes(&frontier)
        .map_err(|e| StoreError::Backend(format!("log_head.frontier is corrupt: {e}")))?;
    Ok(LogHead {
        size: frontier.size(),
        root: frontier.root(),
    })
}

fn hash_from(bytes: Vec<u8>) -> StoreResult<Hash> {
    bytes
        .try_into()
        .map_err(|_| StoreError::Backend("a stored hash is not 32 bytes".into()))
}

/// Roots of complete, aligned subtrees larger than a block, computed for earlier proofs. Such
/// a subtree never changes once its last leaf is in the log, so its root can be kept; without
/// them every inclusion proof in a log of 10 M events reads and hashes tens of thousands of
/// block roots (the big subtrees beside the path), 25–35 ms at the 99th percentile.
#[derive(Debug, Default)]
pub(crate) struct SubtreeRoots(std::sync::Mutex<HashMap<(u64, u64), Hash>>);

impl SubtreeRoots {
    /// Roots kept at most; past it the map starts again (a proof needs about 25 of them).
    const MAX: usize = 1 << 16;

    fn get(&self, range: (u64, u64)) -> Option<Hash> {
        self.0.lock().ok()?.get(&range).copied()
    }

    fn keep(&self, range: (u64, u64), root: Hash) {
        if let Ok(mut roots) = self.0.lock() {
            if roots.len() >= Self::MAX {
                roots.clear();
            }
            roots.insert(range, root);
        }
    }
}

/// Leaf hashes read from the events table, with whole 256-leaf blocks read from
/// `merkle_blocks` and larger complete subtrees from `known` once computed: a proof costs
/// about `tree_size / 256` block reads the first time and a few reads after that.
struct TreeSource<'a> {
    connection: &'a Connection,
    known: &'a SubtreeRoots,
}

impl TreeSource<'_> {
    fn leaves(&self, start: u64, end: u64) -> StoreResult<Vec<Hash>> {
        let mut statement = self
            .connection
            .prepare_cached(
                "SELECT leaf_hash FROM events WHERE seq > ?1 AND seq <= ?2 ORDER BY seq",
            )
            .map_err(backend)?;
        let rows = statement
            .query_map(params![start, end], |row| row.get::<_, Vec<u8>>(0))
            .map_err(backend)?;
        let hashes = rows
            .map(|row| row.map_err(backend).and_then(hash_from))
            .collect::<StoreResult<Vec<_>>>()?;
        if hashes.len() as u64 != end - start {
            return Err(StoreError::Backend(format!(
                "leaves {start}..{end} are missing from the log"
            )));
        }
        Ok(hashes)
    }

    fn block(&self, block: u64) -> StoreResult<Hash> {
        let root: Option<Vec<u8>> = self
            .connection
            .prepare_cached("SELECT root FROM merkle_blocks WHERE block = ?1")
            .map_err(backend)?
            .query_row([block], |row| row.get(0))
            .optional()
            .map_err(backend)?;
        match root {
            Some(root) => hash_from(root),
            None => Err(StoreError::Backend(format!(
                "merkle block {block} is missing"
            ))),
        }
    }
}

impl LeafSource for TreeSource<'_> {
    type Error = StoreError;

    fn leaf(&self, index: u64) -> StoreResult<Hash> {
        Ok(self.leaves(index, index + 1)?[0])
    }

    fn subtree_root(&self, start: u64, end: u64) -> StoreResult<Hash> {
        let n = end - start;
        if n == BLOCK_LEAVES && start.is_multiple_of(BLOCK_LEAVES) {
            return self.block(start / BLOCK_LEAVES);
        }
        if n <= BLOCK_LEAVES {
            return Ok(root_of(&self.leaves(start, end)?));
        }
        // Proofs only ask for ranges inside the log, so an aligned power of two is complete.
        let complete = n.is_power_of_two() && start.is_multiple_of(n);
        if let Some(root) = complete.then(|| self.known.get((start, end))).flatten() {
            return Ok(root);
        }
        let split = 1u64 << (63 - (n - 1).leading_zeros());
        let left = self.subtree_root(start, start + split)?;
        let right = self.subtree_root(start + split, end)?;
        let root = logvault_core::merkle::node_hash(&left, &right);
        if complete {
            self.known.keep((start, end), root);
        }
        Ok(root)
    }
}

fn prove_error(error: ProveError<StoreError>) -> StoreError {
    match error {
        ProveError::Source(error) => error,
        other => StoreError::Invalid(other.to_string()),
    }
}

fn check_size(connection: &Connection, tree_size: u64) -> StoreResult<()> {
    let size = log_head(connection)?.size;
    if tree_size > size {
        return Err(StoreError::Invalid(format!(
            "tree_size {tree_size} is larger than the log ({size})"
        )));
    }
    Ok(())
}

pub(crate) fn inclusion(
    connection: &Connection,
    known: &SubtreeRoots,
    scope: &Scope,
    seq: u64,
    tree_size: u64,
) -> StoreResult<Option<Vec<Hash>>> {
    let mut sql = "SELECT 1 FROM events WHERE seq = ?".to_string();
    let mut values = vec![Value::Integer(i64::try_from(seq).unwrap_or(i64::MAX))];
    scope_clause(scope, "account_id", &mut sql, &mut values);
    let visible = connection
        .prepare_cached(&sql)
        .map_err(backend)?
        .exists(params_from_iter(values))
        .map_err(backend)?;
    if !visible {
        return Ok(None);
    }
    check_size(connection, tree_size)?;
    if seq == 0 || seq > tree_size {
        return Err(StoreError::Invalid(format!(
            "event {seq} is not in a tree of {tree_size} events"
        )));
    }
    let source = TreeSource { connection, known };
    inclusion_proof(&source, seq - 1, tree_size)
        .map(Some)
        .map_err(prove_error)
}

pub(crate) fn consistency(
    connection: &Connection,
    known: &SubtreeRoots,
    old_size: u64,
    new_size: u64,
) -> StoreResult<Vec<Hash>> {
    check_size(connection, new_size)?;
    let source = TreeSource { connection, known };
    consistency_proof(&source, old_size, new_size).map_err(prove_error)
}

pub(crate) fn blocks(
    connection: &Connection,
    from_block: u64,
    limit: usize,
) -> StoreResult<Vec<(u64, Hash)>> {
    let mut statement = connection
        .prepare_cached(
            "SELECT block, root FROM merkle_blocks WHERE block >= ?1 ORDER BY block LIMIT ?2",
        )
        .map_err(backend)?;
    let rows = statement
        .query_map(params![from_block, limit as i64], |row| {
            Ok((row.get::<_, u64>(0)?, row.get::<_, Vec<u8>>(1)?))
        })
        .map_err(backend)?;
    rows.map(|row| {
        let (block, root) = row.map_err(backend)?;
        Ok((block, hash_from(root)?))
    })
    .collect()
}

const CHECKPOINT_COLUMNS: &str = "size, root, note, signed_at";

fn checkpoint_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<(u64, Vec<u8>, String, i64)> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
}

fn checkpoint(parts: (u64, Vec<u8>, String, i64)) -> StoreResult<StoredCheckpoint> {
    let (size, root, note, signed_at) = parts;
    Ok(StoredCheckpoint {
        size,
        root: hash_from(root)?,
        note,
        signed_at: Micros(signed_at),
    })
}

pub(crate) fn add_checkpoint(
    connection: &mut Connection,
    new: &StoredCheckpoint,
) -> StoreResult<()> {
    let transaction = connection
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(backend)?;
    let existing: Option<Vec<u8>> = transaction
        .query_row(
            "SELECT root FROM checkpoints WHERE size = ?1",
            [new.size],
            |row| row.get(0),
        )
        .optional()
        .map_err(backend)?;
    match existing {
        Some(root) if root == new.root => return Ok(()),
        Some(_) => {
            return Err(StoreError::AlreadyExists(format!(
                "a checkpoint with a different root already exists for size {}",
                new.size
            )));
        }
        None => {}
    }
    transaction
        .execute(
            &format!("INSERT INTO checkpoints ({CHECKPOINT_COLUMNS}) VALUES (?1, ?2, ?3, ?4)"),
            params![new.size, new.root, new.note, new.signed_at.0],
        )
        .map_err(backend)?;
    transaction.commit().map_err(backend)
}

pub(crate) fn checkpoints(
    connection: &Connection,
    latest_only: bool,
) -> StoreResult<Vec<StoredCheckpoint>> {
    let sql = if latest_only {
        format!("SELECT {CHECKPOINT_COLUMNS} FROM checkpoints ORDER BY size DESC LIMIT 1")
    } else {
        format!("SELECT {CHECKPOINT_COLUMNS} FROM checkpoints ORDER BY size")
    };
    let mut statement = connection.prepare_cached(&sql).map_err(backend)?;
    let rows = statement
        .query_map([], checkpoint_from_row)
        .map_err(backend)?;
    rows.map(|row| checkpoint(row.map_err(backend)?)).collect()
}
