//! The load the benchmark puts on the server: batched and single-event ingest as fast as
//! acknowledgements come, a paced background ingest, and the timed API queries.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::{Method, StatusCode};
use logvault_core::EventKind;
use serde_json::Value;

use super::client::Client;
use super::report::{Latencies, Report};
use super::{BenchArgs, Keys, pages, stage};

/// What one ingest run sent and how long it took.
pub(super) struct IngestRun {
    pub(super) events: u64,
    pub(super) bytes: u64,
    pub(super) elapsed: Duration,
    pub(super) latencies: Latencies,
}

/// Sends one ingest request, failing unless every event was stored (201).
async fn post_events(client: &mut Client, kind: EventKind, body: &Bytes) -> anyhow::Result<()> {
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
                post_events(&mut client, *kind, body).await?;
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

/// Measures each Logs-page query kind while a background client keeps ingesting.
pub(super) async fn queries(
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
    let mut result = measure_queries(address, keys, args.queries, report).await;
    if result.is_ok() {
        stage("Logs pages: admin, partner and merchant signed in through the form");
        match pages::measure(address, &keys.people, args.queries).await {
            Ok(pages) => report.pages = pages,
            Err(error) => result = Err(error),
        }
    }
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

async fn measure_queries(
    address: std::net::SocketAddr,
    keys: &Keys,
    n: usize,
    report: &mut Report,
) -> anyhow::Result<()> {
    let mut partner = Client::connect(address, &keys.partner).await?;
    let mut merchant = Client::connect(address, &keys.merchant).await?;

    // The 20th page of the partner's audit log, reached by following cursors once.
    let mut page_20 = "/v1/audit-events?limit=50".to_string();
    for _ in 1..20 {
        let page: Value = serde_json::from_slice(&partner.get_ok(&page_20).await?)?;
        let cursor = page["next_cursor"]
            .as_str()
            .ok_or_else(|| anyhow::anyhow!("fewer than 20 pages for the partner"))?;
        page_20 = format!("/v1/audit-events?limit=50&cursor={cursor}");
    }
    let first: Value =
        serde_json::from_slice(&merchant.get_ok("/v1/audit-events?limit=100").await?)?;
    let ids: Vec<String> = first["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["id"].as_str().map(String::from))
        .collect();
    anyhow::ensure!(!ids.is_empty(), "the merchant has no events to look up");

    let kinds: Vec<(&str, bool, Vec<String>)> = vec![
        (
            "merchant_first_page",
            false,
            vec!["/v1/audit-events".into()],
        ),
        ("partner_first_page", true, vec!["/v1/audit-events".into()]),
        (
            "partner_filtered",
            true,
            vec![
                "/v1/audit-events?outcome=failure".into(),
                "/v1/threat-events?error_type=NetworkTimeout".into(),
            ],
        ),
        ("page_20", true, vec![page_20]),
        (
            "text_search",
            true,
            vec!["/v1/threat-events?q=timed%20out".into()],
        ),
        (
            "trends",
            true,
            vec!["/v1/threat-events/trends?group_by=version&interval=hour".into()],
        ),
        (
            "by_id",
            false,
            ids.iter()
                .map(|id| format!("/v1/audit-events/{id}"))
                .collect(),
        ),
    ];
    for (name, as_partner, paths) in kinds {
        let client = if as_partner {
            &mut partner
        } else {
            &mut merchant
        };
        let mut latencies = Latencies::default();
        for i in 0..n {
            let started = Instant::now();
            client.get_ok(&paths[i % paths.len()]).await?;
            latencies.push(started.elapsed().as_secs_f64() * 1e3);
        }
        stage(&format!(
            "  {name}: p50 {:.2} ms, p99 {:.2} ms",
            latencies.percentile(50.0),
            latencies.percentile(99.0)
        ));
        report.queries.push((name, latencies));
    }
    Ok(())
}
