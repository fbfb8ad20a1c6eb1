//! The Logs page's browser-side defences: the security headers on every page and asset
//! (and `nosniff` on every API answer), framing only as configured, hostile event text inert
//! in charts, the overview and the live tail, sign-in throttling per address, idle and
//! absolute session lifetimes, sign-out everywhere on a password change, and the cap on live
//! tails per person.

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, header};
use futures_util::StreamExt;
use logvault_core::EventKind;
use logvault_core::password::hash_password;
use logvault_server::{FrameAncestors, ServerConfig, SessionLifetimes};
use logvault_sqlite::SqliteConfig;
use serde_json::json;
use tower::ServiceExt;

use super::web_support::*;
use crate::support::{Reply, Who, World};

/// The standard fixture and people, served with `config`.
async fn world_with(config: ServerConfig) -> World {
    let world = World::with_configs(SqliteConfig::default(), config, true).await;
    for (username, role, account) in PEOPLE {
        create_person(&world, username, role, account, false).await;
    }
    world
}

fn header_of<'a>(reply: &'a Reply, name: &str) -> &'a str {
    reply
        .headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("")
}

#[tokio::test]
async fn every_page_and_asset_carries_the_browser_defences() {
    let world = world_with_people().await;
    let cookie = sign_in(&world, "pat-partner").await;
    for page in [
        "/login",
        "/",
        "/audit",
        "/threat",
        "/trends",
        "/static/app.js",
        "/static/app.css",
    ] {
        let reply = get_with(&world, Some(&cookie), page).await;
        let policy = header_of(&reply, "content-security-policy");
        for directive in [
            "default-src 'self'",
            "script-src 'self';",
            "style-src 'self';",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ] {
            assert!(
                policy.contains(directive),
                "{page}: {directive} in {policy:?}"
            );
        }
        assert!(
            !policy.contains("unsafe-inline") && !policy.contains("unsafe-eval"),
            "{page}: {policy}"
        );
        assert_eq!(
            header_of(&reply, "x-content-type-options"),
            "nosniff",
            "{page}"
        );
        assert_eq!(
            header_of(&reply, "referrer-policy"),
            "same-origin",
            "{page}"
        );
        assert_eq!(header_of(&reply, "x-frame-options"), "DENY", "{page}");
        assert_eq!(
            header_of(&reply, "strict-transport-security"),
            "",
            "{page}: plain HTTP"
        );
        if page.starts_with("/static/") {
            continue;
        }
        // The policy forbids inline code; the pages must not need any.
        let html = reply.text();
        for inline in ["<script>", "<style", " style=\"", " onclick=", " onload="] {
            assert!(!html.contains(inline), "{page} has inline {inline}");
        }
    }
    // API answers, exports and problems are never sniffed into something else either.
    let problem = get_with(&world, None, "/v1/audit-events").await;
    problem.assert_problem(401, "unauthorized");
    let export = get_with(&world, Some(&cookie), "/v1/audit-events/export?format=csv").await;
    export.assert_status(200);
    for reply in [&problem, &export, &get_with(&world, None, "/healthz").await] {
        assert_eq!(header_of(reply, "x-content-type-options"), "nosniff");
    }
    assert!(header_of(&export, "content-disposition").starts_with("attachment"));
}

#[tokio::test]
async fn framing_follows_the_configured_ancestors() {
    let config = ServerConfig {
        frame_ancestors: "'self' https://portal.example.com"
            .parse::<FrameAncestors>()
            .expect("valid sources"),
        ..ServerConfig::default()
    };
    let world = world_with(config).await;
    let reply = get_with(&world, None, "/login").await;
    let policy = header_of(&reply, "content-security-policy");
    assert!(
        policy.ends_with("frame-ancestors 'self' https://portal.example.com"),
        "{policy}"
    );
    // X-Frame-Options cannot name another site; sent, it would forbid what the policy allows.
    assert_eq!(header_of(&reply, "x-frame-options"), "");
}

const HOSTILE: &str = "<svg onload=alert(1)>";

#[tokio::test]
async fn hostile_event_text_is_inert_in_charts_overview_and_tail() {
    let world = world_with_people().await;
    let cookie = sign_in(&world, "mo-merchant").await;
    let top = world.store.log_size().await.expect("size");
    let request = Request::builder()
        .uri(format!("/tail/threat?after={top}"))
        .header(header::COOKIE, &cookie)
        .body(Body::empty())
        .expect("request");
    let tail = world.app.clone().oneshot(request).await.expect("response");
    assert_eq!(tail.status(), 200);
    world
        .ingest(
            Who::MerchantA1,
            EventKind::Threat,
            json!({"source": "sdk", "error_type": HOSTILE, "message": "m", "version": HOSTILE,
                "environment": HOSTILE}),
        )
        .await;
    world
        .ingest(
            Who::MerchantA1,
            EventKind::Audit,
            json!({"action": "user.login", "outcome": "failure", "reason": HOSTILE,
                "actor": {"id": "usr_x", "type": "user", "name": HOSTILE}}),
        )
        .await;
    let mut pages = Vec::new();
    for page in [
        "/",
        "/trends?group_by=version",
        "/trends?group_by=environment",
        "/trends?group_by=error_type",
        "/threat",
        "/audit",
    ] {
        let reply = get_with(&world, Some(&cookie), page).await;
        reply.assert_status(200);
        pages.push((page.to_string(), reply.text()));
    }
    let mut stream = tail.into_body().into_data_stream();
    let mut rows = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !rows.contains("svg") {
        let chunk = tokio::time::timeout_at(deadline, stream.next())
            .await
            .expect("tail rows in time");
        rows.push_str(&String::from_utf8_lossy(
            &chunk.expect("open stream").expect("chunk"),
        ));
    }
    pages.push(("tail".into(), rows));
    for (page, html) in pages {
        assert!(
            !html.contains(HOSTILE),
            "{page} shows the markup raw: {html}"
        );
        assert!(
            html.contains("&lt;svg onload=alert(1)&gt;"),
            "{page}: {html}"
        );
    }
}

/// A sign-in from `ip` through the real form.
async fn attempt_from(world: &World, ip: &str, username: &str, password: &str) -> Reply {
    let token = login_token(world).await;
    let form = format!(
        "username={}&password={}&csrf={token}",
        crate::support::encode(username),
        crate::support::encode(password)
    );
    let address: SocketAddr = format!("{ip}:40000").parse().expect("address");
    let request = Request::builder()
        .method("POST")
        .uri("/login")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::COOKIE, format!("logvault_login_csrf={token}"))
        .extension(ConnectInfo(address))
        .body(Body::from(form))
        .expect("request");
    world.send_request(request).await
}

#[tokio::test]
async fn failures_from_one_address_slow_down_every_username() {
    let world = world_with_people().await;
    // Password spraying: one wrong guess each for many names, from one address.
    for name in ["alice", "bob", "carol", "dave"] {
        attempt_from(&world, "198.51.100.7", name, "Winter2026!")
            .await
            .assert_status(200);
    }
    let blocked = attempt_from(&world, "198.51.100.7", "ada-admin", PASSWORD).await;
    blocked.assert_status(429);
    assert!(blocked.headers.contains_key(header::RETRY_AFTER));
    // The same person from another address is not locked out by the spray.
    let elsewhere = attempt_from(&world, "203.0.113.9", "ada-admin", PASSWORD).await;
    elsewhere.assert_status(303);
}

/// The session cookie (`logvault_session=…`) a reply sets, if any.
fn session_cookie(reply: &Reply) -> Option<String> {
    cookie_value(reply, "logvault_session")
        .filter(|token| !token.is_empty())
        .map(|token| format!("logvault_session={token}"))
}

fn lifetimes(idle_ms: u64, absolute_ms: u64) -> ServerConfig {
    ServerConfig {
        sessions: SessionLifetimes {
            idle: Duration::from_millis(idle_ms),
            absolute: Duration::from_millis(absolute_ms),
        },
        ..ServerConfig::default()
    }
}

#[tokio::test]
async fn an_idle_session_ends() {
    let world = world_with(lifetimes(1_000, 3_600_000)).await;
    let cookie = sign_in(&world, "pat-partner").await;
    get_with(&world, Some(&cookie), "/")
        .await
        .assert_status(200);
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let reply = get_with(&world, Some(&cookie), "/").await;
    reply.assert_status(303);
    assert_eq!(location(&reply), "/login");
}

#[tokio::test]
async fn activity_renews_the_token_and_ends_the_old_one() {
    let world = world_with(lifetimes(2_000, 3_600_000)).await;
    let first = sign_in(&world, "pat-partner").await;
    // A tenth of the idle time later, a page renews the session.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let reply = get_with(&world, Some(&first), "/").await;
    reply.assert_status(200);
    let renewed = session_cookie(&reply).expect("a renewed session cookie");
    assert_ne!(renewed, first);
    let attributes = set_cookies(&reply).join("\n");
    assert!(attributes.contains("HttpOnly") && attributes.contains("SameSite=Lax"));
    get_with(&world, Some(&first), "/").await.assert_status(303);
    // Kept busy, the session outlives its idle time.
    let mut cookie = renewed;
    for _ in 0..6 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let reply = get_with(&world, Some(&cookie), "/audit").await;
        reply.assert_status(200);
        cookie = session_cookie(&reply).unwrap_or(cookie);
    }
    // The CSRF token is the sign-in's, so forms opened before a renewal still work.
    let html = get_with(&world, Some(&cookie), "/").await.text();
    let csrf = csrf_field(&html);
    let out = post_form(&world, Some(&cookie), "/logout", &format!("csrf={csrf}")).await;
    out.assert_status(303);
    assert_eq!(cookie_value(&out, "logvault_session").as_deref(), Some(""));
    get_with(&world, Some(&cookie), "/")
        .await
        .assert_status(303);
}

#[tokio::test]
async fn a_busy_session_still_ends_at_its_absolute_lifetime() {
    let world = world_with(lifetimes(1_000, 2_000)).await;
    let mut cookie = sign_in(&world, "pat-partner").await;
    let started = tokio::time::Instant::now();
    while started.elapsed() < Duration::from_millis(1_700) {
        let reply = get_with(&world, Some(&cookie), "/").await;
        reply.assert_status(200);
        cookie = session_cookie(&reply).unwrap_or(cookie);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    get_with(&world, Some(&cookie), "/")
        .await
        .assert_status(303);
}

#[tokio::test]
async fn a_changed_password_signs_the_person_out_everywhere() {
    let world = world_with_people().await;
    let laptop = sign_in(&world, "pat-partner").await;
    let phone = sign_in(&world, "pat-partner").await;
    let colleague = sign_in(&world, "ada-admin").await;
    let hash = hash_password("a brand new passphrase").expect("hash");
    let ended = world
        .store
        .set_password(&user_id("pat-partner"), &hash)
        .await
        .expect("set password");
    assert_eq!(ended, Some(2));
    for cookie in [&laptop, &phone] {
        let reply = get_with(&world, Some(cookie), "/").await;
        reply.assert_status(303);
        assert_eq!(location(&reply), "/login");
    }
    get_with(&world, Some(&colleague), "/")
        .await
        .assert_status(200);
    let old = attempt(&world, "pat-partner", PASSWORD).await;
    assert!(old.text().contains("Wrong username or password."));
    attempt(&world, "pat-partner", "a brand new passphrase")
        .await
        .assert_status(303);
}

async fn open_tail(world: &World, cookie: &str) -> axum::response::Response {
    let request = Request::builder()
        .uri("/tail/audit")
        .header(header::COOKIE, cookie)
        .body(Body::empty())
        .expect("request");
    world.app.clone().oneshot(request).await.expect("response")
}

#[tokio::test]
async fn live_tails_are_capped_per_person() {
    let config = ServerConfig {
        max_tails_per_person: 2,
        ..ServerConfig::default()
    };
    let world = world_with(config).await;
    let pat = sign_in(&world, "pat-partner").await;
    let first = open_tail(&world, &pat).await;
    let second = open_tail(&world, &pat).await;
    assert_eq!(
        (first.status().as_u16(), second.status().as_u16()),
        (200, 200)
    );
    let over = open_tail(&world, &pat).await;
    let status = over.status().as_u16();
    let body = axum::body::to_bytes(over.into_body(), usize::MAX)
        .await
        .expect("body");
    let problem: serde_json::Value = serde_json::from_slice(&body).expect("problem+json");
    assert_eq!(
        (status, problem["type"].as_str()),
        (429, Some("urn:logvault:problem:too-many-tails"))
    );
    // Another person has tails of their own.
    let ada = sign_in(&world, "ada-admin").await;
    assert_eq!(open_tail(&world, &ada).await.status(), 200);
    // A closed tail frees its slot.
    drop(first);
    assert_eq!(open_tail(&world, &pat).await.status(), 200);
    drop(second);
}

#[tokio::test]
async fn changing_ones_password_on_the_page_ends_every_session() {
    let world = world_with_people().await;
    let laptop = sign_in(&world, "pat-partner").await;
    let phone = sign_in(&world, "pat-partner").await;
    let page = get_with(&world, Some(&laptop), "/password").await;
    page.assert_status(200);
    let csrf = csrf_field(&page.text());
    let new = "a brand new passphrase";
    let form = |csrf: &str, current: &str, new: &str, confirm: &str| {
        format!(
            "csrf={csrf}&current={}&new={}&confirm={}",
            crate::support::encode(current),
            crate::support::encode(new),
            crate::support::encode(confirm)
        )
    };
    let refused = [
        (
            form("", PASSWORD, new, new),
            403,
            "did not come from your session",
        ),
        (
            form(&csrf, "wrong", new, new),
            400,
            "current password is wrong",
        ),
        (
            form(&csrf, PASSWORD, "short", "short"),
            400,
            "at least 12 characters",
        ),
        (
            form(&csrf, PASSWORD, new, "another passphrase"),
            400,
            "differ",
        ),
    ];
    for (body, status, message) in refused {
        let reply = post_form(&world, Some(&laptop), "/password", &body).await;
        reply.assert_status(status);
        assert!(
            reply.text().contains(message),
            "{message}: {}",
            reply.text()
        );
    }
    // Nothing changed: both sessions live, the old password still works.
    get_with(&world, Some(&phone), "/").await.assert_status(200);

    let changed = post_form(
        &world,
        Some(&laptop),
        "/password",
        &form(&csrf, PASSWORD, new, new),
    )
    .await;
    changed.assert_status(303);
    assert_eq!(location(&changed), "/login");
    assert_eq!(
        cookie_value(&changed, "logvault_session").as_deref(),
        Some("")
    );
    for cookie in [&laptop, &phone] {
        get_with(&world, Some(cookie), "/").await.assert_status(303);
    }
    assert!(
        attempt(&world, "pat-partner", PASSWORD)
            .await
            .text()
            .contains("Wrong username or password.")
    );
    attempt(&world, "pat-partner", new).await.assert_status(303);
    let events = world
        .stored_matching(
            EventKind::Audit,
            crate::support::PAR_A,
            Some("user.password_changed"),
        )
        .await;
    let outcomes: Vec<String> = events
        .iter()
        .map(|event| {
            let body: serde_json::Value = serde_json::from_str(&event.body).expect("json");
            format!(
                "{} {}",
                body["outcome"].as_str().unwrap_or(""),
                body["reason"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        ["success ", "failure bad_password"],
        "newest first"
    );
}

#[tokio::test]
async fn a_reconnecting_tail_resumes_after_its_last_event() {
    let world = world_with_people().await;
    let cookie = sign_in(&world, "mo-merchant").await;
    for id in ["resume-old", "resume-new"] {
        world
            .ingest(
                Who::MerchantA1,
                EventKind::Audit,
                json!({"id": id, "action": "tail.resume", "outcome": "success",
                    "actor": {"id": "usr_r", "type": "user"}}),
            )
            .await;
    }
    let old = world
        .stored_matching(
            EventKind::Audit,
            crate::support::MER_A1,
            Some("tail.resume"),
        )
        .await
        .into_iter()
        .find(|event| event.event_id == "resume-old")
        .expect("stored");
    // The page asked for everything from the start; the browser already has `resume-old`.
    let request = Request::builder()
        .uri("/tail/audit?after=0&action=tail.resume")
        .header(header::COOKIE, &cookie)
        .header("last-event-id", old.seq.to_string())
        .body(Body::empty())
        .expect("request");
    let response = world.app.clone().oneshot(request).await.expect("response");
    assert_eq!(response.status(), 200);
    let mut stream = response.into_body().into_data_stream();
    let mut rows = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !rows.contains("resume-new") {
        let chunk = tokio::time::timeout_at(deadline, stream.next())
            .await
            .expect("rows in time");
        rows.push_str(&String::from_utf8_lossy(
            &chunk.expect("open stream").expect("chunk"),
        ));
    }
    assert!(
        !rows.contains("resume-old"),
        "resent a row the browser had: {rows}"
    );
}
