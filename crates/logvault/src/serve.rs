//! `logvault serve`: open the store, make sure an admin can get in, optionally seed demo
//! data, and serve HTTP until SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::path::Path;

use clap::Args;
use logvault_core::scrub::{ScrubConfig, Scrubber};
use logvault_core::{Permissions, Role};
use logvault_server::{AppState, RateLimit, ServerConfig};
use logvault_store::Store;
use tokio::net::TcpListener;

use crate::signing::SigningArgs;
use crate::{LogFormat, StorageArgs, admin, checkpointer, demo, init_logging};

/// A duration given as `5s`, `500ms` or a plain number of seconds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Seconds(std::time::Duration);

impl From<Seconds> for std::time::Duration {
    fn from(seconds: Seconds) -> Self {
        seconds.0
    }
}

fn parse_seconds(text: &str) -> Result<Seconds, String> {
    let (number, scale) = match text.strip_suffix("ms") {
        Some(millis) => (millis, 1e-3),
        None => (text.strip_suffix('s').unwrap_or(text), 1.0),
    };
    number
        .parse::<f64>()
        .ok()
        .filter(|n| n.is_finite() && *n > 0.0)
        .map(|n| Seconds(std::time::Duration::from_secs_f64(n * scale)))
        .ok_or_else(|| format!("{text:?} is not a duration like 5s or 500ms"))
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
    /// Log format on stderr.
    #[arg(long, env = "LOGVAULT_LOG_FORMAT", value_enum, default_value = "text")]
    log_format: LogFormat,
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
    let listener = TcpListener::bind(args.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", args.listen))?;
    let address = listener.local_addr()?;
    println!("logvault listening on http://{address}");
    tracing::info!(%address, data_dir = %data_dir.display(), "serving");
    let signer = std::sync::Arc::new(args.signing.load_or_create(&data_dir)?);
    let (stop_checkpoints, stopped) = tokio::sync::watch::channel(false);
    let checkpoints = checkpointer::spawn(
        store.clone(),
        signer,
        args.checkpoint_interval.into(),
        stopped,
    );
    let scrubber = load_scrubber(args.scrub_config.as_deref())?;
    let mut config = ServerConfig::new(scrubber);
    config.rate_limit = (args.rate_limit > 0).then(|| RateLimit {
        per_second: f64::from(args.rate_limit),
        burst: 2.0 * f64::from(args.rate_limit),
    });
    let state = AppState::new(store, config);
    logvault_server::serve(listener, state, shutdown_signal()).await?;
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
