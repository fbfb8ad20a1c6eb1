//! The compact frontier of an append-only Merkle tree: the roots of the perfect subtrees that
//! make up the tree at its current size, enough to append a leaf and compute the root in
//! O(log n) without reading any other leaf.

use super::{Hash, empty_root, node_hash};

/// Version byte that starts [`Frontier::to_bytes`], so the stored form can evolve.
const FORMAT_VERSION: u8 = 1;

/// Sizes above this are refused when decoding: stores keep sizes in signed 64-bit columns.
const MAX_SIZE: u64 = i64::MAX as u64;

/// The perfect-subtree roots of a tree of `size` leaves, largest (leftmost) first: one root of
/// 2^k leaves for every bit k set in `size` (the "compact range" `[0, size)`).
///
/// A store keeps the frontier in its log-head row and updates it in the transaction that
/// inserts leaves; writers sharing one log lock that row, push, and write it back.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Frontier {
    size: u64,
    nodes: Vec<Hash>,
}

/// Why bytes are not a valid [`Frontier`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrontierError {
    /// The first byte is not a format version this code knows.
    #[error("unknown frontier format version {0}")]
    UnknownVersion(u8),
    /// The bytes are too short or too long for the size they state.
    #[error("frontier of size {size} needs {expected} bytes, got {actual}")]
    WrongLength {
        /// The tree size stated in the header (0 if the header itself is cut short).
        size: u64,
        /// How many bytes that size needs.
        expected: usize,
        /// How many bytes there were.
        actual: usize,
    },
    /// The stated size is beyond what a store can hold.
    #[error("frontier size {0} is too large")]
    SizeTooLarge(u64),
}

impl Frontier {
    /// The frontier of the empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// The number of leaves in the tree.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The perfect-subtree roots, largest first.
    pub fn nodes(&self) -> &[Hash] {
        &self.nodes
    }

    /// Appends one leaf hash: merges equal-sized subtrees like a binary counter increment,
    /// so the amortized cost is one node hash per leaf.
    pub fn push(&mut self, leaf: Hash) {
        let mut hash = leaf;
        let mut carry = self.size;
        while carry & 1 == 1 {
            let Some(left) = self.nodes.pop() else {
                // Unreachable: there is one node per set bit of `size`.
                break;
            };
            hash = node_hash(&left, &hash);
            carry >>= 1;
        }
        self.nodes.push(hash);
        self.size += 1;
    }

    /// The tree root (RFC 6962 MTH) at the current size; [`empty_root`] when empty.
    pub fn root(&self) -> Hash {
        let mut nodes = self.nodes.iter().rev();
        let Some(last) = nodes.next() else {
            return empty_root();
        };
        nodes.fold(*last, |right, left| node_hash(left, &right))
    }

    /// The stored form: a version byte, the size as 8 big-endian bytes, then the node hashes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(encoded_len(self.size));
        bytes.push(FORMAT_VERSION);
        bytes.extend_from_slice(&self.size.to_be_bytes());
        for node in &self.nodes {
            bytes.extend_from_slice(node);
        }
        bytes
    }

    /// Reads the form [`Frontier::to_bytes`] writes, refusing anything else.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, FrontierError> {
        let Some((&version, rest)) = bytes.split_first() else {
            return Err(FrontierError::WrongLength {
                size: 0,
                expected: encoded_len(0),
                actual: 0,
            });
        };
        if version != FORMAT_VERSION {
            return Err(FrontierError::UnknownVersion(version));
        }
        let Some((size_bytes, hashes)) = rest.split_first_chunk::<8>() else {
            return Err(FrontierError::WrongLength {
                size: 0,
                expected: encoded_len(0),
                actual: bytes.len(),
            });
        };
        let size = u64::from_be_bytes(*size_bytes);
        if size > MAX_SIZE {
            return Err(FrontierError::SizeTooLarge(size));
        }
        let expected = encoded_len(size);
        if bytes.len() != expected {
            return Err(FrontierError::WrongLength {
                size,
                expected,
                actual: bytes.len(),
            });
        }
        let nodes = hashes
            .chunks_exact(32)
            .map(|chunk| {
                let mut node = [0u8; 32];
                node.copy_from_slice(chunk);
                node
            })
            .collect();
        Ok(Self { size, nodes })
    }
}

/// Bytes of the stored form for a tree of `size` leaves.
fn encoded_len(size: u64) -> usize {
    1 + 8 + 32 * size.count_ones() as usize
}
