//! The database's own walls, tested around the store: append-only grants and triggers (for
//! the owner too), row-level security with the application's scope filter removed, the
//! refusal to run without durable commits, and monthly partitions.

use logvault_core::account::NewAccount;
use logvault_core::checkpoint::{Checkpoint, NoteSigner};
use logvault_core::{AccountKind, Micros, Scope};
use logvault_postgres::{PgConfig, PgStore, scope_settings};
use logvault_store::{Store, StoreError, StoredCheckpoint, conformance};
use serde_json::json;

use crate::cluster::{self, connect};
use crate::store::{assert_verifies, open, small};

/// Runs `sql` in its own transaction, after setting the row-level-security scope to all
/// accounts (so that a refusal comes from the grants or triggers, not from hidden rows).
async fn try_change(client: &mut tokio_postgres::Client, sql: &str) -> Result<u64, String> {
    let transaction = client.transaction().await.map_err(|e| e.to_string())?;
    transaction
        .execute("SELECT set_config('logvault.scope_kind', 'all', true)", &[])
        .await
        .map_err(|e| e.to_string())?;
    let result = transaction.execute(sql, &[]).await.map_err(|e| {
        e.as_db_error()
            .map_or_else(|| e.to_string(), |db| db.message().to_string())
    });
    drop(transaction); // rolls back whatever happened
    result
}

#[tokio::test(flavor = "multi_thread")]
async fn events_cannot_be_changed_by_the_app_or_the_owner() {
    let Some(db) = cluster::database().await else {
        return;
    };
    let store = open(&db.app_url, small()).await;
    let mut batch = vec![conformance::audit("platform", Some("e1"), json!({}))];
    batch.extend((1..256).map(|_| conformance::audit("platform", None, json!({}))));
    store
        .ingest(batch)
        .await
        .expect("ingest a whole Merkle block");
    let head = store.log_head().await.expect("head");
    let signer = NoteSigner::generate("logvault.test/pg").expect("signer");
    let note = signer
        .sign(&Checkpoint {
            origin: "logvault.test/pg".into(),
            size: head.size,
            root: head.root,
        })
        .expect("sign");
    let checkpoint = StoredCheckpoint {
        size: head.size,
        root: head.root,
        note,
        signed_at: Micros::now(),
    };
    store.add_checkpoint(checkpoint).await.expect("checkpoint");
    let partition = format!(
        "events_{}",
        &Micros::now().to_rfc3339()[..7].replace('-', "_")
    );

    let mut app = connect(&db.app_url).await;
    let app_cases = [
        // The app may clear a payload only as a recorded purge (migration 4): the trigger
        // refuses anything else, including a purge no stored purge covers.
        ("UPDATE events SET body = '{}' WHERE seq = 1", "append-only"),
        (
            "UPDATE events SET body = '{}', search_text = '', purged_by = 1 WHERE seq = 1",
            "append-only",
        ),
        (
            "UPDATE events SET account_seq = 7 WHERE seq = 1",
            "permission denied",
        ),
        ("DELETE FROM events", "permission denied"),
        ("TRUNCATE events", "permission denied"),
        (&*format!("DELETE FROM {partition}"), "permission denied"),
        ("UPDATE event_ids SET seq = 2", "permission denied"),
        ("DELETE FROM merkle_blocks", "permission denied"),
        ("UPDATE checkpoints SET note = ''", "permission denied"),
        ("DELETE FROM log_head", "permission denied"),
        (
            "DELETE FROM accounts WHERE id = 'platform'",
            "permission denied",
        ),
        ("UPDATE accounts SET kind = 'partner'", "permission denied"),
        ("CREATE TABLE sneaky (x int)", "permission denied"),
    ];
    for (sql, expected) in app_cases {
        let error = try_change(&mut app, sql).await.expect_err(sql);
        assert!(error.contains(expected), "app: {sql}: {error}");
    }

    // The owner may do anything the grants allow, but the ALWAYS triggers still refuse.
    let mut owner = connect(&db.owner_url).await;
    let owner_cases = [
        "UPDATE events SET body = '{}' WHERE seq = 1".to_string(),
        "UPDATE events SET received_at = 0".into(),
        "DELETE FROM events WHERE seq = 1".into(),
        "DELETE FROM events".into(),
        "TRUNCATE events".into(),
        format!("TRUNCATE {partition}"),
        format!("DELETE FROM {partition}"),
        "TRUNCATE events_default".into(),
        "UPDATE event_ids SET seq = seq + 1000".into(),
        "DELETE FROM event_ids".into(),
        "TRUNCATE event_ids".into(),
        "DELETE FROM merkle_blocks".into(),
        "UPDATE merkle_blocks SET root = root".into(),
        "TRUNCATE merkle_blocks".into(),
        "DELETE FROM checkpoints".into(),
        "TRUNCATE checkpoints".into(),
        "DELETE FROM log_head".into(),
        "DELETE FROM accounts WHERE id = 'platform'".into(),
    ];
    for sql in &owner_cases {
        let error = try_change(&mut owner, sql).await.expect_err(sql);
        assert!(error.contains("append-only"), "owner: {sql}: {error}");
    }
    // session_replication_role = replica would skip ordinary triggers; it needs a superuser,
    // and the triggers are ENABLE ALWAYS anyway.
    let states = owner
        .query(
            "SELECT tgrelid::regclass::text, tgname, tgenabled::text FROM pg_trigger \
             WHERE tgname LIKE 'logvault_%'",
            &[],
        )
        .await
        .expect("triggers");
    assert!(states.len() >= 14, "{} triggers", states.len());
    for row in &states {
        let (table, name, enabled): (String, String, String) = (row.get(0), row.get(1), row.get(2));
        assert_eq!(enabled, "A", "{table}.{name} must be ENABLE ALWAYS");
    }

    let event = store
        .event(&Scope::All, logvault_core::EventKind::Audit, "e1", None)
        .await
        .expect("lookup");
    assert!(matches!(event, logvault_store::Lookup::Found(e) if e.body != "{}"));
    assert_verifies(&store).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn row_level_security_alone_keeps_foreign_rows_out() {
    let Some(db) = cluster::database().await else {
        return;
    };
    let store = open(&db.app_url, small()).await;
    for (kind, id, partner) in [
        (AccountKind::Partner, "par_a", None),
        (AccountKind::Partner, "par_b", None),
        (AccountKind::Merchant, "mer_a1", Some("par_a")),
        (AccountKind::Merchant, "mer_b1", Some("par_b")),
    ] {
        store
            .create_account(NewAccount {
                kind,
                partner_id: partner.map(str::to_string),
                name: id.into(),
                id: Some(id.into()),
            })
            .await
            .expect("account");
    }
    let batch = ["par_a", "par_b", "mer_a1", "mer_b1", "platform"]
        .iter()
        .map(|account| conformance::audit(account, Some("same-id"), json!({})))
        .collect();
    store.ingest(batch).await.expect("ingest");

    // The application role, with no WHERE clause at all: only RLS decides.
    let mut app = connect(&db.app_url).await;
    let cases: Vec<(Option<Scope>, &[&str])> = vec![
        (None, &[]),
        (Some(Scope::Account("mer_a1".into())), &["mer_a1"]),
        (Some(Scope::Account("nobody".into())), &[]),
        (Some(Scope::Partner("par_a".into())), &["mer_a1", "par_a"]),
        (Some(Scope::Partner("par_b".into())), &["mer_b1", "par_b"]),
        (Some(Scope::Partner("mer_a1".into())), &["mer_a1"]),
        (
            Some(Scope::All),
            &["mer_a1", "mer_b1", "par_a", "par_b", "platform"],
        ),
    ];
    for (scope, expected) in cases {
        for table in ["events", "event_ids"] {
            let transaction = app.transaction().await.expect("begin");
            if let Some(scope) = &scope {
                let (kind, account) = scope_settings(scope);
                transaction
                    .execute(
                        "SELECT set_config('logvault.scope_kind', $1, true), \
                         set_config('logvault.scope_account', $2, true)",
                        &[&kind, &account],
                    )
                    .await
                    .expect("set scope");
            }
            let rows = transaction
                .query(
                    &format!("SELECT account_id FROM {table} ORDER BY account_id COLLATE \"C\""),
                    &[],
                )
                .await
                .expect("select everything");
            let seen: Vec<String> = rows.iter().map(|row| row.get(0)).collect();
            assert_eq!(seen, expected, "{table} in {scope:?}");
            transaction.rollback().await.expect("rollback");
        }
    }
    // SET LOCAL ends with the transaction: the next one on the same connection sees nothing.
    let rows = app
        .query("SELECT 1 FROM events", &[])
        .await
        .expect("select");
    assert!(
        rows.is_empty(),
        "a scope must not leak into the next transaction"
    );
}

/// `logvault_first_seq_at` bisects the whole log whatever the caller's scope, and gives the
/// caller's scope back: in a merchant's transaction it finds the first event of another
/// account, and the same statement and the next ones still see only the merchant's rows.
#[tokio::test(flavor = "multi_thread")]
async fn the_time_bisection_keeps_the_callers_scope() {
    let Some(db) = cluster::database().await else {
        return;
    };
    let store = open(&db.app_url, small()).await;
    store
        .create_account(NewAccount {
            kind: AccountKind::Merchant,
            partner_id: None,
            name: "mer_t".into(),
            id: Some("mer_t".into()),
        })
        .await
        .expect("account");
    let mut stamps = Vec::new();
    for account in ["platform", "mer_t", "platform"] {
        let outcome = store
            .ingest(vec![conformance::audit(account, None, json!({}))])
            .await
            .expect("ingest");
        stamps.push((outcome[0].seq, outcome[0].received_at));
    }
    let mut app = connect(&db.app_url).await;
    let transaction = app.transaction().await.expect("begin");
    transaction
        .execute(
            "SELECT set_config('logvault.scope_kind', 'account', true), \
             set_config('logvault.scope_account', 'mer_t', true)",
            &[],
        )
        .await
        .expect("set scope");
    for (seq, received_at) in &stamps {
        let row = transaction
            .query_one(
                "SELECT logvault_first_seq_at($1), \
                 (SELECT count(*) FROM events WHERE account_id <> 'mer_t'), \
                 current_setting('logvault.scope_kind')",
                &[&received_at.0],
            )
            .await
            .expect("bisect");
        let first: i64 = row.get(0);
        let foreign: i64 = row.get(1);
        let scope: String = row.get(2);
        assert_eq!(
            first,
            i64::try_from(*seq).expect("seq"),
            "first at {received_at:?}"
        );
        assert_eq!((foreign, scope.as_str()), (0, "account"));
    }
    let after: i64 = transaction
        .query_one("SELECT logvault_first_seq_at($1)", &[&i64::MAX])
        .await
        .expect("bisect")
        .get(0);
    assert_eq!(
        after,
        i64::try_from(stamps[2].0 + 1).expect("seq"),
        "none so late"
    );
    let rows = transaction
        .query("SELECT account_id FROM events", &[])
        .await
        .expect("select");
    let seen: Vec<String> = rows.iter().map(|row| row.get(0)).collect();
    assert_eq!(seen, ["mer_t"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn refuses_to_start_without_synchronous_commit() {
    let Some(db) = cluster::database().await else {
        return;
    };
    let owner = connect(&db.owner_url).await;
    for setting in ["off", "local", "remote_write"] {
        owner
            .batch_execute(&format!(
                "ALTER DATABASE {} SET synchronous_commit = {setting}",
                db.name
            ))
            .await
            .expect("alter database");
        let result = PgStore::connect(&db.app_url, small()).await;
        let Err(StoreError::Unavailable(message)) = result else {
            panic!("synchronous_commit={setting} must be refused");
        };
        assert!(
            message.contains(&format!("synchronous_commit={setting}")),
            "{message}"
        );
    }
    owner
        .batch_execute(&format!(
            "ALTER DATABASE {} SET synchronous_commit = on",
            db.name
        ))
        .await
        .expect("alter database");
    PgStore::connect(&db.app_url, small())
        .await
        .expect("on is accepted");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_app_role_cannot_migrate_and_says_so() {
    let Some(db) = cluster::database().await else {
        return;
    };
    // Migrated: the app role connects fine. A fresh, unmigrated database is refused.
    PgStore::connect(&db.app_url, small())
        .await
        .expect("migrated");
    let owner = connect(&db.owner_url).await;
    owner
        .batch_execute(&format!("CREATE DATABASE {}_empty", db.name))
        .await
        .expect("create");
    // The database name is random hex, found only in the dbname part of the URL.
    let empty_url = db.app_url.replace(&db.name, &format!("{}_empty", db.name));
    let result = PgStore::connect(&empty_url, small()).await;
    cluster::drop_database(&owner, &format!("{}_empty", db.name)).await;
    let Err(StoreError::Unavailable(message)) = result else {
        panic!("an unmigrated database must be refused to the app role");
    };
    assert!(message.contains("logvault migrate"), "{message}");
}

#[tokio::test(flavor = "multi_thread")]
async fn events_land_in_monthly_partitions() {
    let Some(db) = cluster::database().await else {
        return;
    };
    let store = open(&db.app_url, PgConfig::default()).await;
    // A back-dated (demo) event first, then events stamped now.
    let mut old = conformance::audit("platform", Some("old"), json!({}));
    old.demo_received_at = Micros::parse_rfc3339("2024-03-15T12:00:00Z");
    store.ingest(vec![old]).await.expect("old");
    let now = (0..3)
        .map(|_| conformance::audit("platform", None, json!({})))
        .collect();
    store.ingest(now).await.expect("now");

    let owner = connect(&db.owner_url).await;
    owner
        .batch_execute("BEGIN; SELECT set_config('logvault.scope_kind', 'all', true)")
        .await
        .expect("scope");
    let rows = owner
        .query(
            "SELECT tableoid::regclass::text, count(*) FROM events GROUP BY 1 ORDER BY 1",
            &[],
        )
        .await
        .expect("partitions");
    owner.batch_execute("COMMIT").await.expect("commit");
    let placed: Vec<(String, i64)> = rows.iter().map(|row| (row.get(0), row.get(1))).collect();
    let month = |at: Micros| format!("events_{}", at.to_rfc3339()[..7].replace('-', "_"));
    let this_month = month(Micros::now());
    assert_eq!(
        placed,
        [("events_2024_03".to_string(), 1), (this_month, 3)],
        "each event in its month's partition, none in the default one"
    );
    let month_start = Micros::parse_rfc3339(&format!(
        "{}-01T00:00:00Z",
        &Micros::now().to_rfc3339()[..7]
    ))
    .expect("month start");
    let next_month = month(Micros(month_start.0 + 32 * 86_400_000_000));
    let exists: bool = owner
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&next_month])
        .await
        .expect("regclass")
        .get(0);
    assert!(exists, "{next_month} is created ahead of time");
    assert_verifies(&store).await;
}

/// Each node merges the trigram index's pending list beside ingest, as the application role,
/// through the owner's function; the role cannot call the merge on an index directly.
#[tokio::test(flavor = "multi_thread")]
async fn the_node_merges_the_search_pending_list_through_the_owners_function() {
    let Some(db) = cluster::database().await else {
        return;
    };
    let store = open(&db.app_url, small()).await;
    assert!(
        store.uses_trigram_index(),
        "pg_trgm is installed with postgresql-15"
    );
    let batch = (0..300)
        .map(|_| conformance::threat("platform", None, json!({"message": "pending needle"})))
        .collect();
    store.ingest(batch).await.expect("ingest");
    // The node merges every 200 ms; after a few seconds nothing is left for anyone else.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let app = connect(&db.app_url).await;
    let left: i64 = app
        .query_one("SELECT logvault_merge_search_pending()", &[])
        .await
        .expect("the app role may call the merge function")
        .get(0);
    assert_eq!(left, 0, "the node already merged the pending list");
    let index: String = app
        .query_one(
            "SELECT c.relname::text FROM pg_class c JOIN pg_am am ON am.oid = c.relam \
             WHERE am.amname = 'gin' AND c.relkind = 'i' LIMIT 1",
            &[],
        )
        .await
        .expect("a partition's trigram index")
        .get(0);
    let direct = app
        .execute(
            &format!("SELECT gin_clean_pending_list('{index}'::regclass)"),
            &[],
        )
        .await;
    assert!(direct.is_err(), "only the owner's function may merge");
}
