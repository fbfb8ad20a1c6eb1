//! Opening connections with the durability settings logvault requires, and migrations.

use std::path::Path;
use std::time::Duration;

use logvault_store::{StoreError, StoreResult};
use rusqlite::{Connection, OpenFlags};

use crate::backend;

/// Migrations in order; `PRAGMA user_version` records how many have been applied.
const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/0001_init.sql"),
    include_str!("../migrations/0002_sign_in_trends.sql"),
    include_str!("../migrations/0003_lean_events.sql"),
    include_str!("../migrations/0004_retention.sql"),
    include_str!("../migrations/0005_stream_cursors.sql"),
    THREAT_GROUPS,
    include_str!("../migrations/0008_viewer_tokens.sql"),
];

/// The migration that creates the threat group tables: the events stored before it are
/// counted into them ([`crate::groups::backfill`]) when it is applied.
const THREAT_GROUPS: &str = include_str!("../migrations/0007_threat_groups.sql");

/// A read-write connection in WAL mode with `synchronous=FULL`, or an error saying why not.
pub(crate) fn open_writable(path: &Path) -> StoreResult<Connection> {
    let connection = Connection::open(path)
        .map_err(|e| StoreError::Unavailable(format!("cannot open {}: {e}", path.display())))?;
    connection
        .busy_timeout(Duration::from_secs(10))
        .map_err(backend)?;
    let journal_mode: String = connection
        .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
        .map_err(backend)?;
    connection
        .execute_batch(
            "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; \
             PRAGMA cache_size = -65536; PRAGMA temp_store = MEMORY;",
        )
        .map_err(backend)?;
    let synchronous: i64 = connection
        .query_row("PRAGMA synchronous", [], |row| row.get(0))
        .map_err(backend)?;
    if !journal_mode.eq_ignore_ascii_case("wal") || synchronous != 2 {
        return Err(StoreError::Unavailable(format!(
            "{} must run with journal_mode=WAL and synchronous=FULL, but SQLite gave \
             journal_mode={journal_mode} synchronous={synchronous}; refusing to start \
             because acknowledged events could be lost",
            path.display()
        )));
    }
    Ok(connection)
}

/// A connection that can only read.
pub(crate) fn open_read_only(path: &Path) -> StoreResult<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let connection = Connection::open_with_flags(path, flags)
        .map_err(|e| StoreError::Unavailable(format!("cannot open {}: {e}", path.display())))?;
    connection
        .busy_timeout(Duration::from_secs(10))
        .map_err(backend)?;
    connection
        .execute_batch("PRAGMA cache_size = -16384;")
        .map_err(backend)?;
    Ok(connection)
}

/// Applies every migration not yet applied, in one immediate transaction so that a CLI
/// command and a server starting together cannot both apply the same one.
pub(crate) fn migrate(connection: &mut Connection) -> StoreResult<()> {
    let transaction = connection
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(backend)?;
    let applied: usize = transaction
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(backend)?;
    if applied > MIGRATIONS.len() {
        return Err(StoreError::Unavailable(format!(
            "the database has schema version {applied}, newer than this logvault knows ({}); \
             upgrade logvault",
            MIGRATIONS.len()
        )));
    }
    for sql in &MIGRATIONS[applied..] {
        transaction.execute_batch(sql).map_err(backend)?;
        if *sql == THREAT_GROUPS {
            crate::groups::backfill(&transaction).map_err(backend)?;
        }
    }
    transaction
        .pragma_update(None, "user_version", MIGRATIONS.len())
        .map_err(backend)?;
    transaction.commit().map_err(backend)
}
