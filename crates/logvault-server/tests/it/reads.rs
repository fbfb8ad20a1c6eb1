//! Reads: filters, newest-first order, cursor pagination (stable and unforgeable), lookups by
//! id across accounts, and trends.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use logvault_core::EventKind;
use serde_json::{Value, json};

use crate::support::{
    MER_A1, MER_A2, MER_B1, MER_P0, PAR_A, PLATFORM, Who, World, audit_id, base, encode, in_scope,
    shared_id, threat_event, threat_id,
};

/// Ingests the filter fixture into P0 in two requests; returns the first `received_at` of
/// the second request, which splits them in time.
async fn seed_filter_events(world: &World) -> String {
    world
        .ingest(
            Who::MerchantP0,
            EventKind::Audit,
            json!({"id": "f1", "action": "user.login", "outcome": "failure", "reason": "bad_password",
                "actor": {"id": "usr_1"}, "origin": {"ip": "203.0.113.7"}, "request_id": "req_1"}),
        )
        .await;
    world
        .ingest(
            Who::MerchantP0,
            EventKind::Threat,
            json!({"id": "t1", "source": "sdk", "error_type": "NetworkTimeout",
                "message": "request timed out after 30s", "version": "ios-sdk 4.2.1",
                "environment": "production"}),
        )
        .await;
    // received_at has microsecond resolution; make sure the second batch is later.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let rows = world
        .ingest(
            Who::MerchantP0,
            EventKind::Audit,
            json!([
                {"id": "f2", "action": "user.logout", "outcome": "success", "actor": {"id": "usr_2"},
                 "origin": {"ip": "203.0.113.200"}, "request_id": "req_2"},
                {"id": "f3", "action": "password.change", "outcome": "success", "actor": {"id": "usr_1"},
                 "origin": {"ip": "2001:db8::1"}, "request_id": "req_3",
                 "metadata": {"note": "Rotated by HELPDESK"}},
            ]),
        )
        .await;
    world
        .ingest(
            Who::MerchantP0,
            EventKind::Threat,
            json!([
                {"id": "t2", "source": "api", "error_type": "CardDeclined",
                 "message": "card declined by issuer", "version": "API 2024-06-01",
                 "environment": "sandbox", "api": {"method": "POST", "path": "/v1/payments", "status": 402}},
                {"id": "t3", "source": "sdk", "error_type": "NetworkTimeout",
                 "message": "Überweisung timed out \"hard\"",
                 "version": "android-sdk 3.0.0", "environment": "sandbox"},
            ]),
        )
        .await;
    rows[0]["received_at"]
        .as_str()
        .expect("received_at")
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn each_filter_selects_exactly_its_events_newest_first() {
    let world = World::new().await;
    let split = seed_filter_events(&world).await;
    let fixture_audit = audit_id(MER_P0);
    let fixture_threat = threat_id(MER_P0);
    let split = encode(&split);
    let cases: Vec<(EventKind, String, Vec<&str>)> = vec![
        (
            EventKind::Audit,
            String::new(),
            vec!["f3", "f2", "f1", &fixture_audit],
        ),
        (
            EventKind::Audit,
            "action=user.login".into(),
            vec!["f1", &fixture_audit],
        ),
        (EventKind::Audit, "action=user.logout".into(), vec!["f2"]),
        (EventKind::Audit, "outcome=failure".into(), vec!["f1"]),
        (
            EventKind::Audit,
            "outcome=success".into(),
            vec!["f3", "f2", &fixture_audit],
        ),
        (EventKind::Audit, "actor_id=usr_1".into(), vec!["f3", "f1"]),
        (EventKind::Audit, "ip=203.0.113.7".into(), vec!["f1"]),
        (
            EventKind::Audit,
            "ip=203.0.113.0/24".into(),
            vec!["f2", "f1"],
        ),
        (
            EventKind::Audit,
            "ip=198.51.100.0/24".into(),
            vec![&fixture_audit],
        ),
        (
            EventKind::Audit,
            format!("ip={}", encode("2001:db8::/32")),
            vec!["f3"],
        ),
        (
            EventKind::Audit,
            format!("ip={}", encode("2001:db8::1")),
            vec!["f3"],
        ),
        (EventKind::Audit, "ip=10.0.0.0/8".into(), vec![]),
        (EventKind::Audit, "request_id=req_2".into(), vec!["f2"]),
        (EventKind::Audit, "q=helpdesk".into(), vec!["f3"]),
        (EventKind::Audit, "q=BAD_PASSWORD".into(), vec!["f1"]),
        (
            EventKind::Audit,
            "action=user.login&outcome=success".into(),
            vec![&fixture_audit],
        ),
        (EventKind::Audit, format!("from={split}"), vec!["f3", "f2"]),
        (
            EventKind::Audit,
            format!("to={split}"),
            vec!["f1", &fixture_audit],
        ),
        (EventKind::Audit, "limit=2".into(), vec!["f3", "f2"]),
        (
            EventKind::Threat,
            String::new(),
            vec!["t3", "t2", "t1", &fixture_threat],
        ),
        (
            EventKind::Threat,
            "error_type=NetworkTimeout".into(),
            vec!["t3", "t1"],
        ),
        (EventKind::Threat, "source=api".into(), vec!["t2"]),
        (
            EventKind::Threat,
            "source=sdk".into(),
            vec!["t3", "t1", &fixture_threat],
        ),
        (
            EventKind::Threat,
            format!("version={}", encode("API 2024-06-01")),
            vec!["t2"],
        ),
        (
            EventKind::Threat,
            format!("version={}", encode("ios-sdk 4.2.1")),
            vec!["t1"],
        ),
        (
            EventKind::Threat,
            "environment=sandbox".into(),
            vec!["t3", "t2"],
        ),
        (EventKind::Threat, "q=issuer".into(), vec!["t2"]),
        (EventKind::Threat, "q=ISSUER".into(), vec!["t2"]),
        // Text search is over the event's text, whatever its script or punctuation.
        (
            EventKind::Threat,
            format!("q={}", encode("Überweisung")),
            vec!["t3"],
        ),
        (
            EventKind::Threat,
            format!("q={}", encode("überweisung")),
            vec!["t3"],
        ),
        (
            EventKind::Threat,
            format!("q={}", encode("out \"hard\"")),
            vec!["t3"],
        ),
        // Field names and JSON punctuation are not text of the event.
        (EventKind::Threat, "q=error_type".into(), vec![]),
        (EventKind::Audit, "q=actor".into(), vec![]),
        (
            EventKind::Threat,
            format!("q={}", encode("/v1/payments")),
            vec!["t2"],
        ),
        (EventKind::Threat, format!("from={split}"), vec!["t3", "t2"]),
        (
            EventKind::Threat,
            format!("to={split}"),
            vec!["t1", &fixture_threat],
        ),
        (
            EventKind::Threat,
            "environment=sandbox&source=sdk".into(),
            vec!["t3"],
        ),
    ];
    let mut failures = Vec::new();
    for (kind, filter, expected) in &cases {
        // Read as admin with an account filter, so the reads' own logs.viewed events land
        // on the platform account rather than among the events being filtered.
        let uri = format!("{}?account_id={MER_P0}&{filter}", base(*kind));
        let reply = world.get(Who::Admin, &uri).await;
        if reply.status.as_u16() != 200 {
            failures.push(format!("{uri}: {} {}", reply.status, reply.text()));
            continue;
        }
        if reply.ids() != *expected {
            failures.push(format!(
                "{uri}: got {:?}, expected {expected:?}",
                reply.ids()
            ));
        }
        let seqs: Vec<u64> = reply
            .rows()
            .iter()
            .map(|row| row["seq"].as_u64().unwrap_or(0))
            .collect();
        if seqs.windows(2).any(|pair| pair[0] <= pair[1]) {
            failures.push(format!("{uri}: not newest first: {seqs:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Follows `next_cursor` from `first_uri` to the end, ingesting `between` after each page;
/// returns every row's `(seq, account_id, id)`.
async fn walk(
    world: &World,
    who: Who,
    first_uri: &str,
    between: impl AsyncFn(usize),
) -> Vec<(u64, String, String)> {
    let mut rows = Vec::new();
    let mut uri = first_uri.to_string();
    for page in 0.. {
        assert!(page < 1000, "the walk does not end");
        let reply = world.get(who, &uri).await;
        reply.assert_status(200);
        for row in reply.rows() {
            rows.push((
                row["seq"].as_u64().expect("seq"),
                row["account_id"].as_str().expect("account").to_string(),
                row["id"].as_str().expect("id").to_string(),
            ));
        }
        match reply.json()["next_cursor"].as_str() {
            Some(cursor) => {
                between(page).await;
                uri = format!("{first_uri}&cursor={}", encode(cursor));
            }
            None => return rows,
        }
    }
    rows
}

#[tokio::test(flavor = "multi_thread")]
async fn cursors_walk_every_event_once_while_new_events_arrive() {
    let world = World::new().await;
    for account in [MER_A1, MER_A2, PAR_A, MER_B1] {
        let events: Vec<Value> = (0..12)
            .map(|n| threat_event(&format!("page-{account}-{n}"), account))
            .collect();
        world
            .ingest(Who::Admin, EventKind::Threat, Value::Array(events))
            .await;
    }
    let cases = [
        (Who::MerchantA1, 5, format!("&account_id={MER_A1}")),
        (Who::MerchantA1, 3, String::new()),
        (Who::PartnerA, 7, String::new()),
        (Who::PartnerA, 1, "&source=api".to_string()),
        (Who::Admin, 10, String::new()),
    ];
    for (n_case, (who, limit, filter)) in cases.iter().enumerate() {
        let uri = format!("/v1/threat-events?limit={limit}{filter}");
        let everything = world
            .get(*who, &format!("/v1/threat-events?limit=1000{filter}"))
            .await;
        everything.assert_status(200);
        assert!(
            everything.json()["next_cursor"].is_null(),
            "one page holds all"
        );
        let before: Vec<(u64, String, String)> = everything
            .rows()
            .iter()
            .map(|row| {
                (
                    row["seq"].as_u64().expect("seq"),
                    row["account_id"].as_str().expect("account").to_string(),
                    row["id"].as_str().expect("id").to_string(),
                )
            })
            .collect();
        assert!(before.len() > 3, "{uri}: enough rows to page through");
        let walked = walk(&world, *who, &uri, async |page| {
            // New events in every account, in scope or not, between pages.
            let events: Vec<Value> = [MER_A1, MER_A2, PAR_A, MER_B1]
                .iter()
                .map(|account| threat_event(&format!("late-{n_case}-{page}-{account}"), account))
                .collect();
            world
                .ingest(Who::Admin, EventKind::Threat, Value::Array(events))
                .await;
        })
        .await;
        assert_eq!(
            walked, before,
            "{who:?} {uri}: the walk sees exactly the events present at its start"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn edited_cursors_never_reveal_foreign_rows() {
    let world = World::new().await;
    let events: Vec<Value> = (0..20)
        .map(|n| threat_event(&format!("cur-{n}"), [MER_A1, MER_B1][n % 2]))
        .collect();
    world
        .ingest(Who::Admin, EventKind::Threat, Value::Array(events))
        .await;
    // A real cursor from an admin's walk over every account.
    let reply = world.get(Who::Admin, "/v1/threat-events?limit=3").await;
    let cursor = reply.json()["next_cursor"]
        .as_str()
        .expect("a cursor")
        .to_string();
    let mut edited: BTreeSet<String> = BTreeSet::new();
    edited.insert(cursor.clone());
    for (i, c) in cursor.char_indices() {
        for replacement in ['0', '1', '7', 'f', 'F', 'z', '-'] {
            if replacement != c {
                let mut text = cursor.clone();
                text.replace_range(i..i + c.len_utf8(), &replacement.to_string());
                edited.insert(text);
            }
        }
    }
    edited.insert(format!("{cursor}0"));
    edited.insert(cursor[..cursor.len() - 1].to_string());
    let mut n_accepted = 0;
    for who in [Who::MerchantB1, Who::MerchantA1, Who::PartnerB] {
        for cursor in &edited {
            for filter in [String::new(), format!("&account_id={MER_A1}")] {
                let uri = format!(
                    "/v1/threat-events?limit=1000&cursor={}{filter}",
                    encode(cursor)
                );
                let reply = world.get(who, &uri).await;
                match reply.status.as_u16() {
                    200 => {
                        n_accepted += 1;
                        for row in reply.rows() {
                            let account = row["account_id"].as_str().unwrap_or("");
                            assert!(
                                in_scope(who, account),
                                "{who:?} saw {account} through cursor {cursor:?}"
                            );
                        }
                    }
                    400 => reply.assert_problem(400, "invalid-cursor"),
                    404 => {
                        assert!(!filter.is_empty() && !in_scope(who, MER_A1), "{uri}: 404");
                        reply.assert_problem(404, "not-found");
                    }
                    other => panic!("{who:?} {uri}: unexpected {other}: {}", reply.text()),
                }
            }
        }
    }
    assert!(n_accepted > 0, "at least the genuine cursor is accepted");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_id_used_by_several_accounts_in_scope_is_ambiguous() {
    let world = World::new().await;
    // The fixture stores the shared ids of both kinds in A1, A2 and B1.
    let cases: Vec<(Who, Option<&str>, u16, Option<&str>)> = vec![
        (Who::Admin, None, 409, None),
        (Who::PartnerA, None, 409, None),
        (Who::PartnerB, None, 200, Some(MER_B1)),
        (Who::MerchantA1, None, 200, Some(MER_A1)),
        (Who::MerchantA2, None, 200, Some(MER_A2)),
        (Who::MerchantB1, None, 200, Some(MER_B1)),
        (Who::MerchantP0, None, 404, None),
        (Who::Admin, Some(MER_A1), 200, Some(MER_A1)),
        (Who::Admin, Some(MER_B1), 200, Some(MER_B1)),
        (Who::Admin, Some(MER_P0), 404, None),
        (Who::Admin, Some(PLATFORM), 404, None),
        (Who::PartnerA, Some(MER_A2), 200, Some(MER_A2)),
        (Who::PartnerA, Some(MER_B1), 404, None),
        (Who::PartnerA, Some(PAR_A), 404, None),
        (Who::PartnerB, Some(MER_A1), 404, None),
        (Who::MerchantA1, Some(MER_A2), 404, None),
        (Who::MerchantA1, Some(MER_A1), 200, Some(MER_A1)),
    ];
    for kind in [EventKind::Audit, EventKind::Threat] {
        for (who, account, status, found_in) in &cases {
            let query = account
                .map(|a| format!("?account_id={a}"))
                .unwrap_or_default();
            let uri = format!("{}/{}{query}", base(kind), shared_id(kind));
            let reply = world.get(*who, &uri).await;
            let context = format!("{who:?} {uri}: {}", reply.text());
            match status {
                409 => reply.assert_problem(409, "ambiguous-id"),
                404 => reply.assert_problem(404, "not-found"),
                _ => {
                    assert_eq!(reply.status.as_u16(), *status, "{context}");
                    let body = reply.json();
                    assert_eq!(body["id"], shared_id(kind), "{context}");
                    assert_eq!(body["account_id"].as_str(), *found_in, "{context}");
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn trends_count_the_events_in_scope() {
    let world = World::new().await;
    seed_filter_events(&world).await;
    let cases = [
        (Who::MerchantP0, "", "error_type"),
        (Who::MerchantP0, "&interval=day", "environment"),
        (Who::PartnerA, "", "version"),
        (
            Who::PartnerA,
            &format!("&account_id={MER_A2}"),
            "error_type",
        ),
        (Who::Admin, "", "error_type"),
        (Who::Admin, "&interval=day", "version"),
        (Who::Admin, &format!("&account_id={MER_P0}"), "environment"),
        (Who::MerchantB1, "", "environment"),
    ];
    for (who, extra, group_by) in cases {
        let trends = world
            .get(
                who,
                &format!("/v1/threat-events/trends?group_by={group_by}{extra}"),
            )
            .await;
        trends.assert_status(200);
        let body = trends.json();
        let mut counted: BTreeMap<String, u64> = BTreeMap::new();
        for series in body["series"].as_array().cloned().unwrap_or_default() {
            let key = series["key"].as_str().unwrap_or("?").to_string();
            for point in series["points"].as_array().cloned().unwrap_or_default() {
                *counted.entry(key.clone()).or_default() += point["count"].as_u64().unwrap_or(0);
            }
        }
        let account_filter = extra
            .split('&')
            .find_map(|part| part.strip_prefix("account_id="))
            .map(|account| format!("&account_id={account}"))
            .unwrap_or_default();
        let listed = world
            .get(
                who,
                &format!("/v1/threat-events?limit=1000{account_filter}"),
            )
            .await;
        let mut expected: BTreeMap<String, u64> = BTreeMap::new();
        for row in listed.rows() {
            let key = row[group_by].as_str().unwrap_or("").to_string();
            *expected.entry(key).or_default() += 1;
        }
        assert!(!expected.is_empty(), "{who:?}: something to count");
        assert_eq!(
            counted, expected,
            "{who:?} group_by={group_by}{extra}: {body}"
        );
        assert_eq!(
            body["total"],
            expected.values().sum::<u64>(),
            "{who:?}: total"
        );
    }
    // P0's own data, spelled out.
    let reply = world
        .get(
            Who::MerchantP0,
            "/v1/threat-events/trends?group_by=error_type",
        )
        .await;
    let totals: BTreeMap<String, u64> = reply.json()["series"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|series| {
            let sum = series["points"]
                .as_array()
                .map(|points| points.iter().filter_map(|p| p["count"].as_u64()).sum())
                .unwrap_or(0);
            (series["key"].as_str().unwrap_or("?").to_string(), sum)
        })
        .collect();
    let expected: BTreeMap<String, u64> = [
        ("CardDeclined", 1),
        ("FixtureError", 1),
        ("NetworkTimeout", 2),
    ]
    .into_iter()
    .map(|(key, count)| (key.to_string(), count))
    .collect();
    assert_eq!(totals, expected);
}
