//! SIEM streams: `serve` sends the log, in `seq` order, to collectors over TCP (optionally
//! TLS) as RFC 5424 syslog, CEF or OCSF lines, each stream from a cursor kept in the store so
//! a restart resumes where the last acknowledged write ended.
//!
//! A stream is configured with `--siem-stream SPEC` (repeatable; `;` separates several in
//! `LOGVAULT_SIEM_STREAMS`) or a `[[siem.streams]]` table of the config file, with the same
//! keys: `name` (the cursor's name), `format` (`syslog`, `cef` or `ocsf`), `address`
//! (`host:port`), and optionally `tls` (`true` needs `tls_ca`, a PEM file of the collector's
//! CA), `tls_name` (the name its certificate carries; default the address's host), `account`
//! (stream only what that account reads: a partner's whole tree, or one merchant's events)
//! and `host` (the syslog HOSTNAME; default this machine's name).

mod stream;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use logvault_core::{AccountKind, Scope};
use logvault_server::MetricsSource;
use logvault_store::Store;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The `serve` flags of SIEM streams.
#[derive(Debug, clap::Args)]
pub(crate) struct SiemArgs {
    /// A SIEM stream (repeatable): `name=soc,format=syslog|cef|ocsf,address=HOST:PORT` and
    /// optionally `tls=true,tls_ca=FILE,tls_name=NAME`, `account=ID`, `host=NAME`; in the
    /// config file, a `[[siem.streams]]` table with the same keys.
    #[arg(long = "siem-stream", env = "LOGVAULT_SIEM_STREAMS", value_delimiter = ';',
          value_parser = parse_spec)]
    pub(crate) streams: Vec<StreamSpec>,
}

/// The format a stream sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StreamFormat {
    /// RFC 5424 with structured data, octet-counted (RFC 6587).
    Syslog,
    /// CEF behind an RFC 5424 header, one per line.
    Cef,
    /// One OCSF JSON event per line.
    Ocsf,
}

/// One configured stream, as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StreamSpec {
    pub(crate) name: String,
    pub(crate) format: StreamFormat,
    pub(crate) address: String,
    pub(crate) tls: bool,
    pub(crate) tls_ca: Option<PathBuf>,
    pub(crate) tls_name: Option<String>,
    pub(crate) account: Option<String>,
    pub(crate) host: Option<String>,
}

/// Parses `name=soc,format=syslog,address=127.0.0.1:6514[,tls=true,tls_ca=FILE,…]`.
pub(crate) fn parse_spec(text: &str) -> Result<StreamSpec, String> {
    let mut spec = StreamSpec {
        name: String::new(),
        format: StreamFormat::Syslog,
        address: String::new(),
        tls: false,
        tls_ca: None,
        tls_name: None,
        account: None,
        host: None,
    };
    let mut format = None;
    for pair in text
        .split(',')
        .map(str::trim)
        .filter(|pair| !pair.is_empty())
    {
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| format!("{pair:?} is not key=value"))?;
        let value = value.trim().to_string();
        match key.trim() {
            "name" => spec.name = value,
            "format" => {
                format = Some(match value.as_str() {
                    "syslog" => StreamFormat::Syslog,
                    "cef" => StreamFormat::Cef,
                    "ocsf" => StreamFormat::Ocsf,
                    _ => return Err(format!("format {value:?} is not syslog, cef or ocsf")),
                })
            }
            "address" => spec.address = value,
            "tls" => {
                spec.tls = value
                    .parse()
                    .map_err(|_| format!("tls must be true or false, not {value:?}"))?
            }
            "tls_ca" => spec.tls_ca = Some(value.into()),
            "tls_name" => spec.tls_name = Some(value),
            "account" => spec.account = Some(value),
            "host" => spec.host = Some(value),
            other => {
                return Err(format!(
                    "no stream setting {other:?} (known: name, format, address, tls, tls_ca, \
                     tls_name, account, host)"
                ));
            }
        }
    }
    spec.format = format.ok_or("a stream needs format=syslog|cef|ocsf")?;
    let name_ok = !spec.name.is_empty()
        && spec
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if !name_ok {
        return Err("a stream needs name= (letters, digits, '-', '_', '.')".into());
    }
    if spec.address.rsplit_once(':').is_none() {
        return Err(format!("address {:?} is not host:port", spec.address));
    }
    if spec.tls && spec.tls_ca.is_none() {
        return Err("tls=true needs tls_ca=FILE (the collector's CA, PEM)".into());
    }
    Ok(spec)
}

/// What one stream has done, for `/metrics`.
#[derive(Debug, Default)]
pub(crate) struct StreamMetrics {
    /// Events written and flushed.
    pub(crate) sent: AtomicU64,
    /// Connection and write failures.
    pub(crate) errors: AtomicU64,
    /// The last `seq` delivered.
    pub(crate) cursor: AtomicU64,
    /// Positions of the log not yet looked at: log size minus the cursor.
    pub(crate) lag: AtomicU64,
    /// 1 while connected.
    pub(crate) connected: AtomicU64,
}

/// The running streams.
pub(crate) struct Streams {
    tasks: Vec<JoinHandle<()>>,
    stop: watch::Sender<bool>,
    metrics: Vec<(String, Arc<StreamMetrics>)>,
}

impl Streams {
    /// Starts every stream of `specs`; refuses to start on an unknown account or an unusable
    /// CA file, before anything is sent.
    pub(crate) async fn start(
        store: Arc<dyn Store>,
        specs: &[StreamSpec],
    ) -> anyhow::Result<Streams> {
        let (stop, stopped) = watch::channel(false);
        let mut names = std::collections::BTreeSet::new();
        let mut prepared = Vec::new();
        for spec in specs {
            if !names.insert(spec.name.clone()) {
                anyhow::bail!("two SIEM streams are named {:?}", spec.name);
            }
            let scope = match &spec.account {
                None => Scope::All,
                Some(id) => {
                    let found = store
                        .accounts_in_scope(&Scope::All, std::slice::from_ref(id))
                        .await?;
                    match found.first() {
                        Some(account) if account.kind == AccountKind::Partner => {
                            Scope::Partner(id.clone())
                        }
                        Some(_) => Scope::Account(id.clone()),
                        None => anyhow::bail!("SIEM stream {}: no account {id}", spec.name),
                    }
                }
            };
            let tls = match (&spec.tls, &spec.tls_ca) {
                (true, Some(ca)) => Some(logvault_server::tls_connector(ca)?),
                _ => None,
            };
            prepared.push(stream::Stream {
                spec: spec.clone(),
                scope,
                tls,
                host: spec.host.clone().unwrap_or_else(host_name),
                metrics: Arc::new(StreamMetrics::default()),
            });
        }
        let mut streams = Streams {
            tasks: Vec::new(),
            stop,
            metrics: Vec::new(),
        };
        for stream in prepared {
            streams
                .metrics
                .push((stream.spec.name.clone(), stream.metrics.clone()));
            tracing::info!(
                stream = %stream.spec.name,
                address = %stream.spec.address,
                format = ?stream.spec.format,
                "starting SIEM stream"
            );
            streams
                .tasks
                .push(tokio::spawn(stream.run(store.clone(), stopped.clone())));
        }
        Ok(streams)
    }

    /// Renders every stream's metrics.
    pub(crate) fn metrics_source(&self) -> MetricsSource {
        let metrics = self.metrics.clone();
        Arc::new(move |out: &mut String| render(out, &metrics))
    }

    /// Asks every stream to stop after its current write and waits for them (at most a few
    /// seconds: a collector that stopped reading must not hold the shutdown).
    pub(crate) async fn stop(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let abort = task.abort_handle();
            if tokio::time::timeout(std::time::Duration::from_secs(5), task)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
    }
}

/// A metric family: its name, type, help and the counter of a stream it shows.
type Family = (
    &'static str,
    &'static str,
    &'static str,
    fn(&StreamMetrics) -> &AtomicU64,
);

fn render(out: &mut String, metrics: &[(String, Arc<StreamMetrics>)]) {
    use std::fmt::Write;
    if metrics.is_empty() {
        return;
    }
    let families: [Family; 5] = [
        (
            "logvault_siem_sent_total",
            "counter",
            "Events a SIEM stream wrote and flushed to its collector.",
            |m| &m.sent,
        ),
        (
            "logvault_siem_errors_total",
            "counter",
            "Connection and write failures of a SIEM stream.",
            |m| &m.errors,
        ),
        (
            "logvault_siem_cursor",
            "gauge",
            "The last seq a SIEM stream delivered.",
            |m| &m.cursor,
        ),
        (
            "logvault_siem_lag",
            "gauge",
            "Log positions a SIEM stream has not reached yet.",
            |m| &m.lag,
        ),
        (
            "logvault_siem_connected",
            "gauge",
            "1 while a SIEM stream is connected to its collector.",
            |m| &m.connected,
        ),
    ];
    for (name, kind, help, value) in families {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (stream, stream_metrics) in metrics {
            let _ = writeln!(
                out,
                "{name}{{stream=\"{stream}\"}} {}",
                value(stream_metrics).load(Ordering::Relaxed)
            );
        }
    }
}

/// This machine's name, for the syslog header.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|name| name.trim().to_string())
        .ok()
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "-".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_or_say_why_not() {
        let ok = parse_spec("name=soc, format=cef, address=127.0.0.1:6514, account=par_1");
        assert_eq!(
            ok.map(|spec| (spec.format, spec.account)),
            Ok((StreamFormat::Cef, Some("par_1".into())))
        );
        let cases = [
            ("format=syslog,address=h:1", "name="),
            ("name=a,address=h:1", "format="),
            ("name=a,format=xml,address=h:1", "xml"),
            ("name=a,format=syslog,address=h", "host:port"),
            ("name=a,format=syslog,address=h:1,tls=true", "tls_ca"),
            ("name=a b,format=syslog,address=h:1", "name="),
            (
                "name=a,format=syslog,address=h:1,port=2",
                "no stream setting",
            ),
        ];
        for (text, problem) in cases {
            let error = parse_spec(text).err().unwrap_or_default();
            assert!(error.contains(problem), "{text}: {error}");
        }
    }
}
