//! The trend rollup under verification: changed behind the store's back by the owner role
//! (the grants let the owner change it and, being derived data, no trigger guards it), each
//! change is reported as an `event_trends` divergence; and with two nodes ingesting while
//! `verify` runs, the rollup snapshot still verifies exactly.

use std::sync::atomic::{AtomicBool, Ordering};

use logvault_core::account::NewAccount;
use logvault_core::{AccountKind, NewEvent};
use logvault_store::verify::{VerifyOptions, verify_log};
use logvault_store::{Store, conformance};
use serde_json::json;

use crate::cluster::{self, connect};
use crate::store::{assert_verifies, open, small};

/// Runs `sql` as the owner in one committed transaction, with the row-level-security scope
/// set to all accounts so that every row is visible to it.
async fn as_owner(owner: &tokio_postgres::Client, sql: &str) {
    owner
        .batch_execute(&format!(
            "BEGIN; SELECT set_config('logvault.scope_kind', 'all', true); {sql}; COMMIT"
        ))
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

fn mixed_batch(round: usize) -> Vec<NewEvent> {
    (0..100)
        .map(|i| {
            let account = if i % 3 == 0 { "mer_y" } else { "mer_x" };
            match i % 4 {
                0 => conformance::threat(account, None, json!({"version": format!("v{round}")})),
                1 => conformance::audit(
                    account,
                    None,
                    json!({"outcome": "failure", "origin": {"ip": "203.0.113.9"}}),
                ),
                _ => conformance::audit(account, None, json!({"metadata": {"note": "some text"}})),
            }
        })
        .collect()
}

async fn merchants(store: &dyn Store) {
    for account in ["mer_x", "mer_y"] {
        let new = NewAccount {
            kind: AccountKind::Merchant,
            partner_id: None,
            name: account.into(),
            id: Some(account.into()),
        };
        store.create_account(new).await.expect("account");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_catches_every_change_to_the_trend_rollup() {
    let Some(db) = cluster::database().await else {
        return;
    };
    let store = open(&db.app_url, small()).await;
    merchants(&store).await;
    for round in 0..3 {
        store.ingest(mixed_batch(round)).await.expect("ingest");
    }
    assert_verifies(&store).await;
    let owner = connect(&db.owner_url).await;
    as_owner(
        &owner,
        "CREATE TEMP TABLE kept AS SELECT * FROM event_trends",
    )
    .await;
    // (case, SQL, what the message must say). Dimensions: 0 version, 1 environment,
    // 2 error type, 3 sign-in outcome, 4 audit action, 5 failed sign-in address.
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
            "DELETE FROM event_trends WHERE dimension = 5 AND account_id = 'mer_x'",
            "dimension 5 (failed sign-in address), account \"mer_x\", hour ",
        ),
        (
            "row moved to another hour",
            "UPDATE event_trends SET hour = hour + 1000 * 3600000000 WHERE dimension = 1",
            "dimension 1 (environment), account \"mer_x\", hour ",
        ),
    ];
    for (case, sql, expected) in cases {
        as_owner(&owner, sql).await;
        let report = verify_log(&store, &VerifyOptions::default(), &mut |_, _| {})
            .await
            .expect("verify runs");
        let divergence = report
            .divergence
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
        assert!(
            !divergence.message.contains("some text"),
            "{case}: {divergence}"
        );
        as_owner(
            &owner,
            "DELETE FROM event_trends; INSERT INTO event_trends SELECT * FROM kept",
        )
        .await;
        assert_verifies(&store).await;
    }
}

/// Two nodes ingest while a third verifies: each writer updates the rollup under the
/// log-head lock in its inserting transaction, so the one-snapshot read matches the log
/// exactly at every moment.
#[tokio::test(flavor = "multi_thread")]
async fn the_rollup_verifies_while_two_nodes_ingest() {
    let Some(db) = cluster::database().await else {
        return;
    };
    let (first, second, verifier) = (
        open(&db.app_url, small()).await,
        open(&db.app_url, small()).await,
        open(&db.app_url, small()).await,
    );
    merchants(&first).await;
    let done = AtomicBool::new(false);
    let ingesting = async {
        for round in 0..10 {
            let (a, b) = tokio::join!(
                first.ingest(mixed_batch(round)),
                second.ingest(mixed_batch(round + 100))
            );
            a.expect("first node");
            b.expect("second node");
        }
        done.store(true, Ordering::Relaxed);
    };
    let options = VerifyOptions {
        chunk_events: Some(64),
        ..VerifyOptions::default()
    };
    let verifying = async {
        let mut runs = 0;
        loop {
            let finished = done.load(Ordering::Relaxed);
            let report = verify_log(&verifier, &options, &mut |_, _| {})
                .await
                .expect("verify runs");
            assert_eq!(report.divergence, None, "run {runs}: {report:?}");
            runs += 1;
            if finished {
                return runs;
            }
        }
    };
    let ((), runs) = tokio::join!(ingesting, verifying);
    assert!(runs >= 2, "verified during and after ingest");
    assert_verifies(&verifier).await;
}
