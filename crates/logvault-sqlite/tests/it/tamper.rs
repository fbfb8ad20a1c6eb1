//! The tamper suite: with the append-only triggers dropped behind the service's back, every
//! kind of change to a real data directory is caught by `verify`, which names the first bad
//! `seq` and field.

use std::path::{Path, PathBuf};

use logvault_core::Micros;
use logvault_core::checkpoint::{Checkpoint, NoteSigner, VerifierKey};
use logvault_core::merkle::{Frontier, completed_subtree_root};
use logvault_sqlite::{DB_FILE, SqliteConfig, SqliteStore};
use logvault_store::verify::{Divergence, VerifyOptions, verify_log};
use logvault_store::{Store, StoredCheckpoint, conformance};
use rusqlite::Connection;
use serde_json::json;

const N_EVENTS: u64 = 300;

/// A pristine data directory of 300 events, a copy taken after 200, its signing key and a
/// checkpoint note saved "elsewhere" at the final size.
struct Fixture {
    _root: tempfile::TempDir,
    pristine: PathBuf,
    older: PathBuf,
    key: VerifierKey,
    saved_note: String,
}

async fn sign_head(store: &SqliteStore, signer: &NoteSigner) -> String {
    let head = store.log_head().await.expect("head");
    let checkpoint = Checkpoint {
        origin: signer.name().into(),
        size: head.size,
        root: head.root,
    };
    let note = signer.sign(&checkpoint).expect("sign");
    let stored = StoredCheckpoint {
        size: head.size,
        root: head.root,
        note: note.clone(),
        signed_at: Micros::now(),
    };
    store
        .add_checkpoint(stored)
        .await
        .expect("store checkpoint");
    note
}

async fn fixture() -> Fixture {
    let root = tempfile::tempdir().expect("tempdir");
    let pristine = root.path().join("pristine");
    let older = root.path().join("older");
    let signer = NoteSigner::generate("test.example/log").expect("key");
    let store = SqliteStore::open(&pristine, SqliteConfig::default()).expect("open");
    for account in ["mer_x", "mer_y"] {
        let new = logvault_core::account::NewAccount {
            kind: logvault_core::AccountKind::Merchant,
            partner_id: None,
            name: account.into(),
            id: Some(account.into()),
        };
        store.create_account(new).await.expect("account");
    }
    let mut saved_note = String::new();
    for chunk in 0..3 {
        let batch = (0..100)
            .map(|i| {
                let account = if i % 3 == 0 { "mer_y" } else { "mer_x" };
                let extra = json!({"origin": {"ip": "203.0.113.9"}, "request_id": format!("req_{chunk}_{i}"), "metadata": {"note": "some text"}});
                if i % 4 == 0 {
                    conformance::threat(account, Some(&format!("t-{chunk}-{i}")), json!({"metadata": {"note": "x"}}))
                } else {
                    conformance::audit(account, Some(&format!("a-{chunk}-{i}")), extra)
                }
            })
            .collect();
        store.ingest(batch).await.expect("ingest");
        saved_note = sign_head(&store, &signer).await;
        if chunk == 1 {
            copy_db(&pristine, &older).await;
        }
    }
    assert_eq!(store.log_size().await.expect("size"), N_EVENTS);
    drop(store);
    Fixture {
        _root: root,
        pristine,
        older,
        key: signer.verifier_key(),
        saved_note,
    }
}

/// Copies the database consistently while the store is open (`VACUUM INTO`).
async fn copy_db(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("dir");
    let connection = Connection::open(from.join(DB_FILE)).expect("open");
    connection
        .execute(
            "VACUUM INTO ?1",
            [to.join(DB_FILE).to_str().expect("utf-8")],
        )
        .expect("vacuum into");
}

/// A copy of `source` with the triggers dropped and `sql` applied.
fn tampered(source: &Path, target: &Path, sql: &str) {
    std::fs::create_dir_all(target).expect("dir");
    std::fs::copy(source.join(DB_FILE), target.join(DB_FILE)).expect("copy");
    let connection = Connection::open(target.join(DB_FILE)).expect("open");
    connection
        .execute_batch(
            "DROP TRIGGER events_no_update; DROP TRIGGER events_no_delete; \
             DROP TRIGGER merkle_blocks_no_update; DROP TRIGGER merkle_blocks_no_delete; \
             DROP TRIGGER checkpoints_no_update; DROP TRIGGER checkpoints_no_delete;",
        )
        .expect("drop triggers");
    connection
        .execute_batch(sql)
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// The divergence `verify` finds, after checking that reading the log in chunks of 7 events
/// (so that damage falls across chunk boundaries) finds the same.
async fn verify(dir: &Path, fixture: &Fixture, external: bool) -> Option<Divergence> {
    let store = SqliteStore::open(dir, SqliteConfig::default()).expect("open");
    let mut found = Vec::new();
    for chunk_events in [None, Some(7)] {
        let options = VerifyOptions {
            public_key: Some(fixture.key.clone()),
            external_checkpoint: external.then(|| fixture.saved_note.clone()),
            chunk_events,
        };
        let report = verify_log(&store, &options, &mut |_, _| {})
            .await
            .expect("verify runs");
        found.push(report.divergence);
    }
    assert_eq!(found[0], found[1], "small chunks find the same");
    found.remove(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_catches_every_tampering() {
    let fixture = fixture().await;
    assert_eq!(
        verify(&fixture.pristine, &fixture, true).await,
        None,
        "the pristine log verifies"
    );

    // (case, SQL, expected seq, expected field). Event 100 is an audit event of mer_y.
    let one_byte = |column: &str| {
        format!(
            "UPDATE events SET {column} = CAST(substr({column}, 1, length({column}) - 1) || 'Z' AS TEXT) WHERE seq = 100"
        )
    };
    let flip_blob = |column: &str| {
        format!(
            "UPDATE events SET {} WHERE seq = 100",
            first_byte_changed(column)
        )
    };
    let cases: Vec<(&str, String, Option<u64>, &str)> = vec![
        ("body byte", "UPDATE events SET body = replace(body, 'usr_1', 'usr_2') WHERE seq = 100".into(), Some(100), "content"),
        ("event id", one_byte("event_id"), Some(100), "content"),
        ("account id", "UPDATE events SET account_id = CASE account_id WHEN 'mer_x' THEN 'mer_y' ELSE 'mer_x' END WHERE seq = 100".into(), Some(100), "account_seq"),
        ("account seq", "UPDATE events SET account_seq = account_seq + 1 WHERE seq = 100".into(), Some(100), "account_seq"),
        ("received at", "UPDATE events SET received_at = received_at + 1 WHERE seq = 100".into(), Some(100), "content"),
        ("occurred at", "UPDATE events SET occurred_at = 1 WHERE seq = 100".into(), Some(100), "content"),
        ("nonce", flip_blob("nonce"), Some(100), "content"),
        ("leaf hash", flip_blob("leaf_hash"), Some(100), "content"),
        ("kind", "UPDATE events SET kind = 1 - kind WHERE seq = 100".into(), Some(100), "content"),
        ("ip column", "UPDATE events SET ip = X'00000000000000000000ffff0a000001' WHERE seq = 100".into(), Some(100), "ip"),
        ("delete an event", "DELETE FROM events WHERE seq = 150".into(), Some(150), "seq"),
        ("swap two events", "UPDATE events SET seq = -1 WHERE seq = 120; UPDATE events SET seq = 120 WHERE seq = 121; UPDATE events SET seq = 121 WHERE seq = -1;".into(), Some(120), "account_seq"),
        ("block root", format!("UPDATE merkle_blocks SET {} WHERE block = 0", first_byte_changed("root")), Some(256), "leaf_hash"),
        ("checkpoint note", "UPDATE checkpoints SET note = replace(note, '\n300\n', '\n301\n') WHERE size = 300".into(), None, "checkpoints.note"),
        ("truncate the tail", "DELETE FROM events WHERE seq > 250".into(), Some(251), "seq"),
    ];
    for (case, sql, seq, field) in cases {
        let dir = fixture
            .pristine
            .with_file_name(format!("case-{}", case.replace(' ', "-")));
        tampered(&fixture.pristine, &dir, &sql);
        let divergence = verify(&dir, &fixture, false).await;
        let found = divergence.as_ref().map(|d| (d.seq, d.field.as_str()));
        assert_eq!(found, Some((seq, field)), "{case}: {divergence:?}");
    }
}

/// `column = <its value with the first byte changed>`: to 0x00, or to 0x01 where it already
/// is 0x00 (one random hash or nonce in 256 starts with it, and a change that changes nothing
/// is not caught).
fn first_byte_changed(column: &str) -> String {
    format!(
        "{column} = CAST(CASE WHEN substr({column}, 1, 1) = X'00' THEN X'01' ELSE X'00' END \
         || substr({column}, 2) AS BLOB)"
    )
}

/// Rewrites the log consistently after changing event 100 — new leaf hash, block roots,
/// frontier, checkpoints removed — so only a checkpoint kept elsewhere can tell.
fn rewrite_history(dir: &Path) {
    let connection = Connection::open(dir.join(DB_FILE)).expect("open");
    connection
        .execute_batch("DELETE FROM checkpoints; DELETE FROM merkle_blocks; UPDATE events SET body = replace(body, 'usr_1', 'usr_3') WHERE seq = 100;")
        .expect("rewrite");
    let rows: Vec<i64> = {
        let mut statement = connection
            .prepare("SELECT seq FROM events ORDER BY seq")
            .expect("prepare");
        statement
            .query_map([], |row| row.get(0))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows")
    };
    let mut frontier = Frontier::new();
    for seq in rows {
        let event = connection
                .query_row(
                    "SELECT seq, kind, account_id, account_seq, event_id, received_at, occurred_at, nonce, body FROM events WHERE seq = ?1",
                    [seq],
                    |row| {
                        Ok(logvault_core::StoredEvent {
                            seq: row.get(0)?,
                            kind: if row.get::<_, i64>(1)? == 0 { logvault_core::EventKind::Audit } else { logvault_core::EventKind::Threat },
                            account_id: row.get(2)?,
                            account_seq: row.get(3)?,
                            event_id: row.get(4)?,
                            received_at: Micros(row.get(5)?),
                            occurred_at: row.get::<_, Option<i64>>(6)?.map(Micros),
                            nonce: row.get::<_, Vec<u8>>(7)?.try_into().unwrap_or_default(),
                            body: row.get(8)?,
                            leaf_hash: [0; 32],
                        })
                    },
                )
                .expect("row");
        let leaf = event.compute_leaf_hash();
        connection
            .execute(
                "UPDATE events SET leaf_hash = ?1 WHERE seq = ?2",
                rusqlite::params![leaf, seq],
            )
            .expect("leaf");
        if let Some(root) = completed_subtree_root(&frontier, &leaf, 8) {
            connection
                .execute(
                    "INSERT INTO merkle_blocks (block, root) VALUES (?1, ?2)",
                    rusqlite::params![seq / 256 - 1, root],
                )
                .expect("block");
        }
        frontier.push(leaf);
    }
    connection
        .execute("UPDATE log_head SET frontier = ?1", [frontier.to_bytes()])
        .expect("head");
}

#[tokio::test(flavor = "multi_thread")]
async fn only_a_checkpoint_kept_elsewhere_catches_a_rewritten_history() {
    let fixture = fixture().await;
    let dir = fixture.pristine.with_file_name("rewritten");
    tampered(&fixture.pristine, &dir, "SELECT 1");
    rewrite_history(&dir);
    assert_eq!(
        verify(&dir, &fixture, false).await,
        None,
        "internally consistent after the rewrite"
    );
    let divergence = verify(&dir, &fixture, true)
        .await
        .expect("the saved checkpoint catches it");
    assert_eq!(
        (divergence.seq, divergence.field.as_str()),
        (Some(N_EVENTS), "checkpoint"),
        "{divergence}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn restoring_an_older_copy_is_caught_by_a_saved_checkpoint() {
    let fixture = fixture().await;
    let older_size = SqliteStore::open(&fixture.older, SqliteConfig::default())
        .expect("open")
        .log_size()
        .await
        .expect("size");
    assert_eq!(older_size, 200);
    assert_eq!(
        verify(&fixture.older, &fixture, false).await,
        None,
        "an old copy is consistent in itself"
    );
    let divergence = verify(&fixture.older, &fixture, true)
        .await
        .expect("caught");
    assert_eq!(divergence.field, "log", "{divergence}");
    // A saved checkpoint that is not signed by the log's key proves nothing and is refused.
    let other = NoteSigner::generate("test.example/log").expect("key");
    let forged = other
        .sign(&Checkpoint {
            origin: "test.example/log".into(),
            size: 1,
            root: [0; 32],
        })
        .expect("sign");
    let store = SqliteStore::open(&fixture.pristine, SqliteConfig::default()).expect("open");
    let options = VerifyOptions {
        public_key: Some(fixture.key.clone()),
        external_checkpoint: Some(forged),
        chunk_events: None,
    };
    let report = verify_log(&store, &options, &mut |_, _| {})
        .await
        .expect("runs");
    assert_eq!(
        report.divergence.map(|d| d.field),
        Some("checkpoint".to_string())
    );
}

/// The trend rollup is derived data the overview trusts: a count changed, a row added, a row
/// deleted or moved behind the store's back is reported as an `event_trends` divergence that
/// names the row (never an event's payload), in both directions.
#[tokio::test(flavor = "multi_thread")]
async fn verify_catches_every_change_to_the_trend_rollup() {
    let fixture = fixture().await;
    assert_eq!(verify(&fixture.pristine, &fixture, true).await, None);
    // (case, SQL, what the message must say). Dimensions: 0 version, 1 environment,
    // 2 error type, 3 sign-in outcome, 4 audit action.
    let cases = [
        (
            "count raised",
            "UPDATE event_trends SET count = count + 1 WHERE dimension = 4 AND account_id = 'mer_y'",
            "dimension 4 (audit action), account \"mer_y\", hour ",
        ),
        (
            "count lowered",
            "UPDATE event_trends SET count = count - 1 WHERE dimension = 0 AND account_id = 'mer_x'",
            "dimension 0 (version), account \"mer_x\", hour ",
        ),
        (
            "row added",
            "INSERT INTO event_trends VALUES (2, 'mer_x', 0, 'Forged', 7)",
            "dimension 2 (error_type), account \"mer_x\", hour 1970-01-01T00:00:00.000000Z, \
             key \"Forged\": stored 7, no event of the log is counted there",
        ),
        (
            "row deleted",
            "DELETE FROM event_trends WHERE dimension = 3 AND account_id = 'mer_x'",
            "dimension 3 (sign-in outcome), account \"mer_x\", hour ",
        ),
        (
            "row moved to another hour",
            "UPDATE event_trends SET hour = hour + 1000 * 3600000000 WHERE dimension = 1",
            "dimension 1 (environment), account \"mer_x\", hour ",
        ),
    ];
    for (case, sql, expected) in cases {
        let dir = fixture
            .pristine
            .with_file_name(format!("trends-{}", case.replace(' ', "-")));
        tampered(&fixture.pristine, &dir, sql);
        let divergence = verify(&dir, &fixture, true)
            .await
            .unwrap_or_else(|| panic!("{case}: not caught"));
        assert_eq!(
            (divergence.seq, divergence.field.as_str()),
            (None, "event_trends"),
            "{case}: {divergence}"
        );
        assert!(
            divergence.message.contains(expected),
            "{case}: {divergence}"
        );
        for payload in ["some text", "req_", "usr_1"] {
            assert!(
                !divergence.message.contains(payload),
                "{case}: {divergence}"
            );
        }
    }
}

/// After a purge by policy the log still verifies, and a payload removed any other way — or a
/// stored purge changed to cover it — is still caught.
#[tokio::test(flavor = "multi_thread")]
async fn verify_catches_tampering_after_a_purge() {
    use logvault_store::retention::{RetentionChange, RetentionDefaults, purge_expired};

    let root = tempfile::tempdir().expect("tempdir");
    let purged = root.path().join("purged");
    let store = SqliteStore::open(&purged, SqliteConfig::default()).expect("open");
    let new = logvault_core::account::NewAccount {
        kind: logvault_core::AccountKind::Merchant,
        partner_id: None,
        name: "mer_x".into(),
        id: Some("mer_x".into()),
    };
    store.create_account(new).await.expect("account");
    let old = (0..40)
        .map(|_| conformance::audit("mer_x", None, json!({"origin": {"ip": "203.0.113.9"}})))
        .collect();
    let old = store.ingest(old).await.expect("ingest");
    let instant = Micros(old[39].received_at.0 + 1);
    let newer = (0..10)
        .map(|_| conformance::audit("mer_x", None, json!({})))
        .collect();
    store.ingest(newer).await.expect("ingest");
    let change = RetentionChange::SetPolicy {
        account_id: "mer_x".into(),
        kind: logvault_core::EventKind::Audit,
        policy: Some((0, false)),
    };
    let record = change.record("cli:test", "system");
    store
        .change_retention(change, record)
        .await
        .expect("policy");
    let defaults = RetentionDefaults {
        floor_days: 0,
        ..RetentionDefaults::default()
    };
    let run = purge_expired(&store, &defaults, instant, 16, None)
        .await
        .expect("purge");
    // Events 1–40 purged in batches recorded at seq 52 (1–16), 53 (17–32) and 54 (33–40).
    let records: Vec<_> = run.purges.iter().map(|p| p.record_seq).collect();
    assert_eq!(records, [52, 53, 54]);
    drop(store);

    let check = |dir: PathBuf| async move {
        let store = SqliteStore::open(&dir, SqliteConfig::default()).expect("open");
        let mut found = Vec::new();
        for chunk_events in [None, Some(7)] {
            let options = VerifyOptions {
                chunk_events,
                ..VerifyOptions::default()
            };
            let report = verify_log(&store, &options, &mut |_, _| {})
                .await
                .expect("verify runs");
            found.push(report.divergence);
        }
        assert_eq!(found[0], found[1], "small chunks find the same");
        found.remove(0)
    };
    assert_eq!(check(purged.clone()).await, None, "the purged log verifies");

    let clear = |seq: u64, by: u64| {
        format!(
            "UPDATE events SET body = '{{}}', ip = NULL, occurred_at = NULL, purged_by = {by} \
             WHERE seq = {seq}"
        )
    };
    let cases: Vec<(&str, String, u64, &str)> = vec![
        (
            "payload removed outside its purge",
            clear(45, 52),
            45,
            "retention",
        ),
        (
            "payload removed with no purge",
            clear(45, 9_999),
            45,
            "retention",
        ),
        (
            "an unexpired event added to a purge",
            clear(41, 54),
            41,
            "retention",
        ),
        (
            "stored purge deleted",
            "DELETE FROM purges WHERE record_seq = 53".into(),
            17,
            "retention",
        ),
        (
            "purge cutoff moved",
            "UPDATE purges SET cutoff = cutoff + 1 WHERE record_seq = 52".into(),
            52,
            "retention",
        ),
        (
            "purge count changed",
            "UPDATE purges SET count = 15 WHERE record_seq = 52".into(),
            52,
            "retention",
        ),
        (
            "purge undone",
            "UPDATE events SET purged_by = NULL WHERE seq = 3".into(),
            3,
            "content",
        ),
        (
            "purged event deleted",
            "DELETE FROM events WHERE seq = 5".into(),
            5,
            "seq",
        ),
    ];
    for (case, sql, seq, field) in cases {
        let dir = root.path().join(case.replace(' ', "-"));
        let sql = format!("DROP TRIGGER purges_no_update; DROP TRIGGER purges_no_delete; {sql}");
        tampered(&purged, &dir, &sql);
        let divergence = check(dir).await;
        let found = divergence.as_ref().map(|d| (d.seq, d.field.as_str()));
        assert_eq!(found, Some((Some(seq), field)), "{case}: {divergence:?}");
    }
}
