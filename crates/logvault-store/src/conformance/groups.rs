//! Conformance: threat event groups — one group per bug whatever its ids, first and last
//! seen, counts by version × environment, regressions and spikes, the events of a group,
//! and scope: an account never sees another's group or its events, even through counts, and
//! a partner's counts add up its merchants'. The events are received in the future (after
//! every other check), because regressions need days between events.

use logvault_core::{AccountKind, Micros, NewEvent, Scope};
use serde_json::json;

use super::{account, all_events, threat};
use crate::groups::{
    self, GroupCounts, GroupQuery, GroupSort, GroupStatus, fingerprint_number, fingerprint_of,
};
use crate::trends::HOUR;
use crate::{EventQuery, Store};

const DAY: i64 = 24 * HOUR;

fn at(event: NewEvent, when: i64) -> NewEvent {
    NewEvent {
        demo_received_at: Some(Micros(when)),
        ..event
    }
}

fn declined(account: &str, payment: &str, version: &str, environment: &str) -> NewEvent {
    threat(
        account,
        None,
        json!({"source": "api", "error_type": "CardDeclined",
               "message": format!("payment {payment} declined: code 51 after 1200 ms"),
               "version": version, "environment": environment,
               "api": {"method": "POST", "path": format!("/v1/payments/{payment}/confirm"), "status": 402}}),
    )
}

fn timeout(account: &str, seconds: u32) -> NewEvent {
    threat(
        account,
        None,
        json!({"message": format!("request timed out after {seconds}s"),
               "version": "ios-sdk 5.0.0", "environment": "production"}),
    )
}

pub(super) async fn threat_groups(store: &dyn Store) {
    account(store, AccountKind::Partner, "par_grp", None).await;
    account(store, AccountKind::Merchant, "mer_grp_a", Some("par_grp")).await;
    account(store, AccountKind::Merchant, "mer_grp_b", Some("par_grp")).await;
    account(store, AccountKind::Merchant, "mer_grp_c", None).await;
    // Far enough ahead that no event of the other checks is later.
    let start = (Micros::now().0 / DAY + 400) * DAY;
    let back = start + 10 * DAY;
    let batches = vec![
        vec![
            at(
                declined("mer_grp_a", "pay_1a2b3c", "1.0", "production"),
                start,
            ),
            at(
                declined("mer_grp_a", "pay_9z8y7", "1.0", "sandbox"),
                start + HOUR,
            ),
            at(
                declined("mer_grp_b", "pay_55x", "1.0", "production"),
                start + HOUR,
            ),
        ],
        // Ten days later, in a new version: a regression in mer_grp_a.
        vec![
            at(declined("mer_grp_a", "pay_77q", "2.0", "production"), back),
            at(
                declined("mer_grp_c", "pay_0th3r", "2.0", "production"),
                back,
            ),
        ],
        // Twelve timeouts of mer_grp_c in the hour: a spike over a baseline of nothing.
        (0..12)
            .map(|i| at(timeout("mer_grp_c", 10 + i), back + 60_000_000))
            .collect(),
    ];
    for batch in batches {
        store.ingest(batch).await.expect("ingest");
    }
    let now = Micros(back + 30 * 60 * 1_000_000);
    let list = |scope: Scope, query: GroupQuery| async move {
        let data = store
            .threat_group_data(&scope, &query.data_query(None))
            .await
            .expect("group data");
        groups::list(&data, &query)
    };
    let base = GroupQuery::new(now, 50);
    let declined_fp = fingerprint_of(&declined("x", "pay_1", "", "").body)
        .expect("fingerprint")
        .0;
    let timeout_fp = fingerprint_of(&timeout("x", 1).body)
        .expect("fingerprint")
        .0;
    assert_ne!(declined_fp, timeout_fp);

    // A merchant sees its own group only, counted from its own events only.
    let page = list(Scope::Account("mer_grp_a".into()), base.clone()).await;
    assert_eq!(page.groups.len(), 1, "{page:?}");
    let group = &page.groups[0];
    assert_eq!(fingerprint_number(&group.fingerprint), Some(declined_fp));
    assert_eq!((group.total, group.count, group.n_accounts), (3, 3, 1));
    assert_eq!(
        group.message,
        "payment pay_<id> declined: code <num> after <num> ms"
    );
    assert_eq!(group.location, "POST /v1/payments/{id}/confirm");
    assert_eq!(
        (group.first_seen, group.last_seen),
        (Micros(start), Micros(back))
    );
    assert_eq!(group.first_version, "1.0");
    let regression = group.regression.clone().expect("regressed in mer_grp_a");
    assert_eq!(regression.quiet_since, Micros(start + HOUR));
    assert_eq!(regression.returned_at, Micros(back));
    assert_eq!(regression.new_versions, ["2.0"]);
    assert!(group.spike.is_none());

    // mer_grp_b's only event came before the gap: the same group, no regression, one event.
    let page = list(Scope::Account("mer_grp_b".into()), base.clone()).await;
    assert_eq!(page.groups.len(), 1);
    assert_eq!(page.groups[0].total, 1);
    assert!(page.groups[0].regression.is_none());

    // The partner's group adds up its merchants' events, and none of mer_grp_c's.
    let page = list(Scope::Partner("par_grp".into()), base.clone()).await;
    assert_eq!(page.groups.len(), 1, "{page:?}");
    assert_eq!((page.groups[0].total, page.groups[0].n_accounts), (4, 2));
    assert!(
        page.groups[0].regression.is_some(),
        "regressed in one merchant"
    );

    // mer_grp_c: the declined payment is new there (first seen now), the timeouts spike.
    let page = list(Scope::Account("mer_grp_c".into()), base.clone()).await;
    assert_eq!(page.groups.len(), 2);
    let spiking = page
        .groups
        .iter()
        .find(|g| fingerprint_number(&g.fingerprint) == Some(timeout_fp))
        .expect("the timeouts");
    let spike = spiking.spike.expect("spiking");
    assert_eq!(spike.current_hour, 12);
    assert_eq!(
        spiking.series.last(),
        Some(&12),
        "the series ends with the current hour"
    );
    let declined_c = page
        .groups
        .iter()
        .find(|g| fingerprint_number(&g.fingerprint) == Some(declined_fp))
        .expect("declined");
    assert!(
        declined_c.regression.is_none(),
        "its first events, not a return"
    );
    assert_eq!(declined_c.first_version, "2.0");

    // Status filters, environment filter, order by count, pages.
    let status = |status| GroupQuery {
        status: Some(status),
        ..base.clone()
    };
    let all = Scope::Account("mer_grp_c".into());
    let spikes = list(all.clone(), status(GroupStatus::Spiking)).await;
    assert_eq!(spikes.groups.len(), 1);
    let new_in_2 = GroupQuery {
        version: Some("2.0".into()),
        ..status(GroupStatus::New)
    };
    assert_eq!(list(all.clone(), new_in_2.clone()).await.groups.len(), 1);
    let new_in_1 = GroupQuery {
        version: Some("1.0".into()),
        ..new_in_2.clone()
    };
    assert!(list(all.clone(), new_in_1).await.groups.is_empty());
    let regressed = list(
        Scope::Partner("par_grp".into()),
        status(GroupStatus::Regressed),
    )
    .await;
    assert_eq!(regressed.groups.len(), 1);
    assert!(
        list(all.clone(), status(GroupStatus::Regressed))
            .await
            .groups
            .is_empty()
    );
    let sandbox = GroupQuery {
        environment: Some("sandbox".into()),
        ..base.clone()
    };
    let page = list(Scope::Partner("par_grp".into()), sandbox).await;
    assert_eq!(page.groups.len(), 1);
    assert_eq!(page.groups[0].count, 1, "only the sandbox event is counted");
    let by_count = GroupQuery {
        sort: GroupSort::Count,
        limit: 1,
        ..base.clone()
    };
    let first = list(all.clone(), by_count.clone()).await;
    assert_eq!(first.groups.len(), 1);
    assert_eq!(
        fingerprint_number(&first.groups[0].fingerprint),
        Some(timeout_fp)
    );
    let second = list(
        all.clone(),
        GroupQuery {
            after: first.next,
            ..by_count
        },
    )
    .await;
    assert_eq!(second.groups.len(), 1);
    assert!(
        second
            .groups
            .iter()
            .all(|g| g.fingerprint != first.groups[0].fingerprint)
    );

    // The detail: counts by version × environment, within the reader's scope.
    let base = &base;
    let detail = |scope: Scope| async move {
        let data = store
            .threat_group_data(&scope, &base.data_query(Some(declined_fp)))
            .await
            .expect("group data");
        groups::detail(&data, base, declined_fp)
    };
    let partner = detail(Scope::Partner("par_grp".into()))
        .await
        .expect("in scope");
    assert_eq!(
        partner.by_version,
        [
            ("1.0".to_string(), "production".to_string(), 2),
            ("1.0".to_string(), "sandbox".to_string(), 1),
            ("2.0".to_string(), "production".to_string(), 1),
        ]
    );
    assert_eq!(
        partner.series.iter().sum::<u64>(),
        1,
        "the last 7 days hold one event"
    );
    let c = detail(Scope::Account("mer_grp_c".into()))
        .await
        .expect("in scope");
    assert_eq!(
        c.by_version,
        [("2.0".to_string(), "production".to_string(), 1)]
    );
    assert!(detail(Scope::Account("nobody".into())).await.is_none());
    assert!(
        list(Scope::Account("nobody".into()), GroupQuery::new(now, 50))
            .await
            .groups
            .is_empty()
    );

    // The events of a group, scoped like every read.
    let mut query = EventQuery::new(logvault_core::EventKind::Threat, 2);
    query.fingerprint = Some(declined_fp);
    let partner_events = all_events(store, &Scope::Partner("par_grp".into()), query.clone()).await;
    assert_eq!(partner_events.len(), 4, "every page of the group");
    assert!(partner_events.windows(2).all(|w| w[0].seq > w[1].seq));
    let c_events = all_events(store, &Scope::Account("mer_grp_c".into()), query.clone()).await;
    assert_eq!(c_events.len(), 1);
    assert!(c_events.iter().all(|e| e.account_id == "mer_grp_c"));
    query.environment = Some("sandbox".into());
    let sandbox_events = all_events(store, &Scope::All, query.clone()).await;
    assert_eq!(sandbox_events.len(), 1);
    query.environment = None;
    query.text = Some("declined".into());
    let searched = all_events(store, &Scope::Account("mer_grp_a".into()), query).await;
    assert_eq!(searched.len(), 3, "text search within a group");

    // What is stored is what counting the log again gives, account by account, and every
    // stored fingerprint is the one of its event's body.
    for account in ["mer_grp_a", "mer_grp_b", "mer_grp_c"] {
        let scope = Scope::Account(account.into());
        let snapshot = store.group_snapshot(&scope).await.expect("snapshot");
        let mut counted = GroupCounts::default();
        let scanned = store.scan(&scope, 0, 10_000).await.expect("scan");
        for event in &scanned {
            let body = &event.event.body;
            if event.event.kind == logvault_core::EventKind::Threat {
                assert_eq!(
                    event.fingerprint,
                    fingerprint_of(body).map(|(number, _)| number),
                    "the stored fingerprint of {}",
                    event.event.seq
                );
                counted.count(
                    account,
                    event.event.seq,
                    event.event.received_at,
                    body,
                    event.index.version.as_deref(),
                    event.index.environment.as_deref(),
                );
            }
        }
        assert_eq!(snapshot.difference(&counted), None, "{account}");
        assert!(!snapshot.groups.is_empty());
    }
}
