//! RFC 6962 / RFC 9162 Merkle tree hashing over SHA-256: leaf and node hashes, tree roots, a
//! compact frontier a store keeps in its log-head row, and inclusion and consistency proofs.
//!
//! Everything here is pure: proofs read leaf hashes through [`LeafSource`], which a store
//! implements over its own rows.

mod frontier;
mod prove;
mod verify;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod vectors;

use sha2::{Digest, Sha256};

pub use frontier::{Frontier, FrontierError};
pub use prove::{LeafSource, ProveError, consistency_proof, inclusion_proof};
pub use verify::{ProofError, verify_consistency, verify_inclusion};

/// A SHA-256 digest: a leaf hash, an interior node hash or a tree root.
pub type Hash = [u8; 32];

/// The RFC 6962 leaf hash: SHA-256(0x00 ‖ data).
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut hasher = LeafHasher::new();
    hasher.0.update(data);
    hasher.finish()
}

/// [`leaf_hash`] of data written in pieces, so the data need not be gathered first.
pub struct LeafHasher(Sha256);

impl LeafHasher {
    /// A leaf hash with nothing written yet.
    pub fn new() -> Self {
        let mut hasher = Sha256::new();
        hasher.update([0x00]);
        LeafHasher(hasher)
    }

    /// The leaf hash of everything written.
    pub fn finish(self) -> Hash {
        self.0.finalize().into()
    }
}

impl Default for LeafHasher {
    fn default() -> Self {
        Self::new()
    }
}

impl std::io::Write for LeafHasher {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0.update(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The RFC 6962 interior node hash: SHA-256(0x01 ‖ left ‖ right).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([0x01]);
    hasher.update(left);
    hasher.update(right);
    hasher.finalize().into()
}

/// The root of the empty tree: SHA-256 of the empty string.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// `MTH(D[n])`: the root of the tree whose leaves have these hashes.
pub fn root_of(leaves: &[Hash]) -> Hash {
    let mut frontier = Frontier::new();
    for leaf in leaves {
        frontier.push(*leaf);
    }
    frontier.root()
}

/// The root of the aligned perfect subtree of `2^levels` leaves that `leaf` completes when it
/// is pushed onto `frontier`, or `None` if it completes none. Before such a push the
/// frontier's size ends in `levels` 1-bits, so its `levels` smallest nodes are the left
/// siblings, from level 0 up, of the path from `leaf` to that subtree's root.
pub fn completed_subtree_root(frontier: &Frontier, leaf: &Hash, levels: u32) -> Option<Hash> {
    let span = 1u64.checked_shl(levels)?;
    if !(frontier.size() + 1).is_multiple_of(span) {
        return None;
    }
    let siblings = frontier.nodes().iter().rev().take(levels as usize);
    Some(siblings.fold(*leaf, |right, left| node_hash(left, &right)))
}

/// The largest power of two strictly below `n`, for `n >= 2`: where RFC 6962 splits a tree
/// of `n` leaves into a perfect left subtree and the rest.
fn split_point(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (63 - (n - 1).leading_zeros())
}
