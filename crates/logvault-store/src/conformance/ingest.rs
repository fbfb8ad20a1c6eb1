//! Conformance: appending: sequences, idempotency, whole-request rejection, concurrency.

use logvault_core::{EventKind, Micros, NewEvent, Scope};
use serde_json::json;

use crate::{Lookup, Store, StoreError};

use super::{audit, futures_join_all, threat};

pub(super) async fn ingest_sequences(store: &dyn Store) {
    let before = store.log_size().await.expect("size");
    assert_eq!(before, 0, "the suite needs an empty log");
    let batch = vec![
        audit("mer_a1", None, json!({})),
        threat("mer_a1", None, json!({})),
        audit("mer_a2", None, json!({})),
        audit("mer_a1", None, json!({})),
    ];
    let outcomes = store.ingest(batch).await.expect("ingest");
    let seqs: Vec<u64> = outcomes.iter().map(|o| o.seq).collect();
    let account_seqs: Vec<u64> = outcomes.iter().map(|o| o.account_seq).collect();
    assert_eq!(seqs, [1, 2, 3, 4]);
    assert_eq!(account_seqs, [1, 2, 1, 3]);
    assert!(outcomes.iter().all(|o| !o.duplicate));
    assert!(
        outcomes
            .windows(2)
            .all(|w| w[0].received_at <= w[1].received_at)
    );
    let later = store
        .ingest(vec![audit("mer_a2", None, json!({}))])
        .await
        .expect("ingest");
    assert_eq!((later[0].seq, later[0].account_seq), (5, 2));
    assert!(
        later[0].received_at >= outcomes[3].received_at,
        "received_at never decreases along seq"
    );
    assert_eq!(store.log_size().await.expect("size"), 5);

    // The stored event hashes to what the ingest reported, and occurred_at stays apart.
    let claimed = "2020-01-01T00:00:00.000000Z";
    let stamped = store
        .ingest(vec![audit(
            "mer_a1",
            Some("claimed"),
            json!({"occurred_at": claimed}),
        )])
        .await
        .expect("ingest");
    let Lookup::Found(event) = store
        .event(&Scope::All, EventKind::Audit, "claimed", None)
        .await
        .expect("lookup")
    else {
        panic!("the event just stored is not found");
    };
    assert_eq!(event.leaf_hash, stamped[0].leaf_hash);
    assert_eq!(event.compute_leaf_hash(), event.leaf_hash);
    assert_eq!(
        event.occurred_at.map(Micros::to_rfc3339).as_deref(),
        Some(claimed)
    );
    assert!(event.received_at > Micros::parse_rfc3339("2026-01-01T00:00:00Z").expect("time"));
}

pub(super) async fn idempotency(store: &dyn Store) {
    let first = store
        .ingest(vec![threat("mer_a1", Some("same"), json!({}))])
        .await
        .expect("first");
    let again = store
        .ingest(vec![threat("mer_a1", Some("same"), json!({}))])
        .await
        .expect("again");
    assert!(again[0].duplicate);
    assert_eq!(again[0].seq, first[0].seq);
    assert_eq!(again[0].leaf_hash, first[0].leaf_hash);
    let size = store.log_size().await.expect("size");
    let conflict = store
        .ingest(vec![threat(
            "mer_a1",
            Some("same"),
            json!({"message": "different"}),
        )])
        .await;
    assert!(
        matches!(conflict, Err(StoreError::IdConflict { index: 0, .. })),
        "{conflict:?}"
    );
    // Ids are per account: another account may use the same id.
    let other = store
        .ingest(vec![threat("mer_b1", Some("same"), json!({}))])
        .await
        .expect("other account");
    assert!(!other[0].duplicate);
    assert_eq!(store.log_size().await.expect("size"), size + 1);
    // The same id twice in one request: the second is a duplicate of the first, and the
    // event after it takes the next positions, in the log and in the account (a repeat
    // leaves no gap).
    let twice = store
        .ingest(vec![
            audit("mer_a2", Some("twice"), json!({})),
            audit("mer_a2", Some("twice"), json!({})),
            audit("mer_a2", Some("after-twice"), json!({})),
        ])
        .await
        .expect("twice");
    let duplicates: Vec<bool> = twice.iter().map(|outcome| outcome.duplicate).collect();
    assert_eq!(duplicates, [false, true, false]);
    assert_eq!(twice[0].seq, twice[1].seq);
    assert_eq!(twice[2].seq, twice[0].seq + 1);
    assert_eq!(twice[2].account_seq, twice[0].account_seq + 1);
}

pub(super) async fn rejected_requests_store_nothing(store: &dyn Store) {
    let size = store.log_size().await.expect("size");
    let cases: Vec<(Vec<NewEvent>, &str)> = vec![
        (
            vec![
                audit("mer_a1", Some("fresh-1"), json!({})),
                threat("mer_a1", Some("same"), json!({"message": "changed"})),
            ],
            "conflict at index 1",
        ),
        (
            vec![
                audit("mer_a1", Some("fresh-2"), json!({})),
                audit("mer_nowhere", None, json!({})),
            ],
            "unknown account at index 1",
        ),
    ];
    for (batch, case) in cases {
        let result = store.ingest(batch).await;
        match (case, &result) {
            ("conflict at index 1", Err(StoreError::IdConflict { index: 1, .. })) => {}
            ("unknown account at index 1", Err(StoreError::AccountNotWritable { index: 1 })) => {}
            _ => panic!("{case}: {result:?}"),
        }
        assert_eq!(
            store.log_size().await.expect("size"),
            size,
            "{case}: nothing stored"
        );
    }
    for id in ["fresh-1", "fresh-2"] {
        let lookup = store
            .event(&Scope::All, EventKind::Audit, id, None)
            .await
            .expect("lookup");
        assert_eq!(lookup, Lookup::NotFound, "{id} must not be stored");
    }
    // A later request still gets the next seq: the rejected ones left no gap.
    let next = store
        .ingest(vec![audit("mer_p0", None, json!({}))])
        .await
        .expect("ingest");
    assert_eq!(next[0].seq, size + 1);
}

pub(super) async fn concurrent_ingest(store: &dyn Store) {
    let size = store.log_size().await.expect("size");
    let requests = (0..16).map(|i| {
        let batch: Vec<NewEvent> = (0..10)
            .map(|j| {
                audit(
                    if i % 2 == 0 { "mer_a1" } else { "mer_b1" },
                    Some(&format!("c-{i}-{j}")),
                    json!({}),
                )
            })
            .collect();
        store.ingest(batch)
    });
    let results = futures_join_all(requests).await;
    let mut seqs: Vec<u64> = results
        .into_iter()
        .flat_map(|r| r.expect("ingest"))
        .map(|o| o.seq)
        .collect();
    seqs.sort_unstable();
    let expected: Vec<u64> = (size + 1..=size + 160).collect();
    assert_eq!(
        seqs, expected,
        "concurrent requests get distinct, gapless seqs"
    );
}
