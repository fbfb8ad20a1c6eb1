//! The overview's retention panel: each account's policy, its hold, and what was purged.

use logvault_core::EventKind;
use logvault_store::retention::{RetentionChange, RetentionDefaults, apply_change};

use super::web_support::*;
use crate::support::{MER_A1, MER_A2, PAR_A};

#[tokio::test(flavor = "multi_thread")]
async fn the_overview_shows_each_accounts_policy_and_hold() {
    let world = world_with_people().await;
    let store = world.store.as_ref();
    let defaults = RetentionDefaults::default();
    let changes = [
        RetentionChange::SetPolicy {
            account_id: PAR_A.into(),
            kind: EventKind::Audit,
            policy: Some((730, true)),
        },
        RetentionChange::PlaceHold {
            account_id: MER_A1.into(),
            reason: "case 7".into(),
        },
    ];
    for change in changes {
        apply_change(store, &defaults, change, "cli:test", "system")
            .await
            .expect("change");
    }
    let cookie = sign_in(&world, "pat-partner").await;
    let html = get_with(&world, Some(&cookie), "/").await.text();
    assert!(html.contains("Retention"), "{html}");
    // The partner's own policy covers its merchants; the threat default stays.
    assert!(html.contains("730 days (set on par_a)"), "{html}");
    assert!(html.contains("90 days (default)"), "{html}");
    assert!(html.contains("held: case 7"), "{html}");
    let only = get_with(&world, Some(&cookie), &format!("/?account_id={MER_A2}"))
        .await
        .text();
    assert!(
        !only.contains("held: case 7"),
        "one account chosen, one row"
    );
}
