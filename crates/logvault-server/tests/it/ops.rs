//! Operational endpoints: liveness, readiness and the Prometheus metrics.

use logvault_core::EventKind;

use crate::support::{MER_A1, Who, World, audit_event, base};

#[tokio::test(flavor = "multi_thread")]
async fn health_and_readiness_answer_without_credentials() {
    let world = World::new().await;
    for uri in ["/healthz", "/readyz"] {
        let reply = world.get(Who::Anonymous, uri).await;
        assert_eq!(reply.status.as_u16(), 200, "{uri}: {}", reply.text());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_report_ingest_commits_queue_and_rejections() {
    let world = World::new().await;
    world
        .ingest(
            Who::MerchantA1,
            EventKind::Audit,
            audit_event("m-1", MER_A1),
        )
        .await;
    let rejections = [
        (Who::Anonymous, "/v1/audit-events", "unauthorized"),
        (Who::MerchantA1, "/v1/audit-events?limit=0", "invalid-query"),
        (
            Who::MerchantA1,
            "/v1/audit-events?cursor=x",
            "invalid-cursor",
        ),
        (Who::MerchantA1, "/v1/audit-events/nope", "not-found"),
    ];
    for (who, uri, _) in rejections {
        let reply = world.get(who, uri).await;
        assert!(reply.status.is_client_error(), "{uri}: {}", reply.status);
    }
    let forbidden = world
        .post_json(
            Who::MerchantA1,
            base(EventKind::Audit),
            &audit_event("m-2", "mer_b1"),
        )
        .await;
    forbidden.assert_problem(403, "forbidden");
    let reply = world.get(Who::Anonymous, "/metrics").await;
    reply.assert_status(200);
    assert!(
        reply.content_type().starts_with("text/plain"),
        "{}",
        reply.content_type()
    );
    let text = reply.text();
    let value = |name: &str| -> Option<f64> {
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
    };
    let mut wanted: Vec<(String, f64)> = vec![
        // The fixture's seed and m-1 are counted.
        ("logvault_events_ingested_total{kind=\"audit\"}".into(), 2.0),
        (
            "logvault_events_ingested_total{kind=\"threat\"}".into(),
            1.0,
        ),
        ("logvault_commit_seconds_count".into(), 1.0),
        ("logvault_commit_seconds_bucket{le=\"+Inf\"}".into(), 1.0),
        ("logvault_queue_events".into(), 0.0),
        (
            "logvault_requests_rejected_total{reason=\"forbidden\"}".into(),
            1.0,
        ),
    ];
    wanted.extend(rejections.iter().map(|(_, _, slug)| {
        (
            format!("logvault_requests_rejected_total{{reason=\"{slug}\"}}"),
            1.0,
        )
    }));
    for (name, at_least) in wanted {
        match value(&name) {
            Some(found) => assert!(
                found >= at_least,
                "{name} is {found}, expected ≥ {at_least}"
            ),
            None => panic!("{name} missing from /metrics:\n{text}"),
        }
    }
    assert!(
        text.contains("# TYPE logvault_commit_seconds histogram"),
        "{text}"
    );
}
