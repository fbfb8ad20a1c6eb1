//! Sessions of the Logs page: CSRF on every form, expired, ended and invented sessions, a
//! fresh token at every sign-in (no fixation), cookie attributes, and the growing delay after
//! repeated failed sign-ins.

use std::time::Duration;

use logvault_core::password::token_hash;
use logvault_core::{EventKind, Micros};
use logvault_store::SessionRecord;

use super::web_support::*;
use crate::support::PAR_A;

#[tokio::test]
async fn repeated_failures_slow_down_sign_in() {
    let world = world_with_people().await;
    for n in 1..=4 {
        let reply = attempt(&world, "pat-partner", "wrong").await;
        reply.assert_status(200);
        assert!(
            reply.text().contains("Wrong username or password."),
            "attempt {n}"
        );
    }
    // After the fourth failure the next try must wait, even with the right password.
    let reply = attempt(&world, "pat-partner", PASSWORD).await;
    reply.assert_status(429);
    assert!(reply.headers.contains_key("retry-after"));
    assert_eq!(cookie_value(&reply, "logvault_session"), None);
    let events = world
        .stored_matching(EventKind::Audit, PAR_A, Some("user.login"))
        .await;
    let body: serde_json::Value = serde_json::from_str(&events[0].body).expect("json");
    assert_eq!(body["reason"], "locked");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        attempt(&world, "pat-partner", PASSWORD)
            .await
            .status
            .as_u16(),
        303
    );
}

#[tokio::test]
async fn forms_need_their_csrf_token() {
    let world = world_with_people().await;
    let token = login_token(&world).await;
    let other = "ab".repeat(32);
    let form = |csrf: &str| {
        format!(
            "username=mo-merchant&password={}&csrf={csrf}",
            crate::support::encode(PASSWORD)
        )
    };
    let login_cookie = format!("logvault_login_csrf={token}");
    let cases: [(Option<&str>, String, u16); 4] = [
        (None, form(&token), 403),
        (Some(&login_cookie), form(""), 403),
        (Some(&login_cookie), form(&other), 403),
        (Some(&login_cookie), form(&token), 303),
    ];
    for (cookie, body, status) in cases {
        let reply = post_form(&world, cookie, "/login", &body).await;
        assert_eq!(reply.status.as_u16(), status, "{cookie:?} {body}");
    }
    let cookie = sign_in(&world, "mo-merchant").await;
    let csrf = csrf_field(&get_with(&world, Some(&cookie), "/audit").await.text());
    for (body, status) in [
        (String::new(), 403),
        (format!("csrf={other}"), 403),
        (format!("csrf={csrf}"), 303),
    ] {
        let reply = post_form(&world, Some(&cookie), "/logout", &body).await;
        assert_eq!(reply.status.as_u16(), status, "logout with {body:?}");
    }
    // Signed out: the old cookie opens nothing.
    let reply = get_with(&world, Some(&cookie), "/audit").await;
    assert_eq!(
        (reply.status.as_u16(), location(&reply)),
        (303, "/login".to_string())
    );
}

#[tokio::test]
async fn dead_or_invented_sessions_go_to_sign_in() {
    let world = world_with_people().await;
    let now = Micros::now();
    let session = |token: &str, expires_at: Micros| SessionRecord {
        token_hash: token_hash(token).to_vec(),
        user_id: user_id("ada-admin"),
        csrf_token: "c".repeat(64),
        created_at: Micros(now.0 - 1000),
        expires_at,
        ended_at: None,
    };
    let (expired, ended) = ("1".repeat(64), "2".repeat(64));
    world
        .store
        .create_session(session(&expired, Micros(now.0 - 1)))
        .await
        .expect("session");
    world
        .store
        .create_session(session(&ended, Micros(now.0 + 3_600_000_000)))
        .await
        .expect("session");
    assert!(
        world
            .store
            .end_session(&token_hash(&ended))
            .await
            .expect("end")
    );
    let invented = "f".repeat(64);
    for token in [
        expired.as_str(),
        ended.as_str(),
        invented.as_str(),
        "short",
        "",
    ] {
        for page in ["/", "/audit", "/threat/x", "/trends", "/tail/audit"] {
            let reply = get_with(&world, Some(&format!("logvault_session={token}")), page).await;
            assert_eq!(
                (reply.status.as_u16(), location(&reply)),
                (303, "/login".into()),
                "{token} {page}"
            );
        }
        let export = get_with(
            &world,
            Some(&format!("logvault_session={token}")),
            "/v1/audit-events/export?format=csv",
        )
        .await;
        export.assert_problem(401, "unauthorized");
    }
    // Signing in never adopts a token the client brought: the new one is fresh and the
    // invented one still opens nothing.
    let token = login_token(&world).await;
    let cookie = format!("logvault_session={invented}; logvault_login_csrf={token}");
    let body = format!(
        "username=ada-admin&password={}&csrf={token}",
        crate::support::encode(PASSWORD)
    );
    let reply = post_form(&world, Some(&cookie), "/login", &body).await;
    let issued = cookie_value(&reply, "logvault_session").expect("a session cookie");
    assert!(issued.len() == 64 && issued != invented, "{issued}");
    let set = set_cookies(&reply).join("\n");
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Lax") && set.contains("Path=/"),
        "{set}"
    );
    assert!(
        !set.contains("Secure"),
        "plain HTTP gets no Secure cookie: {set}"
    );
    assert_eq!(
        get_with(&world, Some(&format!("logvault_session={invented}")), "/")
            .await
            .status
            .as_u16(),
        303
    );
    // A second sign-in gets yet another token.
    let again = cookie_value(
        &attempt(&world, "ada-admin", PASSWORD).await,
        "logvault_session",
    );
    assert!(again.as_deref().is_some_and(|t| t != issued), "{again:?}");
}

#[tokio::test]
async fn cookies_are_secure_behind_tls() {
    let world = world_with_people().await;
    let request = axum::http::Request::builder()
        .uri("/login")
        .header("x-forwarded-proto", "https")
        .body(axum::body::Body::empty())
        .expect("request");
    let reply = world.send_request(request).await;
    assert!(
        set_cookies(&reply).iter().all(|c| c.contains("; Secure")),
        "{:?}",
        set_cookies(&reply)
    );
}

/// A person's page reads are audit events like a key's, recorded with `actor.type` `user`
/// and the person's user id, on the person's account.
#[tokio::test(flavor = "multi_thread")]
async fn page_reads_are_recorded_as_the_person() {
    let world = world_with_people().await;
    let cookie = sign_in(&world, "pat-partner").await;
    get_with(&world, Some(&cookie), "/audit")
        .await
        .assert_status(200);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let viewed = world
            .stored_matching(EventKind::Audit, PAR_A, Some("logs.viewed"))
            .await;
        let by_person = viewed.iter().find_map(|event| {
            let body: serde_json::Value = serde_json::from_str(&event.body).ok()?;
            (body["actor"]["type"] == "user")
                .then(|| body["actor"]["id"].as_str().map(str::to_string))?
        });
        if let Some(actor) = by_person {
            assert!(actor.starts_with("usr_"), "{actor}");
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no logs.viewed by a user on {PAR_A}: {viewed:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
