//! `logvault bench` keeps working on both backends: a tiny run end to end, and every figure
//! the docs quote is present in its JSON.

use serde_json::Value;

use crate::pg_cluster;
use crate::server::cli;

#[test]
fn a_tiny_benchmark_reports_every_figure() {
    tiny_benchmark(&[], "sqlite");
}

#[test]
fn a_tiny_postgres_benchmark_reports_every_figure() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let Some(db) = runtime.block_on(pg_cluster::database()) else {
        return;
    };
    // The owner role: the benchmark migrates, and its ceiling creates a scratch schema.
    let url = crate::multinode::url_of(&db.owner_url);
    tiny_benchmark(&["--db", &url], "postgres");
    drop(db);
}

/// Runs `bench` on a few thousand events with `extra` arguments and checks every figure.
fn tiny_benchmark(extra: &[&str], backend: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("bench.json");
    let mut args = vec![
        "bench",
        "--events",
        "2000",
        "--clients",
        "2",
        "--batch",
        "100",
        "--queries",
        "5",
        "--background-rate",
        "200",
        "--out",
        out.to_str().expect("utf-8"),
    ];
    args.extend_from_slice(extra);
    let output = cli(&args);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(&out).expect("--out file")).expect("JSON");
    let printed: Value = serde_json::from_slice(&output.stdout).expect("JSON on stdout");
    assert_eq!(report, printed, "--out holds what was printed");
    let positive = [
        "/ingest/events_per_s",
        "/ingest/ceiling_events_per_s",
        "/ingest/ratio_to_ceiling",
        "/ingest/single_event_p99_ms",
        "/server/peak_rss_mb",
        "/storage/bytes_per_event",
        "/storage/bytes_per_event_excluding_text_index",
        "/verify/events_per_s",
        "/scrub/clean_mb_per_s",
        "/scrub/dirty_mb_per_s",
    ];
    for pointer in positive {
        let value = report
            .pointer(pointer)
            .and_then(Value::as_f64)
            .unwrap_or(0.0);
        assert!(value > 0.0, "{pointer} = {value} in {report}");
    }
    for kind in [
        "merchant_first_page",
        "partner_first_page",
        "partner_filtered",
        "page_20",
        "text_search",
        "trends",
        "by_id",
    ] {
        for percentile in ["p50_ms", "p95_ms", "p99_ms"] {
            let pointer = format!("/query/{kind}/{percentile}");
            assert!(
                report.pointer(&pointer).and_then(Value::as_f64).is_some(),
                "{pointer} missing"
            );
        }
    }
    for page in [
        "overview_24h",
        "overview_30d",
        "audit",
        "audit_failed_sign_ins",
        "threat",
        "threat_search",
        "trends_30d",
        "detail",
    ] {
        let pointer = format!("/pages/page_{page}/p99_ms");
        let value = report.pointer(&pointer).and_then(Value::as_f64);
        assert!(value.is_some_and(|ms| ms > 0.0), "{pointer} in {report}");
    }
    assert_eq!(report["settings"]["backend"], backend);
    assert!(
        report["events_stored"].as_u64().unwrap_or(0) >= 2000,
        "{report}"
    );
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("bench: ingesting"),
        "progress is shown on stderr"
    );
}
