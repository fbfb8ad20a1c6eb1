//! The `logvault` binary: the command line, configuration, and the one place that picks a
//! storage backend.

mod admin;
mod api_client;
mod archive;
mod bench;
mod checkpointer;
mod config;
mod demo;
mod malloc;
mod remote;
mod retention;
mod rng;
mod serve;
mod siem;
mod signing;
mod verify;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};
use logvault_postgres::{PgConfig, PgStore};
use logvault_sqlite::{SqliteConfig, SqliteStore};
use logvault_store::Store;

/// A self-hosted, multi-tenant audit and threat log service.
#[derive(Debug, Parser)]
#[command(name = "logvault", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    config: config::ConfigArg,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP service.
    Serve(serve::ServeArgs),
    /// Create and list partner and merchant accounts.
    #[command(subcommand)]
    Accounts(admin::AccountsCommand),
    /// Create, list and revoke API keys.
    #[command(subcommand)]
    Keys(admin::KeysCommand),
    /// Apply database migrations (on PostgreSQL, as the owner role).
    Migrate(MigrateArgs),
    /// Recompute every hash, the Merkle tree and every checkpoint from storage.
    Verify(verify::VerifyArgs),
    /// Check one event against a signed checkpoint offline, without a database.
    VerifyProof(verify::VerifyProofArgs),
    /// Create and list people who sign in to the Logs page.
    #[command(subcommand)]
    Users(admin::UsersCommand),
    /// Measure ingest throughput, query latency, memory and storage on this machine.
    Bench(bench::BenchArgs),
    /// Retention policies, legal holds and purges.
    #[command(subcommand)]
    Retention(retention::RetentionCommand),
    /// Check and read archives of purged events.
    #[command(subcommand)]
    Archive(archive::ArchiveCommand),
    /// Follow a running service's audit or threat log in the terminal, with the API's filters.
    Tail(remote::TailArgs),
    /// Download a running service's audit or threat log (CSV, NDJSON or OCSF).
    Export(remote::ExportArgs),
}

/// Where the data lives; shared by every command that opens the store.
#[derive(Debug, Clone, Args)]
struct StorageArgs {
    /// Directory of the embedded SQLite store.
    #[arg(
        long,
        env = "LOGVAULT_DATA_DIR",
        default_value = "./logvault-data",
        global = true
    )]
    data_dir: PathBuf,
    /// Database URL instead of --data-dir: `sqlite:///path/to/dir` or
    /// `postgres://user:password@host:port/database` (key files stay in --data-dir).
    #[arg(long, env = "LOGVAULT_DB", global = true)]
    db: Option<String>,
}

impl StorageArgs {
    /// The embedded store in `dir`.
    fn sqlite(dir: PathBuf) -> Self {
        StorageArgs {
            data_dir: dir,
            db: None,
        }
    }

    /// The PostgreSQL URL, if the store is PostgreSQL.
    fn postgres_url(&self) -> Option<&str> {
        self.db.as_deref().filter(|url| is_postgres(url))
    }

    /// Opens the configured store: PostgreSQL for `postgres://` URLs, SQLite otherwise.
    async fn open(&self) -> anyhow::Result<Arc<dyn Store>> {
        if let Some(url) = self.postgres_url() {
            return Ok(Arc::new(PgStore::connect(url, PgConfig::default()).await?));
        }
        match self.db.as_deref() {
            Some(url) if !url.starts_with("sqlite://") || url == "sqlite://" => {
                anyhow::bail!(
                    "--db must look like sqlite:///path/to/dir or postgres://user@host/db"
                )
            }
            _ => Ok(Arc::new(SqliteStore::open(
                &self.dir(),
                SqliteConfig::default(),
            )?)),
        }
    }

    /// The data directory: the SQLite store, and the files kept beside any store (the
    /// checkpoint signing key, the initial admin key).
    fn dir(&self) -> PathBuf {
        self.db
            .as_deref()
            .and_then(|url| url.strip_prefix("sqlite://"))
            .filter(|path| !path.is_empty())
            .map_or_else(|| self.data_dir.clone(), PathBuf::from)
    }
}

fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

#[derive(Debug, Args)]
struct MigrateArgs {
    #[command(flatten)]
    storage: StorageArgs,
    /// PostgreSQL: the role the service connects as, granted exactly what it needs
    /// (INSERT and SELECT on the log, nothing that changes or removes events).
    #[arg(long)]
    grant_to: Option<String>,
}

/// Applies pending migrations (run as the owner role on PostgreSQL).
async fn migrate(args: MigrateArgs) -> anyhow::Result<()> {
    match args.storage.postgres_url() {
        Some(url) => logvault_postgres::migrate(url, args.grant_to.as_deref()).await?,
        None => drop(args.storage.open().await?),
    }
    println!("migrations applied");
    Ok(())
}

/// Log output format.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

fn init_logging(format: LogFormat) {
    let filter: tracing_subscriber::filter::Targets = std::env::var("LOGVAULT_LOG")
        .ok()
        .and_then(|spec| spec.parse().ok())
        .unwrap_or_else(|| "info".parse().unwrap_or_default());
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let registry = tracing_subscriber::registry().with(filter);
    let _ = match format {
        LogFormat::Text => registry
            .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
            .try_init(),
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_writer(std::io::stderr),
            )
            .try_init(),
    };
}

/// Turns a check's verdict into the command's result (the details are already printed).
fn succeeded(ok: bool) -> anyhow::Result<()> {
    if ok {
        Ok(())
    } else {
        Err(anyhow::anyhow!("verification failed"))
    }
}

fn main() -> ExitCode {
    // Before any thread exists: it may start the binary again.
    malloc::limit_arenas();
    let mut command = Cli::command();
    command.build();
    let cli = match config::apply(&command, std::env::args_os().collect()) {
        Ok(args) => Cli::parse_from(args),
        Err(error) => {
            eprintln!("error: {error:#}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => serve::run(args).await,
            Command::Accounts(command) => admin::accounts(command).await,
            Command::Keys(command) => admin::keys(command).await,
            Command::Bench(args) => bench::run(args).await,
            Command::Users(command) => admin::users(command).await,
            Command::Migrate(args) => migrate(args).await,
            Command::Verify(args) => verify::verify(args).await.and_then(succeeded),
            Command::VerifyProof(args) => verify::verify_proof(args).and_then(succeeded),
            Command::Retention(command) => retention::retention(command).await,
            Command::Archive(command) => archive::archive(command).await.and_then(succeeded),
            Command::Tail(args) => remote::tail(args).await,
            Command::Export(args) => remote::export(args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
