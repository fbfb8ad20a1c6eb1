//! `logvault bench`: one command that measures what users choose a log service for —
//! durable ingest throughput against the raw SQLite ceiling, the latency of every API read
//! as each role (admin, partner, merchant) and Logs page render times while ingest
//! continues, memory, bytes per event, recovery after a crash and verification speed; or,
//! with `--soak DURATION`, whether memory, open files, the WAL and latency stay flat under a
//! steady load for that long (`soak.rs`).

mod detections;
mod fingerprints;
mod load;
mod otlp;
mod pages;
mod purge;
mod queries;
mod report;
mod server;
mod siem;
mod soak;
mod workload;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use clap::Args;
use logvault_core::account::NewAccount;
use logvault_core::{AccountKind, EventKind, Permissions, Role};
use logvault_store::Store;
use serde_json::{Value, json};

use self::client::Client;
use self::load::{ingest, measure_reads};
use self::report::Report;
use self::server::ServerProcess;
pub(crate) use self::soak::parse_duration;
use self::workload::Zipf;
use crate::StorageArgs;
use crate::admin::create_key;
use crate::api_client as client;
use crate::rng::Rng;

#[derive(Debug, Args)]
pub(crate) struct BenchArgs {
    /// Events to ingest before measuring queries.
    #[arg(long, default_value_t = 2_000_000)]
    events: usize,
    /// Concurrent ingest clients.
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// Events per ingest request.
    #[arg(long, default_value_t = 500)]
    batch: usize,
    /// Benchmark this store instead of a temporary SQLite directory: `sqlite:///DIR` (new or
    /// empty) or `postgres://…` (a database whose log is empty; the raw ceiling is then
    /// binary COPY into a scratch schema).
    #[arg(long)]
    db: Option<String>,
    /// Also write the JSON result to this file.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Requests per API read kind and role (and per Logs page).
    #[arg(long, default_value_t = 1000)]
    queries: usize,
    /// Seconds one role may spend on one API read kind: past them, and past 10 requests,
    /// it stops short of --queries (the report gives the samples taken). 0: no limit.
    #[arg(long, default_value_t = 2.0)]
    query_seconds: f64,
    /// Events per second ingested in the background while queries are measured.
    #[arg(long, default_value_t = 10_000)]
    background_rate: u64,
    /// Seed of the workload generator.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Instead of the benchmark, a soak this long (`90s`, `10m`, `1h`): steady ingest at
    /// --soak-rate with readers, exports and live tails attached, the server's memory, open
    /// files, WAL size and latencies sampled every --soak-sample.
    #[arg(long, value_parser = soak::parse_duration)]
    soak: Option<Duration>,
    /// Events per second during a soak.
    #[arg(long, default_value_t = 1000)]
    soak_rate: u64,
    /// How often a soak samples the server.
    #[arg(long, default_value = "1m", value_parser = soak::parse_duration)]
    soak_sample: Duration,
    /// Instead of the benchmark, purge this many expired events while ingest runs at
    /// --background-rate, against the same ingest without a purge (`purge.rs`).
    #[arg(long)]
    purge: Option<usize>,
    /// Instead of the benchmark, ingest this many threat events as OTLP/HTTP protobuf and as
    /// native JSON, alternating, on one server (`otlp.rs`).
    #[arg(long)]
    otlp: Option<usize>,
    /// Instead of the benchmark, store this many events and measure how fast one syslog
    /// stream delivers them to an rsyslogd on a loopback port (`siem.rs`).
    #[arg(long)]
    siem_stream: Option<usize>,
    /// Instead of the benchmark, the quality of the security detections: labelled attack
    /// traces seeded into this many benign audit events of the workload, fed to the
    /// detector (`detections.rs`); no server or store is involved.
    #[arg(long)]
    detections: Option<usize>,
    /// Benign audit events per second of simulated time for `--detections`.
    #[arg(long, default_value_t = 1000)]
    detect_rate: u64,
    /// Instead of the benchmark, the quality of threat event fingerprints: a labelled
    /// corpus of this many renderings of every bug template, grouped, with purity and split
    /// rate printed as JSON (`fingerprints.rs`); no server or store is involved.
    #[arg(long)]
    fingerprints: Option<usize>,
    /// Seconds of ingest without a purge that `--purge` compares against.
    #[arg(long, default_value_t = 30)]
    purge_baseline: u64,
}

fn stage(text: &str) {
    eprintln!("bench: {text}");
}

/// Keys the benchmark reads and writes with, and the people who open the Logs page.
struct Keys {
    admin: String,
    partner: String,
    merchant: String,
    people: Vec<pages::Person>,
}

pub(crate) async fn run(args: BenchArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.events > 0 && args.clients > 0 && args.batch > 0,
        "--events, --clients and --batch must be positive"
    );
    anyhow::ensure!(
        args.query_seconds >= 0.0 && args.query_seconds.is_finite(),
        "--query-seconds must be a number of seconds, or 0 for no limit"
    );
    if let Some(variants) = args.fingerprints {
        return fingerprints::run(variants, args.seed);
    }
    let scratch = std::env::temp_dir().join(format!("logvault-bench-{}", std::process::id()));
    // On PostgreSQL the directory only holds the key files the server keeps beside the store.
    let (storage, temporary) = match args.db.as_deref() {
        None => (StorageArgs::sqlite(scratch.clone()), true),
        Some(url) if crate::is_postgres(url) => (
            StorageArgs {
                data_dir: scratch.clone(),
                db: Some(url.to_string()),
            },
            true,
        ),
        Some(url) => match url.strip_prefix("sqlite://") {
            Some(path) if !path.is_empty() => (StorageArgs::sqlite(PathBuf::from(path)), false),
            _ => anyhow::bail!("--db must look like sqlite:///DIR or postgres://user@host/db"),
        },
    };
    if let Some(n) = args.detections {
        return detections::run(&args, n);
    }
    let dir = storage.dir();
    if let Some(duration) = args.soak {
        let result = soak::run(&args, &storage, duration).await;
        if temporary {
            let _ = std::fs::remove_dir_all(&dir);
        }
        return result;
    }
    if let Some(n) = args.otlp {
        let result = otlp::run(&args, &storage, n).await;
        if temporary {
            let _ = std::fs::remove_dir_all(&dir);
        }
        return result;
    }
    if let Some(n) = args.siem_stream {
        let result = siem::run(&args, &storage, n).await;
        if temporary {
            let _ = std::fs::remove_dir_all(&dir);
        }
        return result;
    }
    if let Some(n) = args.purge {
        let result = purge::run(&args, &storage, n).await;
        if temporary {
            let _ = std::fs::remove_dir_all(&dir);
        }
        return result;
    }
    let result = measure(&args, &storage).await;
    if temporary {
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::remove_dir_all(dir.with_extension("ceiling"));
    }
    let report = result?;
    let json = report.to_json();
    println!("{}", serde_json::to_string_pretty(&json)?);
    eprintln!("{}", report.table());
    if let Some(out) = &args.out {
        std::fs::write(out, serde_json::to_string_pretty(&json)? + "\n")?;
        stage(&format!("wrote {}", out.display()));
    }
    Ok(())
}

async fn measure(args: &BenchArgs, storage: &StorageArgs) -> anyhow::Result<Report> {
    let postgres = storage.postgres_url();
    let backend = if postgres.is_some() {
        "postgres"
    } else {
        "sqlite"
    };
    let mut report = Report::new(settings_json(args, backend));
    let dir = storage.dir();
    let dir = dir.as_path();
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    stage(&format!(
        "creating {} partners and {} merchants in {}",
        workload::N_PARTNERS,
        workload::N_MERCHANTS,
        postgres.map_or_else(|| dir.display().to_string(), redact_password)
    ));
    let keys = setup(storage.open().await?.as_ref()).await?;

    stage("generating the workload");
    let mut rng = Rng(args.seed);
    let zipf = Zipf::new(workload::N_MERCHANTS);
    let pool = workload::request_pool(&mut rng, &zipf, args.batch);

    // Resolved once: the binary may be replaced on disk while the benchmark runs.
    let exe = std::env::current_exe().context("locating the logvault binary")?;
    let server = ServerProcess::start(&exe, storage)?;
    let n_requests = args.events.div_ceil(args.batch);
    stage(&format!(
        "ingesting {} events: {} clients x {} events per request",
        n_requests * args.batch,
        args.clients,
        args.batch
    ));
    let batched = ingest(
        server.address,
        &keys.admin,
        &pool,
        n_requests,
        args.clients,
        args.batch,
    )
    .await?;
    report.ingest_events_per_s = batched.events as f64 / batched.elapsed.as_secs_f64();
    report.ingest_mb_per_s = batched.bytes as f64 / 1e6 / batched.elapsed.as_secs_f64();
    report.batch_latency = batched.latencies;
    let ingest_ended = Instant::now();
    // The only events that hold the rare search term, sent once: the pools repeat.
    let terms = workload::SearchTerms::new(args.seed);
    let rare = Bytes::from(workload::rare_body(args.seed, &terms));
    let mut client = Client::connect(server.address, &keys.admin).await?;
    load::post_events(&mut client, EventKind::Threat, &rare).await?;

    stage("single-event ingest: 32 clients x 1 event per request");
    let singles: Vec<(EventKind, Bytes)> = (0..300)
        .map(|i| {
            let kind = workload::kind_of(i);
            (kind, Bytes::from(workload::body(&mut rng, &zipf, kind, 1)))
        })
        .collect();
    let single = ingest(server.address, &keys.admin, &singles, 20_000, 32, 1).await?;
    report.single_latency = single.latencies;

    let ceiling_events: Vec<_> = pool
        .iter()
        .cycle()
        .take(n_requests.min(1_000_000 / args.batch).max(1))
        .flat_map(|(kind, body)| workload::new_events(body, *kind))
        .collect();
    let per_transaction = args.batch * args.clients;
    let n_ceiling = ceiling_events.len();
    let elapsed = match postgres {
        Some(url) => {
            stage("raw ceiling: the same rows by binary COPY into PostgreSQL");
            logvault_postgres::copy_ceiling(url, &ceiling_events, per_transaction).await?
        }
        None => {
            stage("raw ceiling: the same rows straight into SQLite");
            let ceiling_dir = dir.with_extension("ceiling");
            let _ = std::fs::remove_dir_all(&ceiling_dir);
            let elapsed = tokio::task::spawn_blocking({
                let ceiling_dir = ceiling_dir.clone();
                move || {
                    logvault_sqlite::insert_ceiling(
                        &ceiling_dir,
                        &workload::accounts(),
                        &ceiling_events,
                        per_transaction,
                    )
                }
            })
            .await??;
            let _ = std::fs::remove_dir_all(&ceiling_dir);
            elapsed
        }
    };
    report.ceiling_events_per_s = n_ceiling as f64 / elapsed.as_secs_f64();
    if postgres.is_none() {
        // SQLite's text index gives way to ingest, so a burst at full speed leaves it behind;
        // the reads are measured in the steady state, once it has caught up.
        report.search_lag_after_ingest = logvault_sqlite::search_index_lag(dir)?;
        stage(&format!(
            "text index: {} events behind; waiting for it to catch up",
            report.search_lag_after_ingest
        ));
        while logvault_sqlite::search_index_lag(dir)? > 0 {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        report.search_caught_up_s = ingest_ended.elapsed().as_secs_f64();
    }

    stage(&format!(
        "API reads: {} per kind and role (fewer past {} s on one kind) while ingesting {} \
         events/s in the background",
        args.queries, args.query_seconds, args.background_rate
    ));
    measure_reads(server.address, &keys, &pool, args, &mut report).await?;
    report.peak_rss_mb = server.peak_rss_mb();

    stage("unclean stop (SIGKILL) and restart");
    server.kill().context("killing the server")?;
    let restart = Instant::now();
    let server = ServerProcess::start(&exe, storage).context("restarting the server")?;
    let mut client = Client::connect(server.address, &keys.admin).await?;
    client.get_ok("/readyz").await?;
    report.reopen_after_kill_ms = restart.elapsed().as_secs_f64() * 1e3;
    server.stop().context("stopping the server")?;

    report.events_stored = storage.open().await?.log_size().await?;
    // `logvault verify` itself, as an operator runs it: its own process and memory.
    stage(&format!(
        "verify: `logvault verify` recomputing {} leaf hashes and the tree",
        report.events_stored
    ));
    let started = Instant::now();
    let verified = server::command(&exe, "verify", storage)
        .stdin(std::process::Stdio::null())
        .output()
        .context("running logvault verify")?;
    anyhow::ensure!(
        verified.status.success(),
        "the benchmark's own log does not verify: {}{}",
        String::from_utf8_lossy(&verified.stdout),
        String::from_utf8_lossy(&verified.stderr)
    );
    report.verify_events_per_s = report.events_stored as f64 / started.elapsed().as_secs_f64();
    stage("scrubbing throughput on clean and dirty text");
    (report.scrub_clean_mb_per_s, report.scrub_dirty_mb_per_s) = scrub_throughput(&mut rng);
    let (db_bytes, text_bytes) = match postgres {
        Some(url) => logvault_postgres::storage_bytes(url).await?,
        None => logvault_sqlite::storage_bytes(dir)?,
    };
    report.bytes_per_event = db_bytes as f64 / report.events_stored.max(1) as f64;
    report.bytes_per_event_without_text =
        (db_bytes.saturating_sub(text_bytes)) as f64 / report.events_stored.max(1) as f64;
    Ok(report)
}

/// Single-core scrubbing speed in MB/s over realistic log text without and with secrets.
fn scrub_throughput(rng: &mut Rng) -> (f64, f64) {
    use logvault_core::scrub::{Redactions, ScrubConfig, Scrubber};
    let Ok(scrubber) = Scrubber::new(&ScrubConfig::default()) else {
        return (0.0, 0.0);
    };
    let zipf = Zipf::new(workload::N_MERCHANTS);
    let clean: Vec<String> = (0..20_000)
        .map(|i| {
            let event = workload::event(rng, &zipf, workload::kind_of(i));
            [
                &event["message"],
                &event["origin"]["user_agent"],
                &event["request_id"],
                &event["version"],
            ]
            .iter()
            .filter_map(|v| v.as_str())
            .collect::<Vec<_>>()
            .join(" ")
        })
        .collect();
    let secrets = [
        "card 4242 4242 4242 4242 declined",
        "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJlc2lnbmF0dXJl",
        "customer jane.doe@example.com",
        "api_key=sk_live_4eC39HqLyjWDarjtT1zdp7dc",
    ];
    let dirty: Vec<String> = clean
        .iter()
        .enumerate()
        .map(|(i, line)| format!("{line} {}", secrets[i % secrets.len()]))
        .collect();
    let measure = |lines: &[String]| {
        let bytes: usize = lines.iter().map(String::len).sum();
        let started = Instant::now();
        let mut redactions = Redactions::default();
        for _ in 0..5 {
            for line in lines {
                std::hint::black_box(scrubber.scrub_text(line, &mut redactions));
            }
        }
        (5 * bytes) as f64 / 1e6 / started.elapsed().as_secs_f64()
    };
    (measure(&clean), measure(&dirty))
}

/// Creates the tenancy and the keys, then closes the store so the server can take over.
async fn setup(store: &dyn Store) -> anyhow::Result<Keys> {
    create_accounts(store).await?;
    create_keys(store).await
}

/// The workload's partners and merchants, in a store that must hold no events yet.
async fn create_accounts(store: &dyn Store) -> anyhow::Result<()> {
    anyhow::ensure!(
        store.log_size().await? == 0,
        "the store already holds events; bench needs a fresh one"
    );
    for (id, partner_id) in workload::accounts() {
        let kind = if partner_id.is_some() {
            AccountKind::Merchant
        } else {
            AccountKind::Partner
        };
        store
            .create_account(NewAccount {
                kind,
                partner_id,
                name: id.clone(),
                id: Some(id),
            })
            .await?;
    }
    Ok(())
}

/// The benchmark's keys and people (their creation is recorded as audit events).
async fn create_keys(store: &dyn Store) -> anyhow::Result<Keys> {
    let permissions = Permissions::parse("ingest,read").map_err(anyhow::Error::msg)?;
    let (_, admin) =
        create_key(store, Role::Admin, None, permissions, Some("bench".into())).await?;
    let (_, partner) = create_key(
        store,
        Role::Partner,
        Some(workload::partner_id(0)),
        permissions,
        Some("bench".into()),
    )
    .await?;
    let (_, merchant) = create_key(
        store,
        Role::Merchant,
        Some(workload::merchant_id(0)),
        permissions,
        Some("bench".into()),
    )
    .await?;
    Ok(Keys {
        admin,
        partner,
        merchant,
        people: pages::create_people(store).await?,
    })
}

/// The run's settings as the report gives them.
fn settings_json(args: &BenchArgs, backend: &str) -> Value {
    json!({
        "events": args.events, "clients": args.clients, "batch": args.batch, "backend": backend,
        "queries": args.queries, "query_seconds": args.query_seconds,
        "background_rate": args.background_rate, "seed": args.seed,
    })
}

/// `url` with the password of its user part replaced, for progress lines.
fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((user_info, host)) if user_info.contains(':') => {
            let user = user_info.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}{path}")
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn progress_lines_never_show_a_password() {
        let cases = [
            (
                "postgres://lv:s3cret@db:5432/logs",
                "postgres://lv:***@db:5432/logs",
            ),
            ("postgres://lv@db/logs", "postgres://lv@db/logs"),
            ("postgresql://a:b:c@h/d?x=1", "postgresql://a:***@h/d?x=1"),
        ];
        for (url, shown) in cases {
            assert_eq!(super::redact_password(url), shown);
        }
    }
}
