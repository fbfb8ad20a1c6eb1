//! `logvault bench` keeps working: a tiny run end to end, and every figure the docs quote
//! is present in its JSON.

use serde_json::Value;

use crate::server::cli;

#[test]
fn a_tiny_benchmark_reports_every_figure() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("bench.json");
    let output = cli(&[
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
    ]);
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
    assert!(
        report["events_stored"].as_u64().unwrap_or(0) >= 2000,
        "{report}"
    );
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("bench: ingesting"),
        "progress is shown on stderr"
    );
}
