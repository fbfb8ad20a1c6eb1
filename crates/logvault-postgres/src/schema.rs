//! Connections with the durability logvault requires, migrations, and the grants of the
//! application role.

use logvault_store::{StoreError, StoreResult};
use tokio_postgres::{Client, NoTls};

use crate::backend;

/// Migrations in order: `(version, sql)`. `logvault_migrations` records which were applied.
pub const MIGRATIONS: &[(i32, &str)] = &[
    (1, include_str!("../migrations/0001_init.sql")),
    (2, include_str!("../migrations/0002_event_trends.sql")),
    (3, include_str!("../migrations/0003_search_pending.sql")),
    (4, include_str!("../migrations/0004_retention.sql")),
    (5, include_str!("../migrations/0005_time_window.sql")),
    (6, include_str!("../migrations/0006_stream_cursors.sql")),
    (
        THREAT_GROUPS,
        include_str!("../migrations/0008_threat_groups.sql"),
    ),
    (9, include_str!("../migrations/0009_viewer_tokens.sql")),
];

/// The migration that creates the threat group tables: the events stored before it are
/// counted into them ([`crate::groups::backfill`]) when it is applied.
const THREAT_GROUPS: i32 = 8;

/// Key of the advisory lock that serializes migrations across nodes starting together.
const MIGRATION_LOCK: i64 = 0x006c_6f67_766d_6967; // "logvmig"

/// Parses a `postgres://` URL (or key=value connection string).
pub(crate) fn parse_url(url: &str) -> StoreResult<tokio_postgres::Config> {
    url.parse()
        .map_err(|e| StoreError::Invalid(format!("bad PostgreSQL URL: {e}")))
}

/// Opens one connection and drives it on the current runtime.
pub(crate) async fn connect(config: &tokio_postgres::Config) -> StoreResult<Client> {
    let (client, connection) = config
        .connect(NoTls)
        .await
        .map_err(|e| StoreError::Unavailable(format!("cannot connect to PostgreSQL: {e}")))?;
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::warn!(%error, "PostgreSQL connection closed");
        }
    });
    Ok(client)
}

/// Refuses a connection on which a commit could return before it is durable.
///
/// `synchronous_commit` must be `on` or `remote_apply`: `off` acknowledges before the WAL is
/// flushed, and `local` / `remote_write` would let a failover to a synchronous standby lose
/// acknowledged events. `fsync` must be on, or nothing is durable at all.
pub(crate) async fn check_durability(client: &Client) -> StoreResult<()> {
    let show = |name: &'static str| async move {
        let row = client
            .query_one(&format!("SHOW {name}"), &[])
            .await
            .map_err(backend)?;
        row.try_get::<_, String>(0)
            .map_err(|e| StoreError::Backend(e.to_string()))
    };
    let synchronous_commit = show("synchronous_commit").await?;
    let fsync = show("fsync").await?;
    if !matches!(synchronous_commit.as_str(), "on" | "remote_apply") || fsync != "on" {
        return Err(StoreError::Unavailable(format!(
            "PostgreSQL runs with synchronous_commit={synchronous_commit} fsync={fsync}; \
             logvault requires synchronous_commit=on (or remote_apply) and fsync=on, \
             because an acknowledged event must never be lost; refusing to start"
        )));
    }
    Ok(())
}

/// Applies pending migrations through `client`; with `grant_to`, then gives that role the
/// application's privileges. A no-op when the schema is current, so the application role
/// (which may not create anything) can call it too.
pub(crate) async fn migrate_client(client: &mut Client, grant_to: Option<&str>) -> StoreResult<()> {
    let newest = MIGRATIONS.last().map_or(0, |(version, _)| *version);
    if grant_to.is_none() && applied_version(client).await? == Some(newest) {
        return Ok(());
    }
    let transaction = client.transaction().await.map_err(backend)?;
    transaction
        .execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(backend)?;
    transaction
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS logvault_migrations (\
                 version INTEGER PRIMARY KEY, \
                 applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
        )
        .await
        .map_err(|e| owner_needed(e, "create logvault_migrations"))?;
    let applied: i32 = transaction
        .query_one(
            "SELECT coalesce(max(version), 0) FROM logvault_migrations",
            &[],
        )
        .await
        .map_err(backend)?
        .try_get(0)
        .map_err(|e| StoreError::Backend(e.to_string()))?;
    if applied > newest {
        return Err(StoreError::Unavailable(format!(
            "the database has schema version {applied}, newer than this logvault knows \
             ({newest}); upgrade logvault"
        )));
    }
    for (version, sql) in MIGRATIONS.iter().filter(|(version, _)| *version > applied) {
        transaction
            .batch_execute(sql)
            .await
            .map_err(|e| owner_needed(e, &format!("apply migration {version}")))?;
        if *version == THREAT_GROUPS {
            crate::groups::backfill(&transaction).await?;
        }
        transaction
            .execute(
                "INSERT INTO logvault_migrations (version) VALUES ($1)",
                &[version],
            )
            .await
            .map_err(backend)?;
        tracing::info!(version, "applied PostgreSQL migration");
    }
    if let Some(role) = grant_to {
        transaction
            .execute("SELECT logvault_grant_app($1::text::name)", &[&role])
            .await
            .map_err(|e| owner_needed(e, &format!("grant privileges to {role}")))?;
    }
    transaction.commit().await.map_err(backend)
}

/// The highest applied migration, or `None` before the first.
async fn applied_version(client: &Client) -> StoreResult<Option<i32>> {
    let exists: bool = client
        .query_one("SELECT to_regclass('logvault_migrations') IS NOT NULL", &[])
        .await
        .map_err(backend)?
        .try_get(0)
        .map_err(|e| StoreError::Backend(e.to_string()))?;
    if !exists {
        return Ok(None);
    }
    client
        .query_one("SELECT max(version) FROM logvault_migrations", &[])
        .await
        .map_err(backend)?
        .try_get(0)
        .map_err(|e| StoreError::Backend(e.to_string()))
}

fn owner_needed(error: tokio_postgres::Error, what: &str) -> StoreError {
    let message = match error.as_db_error() {
        Some(db) => db.message().to_string(),
        None => error.to_string(),
    };
    StoreError::Unavailable(format!(
        "cannot {what}: {message}; the schema is older than this logvault: run \
         `logvault migrate` with the database owner role"
    ))
}

/// Whether `events.search_text` has the pg_trgm index (else `q=` scans sequentially).
pub(crate) async fn has_trigram_index(client: &Client) -> StoreResult<bool> {
    client
        .query_one("SELECT to_regclass('events_search_trgm') IS NOT NULL", &[])
        .await
        .map_err(backend)?
        .try_get(0)
        .map_err(|e| StoreError::Backend(e.to_string()))
}

/// Connects to `url` as the schema's owner, applies every pending migration, and when
/// `grant_to` names the application role, grants it exactly what the service needs: SELECT
/// and INSERT on the log tables, UPDATE on a few columns of the mutable ones, and the right
/// to create monthly partitions through `logvault_ensure_partitions`. Safe to run again.
pub async fn migrate(url: &str, grant_to: Option<&str>) -> StoreResult<()> {
    let mut client = connect(&parse_url(url)?).await?;
    migrate_client(&mut client, grant_to).await
}
