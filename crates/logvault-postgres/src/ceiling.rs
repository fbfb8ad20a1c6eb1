//! The raw insert ceiling for benchmarks on PostgreSQL: the same rows the service writes,
//! loaded with binary `COPY` into copies of `events` and `event_ids` (same columns and
//! indexes, in a scratch schema, not partitioned) in large transactions with the same
//! durability and the same text search upkeep — no HTTP, no JSON, no queue, no sequencer. It
//! tells how close the service gets to what PostgreSQL itself can take on this machine. Also
//! the storage figures.

use std::time::{Duration, Instant};

use futures_util::pin_mut;
use logvault_core::{Micros, NewEvent};
use logvault_store::StoreResult;
use logvault_store::ceiling::ceiling_rows;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};

use crate::sql::{kind_code, to_i64};
use crate::{backend, schema, search};

const EVENT_COLUMNS: &str = "seq, kind, account_id, account_seq, event_id, received_at, \
     occurred_at, nonce, leaf_hash, action, outcome, actor_id, ip, request_id, error_type, \
     source, version, environment, search_text, body";
const EVENT_TYPES: [Type; 20] = [
    Type::INT8,
    Type::INT2,
    Type::TEXT,
    Type::INT8,
    Type::TEXT,
    Type::INT8,
    Type::INT8,
    Type::BYTEA,
    Type::BYTEA,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::BYTEA,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
];
/// Merges the pending list of the scratch copy's trigram index.
const MERGE_SCRATCH: &str = "SELECT sum(gin_clean_pending_list(i.indexrelid)) FROM pg_index i \
     JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am am ON am.oid = c.relam \
     WHERE am.amname = 'gin' AND i.indrelid = 'logvault_ceiling.events'::regclass";
const ID_TYPES: [Type; 5] = [Type::TEXT, Type::TEXT, Type::INT2, Type::INT8, Type::INT8];

/// Loads `events` into scratch copies of the event tables at `url` in transactions of
/// `per_transaction` events and returns the time the loads took. The scratch schema is
/// dropped afterwards.
pub async fn copy_ceiling(
    url: &str,
    events: &[NewEvent],
    per_transaction: usize,
) -> StoreResult<Duration> {
    let config = schema::parse_url(url)?;
    let mut client = schema::connect(&config).await?;
    schema::check_durability(&client).await?;
    client
        .batch_execute(
            "DROP SCHEMA IF EXISTS logvault_ceiling CASCADE; CREATE SCHEMA logvault_ceiling; \
             CREATE TABLE logvault_ceiling.events (LIKE events INCLUDING ALL); \
             CREATE TABLE logvault_ceiling.event_ids (LIKE event_ids INCLUDING ALL);",
        )
        .await
        .map_err(backend)?;
    // The same text search upkeep as the service's writer: append to the pending list, and
    // merge it in bulk beside the load.
    client
        .batch_execute(search::WRITER_PENDING_LIMIT)
        .await
        .map_err(backend)?;
    let merger = search::Merger::start(config, MERGE_SCRATCH);
    let rows = ceiling_rows(events, Micros::now());
    let started = Instant::now();
    for (rows, events) in rows
        .chunks(per_transaction.max(1))
        .zip(events.chunks(per_transaction.max(1)))
    {
        let transaction = client.transaction().await.map_err(backend)?;
        let sink = transaction
            .copy_in(&format!(
                "COPY logvault_ceiling.events ({EVENT_COLUMNS}) FROM STDIN BINARY"
            ))
            .await
            .map_err(backend)?;
        let writer = BinaryCopyInWriter::new(sink, &EVENT_TYPES);
        pin_mut!(writer);
        for (row, event) in rows.iter().zip(events) {
            let index = &event.index;
            let values: [&(dyn ToSql + Sync); 20] = [
                &to_i64(row.seq),
                &kind_code(row.kind),
                &row.account_id,
                &to_i64(row.account_seq),
                &row.event_id,
                &row.received_at.0,
                &row.occurred_at.map(|at| at.0),
                &&row.nonce[..],
                &&row.leaf_hash[..],
                &index.action,
                &index.outcome,
                &index.actor_id,
                &index.ip.as_ref().map(|ip| &ip[..]),
                &index.request_id,
                &index.error_type,
                &index.source,
                &index.version,
                &index.environment,
                &index.search_text,
                &row.body,
            ];
            writer.as_mut().write(&values).await.map_err(backend)?;
        }
        writer.finish().await.map_err(backend)?;
        let sink = transaction
            .copy_in(
                "COPY logvault_ceiling.event_ids (event_id, account_id, kind, seq, received_at) \
                 FROM STDIN BINARY",
            )
            .await
            .map_err(backend)?;
        let writer = BinaryCopyInWriter::new(sink, &ID_TYPES);
        pin_mut!(writer);
        for row in rows {
            let values: [&(dyn ToSql + Sync); 5] = [
                &row.event_id,
                &row.account_id,
                &kind_code(row.kind),
                &to_i64(row.seq),
                &row.received_at.0,
            ];
            writer.as_mut().write(&values).await.map_err(backend)?;
        }
        writer.finish().await.map_err(backend)?;
        transaction.commit().await.map_err(backend)?;
    }
    let elapsed = started.elapsed();
    drop(merger);
    client
        .batch_execute("DROP SCHEMA logvault_ceiling CASCADE")
        .await
        .map_err(backend)?;
    Ok(elapsed)
}

/// Bytes the event tables take at `url` (every partition of `events` with its indexes and
/// TOAST, and `event_ids`), and of those, the bytes of text search: the `search_text` column
/// and its trigram index.
pub async fn storage_bytes(url: &str) -> StoreResult<(u64, u64)> {
    let config = schema::parse_url(url)?;
    let client = schema::connect(&config).await?;
    let row = client
        .query_one(
            "SELECT (SELECT coalesce(sum(pg_total_relation_size(relid)), 0) \
                     FROM pg_partition_tree('events') WHERE isleaf)::bigint \
                  + pg_total_relation_size('event_ids'), \
                    (SELECT coalesce(sum(pg_column_size(search_text)), 0) FROM events)::bigint \
                  + CASE WHEN to_regclass('events_search_trgm') IS NULL THEN 0 ELSE \
                    (SELECT coalesce(sum(pg_relation_size(relid)), 0) \
                     FROM pg_partition_tree(to_regclass('events_search_trgm')))::bigint END",
            &[],
        )
        .await
        .map_err(backend)?;
    let total: i64 = row.get(0);
    let text: i64 = row.get(1);
    Ok((total.max(0) as u64, text.max(0) as u64))
}
