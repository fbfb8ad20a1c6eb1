//! SIEM stream cursors: a stream starts at 0, resumes after what it recorded, never moves
//! back, and streams do not share cursors; reading on from a cursor in a scope gives the next
//! events of that scope in `seq` order.

use logvault_core::{AccountKind, Scope};
use serde_json::json;

use super::{account, audit};
use crate::Store;

pub(super) async fn stream_cursors(store: &dyn Store) {
    let cursor =
        |name: &'static str| async move { store.stream_cursor(name).await.expect("stream cursor") };
    assert_eq!(
        cursor("soc").await,
        0,
        "a new stream starts at the beginning"
    );
    store.set_stream_cursor("soc", 5).await.expect("set cursor");
    assert_eq!(cursor("soc").await, 5);
    store.set_stream_cursor("soc", 3).await.expect("set cursor");
    assert_eq!(cursor("soc").await, 5, "a cursor never moves back");
    store.set_stream_cursor("soc", 9).await.expect("set cursor");
    assert_eq!(cursor("soc").await, 9);
    assert_eq!(
        cursor("partner-feed").await,
        0,
        "streams do not share cursors"
    );
    store
        .set_stream_cursor("partner-feed", 2)
        .await
        .expect("set cursor");
    assert_eq!(cursor("soc").await, 9);
    assert_eq!(cursor("partner-feed").await, 2);

    // What a stream scoped to one account reads on from its cursor: that account's events
    // after it, in seq order, none of another account's.
    account(store, AccountKind::Merchant, "mer_stream_a", None).await;
    account(store, AccountKind::Merchant, "mer_stream_b", None).await;
    let mut seqs = Vec::new();
    for i in 0..6 {
        let target = if i % 2 == 0 {
            "mer_stream_a"
        } else {
            "mer_stream_b"
        };
        let outcome = store
            .ingest(vec![audit(
                target,
                None,
                json!({"reason": format!("r{i}")}),
            )])
            .await
            .expect("ingest");
        if target == "mer_stream_a" {
            seqs.push(outcome[0].seq);
        }
    }
    let scope = Scope::Account("mer_stream_a".into());
    store
        .set_stream_cursor("mer-a", seqs[0])
        .await
        .expect("set cursor");
    let after = store.stream_cursor("mer-a").await.expect("stream cursor");
    let next = store.scan(&scope, after, 100).await.expect("scan");
    let next_seqs: Vec<u64> = next.iter().map(|scanned| scanned.event.seq).collect();
    assert_eq!(
        next_seqs,
        seqs[1..],
        "the scope's events after the cursor, in order"
    );
    let next = store.scan(&scope, after, 1).await.expect("scan");
    assert_eq!(next.len(), 1, "a read from the cursor takes a limit");
}
