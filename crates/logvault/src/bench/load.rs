//! The load the benchmark puts on the server: batched and single-event ingest as fast as
//! acknowledgements come, and a paced background ingest while the API reads and the Logs
//! pages are timed.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::{Method, StatusCode};
use logvault_core::EventKind;
use serde_json::Value;

use super::client::Client;
use super::report::{Latencies, Report};
use super::{BenchArgs, Keys, pages, queries, stage, workload};

/// What one ingest run sent and how long it took.
pub(super) struct IngestRun {
    pub(super) events: u64,
    pub(super) bytes: u64,
    pub(super) elapsed: Duration,
    pub(super) latencies: Latencies,
}

/// Sends one ingest request, failing unless every event was stored (201).
pub(super) async fn post_events(
    client: &mut Client,
    kind: EventKind,
    body: &Bytes,
) -> anyhow::Result<()> {
    let path = match kind {
        EventKind::Audit => "/v1/audit-events",
        EventKind::Threat => "/v1/threat-events",
    };
    let (status, answer) = client
        .send(Method::POST, path, Some(("application/json", body.clone())))
        .await?;
    anyhow::ensure!(
        status == StatusCode::CREATED,
        "ingest answered {status}: {}",
        String::from_utf8_lossy(&answer)
    );
    Ok(())
}

/// Sends one OTLP/HTTP protobuf export, failing unless every record was stored (200 with
/// no `partial_success`).
pub(super) async fn post_otlp(client: &mut Client, body: &Bytes) -> anyhow::Result<()> {
    let (status, answer) = client
        .send(
            Method::POST,
            "/v1/logs",
            Some(("application/x-protobuf", body.clone())),
        )
        .await?;
    anyhow::ensure!(
        status == StatusCode::OK && answer.is_empty(),
        "OTLP ingest answered {status} with {} bytes: {}",
        answer.len(),
        String::from_utf8_lossy(&answer)
    );
    Ok(())
}

/// How the requests of a pool reach the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Wire {
    /// JSON arrays to `POST /v1/{audit,threat}-events`.
    Native,
    /// OTLP/HTTP protobuf exports to `POST /v1/logs`.
    Otlp,
}

/// Sends `n_requests` requests from `pool` over `clients` connections as fast as they are
/// acknowledged, showing progress on stderr.
pub(super) async fn ingest(
    address: std::net::SocketAddr,
    key: &str,
    pool: &[(EventKind, Bytes)],
    n_requests: usize,
    clients: usize,
    batch: usize,
) -> anyhow::Result<IngestRun> {
    ingest_over(address, key, pool, n_requests, clients, batch, Wire::Native).await
}

/// [`ingest`] over either wire.
pub(super) async fn ingest_over(
    address: std::net::SocketAddr,
    key: &str,
    pool: &[(EventKind, Bytes)],
    n_requests: usize,
    clients: usize,
    batch: usize,
    wire: Wire,
) -> anyhow::Result<IngestRun> {
    let next = Arc::new(AtomicUsize::new(0));
    let sent_bytes = Arc::new(AtomicU64::new(0));
    let pool = Arc::new(pool.to_vec());
    let started = Instant::now();
    let done = Arc::new(AtomicBool::new(false));
    let progress = tokio::spawn({
        let (next, done) = (next.clone(), done.clone());
        async move {
            while !done.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let sent = next.load(Ordering::Relaxed).min(n_requests) * batch;
                let rate = sent as f64 / started.elapsed().as_secs_f64();
                eprint!(
                    "\r  {sent}/{} events, {rate:.0} events/s   ",
                    n_requests * batch
                );
            }
            eprintln!();
        }
    });
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let mut client = Client::connect(address, key).await?;
        let (next, pool, sent_bytes) = (next.clone(), pool.clone(), sent_bytes.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                if index >= n_requests {
                    return Ok::<_, anyhow::Error>(latencies);
                }
                let (kind, body) = &pool[index % pool.len()];
                let sent = Instant::now();
                match wire {
                    Wire::Native => post_events(&mut client, *kind, body).await?,
                    Wire::Otlp => post_otlp(&mut client, body).await?,
                }
                latencies.push(sent.elapsed().as_secs_f64() * 1e3);
                sent_bytes.fetch_add(body.len() as u64, Ordering::Relaxed);
            }
        }));
    }
    let mut latencies = Latencies::default();
    let mut failure = None;
    for task in tasks {
        match task.await? {
            Ok(samples) => latencies.extend(samples),
            Err(error) => failure = Some(error),
        }
    }
    let elapsed = started.elapsed();
    done.store(true, Ordering::Relaxed);
    let _ = progress.await;
    if let Some(error) = failure {
        return Err(error);
    }
    Ok(IngestRun {
        events: (n_requests * batch) as u64,
        bytes: sent_bytes.load(Ordering::Relaxed),
        elapsed,
        latencies,
    })
}

/// Measures every API read kind as every role, then the Logs pages, while a background
/// client keeps ingesting.
pub(super) async fn measure_reads(
    address: std::net::SocketAddr,
    keys: &Keys,
    pool: &[(EventKind, Bytes)],
    args: &BenchArgs,
    report: &mut Report,
) -> anyhow::Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    let background = tokio::spawn(background_ingest(
        address,
        keys.admin.clone(),
        pool.to_vec(),
        args.background_rate,
        stop.clone(),
    ));
    let terms = workload::SearchTerms::new(args.seed);
    // The background client stops whether or not the measurements succeed.
    let result = async {
        report.queries =
            queries::measure(address, keys, &terms, args.queries, args.query_seconds).await?;
        stage("Logs pages: admin, partner and merchant signed in through the form");
        report.pages = pages::measure(address, &keys.people, args.queries).await?;
        anyhow::Ok(())
    }
    .await;
    stop.store(true, Ordering::Relaxed);
    let achieved = background.await??;
    report.background_events_per_s = achieved;
    result
}

async fn background_ingest(
    address: std::net::SocketAddr,
    key: String,
    pool: Vec<(EventKind, Bytes)>,
    rate: u64,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<f64> {
    if rate == 0 {
        return Ok(0.0);
    }
    // Counted once, not while the queries are being timed.
    let counts: Vec<u64> = pool
        .iter()
        .map(|(_, body)| {
            serde_json::from_slice::<Vec<Value>>(body).map_or(0, |events| events.len() as u64)
        })
        .collect();
    let mut client = Client::connect(address, &key).await?;
    let started = Instant::now();
    let mut sent = 0u64;
    let mut index = 0;
    while !stop.load(Ordering::Relaxed) {
        let (kind, body) = &pool[index % pool.len()];
        let n_events = counts[index % pool.len()];
        index += 1;
        post_events(&mut client, *kind, body).await?;
        sent += n_events;
        let due = Duration::from_secs_f64(sent as f64 / rate as f64);
        if let Some(wait) = due.checked_sub(started.elapsed()) {
            tokio::time::sleep(wait).await;
        }
    }
    Ok(sent as f64 / started.elapsed().as_secs_f64())
}
