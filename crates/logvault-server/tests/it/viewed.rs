//! The audit trail of reads: every read of the logs leaves a `logs.viewed` event on the
//! reader's account, written in the background.

use std::time::Duration;

use logvault_core::EventKind;
use serde_json::Value;

use crate::support::{MER_A1, MER_A2, MER_B1, MER_P0, Who, World, audit_id, threat_id};

#[tokio::test(flavor = "multi_thread")]
async fn every_read_is_recorded_as_logs_viewed_on_the_readers_account() {
    let world = World::new().await;
    let reads = [
        (Who::MerchantA1, "/v1/audit-events".to_string()),
        (Who::MerchantA1, "/v1/threat-events?source=sdk".to_string()),
        (
            Who::MerchantA1,
            format!("/v1/audit-events/{}", audit_id(MER_A1)),
        ),
        (
            Who::MerchantA1,
            format!("/v1/threat-events/{}", threat_id(MER_A1)),
        ),
        (Who::MerchantA1, "/v1/threat-events/trends".to_string()),
        (
            Who::PartnerA,
            format!("/v1/threat-events?account_id={MER_A2}"),
        ),
        (
            Who::PartnerA,
            format!("/v1/audit-events/{}", audit_id(MER_A1)),
        ),
        (Who::Admin, "/v1/audit-events".to_string()),
        (
            Who::Admin,
            format!("/v1/threat-events/{}", threat_id(MER_B1)),
        ),
        (Who::ReadOnlyA1, "/v1/threat-events".to_string()),
    ];
    for (who, uri) in reads {
        let account = who.account().expect("an account");
        let n_before = world
            .stored_matching(EventKind::Audit, account, Some("logs.viewed"))
            .await
            .len();
        let reply = world.get(who, &uri).await;
        reply.assert_status(200);
        let views = world
            .wait_for_views(account, n_before + 1, Duration::from_secs(5))
            .await;
        assert_eq!(
            views.len(),
            n_before + 1,
            "{who:?} {uri}: one logs.viewed on {account}"
        );
        let newest = &views[0];
        let body: Value = serde_json::from_str(&newest.body).expect("JSON body");
        assert_eq!(
            body["actor"]["id"],
            world.key_id(who),
            "{who:?} {uri}: the reader is the actor"
        );
        assert_eq!(body["outcome"], "success", "{uri}");
        let kind = if uri.contains("audit") {
            "audit"
        } else {
            "threat"
        };
        assert_eq!(body["metadata"]["kind"], kind, "{uri}: {body}");
    }
    // A read stays on the record however long its query string is (here a `from` with
    // many fractional digits, which RFC 3339 allows).
    let long_from = format!("2020-01-01T00:00:00.{}Z", "0".repeat(20_000));
    for uri in [
        format!("/v1/threat-events/trends?interval=day&from={long_from}"),
        format!("/v1/threat-events?from={long_from}"),
    ] {
        let n_before = world
            .stored_matching(EventKind::Audit, MER_P0, Some("logs.viewed"))
            .await
            .len();
        let reply = world.get(Who::MerchantP0, &uri).await;
        assert!(
            matches!(reply.status.as_u16(), 200 | 400 | 414 | 431),
            "{}",
            reply.status
        );
        if reply.status.as_u16() == 200 {
            let n_wanted = n_before + 1;
            let views = world
                .wait_for_views(MER_P0, n_wanted, Duration::from_secs(5))
                .await;
            assert_eq!(
                views.len(),
                n_wanted,
                "a read with a {}-byte query string left no logs.viewed",
                uri.len()
            );
        }
    }

    // Probing another account's event records nothing on that account.
    let reply = world
        .get(
            Who::MerchantA1,
            &format!("/v1/audit-events/{}", audit_id(MER_B1)),
        )
        .await;
    reply.assert_problem(404, "not-found");
    assert!(
        world
            .stored_matching(EventKind::Audit, MER_B1, Some("logs.viewed"))
            .await
            .is_empty(),
        "nothing is recorded on the account that was probed"
    );
}
