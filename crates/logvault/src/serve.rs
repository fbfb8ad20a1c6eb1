//! `logvault serve`: open the store, make sure an admin can get in, optionally seed demo
//! data, and serve HTTP until SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::Args;
use logvault_core::scrub::{ScrubConfig, Scrubber};
use logvault_core::{Permissions, Role};
use logvault_server::{
    AppState, FrameAncestors, ListenerConfig, RateLimit, ServerConfig, SessionLifetimes,
    tls_acceptor,
};
use logvault_store::Store;
use tokio::net::TcpListener;

use crate::signing::SigningArgs;
use crate::{LogFormat, StorageArgs, admin, checkpointer, demo, init_logging};

/// A duration given as `500ms`, `5s`, `30m`, `12h` or a plain number of seconds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Seconds(std::time::Duration);

impl From<Seconds> for std::time::Duration {
    fn from(seconds: Seconds) -> Self {
        seconds.0
    }
}

fn parse_seconds(text: &str) -> Result<Seconds, String> {
    let units = [("ms", 1e-3), ("s", 1.0), ("m", 60.0), ("h", 3600.0)];
    let (number, scale) = units
        .iter()
        .find_map(|(suffix, scale)| Some((text.strip_suffix(suffix)?, *scale)))
        .unwrap_or((text, 1.0));
    number
        .parse::<f64>()
        .ok()
        .filter(|n| n.is_finite() && *n > 0.0)
        .map(|n| Seconds(std::time::Duration::from_secs_f64(n * scale)))
        .ok_or_else(|| format!("{text:?} is not a duration like 500ms, 5s, 30m or 12h"))
}

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    #[command(flatten)]
    storage: StorageArgs,
    /// Address to listen on (`127.0.0.1:0` picks a free port).
    #[arg(long, env = "LOGVAULT_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Seed demo accounts, keys and about 50,000 events on first run.
    #[arg(long)]
    demo: bool,
    /// JSON file with extra scrubbing rules: `{"extra_sensitive_keys": [...], "extra_rules":
    /// [{"name": "...", "regex": "..."}], "allowed_keys": [...], "pseudonym_key_file": "..."}`.
    #[arg(long, env = "LOGVAULT_SCRUB_CONFIG")]
    scrub_config: Option<std::path::PathBuf>,
    /// Requests per second each API key may make (bursts up to twice that); 0 turns the
    /// limit off.
    #[arg(long, env = "LOGVAULT_RATE_LIMIT", default_value_t = 10_000)]
    rate_limit: u32,
    /// Seconds between checkpoint signatures while events arrive.
    #[arg(long, env = "LOGVAULT_CHECKPOINT_INTERVAL", default_value = "5s", value_parser = parse_seconds)]
    checkpoint_interval: Seconds,
    #[command(flatten)]
    signing: SigningArgs,
    #[command(flatten)]
    retention: Box<crate::retention::RetentionArgs>,
    /// Time between purges of what the retention policies let go.
    #[arg(long, env = "LOGVAULT_PURGE_INTERVAL", default_value = "3600s", value_parser = parse_seconds)]
    purge_interval: Seconds,
    #[command(flatten)]
    listener: ListenerArgs,
    #[command(flatten)]
    page: PageArgs,
    #[command(flatten)]
    siem: crate::siem::SiemArgs,
    /// Log format on stderr.
    #[arg(long, env = "LOGVAULT_LOG_FORMAT", value_enum, default_value = "text")]
    log_format: LogFormat,
}

/// The listener's TLS, timeouts and connection cap.
#[derive(Debug, Args)]
struct ListenerArgs {
    /// Serve HTTPS with this PEM certificate chain (needs --tls-key).
    #[arg(long, env = "LOGVAULT_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, env = "LOGVAULT_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Time a client has to send a request's head (and finish the TLS handshake).
    #[arg(long, env = "LOGVAULT_HEADER_TIMEOUT", default_value = "10s", value_parser = parse_seconds)]
    header_timeout: Seconds,
    /// Time a client has to send a request's whole body; a late body is answered 408.
    #[arg(long, env = "LOGVAULT_BODY_TIMEOUT", default_value = "30s", value_parser = parse_seconds)]
    body_timeout: Seconds,
    /// Connections served at once; more are answered 503.
    #[arg(long, env = "LOGVAULT_MAX_CONNECTIONS", default_value_t = 1024,
          value_parser = clap::value_parser!(u32).range(1..))]
    max_connections: u32,
}

impl ListenerArgs {
    fn config(&self) -> anyhow::Result<ListenerConfig> {
        let tls = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Some(tls_acceptor(cert, key)?),
            _ => None,
        };
        Ok(ListenerConfig {
            header_timeout: self.header_timeout.into(),
            body_timeout: self.body_timeout.into(),
            max_connections: self.max_connections as usize,
            tls,
        })
    }
}

/// The Logs page's sessions, framing and live tails.
#[derive(Debug, Args)]
struct PageArgs {
    /// Sites that may show the Logs page in a frame: CSP frame-ancestors sources such as
    /// `'self' https://portal.example.com`; `'none'` forbids framing.
    #[arg(long, env = "LOGVAULT_FRAME_ANCESTORS", default_value = "'none'")]
    frame_ancestors: FrameAncestors,
    /// A session with no page request for this long ends.
    #[arg(long, env = "LOGVAULT_SESSION_IDLE", default_value = "30m", value_parser = parse_seconds)]
    session_idle: Seconds,
    /// A session ends this long after sign-in, however active.
    #[arg(long, env = "LOGVAULT_SESSION_LIFETIME", default_value = "12h", value_parser = parse_seconds)]
    session_lifetime: Seconds,
    /// Live tails one person may have open at once; more are answered 429.
    #[arg(long, env = "LOGVAULT_MAX_TAILS", default_value_t = 8,
          value_parser = clap::value_parser!(u32).range(1..))]
    max_tails: u32,
}

/// File holding the first admin key, written once on an empty data directory.
const INITIAL_ADMIN_KEY_FILE: &str = "initial-admin-key";

pub(crate) async fn run(args: ServeArgs) -> anyhow::Result<()> {
    init_logging(args.log_format);
    let data_dir = args.storage.dir();
    // Key files live here whatever the store; SQLite would create it, PostgreSQL does not.
    std::fs::create_dir_all(&data_dir)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", data_dir.display()))?;
    let store = args.storage.open().await?;
    let first_start = store.list_keys().await?.is_empty();
    // Demo events are back-dated, so they must be the first events of the log.
    if args.demo {
        demo::seed_if_empty(store.as_ref(), &data_dir).await?;
    }
    if first_start {
        create_initial_admin_key(store.as_ref(), &data_dir).await?;
    }
    // Certificate problems stop the start before anything listens.
    let listener_config = args.listener.config()?;
    let scheme = if listener_config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let listener = TcpListener::bind(args.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", args.listen))?;
    let address = listener.local_addr()?;
    println!("logvault listening on {scheme}://{address}");
    tracing::info!(%address, data_dir = %data_dir.display(), "serving");
    let signer = std::sync::Arc::new(args.signing.load_or_create(&data_dir)?);
    let (stop_checkpoints, stopped) = tokio::sync::watch::channel(false);
    let checkpoints = checkpointer::spawn(
        store.clone(),
        signer,
        args.checkpoint_interval.into(),
        stopped,
    );
    let purging = args
        .retention
        .spawn(store.clone(), &args.storage, args.purge_interval.into());
    let scrubber = load_scrubber(args.scrub_config.as_deref())?;
    let mut config = ServerConfig::new(scrubber);
    config.rate_limit = (args.rate_limit > 0).then(|| RateLimit {
        per_second: f64::from(args.rate_limit),
        burst: 2.0 * f64::from(args.rate_limit),
    });
    config.listener = listener_config;
    config.frame_ancestors = args.page.frame_ancestors.clone();
    config.sessions = SessionLifetimes {
        idle: args.page.session_idle.into(),
        absolute: args.page.session_lifetime.into(),
    };
    config.max_tails_per_person = args.page.max_tails as usize;
    config.retention = args.retention.defaults();
    let streams = crate::siem::Streams::start(store.clone(), &args.siem.streams).await?;
    config.metrics_sources.push(streams.metrics_source());
    let state = AppState::new(store, config);
    logvault_server::serve(listener, state, shutdown_signal()).await?;
    streams.stop().await;
    purging.abort();
    let _ = stop_checkpoints.send(true);
    checkpoints.await?;
    tracing::info!("stopped; every acknowledged event is committed");
    Ok(())
}

/// The scrubber: built-in rules plus the optional configuration file. Invalid
/// configuration stops the start with a message naming the problem.
fn load_scrubber(path: Option<&Path>) -> anyhow::Result<Scrubber> {
    let mut config = ScrubConfig::default();
    if let Some(path) = path {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read the scrub config {}: {e}", path.display()))?;
        let json: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| anyhow::anyhow!("{} is not valid JSON: {e}", path.display()))?;
        let bad = |what: &str| anyhow::anyhow!("{}: {what}", path.display());
        let object = json
            .as_object()
            .ok_or_else(|| bad("must be a JSON object"))?;
        let strings = |name: &str| -> anyhow::Result<Vec<String>> {
            match object.get(name) {
                None => Ok(Vec::new()),
                Some(value) => serde_json::from_value(value.clone())
                    .map_err(|_| bad(&format!("{name} must be a list of strings"))),
            }
        };
        for key in object.keys() {
            let known = [
                "extra_sensitive_keys",
                "extra_rules",
                "allowed_keys",
                "pseudonym_key_file",
            ];
            if !known.contains(&key.as_str()) {
                return Err(bad(&format!(
                    "unknown setting {key:?} (known: {})",
                    known.join(", ")
                )));
            }
        }
        config.extra_sensitive_keys = strings("extra_sensitive_keys")?;
        config.allowed_keys = strings("allowed_keys")?;
        if let Some(rules) = object.get("extra_rules") {
            let rules: Vec<std::collections::BTreeMap<String, String>> =
                serde_json::from_value(rules.clone()).map_err(|_| {
                    bad("extra_rules must be a list of {\"name\", \"regex\"} objects")
                })?;
            for rule in rules {
                match (rule.get("name"), rule.get("regex")) {
                    (Some(name), Some(regex)) if rule.len() == 2 => {
                        config.extra_rules.push((name.clone(), regex.clone()));
                    }
                    _ => return Err(bad("each extra rule needs exactly \"name\" and \"regex\"")),
                }
            }
        }
        if let Some(key_file) = object.get("pseudonym_key_file") {
            let key_path = key_file
                .as_str()
                .ok_or_else(|| bad("pseudonym_key_file must be a path"))?;
            let key = std::fs::read(key_path)
                .map_err(|e| bad(&format!("cannot read pseudonym key {key_path}: {e}")))?;
            config.pseudonym_key = Some(key);
        }
    }
    Scrubber::new(&config).map_err(|e| anyhow::anyhow!("invalid scrub configuration: {e}"))
}

/// On first start, creates an admin key, prints it once and saves it (mode 0600) so the
/// operator can get in.
async fn create_initial_admin_key(store: &dyn Store, data_dir: &Path) -> anyhow::Result<()> {
    let permissions = Permissions::parse("ingest,read,admin").map_err(anyhow::Error::msg)?;
    let (record, token) =
        admin::new_key(Role::Admin, None, permissions, Some("initial admin".into()))?;
    // The file first: if the process dies before the key is stored, the next start finds no
    // keys and writes a new file, instead of leaving a stored key nobody holds.
    let path = data_dir.join(INITIAL_ADMIN_KEY_FILE);
    write_secret_file(&path, &format!("{token}\n"))?;
    admin::store_key(store, &record).await?;
    println!(
        "initial admin key (shown once, also saved to {}): {token}",
        path.display()
    );
    Ok(())
}

/// Writes `contents` to `path` readable only by its owner: a new file is created with mode
/// 0600 and renamed over `path`, so an existing file's looser mode is never reused.
pub(crate) fn write_secret_file(path: &Path, contents: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let temporary = path.with_extension("tmp");
    let _ = std::fs::remove_file(&temporary);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temporary)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", temporary.display()))?;
    file.write_all(contents.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&temporary, path)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    let mut terminate =
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM; only Ctrl-C stops the server");
                let _ = interrupt.await;
                return;
            }
        };
    tokio::select! {
        _ = interrupt => {}
        _ = terminate.recv() => {}
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
