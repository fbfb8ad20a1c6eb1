//! The Merkle side of the log: head, stored block roots, proofs and checkpoints.
//!
//! Proof construction in the core reads hashes through a synchronous [`LeafSource`], while
//! this store reads asynchronously. The subtrees a proof needs depend only on the sizes, not
//! on hash values, so a proof is built twice: once with a source that records which subtree
//! roots are asked for, then — after reading those roots (whole 256-leaf blocks from
//! `merkle_blocks`, the rest from leaf hashes) — with a source that answers from memory.

use std::cell::RefCell;
use std::collections::HashMap;

use deadpool_postgres::Transaction;
use logvault_core::merkle::{
    Frontier, Hash, LeafSource, ProveError, consistency_proof, inclusion_proof, node_hash, root_of,
};
use logvault_core::{Micros, Scope};
use logvault_store::{LogHead, StoreError, StoreResult, StoredCheckpoint};

use crate::backend;
use crate::sql::{Sql, get, get_u64, hash_from, set_scope, to_i64};

/// Tree levels per stored Merkle block (`merkle_blocks`).
pub(crate) const BLOCK_LEVELS: u32 = 8;
/// Leaves per stored Merkle block.
pub(crate) const BLOCK_LEAVES: u64 = 1 << BLOCK_LEVELS;

pub(crate) async fn log_size(client: &deadpool_postgres::Client) -> StoreResult<u64> {
    let row = client
        .query_one("SELECT size FROM log_head WHERE id = 1", &[])
        .await
        .map_err(backend)?;
    get_u64(&row, 0)
}

async fn head_of(client: &impl tokio_postgres::GenericClient) -> StoreResult<LogHead> {
    let row = client
        .query_one("SELECT frontier FROM log_head WHERE id = 1", &[])
        .await
        .map_err(backend)?;
    let frontier = Frontier::from_bytes(&get::<Vec<u8>>(&row, 0)?)
        .map_err(|e| StoreError::Backend(format!("log_head.frontier is corrupt: {e}")))?;
    Ok(LogHead {
        size: frontier.size(),
        root: frontier.root(),
    })
}

pub(crate) async fn log_head(client: &deadpool_postgres::Client) -> StoreResult<LogHead> {
    head_of(&***client).await
}

/// Records the subtree roots a proof asks for, answering zeros.
#[derive(Default)]
struct Recorder {
    ranges: RefCell<Vec<(u64, u64)>>,
}

impl LeafSource for Recorder {
    type Error = StoreError;

    fn leaf(&self, index: u64) -> StoreResult<Hash> {
        self.subtree_root(index, index + 1)
    }

    fn subtree_root(&self, start: u64, end: u64) -> StoreResult<Hash> {
        self.ranges.borrow_mut().push((start, end));
        Ok([0; 32])
    }
}

/// Answers the recorded subtree roots from memory.
struct Known(HashMap<(u64, u64), Hash>);

impl LeafSource for Known {
    type Error = StoreError;

    fn leaf(&self, index: u64) -> StoreResult<Hash> {
        self.subtree_root(index, index + 1)
    }

    fn subtree_root(&self, start: u64, end: u64) -> StoreResult<Hash> {
        self.0
            .get(&(start, end))
            .copied()
            .ok_or_else(|| StoreError::Backend(format!("subtree {start}..{end} was not read")))
    }
}

/// How a subtree root is computed: stored block roots for aligned full blocks, leaf hashes
/// for the ragged rest.
enum Piece {
    Block(u64),
    Leaves(u64, u64),
}

fn pieces(start: u64, end: u64, out: &mut Vec<Piece>) {
    let n = end - start;
    if n == BLOCK_LEAVES && start.is_multiple_of(BLOCK_LEAVES) {
        out.push(Piece::Block(start / BLOCK_LEAVES));
    } else if n <= BLOCK_LEAVES {
        out.push(Piece::Leaves(start, end));
    } else {
        let split = 1u64 << (63 - (n - 1).leading_zeros());
        pieces(start, start + split, out);
        pieces(start + split, end, out);
    }
}

/// `MTH(D[start:end])` from the blocks and leaves read, mirroring [`pieces`].
fn combine(
    start: u64,
    end: u64,
    blocks: &HashMap<u64, Hash>,
    leaves: &HashMap<u64, Hash>,
) -> StoreResult<Hash> {
    let n = end - start;
    if n == BLOCK_LEAVES && start.is_multiple_of(BLOCK_LEAVES) {
        let block = start / BLOCK_LEAVES;
        return blocks
            .get(&block)
            .copied()
            .ok_or_else(|| StoreError::Backend(format!("merkle block {block} is missing")));
    }
    if n <= BLOCK_LEAVES {
        let hashes = (start..end)
            .map(|index| {
                leaves.get(&index).copied().ok_or_else(|| {
                    StoreError::Backend(format!("leaves {start}..{end} are missing from the log"))
                })
            })
            .collect::<StoreResult<Vec<_>>>()?;
        return Ok(root_of(&hashes));
    }
    let split = 1u64 << (63 - (n - 1).leading_zeros());
    let left = combine(start, start + split, blocks, leaves)?;
    let right = combine(start + split, end, blocks, leaves)?;
    Ok(node_hash(&left, &right))
}

/// Reads the roots of `ranges` (leaf indexes, 0-based) from blocks and leaf hashes.
async fn read_roots(
    transaction: &Transaction<'_>,
    ranges: &[(u64, u64)],
) -> StoreResult<HashMap<(u64, u64), Hash>> {
    let mut needed = Vec::new();
    for (start, end) in ranges {
        pieces(*start, *end, &mut needed);
    }
    let block_ids: Vec<i64> = needed
        .iter()
        .filter_map(|piece| match piece {
            Piece::Block(block) => Some(to_i64(*block)),
            Piece::Leaves(..) => None,
        })
        .collect();
    let mut blocks = HashMap::new();
    if !block_ids.is_empty() {
        let statement = transaction
            .prepare_cached("SELECT block, root FROM merkle_blocks WHERE block = ANY($1)")
            .await
            .map_err(backend)?;
        for row in transaction
            .query(&statement, &[&block_ids])
            .await
            .map_err(backend)?
        {
            blocks.insert(get_u64(&row, 0)?, hash_from(get(&row, 1)?)?);
        }
    }
    let mut leaves = HashMap::new();
    let statement = transaction
        .prepare_cached("SELECT seq, leaf_hash FROM events WHERE seq > $1 AND seq <= $2")
        .await
        .map_err(backend)?;
    for piece in &needed {
        if let Piece::Leaves(start, end) = piece {
            for row in transaction
                .query(&statement, &[&to_i64(*start), &to_i64(*end)])
                .await
                .map_err(backend)?
            {
                leaves.insert(get_u64(&row, 0)? - 1, hash_from(get(&row, 1)?)?);
            }
        }
    }
    ranges
        .iter()
        .map(|&(start, end)| Ok(((start, end), combine(start, end, &blocks, &leaves)?)))
        .collect()
}

/// Builds a proof with `prove`, reading exactly the subtree roots it asks for.
async fn prove(
    transaction: &Transaction<'_>,
    prove: impl Fn(&dyn LeafSource<Error = StoreError>) -> Result<Vec<Hash>, ProveError<StoreError>>,
) -> StoreResult<Vec<Hash>> {
    let recorder = Recorder::default();
    prove(&recorder).map_err(prove_error)?;
    let ranges = recorder.ranges.into_inner();
    let known = Known(read_roots(transaction, &ranges).await?);
    prove(&known).map_err(prove_error)
}

fn prove_error(error: ProveError<StoreError>) -> StoreError {
    match error {
        ProveError::Source(error) => error,
        other => StoreError::Invalid(other.to_string()),
    }
}

async fn check_size(transaction: &Transaction<'_>, tree_size: u64) -> StoreResult<()> {
    let size = head_of(&**transaction).await?.size;
    if tree_size > size {
        return Err(StoreError::Invalid(format!(
            "tree_size {tree_size} is larger than the log ({size})"
        )));
    }
    Ok(())
}

/// `transaction` is scoped to `scope`: the event must be visible there. The proof itself
/// reads every account's leaf hashes (that is what sibling hashes are), so the scope is
/// widened after the visibility check.
pub(crate) async fn inclusion(
    transaction: &Transaction<'_>,
    scope: &Scope,
    seq: u64,
    tree_size: u64,
) -> StoreResult<Option<Vec<Hash>>> {
    let mut sql = Sql::new("SELECT 1 FROM events e WHERE e.seq = ");
    let placeholder = sql.bind(to_i64(seq));
    sql.push(&placeholder);
    sql.scope(scope, "e.account_id");
    if sql.query(transaction).await?.is_empty() {
        return Ok(None);
    }
    set_scope(transaction, &Scope::All).await?;
    check_size(transaction, tree_size).await?;
    if seq == 0 || seq > tree_size {
        return Err(StoreError::Invalid(format!(
            "event {seq} is not in a tree of {tree_size} events"
        )));
    }
    prove(transaction, |source| {
        inclusion_proof(source, seq - 1, tree_size)
    })
    .await
    .map(Some)
}

/// `transaction` must be scoped to all accounts.
pub(crate) async fn consistency(
    transaction: &Transaction<'_>,
    old_size: u64,
    new_size: u64,
) -> StoreResult<Vec<Hash>> {
    check_size(transaction, new_size).await?;
    prove(transaction, |source| {
        consistency_proof(source, old_size, new_size)
    })
    .await
}

pub(crate) async fn blocks(
    client: &deadpool_postgres::Client,
    from_block: u64,
    limit: usize,
) -> StoreResult<Vec<(u64, Hash)>> {
    let statement = client
        .prepare_cached(
            "SELECT block, root FROM merkle_blocks WHERE block >= $1 ORDER BY block LIMIT $2",
        )
        .await
        .map_err(backend)?;
    let rows = client
        .query(
            &statement,
            &[
                &to_i64(from_block),
                &i64::try_from(limit).unwrap_or(i64::MAX),
            ],
        )
        .await
        .map_err(backend)?;
    rows.iter()
        .map(|row| Ok((get_u64(row, 0)?, hash_from(get(row, 1)?)?)))
        .collect()
}

const CHECKPOINT_COLUMNS: &str = "size, root, note, signed_at";

pub(crate) async fn add_checkpoint(
    client: &mut deadpool_postgres::Client,
    new: &StoredCheckpoint,
) -> StoreResult<()> {
    let transaction = client.transaction().await.map_err(backend)?;
    let inserted = transaction
        .execute(
            &format!(
                "INSERT INTO checkpoints ({CHECKPOINT_COLUMNS}) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (size) DO NOTHING"
            ),
            &[
                &to_i64(new.size),
                &&new.root[..],
                &new.note,
                &new.signed_at.0,
            ],
        )
        .await
        .map_err(backend)?;
    if inserted == 0 {
        let row = transaction
            .query_one(
                "SELECT root FROM checkpoints WHERE size = $1",
                &[&to_i64(new.size)],
            )
            .await
            .map_err(backend)?;
        if get::<Vec<u8>>(&row, 0)? != new.root {
            return Err(StoreError::AlreadyExists(format!(
                "a checkpoint with a different root already exists for size {}",
                new.size
            )));
        }
    }
    transaction.commit().await.map_err(backend)
}

pub(crate) async fn checkpoints(
    client: &deadpool_postgres::Client,
    latest_only: bool,
) -> StoreResult<Vec<StoredCheckpoint>> {
    let sql = if latest_only {
        format!("SELECT {CHECKPOINT_COLUMNS} FROM checkpoints ORDER BY size DESC LIMIT 1")
    } else {
        format!("SELECT {CHECKPOINT_COLUMNS} FROM checkpoints ORDER BY size")
    };
    let statement = client.prepare_cached(&sql).await.map_err(backend)?;
    let rows = client.query(&statement, &[]).await.map_err(backend)?;
    rows.iter()
        .map(|row| {
            Ok(StoredCheckpoint {
                size: get_u64(row, 0)?,
                root: hash_from(get(row, 1)?)?,
                note: get(row, 2)?,
                signed_at: Micros(get(row, 3)?),
            })
        })
        .collect()
}
