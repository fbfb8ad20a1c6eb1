//! `logvault tail` and `logvault export`: the terminal's view of a running service, through
//! its API with an API key, so a person sees exactly what the key's scope allows.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Args, ValueEnum};
use http_body_util::BodyExt;
use hyper::StatusCode;
use serde_json::Value;

use crate::api_client::Client;

/// Which service and which key.
#[derive(Debug, Clone, Args)]
pub(crate) struct RemoteArgs {
    /// The service, e.g. `http://127.0.0.1:8080`.
    #[arg(long, env = "LOGVAULT_URL", default_value = "http://127.0.0.1:8080")]
    url: String,
    /// An API key with the `read` permission.
    #[arg(long, env = "LOGVAULT_KEY", hide_env_values = true)]
    key: String,
}

impl RemoteArgs {
    async fn connect(&self) -> anyhow::Result<Client> {
        let authority = self
            .url
            .strip_prefix("http://")
            .map(|rest| rest.trim_end_matches('/'))
            .filter(|rest| !rest.is_empty() && !rest.contains('/'))
            .with_context(|| {
                format!(
                    "--url must look like http://HOST:PORT, not {:?} (for HTTPS, go through a \
                     local proxy)",
                    self.url
                )
            })?;
        let address = tokio::net::lookup_host(authority)
            .await
            .with_context(|| format!("resolving {authority}"))?
            .next()
            .with_context(|| format!("{authority} has no address"))?;
        Client::connect(address, &self.key)
            .await
            .with_context(|| format!("connecting to {}", self.url))
    }
}

/// The two kinds of log.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum Kind {
    /// Sign-ins and other access events.
    Audit,
    /// Errors from SDK and API usage.
    Threat,
}

impl Kind {
    fn path(self) -> &'static str {
        match self {
            Kind::Audit => "/v1/audit-events",
            Kind::Threat => "/v1/threat-events",
        }
    }
}

/// `key=value` filters of the API's lists (`outcome=failure`, `ip=203.0.113.0/24`, `q=…`), as
/// a query string.
fn query(filters: &[String]) -> anyhow::Result<String> {
    let mut pairs = Vec::new();
    for filter in filters {
        let (key, value) = filter
            .split_once('=')
            .with_context(|| format!("filter {filter:?} must be KEY=VALUE"))?;
        pairs.push((key.to_string(), value.to_string()));
    }
    Ok(serde_urlencoded::to_string(pairs)?)
}

#[derive(Debug, Args)]
pub(crate) struct TailArgs {
    #[command(flatten)]
    remote: RemoteArgs,
    /// Which log.
    kind: Kind,
    /// Filters as the API takes them, e.g. `outcome=failure actor_id=usr_42`.
    filters: Vec<String>,
    /// Events shown from before the tail starts.
    #[arg(long, short = 'n', default_value_t = 10)]
    lines: usize,
    /// How often to look for new events.
    #[arg(long, default_value = "2s", value_parser = crate::bench::parse_duration)]
    interval: Duration,
    /// One JSON object per line instead of a readable line.
    #[arg(long)]
    json: bool,
}

/// Polls the list newest first, follows cursors back to the last event shown, and prints
/// what is new oldest first. Each poll is a read like any other, recorded as `logs.viewed`
/// with the key as actor; the tail does not show those records of its own polls (they would
/// otherwise fill an audit tail, one per poll).
pub(crate) async fn tail(args: TailArgs) -> anyhow::Result<()> {
    let mut client = args.remote.connect().await?;
    // Keys read `lv_<id>_<secret>`; the id is the actor of the reads this key makes.
    let key_id = args
        .remote
        .key
        .split('_')
        .nth(1)
        .unwrap_or_default()
        .to_string();
    let own_poll = |event: &Value| {
        event["action"] == "logs.viewed" && event["actor"]["id"].as_str() == Some(&key_id)
    };
    let filters = query(&args.filters)?;
    let mut last_seq: Option<u64> = None;
    let mut stdout = std::io::stdout();
    loop {
        let mut fresh: Vec<Value> = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut path = format!("{}?limit=1000&{filters}", args.kind.path());
            if let Some(cursor) = &cursor {
                path.push_str(&format!("&cursor={cursor}"));
            }
            let page: Value = serde_json::from_slice(&client.get_ok(&path).await?)?;
            let events = page["data"].as_array().cloned().unwrap_or_default();
            let older = |event: &Value| {
                last_seq.is_some_and(|last| event["seq"].as_u64().unwrap_or(0) <= last)
            };
            let reached_shown = events.iter().any(older);
            fresh.extend(events.into_iter().take_while(|event| !older(event)));
            // The first poll shows only the last --lines events; later ones everything new.
            let enough = last_seq.is_none() && fresh.len() >= args.lines;
            cursor = page["next_cursor"].as_str().map(str::to_string);
            if reached_shown || enough || cursor.is_none() {
                break;
            }
        }
        if last_seq.is_none() {
            fresh.truncate(args.lines);
        }
        if let Some(newest) = fresh.first().and_then(|event| event["seq"].as_u64()) {
            last_seq = Some(newest);
        } else if last_seq.is_none() {
            last_seq = Some(0);
        }
        for event in fresh.iter().rev().filter(|event| !own_poll(event)) {
            let line = if args.json {
                event.to_string()
            } else {
                readable(event)
            };
            writeln!(stdout, "{line}")?;
        }
        stdout.flush()?;
        tokio::time::sleep(args.interval).await;
    }
}

/// One event as a line a person reads: time, account, then what happened.
fn readable(event: &Value) -> String {
    let field = |path: &[&str]| {
        let mut value = event;
        for key in path {
            value = &value[*key];
        }
        value.as_str().unwrap_or("-").to_string()
    };
    let head = format!("{}  {}", field(&["received_at"]), field(&["account_id"]));
    if event["kind"] == "threat" {
        format!(
            "{head}  {} [{} {} {}] {}",
            field(&["error_type"]),
            field(&["source"]),
            field(&["version"]),
            field(&["environment"]),
            field(&["message"])
        )
    } else {
        format!(
            "{head}  {} {} actor={} ip={} {}",
            field(&["action"]),
            field(&["outcome"]),
            field(&["actor", "id"]),
            field(&["origin", "ip"]),
            field(&["reason"])
        )
    }
}

/// The formats of an export.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum Format {
    /// Comma-separated values (formula-like cells neutralised).
    Csv,
    /// One JSON event per line.
    Ndjson,
    /// One OCSF event per line.
    Ocsf,
}

#[derive(Debug, Args)]
pub(crate) struct ExportArgs {
    #[command(flatten)]
    remote: RemoteArgs,
    /// Which log.
    kind: Kind,
    /// Filters as the API takes them, e.g. `from=2026-11-01T00:00:00Z outcome=failure`.
    filters: Vec<String>,
    /// The format.
    #[arg(long, value_enum, default_value = "ndjson")]
    format: Format,
    /// Write here instead of to standard output.
    #[arg(long, short = 'o')]
    output: Option<std::path::PathBuf>,
}

/// Streams `GET …/export` to the output as it arrives, with a progress line on stderr when
/// stderr is a terminal.
pub(crate) async fn export(args: ExportArgs) -> anyhow::Result<()> {
    let mut client = args.remote.connect().await?;
    let format = match args.format {
        Format::Csv => "csv",
        Format::Ndjson => "ndjson",
        Format::Ocsf => "ocsf",
    };
    let filters = query(&args.filters)?;
    let path = format!("{}/export?format={format}&{filters}", args.kind.path());
    let (status, mut body) = client.open_stream(&path).await?;
    if status != StatusCode::OK {
        let answer = body.collect().await?.to_bytes();
        let problem: Value = serde_json::from_slice(&answer).unwrap_or_default();
        let detail = problem["detail"].as_str().map_or_else(
            || String::from_utf8_lossy(&answer).into_owned(),
            str::to_string,
        );
        anyhow::bail!("the export was refused ({status}): {detail}");
    }
    let mut output: Box<dyn Write> = match &args.output {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout())),
    };
    let show_progress = std::io::stderr().is_terminal();
    let started = Instant::now();
    let (mut bytes, mut lines) = (0u64, 0u64);
    let mut shown = Instant::now();
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame?.into_data() else {
            continue;
        };
        output.write_all(&data)?;
        bytes += data.len() as u64;
        lines += data.iter().filter(|byte| **byte == b'\n').count() as u64;
        if show_progress && shown.elapsed() >= Duration::from_millis(200) {
            shown = Instant::now();
            progress(lines, bytes, started.elapsed());
        }
    }
    output.flush()?;
    if show_progress {
        progress(lines, bytes, started.elapsed());
        eprintln!();
    }
    Ok(())
}

fn progress(lines: u64, bytes: u64, elapsed: Duration) {
    let megabytes = bytes as f64 / 1e6;
    let rate = megabytes / elapsed.as_secs_f64().max(1e-3);
    eprint!("\r  {lines} lines, {megabytes:.1} MB, {rate:.1} MB/s   ");
}
