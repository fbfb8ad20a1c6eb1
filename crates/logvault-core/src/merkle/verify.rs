//! Checking inclusion and consistency proofs (RFC 9162 §2.1.3.2 and §2.1.4.2). These are the
//! functions an auditor runs offline with nothing but a signed checkpoint and a proof.

use super::{Hash, empty_root, node_hash};

/// Why a proof does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The leaf index is not below the tree size.
    #[error("leaf index {index} is outside a tree of size {tree_size}")]
    IndexOutOfRange {
        /// The claimed leaf index.
        index: u64,
        /// The claimed tree size.
        tree_size: u64,
    },
    /// The old size is larger than the new size.
    #[error("tree size {old_size} cannot precede the smaller size {new_size}")]
    SizesOutOfOrder {
        /// The claimed earlier size.
        old_size: u64,
        /// The claimed later size.
        new_size: u64,
    },
    /// The proof has the wrong number of hashes for the sizes and index given.
    #[error("proof has {actual} hashes, expected {expected}")]
    WrongProofLength {
        /// How many hashes a proof for these sizes has.
        expected: usize,
        /// How many were given.
        actual: usize,
    },
    /// The inclusion proof leads to a different root.
    #[error("inclusion proof does not lead to the given root")]
    RootMismatch,
    /// The consistency proof does not reproduce the old root.
    #[error("consistency proof does not match the old root")]
    OldRootMismatch,
    /// The consistency proof does not reproduce the new root.
    #[error("consistency proof does not match the new root")]
    NewRootMismatch,
}

/// Checks that `leaf` is leaf number `index` of the tree of `tree_size` leaves with `root`.
pub fn verify_inclusion(
    leaf: &Hash,
    index: u64,
    tree_size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    if index >= tree_size {
        return Err(ProofError::IndexOutOfRange { index, tree_size });
    }
    let expected = inclusion_proof_len(index, tree_size);
    if proof.len() != expected {
        return Err(ProofError::WrongProofLength {
            expected,
            actual: proof.len(),
        });
    }
    // RFC 9162 §2.1.3.2, step by step: `first` walks up from the leaf, `last` from the last
    // leaf; where they meet, the path turns right.
    let mut first = index;
    let mut last = tree_size - 1;
    let mut hash = *leaf;
    for sibling in proof {
        if last == 0 {
            return Err(ProofError::WrongProofLength {
                expected,
                actual: proof.len(),
            });
        }
        if first & 1 == 1 || first == last {
            hash = node_hash(sibling, &hash);
            while first & 1 == 0 && first != 0 {
                first >>= 1;
                last >>= 1;
            }
        } else {
            hash = node_hash(&hash, sibling);
        }
        first >>= 1;
        last >>= 1;
    }
    if last != 0 {
        return Err(ProofError::WrongProofLength {
            expected,
            actual: proof.len(),
        });
    }
    if hash != *root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// Checks that the tree of `old_size` leaves with `old_root` is a prefix of the tree of
/// `new_size` leaves with `new_root`.
///
/// Equal sizes need an empty proof and equal roots; from size 0 the proof is empty and the
/// old root must be [`empty_root`].
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if old_size > new_size {
        return Err(ProofError::SizesOutOfOrder { old_size, new_size });
    }
    let expected = consistency_proof_len(old_size, new_size);
    if proof.len() != expected {
        return Err(ProofError::WrongProofLength {
            expected,
            actual: proof.len(),
        });
    }
    if old_size == 0 {
        if *old_root != empty_root() {
            return Err(ProofError::OldRootMismatch);
        }
        return Ok(());
    }
    if old_size == new_size {
        if old_root != new_root {
            return Err(ProofError::NewRootMismatch);
        }
        return Ok(());
    }
    // RFC 9162 §2.1.4.2. When the old tree is a perfect subtree of the new one, its root is
    // the seed; otherwise the proof starts with the seed.
    let (seed, rest) = if old_size.is_power_of_two() {
        (old_root, proof)
    } else {
        match proof.split_first() {
            Some((seed, rest)) => (seed, rest),
            None => {
                return Err(ProofError::WrongProofLength {
                    expected,
                    actual: 0,
                });
            }
        }
    };
    let mut first = old_size - 1;
    let mut last = new_size - 1;
    while first & 1 == 1 {
        first >>= 1;
        last >>= 1;
    }
    let mut old_hash = *seed;
    let mut new_hash = *seed;
    for sibling in rest {
        if last == 0 {
            return Err(ProofError::WrongProofLength {
                expected,
                actual: proof.len(),
            });
        }
        if first & 1 == 1 || first == last {
            old_hash = node_hash(sibling, &old_hash);
            new_hash = node_hash(sibling, &new_hash);
            while first & 1 == 0 && first != 0 {
                first >>= 1;
                last >>= 1;
            }
        } else {
            new_hash = node_hash(&new_hash, sibling);
        }
        first >>= 1;
        last >>= 1;
    }
    if last != 0 {
        return Err(ProofError::WrongProofLength {
            expected,
            actual: proof.len(),
        });
    }
    if old_hash != *old_root {
        return Err(ProofError::OldRootMismatch);
    }
    if new_hash != *new_root {
        return Err(ProofError::NewRootMismatch);
    }
    Ok(())
}

/// Hashes in the inclusion proof of leaf `index < tree_size`: the levels below the point where
/// the paths to `index` and to the last leaf part (`inner`), plus one per left sibling above it
/// (`border`).
fn inclusion_proof_len(index: u64, tree_size: u64) -> usize {
    let inner = bit_len(index ^ (tree_size - 1));
    let border = index.checked_shr(inner).unwrap_or(0).count_ones();
    (inner + border) as usize
}

/// Hashes in the consistency proof from `old_size` to `new_size`, for `old_size <= new_size`:
/// the inclusion proof of the old tree's last perfect subtree in the new tree, plus that
/// subtree's root unless it is the whole old tree.
fn consistency_proof_len(old_size: u64, new_size: u64) -> usize {
    if old_size == 0 || old_size == new_size {
        return 0;
    }
    let level = old_size.trailing_zeros();
    let index = (old_size - 1) >> level;
    let size = ((new_size - 1) >> level) + 1;
    let seed = usize::from(index != 0);
    seed + inclusion_proof_len(index, size)
}

/// The number of bits needed to write `value`.
fn bit_len(value: u64) -> u32 {
    u64::BITS - value.leading_zeros()
}
