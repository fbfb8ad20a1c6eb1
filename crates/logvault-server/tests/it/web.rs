//! The Logs page over HTTP: every page for every role (status, content, and no trace of
//! accounts outside the viewer's scope), sign-in events, CSRF, session expiry and fixation,
//! and the 404 that looks the same for foreign and missing events.

#[path = "web_defences.rs"]
mod defences;
#[path = "web_export.rs"]
mod export;
#[path = "web_problems.rs"]
mod problems;
#[path = "web_retention.rs"]
mod retention;
#[path = "web_session.rs"]
mod session;
#[path = "web_support.rs"]
mod web_support;

use std::time::Duration;

use logvault_core::EventKind;
use serde_json::json;

use crate::support::{ACCOUNTS, MER_A1, MER_A2, MER_B1, PAR_A, PLATFORM, Who, audit_id, threat_id};
use web_support::*;

/// The accounts a fixture person may see.
fn visible(username: &str) -> Vec<&'static str> {
    let who = match username {
        "ada-admin" => Who::Admin,
        "pat-partner" => Who::PartnerA,
        _ => Who::MerchantA1,
    };
    crate::support::scope_of(who).into_iter().collect()
}

/// Asserts that `html` mentions no account outside `visible`, nor its name or events.
#[track_caller]
fn assert_no_foreign(html: &str, visible: &[&str], page: &str) {
    for account in ACCOUNTS.iter().filter(|a| !visible.contains(a)) {
        for needle in [
            account.to_string(),
            format!("Account {account}"),
            audit_id(account),
            threat_id(account),
        ] {
            assert!(!html.contains(&needle), "{page} shows {needle:?}");
        }
    }
}

#[tokio::test]
async fn every_page_for_every_role_shows_its_scope_only() {
    let world = world_with_people().await;
    for (username, _, own) in PEOPLE {
        let cookie = sign_in(&world, username).await;
        let visible = visible(username);
        let (audit, threat) = (audit_id(own), threat_id(own));
        let pages: Vec<(String, Vec<&str>)> = vec![
            (
                "/".into(),
                vec![
                    "Overview",
                    "Sign-ins: successful vs failed",
                    "Top error types",
                ],
            ),
            (
                "/?range=30d".into(),
                vec!["Errors by version", "Errors by environment", "FixtureError"],
            ),
            ("/audit".into(), vec!["Audit logs", &audit, "Export CSV"]),
            (
                "/audit?range=24h&outcome=success&action=user.login".into(),
                vec![&audit],
            ),
            (
                "/threat".into(),
                vec!["Threat logs", &threat, "fixture error"],
            ),
            (
                "/threat?range=7d&source=sdk&environment=staging".into(),
                vec![&threat],
            ),
            ("/trends".into(), vec!["Threat trends", "FixtureError"]),
            (
                "/trends?group_by=version&interval=hour&range=24h".into(),
                vec!["fixture 1.0"],
            ),
            (
                format!("/audit/{audit}?account_id={own}"),
                vec!["Leaf hash", "leaf hash matches", "user.login"],
            ),
            (
                format!("/threat/{threat}"),
                vec!["FixtureError", "Redactions", "Nothing needed scrubbing"],
            ),
        ];
        for (page, expected) in &pages {
            let reply = get_with(&world, Some(&cookie), page).await;
            let html = reply.text();
            assert_eq!(reply.status.as_u16(), 200, "{username} {page}: {html}");
            for needle in expected {
                assert!(html.contains(needle), "{username} {page} lacks {needle:?}");
            }
            assert!(
                html.contains(username),
                "{username} {page}: the header names the viewer"
            );
            assert_no_foreign(&html, &visible, &format!("{username} {page}"));
            let csp = reply.headers.get("content-security-policy").expect("CSP");
            let csp = csp.to_str().expect("ascii");
            assert!(csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"));
            assert_eq!(reply.headers["x-content-type-options"], "nosniff");
            assert_eq!(reply.headers["referrer-policy"], "same-origin");
            assert!(!html.contains("<script>"), "no inline script on {page}");
        }
        // Every page read is itself an audit event on the reader's account.
        let views = world
            .wait_for_views(own, pages.len(), Duration::from_secs(5))
            .await;
        assert!(
            views.len() >= pages.len(),
            "{username}: {} views recorded",
            views.len()
        );
    }
}

#[tokio::test]
async fn account_selectors_list_exactly_the_scope() {
    let world = world_with_people().await;
    let cases = [
        ("ada-admin", ACCOUNTS.to_vec()),
        ("pat-partner", vec![PAR_A, MER_A1, MER_A2]),
        ("mo-merchant", vec![]),
    ];
    for (username, expected) in cases {
        let cookie = sign_in(&world, username).await;
        for page in ["/audit", "/threat", "/trends", "/"] {
            let html = get_with(&world, Some(&cookie), page).await.text();
            let mut options: Vec<String> = html
                .match_indices("<option value=\"")
                .map(|(at, marker)| {
                    html[at + marker.len()..]
                        .split('"')
                        .next()
                        .unwrap_or("")
                        .to_string()
                })
                .filter(|value| ACCOUNTS.contains(&value.as_str()))
                .collect();
            options.sort();
            let mut expected: Vec<String> = expected.iter().map(|a| a.to_string()).collect();
            expected.sort();
            assert_eq!(options, expected, "{username} {page}");
            assert_eq!(
                html.contains("name=\"account_id\""),
                username != "mo-merchant",
                "{username} {page}"
            );
        }
    }
}

#[tokio::test]
async fn foreign_events_and_accounts_look_missing() {
    let world = world_with_people().await;
    let cookie = sign_in(&world, "pat-partner").await;
    let cases = [
        format!("/audit/{}", audit_id(MER_B1)),
        format!("/audit/{}?account_id={MER_B1}", audit_id(MER_B1)),
        format!("/threat/{}", threat_id(PLATFORM)),
        format!("/audit/{}", threat_id(MER_A1)),
    ];
    for uri in cases {
        let tab = uri.split('/').nth(1).expect("tab");
        let missing = get_with(&world, Some(&cookie), &format!("/{tab}/no-such-event")).await;
        assert_eq!(missing.status.as_u16(), 404);
        let reply = get_with(&world, Some(&cookie), &uri).await;
        assert_eq!(reply.status.as_u16(), 404, "{uri}");
        assert_eq!(
            reply.text(),
            missing.text(),
            "{uri} differs from a missing event"
        );
    }
    for uri in [
        format!("/audit?account_id={MER_B1}"),
        format!("/trends?account_id={MER_B1}"),
    ] {
        let reply = get_with(&world, Some(&cookie), &uri).await;
        assert_eq!(reply.status.as_u16(), 404, "{uri}");
        assert!(!reply.text().contains("Account mer_b1"), "{uri}");
    }
    // An id used by two of the partner's merchants asks which one.
    let reply = get_with(&world, Some(&cookie), "/audit/evt-shared").await;
    reply.assert_status(200);
    let html = reply.text();
    assert!(
        html.contains(MER_A1) && html.contains(MER_A2) && !html.contains(MER_B1),
        "{html}"
    );
}

#[tokio::test]
async fn bad_filters_and_hostile_content() {
    let world = world_with_people().await;
    let hostile = "<script>alert(1)</script>";
    world
        .ingest(Who::MerchantA1, EventKind::Audit, json!({"id": "evt-xss", "action": "user.login",
            "outcome": "failure", "reason": hostile, "actor": {"id": "\"><img src=x onerror=alert(1)>", "type": "user"}}))
        .await;
    let cookie = sign_in(&world, "mo-merchant").await;
    for page in ["/audit", "/audit/evt-xss", "/audit?q=script"] {
        let html = get_with(&world, Some(&cookie), page).await.text();
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;"),
            "{page}: {html}"
        );
        assert!(
            !html.contains(hostile) && !html.contains("<img src=x"),
            "{page} is not escaped"
        );
    }
    for page in [
        "/audit?outcome=maybe",
        "/audit?ip=nope",
        "/threat?range=1y",
        "/audit?cursor=zzz",
        "/threat?source=cli",
    ] {
        let reply = get_with(&world, Some(&cookie), page).await;
        assert_eq!(reply.status.as_u16(), 400, "{page}");
        assert!(
            reply.text().contains("mo-merchant"),
            "{page}: the error page keeps the layout"
        );
    }
    let empty = get_with(&world, Some(&cookie), "/threat?q=nothing-matches-this").await;
    assert!(
        empty
            .text()
            .contains("No threat events match these filters"),
        "{}",
        empty.text()
    );
}

#[tokio::test]
async fn sign_in_attempts_are_audit_events() {
    let world = world_with_people().await;
    create_person(
        &world,
        "dora-disabled",
        logvault_core::Role::Merchant,
        MER_A2,
        true,
    )
    .await;
    let cases = [
        (
            "mo-merchant",
            PASSWORD,
            MER_A1,
            "success",
            None,
            user_id("mo-merchant"),
        ),
        (
            "mo-merchant",
            "wrong",
            MER_A1,
            "failure",
            Some("bad_password"),
            user_id("mo-merchant"),
        ),
        (
            "nobody",
            PASSWORD,
            PLATFORM,
            "failure",
            Some("unknown_user"),
            "nobody".to_string(),
        ),
        (
            "dora-disabled",
            PASSWORD,
            MER_A2,
            "failure",
            Some("disabled"),
            user_id("dora-disabled"),
        ),
    ];
    for (username, password, account, outcome, reason, actor) in cases {
        let before = world
            .stored_matching(EventKind::Audit, account, Some("user.login"))
            .await
            .len();
        let reply = attempt(&world, username, password).await;
        let signed_in = cookie_value(&reply, "logvault_session").is_some_and(|t| !t.is_empty());
        assert_eq!(
            signed_in,
            outcome == "success",
            "{username}/{password}: {}",
            reply.text()
        );
        if outcome == "failure" {
            assert!(
                reply.text().contains("Wrong username or password."),
                "{username}"
            );
        }
        let events = world
            .stored_matching(EventKind::Audit, account, Some("user.login"))
            .await;
        assert_eq!(
            events.len(),
            before + 1,
            "{username}: one event per attempt"
        );
        let body: serde_json::Value = serde_json::from_str(&events[0].body).expect("json");
        assert_eq!(body["outcome"], outcome, "{body}");
        assert_eq!(body["reason"].as_str(), reason, "{body}");
        assert_eq!(body["actor"]["id"], actor.as_str(), "{body}");
        assert_eq!(body["actor"]["type"], "user", "{body}");
    }
    // Sign-out is recorded too.
    let cookie = sign_in(&world, "mo-merchant").await;
    let csrf = csrf_field(&get_with(&world, Some(&cookie), "/").await.text());
    let logouts = || world.stored_matching(EventKind::Audit, MER_A1, Some("user.logout"));
    let before = logouts().await.len();
    let reply = post_form(&world, Some(&cookie), "/logout", &format!("csrf={csrf}")).await;
    assert_eq!(reply.status.as_u16(), 303);
    let after = logouts().await;
    assert_eq!(after.len(), before + 1);
    let body: serde_json::Value = serde_json::from_str(&after[0].body).expect("json");
    assert_eq!(
        body["actor"]["id"],
        user_id("mo-merchant").as_str(),
        "{body}"
    );
}

#[tokio::test]
async fn live_tail_streams_new_events_in_scope() {
    use futures_util::StreamExt;
    use tower::ServiceExt;

    let world = world_with_people().await;
    let cookie = sign_in(&world, "pat-partner").await;
    let top = world.store.log_size().await.expect("size");
    let request = axum::http::Request::builder()
        .uri(format!("/tail/audit?after={top}&action=tail.test"))
        .header("cookie", &cookie)
        .body(axum::body::Body::empty())
        .expect("request");
    let response = world.app.clone().oneshot(request).await.expect("response");
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    for (id, account) in [("tail-foreign", MER_B1), ("tail-own", MER_A2)] {
        world
            .ingest(Who::Admin, EventKind::Audit, json!({"id": id, "account_id": account,
                "action": "tail.test", "outcome": "success", "actor": {"id": "usr_t", "type": "user"}}))
            .await;
    }
    let mut body = response.into_body().into_data_stream();
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !seen.contains("tail-own") {
        let chunk = tokio::time::timeout_at(deadline, body.next())
            .await
            .expect("tail in time");
        seen.push_str(&String::from_utf8_lossy(
            &chunk.expect("open stream").expect("chunk"),
        ));
    }
    assert!(seen.contains("event: rows"), "{seen}");
    assert!(
        !seen.contains("tail-foreign") && !seen.contains(MER_B1),
        "{seen}"
    );
}

/// The overview counts every sign-in of the period (from the rollup, checked against a
/// query), finds a burst of failures from one address, and counts password, MFA, role and
/// key changes of the viewer's scope only.
#[tokio::test]
async fn overview_counts_sign_ins_finds_bursts_and_counts_security_changes() {
    use logvault_core::{Micros, Scope};
    use logvault_store::EventQuery;
    use logvault_store::conformance::audit;

    let world = world_with_people().await;
    let failure = json!({"outcome": "failure", "origin": {"ip": "198.51.100.7"}});
    let mut batch: Vec<_> = (0..12)
        .map(|_| audit(MER_A1, None, failure.clone()))
        .collect();
    batch.extend((0..3).map(|_| audit(MER_A1, None, json!({}))));
    batch.push(audit(MER_A1, None, json!({"action": "user.mfa_disabled"})));
    batch.push(audit(MER_B1, None, json!({"action": "api_key.revoked"})));
    world.store.ingest(batch).await.expect("ingest");
    let cookie = sign_in(&world, "mo-merchant").await;
    let html = get_with(&world, Some(&cookie), "/?range=24h").await.text();

    let count = |outcome: &'static str| {
        let store = world.store.clone();
        async move {
            let mut query = EventQuery::new(EventKind::Audit, 1000);
            query.action = Some("user.login".into());
            query.outcome = Some(outcome.into());
            query.from = Some(Micros(Micros::now().0 - 86_400_000_000));
            let page = store
                .query(&Scope::Account(MER_A1.into()), &query)
                .await
                .expect("query");
            page.events.len()
        }
    };
    let (failed, succeeded) = (count("failure").await, count("success").await);
    assert!(failed >= 12 && succeeded >= 3, "{failed} {succeeded}");
    for (label, value) in [
        ("Failed sign-ins", failed),
        ("Successful sign-ins", succeeded),
    ] {
        let stat =
            format!("<span class=\"value\">{value}</span><span class=\"label\">{label}</span>");
        assert!(html.contains(&stat), "{label} should be {value}");
    }
    assert!(
        html.contains("198.51.100.7"),
        "the burst's address is listed"
    );
    assert!(
        html.contains("user.mfa_disabled"),
        "the MFA change is listed"
    );
    assert!(
        !html.contains("api_key.revoked"),
        "another account's change is not"
    );
}
