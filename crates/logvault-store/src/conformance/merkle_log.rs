//! Conformance: the Merkle log: head, block roots, proofs, checkpoints.

use logvault_core::{Micros, NewEvent, Scope, merkle};
use serde_json::json;

use crate::{Store, StoreError};

use super::threat;

pub(super) async fn merkle_log(store: &dyn Store) {
    // Cross several 256-leaf blocks so stored block roots are used by proofs.
    for chunk in 0..3 {
        let batch: Vec<NewEvent> = (0..300)
            .map(|i| {
                threat(
                    if i % 3 == 0 { "mer_a1" } else { "mer_b1" },
                    Some(&format!("m-{chunk}-{i}")),
                    json!({}),
                )
            })
            .collect();
        store.ingest(batch).await.expect("ingest");
    }
    let mut leaves = Vec::new();
    loop {
        let scanned = store
            .scan(&Scope::All, leaves.len() as u64, 500)
            .await
            .expect("scan");
        if scanned.is_empty() {
            break;
        }
        for item in scanned {
            assert_eq!(
                item.event.seq,
                leaves.len() as u64 + 1,
                "scan is gapless and ordered"
            );
            // A purged event keeps its leaf hash but not what it was computed from.
            if item.purged_by.is_none() {
                assert_eq!(item.event.compute_leaf_hash(), item.event.leaf_hash);
            }
            leaves.push(item.event.leaf_hash);
        }
    }
    let head = store.log_head().await.expect("head");
    assert_eq!(head.size, leaves.len() as u64);
    assert_eq!(
        head.root,
        merkle::root_of(&leaves),
        "the head's root covers every leaf"
    );
    let blocks = store.merkle_blocks(0, 1000).await.expect("blocks");
    assert_eq!(blocks.len(), leaves.len() / 256);
    for (block, root) in &blocks {
        let start = *block as usize * 256;
        assert_eq!(
            *root,
            merkle::root_of(&leaves[start..start + 256]),
            "block {block}"
        );
    }

    let n = leaves.len() as u64;
    let sizes = [1, 2, 255, 256, 257, 511, 512, 700, n - 1, n];
    for tree_size in sizes {
        let root = merkle::root_of(&leaves[..tree_size as usize]);
        for seq in [1, tree_size / 2 + 1, tree_size] {
            let proof = store
                .inclusion_proof(&Scope::All, seq, tree_size)
                .await
                .expect("proof")
                .expect("in scope");
            merkle::verify_inclusion(&leaves[seq as usize - 1], seq - 1, tree_size, &proof, &root)
                .unwrap_or_else(|e| panic!("inclusion of {seq} in {tree_size}: {e}"));
        }
        for old_size in [1, tree_size / 3 + 1, tree_size] {
            let old_root = merkle::root_of(&leaves[..old_size as usize]);
            let proof = store
                .consistency_proof(old_size, tree_size)
                .await
                .expect("proof");
            merkle::verify_consistency(old_size, tree_size, &old_root, &root, &proof)
                .unwrap_or_else(|e| panic!("consistency {old_size} -> {tree_size}: {e}"));
        }
    }
    // Proofs are scoped like reads, and sizes beyond the log are refused.
    let foreign_seq = store
        .scan(&Scope::Account("mer_b1".into()), 0, 1)
        .await
        .expect("scan")[0]
        .event
        .seq;
    let as_merchant = store
        .inclusion_proof(&Scope::Account("mer_a1".into()), foreign_seq, n)
        .await
        .expect("proof");
    assert_eq!(as_merchant, None, "no proof for another account's event");
    assert!(matches!(
        store.inclusion_proof(&Scope::All, 1, n + 1).await,
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        store.consistency_proof(1, n + 1).await,
        Err(StoreError::Invalid(_))
    ));

    // Checkpoints: one root per size, forever.
    assert_eq!(store.latest_checkpoint().await.expect("latest"), None);
    let checkpoint = |size: u64, root: merkle::Hash| crate::StoredCheckpoint {
        size,
        root,
        note: format!("note {size}"),
        signed_at: Micros::now(),
    };
    store
        .add_checkpoint(checkpoint(10, merkle::root_of(&leaves[..10])))
        .await
        .expect("add");
    store
        .add_checkpoint(checkpoint(n, head.root))
        .await
        .expect("add");
    store
        .add_checkpoint(checkpoint(n, head.root))
        .await
        .expect("the same checkpoint again is fine");
    let conflicting = store.add_checkpoint(checkpoint(10, head.root)).await;
    assert!(
        matches!(conflicting, Err(StoreError::AlreadyExists(_))),
        "{conflicting:?}"
    );
    assert_eq!(
        store
            .latest_checkpoint()
            .await
            .expect("latest")
            .map(|c| c.size),
        Some(n)
    );
    let sizes: Vec<u64> = store
        .checkpoints()
        .await
        .expect("all")
        .iter()
        .map(|c| c.size)
        .collect();
    assert_eq!(sizes, [10, n]);
}
