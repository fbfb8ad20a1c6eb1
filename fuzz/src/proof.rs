//! Proof verification: real inclusion and consistency proofs must verify and must stop
//! verifying when any one byte of them (or of the leaf or roots) changes; arbitrary proofs,
//! sizes and indexes must be refused without a panic; stored frontiers must decode or be
//! refused.

use std::convert::Infallible;
use std::sync::OnceLock;

use logvault_core::merkle::{
    Frontier, Hash, consistency_proof, inclusion_proof, leaf_hash, root_of, verify_consistency,
    verify_inclusion,
};

/// Largest tree the real proofs are drawn from: every shape up to four full levels and more.
const MAX_LEAVES: u64 = 70;

/// The leaves, the root of every prefix, and every inclusion proof (`[size][index]`) and
/// consistency proof (`[new size][old size]`) among them, built once so that each execution
/// spends its time verifying.
struct Trees {
    leaves: Vec<Hash>,
    roots: Vec<Hash>,
    inclusion: Vec<Vec<Vec<Hash>>>,
    consistency: Vec<Vec<Vec<Hash>>>,
}

fn trees() -> &'static Trees {
    static TREES: OnceLock<Trees> = OnceLock::new();
    TREES.get_or_init(|| {
        let leaves: Vec<Hash> = (0..MAX_LEAVES)
            .map(|i| leaf_hash(&i.to_be_bytes()))
            .collect();
        let source = |index: u64| Ok::<Hash, Infallible>(leaves[index as usize]);
        let sizes = 0..=MAX_LEAVES;
        Trees {
            roots: sizes
                .clone()
                .map(|n| root_of(&leaves[..n as usize]))
                .collect(),
            inclusion: sizes
                .clone()
                .map(|n| {
                    (0..n)
                        .map(|i| inclusion_proof(&source, i, n).expect("index below size"))
                        .collect()
                })
                .collect(),
            consistency: sizes
                .map(|n| {
                    (0..=n)
                        .map(|m| consistency_proof(&source, m, n).expect("sizes in order"))
                        .collect()
                })
                .collect(),
            leaves,
        }
    })
}

/// Mode (mod 5): real inclusion proof, real consistency proof, arbitrary inclusion proof,
/// arbitrary consistency proof, frontier bytes.
pub fn run(data: &[u8]) {
    let Some((mode, rest)) = crate::split_mode(data) else {
        return;
    };
    match mode % 5 {
        0 => real_inclusion(rest),
        1 => real_consistency(rest),
        2 => arbitrary_inclusion(rest),
        3 => arbitrary_consistency(rest),
        _ => {
            if let Ok(frontier) = Frontier::from_bytes(rest) {
                assert_eq!(frontier.to_bytes(), rest, "one encoding per frontier");
                assert_eq!(
                    frontier.nodes().len(),
                    frontier.size().count_ones() as usize
                );
            }
        }
    }
}

/// `[a][b][position: 2 bytes][xor]`.
fn parts(data: &[u8]) -> Option<(u64, u64, usize, u8)> {
    let [a, b, p0, p1, xor, ..] = *data else {
        return None;
    };
    Some((
        u64::from(a),
        u64::from(b),
        usize::from(u16::from_le_bytes([p0, p1])),
        xor,
    ))
}

fn flip(hashes: &mut [Hash], position: usize, xor: u8) {
    let at = position % (hashes.len() * 32);
    hashes[at / 32][at % 32] ^= xor;
}

fn real_inclusion(data: &[u8]) {
    let Some((a, b, position, xor)) = parts(data) else {
        return;
    };
    let tree_size = a % MAX_LEAVES + 1;
    let index = b % tree_size;
    let trees = trees();
    let root = trees.roots[tree_size as usize];
    let mut proof = trees.inclusion[tree_size as usize][index as usize].clone();
    let mut leaf_hash = trees.leaves[index as usize];
    assert_eq!(
        verify_inclusion(&leaf_hash, index, tree_size, &proof, &root),
        Ok(())
    );
    if xor == 0 {
        // Any other index or size with the same proof must fail.
        let other = (index + 1 + u64::from(data.get(5).copied().unwrap_or(0))) % tree_size;
        if other != index {
            assert!(verify_inclusion(&leaf_hash, other, tree_size, &proof, &root).is_err());
        }
        return;
    }
    let mut root = root;
    // The leaf, the proof's hashes and the root, as one run of bytes.
    let mut all = vec![leaf_hash];
    all.append(&mut proof);
    all.push(root);
    flip(&mut all, position, xor);
    root = all.pop().expect("root");
    leaf_hash = all.remove(0);
    assert!(
        verify_inclusion(&leaf_hash, index, tree_size, &all, &root).is_err(),
        "a changed inclusion proof verified: index {index}, size {tree_size}"
    );
}

fn real_consistency(data: &[u8]) {
    let Some((a, b, position, xor)) = parts(data) else {
        return;
    };
    let new_size = a % MAX_LEAVES + 1;
    let old_size = b % (new_size + 1);
    let trees = trees();
    let old_root = trees.roots[old_size as usize];
    let new_root = trees.roots[new_size as usize];
    let proof = &trees.consistency[new_size as usize][old_size as usize];
    assert_eq!(
        verify_consistency(old_size, new_size, &old_root, &new_root, proof),
        Ok(())
    );
    if xor == 0 {
        return;
    }
    let mut all = vec![old_root];
    all.extend_from_slice(proof);
    all.push(new_root);
    // Every tree extends the empty one: from size 0 only the old root is checked.
    let position = if old_size == 0 {
        position % 32
    } else {
        position
    };
    flip(&mut all, position, xor);
    let new_root = all.pop().expect("new root");
    let old_root = all.remove(0);
    assert!(
        verify_consistency(old_size, new_size, &old_root, &new_root, &all).is_err(),
        "a changed consistency proof verified: {old_size} -> {new_size}"
    );
}

/// `[index: 8][size: 8][leaf: 32][root: 32][proof hashes…]`, sizes as given (any u64).
fn arbitrary_inclusion(data: &[u8]) {
    let Some((head, rest)) = data.split_first_chunk::<80>() else {
        return;
    };
    let index = u64::from_le_bytes(head[0..8].try_into().expect("8"));
    let tree_size = u64::from_le_bytes(head[8..16].try_into().expect("8"));
    let leaf: Hash = head[16..48].try_into().expect("32");
    let root: Hash = head[48..80].try_into().expect("32");
    let proof = hashes(rest);
    let _ = verify_inclusion(&leaf, index, tree_size, &proof, &root);
}

/// `[old: 8][new: 8][old root: 32][new root: 32][proof hashes…]`.
fn arbitrary_consistency(data: &[u8]) {
    let Some((head, rest)) = data.split_first_chunk::<80>() else {
        return;
    };
    let old_size = u64::from_le_bytes(head[0..8].try_into().expect("8"));
    let new_size = u64::from_le_bytes(head[8..16].try_into().expect("8"));
    let old_root: Hash = head[16..48].try_into().expect("32");
    let new_root: Hash = head[48..80].try_into().expect("32");
    let proof = hashes(rest);
    let _ = verify_consistency(old_size, new_size, &old_root, &new_root, &proof);
}

fn hashes(bytes: &[u8]) -> Vec<Hash> {
    bytes
        .chunks_exact(32)
        .map(|chunk| chunk.try_into().expect("32"))
        .collect()
}
