//! The raw insert ceiling for benchmarks: the same rows, schema and indexes the service
//! writes, inserted straight into a fresh database in large transactions with the same
//! durability settings — no HTTP, no JSON, no queue. It tells how close the service gets to
//! what SQLite itself can do on this machine.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use logvault_core::{Micros, NewEvent, StoredEvent};
use logvault_store::StoreResult;

use crate::schema::{migrate, open_writable};
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

    // Rows are fully built before the clock starts: only the database work is timed.
    let now = Micros::now();
    let mut account_seqs: HashMap<&str, u64> = HashMap::new();
    let rows: Vec<StoredEvent> = events
        .iter()
        .enumerate()
        .map(|(index, event)| {
            let account_seq = account_seqs.entry(event.account_id.as_str()).or_default();
            *account_seq += 1;
            let mut stored = StoredEvent {
                seq: index as u64 + 1,
                account_seq: *account_seq,
                kind: event.kind,
                account_id: event.account_id.clone(),
                event_id: event.event_id.clone(),
                received_at: now,
                occurred_at: event.occurred_at,
                body: event.body.clone(),
                nonce: [7; 16],
                leaf_hash: [0; 32],
            };
            stored.leaf_hash = stored.compute_leaf_hash();
            stored
        })
        .collect();
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

/// Bytes the `search_text` column (the `q` text index) takes in `dir`'s database, summed
/// over rows: what the benchmark subtracts to report storage without the text index.
pub fn text_index_bytes(dir: &Path) -> StoreResult<u64> {
    let connection = crate::schema::open_read_only(&dir.join(DB_FILE))?;
    connection
        .query_row(
            "SELECT coalesce(sum(length(search_text)), 0) FROM events",
            [],
            |row| row.get(0),
        )
        .map_err(backend)
}
