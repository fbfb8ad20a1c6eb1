//! The store through its trait: the conformance suite, verification, group commit under
//! load and refusal, and several nodes sharing one database.

use std::collections::BTreeMap;

use logvault_core::account::NewAccount;
use logvault_core::{AccountKind, NewEvent, Scope};
use logvault_postgres::{PgConfig, PgStore};
use logvault_store::verify::{VerifyOptions, verify_log};
use logvault_store::{Store, StoreError, conformance};
use serde_json::json;

use crate::cluster;

/// A store for tests: a small pool, so many tests fit in one cluster.
pub async fn open(url: &str, config: PgConfig) -> PgStore {
    PgStore::connect(url, config).await.expect("connect")
}

pub fn small() -> PgConfig {
    PgConfig {
        pool_size: 4,
        ..PgConfig::default()
    }
}

pub async fn assert_verifies(store: &dyn Store) {
    let report = verify_log(store, &VerifyOptions::default(), &mut |_, _| {})
        .await
        .expect("verify");
    assert_eq!(report.divergence, None, "{report:?}");
    assert_eq!(report.events, store.log_size().await.expect("size"));
}

#[tokio::test(flavor = "multi_thread")]
async fn conformance_suite_and_verify() {
    let Some(db) = cluster::database().await else {
        return;
    };
    let store = open(&db.app_url, small()).await;
    assert!(
        store.uses_trigram_index(),
        "pg_trgm ships with PostgreSQL 15"
    );
    conformance::run_all(&store).await;
    backfill_matches_the_counts_the_writer_keeps(&db.owner_url).await;
}

/// Migration 2 backfills the trend rollup for logs written before it; what it computes from
/// the stored events must be exactly what the writers keep up to date for new ones (and take
/// out again when a purge removes an event's payload).
async fn backfill_matches_the_counts_the_writer_keeps(owner_url: &str) {
    let client = cluster::connect(owner_url).await;
    client
        .batch_execute("SET logvault.scope_kind = 'all'")
        .await
        .expect("scope");
    let migration = logvault_postgres::MIGRATIONS
        .iter()
        .find(|(version, _)| *version == 2)
        .map(|(_, text)| *text)
        .expect("migration 2");
    let start = migration.find("SELECT dimension").expect("backfill query");
    let end = start + migration[start..].find(';').expect("end of the backfill");
    let backfill = &migration[start..end];
    let rows = |sql: String| {
        let client = &client;
        async move {
            client
                .query(&sql, &[])
                .await
                .expect("query")
                .iter()
                .map(|row| {
                    let count: i64 = row.get(4);
                    (
                        row.get::<_, i16>(0),
                        row.get::<_, String>(1),
                        row.get::<_, i64>(2),
                        row.get::<_, String>(3),
                        count,
                    )
                })
                .collect::<Vec<_>>()
        }
    };
    let kept = rows(
        "SELECT dimension, account_id, hour, key, count FROM event_trends ORDER BY 1, 2, 3, 4"
            .into(),
    )
    .await;
    let recomputed = rows(format!(
        "SELECT dimension::smallint, account_id, hour, key, count FROM \
         (WITH events AS (SELECT * FROM events WHERE purged_by IS NULL) {backfill}) AS b \
         ORDER BY 1, 2, 3, 4"
    ))
    .await;
    assert!(kept.len() > 10, "the suite wrote counts: {kept:?}");
    assert_eq!(recomputed, kept);
}

#[tokio::test(flavor = "multi_thread")]
async fn overload_is_reported_not_queued() {
    let Some(db) = cluster::database().await else {
        return;
    };
    let config = PgConfig {
        max_queued_events: 2,
        ..small()
    };
    let store = open(&db.app_url, config).await;
    let batch = (0..3)
        .map(|_| conformance::audit("platform", None, json!({})))
        .collect();
    assert!(matches!(
        store.ingest(batch).await,
        Err(StoreError::Overloaded)
    ));
    assert_eq!(store.log_size().await.expect("size"), 0);
}

/// A request PostgreSQL itself refuses (text columns cannot hold U+0000) fails alone: the
/// requests committed in the same group commit are untouched and the log stays gapless.
/// Validation refuses NUL characters, so the event is corrupted after validation to reach
/// the database at all.
#[tokio::test(flavor = "multi_thread")]
async fn a_request_the_database_refuses_fails_alone() {
    let Some(db) = cluster::database().await else {
        return;
    };
    let store = open(&db.app_url, small()).await;
    let good = |i: usize| {
        vec![conformance::audit(
            "platform",
            Some(&format!("ok-{i}")),
            json!({}),
        )]
    };
    let mut corrupted = conformance::audit("platform", Some("nul"), json!({}));
    corrupted.index.search_text.push('\u{0}');
    let bad = vec![corrupted];
    let (first, refused, last) = tokio::join!(
        store.ingest(good(1)),
        store.ingest(bad),
        store.ingest(good(2))
    );
    assert!(
        matches!(refused, Err(StoreError::Backend(_))),
        "{refused:?}"
    );
    let mut seqs = vec![first.expect("first")[0].seq, last.expect("last")[0].seq];
    seqs.sort_unstable();
    assert_eq!(seqs, [1, 2]);
    assert_verifies(&store).await;
}

/// Two nodes (two stores, each with its own writer) on one database: the log_head lock
/// serializes them, so seq and every account_seq stay gapless and the log verifies.
#[tokio::test(flavor = "multi_thread")]
async fn two_nodes_share_one_log() {
    let Some(db) = cluster::database().await else {
        return;
    };
    let first = open(&db.app_url, small()).await;
    let second = open(&db.app_url, small()).await;
    first
        .create_account(NewAccount {
            kind: AccountKind::Merchant,
            partner_id: None,
            name: "shop".into(),
            id: Some("mer_shop".into()),
        })
        .await
        .expect("account");
    let batch = |node: usize, i: usize| -> Vec<NewEvent> {
        (0..20)
            .map(|j| {
                let account = if j % 2 == 0 { "platform" } else { "mer_shop" };
                conformance::audit(account, Some(&format!("n{node}-{i}-{j}")), json!({}))
            })
            .collect()
    };
    let mut tasks = Vec::new();
    for i in 0..20 {
        tasks.push(first.ingest(batch(1, i)));
        tasks.push(second.ingest(batch(2, i)));
    }
    let mut seqs: Vec<u64> = Vec::new();
    let mut account_seqs: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for outcomes in futures_util::future::join_all(tasks).await {
        for outcome in outcomes.expect("ingest") {
            seqs.push(outcome.seq);
            account_seqs
                .entry(outcome.account_id)
                .or_default()
                .push(outcome.account_seq);
        }
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=800).collect::<Vec<u64>>());
    for (account, mut seqs) in account_seqs {
        seqs.sort_unstable();
        assert_eq!(seqs, (1..=400).collect::<Vec<u64>>(), "{account}");
    }
    // The same answer through either node.
    let query = logvault_store::EventQuery::new(logvault_core::EventKind::Audit, 1000);
    let (a, b) = (
        first.query(&Scope::All, &query).await.expect("query"),
        second.query(&Scope::All, &query).await.expect("query"),
    );
    assert_eq!(a, b);
    assert_eq!(
        first.log_head().await.expect("head"),
        second.log_head().await.expect("head")
    );
    assert_verifies(&first).await;
}

/// Every read path has an index path for every scope: lookups by id use the id table's key
/// for an admin, a partner and a merchant alike, and no read scans the event tables.
#[tokio::test(flavor = "multi_thread")]
async fn read_plans_use_an_index_for_every_scope() {
    let Some(db) = cluster::database().await else {
        return;
    };
    let store = open(&db.app_url, small()).await;
    let plans = store.read_plans().await.expect("plans");
    assert_eq!(plans.len(), 24, "eight reads for each of three scopes");
    for plan in &plans {
        let text = plan.plan.join("\n");
        let context = format!("{} as {:?}:\n{text}", plan.read, plan.scope);
        assert!(
            !text.contains("Seq Scan on events") && !text.contains("Seq Scan on event_ids"),
            "{context}"
        );
        if plan.read == "time window" {
            // The window's positions bound the index scan; a filter on received_at alone
            // would read the scope's index down to the partition's first event.
            assert!(
                plan.plan.iter().any(|line| line.contains("Index Cond")
                    && line.contains("(seq >= $")
                    && line.contains("(seq < $")),
                "{context}"
            );
        }
        let expected = match plan.read {
            "event by id" | "event by id and account" => "event_ids_pkey",
            // Driven by the group's index (bounded by the cursor), not by a walk of every
            // threat event joined to the group's rows.
            "a group's events" => "Index Cond: ((fingerprint = ",
            _ => "Index",
        };
        assert!(text.contains(expected), "{context}");
    }
}
