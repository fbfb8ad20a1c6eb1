//! Conformance: scoped reads: every scope, every filter, pagination, lookups by id, trends.

use std::collections::BTreeMap;

use logvault_core::{EventKind, Micros, NewEvent, Scope};
use serde_json::json;

use crate::{EventQuery, IpRange, Lookup, Store, TrendGroup, TrendInterval, TrendQuery};

use super::{all_events, audit, threat};

/// A change made to a query by one filter case.
type Edit = Box<dyn Fn(&mut EventQuery)>;

pub(super) async fn scoped_queries(store: &dyn Store) {
    store
        .ingest(vec![
            audit("par_b", None, json!({})),
            audit("platform", None, json!({})),
        ])
        .await
        .expect("ingest");
    let cases: Vec<(Scope, &[&str])> = vec![
        (
            Scope::All,
            &["mer_a1", "mer_a2", "mer_b1", "mer_p0", "par_b", "platform"],
        ),
        (Scope::Partner("par_a".into()), &["mer_a1", "mer_a2"]),
        (Scope::Partner("par_b".into()), &["mer_b1", "par_b"]),
        (Scope::Account("mer_a2".into()), &["mer_a2"]),
        (Scope::Account("mer_p0".into()), &["mer_p0"]),
    ];
    for (scope, expected) in cases {
        let mut seen: Vec<String> = Vec::new();
        for kind in [EventKind::Audit, EventKind::Threat] {
            let events = all_events(store, &scope, EventQuery::new(kind, 1000)).await;
            assert!(
                events.iter().all(|e| e.kind == kind),
                "{scope:?}: only {kind:?}"
            );
            seen.extend(events.into_iter().map(|e| e.account_id));
        }
        seen.sort();
        seen.dedup();
        assert_eq!(seen, expected, "{scope:?}");
        // Naming a foreign account inside a scope yields nothing.
        let mut foreign = EventQuery::new(EventKind::Threat, 1000);
        foreign.account_id = Some("mer_b1".into());
        let page = store.query(&scope, &foreign).await.expect("query");
        let visible = expected.contains(&"mer_b1");
        assert_eq!(
            !page.events.is_empty(),
            visible,
            "{scope:?} filtering mer_b1"
        );
    }
}

pub(super) async fn filters(store: &dyn Store) {
    let start = Micros::now();
    let batch = vec![
        audit(
            "mer_b1",
            Some("f-1"),
            json!({"action": "user.logout", "outcome": "failure", "actor": {"id": "usr_f"},
            "origin": {"ip": "198.51.100.7"}, "request_id": "req_f", "metadata": {"note": "Needle in a haystack"}}),
        ),
        audit(
            "mer_b1",
            Some("f-2"),
            json!({"origin": {"ip": "2001:db8::1"}, "metadata": {"note": "Überweisung \"hart\""}}),
        ),
        threat(
            "mer_b1",
            Some("f-3"),
            json!({"source": "api", "error_type": "RateLimit", "version": "API 2024-06-01", "environment": "sandbox"}),
        ),
    ];
    store.ingest(batch).await.expect("ingest");
    let scope = Scope::Account("mer_b1".into());
    fn range(low: &str, high: &str) -> Option<IpRange> {
        let bytes = |text: &str| logvault_core::validate::ip_bytes(text.parse().expect("ip"));
        Some(IpRange {
            low: bytes(low),
            high: bytes(high),
        })
    }
    let cases: Vec<(EventKind, Edit, Vec<&str>)> = vec![
        (
            EventKind::Audit,
            Box::new(|q| q.action = Some("user.logout".into())),
            vec!["f-1"],
        ),
        (
            EventKind::Audit,
            Box::new(|q| q.outcome = Some("failure".into())),
            vec!["f-1"],
        ),
        (
            EventKind::Audit,
            Box::new(|q| q.actor_id = Some("usr_f".into())),
            vec!["f-1"],
        ),
        (
            EventKind::Audit,
            Box::new(|q| q.request_id = Some("req_f".into())),
            vec!["f-1"],
        ),
        (
            EventKind::Audit,
            Box::new(|q| q.ip = range("198.51.100.0", "198.51.100.255")),
            vec!["f-1"],
        ),
        (
            EventKind::Audit,
            Box::new(|q| q.ip = range("2001:db8::", "2001:db8::ffff")),
            vec!["f-2"],
        ),
        (
            EventKind::Audit,
            Box::new(|q| q.text = Some("needle IN A".into())),
            vec!["f-1"],
        ),
        (
            EventKind::Audit,
            Box::new(|q| q.text = Some("ÜBERWEISUNG".into())),
            vec!["f-2"],
        ),
        (
            EventKind::Audit,
            Box::new(|q| q.text = Some("\"hart\"".into())),
            vec!["f-2"],
        ),
        (
            EventKind::Audit,
            Box::new(|q| q.text = Some("actor".into())),
            vec![],
        ),
        (
            EventKind::Threat,
            Box::new(|q| q.error_type = Some("RateLimit".into())),
            vec!["f-3"],
        ),
        (
            EventKind::Threat,
            Box::new(|q| q.source = Some("api".into())),
            vec!["f-3"],
        ),
        (
            EventKind::Threat,
            Box::new(|q| q.version = Some("API 2024-06-01".into())),
            vec!["f-3"],
        ),
        (
            EventKind::Threat,
            Box::new(|q| q.environment = Some("sandbox".into())),
            vec!["f-3"],
        ),
        (
            EventKind::Audit,
            Box::new(move |q| q.from = Some(start)),
            vec!["f-2", "f-1"],
        ),
        (
            EventKind::Audit,
            Box::new(move |q| q.to = Some(start)),
            vec![],
        ),
    ];
    for (index, (kind, edit, expected)) in cases.into_iter().enumerate() {
        let mut query = EventQuery::new(kind, 1000);
        query.account_id = Some("mer_b1".into());
        edit(&mut query);
        let events = all_events(store, &scope, query.clone()).await;
        let mut found: Vec<&str> = events
            .iter()
            .map(|e| e.event_id.as_str())
            .filter(|id| id.starts_with("f-"))
            .collect();
        if query.from.is_none() && query.to.is_none() {
            found.retain(|id| expected.contains(id));
            assert_eq!(
                events.len(),
                expected.len(),
                "case {index}: {query:?} returned {events:?}"
            );
        }
        assert_eq!(found, expected, "case {index}: {query:?}");
    }
}

pub(super) async fn pagination(store: &dyn Store) {
    let batch: Vec<NewEvent> = (0..25)
        .map(|i| audit("mer_a2", Some(&format!("page-{i}")), json!({})))
        .collect();
    store.ingest(batch).await.expect("ingest");
    let scope = Scope::Account("mer_a2".into());
    let mut query = EventQuery::new(EventKind::Audit, 10);
    let first = store.query(&scope, &query).await.expect("page 1");
    assert_eq!(first.events.len(), 10);
    // New events arriving between pages do not shift later pages.
    store
        .ingest(vec![audit("mer_a2", Some("late"), json!({}))])
        .await
        .expect("ingest");
    let mut seen: Vec<u64> = first.events.iter().map(|e| e.seq).collect();
    query.before_seq = first.next_before_seq;
    while query.before_seq.is_some() {
        let page = store.query(&scope, &query).await.expect("page");
        seen.extend(page.events.iter().map(|e| e.seq));
        query.before_seq = page.next_before_seq;
    }
    assert!(
        seen.windows(2).all(|w| w[0] > w[1]),
        "newest first, no repeats"
    );
    let everything = all_events(store, &scope, EventQuery::new(EventKind::Audit, 1000)).await;
    assert_eq!(
        seen.len() + 1,
        everything.len(),
        "every event once, plus the late one"
    );
}

/// A time window matches exactly the events stamped inside it, in every scope, with pages of
/// any size and at both edges: the backends turn a window into a range of positions before
/// reading (`received_at` never decreases along `seq`), and a wrong edge loses events.
pub(super) async fn time_windows(store: &dyn Store) {
    for round in 0..4 {
        let batch: Vec<NewEvent> = ["mer_a1", "mer_a2", "mer_b1"]
            .into_iter()
            .map(|account| {
                audit(
                    account,
                    Some(&format!("window-{round}-{account}")),
                    json!({}),
                )
            })
            .collect();
        store.ingest(batch).await.expect("ingest");
    }
    let mut stamps: Vec<Micros> =
        all_events(store, &Scope::All, EventQuery::new(EventKind::Audit, 1000))
            .await
            .iter()
            .filter(|e| e.event_id.starts_with("window-"))
            .map(|e| e.received_at)
            .collect();
    stamps.sort();
    stamps.dedup();
    let (first, last) = (stamps[0], stamps[stamps.len() - 1]);
    let middle = stamps[stamps.len() / 2];
    let windows = [
        (Some(first), None),
        (None, Some(middle)),
        (Some(stamps[1]), Some(last)),
        (Some(middle), Some(middle)),
        (Some(Micros(last.0 + 1)), None),
        (None, Some(first)),
    ];
    for scope in [
        Scope::All,
        Scope::Partner("par_a".into()),
        Scope::Account("mer_a2".into()),
    ] {
        let in_scope = all_events(store, &scope, EventQuery::new(EventKind::Audit, 1000)).await;
        for (from, to) in windows {
            let expected: Vec<u64> = in_scope
                .iter()
                .filter(|e| from.is_none_or(|from| e.received_at >= from))
                .filter(|e| to.is_none_or(|to| e.received_at < to))
                .map(|e| e.seq)
                .collect();
            for limit in [1, 2, 1000] {
                let mut query = EventQuery::new(EventKind::Audit, limit);
                query.from = from;
                query.to = to;
                let found: Vec<u64> = all_events(store, &scope, query)
                    .await
                    .iter()
                    .map(|e| e.seq)
                    .collect();
                assert_eq!(
                    found, expected,
                    "{scope:?} from {from:?} to {to:?}, limit {limit}"
                );
            }
        }
    }
}

pub(super) async fn lookups(store: &dyn Store) {
    store
        .ingest(vec![
            audit("mer_a1", Some("shared"), json!({})),
            audit("mer_a2", Some("shared"), json!({})),
        ])
        .await
        .expect("ingest");
    let found = |lookup: Lookup| match lookup {
        Lookup::Found(event) => format!("found {}", event.account_id),
        Lookup::NotFound => "not found".into(),
        Lookup::Ambiguous => "ambiguous".into(),
    };
    let cases: Vec<(Scope, EventKind, &str, Option<&str>, &str)> = vec![
        (Scope::All, EventKind::Audit, "shared", None, "ambiguous"),
        (
            Scope::Partner("par_a".into()),
            EventKind::Audit,
            "shared",
            None,
            "ambiguous",
        ),
        (
            Scope::Partner("par_a".into()),
            EventKind::Audit,
            "shared",
            Some("mer_a2"),
            "found mer_a2",
        ),
        (
            Scope::Account("mer_a1".into()),
            EventKind::Audit,
            "shared",
            None,
            "found mer_a1",
        ),
        (
            Scope::Account("mer_a1".into()),
            EventKind::Audit,
            "shared",
            Some("mer_a2"),
            "not found",
        ),
        (
            Scope::Partner("par_b".into()),
            EventKind::Audit,
            "shared",
            None,
            "not found",
        ),
        (Scope::All, EventKind::Threat, "shared", None, "not found"),
        (
            Scope::All,
            EventKind::Audit,
            "no-such-id",
            None,
            "not found",
        ),
    ];
    for (scope, kind, id, account, expected) in cases {
        let lookup = store
            .event(&scope, kind, id, account)
            .await
            .expect("lookup");
        assert_eq!(
            found(lookup),
            expected,
            "{scope:?} {kind:?} {id} {account:?}"
        );
    }
}

pub(super) async fn trends(store: &dyn Store) {
    let batch = vec![
        threat("mer_p0", None, json!({"version": "v1"})),
        threat("mer_p0", None, json!({"version": "v1"})),
        threat(
            "mer_p0",
            None,
            json!({"version": "v2", "environment": "sandbox"}),
        ),
    ];
    store.ingest(batch).await.expect("ingest");
    let now = Micros::now();
    let query = |group_by| TrendQuery {
        min_count: 0,
        account_id: None,
        from: Micros(now.0 - 3_600_000_000),
        to: Micros(now.0 + 1),
        group_by,
        interval: TrendInterval::Day,
    };
    let count = |rows: Vec<crate::TrendRow>| {
        let mut totals: BTreeMap<String, u64> = BTreeMap::new();
        for row in rows {
            assert_eq!(
                row.bucket.0 % TrendInterval::Day.micros(),
                0,
                "buckets start on the interval"
            );
            *totals.entry(row.key).or_default() += row.count;
        }
        totals
    };
    let scope = Scope::Account("mer_p0".into());
    let by_version = count(
        store
            .trends(&scope, &query(TrendGroup::Version))
            .await
            .expect("trends"),
    );
    assert_eq!(
        by_version,
        BTreeMap::from([("v1".to_string(), 2), ("v2".to_string(), 1)])
    );
    let by_environment = count(
        store
            .trends(&scope, &query(TrendGroup::Environment))
            .await
            .expect("trends"),
    );
    assert_eq!(
        by_environment,
        BTreeMap::from([("production".to_string(), 2), ("sandbox".to_string(), 1)])
    );
    let foreign = count(
        store
            .trends(
                &Scope::Account("mer_a1".into()),
                &query(TrendGroup::Version),
            )
            .await
            .expect("trends"),
    );
    assert!(
        !foreign.contains_key("v1") && !foreign.contains_key("v2"),
        "{foreign:?}"
    );

    // Sign-ins by outcome count exactly the `user.login` audit events a query finds.
    store
        .ingest(vec![
            audit("mer_p0", None, json!({"outcome": "failure"})),
            audit("mer_p0", None, json!({"outcome": "failure"})),
            audit("mer_p0", None, json!({})),
            audit("mer_p0", None, json!({"action": "user.logout"})),
        ])
        .await
        .expect("ingest");
    let sign_in_query = TrendQuery {
        to: Micros(Micros::now().0 + 1),
        ..query(TrendGroup::SignInOutcome)
    };
    let sign_ins = count(store.trends(&scope, &sign_in_query).await.expect("trends"));
    let by_action = count(
        store
            .trends(
                &scope,
                &TrendQuery {
                    group_by: TrendGroup::AuditAction,
                    ..sign_in_query.clone()
                },
            )
            .await
            .expect("trends"),
    );
    let mut expected: BTreeMap<String, u64> = BTreeMap::new();
    let mut expected_actions: BTreeMap<String, u64> = BTreeMap::new();
    let mut audit_query = EventQuery::new(EventKind::Audit, 1000);
    audit_query.from = Some(sign_in_query.from);
    loop {
        let page = store.query(&scope, &audit_query).await.expect("query");
        for event in &page.events {
            let body: serde_json::Value = serde_json::from_str(&event.body).expect("body");
            let text = |field: &str| body[field].as_str().unwrap_or_default().to_string();
            *expected_actions.entry(text("action")).or_default() += 1;
            if text("action") == crate::SIGN_IN_ACTION {
                *expected.entry(text("outcome")).or_default() += 1;
            }
        }
        match page.next_before_seq {
            Some(seq) => audit_query.before_seq = Some(seq),
            None => break,
        }
    }
    assert!(
        expected.get("failure").copied().unwrap_or(0) >= 2,
        "{expected:?}"
    );
    assert!(
        expected_actions.contains_key("user.logout"),
        "{expected_actions:?}"
    );
    assert_eq!(
        by_action, expected_actions,
        "audit counts by action match the events"
    );
    assert_eq!(sign_ins, expected, "sign-in counts match the events");

    // Failed sign-ins per address and hour, only where one address reaches the minimum.
    let failure_from = |ip: &str| {
        audit(
            "mer_p0",
            None,
            json!({"outcome": "failure", "origin": {"ip": ip}}),
        )
    };
    let mut batch: Vec<_> = (0..3).map(|_| failure_from("192.0.2.77")).collect();
    batch.push(failure_from("192.0.2.78"));
    batch.push(audit(
        "mer_p0",
        None,
        json!({"origin": {"ip": "192.0.2.78"}}),
    ));
    store.ingest(batch).await.expect("ingest");
    let bursts = store
        .trends(
            &scope,
            &TrendQuery {
                group_by: TrendGroup::FailedSignInIp,
                interval: TrendInterval::Hour,
                min_count: 3,
                to: Micros(Micros::now().0 + 1),
                ..sign_in_query.clone()
            },
        )
        .await
        .expect("trends");
    let keys: Vec<&str> = bursts.iter().map(|row| row.key.as_str()).collect();
    assert_eq!(keys, ["00000000000000000000ffffc000024d"], "{bursts:?}");
    assert!(bursts[0].count >= 3, "{bursts:?}");
}

/// A partner's filtered pages merge the newest matches of every account in its scope (the
/// partner's own and its merchants'), in `seq` order across page boundaries, and nothing else.
pub(super) async fn partner_filters(store: &dyn Store) {
    let mut batch = Vec::new();
    for round in 0..4 {
        for account in ["mer_a1", "par_a", "mer_b1", "mer_a2"] {
            let id = format!("pf-{account}-{round}");
            batch.push(threat(
                account,
                Some(&id),
                json!({"error_type": "PartnerFilter"}),
            ));
            batch.push(audit(
                account,
                Some(&format!("{id}-a")),
                json!({"actor": {"id": "usr_pf"}}),
            ));
        }
    }
    store.ingest(batch).await.expect("ingest");
    let scope = Scope::Partner("par_a".into());
    let cases: Vec<(EventKind, Edit, &str)> = vec![
        (
            EventKind::Threat,
            Box::new(|q| q.error_type = Some("PartnerFilter".into())),
            "",
        ),
        (
            EventKind::Audit,
            Box::new(|q| q.actor_id = Some("usr_pf".into())),
            "-a",
        ),
    ];
    for (kind, edit, suffix) in cases {
        let mut query = EventQuery::new(kind, 3);
        edit(&mut query);
        let found: Vec<String> = all_events(store, &scope, query)
            .await
            .into_iter()
            .map(|e| e.event_id)
            .collect();
        let expected: Vec<String> = (0..4)
            .rev()
            .flat_map(|round| {
                ["mer_a2", "par_a", "mer_a1"].map(|account| format!("pf-{account}-{round}{suffix}"))
            })
            .collect();
        assert_eq!(found, expected, "{kind:?} in par_a's scope");
    }
}
