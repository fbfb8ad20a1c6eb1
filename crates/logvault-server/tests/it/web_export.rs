//! Export of the current filter as CSV or NDJSON, through the API endpoints the Logs page
//! links to: scoped like list, filtered, streamed, recorded as `logs.exported`, and with
//! spreadsheet formulas neutralised.

use std::collections::BTreeSet;
use std::time::Duration;

use logvault_core::EventKind;
use serde_json::{Value, json};

use super::web_support::{get_with, sign_in, world_with_people};
use crate::support::{ACCOUNTS, MER_A1, MER_B1, PAR_A, PLATFORM, Who, World, audit_id, in_scope};

/// Parses RFC 4180 CSV (quoted cells, doubled quotes, CRLF records).
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let (mut records, mut record, mut cell) = (Vec::new(), Vec::new(), String::new());
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                cell.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => cell.push(c),
            (false, '"') => quoted = true,
            (false, ',') => record.push(std::mem::take(&mut cell)),
            (false, '\r') => {}
            (false, '\n') => {
                record.push(std::mem::take(&mut cell));
                records.push(std::mem::take(&mut record));
            }
            (false, c) => cell.push(c),
        }
    }
    records
}

fn accounts_of_ndjson(text: &str) -> BTreeSet<String> {
    text.lines()
        .map(|line| serde_json::from_str::<Value>(line).expect("one JSON object per line"))
        .map(|event| event["account_id"].as_str().expect("account").to_string())
        .collect()
}

async fn wait_for_exports(world: &World, account: &str, n_events: usize) -> usize {
    for _ in 0..250 {
        let found = world
            .stored_matching(EventKind::Audit, account, Some("logs.exported"))
            .await
            .len();
        if found >= n_events {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    0
}

#[tokio::test]
async fn exports_are_scoped_for_people_and_keys() {
    let world = world_with_people().await;
    let cases = [
        ("ada-admin", Who::Admin, PLATFORM),
        ("pat-partner", Who::PartnerA, PAR_A),
        ("mo-merchant", Who::MerchantA1, MER_A1),
    ];
    for (username, who, own) in cases {
        let expected: BTreeSet<String> = ACCOUNTS
            .iter()
            .filter(|a| in_scope(who, a))
            .map(|a| a.to_string())
            .collect();
        let cookie = sign_in(&world, username).await;
        for kind in ["audit", "threat"] {
            let uri = format!("/v1/{kind}-events/export?format=ndjson");
            let by_session = get_with(&world, Some(&cookie), &uri).await;
            by_session.assert_status(200);
            assert_eq!(by_session.content_type(), "application/x-ndjson");
            let by_key = world.get(who, &uri).await;
            by_key.assert_status(200);
            for reply in [&by_session, &by_key] {
                let seen = accounts_of_ndjson(&reply.text());
                // Audit exports also hold the sign-ins; every fixture account in scope has events.
                assert!(
                    seen.is_subset(&expected) && expected.iter().all(|a| seen.contains(a)),
                    "{username} {kind}: {seen:?}"
                );
            }
        }
        let filtered = get_with(&world, Some(&cookie), &format!("/v1/audit-events/export?format=csv&account_id={own}&action=user.login&request_id=req-{own}")).await;
        filtered.assert_status(200);
        assert!(filtered.content_type().starts_with("text/csv"));
        let disposition = filtered.headers["content-disposition"]
            .to_str()
            .expect("ascii");
        assert!(
            disposition.starts_with("attachment; filename=\"audit-events-"),
            "{disposition}"
        );
        let records = parse_csv(&filtered.text());
        assert_eq!(records.len(), 2, "header and one event: {records:?}");
        assert_eq!(records[0][0], "seq");
        let id_column = records[0]
            .iter()
            .position(|h| h == "id")
            .expect("id column");
        assert_eq!(records[1][id_column], audit_id(own));
        assert!(
            wait_for_exports(&world, own, 5).await >= 5,
            "{username}: exports recorded"
        );
    }
    let partner = sign_in(&world, "pat-partner").await;
    let cases = [
        (
            format!("/v1/audit-events/export?format=csv&account_id={MER_B1}"),
            404,
        ),
        ("/v1/audit-events/export".to_string(), 400),
        ("/v1/audit-events/export?format=xlsx".to_string(), 400),
        (
            "/v1/audit-events/export?format=csv&limit=10".to_string(),
            400,
        ),
        (
            "/v1/threat-events/export?format=csv&action=x".to_string(),
            400,
        ),
    ];
    for (uri, status) in cases {
        let reply = get_with(&world, Some(&partner), &uri).await;
        assert_eq!(reply.status.as_u16(), status, "{uri}: {}", reply.text());
        assert!(!reply.text().contains("Account mer_b1"));
    }
    assert_eq!(
        world
            .get(Who::Anonymous, "/v1/threat-events/export?format=csv")
            .await
            .status
            .as_u16(),
        401
    );
}

#[tokio::test]
async fn csv_cells_are_escaped_and_formulas_neutralised() {
    let world = world_with_people().await;
    let hostile = [
        ("actor", "=HYPERLINK(\"http://evil.example\",\"click\")"),
        ("reason", "+SUM(1,2)"),
        ("request_id", "-2+3"),
        ("action", "-cmd"),
    ];
    world
        .ingest(
            Who::MerchantA1,
            EventKind::Audit,
            json!({"id": "evt-csv", "action": hostile[3].1,
            "outcome": "failure", "reason": hostile[1].1, "request_id": hostile[2].1,
            "actor": {"id": hostile[0].1, "type": "user", "name": "Smith, \"Jo\"\nsecond line"},
            "metadata": {"note": "a,b"}}),
        )
        .await;
    let cookie = sign_in(&world, "mo-merchant").await;
    // The request id is unique to this event; `-2+3` encoded.
    let uri = "/v1/audit-events/export?format=csv&request_id=-2%2B3";
    let reply = get_with(&world, Some(&cookie), uri).await;
    reply.assert_status(200);
    let records = parse_csv(&reply.text());
    assert_eq!(records.len(), 2, "{}", reply.text());
    let cell = |name: &str| {
        let at = records[0].iter().position(|h| h == name).expect("column");
        records[1][at].clone()
    };
    for (column, value) in [
        ("actor_id", hostile[0].1),
        ("reason", hostile[1].1),
        ("request_id", hostile[2].1),
        ("action", hostile[3].1),
    ] {
        assert_eq!(cell(column), format!("'{value}"), "{column}");
    }
    assert_eq!(cell("actor_name"), "Smith, \"Jo\"\nsecond line");
    let metadata: Value = serde_json::from_str(&cell("metadata")).expect("metadata JSON");
    assert_eq!(metadata["note"], "a,b", "{metadata}");
    assert_eq!(cell("id"), "evt-csv");
}

#[tokio::test]
async fn the_page_links_to_the_export_of_its_filter() {
    let world = world_with_people().await;
    let cookie = sign_in(&world, "pat-partner").await;
    let html = get_with(
        &world,
        Some(&cookie),
        &format!("/audit?range=30d&action=user.login&account_id={MER_A1}"),
    )
    .await
    .text();
    // minijinja escapes `/` and `&` in attributes; a browser decodes them.
    let html = html.replace("&#x2f;", "/").replace("&amp;", "&");
    let marker = "href=\"/v1/audit-events/export?format=csv";
    let start = html.find(marker).expect("an export link") + "href=\"".len();
    let link = html[start..].split('"').next().expect("link").to_string();
    assert!(
        link.contains("action=user.login")
            && link.contains(&format!("account_id={MER_A1}"))
            && link.contains("from="),
        "{link}"
    );
    let reply = get_with(&world, Some(&cookie), &link).await;
    reply.assert_status(200);
    let records = parse_csv(&reply.text());
    let account_at = records[0]
        .iter()
        .position(|h| h == "account_id")
        .expect("column");
    assert!(records.len() >= 2, "{records:?}");
    assert!(
        records[1..].iter().all(|r| r[account_at] == MER_A1),
        "{records:?}"
    );
}

/// A session cookie travels with links from other sites too: an export the browser marks
/// as cross-site is refused, while one from the Logs page itself (or typed) proceeds.
#[tokio::test(flavor = "multi_thread")]
async fn session_exports_refuse_cross_site_requests() {
    use axum::body::Body;
    use axum::http::{Method, Request, header};
    let world = world_with_people().await;
    let cookie = sign_in(&world, "pat-partner").await;
    let cases = [
        (Some("cross-site"), 403),
        (Some("same-site"), 403),
        (Some("same-origin"), 200),
        (Some("none"), 200),
        (None, 200),
    ];
    for (site, expected) in cases {
        let mut builder = Request::builder()
            .method(Method::GET)
            .uri("/v1/audit-events/export?format=ndjson")
            .header(header::COOKIE, &cookie);
        if let Some(site) = site {
            builder = builder.header("sec-fetch-site", site);
        }
        let reply = world
            .send_request(builder.body(Body::empty()).expect("request"))
            .await;
        assert_eq!(reply.status.as_u16(), expected, "Sec-Fetch-Site: {site:?}");
    }
}
