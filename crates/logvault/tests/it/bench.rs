//! `logvault bench` keeps working on both backends: a tiny run end to end, and every figure
//! the docs quote is present in its JSON; a tiny soak samples the server with every load
//! attached.

use std::sync::{Mutex, PoisonError};

use serde_json::Value;

use crate::pg_cluster;
use crate::server::cli_within;

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

/// The tiny benchmarks take turns: side by side on two cores the PostgreSQL one takes about a
/// minute (its 20,000 single-event requests alone take half of it).
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Runs `bench` on a few thousand events with `extra` arguments and checks every figure.
fn tiny_benchmark(extra: &[&str], backend: &str) {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner);
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
    // A bound for a stuck run, not a timing: the figures are the benchmark's business.
    let output = cli_within(&args, std::time::Duration::from_secs(300));
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
    // Every read kind as every role, each with its own percentiles and all its samples.
    for kind in [
        "audit_first_page",
        "threat_first_page",
        "filtered",
        "page_20",
        "page_200",
        "search_common",
        "search_rare",
        "search_absent",
        "trends",
        "threat_groups",
        "group_events",
        "by_id",
        "proof",
    ] {
        for role in ["admin", "partner", "merchant"] {
            let figure = &report["queries"][kind][role];
            for percentile in ["p50_ms", "p95_ms", "p99_ms"] {
                let value = figure[percentile].as_f64();
                assert!(
                    value.is_some_and(|ms| ms > 0.0),
                    "queries.{kind}.{role}.{percentile} = {value:?} in {report}"
                );
            }
            assert_eq!(figure["samples"], 5, "queries.{kind}.{role} in {report}");
            let is_walk = kind.starts_with("page_");
            assert_eq!(
                figure["page"].as_u64().is_some_and(|page| page > 1),
                is_walk,
                "queries.{kind}.{role}.page in {report}"
            );
        }
    }
    assert_eq!(
        report["queries"].as_object().map(|kinds| kinds.len()),
        Some(13),
        "no kind beyond those checked: {report}"
    );
    for page in [
        "overview_24h",
        "overview_30d",
        "audit",
        "audit_failed_sign_ins",
        "threat",
        "threat_search",
        "trends_30d",
        "problems",
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

#[test]
fn a_tiny_soak_samples_memory_files_wal_and_latency() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner);
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("soak.json");
    let args = [
        "bench",
        "--soak",
        "12s",
        "--soak-sample",
        "3s",
        "--soak-rate",
        "200",
        "--batch",
        "20",
        "--out",
        out.to_str().expect("utf-8"),
    ];
    let output = cli_within(&args, std::time::Duration::from_secs(300));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(&out).expect("--out file")).expect("JSON");
    let samples = report["samples"].as_array().expect("samples");
    assert_eq!(samples.len(), 4, "one sample every 3 s for 12 s: {report}");
    for sample in samples {
        for pointer in [
            "/rss_mb",
            "/fds",
            "/events",
            "/ingest/p99_ms",
            "/reads/p99_ms",
        ] {
            let value = sample.pointer(pointer).and_then(Value::as_f64);
            assert!(value.is_some_and(|v| v > 0.0), "{pointer} in {sample}");
        }
        assert!(sample["wal_mb"].as_f64().is_some(), "{sample}");
    }
    let summary = &report["summary"];
    // Every load was attached and nothing failed: the tails received rows, the exports ran.
    assert!(summary["tail_rows"].as_u64().unwrap_or(0) > 0, "{summary}");
    assert!(summary["exports"].as_u64().unwrap_or(0) >= 2, "{summary}");
    assert_eq!(summary["errors"], 0, "{summary}");
    assert_eq!(summary["clean_stop"], true, "{summary}");
    for figure in ["rss_mb", "fds", "wal_mb"] {
        assert!(
            summary[figure]["growth_pct"].as_f64().is_some(),
            "{summary}"
        );
    }
    assert_eq!(report["settings"]["soak_s"], 12);
}

#[test]
fn a_tiny_purge_benchmark_purges_everything_it_seeded() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner);
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("purge.json");
    let args = [
        "bench",
        "--purge",
        "3000",
        "--purge-baseline",
        "2",
        "--background-rate",
        "500",
        "--batch",
        "50",
        "--out",
        out.to_str().expect("utf-8"),
    ];
    let output = cli_within(&args, std::time::Duration::from_secs(300));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(&out).expect("--out file")).expect("JSON");
    assert_eq!(report["settings"]["purged"], 3000);
    assert!(
        report["purge_events_per_s"]
            .as_f64()
            .is_some_and(|r| r > 0.0),
        "{report}"
    );
    for phase in ["ingest_without_purge", "ingest_while_purging"] {
        assert!(
            report[phase]["requests"].as_u64().is_some_and(|n| n > 0),
            "{phase}: {report}"
        );
        assert_eq!(report[phase]["errors"], 0, "{phase}: {report}");
    }
}
