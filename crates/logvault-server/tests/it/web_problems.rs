//! The Problems page: each person sees the error groups of their scope only (no group, count
//! or account of another), each with a sparkline and a link to the threat log filtered to
//! its events, which lists exactly those.

use logvault_core::EventKind;
use serde_json::json;

use super::web_support::*;
use crate::support::{MER_A1, MER_B1, Who, threat_id};

#[tokio::test]
async fn each_person_sees_the_problems_of_their_scope_and_their_events() {
    let world = world_with_people().await;
    let only_b1 = json!({"account_id": MER_B1, "source": "api", "error_type": "OnlyB1Error",
        "message": "refund re_77x1 of order 9912 failed", "version": "API 2025-03-15"});
    world.ingest(Who::Admin, EventKind::Threat, only_b1).await;
    for (username, shows_b1, n_accounts) in [
        ("ada-admin", true, Some("7")),
        ("pat-partner", false, Some("3")),
        ("mo-merchant", false, None),
    ] {
        let cookie = sign_in(&world, username).await;
        let page = get_with(&world, Some(&cookie), "/problems").await;
        page.assert_status(200);
        let html = page.text();
        assert!(html.contains("FixtureError"), "{username}: {html}");
        assert!(html.contains("class=\"sparkline\""), "{username}");
        assert!(html.contains("new in fixture 1.0"), "{username}");
        assert_eq!(html.contains("OnlyB1Error"), shows_b1, "{username}");
        assert_eq!(
            html.contains("refund re_&lt;id&gt; of order &lt;num&gt; failed"),
            shows_b1,
            "{username}"
        );
        assert!(!html.contains("re_77x1"), "the raw message is never shown");
        if let Some(n) = n_accounts {
            assert!(
                html.contains(&format!("<td>{n}</td>")),
                "{username}: {n} accounts"
            );
        }
        // The problem's link opens the threat log on its events, in scope.
        let row = html
            .split("<tr data-fingerprint=")
            .find(|row| row.contains("FixtureError"))
            .expect("the fixture's problem");
        let link = row
            .split("href=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .expect("events link")
            .replace("&#x2f;", "/")
            .replace("&amp;", "&");
        assert!(link.starts_with("/threat?range=all&fingerprint="), "{link}");
        let events = get_with(&world, Some(&cookie), &link).await;
        events.assert_status(200);
        let events = events.text();
        assert!(events.contains(&threat_id(MER_A1)), "{username}: {link}");
        assert_eq!(
            events.contains(&threat_id(MER_B1)),
            shows_b1,
            "{username}: {link}"
        );
    }
    let cookie = sign_in(&world, "pat-partner").await;
    for bad in [
        "/problems?status=broken",
        "/problems?quiet_days=0",
        "/problems?cursor=zz",
        "/threat?fingerprint=nothex",
    ] {
        get_with(&world, Some(&cookie), bad)
            .await
            .assert_status(400);
    }
    let regressed = get_with(&world, Some(&cookie), "/problems?status=regressed").await;
    regressed.assert_status(200);
    assert!(regressed.text().contains("No problems match."));
}
