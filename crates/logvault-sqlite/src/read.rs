//! Scoped reads: event pages, lookups by id and trend counts. The scope clause is added
//! here, once, for every query ([`filter_clause`]); text search is in [`crate::search`].

use logvault_core::event::IndexFields;
use logvault_core::{EventKind, Micros, Scope, StoredEvent};
use logvault_store::{
    EventQuery, Lookup, Page, ScannedEvent, StoreResult, TrendQuery, TrendRow, trends,
};
use rusqlite::types::Value;
use rusqlite::{Connection, Row, params_from_iter};

use crate::window::SeqRange;
use crate::{backend, event_id, search};

/// Tree levels per stored Merkle block (`merkle_blocks`).
pub(crate) const BLOCK_LEVELS: u32 = 8;
/// Leaves per stored Merkle block.
pub(crate) const BLOCK_LEAVES: u64 = 1 << BLOCK_LEVELS;

/// The columns [`event_from_row`] reads, in order.
pub(crate) const EVENT_COLUMNS: &str = "seq, kind, account_id, account_seq, event_id, received_at, occurred_at, nonce, leaf_hash, body";

pub(crate) fn kind_code(kind: EventKind) -> i64 {
    match kind {
        EventKind::Audit => 0,
        EventKind::Threat => 1,
    }
}

pub(crate) fn event_from_row(row: &Row<'_>) -> rusqlite::Result<StoredEvent> {
    let kind: i64 = row.get(1)?;
    // Read in place: `verify` reads every row, and a Vec per blob showed in its profile. A
    // blob of the wrong length reads as zeros, which no leaf hash check accepts.
    let blob = |index: usize| -> rusqlite::Result<Option<&[u8]>> {
        Ok(row.get_ref(index)?.as_blob_or_null()?)
    };
    let nonce = blob(7)?.and_then(|b| b.try_into().ok()).unwrap_or_default();
    let leaf_hash = blob(8)?.and_then(|b| b.try_into().ok()).unwrap_or_default();
    Ok(StoredEvent {
        seq: row.get(0)?,
        kind: if kind == 0 {
            EventKind::Audit
        } else {
            EventKind::Threat
        },
        account_id: row.get(2)?,
        account_seq: row.get(3)?,
        event_id: row.get::<_, event_id::StoredId>(4)?.0,
        received_at: Micros(row.get(5)?),
        occurred_at: row.get::<_, Option<i64>>(6)?.map(Micros),
        nonce,
        leaf_hash,
        body: row.get(9)?,
    })
}

/// Appends ` AND <column in scope>` to `sql`.
pub(crate) fn scope_clause(scope: &Scope, column: &str, sql: &mut String, values: &mut Vec<Value>) {
    match scope {
        Scope::All => {}
        Scope::Account(id) => {
            sql.push_str(&format!(" AND {column} = ?"));
            values.push(Value::Text(id.clone()));
        }
        Scope::Partner(id) => {
            sql.push_str(&format!(
                " AND {column} IN (SELECT id FROM accounts WHERE id = ? OR partner_id = ?)"
            ));
            values.push(Value::Text(id.clone()));
            values.push(Value::Text(id.clone()));
        }
    }
}

fn text_filter(column: &str, value: &Option<String>, sql: &mut String, values: &mut Vec<Value>) {
    if let Some(value) = value {
        sql.push_str(&format!(" AND {column} = ?"));
        values.push(Value::Text(value.clone()));
    }
}

/// One page of events. A time window (`from`, `to`) becomes a range of positions first
/// ([`SeqRange`]), so a page of the last minute reads only that minute. A multi-account page
/// (partner or admin) without a selective filter then looks among the `recent_window` newest
/// rows, walking the table backwards: with a common filter the page fills within a few
/// thousand rows, while the per-account index would have to collect and sort every match of
/// every account. Only if that window holds too few matches does the rest come through the
/// index.
pub(crate) fn query(
    connection: &Connection,
    scope: &Scope,
    query: &EventQuery,
    recent_window: u64,
) -> StoreResult<Page> {
    let range = SeqRange::of(connection, query)?;
    if range.is_empty() {
        return Ok(Page::from_overfetched(Vec::new(), query.limit));
    }
    let query = &EventQuery {
        before_seq: range.before_seq,
        ..query.clone()
    };
    if query.text.is_some() {
        return search::query(connection, scope, query);
    }
    let wanted = query.limit + 1;
    let min_seq = range.min_seq;
    // Filters that match few rows are better served by the index than by walking back.
    let selective = query.account_id.is_some()
        || query.fingerprint.is_some()
        || query.actor_id.is_some()
        || query.request_id.is_some()
        || query.ip.is_some();
    let events = if matches!(scope, Scope::Account(_)) || selective {
        select(
            connection,
            scope,
            query,
            Reach::above(scope, query, min_seq),
            wanted,
        )?
    } else {
        let top = match query.before_seq {
            Some(before) => before,
            None => log_size(connection)? + 1,
        };
        let floor = top.saturating_sub(recent_window).max(min_seq.unwrap_or(0));
        let mut recent = select(connection, scope, query, Reach::Walk { floor }, wanted)?;
        if recent.len() < wanted && floor > min_seq.unwrap_or(0) {
            let older = EventQuery {
                before_seq: Some(floor),
                ..query.clone()
            };
            recent.extend(select(
                connection,
                scope,
                &older,
                Reach::above(scope, &older, min_seq),
                wanted - recent.len(),
            )?);
        }
        recent
    };
    Ok(Page::from_overfetched(events, query.limit))
}

/// How [`select`] finds the positions below the cursor that it reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reach {
    /// Through the indexes; with `min_seq`, only positions from there up.
    Indexed { min_seq: Option<u64> },
    /// Walking the table backwards, without an index, down to `floor`.
    Walk { floor: u64 },
}

impl Reach {
    /// Positions from `min_seq` up (all without it). An admin's page of no one account has
    /// no index that narrows a range of positions: the per-account index would be read for
    /// every event of the kind and sorted, so it walks the range instead.
    pub(crate) fn above(scope: &Scope, query: &EventQuery, min_seq: Option<u64>) -> Reach {
        match (scope, &query.account_id, min_seq) {
            (Scope::All, None, Some(floor)) => Reach::Walk { floor },
            _ => Reach::Indexed { min_seq },
        }
    }
}

/// Appends the scope and every filter of `query` but the text and the cursor. Purged events
/// (their payload gone, see `crate::retention`) are never listed.
pub(crate) fn filter_clause(
    scope: &Scope,
    query: &EventQuery,
    sql: &mut String,
    values: &mut Vec<Value>,
) {
    sql.push_str(" AND purged_by IS NULL");
    scope_clause(scope, "account_id", sql, values);
    text_filter("account_id", &query.account_id, sql, values);
    if let Some(from) = query.from {
        sql.push_str(" AND received_at >= ?");
        values.push(Value::Integer(from.0));
    }
    if let Some(to) = query.to {
        sql.push_str(" AND received_at < ?");
        values.push(Value::Integer(to.0));
    }
    text_filter("action", &query.action, sql, values);
    text_filter("outcome", &query.outcome, sql, values);
    text_filter("actor_id", &query.actor_id, sql, values);
    text_filter("request_id", &query.request_id, sql, values);
    text_filter("error_type", &query.error_type, sql, values);
    text_filter("source", &query.source, sql, values);
    text_filter("version", &query.version, sql, values);
    text_filter("environment", &query.environment, sql, values);
    if let Some(fingerprint) = query.fingerprint {
        // Text search reads candidates by position; the group's index checks each.
        sql.push_str(" AND seq IN (SELECT seq FROM threat_fingerprints WHERE fingerprint = ?)");
        values.push(Value::Integer(fingerprint));
    }
    if let Some(range) = query.ip {
        sql.push_str(" AND ip BETWEEN ? AND ?");
        values.push(Value::Blob(range.low.to_vec()));
        values.push(Value::Blob(range.high.to_vec()));
    }
}

/// Up to `limit` events matching `query`, newest first, found as `reach` says.
fn select(
    connection: &Connection,
    scope: &Scope,
    query: &EventQuery,
    reach: Reach,
    limit: usize,
) -> StoreResult<Vec<StoredEvent>> {
    let (sql, values) = select_sql(scope, query, reach, limit);
    let mut statement = connection.prepare_cached(&sql).map_err(backend)?;
    let rows = statement
        .query_map(params_from_iter(values), event_from_row)
        .map_err(backend)?;
    rows.collect::<rusqlite::Result<_>>().map_err(backend)
}

/// The rows a page of one group's events reads: its fingerprints' index joined to the log.
const GROUP_EVENTS: &str =
    "threat_fingerprints INDEXED BY threat_fingerprints_group JOIN events USING (seq)";

/// The statement [`select`] runs.
pub(crate) fn select_sql(
    scope: &Scope,
    query: &EventQuery,
    reach: Reach,
    limit: usize,
) -> (String, Vec<Value>) {
    let (table, min_seq) = match (reach, query.fingerprint) {
        // A group's events through the fingerprint index, newest first, each joined to its
        // row by position: the walk stops once the page is full.
        (Reach::Indexed { min_seq }, Some(_)) => (GROUP_EVENTS, min_seq),
        (Reach::Walk { floor }, Some(_)) => (GROUP_EVENTS, Some(floor)),
        (Reach::Indexed { min_seq }, None) => ("events", min_seq),
        (Reach::Walk { floor }, None) => ("events NOT INDEXED", Some(floor)),
    };
    let mut sql = format!("SELECT {EVENT_COLUMNS} FROM {table} WHERE kind = ?");
    let mut values = vec![Value::Integer(kind_code(query.kind))];
    if let Some(min_seq) = min_seq {
        sql.push_str(" AND seq >= ?");
        values.push(Value::Integer(i64::try_from(min_seq).unwrap_or(i64::MAX)));
    }
    match query.fingerprint {
        Some(fingerprint) => {
            sql.push_str(" AND fingerprint = ?");
            values.push(Value::Integer(fingerprint));
            let joined = EventQuery {
                fingerprint: None,
                ..query.clone()
            };
            filter_clause(scope, &joined, &mut sql, &mut values);
        }
        None => filter_clause(scope, query, &mut sql, &mut values),
    }
    if let Some(before) = query.before_seq {
        sql.push_str(" AND seq < ?");
        values.push(Value::Integer(i64::try_from(before).unwrap_or(i64::MAX)));
    }
    sql.push_str(" ORDER BY seq DESC LIMIT ?");
    values.push(Value::Integer(limit as i64));
    (sql, values)
}

pub(crate) fn event(
    connection: &Connection,
    scope: &Scope,
    kind: EventKind,
    event_id: &str,
    account_id: Option<&str>,
) -> StoreResult<Lookup> {
    let (sql, values) = event_sql(scope, kind, event_id, account_id);
    let mut statement = connection.prepare_cached(&sql).map_err(backend)?;
    let rows = statement
        .query_map(params_from_iter(values), event_from_row)
        .map_err(backend)?;
    let mut found: Vec<StoredEvent> = rows.collect::<rusqlite::Result<_>>().map_err(backend)?;
    Ok(match found.len() {
        0 => Lookup::NotFound,
        1 => Lookup::Found(Box::new(found.remove(0))),
        _ => Lookup::Ambiguous,
    })
}

/// The statement [`event`] runs.
pub(crate) fn event_sql(
    scope: &Scope,
    kind: EventKind,
    event_id: &str,
    account_id: Option<&str>,
) -> (String, Vec<Value>) {
    // The id index for every scope: without the hint SQLite may prefer the per-account
    // index on `kind` for an admin and walk every event of that kind (150 ms at 515 k events).
    let mut sql = format!(
        "SELECT {EVENT_COLUMNS} FROM events INDEXED BY events_event_id \
         WHERE event_id = ? AND kind = ? AND purged_by IS NULL"
    );
    let mut values = vec![event_id::to_sql(event_id), Value::Integer(kind_code(kind))];
    scope_clause(scope, "account_id", &mut sql, &mut values);
    text_filter(
        "account_id",
        &account_id.map(str::to_string),
        &mut sql,
        &mut values,
    );
    sql.push_str(" LIMIT 2");
    (sql, values)
}

pub(crate) fn trends(
    connection: &Connection,
    scope: &Scope,
    query: &TrendQuery,
) -> StoreResult<Vec<TrendRow>> {
    let dimension = trends::dimension(query.group_by);
    let width = query.interval.micros();
    let (from, to) = trends::hour_range(query);
    let mut sql = format!(
        "SELECT (hour / {width}) * {width} AS bucket, key, sum(count) FROM event_trends \
         WHERE dimension = ? AND hour >= ? AND hour < ?"
    );
    let mut values = vec![
        Value::Integer(dimension.into()),
        Value::Integer(from),
        Value::Integer(to),
    ];
    scope_clause(scope, "account_id", &mut sql, &mut values);
    text_filter("account_id", &query.account_id, &mut sql, &mut values);
    sql.push_str(" GROUP BY bucket, key");
    if query.min_count > 1 {
        sql.push_str(" HAVING sum(count) >= ?");
        values.push(Value::Integer(
            i64::try_from(query.min_count).unwrap_or(i64::MAX),
        ));
    }
    sql.push_str(" ORDER BY bucket, key");
    let mut statement = connection.prepare_cached(&sql).map_err(backend)?;
    let rows = statement
        .query_map(params_from_iter(values), |row| {
            Ok(TrendRow {
                bucket: Micros(row.get(0)?),
                key: row.get(1)?,
                count: row.get(2)?,
            })
        })
        .map_err(backend)?;
    rows.collect::<rusqlite::Result<_>>().map_err(backend)
}

/// Events after `after_seq` in `seq` order, with their index columns.
pub(crate) fn scan(
    connection: &Connection,
    scope: &Scope,
    after_seq: u64,
    limit: usize,
) -> StoreResult<Vec<ScannedEvent>> {
    let mut sql = format!(
        "SELECT {EVENT_COLUMNS}, action, outcome, actor_id, ip, request_id, error_type, source, \
         version, environment, purged_by, \
         (SELECT fingerprint FROM threat_fingerprints f WHERE f.seq = events.seq) \
         FROM events WHERE seq > ?"
    );
    let mut values = vec![Value::Integer(i64::try_from(after_seq).unwrap_or(i64::MAX))];
    scope_clause(scope, "account_id", &mut sql, &mut values);
    sql.push_str(" ORDER BY seq LIMIT ?");
    values.push(Value::Integer(limit as i64));
    let mut statement = connection.prepare_cached(&sql).map_err(backend)?;
    let rows = statement
        .query_map(params_from_iter(values), |row| {
            let ip = row.get_ref(13)?.as_blob_or_null()?;
            Ok(ScannedEvent {
                event: event_from_row(row)?,
                index: IndexFields {
                    action: row.get(10)?,
                    outcome: row.get(11)?,
                    actor_id: row.get(12)?,
                    // A malformed stored address must be reported, not hidden: keep what
                    // can be kept and let verification compare.
                    ip: ip.map(|bytes| {
                        let mut address = [0xff; 16];
                        let n = bytes.len().min(16);
                        address[..n].copy_from_slice(&bytes[..n]);
                        address
                    }),
                    request_id: row.get(14)?,
                    error_type: row.get(15)?,
                    source: row.get(16)?,
                    version: row.get(17)?,
                    environment: row.get(18)?,
                    search_text: String::new(),
                },
                search_text_stored: false,
                purged_by: row.get(19)?,
                fingerprint: row.get(20)?,
            })
        })
        .map_err(backend)?;
    rows.collect::<rusqlite::Result<_>>().map_err(backend)
}

pub(crate) fn log_size(connection: &Connection) -> StoreResult<u64> {
    connection
        .query_row("SELECT size FROM log_head WHERE id = 1", [], |row| {
            row.get(0)
        })
        .map_err(backend)
}
