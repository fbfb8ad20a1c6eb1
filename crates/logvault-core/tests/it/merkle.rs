//! Proof verification: a real proof verifies, and stops verifying when any byte of it, of
//! the leaf or of a root changes; arbitrary sizes, indexes and proofs are refused without a
//! panic; a stored frontier decodes to exactly its bytes or not at all.

use std::convert::Infallible;

use logvault_core::merkle::{
    Frontier, Hash, consistency_proof, inclusion_proof, leaf_hash, root_of, verify_consistency,
    verify_inclusion,
};
use proptest::prelude::*;

fn leaves(n: u64) -> Vec<Hash> {
    (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect()
}

/// Flips bits `xor` of byte `position` of the hashes taken as one run of bytes.
fn flip(hashes: &mut [Hash], position: usize, xor: u8) {
    let at = position % (hashes.len() * 32);
    hashes[at / 32][at % 32] ^= xor;
}

proptest! {
    #![proptest_config(crate::config(128))]

    #[test]
    fn an_inclusion_proof_verifies_until_one_byte_changes(
        (tree_size, index) in (1..300u64).prop_flat_map(|n| (Just(n), 0..n)),
        position in any::<usize>(),
        xor in 1..=255u8,
    ) {
        let leaves = leaves(tree_size);
        let source = |i: u64| Ok::<Hash, Infallible>(leaves[i as usize]);
        let root = root_of(&leaves);
        let proof = inclusion_proof(&source, index, tree_size).expect("in range");
        let leaf = leaves[index as usize];
        prop_assert_eq!(verify_inclusion(&leaf, index, tree_size, &proof, &root), Ok(()));
        let mut all = vec![leaf];
        all.extend_from_slice(&proof);
        all.push(root);
        flip(&mut all, position, xor);
        let (changed_leaf, changed_root) = (all[0], all[all.len() - 1]);
        let changed_proof = &all[1..all.len() - 1];
        prop_assert!(
            verify_inclusion(&changed_leaf, index, tree_size, changed_proof, &changed_root).is_err()
        );
    }

    #[test]
    fn a_consistency_proof_verifies_until_one_byte_changes(
        (new_size, old_size) in (1..300u64).prop_flat_map(|n| (Just(n), 0..=n)),
        position in any::<usize>(),
        xor in 1..=255u8,
    ) {
        let leaves = leaves(new_size);
        let source = |i: u64| Ok::<Hash, Infallible>(leaves[i as usize]);
        let old_root = root_of(&leaves[..old_size as usize]);
        let new_root = root_of(&leaves);
        let proof = consistency_proof(&source, old_size, new_size).expect("in order");
        prop_assert_eq!(
            verify_consistency(old_size, new_size, &old_root, &new_root, &proof),
            Ok(())
        );
        let mut all = vec![old_root];
        all.extend_from_slice(&proof);
        all.push(new_root);
        // Every tree extends the empty one: from size 0 only the old root is checked.
        let position = if old_size == 0 { position % 32 } else { position };
        flip(&mut all, position, xor);
        let (changed_old, changed_new) = (all[0], all[all.len() - 1]);
        let changed_proof = &all[1..all.len() - 1];
        prop_assert!(
            verify_consistency(old_size, new_size, &changed_old, &changed_new, changed_proof)
                .is_err()
        );
    }

    #[test]
    fn arbitrary_proofs_are_refused_without_a_panic(
        a in any::<u64>(),
        b in prop_oneof![any::<u64>(), Just(u64::MAX), Just(0), 0..64u64],
        first in any::<[u8; 32]>(),
        second in any::<[u8; 32]>(),
        proof in prop::collection::vec(any::<[u8; 32]>(), 0..70),
    ) {
        // Random hashes cannot make a proof hold: SHA-256 would have to collide.
        prop_assert!(verify_inclusion(&first, a, b, &proof, &second).is_err());
        prop_assert!(verify_inclusion(&first, b, a, &proof, &second).is_err());
        prop_assert!(verify_consistency(a.min(b), a.max(b), &first, &second, &proof).is_err());
        prop_assert!(verify_consistency(a, b, &first, &second, &proof).is_err());
    }

    #[test]
    fn a_frontier_decodes_to_exactly_its_bytes(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        if let Ok(frontier) = Frontier::from_bytes(&bytes) {
            prop_assert_eq!(frontier.to_bytes(), bytes);
        }
    }

    #[test]
    fn a_stored_frontier_reads_back(n in 0..300u64) {
        let mut frontier = Frontier::new();
        for leaf in leaves(n) {
            frontier.push(leaf);
        }
        prop_assert_eq!(Frontier::from_bytes(&frontier.to_bytes()), Ok(frontier));
    }
}
