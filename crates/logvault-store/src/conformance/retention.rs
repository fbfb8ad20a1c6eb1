//! Conformance: retention policies, holds and purges. The clock is the caller's: events are
//! stored now, and a purge at a chosen instant with zero-day policies expires exactly the
//! events received before it, so nothing here sleeps.

use logvault_core::{AccountKind, EventKind, Micros, Scope, merkle};
use serde_json::json;

use crate::retention::{
    PURGED_ACTION, PurgeBatch, RetentionChange, RetentionDefaults, purge_expired,
};
use crate::verify::{VerifyOptions, verify_log};
use crate::{EventQuery, Lookup, Store, StoreError};

use super::{account, all_events, audit, futures_join_all, threat};

/// Deployment defaults that keep everything unless a policy says otherwise.
const KEEP: RetentionDefaults = RetentionDefaults {
    audit_days: 1000,
    threat_days: 1000,
    floor_days: 0,
    archive: false,
};

async fn set(store: &dyn Store, account_id: &str, kind: EventKind, days: u32) {
    let change = RetentionChange::SetPolicy {
        account_id: account_id.into(),
        kind,
        policy: Some((days, false)),
    };
    let record = change.record("cli:test", "system");
    store
        .change_retention(change, record)
        .await
        .expect("set policy");
}

async fn logins(store: &dyn Store, account_id: &str) -> Vec<u64> {
    let mut query = EventQuery::new(EventKind::Audit, 100);
    query.action = Some("user.login".into());
    all_events(store, &Scope::Account(account_id.into()), query)
        .await
        .iter()
        .map(|event| event.seq)
        .collect()
}

pub(super) async fn retention(store: &dyn Store) {
    account(store, AccountKind::Partner, "par_ret", None).await;
    account(store, AccountKind::Merchant, "mer_ret1", Some("par_ret")).await;
    account(store, AccountKind::Merchant, "mer_ret2", Some("par_ret")).await;
    account(store, AccountKind::Merchant, "mer_ret3", None).await;
    let old: Vec<_> = (0..3)
        .map(|i| audit("mer_ret1", Some(&format!("old-{i}")), json!({})))
        .chain([threat("mer_ret1", None, json!({}))])
        .chain((0..2).map(|_| audit("mer_ret2", None, json!({}))))
        .chain((0..2).map(|_| audit("mer_ret3", None, json!({}))))
        .collect();
    let stored = store.ingest(old).await.expect("ingest");
    let instant = Micros(stored[0].received_at.0 + 1);
    let newer = store
        .ingest(vec![audit("mer_ret1", Some("new-0"), json!({}))])
        .await
        .expect("ingest");
    assert!(newer[0].received_at > instant, "the clock moved on");

    // The partner's policy covers its merchants; a merchant's own policy beats it.
    set(store, "par_ret", EventKind::Audit, 0).await;
    set(store, "mer_ret2", EventKind::Audit, 1000).await;
    set(store, "mer_ret3", EventKind::Audit, 0).await;
    let hold = RetentionChange::PlaceHold {
        account_id: "mer_ret3".into(),
        reason: "case 42".into(),
    };
    let record = hold.record("cli:test", "system");
    store
        .change_retention(hold, record)
        .await
        .expect("place hold");
    let state = store.retention_state().await.expect("state");
    assert_eq!(state.policies.len(), 3);
    assert_eq!(state.holds[0].account_id, "mer_ret3");

    // A hold beats any policy, in the store itself too.
    let held = PurgeBatch {
        account_id: "mer_ret3".into(),
        kind: EventKind::Audit,
        cutoff: instant,
        from_seq: stored[5].seq,
        to_seq: stored[6].seq,
        count: 2,
        days: 0,
        source: "account:mer_ret3".into(),
    };
    assert!(matches!(
        store.purge(held).await,
        Err(StoreError::Invalid(_))
    ));

    // Ingest goes on while the purge runs; nothing it acknowledges is touched.
    let ingesting = futures_join_all((0..4).map(|i| {
        store.ingest(vec![audit(
            "mer_ret1",
            Some(&format!("during-{i}")),
            json!({}),
        )])
    }));
    let purging = purge_expired(store, &KEEP, instant, 2, None);
    let (acked, run) = tokio::join!(ingesting, purging);
    let run = run.expect("purge");
    assert_eq!(run.events(), 3, "mer_ret1's three old sign-ins: {run:?}");
    assert_eq!(run.purges.len(), 2, "in batches of two");
    assert!(run.held.iter().any(|(id, _, _)| id == "mer_ret3"));
    let mut kept = vec![newer[0].seq];
    kept.extend(
        acked
            .into_iter()
            .map(|outcome| outcome.expect("ingest")[0].seq),
    );
    kept.sort_unstable();
    kept.reverse();
    assert_eq!(logins(store, "mer_ret1").await, kept);
    assert_eq!(logins(store, "mer_ret2").await.len(), 2, "own policy");
    assert_eq!(logins(store, "mer_ret3").await.len(), 2, "under hold");
    let threats = all_events(
        store,
        &Scope::Account("mer_ret1".into()),
        EventQuery::new(EventKind::Threat, 10),
    )
    .await;
    assert_eq!(threats.len(), 1, "threat events follow their own policy");
    let gone = store
        .event(&Scope::All, EventKind::Audit, "old-0", Some("mer_ret1"))
        .await
        .expect("lookup");
    assert_eq!(gone, Lookup::NotFound, "a purged event is not served");

    // Each batch is recorded in the log, in the purged account's scope only.
    let purges = store
        .purges(&Scope::Account("mer_ret1".into()))
        .await
        .expect("purges");
    assert_eq!(purges, run.purges);
    assert!(
        store
            .purges(&Scope::Account("mer_ret2".into()))
            .await
            .expect("purges")
            .is_empty()
    );
    let mut records = EventQuery::new(EventKind::Audit, 10);
    records.action = Some(PURGED_ACTION.into());
    let records = all_events(store, &Scope::Account("mer_ret1".into()), records).await;
    assert_eq!(records.len(), 2);

    // Proofs of every event, purged or not, still verify, and so does the whole log.
    let head = store.log_head().await.expect("head");
    for seq in [stored[0].seq, newer[0].seq] {
        let proof = store
            .inclusion_proof(&Scope::All, seq, head.size)
            .await
            .expect("proof")
            .expect("in scope");
        let leaf = if seq == newer[0].seq {
            newer[0].leaf_hash
        } else {
            stored[0].leaf_hash
        };
        merkle::verify_inclusion(&leaf, seq - 1, head.size, &proof, &head.root)
            .expect("the proof holds after the purge");
    }
    let report = verify_log(store, &VerifyOptions::default(), &mut |_, _| {})
        .await
        .expect("verify");
    assert_eq!(report.divergence, None, "verify passes on a purged log");
    assert_eq!(report.purges, purges);

    // A second run finds nothing more; lifting the hold lets the policy apply.
    let again = purge_expired(store, &KEEP, instant, 2, None)
        .await
        .expect("purge");
    assert_eq!(again.events(), 0);
    let lift = RetentionChange::LiftHold {
        account_id: "mer_ret3".into(),
    };
    let record = lift.record("cli:test", "system");
    store
        .change_retention(lift, record)
        .await
        .expect("lift hold");
    let lifted = purge_expired(store, &KEEP, instant, 100, None)
        .await
        .expect("purge");
    assert_eq!(lifted.events(), 2);
    assert!(logins(store, "mer_ret3").await.is_empty());
    let lift = RetentionChange::LiftHold {
        account_id: "mer_ret3".into(),
    };
    let record = lift.record("cli:test", "system");
    assert!(matches!(
        store.change_retention(lift, record).await,
        Err(StoreError::Invalid(_))
    ));
    let report = verify_log(store, &VerifyOptions::default(), &mut |_, _| {})
        .await
        .expect("verify");
    assert_eq!(report.divergence, None);
}
