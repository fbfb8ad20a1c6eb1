//! The raw insert ceiling for benchmarks: the same rows, schema and indexes the service
//! writes, inserted straight into a fresh database in large transactions with the same
//! durability settings — no HTTP, no JSON, no queue. It tells how close the service gets to
//! what SQLite itself can do on this machine.

use std::path::Path;
use std::time::{Duration, Instant};

use logvault_core::{Micros, NewEvent};
use logvault_store::StoreResult;
use logvault_store::ceiling::ceiling_rows;

use crate::schema::{migrate, open_writable};
use crate::search::SEARCH_FILE;
use crate::writer::insert_event;
use crate::{DB_FILE, backend};

/// Inserts `events` into a new database in `dir` (accounts created first, untimed), in
/// transactions of `per_transaction` events, and returns the time the inserts took.
pub fn insert_ceiling(
    dir: &Path,
    accounts: &[(String, Option<String>)],
    events: &[NewEvent],
    per_transaction: usize,
) -> StoreResult<Duration> {
    std::fs::create_dir_all(dir).map_err(|e| logvault_store::StoreError::Backend(e.to_string()))?;
    let mut connection = open_writable(&dir.join(DB_FILE))?;
    migrate(&mut connection)?;
    let setup = connection.transaction().map_err(backend)?;
    for (id, partner) in accounts {
        let kind = if id.starts_with("par_") {
            "partner"
        } else {
            "merchant"
        };
        setup
            .execute(
                "INSERT INTO accounts (id, kind, partner_id, name, created_at) VALUES (?1, ?2, ?3, ?1, 0)",
                rusqlite::params![id, kind, partner],
            )
            .map_err(backend)?;
    }
    setup.commit().map_err(backend)?;

    let rows = ceiling_rows(events, Micros::now());
    let started = Instant::now();
    for (rows, events) in rows
        .chunks(per_transaction.max(1))
        .zip(events.chunks(per_transaction.max(1)))
    {
        let transaction = connection
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(backend)?;
        for (row, event) in rows.iter().zip(events) {
            insert_event(&transaction, row, &event.index).map_err(backend)?;
        }
        transaction.commit().map_err(backend)?;
    }
    Ok(started.elapsed())
}

/// Bytes the store takes in `dir`: the log database and the text search index together, and
/// the index alone (what the benchmark subtracts to report storage without text search).
/// Each file counts with its write-ahead log, where recent pages may still be.
pub fn storage_bytes(dir: &Path) -> StoreResult<(u64, u64)> {
    let size = |name: &str| -> u64 {
        [name.to_string(), format!("{name}-wal")]
            .iter()
            .filter_map(|file| std::fs::metadata(dir.join(file)).ok())
            .map(|metadata| metadata.len())
            .sum()
    };
    let index = size(SEARCH_FILE);
    Ok((size(DB_FILE) + index, index))
}
