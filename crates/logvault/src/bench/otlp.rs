//! `logvault bench --otlp N`: OTLP/HTTP protobuf ingest (`POST /v1/logs`) against native JSON
//! ingest (`POST /v1/threat-events`) of the same threat events, in the same run on the same
//! server: rounds alternate the two wires (native, OTLP, OTLP, native), N events each round,
//! so neither profits from a smaller log, and each round starts once the text index has caught
//! up with the last. Every OTLP record is distinct (its id is a hash of its content, and a
//! repeated record would be a cheap duplicate, not an ingest). Beside the rates it reports the
//! server's CPU time per event of each wire, which what else runs on the machine changes less.

use std::collections::BTreeMap;

use bytes::Bytes;
use logvault_core::EventKind;
use logvault_core::otlp::proto::{
    ExportLogsServiceRequest, KeyValue, LogRecord, Resource, ResourceLogs, ScopeLogs,
};
use prost::Message;
use serde_json::{Value, json};

use super::load::{IngestRun, Wire, ingest_over};
use super::report::machine;
use super::server::ServerProcess;
use super::workload::{self, Zipf};
use super::{BenchArgs, stage};
use crate::StorageArgs;
use crate::rng::Rng;

/// Rounds per wire.
const ROUNDS: usize = 2;

pub(crate) async fn run(args: &BenchArgs, storage: &StorageArgs, n: usize) -> anyhow::Result<()> {
    anyhow::ensure!(n > 0, "--otlp must be positive");
    std::fs::create_dir_all(storage.dir())?;
    let keys = super::setup(storage.open().await?.as_ref()).await?;
    let mut rng = Rng(args.seed);
    let zipf = Zipf::new(workload::N_MERCHANTS);
    let n_requests = n.div_ceil(args.batch);
    stage("generating the workload");
    let native: Vec<(EventKind, Bytes)> = (0..48)
        .map(|_| {
            let body = workload::body(&mut rng, &zipf, EventKind::Threat, args.batch);
            (EventKind::Threat, Bytes::from(body))
        })
        .collect();
    let exe = std::env::current_exe()?;
    let server = ServerProcess::start(&exe, storage)?;
    let mut runs: BTreeMap<&str, Vec<IngestRun>> = BTreeMap::new();
    // The server's CPU seconds per wire: on a shared machine the rate depends on what else
    // runs, the CPU each event costs does not.
    let mut cpu: BTreeMap<&str, f64> = BTreeMap::new();
    let cpu_now = || server.cpu_seconds().unwrap_or(f64::NAN);
    for round in 1..=ROUNDS {
        // Native, OTLP, then OTLP, native: ingest slows as the log grows, so each wire meets
        // the same log sizes on average (in the order native, OTLP, native, OTLP the native
        // rounds would always run on the smaller log).
        let mut wires = [("native_json", Wire::Native), ("otlp_protobuf", Wire::Otlp)];
        if round % 2 == 0 {
            wires.reverse();
        }
        for (name, wire) in wires {
            // Each round's records are made just before it and stamped from the clock as an
            // SDK stamps them (a tenth of a millisecond apart): their ids begin with the
            // record's time, so they reach the id index in about the order the server's own
            // ids do.
            let exports: Vec<(EventKind, Bytes)>;
            let pool = match wire {
                Wire::Native => &native,
                Wire::Otlp => {
                    let mut next_nanos = unix_nanos_now();
                    exports = (0..n_requests)
                        .map(|_| {
                            let events: Vec<Value> = (0..args.batch)
                                .map(|_| workload::event(&mut rng, &zipf, EventKind::Threat))
                                .collect();
                            let body = export_request(&events, &mut next_nanos).encode_to_vec();
                            (EventKind::Threat, Bytes::from(body))
                        })
                        .collect();
                    &exports
                }
            };
            stage(&format!(
                "round {round}: {} events as {name}, {} clients x {} events per request",
                n_requests * args.batch,
                args.clients,
                args.batch
            ));
            let before = cpu_now();
            let run = ingest_over(
                server.address,
                &keys.admin,
                pool,
                n_requests,
                args.clients,
                args.batch,
                wire,
            )
            .await?;
            // SQLite's text index gives way to ingest and catches up afterwards: the wait
            // keeps one round's backlog out of the next round, and its CPU in this wire's.
            if storage.postgres_url().is_none() {
                let behind = logvault_sqlite::search_index_lag(&storage.dir())?;
                stage(&format!(
                    "text index: {behind} events behind; waiting for it"
                ));
                while logvault_sqlite::search_index_lag(&storage.dir())? > 0 {
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                }
            }
            *cpu.entry(name).or_default() += cpu_now() - before;
            runs.entry(name).or_default().push(run);
        }
    }
    server.stop()?;

    let summary = |runs: &[IngestRun], cpu_seconds: f64| -> (f64, Value) {
        let events: u64 = runs.iter().map(|run| run.events).sum();
        let bytes: u64 = runs.iter().map(|run| run.bytes).sum();
        let seconds: f64 = runs.iter().map(|run| run.elapsed.as_secs_f64()).sum();
        let mut latencies = super::report::Latencies::default();
        for run in runs {
            latencies.merge(&run.latencies);
        }
        let rate = events as f64 / seconds;
        let figures = json!({
            "events": events,
            "events_per_s": rate.round(),
            "rounds_events_per_s": runs.iter()
                .map(|run| (run.events as f64 / run.elapsed.as_secs_f64()).round())
                .collect::<Vec<_>>(),
            "bytes_per_event": (bytes as f64 / events as f64).round(),
            "request_p50_ms": (latencies.percentile(50.0) * 100.0).round() / 100.0,
            "request_p99_ms": (latencies.percentile(99.0) * 100.0).round() / 100.0,
            "server_cpu_us_per_event": (cpu_seconds * 1e6 / events as f64).round(),
        });
        (rate, figures)
    };
    let (native_rate, native_figures) = summary(&runs["native_json"], cpu["native_json"]);
    let (otlp_rate, otlp_figures) = summary(&runs["otlp_protobuf"], cpu["otlp_protobuf"]);
    let ratio = otlp_rate / native_rate;
    let result = json!({
        "settings": {"events_per_round": n_requests * args.batch, "rounds": ROUNDS,
            "clients": args.clients, "batch": args.batch, "seed": args.seed,
            "backend": if storage.postgres_url().is_some() { "postgres" } else { "sqlite" }},
        "machine": machine(),
        "native_json": native_figures,
        "otlp_protobuf": otlp_figures,
        "otlp_to_native": (ratio * 100.0).round() / 100.0,
    });
    println!("{}", serde_json::to_string_pretty(&result)?);
    eprintln!(
        "native JSON {native_rate:.0} events/s, OTLP protobuf {otlp_rate:.0} events/s: \
         {ratio:.2}x"
    );
    if let Some(out) = &args.out {
        std::fs::write(out, serde_json::to_string_pretty(&result)? + "\n")?;
        stage(&format!("wrote {}", out.display()));
    }
    Ok(())
}

fn unix_nanos_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos() as u64)
}

/// The benchmark's threat events as an SDK would export them: one resource per service
/// version and environment, each event a record with the exception's attributes.
fn export_request(events: &[Value], next_nanos: &mut u64) -> ExportLogsServiceRequest {
    let mut by_resource: BTreeMap<(String, String), Vec<LogRecord>> = BTreeMap::new();
    for event in events {
        let field = |name: &str| event[name].as_str().unwrap_or_default().to_string();
        let mut attributes = vec![
            KeyValue::string("exception.type", &field("error_type")),
            KeyValue::string("exception.message", &field("message")),
            KeyValue::string("error.code", &field("error_code")),
            KeyValue::string("logvault.source", &field("source")),
            KeyValue::string("logvault.account_id", &field("account_id")),
            KeyValue::int(
                "attempt",
                event["metadata"]["attempt"].as_i64().unwrap_or(0),
            ),
        ];
        if let Some(request_id) = event["metadata"]["request_id"].as_str() {
            attributes.push(KeyValue::string("request_id", request_id));
        }
        *next_nanos += 100_000;
        let record = LogRecord {
            time_unix_nano: *next_nanos,
            severity_number: 17,
            severity_text: "ERROR".into(),
            attributes,
            ..LogRecord::default()
        };
        let resource = (field("version"), field("environment"));
        by_resource.entry(resource).or_default().push(record);
    }
    let resource_logs = by_resource
        .into_iter()
        .map(|((version, environment), log_records)| {
            let (name, number) = version.split_once(' ').unwrap_or((&version, ""));
            ResourceLogs {
                resource: Some(Resource {
                    attributes: vec![
                        KeyValue::string("service.name", name),
                        KeyValue::string("service.version", number),
                        KeyValue::string("deployment.environment.name", &environment),
                    ],
                    dropped_attributes_count: 0,
                }),
                scope_logs: vec![ScopeLogs {
                    log_records,
                    ..ScopeLogs::default()
                }],
                schema_url: String::new(),
            }
        })
        .collect();
    ExportLogsServiceRequest { resource_logs }
}
