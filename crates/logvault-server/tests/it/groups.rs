//! `GET /v1/threat-groups`, `GET /v1/threat-groups/{fingerprint}` and the events of a group
//! (`GET /v1/threat-events?fingerprint=`) for every principal: a group and its counts are
//! those of the accounts in the reader's scope only, and a group with no event in scope is
//! absent (404); bad parameters are problems.

use std::collections::BTreeMap;

use logvault_core::EventKind;
use logvault_sqlite::SqliteConfig;
use serde_json::{Value, json};

use crate::support::*;

/// A bug every merchant of the fixture hits, each with its own ids, `n` times per account.
fn shared_bug(account: &str, i: usize) -> Value {
    json!({"account_id": account, "source": "api", "error_type": "CardDeclined",
           "message": format!("payment pay_{i}x{account} declined after {i}00 ms"),
           "version": "API 2025-03-15", "environment": if i.is_multiple_of(2) { "production" } else { "sandbox" },
           "api": {"method": "POST", "path": format!("/v1/payments/pay_{i}x/confirm")}})
}

/// A bug only `account` hits.
fn own_bug(account: &str) -> Value {
    json!({"account_id": account, "source": "sdk", "error_type": format!("Only{account}"),
           "message": "something only this account hits", "version": "ios-sdk 4.2.1"})
}

const HITS: [(&str, usize); 4] = [(MER_A1, 3), (MER_A2, 2), (MER_B1, 5), (MER_P0, 1)];

async fn world() -> World {
    let world = World::with_config(SqliteConfig::default(), false).await;
    let mut events = Vec::new();
    for (account, n) in HITS {
        events.extend((0..n).map(|i| shared_bug(account, i)));
        events.push(own_bug(account));
    }
    world
        .ingest(Who::Admin, EventKind::Threat, Value::Array(events))
        .await;
    world
}

/// `error_type → (count, n_accounts, fingerprint)` of a group list.
fn groups_of(reply: &Reply) -> BTreeMap<String, (u64, u64, String)> {
    reply.assert_status(200);
    reply
        .rows()
        .iter()
        .map(|group| {
            (
                group["error_type"].as_str().unwrap_or_default().to_string(),
                (
                    group["count"].as_u64().unwrap_or_default(),
                    group["n_accounts"].as_u64().unwrap_or_default(),
                    group["fingerprint"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                ),
            )
        })
        .collect()
}

#[tokio::test]
async fn every_reader_sees_the_groups_and_counts_of_its_scope_only() {
    let world = world().await;
    let everything = groups_of(&world.get(Who::Admin, "/v1/threat-groups").await);
    let shared = everything["CardDeclined"].2.clone();
    for who in Who::ALL.into_iter().filter(|who| who.may("read")) {
        let reply = world.get(who, "/v1/threat-groups").await;
        let groups = groups_of(&reply);
        let visible: Vec<(&str, usize)> = HITS
            .into_iter()
            .filter(|(account, _)| in_scope(who, account))
            .collect();
        let mut expected = BTreeMap::new();
        let n_shared: usize = visible.iter().map(|(_, n)| n).sum();
        if n_shared > 0 {
            expected.insert(
                "CardDeclined".to_string(),
                (n_shared as u64, visible.len() as u64, shared.clone()),
            );
        }
        for (account, _) in &visible {
            let own = everything[&format!("Only{account}")].clone();
            expected.insert(format!("Only{account}"), (1, 1, own.2));
        }
        assert_eq!(groups, expected, "{who:?}");

        // The detail: the counts by version and environment are the scope's, and another
        // scope's group is absent.
        let detail = world.get(who, &format!("/v1/threat-groups/{shared}")).await;
        if n_shared == 0 {
            detail.assert_problem(404, "not-found");
        } else {
            detail.assert_status(200);
            let by_version = detail.json()["by_version"].clone();
            let total: u64 = by_version
                .as_array()
                .expect("by_version")
                .iter()
                .map(|row| row["count"].as_u64().unwrap_or_default())
                .sum();
            assert_eq!(total, n_shared as u64, "{who:?}: {by_version}");
        }
        for (account, _) in HITS {
            let own = &everything[&format!("Only{account}")].2;
            let reply = world.get(who, &format!("/v1/threat-groups/{own}")).await;
            if in_scope(who, account) {
                reply.assert_status(200);
            } else {
                reply.assert_problem(404, "not-found");
            }
        }

        // The group's events: every one in scope, none outside.
        let events = world
            .get(
                who,
                &format!("/v1/threat-events?fingerprint={shared}&limit=1000"),
            )
            .await;
        events.assert_status(200);
        let accounts: Vec<String> = events
            .rows()
            .iter()
            .map(|event| event["account_id"].as_str().unwrap_or_default().to_string())
            .collect();
        assert_eq!(accounts.len(), n_shared, "{who:?}");
        assert!(
            accounts.iter().all(|account| in_scope(who, account)),
            "{who:?}"
        );
    }
    // Unauthenticated readers get nothing.
    world
        .get(Who::Anonymous, "/v1/threat-groups")
        .await
        .assert_status(401);
}

#[tokio::test]
async fn filters_pages_and_bad_parameters() {
    let world = world().await;
    let sandbox = groups_of(
        &world
            .get(Who::PartnerA, "/v1/threat-groups?environment=sandbox")
            .await,
    );
    // A1's i = 1 and A2's i = 1 are the sandbox events of partner A.
    assert_eq!(sandbox.len(), 1);
    assert_eq!(sandbox["CardDeclined"].0, 2);
    let first = world
        .get(Who::Admin, "/v1/threat-groups?sort=count&limit=2")
        .await;
    first.assert_status(200);
    let rows = first.rows();
    assert_eq!(rows[0]["error_type"], "CardDeclined");
    assert_eq!(rows[0]["count"], 11);
    assert_eq!(
        rows[0]["events"],
        format!(
            "/v1/threat-events?fingerprint={}",
            rows[0]["fingerprint"].as_str().unwrap_or_default()
        )
    );
    let mut seen: Vec<String> = rows.iter().map(|g| g["fingerprint"].to_string()).collect();
    let mut cursor = first.json()["next_cursor"].as_str().map(str::to_string);
    while let Some(next) = cursor {
        let page = world
            .get(
                Who::Admin,
                &format!("/v1/threat-groups?sort=count&limit=2&cursor={next}"),
            )
            .await;
        page.assert_status(200);
        seen.extend(page.rows().iter().map(|g| g["fingerprint"].to_string()));
        cursor = page.json()["next_cursor"].as_str().map(str::to_string);
    }
    let n_seen = seen.len();
    seen.sort();
    seen.dedup();
    assert_eq!((n_seen, seen.len()), (5, 5), "every group once");
    let new = groups_of(&world.get(Who::Admin, "/v1/threat-groups?status=new").await);
    assert_eq!(new.len(), 5, "everything was first seen now");
    let regressed = groups_of(
        &world
            .get(Who::Admin, "/v1/threat-groups?status=regressed")
            .await,
    );
    assert!(regressed.is_empty());
    for bad in [
        "/v1/threat-groups?status=broken",
        "/v1/threat-groups?sort=size",
        "/v1/threat-groups?limit=0",
        "/v1/threat-groups?quiet_days=0",
        "/v1/threat-groups?since=yesterday",
        "/v1/threat-groups?since=2026-02-01T00:00:00Z&until=2026-01-01T00:00:00Z",
        "/v1/threat-groups?unknown=1",
        "/v1/threat-groups/0123456789abcdef?status=new",
        "/v1/threat-events?fingerprint=XYZ",
        "/v1/threat-events?fingerprint=0123456789ABCDEF",
        "/v1/audit-events?fingerprint=0123456789abcdef",
    ] {
        world
            .get(Who::Admin, bad)
            .await
            .assert_problem(400, "invalid-query");
    }
    world
        .get(Who::Admin, "/v1/threat-groups?cursor=g123")
        .await
        .assert_problem(400, "invalid-cursor");
    for absent in [
        "/v1/threat-groups/nothex",
        "/v1/threat-groups/0123456789abcdef",
    ] {
        world
            .get(Who::Admin, absent)
            .await
            .assert_problem(404, "not-found");
    }
}
