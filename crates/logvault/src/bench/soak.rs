//! `logvault bench --soak DURATION`: the server under a steady load for a long time, to show
//! that nothing grows. Ingest runs at `--soak-rate` events per second, readers (admin,
//! partner, merchant in turn) ask for list pages, filtered and searched pages and trends
//! four times a second, partner and merchant export their last minute as NDJSON every 15 s,
//! and each person of the Logs page keeps a live tail open. Every `--soak-sample` the
//! server process's resident memory and open file descriptors (`/proc/PID/status`,
//! `/proc/PID/fd`), the size of the store's WAL files and the latencies of that interval are
//! sampled.
//!
//! The JSON result: `settings`, `machine`, `samples` (one object per sample: `t_s`,
//! `rss_mb`, `fds`, `wal_mb`, `events`, `events_per_s`, `ingest`, `reads`, `exports` (each a
//! latency figure), `tail_rows`, `errors`) and `summary`: growth of memory and descriptors
//! after the warm-up (the first 10 minutes, or the first sixth of a shorter soak), the
//! spread of the per-sample p99s after it, and the totals.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::{Method, StatusCode};
use logvault_core::{EventKind, Micros};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

use super::client::Client;
use super::report::{Latencies, machine};
use super::server::ServerProcess;
use super::workload::{self, Zipf};
use super::{BenchArgs, Keys, pages, stage};
use crate::StorageArgs;
use crate::rng::Rng;

/// Reads per second, over all roles.
const READS_PER_S: u64 = 4;
/// Time between two rounds of exports.
const EXPORT_EVERY: Duration = Duration::from_secs(15);
/// Longest warm-up before growth is measured.
const MAX_WARMUP: Duration = Duration::from_secs(600);

/// Reads `90s`, `10m`, `1h` (or plain seconds) as a duration.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration such as 90s, 10m or 1h"))?;
    let seconds = match unit {
        "" | "s" => number,
        "m" => number * 60,
        "h" => number * 3600,
        _ => return Err(format!("{text:?}: the unit must be s, m or h")),
    };
    Ok(Duration::from_secs(seconds))
}

/// What the load tasks measured since the last sample.
#[derive(Debug, Default)]
pub(super) struct Interval {
    pub(super) ingest: Latencies,
    reads: Latencies,
    exports: Latencies,
    pub(super) events: u64,
    tail_rows: u64,
    pub(super) errors: u64,
}

pub(super) type Shared = Arc<Mutex<Interval>>;

pub(super) fn with<T>(shared: &Shared, update: impl FnOnce(&mut Interval) -> T) -> T {
    update(&mut shared.lock().unwrap_or_else(PoisonError::into_inner))
}

/// One sample of the server.
#[derive(Debug)]
struct Sample {
    t_s: f64,
    rss_mb: f64,
    fds: usize,
    wal_mb: Option<f64>,
    interval: Interval,
    seconds: f64,
}

impl Sample {
    fn json(&self) -> Value {
        let i = &self.interval;
        json!({
            "t_s": round(self.t_s), "rss_mb": round(self.rss_mb), "fds": self.fds,
            "wal_mb": self.wal_mb.map(round), "events": i.events,
            "events_per_s": round(i.events as f64 / self.seconds.max(1e-9)),
            "ingest": i.ingest.json(), "reads": i.reads.json(), "exports": i.exports.json(),
            "tail_rows": i.tail_rows, "errors": i.errors,
        })
    }
}

fn round(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

pub(crate) async fn run(
    args: &BenchArgs,
    storage: &StorageArgs,
    duration: Duration,
) -> anyhow::Result<()> {
    anyhow::ensure!(args.soak_rate > 0, "--soak-rate must be positive");
    anyhow::ensure!(
        !args.soak_sample.is_zero() && args.soak_sample <= duration,
        "--soak-sample must be positive and at most the soak's duration"
    );
    let dir = storage.dir();
    std::fs::create_dir_all(&dir)?;
    stage("creating the accounts, keys and people");
    let keys = super::setup(storage.open().await?.as_ref()).await?;
    let mut rng = Rng(args.seed);
    let zipf = Zipf::new(workload::N_MERCHANTS);
    let pool = workload::request_pool(&mut rng, &zipf, args.batch);
    let exe = std::env::current_exe()?;
    let server = ServerProcess::start(&exe, storage)?;
    let address = server.address;
    stage(&format!(
        "soak for {} s: {} events/s in requests of {}, {READS_PER_S} reads/s, exports every {} s, \
         {} live tails; a sample every {} s",
        duration.as_secs(),
        args.soak_rate,
        args.batch,
        EXPORT_EVERY.as_secs(),
        keys.people.len(),
        args.soak_sample.as_secs()
    ));

    let shared = Shared::default();
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks: Vec<JoinHandle<()>> = vec![
        tokio::spawn(ingest(
            address,
            keys.admin.clone(),
            pool,
            args.soak_rate,
            shared.clone(),
            stop.clone(),
        )),
        tokio::spawn(reads(
            address,
            reader_keys(&keys),
            shared.clone(),
            stop.clone(),
        )),
        tokio::spawn(exports(
            address,
            [keys.partner.clone(), keys.merchant.clone()],
            shared.clone(),
        )),
    ];
    for person in keys.people {
        tasks.push(tokio::spawn(tail(address, person, shared.clone())));
    }

    let arena_max = malloc_arena_max(server.pid());
    let started = Instant::now();
    let mut samples = Vec::new();
    let mut totals = (Latencies::default(), Latencies::default());
    let mut last = started;
    while started.elapsed() < duration {
        let next = last + args.soak_sample;
        tokio::time::sleep_until(next.into()).await;
        let interval = with(&shared, std::mem::take);
        totals.0.merge(&interval.ingest);
        totals.1.merge(&interval.reads);
        let sample = Sample {
            t_s: started.elapsed().as_secs_f64(),
            rss_mb: rss_mb(server.pid()).unwrap_or(0.0),
            fds: open_fds(server.pid()).unwrap_or(0),
            wal_mb: storage.postgres_url().is_none().then(|| wal_mb(&dir)),
            seconds: next.duration_since(last).as_secs_f64(),
            interval,
        };
        last = next;
        stage(&format!(
            "  {:>6.0} s: rss {:.1} MiB, {} fds, wal {:.1} MiB, {:.0} events/s, ingest p99 {:.1} ms, \
             read p99 {:.1} ms, {} tail rows, {} errors",
            sample.t_s,
            sample.rss_mb,
            sample.fds,
            sample.wal_mb.unwrap_or(0.0),
            sample.interval.events as f64 / sample.seconds,
            sample.interval.ingest.percentile(99.0),
            sample.interval.reads.percentile(99.0),
            sample.interval.tail_rows,
            sample.interval.errors
        ));
        samples.push(sample);
    }
    stop.store(true, Ordering::Relaxed);
    for task in &tasks {
        task.abort();
    }
    for task in tasks {
        let _ = task.await;
    }
    let clean_stop = server.stop().is_ok();

    let warmup = MAX_WARMUP.min(duration / 6);
    let result = json!({
        "settings": {
            "soak_s": duration.as_secs(), "rate": args.soak_rate, "batch": args.batch,
            "sample_s": args.soak_sample.as_secs_f64(), "reads_per_s": READS_PER_S,
            "export_every_s": EXPORT_EVERY.as_secs(), "live_tails": 3, "seed": args.seed,
            "backend": if storage.postgres_url().is_some() { "postgres" } else { "sqlite" },
            "server_malloc_arena_max": arena_max,
        },
        "machine": machine(),
        "samples": samples.iter().map(Sample::json).collect::<Vec<_>>(),
        "summary": summary(&samples, warmup, &totals, clean_stop),
    });
    println!("{}", serde_json::to_string_pretty(&result)?);
    eprintln!("{}", summary_table(&result["summary"]));
    if let Some(out) = &args.out {
        std::fs::write(out, serde_json::to_string_pretty(&result)? + "\n")?;
        stage(&format!("wrote {}", out.display()));
    }
    Ok(())
}

/// The readers' keys, in turn: admin, partner, merchant.
fn reader_keys(keys: &Keys) -> Vec<String> {
    vec![
        keys.admin.clone(),
        keys.partner.clone(),
        keys.merchant.clone(),
    ]
}

/// Growth after the warm-up, the spread of the per-sample p99s and the totals.
fn summary(
    samples: &[Sample],
    warmup: Duration,
    totals: &(Latencies, Latencies),
    clean_stop: bool,
) -> Value {
    let steady: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.t_s >= warmup.as_secs_f64() - 1.0)
        .collect();
    let growth = |value: &dyn Fn(&Sample) -> f64| -> Value {
        let Some(first) = steady.first() else {
            return Value::Null;
        };
        let base = value(first);
        let max = steady.iter().map(|s| value(s)).fold(base, f64::max);
        let last = steady.last().map_or(base, |s| value(s));
        json!({
            "at_warmup": round(base), "max": round(max), "last": round(last),
            "growth_pct": round(if base > 0.0 { (max - base) / base * 100.0 } else { 0.0 }),
        })
    };
    let spread = |p99: &dyn Fn(&Sample) -> f64| -> Value {
        let mut values: Vec<f64> = steady.iter().map(|s| p99(s)).filter(|v| *v > 0.0).collect();
        values.sort_by(f64::total_cmp);
        let (Some(min), Some(max)) = (values.first(), values.last()) else {
            return Value::Null;
        };
        let median = values[values.len() / 2];
        json!({"min_ms": round(*min), "median_ms": round(median), "max_ms": round(*max)})
    };
    let sum = |count: &dyn Fn(&Interval) -> u64| -> u64 {
        samples.iter().map(|s| count(&s.interval)).sum()
    };
    json!({
        "warmup_s": warmup.as_secs(),
        "rss_mb": growth(&|s| s.rss_mb),
        "fds": growth(&|s| s.fds as f64),
        "wal_mb": growth(&|s| s.wal_mb.unwrap_or(0.0)),
        "ingest_p99_per_sample": spread(&|s| s.interval.ingest.percentile(99.0)),
        "read_p99_per_sample": spread(&|s| s.interval.reads.percentile(99.0)),
        "ingest": totals.0.json(),
        "reads": totals.1.json(),
        "events": sum(&|i| i.events),
        "exports": sum(&|i| i.exports.len() as u64),
        "tail_rows": sum(&|i| i.tail_rows),
        "errors": sum(&|i| i.errors),
        "clean_stop": clean_stop,
    })
}

fn summary_table(summary: &Value) -> String {
    let figure = |name: &str| {
        let f = &summary[name];
        format!(
            "{name}: {} at warm-up, max {}, last {} ({}% growth)",
            f["at_warmup"], f["max"], f["last"], f["growth_pct"]
        )
    };
    let spread = |name: &str| {
        let f = &summary[name];
        format!(
            "{name}: min {} ms, median {} ms, max {} ms",
            f["min_ms"], f["median_ms"], f["max_ms"]
        )
    };
    [
        figure("rss_mb"),
        figure("fds"),
        figure("wal_mb"),
        spread("ingest_p99_per_sample"),
        spread("read_p99_per_sample"),
        format!(
            "events {}, exports {}, tail rows {}, errors {}",
            summary["events"], summary["exports"], summary["tail_rows"], summary["errors"]
        ),
    ]
    .join("\n")
}

/// Resident memory in MiB (`VmRSS`).
fn rss_mb(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// `MALLOC_ARENA_MAX` as the server process runs with it (`/proc/PID/environ`), which the
/// binary sets for itself unless it was given one (see `crate::malloc`).
fn malloc_arena_max(pid: u32) -> Option<String> {
    let environ = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    environ
        .split(|&byte| byte == 0)
        .find_map(|entry| entry.strip_prefix(b"MALLOC_ARENA_MAX="))
        .map(|value| String::from_utf8_lossy(value).into_owned())
}

fn open_fds(pid: u32) -> Option<usize> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count())
}

/// The size of every `*-wal` file of the store (the log and the text index), in MiB.
fn wal_mb(dir: &Path) -> f64 {
    let bytes: u64 = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|entry| entry.file_name().to_string_lossy().ends_with("-wal"))
        .filter_map(|entry| entry.metadata().ok())
        .map(|metadata| metadata.len())
        .sum();
    bytes as f64 / (1024.0 * 1024.0)
}

/// Ingests at `rate` events per second until `stop`, timing each request; a failed request
/// is counted and the connection opened again.
pub(super) async fn ingest(
    address: SocketAddr,
    key: String,
    pool: Vec<(EventKind, Bytes)>,
    rate: u64,
    shared: Shared,
    stop: Arc<AtomicBool>,
) {
    let counts: Vec<u64> = pool
        .iter()
        .map(|(_, body)| serde_json::from_slice::<Vec<Value>>(body).map_or(0, |e| e.len() as u64))
        .collect();
    let started = Instant::now();
    let (mut sent, mut index) = (0u64, 0usize);
    let mut client = None;
    while !stop.load(Ordering::Relaxed) {
        let (kind, body) = &pool[index % pool.len()];
        let n_events = counts[index % pool.len()];
        index += 1;
        sent += n_events;
        let request = Instant::now();
        let ok = match connected(&mut client, address, &key).await {
            Some(client) => super::load::post_events(client, *kind, body).await.is_ok(),
            None => false,
        };
        let millis = request.elapsed().as_secs_f64() * 1e3;
        with(&shared, |i| {
            if ok {
                i.ingest.push(millis);
                i.events += n_events;
            } else {
                i.errors += 1;
            }
        });
        if !ok {
            client = None;
        }
        let due = Duration::from_secs_f64(sent as f64 / rate as f64);
        if let Some(wait) = due.checked_sub(started.elapsed()) {
            tokio::time::sleep(wait).await;
        }
    }
}

/// The open connection, connecting first if there is none.
async fn connected<'a>(
    client: &'a mut Option<Client>,
    address: SocketAddr,
    key: &str,
) -> Option<&'a mut Client> {
    if client.is_none() {
        *client = Client::connect(address, key).await.ok();
    }
    client.as_mut()
}

/// Reads as each key in turn, [`READS_PER_S`] times a second.
async fn reads(address: SocketAddr, keys: Vec<String>, shared: Shared, stop: Arc<AtomicBool>) {
    let paths = [
        "/v1/audit-events",
        "/v1/threat-events?error_type=NetworkTimeout",
        "/v1/audit-events?outcome=failure&limit=100",
        "/v1/threat-events?q=timed%20out",
        "/v1/threat-events/trends?group_by=version&interval=hour",
    ];
    let mut clients: Vec<Option<Client>> = keys.iter().map(|_| None).collect();
    let mut tick = tokio::time::interval(Duration::from_millis(1000 / READS_PER_S));
    for n in 0.. {
        tick.tick().await;
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let who = n % keys.len();
        let path = paths[(n / keys.len()) % paths.len()];
        let started = Instant::now();
        let ok = match connected(&mut clients[who], address, &keys[who]).await {
            Some(client) => client.get_ok(path).await.is_ok(),
            None => false,
        };
        let millis = started.elapsed().as_secs_f64() * 1e3;
        with(&shared, |i| {
            if ok {
                i.reads.push(millis)
            } else {
                i.errors += 1
            }
        });
        if !ok {
            clients[who] = None;
        }
    }
}

/// Every [`EXPORT_EVERY`], each key exports the last minute of its audit events as NDJSON.
async fn exports(address: SocketAddr, keys: [String; 2], shared: Shared) {
    let mut tick = tokio::time::interval(EXPORT_EVERY);
    loop {
        tick.tick().await;
        for key in &keys {
            let from = Micros(Micros::now().0 - 60_000_000).to_rfc3339();
            let path = format!("/v1/audit-events/export?format=ndjson&from={from}");
            let started = Instant::now();
            let ok = match Client::connect(address, key).await {
                Ok(mut client) => matches!(
                    client.send(Method::GET, &path, None).await,
                    Ok((StatusCode::OK, _))
                ),
                Err(_) => false,
            };
            let millis = started.elapsed().as_secs_f64() * 1e3;
            with(&shared, |i| {
                if ok {
                    i.exports.push(millis)
                } else {
                    i.errors += 1
                }
            });
        }
    }
}

/// Keeps a live tail of audit events open as `person`, counting the batches of rows it
/// receives; a tail that ends or fails is counted and opened again.
async fn tail(address: SocketAddr, person: pages::Person, shared: Shared) {
    loop {
        if let Err(error) = follow(address, &person, &shared).await {
            tracing::debug!(%error, "live tail ended");
            with(&shared, |i| i.errors += 1);
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

async fn follow(
    address: SocketAddr,
    person: &pages::Person,
    shared: &Shared,
) -> anyhow::Result<()> {
    let mut client = pages::sign_in(address, person).await?;
    let (status, mut body) = client.open_stream("/tail/audit").await?;
    anyhow::ensure!(status == StatusCode::OK, "GET /tail/audit: {status}");
    while let Some(frame) = body.frame().await {
        if let Some(data) = frame?.data_ref() {
            let rows = data.windows(11).filter(|w| *w == b"event: rows").count() as u64;
            with(shared, |i| i.tail_rows += rows);
        }
    }
    anyhow::bail!("the live tail ended")
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    #[test]
    fn durations_read_as_written() {
        let cases = [
            ("90s", Some(90)),
            ("90", Some(90)),
            ("10m", Some(600)),
            ("1h", Some(3600)),
            (" 2h ", Some(7200)),
            ("1d", None),
            ("h", None),
            ("-5s", None),
            ("1.5h", None),
        ];
        for (text, seconds) in cases {
            let parsed = super::parse_duration(text).ok();
            assert_eq!(parsed, seconds.map(Duration::from_secs), "{text:?}");
        }
    }
}
