//! Property tests: for every tree size up to 128, every inclusion and consistency proof checks
//! out against roots recomputed naively from the RFC definition, and every corruption of a
//! proof, root, leaf, index or size is refused.

use super::*;

/// The largest tree the exhaustive loops cover.
const MAX_SIZE: u64 = 128;

/// Up to this size every bit of every hash is flipped; above it, a few bits per hash (each bit
/// is equally mixed by SHA-256, and flipping all 256 everywhere costs minutes in debug builds).
const ALL_BITS_UP_TO: u64 = 8;

/// MTH straight from RFC 9162 §2.1.1, by recursion on slices.
fn naive_root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => empty_root(),
        1 => leaves[0],
        n => {
            let mut k = 1;
            while k * 2 < n {
                k *= 2;
            }
            node_hash(&naive_root(&leaves[..k]), &naive_root(&leaves[k..]))
        }
    }
}

struct Fixture {
    leaves: Vec<Hash>,
    /// `roots[n]` is the naive root of the first `n` leaves.
    roots: Vec<Hash>,
}

impl Fixture {
    fn new() -> Self {
        let leaves: Vec<Hash> = (0..2 * MAX_SIZE)
            .map(|i| leaf_hash(&i.to_be_bytes()))
            .collect();
        let roots = (0..=leaves.len())
            .map(|n| naive_root(&leaves[..n]))
            .collect();
        Self { leaves, roots }
    }

    fn leaf(&self, index: u64) -> Hash {
        self.leaves[index as usize]
    }

    fn root(&self, size: u64) -> Hash {
        self.roots[size as usize]
    }

    fn source(&self) -> impl Fn(u64) -> Result<Hash, String> + '_ {
        |index| {
            let slot = usize::try_from(index).map_err(|e| e.to_string())?;
            self.leaves
                .get(slot)
                .copied()
                .ok_or_else(|| format!("no leaf {index}"))
        }
    }

    fn inclusion(&self, index: u64, size: u64) -> Vec<Hash> {
        inclusion_proof(&self.source(), index, size).expect("inclusion proof")
    }

    fn consistency(&self, old_size: u64, new_size: u64) -> Vec<Hash> {
        consistency_proof(&self.source(), old_size, new_size).expect("consistency proof")
    }
}

/// Copies of `hash` with one bit flipped: every bit for small trees, three spread-out bits
/// (varying with `salt`) otherwise.
fn bit_flips(hash: &Hash, size: u64, salt: u64) -> Vec<Hash> {
    let bits: Vec<u64> = if size <= ALL_BITS_UP_TO {
        (0..256).collect()
    } else {
        vec![salt % 256, (salt * 7 + 85) % 256, (salt * 13 + 170) % 256]
    };
    bits.into_iter()
        .map(|bit| {
            let mut flipped = *hash;
            flipped[(bit / 8) as usize] ^= 1 << (bit % 8);
            flipped
        })
        .collect()
}

#[test]
fn every_inclusion_proof_verifies_and_every_corruption_is_refused() {
    let fixture = Fixture::new();
    let mut n_refused_claims = 0;
    for size in 1..=MAX_SIZE {
        let root = fixture.root(size);
        for index in 0..size {
            let leaf = fixture.leaf(index);
            let proof = fixture.inclusion(index, size);
            let verdict = verify_inclusion(&leaf, index, size, &proof, &root);
            assert_eq!(verdict, Ok(()), "leaf {index} in {size}");
            let salt = size * 131 + index;

            for (position, hash) in proof.iter().enumerate() {
                for flipped in bit_flips(hash, size, salt + position as u64) {
                    let mut wrong = proof.clone();
                    wrong[position] = flipped;
                    let verdict = verify_inclusion(&leaf, index, size, &wrong, &root);
                    assert!(
                        verdict.is_err(),
                        "proof[{position}] flip, {index} in {size}"
                    );
                }
            }
            for flipped in bit_flips(&root, size, salt) {
                let verdict = verify_inclusion(&leaf, index, size, &proof, &flipped);
                assert!(verdict.is_err(), "root flip, {index} in {size}");
            }
            for flipped in bit_flips(&leaf, size, salt) {
                let verdict = verify_inclusion(&flipped, index, size, &proof, &root);
                assert!(verdict.is_err(), "leaf flip, {index} in {size}");
            }

            let mut longer = proof.clone();
            longer.push(root);
            assert!(verify_inclusion(&leaf, index, size, &longer, &root).is_err());
            if let Some((_, shorter)) = proof.split_last() {
                assert!(verify_inclusion(&leaf, index, size, shorter, &root).is_err());
            }

            // A claim about another index or size, checked against that size's true root, may
            // pass only if this very proof is also the honest proof for it (honest proofs all
            // pass: that is the loop's first check).
            let other_indices = [index.wrapping_sub(1), index + 1, index ^ 1, index ^ 2, size];
            let other_sizes = [size - 1, size + 1, size * 2, size / 2];
            let claims = other_indices
                .iter()
                .map(|&other| (other, size))
                .chain(other_sizes.iter().map(|&other| (index, other)));
            for (claimed_index, claimed_size) in claims {
                if (claimed_index, claimed_size) == (index, size) {
                    continue;
                }
                let claimed_root = fixture.root(claimed_size);
                let verdict =
                    verify_inclusion(&leaf, claimed_index, claimed_size, &proof, &claimed_root);
                if verdict.is_err() {
                    n_refused_claims += 1;
                    continue;
                }
                let honest = claimed_index < claimed_size
                    && fixture.leaf(claimed_index) == leaf
                    && fixture.inclusion(claimed_index, claimed_size) == proof;
                assert!(
                    honest,
                    "leaf {index} in {size} accepted as {claimed_index} in {claimed_size}"
                );
            }
        }
    }
    assert!(
        n_refused_claims > 10_000,
        "only {n_refused_claims} wrong claims tried"
    );
}

#[test]
fn every_consistency_proof_verifies_and_every_corruption_is_refused() {
    let fixture = Fixture::new();
    let mut n_refused_claims = 0;
    for new_size in 1..=MAX_SIZE {
        let new_root = fixture.root(new_size);
        for old_size in 0..=new_size {
            let old_root = fixture.root(old_size);
            let proof = fixture.consistency(old_size, new_size);
            let verdict = verify_consistency(old_size, new_size, &old_root, &new_root, &proof);
            assert_eq!(verdict, Ok(()), "{old_size} to {new_size}");
            let salt = new_size * 131 + old_size;

            for (position, hash) in proof.iter().enumerate() {
                for flipped in bit_flips(hash, new_size, salt + position as u64) {
                    let mut wrong = proof.clone();
                    wrong[position] = flipped;
                    let verdict =
                        verify_consistency(old_size, new_size, &old_root, &new_root, &wrong);
                    assert!(
                        verdict.is_err(),
                        "proof[{position}], {old_size} to {new_size}"
                    );
                }
            }
            for flipped in bit_flips(&old_root, new_size, salt) {
                let verdict = verify_consistency(old_size, new_size, &flipped, &new_root, &proof);
                assert!(verdict.is_err(), "old root flip, {old_size} to {new_size}");
            }
            for flipped in bit_flips(&new_root, new_size, salt) {
                let verdict = verify_consistency(old_size, new_size, &old_root, &flipped, &proof);
                // From the empty tree every new root is consistent: nothing to contradict.
                assert_eq!(verdict.is_err(), old_size > 0, "new root flip");
            }

            let mut longer = proof.clone();
            longer.push(new_root);
            assert!(verify_consistency(old_size, new_size, &old_root, &new_root, &longer).is_err());
            if let Some((_, shorter)) = proof.split_last() {
                let verdict = verify_consistency(old_size, new_size, &old_root, &new_root, shorter);
                assert!(verdict.is_err(), "truncated, {old_size} to {new_size}");
            }

            // Claims about other sizes, with those sizes' true roots, may pass only if this
            // very proof is also the honest proof for them.
            let claims = [
                (old_size.wrapping_sub(1), new_size),
                (old_size + 1, new_size),
                (old_size ^ 2, new_size),
                (old_size, new_size + 1),
                (old_size, new_size - 1),
                (old_size, new_size * 2),
                (new_size, old_size),
            ];
            for (claimed_old, claimed_new) in claims {
                if (claimed_old, claimed_new) == (old_size, new_size) {
                    continue;
                }
                let in_fixture = |size: u64| size <= 2 * MAX_SIZE;
                let (claimed_old_root, claimed_new_root) =
                    match (in_fixture(claimed_old), in_fixture(claimed_new)) {
                        (true, true) => (fixture.root(claimed_old), fixture.root(claimed_new)),
                        _ => (old_root, new_root),
                    };
                let verdict = verify_consistency(
                    claimed_old,
                    claimed_new,
                    &claimed_old_root,
                    &claimed_new_root,
                    &proof,
                );
                if verdict.is_err() {
                    n_refused_claims += 1;
                    continue;
                }
                let honest = claimed_old <= claimed_new
                    && in_fixture(claimed_new)
                    && fixture.consistency(claimed_old, claimed_new) == proof;
                assert!(
                    honest,
                    "{old_size} to {new_size} accepted as {claimed_old} to {claimed_new}"
                );
            }
        }
    }
    assert!(
        n_refused_claims > 10_000,
        "only {n_refused_claims} wrong claims tried"
    );
}

#[test]
fn frontier_matches_naive_root_and_survives_bytes() {
    let fixture = Fixture::new();
    let mut frontier = Frontier::new();
    for size in 0..=MAX_SIZE {
        if size > 0 {
            frontier.push(fixture.leaf(size - 1));
        }
        assert_eq!(frontier.size(), size);
        assert_eq!(frontier.nodes().len(), size.count_ones() as usize);
        assert_eq!(frontier.root(), fixture.root(size), "frontier root {size}");
        assert_eq!(
            root_of(&fixture.leaves[..size as usize]),
            fixture.root(size)
        );

        let bytes = frontier.to_bytes();
        assert_eq!(
            Frontier::from_bytes(&bytes),
            Ok(frontier.clone()),
            "round trip {size}"
        );
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(Frontier::from_bytes(&longer).is_err(), "extended {size}");
        assert!(
            Frontier::from_bytes(&bytes[..bytes.len() - 1]).is_err(),
            "cut {size}"
        );
        let mut other_version = bytes.clone();
        other_version[0] = 2;
        assert_eq!(
            Frontier::from_bytes(&other_version),
            Err(FrontierError::UnknownVersion(2))
        );
    }
}

#[test]
fn frontier_refuses_malformed_bytes() {
    let too_large = [&[1u8][..], &u64::MAX.to_be_bytes()].concat();
    let cases: [(&str, &[u8]); 4] = [
        ("empty", &[]),
        ("header cut short", &[1, 0, 0, 0]),
        ("size 1 without its node", &[1, 0, 0, 0, 0, 0, 0, 0, 1]),
        ("size beyond i64", &too_large),
    ];
    for (name, bytes) in cases {
        assert!(Frontier::from_bytes(bytes).is_err(), "{name}");
    }
    assert_eq!(
        Frontier::from_bytes(&[1, 0, 0, 0, 0, 0, 0, 0, 0]),
        Ok(Frontier::new())
    );
}

#[test]
fn proof_building_refuses_bad_requests_and_passes_source_errors_on() {
    let fixture = Fixture::new();
    let source = fixture.source();
    assert_eq!(
        inclusion_proof(&source, 5, 5),
        Err(ProveError::IndexOutOfRange {
            index: 5,
            tree_size: 5
        })
    );
    assert_eq!(
        consistency_proof(&source, 6, 5),
        Err(ProveError::SizesOutOfOrder {
            old_size: 6,
            new_size: 5
        })
    );
    let beyond = 2 * MAX_SIZE + 10;
    let error = Err(ProveError::Source(format!("no leaf {}", 2 * MAX_SIZE)));
    assert_eq!(inclusion_proof(&source, 0, beyond), error);
    assert_eq!(consistency_proof(&source, 3, beyond), error);
}

#[test]
fn completed_subtree_roots_match_recomputation() {
    let leaves: Vec<Hash> = (0u32..600).map(|i| leaf_hash(&i.to_be_bytes())).collect();
    for levels in [0u32, 1, 3, 8] {
        let span = 1usize << levels;
        let mut frontier = Frontier::new();
        for (index, leaf) in leaves.iter().enumerate() {
            let completed = super::completed_subtree_root(&frontier, leaf, levels);
            let expected =
                ((index + 1) % span == 0).then(|| root_of(&leaves[index + 1 - span..=index]));
            assert_eq!(completed, expected, "levels {levels}, leaf {index}");
            frontier.push(*leaf);
        }
    }
}
