//! Integration tests of the SQLite store: the shared conformance suite, and the database's
//! own refusal to change or delete events.

mod tamper;
mod upgrade;

use std::sync::Arc;

use logvault_core::Micros;
use logvault_sqlite::{DB_FILE, SqliteConfig, SqliteStore};
use logvault_store::{Store, StoreError, StoredCheckpoint, conformance};
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn conformance_suite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(dir.path(), SqliteConfig::default()).expect("open");
    conformance::run_all(&store).await;
}

/// The same suite with a tiny recent window, so partner and admin pages take both paths:
/// the backward walk over the newest rows and the index for the rest.
#[tokio::test(flavor = "multi_thread")]
async fn conformance_suite_with_a_small_recent_window() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = SqliteConfig {
        recent_window: 7,
        ..SqliteConfig::default()
    };
    let store = SqliteStore::open(dir.path(), config).expect("open");
    conformance::run_all(&store).await;
}

/// Text search once the trigram index has caught up, so that matches come through the index
/// as well as through the walk over the scope (the suite above mostly reads events the
/// indexer has not reached yet).
#[tokio::test(flavor = "multi_thread")]
async fn text_search_through_the_index_agrees_with_a_full_scan() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(dir.path(), SqliteConfig::default()).expect("open");
    let fixture = conformance::search::setup(&store).await;
    store.wait_for_search_index().await.expect("index");
    conformance::search::check(&store, &fixture).await;
}

/// A purge takes the purged events' text out of the index too, not only out of the log.
#[tokio::test(flavor = "multi_thread")]
async fn a_purge_leaves_no_text_in_the_search_index() {
    use logvault_store::retention::{
        RetentionChange, RetentionDefaults, apply_change, purge_expired,
    };

    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(dir.path(), SqliteConfig::default()).expect("open");
    let needle = json!({"metadata": {"note": "needle-purged-xyz"}});
    let old: Vec<_> = (0..3)
        .map(|_| conformance::audit("platform", None, needle.clone()))
        .collect();
    let old = store.ingest(old).await.expect("ingest");
    store.wait_for_search_index().await.expect("index");
    let instant = Micros(old[2].received_at.0 + 1);
    store
        .ingest(vec![conformance::audit("platform", None, needle.clone())])
        .await
        .expect("ingest");
    let defaults = RetentionDefaults {
        floor_days: 0,
        ..RetentionDefaults::default()
    };
    let policy = RetentionChange::SetPolicy {
        account_id: "platform".into(),
        kind: logvault_core::EventKind::Audit,
        policy: Some((0, false)),
    };
    apply_change(&store, &defaults, policy, "cli:test", "system")
        .await
        .expect("policy");
    let run = purge_expired(&store, &defaults, instant, 100, None)
        .await
        .expect("purge");
    assert_eq!(run.events(), 3);
    let index =
        rusqlite::Connection::open(dir.path().join(logvault_sqlite::SEARCH_FILE)).expect("index");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let entries: i64 = index
            .query_row(
                "SELECT count(*) FROM search WHERE search MATCH 'xyz'",
                [],
                |row| row.get(0),
            )
            .expect("match");
        if entries == 1 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{entries} entries left; only the newer event's expected"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn triggers_refuse_update_and_delete() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(dir.path(), SqliteConfig::default()).expect("open");
    let mut batch = vec![conformance::audit("platform", Some("e1"), json!({}))];
    batch.extend((1..256).map(|_| conformance::audit("platform", None, json!({}))));
    store
        .ingest(batch)
        .await
        .expect("ingest a whole Merkle block");
    let head = store.log_head().await.expect("head");
    let checkpoint = StoredCheckpoint {
        size: head.size,
        root: head.root,
        note: "note".into(),
        signed_at: Micros::now(),
    };
    store.add_checkpoint(checkpoint).await.expect("checkpoint");
    let connection = rusqlite::Connection::open(dir.path().join(DB_FILE)).expect("raw connection");
    let statements = [
        ("UPDATE events SET body = '{}' WHERE seq = 1", "append-only"),
        ("UPDATE events SET received_at = 0", "append-only"),
        ("DELETE FROM events WHERE seq = 1", "append-only"),
        ("DELETE FROM events", "append-only"),
        ("DELETE FROM log_head", "cannot be deleted"),
        ("DELETE FROM merkle_blocks", "append-only"),
        ("DELETE FROM checkpoints", "append-only"),
        (
            "DELETE FROM accounts WHERE id = 'platform'",
            "never deleted",
        ),
    ];
    for (sql, expected) in statements {
        let error = connection.execute(sql, []).expect_err(sql);
        assert!(error.to_string().contains(expected), "{sql}: {error}");
    }
    let body: String = connection
        .query_row("SELECT body FROM events WHERE seq = 1", [], |row| {
            row.get(0)
        })
        .expect("row");
    assert_ne!(body, "{}", "the event is unchanged");
}

#[tokio::test(flavor = "multi_thread")]
async fn overload_is_reported_not_queued() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = SqliteConfig {
        max_queued_events: 2,
        ..SqliteConfig::default()
    };
    let store = SqliteStore::open(dir.path(), config).expect("open");
    let batch = (0..3)
        .map(|_| conformance::audit("platform", None, json!({})))
        .collect();
    assert!(matches!(
        store.ingest(batch).await,
        Err(StoreError::Overloaded)
    ));
    assert_eq!(store.log_size().await.expect("size"), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn reopening_keeps_everything_and_continues_the_sequence() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let store = SqliteStore::open(dir.path(), SqliteConfig::default()).expect("open");
        let batch = (0..5)
            .map(|_| conformance::audit("platform", None, json!({})))
            .collect();
        store.ingest(batch).await.expect("ingest");
    }
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(dir.path(), SqliteConfig::default()).expect("reopen"));
    assert_eq!(store.log_size().await.expect("size"), 5);
    let next = store
        .ingest(vec![conformance::audit("platform", None, json!({}))])
        .await
        .expect("ingest");
    assert_eq!((next[0].seq, next[0].account_seq), (6, 6));
}

/// Migration 0002 backfills sign-in and audit-action counts for logs written before it; what
/// it computes from the stored events must be exactly what the writer keeps up to date for new
/// ones.
#[tokio::test(flavor = "multi_thread")]
async fn sign_in_backfill_matches_the_counts_the_writer_keeps() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let store = SqliteStore::open(dir.path(), SqliteConfig::default()).expect("open");
        let outcomes = ["success", "failure", "failure", "success", "failure"];
        let batch = outcomes
            .iter()
            .map(|outcome| {
                let origin = json!({"ip": "192.0.2.1"});
                conformance::audit(
                    "platform",
                    None,
                    json!({"outcome": outcome, "origin": origin}),
                )
            })
            .chain([conformance::audit(
                "platform",
                None,
                json!({"action": "user.logout"}),
            )])
            .collect();
        store.ingest(batch).await.expect("ingest");
    }
    let migration = include_str!("../../migrations/0002_sign_in_trends.sql");
    let select = &migration[migration.find("SELECT dimension").expect("backfill query")..];
    let connection = rusqlite::Connection::open(dir.path().join(DB_FILE)).expect("open");
    let rows = |sql: &str| -> Vec<(i64, String, i64, String, i64)> {
        let mut statement = connection.prepare(sql).expect("prepare");
        statement
            .query_map([], |row| {
                Ok((
                    row.get(0)?,
                    row.get(1)?,
                    row.get(2)?,
                    row.get(3)?,
                    row.get(4)?,
                ))
            })
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows")
    };
    let kept = rows(
        "SELECT dimension, account_id, hour, key, count FROM event_trends \
         WHERE dimension IN (3, 4, 5) ORDER BY 1, 2, 3, 4",
    );
    let backfilled = rows(&format!(
        "SELECT * FROM ({}) ORDER BY 1, 2, 3, 4",
        select.trim_end().trim_end_matches(';')
    ));
    let total =
        |dimension: i64| -> i64 { kept.iter().filter(|r| r.0 == dimension).map(|r| r.4).sum() };
    assert_eq!((total(3), total(4), total(5)), (5, 6, 3), "{kept:?}");
    assert_eq!(backfilled, kept);
}

/// The WAL does not grow without bound: once it passes the limit, the checkpointer empties it
/// (PASSIVE checkpoints alone never do while writes keep coming, and never shrink the file).
#[tokio::test(flavor = "multi_thread")]
async fn the_wal_is_emptied_once_it_passes_its_limit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = SqliteConfig {
        wal_limit_bytes: 256 << 10,
        ..SqliteConfig::default()
    };
    let store = SqliteStore::open(dir.path(), config).expect("open");
    let wal = dir.path().join(format!("{DB_FILE}-wal"));
    let wal_bytes = || std::fs::metadata(&wal).map_or(0, |m| m.len());
    let mut largest = 0;
    for _ in 0..20 {
        let batch = (0..200)
            .map(|_| {
                conformance::audit(
                    "platform",
                    None,
                    json!({"metadata": {"pad": "x".repeat(500)}}),
                )
            })
            .collect();
        store.ingest(batch).await.expect("ingest");
        largest = largest.max(wal_bytes());
    }
    assert!(
        largest > 1 << 20,
        "the WAL grew past the limit first: {largest}"
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while wal_bytes() > 256 << 10 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(wal_bytes() <= 256 << 10, "WAL still {} bytes", wal_bytes());
    assert_eq!(store.log_size().await.expect("size"), 4000, "nothing lost");
}

/// Every read path's plan is independent of the scope: lookups by id go through the id index
/// for an admin, a partner and a merchant alike, and nothing scans the whole log. Checked on
/// a store holding events of several accounts, with the plans SQLite picks there.
#[tokio::test(flavor = "multi_thread")]
async fn read_plans_use_the_same_index_for_every_scope() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(dir.path(), SqliteConfig::default()).expect("open");
    conformance::search::setup(&store).await;
    let plans = logvault_sqlite::read_plans(dir.path()).expect("plans");
    assert_eq!(plans.len(), 30, "ten reads for each of three scopes");
    for plan in &plans {
        let text = plan.plan.join(" / ");
        let context = format!("{} as {:?}: {text}", plan.read, plan.scope);
        // A scan of `events` without a rowid range reads the whole log.
        assert!(
            !plan.plan.iter().any(|line| line == "SCAN events"),
            "{context}"
        );
        let expected = match plan.read {
            "event by id" | "event by id and account" => "USING INDEX events_event_id",
            "page, newest rows" => "USING INTEGER PRIMARY KEY (rowid>?)",
            // Newest first along the group's index, each row by its position.
            "a group's events" => {
                "SEARCH threat_fingerprints USING COVERING INDEX threat_fingerprints_group (fingerprint=? AND seq<?) / SEARCH events USING INTEGER PRIMARY KEY (rowid=?)"
            }
            "text search, index candidates" => "VIRTUAL TABLE INDEX",
            "text search, candidates in scope" => "USING INTEGER PRIMARY KEY (rowid=?)",
            "time window, bisection step" => "USING INTEGER PRIMARY KEY (rowid>?)",
            // A window's page reads its range of positions, not the scope down to its start.
            "time window, older rows" => match plan.scope {
                logvault_core::Scope::All => "USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)",
                _ => {
                    "USING INDEX events_kind_account (kind=? AND account_id=? AND seq>? AND seq<?)"
                }
            },
            "text search, walk of the scope" | "page, by index" => match plan.scope {
                logvault_core::Scope::Account(_) => "USING INDEX events_kind_account",
                _ => "",
            },
            other => panic!("no expectation for {other}"),
        };
        assert!(text.contains(expected), "{context}");
    }
}
