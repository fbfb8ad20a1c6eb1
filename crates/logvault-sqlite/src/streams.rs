//! SIEM stream cursors: the last `seq` each stream delivered, advanced only forward.

use logvault_core::Micros;
use logvault_store::StoreResult;
use rusqlite::{Connection, OptionalExtension, params};

use crate::backend;

pub(crate) fn cursor(connection: &Connection, name: &str) -> StoreResult<u64> {
    let seq: Option<i64> = connection
        .query_row(
            "SELECT seq FROM stream_cursors WHERE name = ?1",
            [name],
            |row| row.get(0),
        )
        .optional()
        .map_err(backend)?;
    Ok(seq.map_or(0, |seq| u64::try_from(seq).unwrap_or(0)))
}

pub(crate) fn set_cursor(connection: &Connection, name: &str, seq: u64) -> StoreResult<()> {
    let seq = i64::try_from(seq).unwrap_or(i64::MAX);
    connection
        .execute(
            "INSERT INTO stream_cursors (name, seq, updated_at) VALUES (?1, ?2, ?3) \
             ON CONFLICT (name) DO UPDATE SET seq = max(seq, excluded.seq), \
             updated_at = excluded.updated_at",
            params![name, seq, Micros::now().0],
        )
        .map_err(backend)?;
    Ok(())
}
