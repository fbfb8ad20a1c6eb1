//! `logvault retention …`, and the purge task `serve` runs.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};
use logvault_core::{EventKind, Micros, Scope};
use logvault_store::Store;
use logvault_store::retention::{
    PurgeRun, RetentionChange, RetentionDefaults, apply_change, overview, purge_expired,
};
use serde_json::Value;

use crate::StorageArgs;
use crate::archive::ArchiveDir;

/// Events per purge batch by default: small enough that the rows a commit purges beside
/// ingest cost it little (about 75 µs a row on SQLite), large enough to purge thousands a
/// second.
pub(crate) const DEFAULT_PURGE_BATCH: usize = 250;

/// The deployment's retention defaults and where archives go: flags of `serve` and of
/// `retention`, so both apply the same rules.
#[derive(Debug, Clone, Args)]
pub(crate) struct RetentionArgs {
    /// Days audit events are kept where no policy is set (PCI DSS 10.5.1 asks for a year).
    #[arg(long, env = "LOGVAULT_RETENTION_AUDIT_DAYS", default_value_t = 400)]
    retention_audit_days: u32,
    /// Days threat events are kept where no policy is set.
    #[arg(long, env = "LOGVAULT_RETENTION_THREAT_DAYS", default_value_t = 90)]
    retention_threat_days: u32,
    /// No policy may keep events for fewer days than this.
    #[arg(long, env = "LOGVAULT_RETENTION_FLOOR_DAYS", default_value_t = 30)]
    retention_floor_days: u32,
    /// Archive purged events where no policy says otherwise.
    #[arg(long, env = "LOGVAULT_RETENTION_ARCHIVE")]
    retention_archive: bool,
    /// Directory of the archives of purged events (default: DATA_DIR/archive).
    #[arg(long, env = "LOGVAULT_ARCHIVE_DIR")]
    archive_dir: Option<PathBuf>,
    /// Events purged per batch; each batch is one short write beside ingest.
    #[arg(long, env = "LOGVAULT_PURGE_BATCH", default_value_t = DEFAULT_PURGE_BATCH)]
    purge_batch: usize,
}

impl RetentionArgs {
    pub(crate) fn defaults(&self) -> RetentionDefaults {
        RetentionDefaults {
            audit_days: self.retention_audit_days,
            threat_days: self.retention_threat_days,
            floor_days: self.retention_floor_days,
            archive: self.retention_archive,
        }
    }

    fn archive(&self, storage: &StorageArgs) -> ArchiveDir {
        ArchiveDir::new(
            self.archive_dir
                .clone()
                .unwrap_or_else(|| storage.dir().join("archive")),
        )
    }

    /// One purge run at `now`.
    async fn purge(
        &self,
        store: &dyn Store,
        storage: &StorageArgs,
        now: Micros,
    ) -> anyhow::Result<PurgeRun> {
        let archive = self.archive(storage);
        Ok(purge_expired(
            store,
            &self.defaults(),
            now,
            self.purge_batch,
            Some(&archive),
        )
        .await?)
    }

    /// Purges every `interval` while the server runs; the first run a minute after start.
    pub(crate) fn spawn(
        &self,
        store: Arc<dyn Store>,
        storage: &StorageArgs,
        interval: Duration,
    ) -> tokio::task::JoinHandle<()> {
        let (args, storage) = (self.clone(), storage.clone());
        tokio::spawn(async move {
            let mut next = tokio::time::Instant::now() + interval.min(Duration::from_secs(60));
            loop {
                tokio::time::sleep_until(next).await;
                next += interval;
                match args.purge(store.as_ref(), &storage, Micros::now()).await {
                    Ok(run) => log_run(&run),
                    Err(error) => tracing::error!(%error, "retention purge failed"),
                }
            }
        })
    }
}

fn log_run(run: &PurgeRun) {
    if !run.purges.is_empty() {
        tracing::info!(
            events = run.events(),
            batches = run.purges.len(),
            "purged expired events"
        );
    }
    for refused in &run.refused {
        tracing::warn!(%refused, "a purge batch was refused");
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum KindArg {
    Audit,
    Threat,
}

impl From<KindArg> for EventKind {
    fn from(kind: KindArg) -> Self {
        match kind {
            KindArg::Audit => EventKind::Audit,
            KindArg::Threat => EventKind::Threat,
        }
    }
}

#[derive(Debug, Args)]
pub(crate) struct Common {
    #[command(flatten)]
    storage: StorageArgs,
    #[command(flatten)]
    retention: RetentionArgs,
}

#[derive(Debug, Subcommand)]
pub(crate) enum RetentionCommand {
    /// Each account's policies, hold and purged events.
    Show {
        /// Only this account.
        #[arg(long)]
        account: Option<String>,
        #[command(flatten)]
        common: Common,
    },
    /// Keep an account's events of one kind for DAYS days (its merchants inherit it).
    Set {
        /// The account.
        account: String,
        /// Which events.
        #[arg(long, value_enum)]
        kind: KindArg,
        /// Days to keep them.
        #[arg(long)]
        days: u32,
        /// Archive events before purging them.
        #[arg(long)]
        archive: bool,
        #[command(flatten)]
        common: Common,
    },
    /// Drop an account's own policy for a kind: it inherits again.
    Inherit {
        /// The account.
        account: String,
        /// Which events.
        #[arg(long, value_enum)]
        kind: KindArg,
        #[command(flatten)]
        common: Common,
    },
    /// Place a legal hold: nothing of the account (or partner and its merchants) is purged.
    Hold {
        /// The account.
        account: String,
        /// Why, e.g. a case number.
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        common: Common,
    },
    /// Lift a legal hold.
    Release {
        /// The account.
        account: String,
        #[command(flatten)]
        common: Common,
    },
    /// Purge what the policies let go now (the server also does this every hour).
    Purge {
        /// Purge as of this instant (RFC 3339) instead of now; never later than now.
        #[arg(long)]
        now: Option<String>,
        #[command(flatten)]
        common: Common,
    },
}

fn print(value: &Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_default()
    );
}

fn operator() -> String {
    format!(
        "cli:{}",
        std::env::var("USER").unwrap_or_else(|_| "unknown".into())
    )
}

async fn change(common: &Common, change: RetentionChange) -> anyhow::Result<()> {
    let store = common.storage.open().await?;
    let account = change.account_id().to_string();
    let defaults = common.retention.defaults();
    apply_change(store.as_ref(), &defaults, change, &operator(), "system").await?;
    let scope = Scope::Account(account);
    print(&Value::Array(
        overview(store.as_ref(), &scope, &defaults).await?,
    ));
    Ok(())
}

pub(crate) async fn retention(command: RetentionCommand) -> anyhow::Result<()> {
    match command {
        RetentionCommand::Show { account, common } => {
            let store = common.storage.open().await?;
            let scope = account.map_or(Scope::All, Scope::Account);
            let shown = overview(store.as_ref(), &scope, &common.retention.defaults()).await?;
            print(&Value::Array(shown));
        }
        RetentionCommand::Set {
            account,
            kind,
            days,
            archive,
            common,
        } => {
            let policy = Some((days, archive));
            let kind = kind.into();
            let set = RetentionChange::SetPolicy {
                account_id: account,
                kind,
                policy,
            };
            change(&common, set).await?;
        }
        RetentionCommand::Inherit {
            account,
            kind,
            common,
        } => {
            let kind = kind.into();
            let clear = RetentionChange::SetPolicy {
                account_id: account,
                kind,
                policy: None,
            };
            change(&common, clear).await?;
        }
        RetentionCommand::Hold {
            account,
            reason,
            common,
        } => {
            let hold = RetentionChange::PlaceHold {
                account_id: account,
                reason,
            };
            change(&common, hold).await?;
        }
        RetentionCommand::Release { account, common } => {
            let lift = RetentionChange::LiftHold {
                account_id: account,
            };
            change(&common, lift).await?;
        }
        RetentionCommand::Purge { now, common } => {
            let now = match now {
                Some(text) => Micros::parse_rfc3339(&text)
                    .ok_or_else(|| anyhow::anyhow!("--now must be an RFC 3339 time"))?,
                None => Micros::now(),
            };
            anyhow::ensure!(
                now <= Micros::now(),
                "--now may not be in the future: that would purge what no policy allows yet"
            );
            let store = common.storage.open().await?;
            let run = common
                .retention
                .purge(store.as_ref(), &common.storage, now)
                .await?;
            for refused in &run.refused {
                eprintln!("refused: {refused}");
            }
            for (account, kind, held_by) in &run.held {
                eprintln!("held: {account} {} (hold on {held_by})", kind.as_str());
            }
            println!(
                "purged {} events in {} batches",
                run.events(),
                run.purges.len()
            );
        }
    }
    Ok(())
}
