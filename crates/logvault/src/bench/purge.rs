//! `logvault bench --purge N`: what a retention purge costs the ingest running beside it.
//! N events received 500–600 days ago are seeded (every one expired under the default
//! policies), then ingest runs at `--background-rate` twice, each time on a fresh start of the
//! server: once for `--purge-baseline` seconds with retention kept off (policies far longer
//! than the seeded age), once with
//! the defaults and the purge task starting a second in, for as long as the purge takes. The
//! report gives ingest latency in both, their ratio, and the purge rate.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use logvault_core::{EventKind, Micros, Scope};
use logvault_store::retention::DAY;
use serde_json::{Value, json};

use super::server::ServerProcess;
use super::soak::{Shared, ingest, with};
use super::workload::{self, Zipf};
use super::{BenchArgs, stage};
use crate::StorageArgs;
use crate::rng::Rng;

/// The longest the purge may take before the benchmark gives up.
const PURGE_LIMIT: Duration = Duration::from_secs(3600);

pub(crate) async fn run(args: &BenchArgs, storage: &StorageArgs, n: usize) -> anyhow::Result<()> {
    anyhow::ensure!(
        n > 0 && args.background_rate > 0,
        "--purge and --background-rate must be positive"
    );
    std::fs::create_dir_all(storage.dir())?;
    let store = storage.open().await?;
    stage("creating the accounts");
    super::create_accounts(store.as_ref()).await?;
    let mut rng = Rng(args.seed);
    let zipf = Zipf::new(workload::N_MERCHANTS);
    let pool = workload::request_pool(&mut rng, &zipf, args.batch);

    // The seeded events are the first of the log: received_at never decreases along seq.
    let first = Micros(Micros::now().0 - 600 * DAY);
    let step = (100 * DAY / n as i64).max(1);
    let seeding = Instant::now();
    let mut seeded = 0usize;
    for (kind, body) in pool.iter().cycle() {
        if seeded >= n {
            break;
        }
        let mut events = workload::new_events(body, *kind);
        events.truncate(n - seeded);
        for event in &mut events {
            event.demo_received_at = Some(Micros(first.0 + step * seeded as i64));
            seeded += 1;
        }
        store.ingest(events).await?;
        if seeded % 100_000 < args.batch {
            stage(&format!("seeded {seeded}/{n} expired events"));
        }
    }
    stage(&format!(
        "seeded {n} events in {:.1} s",
        seeding.elapsed().as_secs_f64()
    ));
    stage("creating the keys");
    let keys = super::create_keys(store.as_ref()).await?;
    drop(store);

    let exe = std::env::current_exe()?;
    let rate = args.background_rate;
    let baseline_for = Duration::from_secs(args.purge_baseline.max(1));
    stage(&format!(
        "ingest at {rate} events/s for {} s, retention off",
        baseline_for.as_secs()
    ));
    let off = [
        ("LOGVAULT_RETENTION_AUDIT_DAYS", "100000"),
        ("LOGVAULT_RETENTION_THREAT_DAYS", "100000"),
    ];
    let server = ServerProcess::start_with_env(&exe, storage, &off)?;
    let baseline = ingest_while(&server, &keys.admin, &pool, rate, async {
        tokio::time::sleep(baseline_for).await;
        Ok(())
    })
    .await?;
    server.stop()?;

    stage(&format!("ingest at {rate} events/s while the purge runs"));
    let on = [("LOGVAULT_PURGE_INTERVAL", "1s")];
    let server = ServerProcess::start_with_env(&exe, storage, &on)?;
    let reader = storage.open().await?;
    let mut purge = (Duration::ZERO, 0u64);
    let purging = ingest_while(&server, &keys.admin, &pool, rate, async {
        let started = Instant::now();
        loop {
            tokio::time::sleep(Duration::from_millis(250)).await;
            let purges = reader.purges(&Scope::All).await?;
            let purged: u64 = purges.iter().map(|p| p.batch.count).sum();
            if purged >= n as u64 {
                purge = (started.elapsed(), purges.len() as u64);
                return Ok(());
            }
            anyhow::ensure!(
                started.elapsed() < PURGE_LIMIT,
                "the purge took over an hour"
            );
        }
    })
    .await?;
    server.stop()?;

    let p99_ratio = purging.0.percentile(99.0) / baseline.0.percentile(99.0).max(1e-9);
    let result = json!({
        "settings": {"purged": n, "background_rate": rate, "batch": args.batch, "purge_batch": crate::retention::DEFAULT_PURGE_BATCH,
            "backend": if storage.postgres_url().is_some() { "postgres" } else { "sqlite" }},
        "machine": super::report::machine(),
        "ingest_without_purge": latencies(&baseline),
        "ingest_while_purging": latencies(&purging),
        "p99_ratio": (p99_ratio * 100.0).round() / 100.0,
        "purge_s": (purge.0.as_secs_f64() * 10.0).round() / 10.0,
        "purge_batches": purge.1,
        "purge_events_per_s": (n as f64 / purge.0.as_secs_f64().max(1e-9)).round(),
    });
    println!("{}", serde_json::to_string_pretty(&result)?);
    eprintln!(
        "ingest p99 {:.1} ms without a purge, {:.1} ms while purging ({p99_ratio:.2}x); \
         {n} events purged in {:.1} s ({:.0} events/s)",
        baseline.0.percentile(99.0),
        purging.0.percentile(99.0),
        purge.0.as_secs_f64(),
        n as f64 / purge.0.as_secs_f64().max(1e-9)
    );
    if let Some(out) = &args.out {
        std::fs::write(out, serde_json::to_string_pretty(&result)? + "\n")?;
        stage(&format!("wrote {}", out.display()));
    }
    Ok(())
}

/// Ingest latencies, events ingested and failed requests.
type Measured = (super::report::Latencies, u64, u64);

fn latencies(measured: &Measured) -> Value {
    json!({
        "requests": measured.0.len(),
        "p50_ms": (measured.0.percentile(50.0) * 100.0).round() / 100.0,
        "p99_ms": (measured.0.percentile(99.0) * 100.0).round() / 100.0,
        "events": measured.1,
        "errors": measured.2,
    })
}

/// Ingests at `rate` until `until` finishes.
async fn ingest_while(
    server: &ServerProcess,
    key: &str,
    pool: &[(EventKind, Bytes)],
    rate: u64,
    until: impl std::future::Future<Output = anyhow::Result<()>>,
) -> anyhow::Result<Measured> {
    let shared = Shared::default();
    let stop = Arc::new(AtomicBool::new(false));
    let task = tokio::spawn(ingest(
        server.address,
        key.to_string(),
        pool.to_vec(),
        rate,
        shared.clone(),
        stop.clone(),
    ));
    let result = until.await;
    stop.store(true, Ordering::Relaxed);
    let _ = task.await;
    result?;
    let interval = with(&shared, std::mem::take);
    Ok((interval.ingest, interval.events, interval.errors))
}
