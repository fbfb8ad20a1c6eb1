//! Conformance: the trend rollup as verification reads it — one snapshot, scoped like every
//! read — and verification of the rollup while events keep arriving.

use std::sync::atomic::{AtomicBool, Ordering};

use logvault_core::{NewEvent, Scope};
use serde_json::json;

use super::{audit, threat};
use crate::trends::dimension;
use crate::verify::{VerifyOptions, verify_log};
use crate::{Store, StoredTrendRow, TrendGroup};

pub(super) async fn trend_snapshot(store: &dyn Store) {
    let all = store.trend_snapshot(&Scope::All).await.expect("snapshot");
    let log_size = store.log_size().await.expect("size");
    assert_eq!(all.log_size, log_size, "the snapshot's size is the log's");
    // Every threat event is counted once by version, every audit event once by action.
    let total = |group: TrendGroup| -> i64 {
        all.rows
            .iter()
            .filter(|row| row.dimension == i64::from(dimension(group)))
            .map(|row| row.count)
            .sum()
    };
    assert_eq!(
        total(TrendGroup::Version) + total(TrendGroup::AuditAction),
        i64::try_from(log_size).unwrap_or(i64::MAX),
        "every event is counted"
    );
    let sorted = |mut rows: Vec<StoredTrendRow>| {
        rows.sort_by(|a, b| {
            (a.dimension, &a.account_id, a.hour, &a.key).cmp(&(
                b.dimension,
                &b.account_id,
                b.hour,
                &b.key,
            ))
        });
        rows
    };
    let scopes = [
        (Scope::Account("mer_a1".into()), vec!["mer_a1"]),
        (
            Scope::Partner("par_a".into()),
            vec!["par_a", "mer_a1", "mer_a2"],
        ),
        (Scope::Account("nobody".into()), vec![]),
    ];
    for (scope, accounts) in scopes {
        let scoped = store.trend_snapshot(&scope).await.expect("snapshot");
        assert_eq!(scoped.log_size, log_size, "{scope:?}: the whole log's size");
        let expected: Vec<StoredTrendRow> = all
            .rows
            .iter()
            .filter(|row| accounts.contains(&row.account_id.as_str()))
            .cloned()
            .collect();
        assert!(
            accounts.is_empty() || !expected.is_empty(),
            "{scope:?} has counts"
        );
        assert_eq!(sorted(scoped.rows), sorted(expected), "{scope:?}");
    }
}

/// The rollup is read in one snapshot before the scan, so it verifies exactly while other
/// requests commit between and during the reads.
pub(super) async fn verify_while_ingesting(store: &dyn Store) {
    let done = AtomicBool::new(false);
    let ingesting = async {
        for i in 0..12 {
            let batch: Vec<NewEvent> = (0..40)
                .map(|j| {
                    let account = if j % 2 == 0 { "mer_a1" } else { "mer_b1" };
                    match j % 4 {
                        0 => threat(account, None, json!({"version": format!("v{i}")})),
                        1 => audit(
                            account,
                            None,
                            json!({"outcome": "failure", "origin": {"ip": format!("192.0.2.{j}")}}),
                        ),
                        2 => audit(account, None, json!({"action": "user.logout"})),
                        _ => audit(account, None, json!({})),
                    }
                })
                .collect();
            store.ingest(batch).await.expect("ingest");
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
            let report = verify_log(store, &options, &mut |_, _| {})
                .await
                .expect("verify");
            assert_eq!(report.divergence, None, "run {runs}: {report:?}");
            runs += 1;
            if finished {
                return runs;
            }
        }
    };
    let ((), runs) = tokio::join!(ingesting, verifying);
    assert!(runs >= 2, "verified during and after ingest");
}
