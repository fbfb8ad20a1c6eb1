//! Upgrading a data directory from schema 2 (filter columns, text and ids stored in the row) to
//! the lean row of schema 3 keeps every event exactly: the same events come back, the log
//! still verifies against the same root, ids of both forms are found, and text search works.

use logvault_core::{EventKind, Scope};
use logvault_sqlite::{DB_FILE, SqliteConfig, SqliteStore};
use logvault_store::verify::{VerifyOptions, verify_log};
use logvault_store::{EventQuery, Lookup, Store, conformance};
use serde_json::json;

/// Turns a schema-3 database back into the layout schema 2 had, ids as text.
const DOWNGRADE: &str = "
CREATE TABLE events_v2 (
    seq INTEGER PRIMARY KEY, kind INTEGER NOT NULL,
    account_id TEXT NOT NULL REFERENCES accounts(id), account_seq INTEGER NOT NULL,
    event_id TEXT NOT NULL, received_at INTEGER NOT NULL, occurred_at INTEGER,
    nonce BLOB NOT NULL, leaf_hash BLOB NOT NULL, action TEXT, outcome TEXT, actor_id TEXT,
    ip BLOB, request_id TEXT, error_type TEXT, source TEXT, version TEXT, environment TEXT,
    search_text TEXT NOT NULL, body TEXT NOT NULL) STRICT;
INSERT INTO events_v2
SELECT seq, kind, account_id, account_seq,
       CASE WHEN typeof(event_id) = 'blob' THEN lower(substr(hex(event_id), 1, 8) || '-' ||
            substr(hex(event_id), 9, 4) || '-' || substr(hex(event_id), 13, 4) || '-' ||
            substr(hex(event_id), 17, 4) || '-' || substr(hex(event_id), 21, 12))
            ELSE event_id END,
       received_at, occurred_at, nonce, leaf_hash, action, outcome, actor_id, ip, request_id,
       error_type, source, version, environment, lower(body), body
FROM events;
DROP TABLE events;
ALTER TABLE events_v2 RENAME TO events;
CREATE UNIQUE INDEX events_event_id ON events(event_id, account_id);
CREATE INDEX events_kind_account ON events(kind, account_id, seq);
DROP TABLE retention_policies;
DROP TABLE legal_holds;
DROP TABLE purges;
DROP TABLE stream_cursors;
DROP TABLE viewer_tokens;
DROP TABLE embed_settings;
DROP TABLE threat_fingerprints;
DROP TABLE threat_groups;
DROP TABLE threat_group_hours;
DROP TABLE threat_group_returns;
PRAGMA user_version = 2;
";

async fn everything(store: &SqliteStore) -> Vec<logvault_core::StoredEvent> {
    let mut events = Vec::new();
    for kind in [EventKind::Audit, EventKind::Threat] {
        let mut query = EventQuery::new(kind, 1000);
        loop {
            let page = store.query(&Scope::All, &query).await.expect("query");
            events.extend(page.events);
            match page.next_before_seq {
                Some(before) => query.before_seq = Some(before),
                None => break,
            }
        }
    }
    events
}

#[tokio::test(flavor = "multi_thread")]
async fn schema_2_upgrades_to_the_lean_row_losing_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (before, head, assigned_id) = {
        let store = SqliteStore::open(dir.path(), SqliteConfig::default()).expect("open");
        let outcomes = store
            .ingest(vec![
                conformance::audit(
                    "platform",
                    None,
                    json!({"reason": "Needle in the haystack"}),
                ),
                conformance::audit("platform", Some("client-id-1"), json!({})),
                conformance::threat("platform", None, json!({"message": "needle two"})),
                conformance::threat(
                    "platform",
                    Some("0190d8c4-7f3a-7c1e-9b2d-4e5f60718293"),
                    json!({}),
                ),
            ])
            .await
            .expect("ingest");
        (
            everything(&store).await,
            store.log_head().await.expect("head"),
            outcomes[0].event_id.clone(),
        )
    };
    let connection = rusqlite::Connection::open(dir.path().join(DB_FILE)).expect("open");
    connection.execute_batch(DOWNGRADE).expect("downgrade");
    drop(connection);
    std::fs::remove_file(dir.path().join(logvault_sqlite::SEARCH_FILE)).expect("drop the index");

    let store = SqliteStore::open(dir.path(), SqliteConfig::default()).expect("upgrade");
    assert_eq!(
        everything(&store).await,
        before,
        "the same events, byte for byte"
    );
    assert_eq!(store.log_head().await.expect("head"), head);
    let report = verify_log(&store, &VerifyOptions::default(), &mut |_, _| {})
        .await
        .expect("verify");
    assert_eq!(report.divergence, None);
    // The threat events stored before the group tables were counted into them (verify has
    // just checked each one's fingerprint): two messages, two groups of one event each.
    let groups = store.group_snapshot(&Scope::All).await.expect("groups");
    let mut counts: Vec<i64> = groups.groups.iter().map(|group| group.count).collect();
    counts.sort();
    assert_eq!(counts, [1, 1], "{groups:?}");
    assert_eq!(groups.hours.len(), 2, "{groups:?}");
    for (kind, id) in [
        (EventKind::Audit, assigned_id.as_str()),
        (EventKind::Audit, "client-id-1"),
        (EventKind::Threat, "0190d8c4-7f3a-7c1e-9b2d-4e5f60718293"),
    ] {
        let found = store
            .event(&Scope::All, kind, id, None)
            .await
            .expect("lookup");
        assert!(
            matches!(found, Lookup::Found(event) if event.event_id == id),
            "{id}"
        );
    }
    store.wait_for_search_index().await.expect("index rebuilt");
    let mut query = EventQuery::new(EventKind::Audit, 10);
    query.text = Some("NEEDLE".into());
    let page = store.query(&Scope::All, &query).await.expect("search");
    assert_eq!(page.events.len(), 1, "{page:?}");
}
