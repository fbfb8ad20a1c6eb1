//! Building inclusion and consistency proofs (RFC 9162 §2.1.3.1 and §2.1.4.1) from leaf
//! hashes read through a [`LeafSource`], so a store never has to load the whole log.

use super::{Frontier, Hash, split_point};

/// Where proofs read leaf hashes from: a store's event rows, or a slice in tests.
///
/// Any `Fn(u64) -> Result<Hash, E>` is a `LeafSource`.
pub trait LeafSource {
    /// What reading a leaf can fail with.
    type Error;

    /// The leaf hash at `index` (0-based, `seq` order).
    fn leaf(&self, index: u64) -> Result<Hash, Self::Error>;

    /// `MTH(D[start:end])` for a subtree of the proof path.
    ///
    /// The default reads every leaf in the range. The sibling subtrees of one proof are
    /// disjoint, so a proof costs up to `tree_size` leaf reads and about as many hashes: fine
    /// for thousands of events, slow for millions. A store that caches interior nodes (for
    /// example the roots of aligned 256-leaf tiles) should override this.
    fn subtree_root(&self, start: u64, end: u64) -> Result<Hash, Self::Error> {
        let mut frontier = Frontier::new();
        for index in start..end {
            frontier.push(self.leaf(index)?);
        }
        Ok(frontier.root())
    }
}

impl<E, F> LeafSource for F
where
    F: Fn(u64) -> Result<Hash, E>,
{
    type Error = E;

    fn leaf(&self, index: u64) -> Result<Hash, E> {
        self(index)
    }
}

/// Why a proof could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProveError<E> {
    /// The leaf is not in a tree of that size.
    #[error("leaf index {index} is outside a tree of size {tree_size}")]
    IndexOutOfRange {
        /// The requested leaf.
        index: u64,
        /// The requested tree size.
        tree_size: u64,
    },
    /// A consistency proof was asked from a larger tree to a smaller one.
    #[error("no consistency proof from size {old_size} to the smaller size {new_size}")]
    SizesOutOfOrder {
        /// The earlier tree size.
        old_size: u64,
        /// The later tree size.
        new_size: u64,
    },
    /// The leaf source failed.
    #[error("reading leaf hashes: {0}")]
    Source(E),
}

/// The audit path of leaf `index` in the tree of `tree_size` leaves: sibling subtree roots,
/// deepest first (RFC 9162 §2.1.3.1 PATH).
pub fn inclusion_proof<S>(
    source: &S,
    index: u64,
    tree_size: u64,
) -> Result<Vec<Hash>, ProveError<S::Error>>
where
    S: LeafSource + ?Sized,
{
    if index >= tree_size {
        return Err(ProveError::IndexOutOfRange { index, tree_size });
    }
    // Walk down from the root, recording the sibling at each level; PATH lists them bottom-up.
    let (mut start, mut end) = (0, tree_size);
    let mut proof = Vec::new();
    while end - start > 1 {
        let middle = start + split_point(end - start);
        if index < middle {
            proof.push(
                source
                    .subtree_root(middle, end)
                    .map_err(ProveError::Source)?,
            );
            end = middle;
        } else {
            proof.push(
                source
                    .subtree_root(start, middle)
                    .map_err(ProveError::Source)?,
            );
            start = middle;
        }
    }
    proof.reverse();
    Ok(proof)
}

/// The proof that the tree of `old_size` leaves is a prefix of the tree of `new_size` leaves
/// (RFC 9162 §2.1.4.1 PROOF). Empty when `old_size` is 0 or equals `new_size`.
pub fn consistency_proof<S>(
    source: &S,
    old_size: u64,
    new_size: u64,
) -> Result<Vec<Hash>, ProveError<S::Error>>
where
    S: LeafSource + ?Sized,
{
    if old_size > new_size {
        return Err(ProveError::SizesOutOfOrder { old_size, new_size });
    }
    if old_size == 0 || old_size == new_size {
        return Ok(Vec::new());
    }
    // SUBPROOF(m, D[start:end], complete), unrolled: each step descends into the subtree that
    // holds the old tree's right edge and records the other side.
    let (mut start, mut end) = (0, new_size);
    let mut old_leaves = old_size;
    let mut complete = true;
    let mut proof = Vec::new();
    loop {
        let n = end - start;
        if old_leaves == n {
            // The verifier already knows this subtree's root only if it is the whole old tree.
            if !complete {
                proof.push(
                    source
                        .subtree_root(start, end)
                        .map_err(ProveError::Source)?,
                );
            }
            break;
        }
        let k = split_point(n);
        if old_leaves <= k {
            proof.push(
                source
                    .subtree_root(start + k, end)
                    .map_err(ProveError::Source)?,
            );
            end = start + k;
        } else {
            proof.push(
                source
                    .subtree_root(start, start + k)
                    .map_err(ProveError::Source)?,
            );
            start += k;
            old_leaves -= k;
            complete = false;
        }
    }
    proof.reverse();
    Ok(proof)
}
