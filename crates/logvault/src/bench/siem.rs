//! `logvault bench --siem-stream N`: the sustained rate of one RFC 5424 syslog stream to a
//! real rsyslog. N events of the benchmark's workload are stored first (through the store,
//! as ingest stores them), then the server starts with one stream of the whole log to an
//! rsyslogd this benchmark runs on a loopback port (imtcp in, omfile out, its own
//! configuration); the rate is messages rsyslog wrote per second, from its first to the
//! last, so a backlog the stream drains at full speed. rsyslogd is `/usr/sbin/rsyslogd`
//! (Debian's `rsyslog`) unless `LOGVAULT_RSYSLOGD` names another.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use super::server::ServerProcess;
use super::workload::{self, Zipf};
use super::{BenchArgs, stage};
use crate::StorageArgs;
use crate::rng::Rng;

/// An rsyslogd of the benchmark's own; killed when dropped.
struct Rsyslog(Child);

impl Drop for Rsyslog {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_rsyslog(dir: &Path, port: u16, out: &Path) -> anyhow::Result<Rsyslog> {
    let rsyslogd = std::env::var_os("LOGVAULT_RSYSLOGD")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/sbin/rsyslogd"));
    anyhow::ensure!(
        rsyslogd.exists(),
        "{} not found: install Debian's rsyslog or set LOGVAULT_RSYSLOGD",
        rsyslogd.display()
    );
    std::fs::create_dir_all(dir)?;
    let config = format!(
        "global(workDirectory=\"{dir}\" maxMessageSize=\"256k\")\n\
         module(load=\"imtcp\")\n\
         template(name=\"raw\" type=\"string\" string=\"%rawmsg%\\n\")\n\
         ruleset(name=\"bench\") {{ action(type=\"omfile\" file=\"{out}\" template=\"raw\") }}\n\
         input(type=\"imtcp\" port=\"{port}\" address=\"127.0.0.1\" ruleset=\"bench\")\n",
        dir = dir.display(),
        out = out.display(),
    );
    let config_path = dir.join("rsyslog.conf");
    std::fs::write(&config_path, config)?;
    let child = Command::new(&rsyslogd)
        .arg("-n")
        .arg("-f")
        .arg(&config_path)
        .arg("-i")
        .arg(dir.join("rsyslogd.pid"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()?;
    let rsyslog = Rsyslog(child);
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        anyhow::ensure!(Instant::now() < deadline, "rsyslogd never listened");
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(rsyslog)
}

/// Counts the lines of a growing file.
struct LineCounter {
    file: Option<std::fs::File>,
    path: PathBuf,
    lines: u64,
    bytes: u64,
}

impl LineCounter {
    fn poll(&mut self) -> anyhow::Result<u64> {
        if self.file.is_none() {
            self.file = std::fs::File::open(&self.path).ok();
        }
        if let Some(file) = &mut self.file {
            let mut buffer = vec![0u8; 1 << 20];
            loop {
                let n = file.read(&mut buffer)?;
                if n == 0 {
                    break;
                }
                self.bytes += n as u64;
                self.lines += buffer[..n].iter().filter(|byte| **byte == b'\n').count() as u64;
            }
        }
        Ok(self.lines)
    }
}

pub(crate) async fn run(args: &BenchArgs, storage: &StorageArgs, n: usize) -> anyhow::Result<()> {
    anyhow::ensure!(n > 0, "--siem-stream must be positive");
    std::fs::create_dir_all(storage.dir())?;
    let store = storage.open().await?;
    anyhow::ensure!(
        store.log_size().await? == 0,
        "--siem-stream needs an empty store: it streams the whole log"
    );
    stage("creating the accounts");
    super::create_accounts(store.as_ref()).await?;
    let mut rng = Rng(args.seed);
    let zipf = Zipf::new(workload::N_MERCHANTS);
    let pool = workload::request_pool(&mut rng, &zipf, args.batch);
    let mut stored = 0usize;
    for (kind, body) in pool.iter().cycle() {
        if stored >= n {
            break;
        }
        let mut events = workload::new_events(body, *kind);
        events.truncate(n - stored);
        stored += events.len();
        store.ingest(events).await?;
        if stored % 100_000 < args.batch {
            stage(&format!("stored {stored}/{n} events"));
        }
    }
    let total = store.log_size().await?;
    drop(store);

    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let rsyslog_dir = storage.dir().join("rsyslog");
    let out = rsyslog_dir.join("received.log");
    let _rsyslog = start_rsyslog(&rsyslog_dir, port, &out)?;
    stage(&format!(
        "streaming {total} events as syslog to rsyslogd on 127.0.0.1:{port}"
    ));
    let exe = std::env::current_exe()?;
    let stream = format!("name=bench,format=syslog,address=127.0.0.1:{port}");
    let server =
        ServerProcess::start_with_env(&exe, storage, &[("LOGVAULT_SIEM_STREAMS", &stream)])?;
    let started = Instant::now();
    let load_at_start = load_average();
    let mut counter = LineCounter {
        file: None,
        path: out,
        lines: 0,
        bytes: 0,
    };
    let limit = Duration::from_secs(120 + total / 1000);
    let mut first = None;
    let mut last_report = Instant::now();
    loop {
        let lines = counter.poll()?;
        if lines > 0 && first.is_none() {
            first = Some((Instant::now(), lines));
        }
        if lines >= total {
            break;
        }
        anyhow::ensure!(
            started.elapsed() < limit,
            "rsyslog received {lines} of {total} messages in {limit:?}"
        );
        if last_report.elapsed() > Duration::from_secs(5) {
            stage(&format!("rsyslog has {lines}/{total}"));
            last_report = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let done = Instant::now();
    let peak_rss_mb = server.peak_rss_mb();
    server.stop()?;
    let (first_at, first_lines) = first.unwrap_or((started, 0));
    let seconds = done.duration_since(first_at).as_secs_f64().max(1e-6);
    let rate = (total - first_lines) as f64 / seconds;
    let mean_bytes = counter.bytes as f64 / total as f64;
    let result = json!({
        "settings": {"events": total, "format": "syslog", "framing": "octet-counting (RFC 6587)",
                     "tls": false, "collector": "rsyslogd (imtcp, omfile)", "seed": args.seed},
        "machine": super::report::machine(),
        "seconds_from_start_to_last": done.duration_since(started).as_secs_f64(),
        "seconds_first_to_last": seconds,
        "events_per_s": rate,
        "mb_per_s": rate * mean_bytes / 1e6,
        "mean_message_bytes": mean_bytes,
        "server_peak_rss_mb": peak_rss_mb,
        // Other work on the machine shares its cores with the server and rsyslogd.
        "load_average_1m": {"at_start": load_at_start, "at_end": load_average()},
    });
    println!("{}", serde_json::to_string_pretty(&result)?);
    stage(&format!(
        "{total} events to rsyslog: {rate:.0} events/s ({:.1} MB/s, {mean_bytes:.0} bytes each)",
        rate * mean_bytes / 1e6
    ));
    if let Some(out) = &args.out {
        std::fs::write(out, serde_json::to_string_pretty(&result)? + "\n")?;
        stage(&format!("wrote {}", out.display()));
    }
    Ok(())
}

/// The 1-minute load average (Linux `/proc/loadavg`).
fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}
