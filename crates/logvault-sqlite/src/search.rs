//! Text search (`q=`): substring search over every string value of an event, lower-cased
//! (`IndexFields::search_text`), the same meaning as PostgreSQL's trigram `LIKE`.
//!
//! The index is an FTS5 table with the trigram tokenizer in a file of its own
//! ([`SEARCH_FILE`]), contentless (the text is not stored a second time), filled in bulk by an
//! indexer thread that follows the log: the writer does not pay for it, and the file has its
//! own write lock, so indexing runs on the other core beside ingest. It is derived data: its
//! high-water mark (`search_head.indexed_upto`) commits with the entries, it is written with
//! `synchronous=NORMAL` (a crash loses at most the last batches, which are indexed again),
//! and deleting the file rebuilds it.
//!
//! A query is answered exactly whatever the index's lag: events the index has not reached
//! are read directly. Two walks run downwards from the top, taking turns: one over the index's
//! matches (cheap when the term is rare), one over the events of the scope, checking each
//! body's text (cheap when the term is common in the scope). Every in-scope match above the
//! lower of the two positions has been seen, so the page is complete once it holds enough
//! matches above that point, whichever walk found them.

use std::path::Path;
use std::time::Duration;

use logvault_core::event::IndexFields;
use logvault_core::{EventKind, Scope, StoredEvent};
use logvault_store::{EventQuery, Page, StoreError, StoreResult};
use rusqlite::types::Value;
use rusqlite::{Connection, params, params_from_iter};

use crate::backend;
use crate::read::{EVENT_COLUMNS, event_from_row, filter_clause, kind_code, log_size};

/// Name of the search index's file inside the data directory.
pub const SEARCH_FILE: &str = "search.db";

/// Index matches examined per turn of the index walk.
const INDEX_STEP: i64 = 2_048;
/// Events examined per turn of the scope walk.
const SCOPE_STEP: i64 = 2_048;
/// Events the indexer reads and indexes per transaction.
const INDEX_BATCH: i64 = 20_000;
/// How often the indexer looks for new events once it has caught up.
const INDEX_POLL: Duration = Duration::from_millis(50);

/// The index's layout; an index of another version is dropped and built again.
const SCHEMA_VERSION: i64 = 2;

/// Positions are not kept (`detail = 'none'`, less than half the size of a full index): a
/// search asks for rows holding every trigram of the text, and the walk then checks each
/// candidate's text for the text itself.
const SCHEMA: &str = "
CREATE VIRTUAL TABLE IF NOT EXISTS search USING fts5(
    text, content = '', contentless_delete = 1, tokenize = 'trigram', detail = 'none');
CREATE TABLE IF NOT EXISTS search_head (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    indexed_upto INTEGER NOT NULL
) STRICT;
INSERT OR IGNORE INTO search_head (id, indexed_upto) VALUES (1, 0);
-- The last purge (its record's seq) whose events' text has been taken out of the index.
CREATE TABLE IF NOT EXISTS search_forgotten (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    purged_upto INTEGER NOT NULL
) STRICT;
INSERT OR IGNORE INTO search_forgotten (id, purged_upto) VALUES (1, 0);
-- Merge segments sixteen at a time instead of four: each entry is rewritten about half as
-- often (the index wrote 9 times its own size with four, 5 times with sixteen), at the cost
-- of a few more segments for a search to look into.
INSERT INTO search (search, rank) VALUES ('automerge', 16);
";

/// Opens (creating if needed) the index next to `database` for writing.
pub(crate) fn open_index(database: &Path) -> StoreResult<Connection> {
    let path = database.with_file_name(SEARCH_FILE);
    let connection = Connection::open(&path)
        .map_err(|e| StoreError::Unavailable(format!("cannot open {}: {e}", path.display())))?;
    connection
        .busy_timeout(Duration::from_secs(10))
        .map_err(backend)?;
    // NORMAL is enough here and only here: the index is derived from the log and its
    // high-water mark commits with its entries, so a lost tail is indexed again.
    connection
        .query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))
        .map_err(backend)?;
    connection
        // Readers keep the WAL from being reset for a while under load; once it is, the file
        // goes back to 64 MiB instead of keeping its largest size (1.8 GB in a 10 M run).
        .execute_batch(
            "PRAGMA synchronous = NORMAL; PRAGMA cache_size = -32768; \
             PRAGMA journal_size_limit = 67108864;",
        )
        .map_err(backend)?;
    let version: i64 = connection
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(backend)?;
    if version != SCHEMA_VERSION {
        connection
            .execute_batch("DROP TABLE IF EXISTS search; DROP TABLE IF EXISTS search_head;")
            .map_err(backend)?;
    }
    connection.execute_batch(SCHEMA).map_err(backend)?;
    connection
        .pragma_update(None, "user_version", SCHEMA_VERSION)
        .map_err(backend)?;
    Ok(connection)
}

/// Makes the index readable on `connection` (a reader of the log) as `search`.
pub(crate) fn attach(connection: &Connection, database: &Path) -> StoreResult<()> {
    let path = database.with_file_name(SEARCH_FILE);
    connection
        .execute(
            "ATTACH DATABASE ?1 AS search",
            [path.to_string_lossy().as_ref()],
        )
        .map(drop)
        .map_err(backend)
}

/// Runs the indexer until `stop` is dropped: `log` reads the events, `index` writes the index.
pub(crate) fn run_indexer(
    log: Connection,
    mut index: Connection,
    stop: std::sync::mpsc::Receiver<()>,
) {
    // The index gives way to ingest and queries: at the lowest priority it only takes time
    // the others leave. Under a burst at full speed it falls behind and catches up once the
    // burst is over (searches stay exact meanwhile, reading what it has not reached). On
    // Linux the nice value of `setpriority(PRIO_PROCESS, 0)` is the calling thread's alone.
    if let Err(error) = rustix::process::setpriority_process(None, 19) {
        tracing::debug!(%error, "cannot lower the search indexer's priority");
    }
    if let Err(error) = discard_foreign_index(&log, &index) {
        tracing::warn!(%error, "cannot check the search index against the log");
    }
    loop {
        let done = index_batch(&log, &mut index).and_then(|indexed| {
            forget_purged(&log, &mut index).map(|forgotten| indexed + forgotten)
        });
        let wait = match done {
            Ok(0) => INDEX_POLL,
            Ok(_) => Duration::ZERO,
            Err(error) => {
                tracing::warn!(%error, "search indexing failed; will retry");
                Duration::from_secs(1)
            }
        };
        match stop.recv_timeout(wait) {
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            _ => return,
        }
    }
}

/// An index that reaches past the end of the log belongs to another log (a database restored
/// from a backup next to a newer index): it is emptied and rebuilt.
fn discard_foreign_index(log: &Connection, index: &Connection) -> StoreResult<()> {
    let size = log_size(log)?;
    let indexed: u64 = index
        .query_row("SELECT indexed_upto FROM search_head", [], |row| row.get(0))
        .map_err(backend)?;
    if indexed > size {
        tracing::warn!(
            indexed,
            size,
            "the search index is ahead of the log; rebuilding it"
        );
        index
            .execute_batch(
                "BEGIN; DELETE FROM search; UPDATE search_head SET indexed_upto = 0; COMMIT;",
            )
            .map_err(backend)?;
    }
    Ok(())
}

/// Indexes the next batch of events; how many it indexed.
fn index_batch(log: &Connection, index: &mut Connection) -> rusqlite::Result<usize> {
    let indexed: i64 =
        index.query_row("SELECT indexed_upto FROM search_head", [], |row| row.get(0))?;
    // The texts are made before the index's transaction and the log's read ends first: a
    // reader held open through a slow, low-priority write would keep the WAL checkpointer
    // from emptying the log's WAL.
    let mut fields = IndexFields::default();
    let texts = log
        .prepare_cached("SELECT seq, kind, body FROM events WHERE seq > ?1 ORDER BY seq LIMIT ?2")?
        .query_map(params![indexed, INDEX_BATCH], |row| {
            let kind = if row.get::<_, i64>(1)? == 0 {
                EventKind::Audit
            } else {
                EventKind::Threat
            };
            // A body that is not a JSON object is nothing logvault stored: `verify` reports
            // it, and it has no text.
            let text = if fields.set_from_body(kind, row.get_ref(2)?.as_str()?) {
                std::mem::take(&mut fields.search_text)
            } else {
                String::new()
            };
            Ok((row.get::<_, i64>(0)?, text))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let Some(&(last, _)) = texts.last() else {
        return Ok(0);
    };
    let transaction = index.transaction()?;
    let mut insert =
        transaction.prepare_cached("INSERT INTO search (rowid, text) VALUES (?1, ?2)")?;
    for (seq, text) in &texts {
        insert.execute(params![seq, text])?;
    }
    drop(insert);
    transaction.execute("UPDATE search_head SET indexed_upto = ?1", [last])?;
    transaction.commit()?;
    Ok(texts.len())
}

/// Purges recorded at once at most.
const FORGET_BATCH: i64 = 64;

/// Takes the text of purged events out of the index, purge by purge: a purge removes the
/// payload from the log, so its words must not stay behind in the index. Events the index has
/// not reached yet are indexed from their purged (empty) body, so only those up to
/// `indexed_upto` are removed. How many entries it removed (at least one per purge seen).
fn forget_purged(log: &Connection, index: &mut Connection) -> rusqlite::Result<usize> {
    let (done, indexed): (i64, i64) = index.query_row(
        "SELECT purged_upto, indexed_upto FROM search_forgotten, search_head",
        [],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )?;
    let purges = log
        .prepare_cached(
            "SELECT record_seq, kind, account_id, from_seq, to_seq FROM purges \
             WHERE record_seq > ?1 ORDER BY record_seq LIMIT ?2",
        )?
        .query_map(params![done, FORGET_BATCH], |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, i64>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, i64>(3)?,
                row.get::<_, i64>(4)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let Some(&(last, ..)) = purges.last() else {
        return Ok(0);
    };
    let mut seqs = Vec::new();
    let mut in_range = log.prepare_cached(
        "SELECT seq FROM events INDEXED BY events_kind_account \
         WHERE kind = ?1 AND account_id = ?2 AND seq BETWEEN ?3 AND ?4",
    )?;
    for (_, kind, account, from, to) in &purges {
        let rows = in_range.query_map(params![kind, account, from, to.min(&indexed)], |row| {
            row.get::<_, i64>(0)
        })?;
        for seq in rows {
            seqs.push(seq?);
        }
    }
    let transaction = index.transaction()?;
    let mut delete = transaction.prepare_cached("DELETE FROM search WHERE rowid = ?1")?;
    for seq in &seqs {
        delete.execute([seq])?;
    }
    drop(delete);
    transaction.execute("UPDATE search_forgotten SET purged_upto = ?1", [last])?;
    transaction.commit()?;
    Ok(seqs.len() + purges.len())
}

/// Events of the log in `dir` (a data directory) that the text index has not reached yet.
pub fn search_index_lag(dir: &Path) -> StoreResult<u64> {
    let path = dir.join(crate::DB_FILE);
    let connection = crate::schema::open_read_only(&path)?;
    attach(&connection, &path)?;
    Ok(log_size(&connection)?.saturating_sub(indexed_upto(&connection)?))
}

/// The last `seq` the index covers, on a reader with the index attached.
pub(crate) fn indexed_upto(connection: &Connection) -> StoreResult<u64> {
    connection
        .query_row("SELECT indexed_upto FROM search.search_head", [], |row| {
            row.get(0)
        })
        .map_err(backend)
}

/// One page of events matching `query`, whose `text` is set. `connection` has the index
/// attached ([`attach`]).
pub(crate) fn query(
    connection: &Connection,
    scope: &Scope,
    query: &EventQuery,
) -> StoreResult<Page> {
    let needle = query.text.as_deref().unwrap_or_default().to_lowercase();
    let wanted = query.limit + 1;
    // A cursor past the end of the log starts where the log ends: the scope walk steps down
    // from `top`, and from a forged `c7fff…` it would step for ever (found by schemathesis).
    let log_top = i64::try_from(log_size(connection)?).unwrap_or(i64::MAX - 1) + 1;
    let top = match query.before_seq {
        Some(before) => i64::try_from(before).unwrap_or(i64::MAX).min(log_top),
        None => log_top,
    };
    let indexed = i64::try_from(indexed_upto(connection)?).unwrap_or(i64::MAX);
    // Trigrams cannot find a needle shorter than three characters: then only the scope walk.
    let use_index = needle.chars().count() >= 3;
    let mut walk = ScopeWalk::new(scope, query, &needle, top);
    let mut index_position = top.min(indexed + 1);
    let mut found = Found::default();
    // Events above the index's high-water mark can only be found by reading them.
    while walk.position > indexed + 1 {
        walk.step(connection, &mut found)?;
    }
    // The walks take turns, the index first; after each turn the page may be complete.
    let mut index_turn = use_index;
    loop {
        let complete_above = walk
            .position
            .min(if use_index { index_position } else { top });
        if found.0.range(complete_above..).count() >= wanted || complete_above <= 1 {
            break;
        }
        if index_turn && index_position > 1 {
            index_position = index_step(
                connection,
                query,
                scope,
                &needle,
                index_position,
                &mut found,
            )?;
        } else if walk.position > 1 {
            walk.step(connection, &mut found)?;
        }
        index_turn = use_index && !index_turn;
    }
    let events = found.0.into_values().rev().take(wanted).collect();
    Ok(Page::from_overfetched(events, query.limit))
}

/// Matches found so far by either walk, by `seq` (both walks may find the same event).
#[derive(Default)]
struct Found(std::collections::BTreeMap<i64, StoredEvent>);

impl Found {
    /// Keeps `event` if its text contains `needle`. The index walk checks too: the index
    /// only says that an event holds every trigram of the text, not that they are adjacent.
    fn keep_if_match(&mut self, event: StoredEvent, needle: &str, fields: &mut IndexFields) {
        if fields.set_from_body(event.kind, &event.body) && fields.search_text.contains(needle) {
            self.0.insert(event.seq as i64, event);
        }
    }
}

/// One turn of the index walk: the next matches below `below`, kept if they are in scope and
/// pass the other filters. Returns the new position (1 once the index has no more matches).
fn index_step(
    connection: &Connection,
    query: &EventQuery,
    scope: &Scope,
    needle: &str,
    below: i64,
    found: &mut Found,
) -> StoreResult<i64> {
    let every_trigram = trigram_query(needle);
    let candidates: Vec<i64> = connection
        .prepare_cached(CANDIDATES_SQL)
        .and_then(|mut statement| {
            statement
                .query_map(params![every_trigram, below, INDEX_STEP], |row| row.get(0))?
                .collect()
        })
        .map_err(backend)?;
    let Some(&lowest) = candidates.last() else {
        return Ok(1);
    };
    let (sql, values) = candidates_sql(scope, query, &candidates, query.limit + 1);
    let mut statement = connection.prepare_cached(&sql).map_err(backend)?;
    let rows = statement
        .query_map(params_from_iter(values), event_from_row)
        .map_err(backend)?;
    let mut fields = IndexFields::default();
    let (mut n_rows, mut lowest_row) = (0, lowest);
    for event in rows {
        let event = event.map_err(backend)?;
        (n_rows, lowest_row) = (n_rows + 1, event.seq as i64);
        found.keep_if_match(event, needle, &mut fields);
    }
    Ok(if n_rows > query.limit {
        // Enough for a page: the candidates below the last one read are not looked at yet.
        lowest_row
    } else if (candidates.len() as i64) < INDEX_STEP {
        1
    } else {
        lowest
    })
}

/// The FTS5 query for rows holding every trigram of `needle` (three characters or more),
/// each quoted so that no character of the text is read as query syntax.
fn trigram_query(needle: &str) -> String {
    let chars: Vec<char> = needle.chars().collect();
    let mut trigrams: Vec<String> = chars
        .windows(3)
        .map(|window| {
            let trigram: String = window.iter().collect();
            format!("\"{}\"", trigram.replace('"', "\"\""))
        })
        .collect();
    trigrams.sort_unstable();
    trigrams.dedup();
    trigrams.join(" AND ")
}

/// The candidate query of the index walk: the next matches below `below`.
pub(crate) const CANDIDATES_SQL: &str = "SELECT rowid FROM search.search WHERE search MATCH ?1 \
     AND rowid < ?2 ORDER BY rowid DESC LIMIT ?3";

/// The newest `limit` events among `candidates` that are in scope and pass the other filters.
pub(crate) fn candidates_sql(
    scope: &Scope,
    query: &EventQuery,
    candidates: &[i64],
    limit: usize,
) -> (String, Vec<Value>) {
    // CROSS JOIN keeps the candidates outermost: each is one primary-key lookup. Left to
    // itself SQLite walked every event of the kind through the per-account index.
    let mut sql = format!(
        "SELECT {EVENT_COLUMNS} FROM json_each(?) AS candidate CROSS JOIN events \
         ON events.seq = candidate.value WHERE kind = ?"
    );
    let mut values = vec![
        Value::Text(serde_json::to_string(candidates).unwrap_or_default()),
        Value::Integer(kind_code(query.kind)),
    ];
    filter_clause(scope, query, &mut sql, &mut values);
    sql.push_str(" ORDER BY seq DESC LIMIT ?");
    values.push(Value::Integer(limit as i64));
    (sql, values)
}

/// The walk over the scope's events, downwards from `position` (exclusive), checking each
/// body's text.
pub(crate) struct ScopeWalk<'a> {
    scope: &'a Scope,
    query: &'a EventQuery,
    needle: &'a str,
    /// Every event of the scope at or above this `seq` (and below the top) has been seen.
    position: i64,
    /// Set when one account is asked for: its events come through the per-account index.
    one_account: bool,
    fields: IndexFields,
}

impl<'a> ScopeWalk<'a> {
    pub(crate) fn new(scope: &'a Scope, query: &'a EventQuery, needle: &'a str, top: i64) -> Self {
        ScopeWalk {
            scope,
            query,
            needle,
            position: top,
            one_account: matches!(scope, Scope::Account(_)) || query.account_id.is_some(),
            fields: IndexFields::default(),
        }
    }

    fn step(&mut self, connection: &Connection, found: &mut Found) -> StoreResult<()> {
        let (sql, values) = self.step_sql();
        let mut statement = connection.prepare_cached(&sql).map_err(backend)?;
        let rows = statement
            .query_map(params_from_iter(values), event_from_row)
            .map_err(backend)?;
        let mut n_rows = 0;
        let mut lowest = self.position;
        for event in rows {
            let event = event.map_err(backend)?;
            n_rows += 1;
            lowest = event.seq as i64;
            found.keep_if_match(event, self.needle, &mut self.fields);
        }
        self.position = if self.one_account {
            if n_rows < SCOPE_STEP { 1 } else { lowest }
        } else {
            (self.position - SCOPE_STEP).max(1)
        };
        Ok(())
    }

    /// The statement of the next turn.
    pub(crate) fn step_sql(&self) -> (String, Vec<Value>) {
        let (table, range) = if self.one_account {
            ("events", " AND seq < ?")
        } else {
            ("events NOT INDEXED", " AND seq < ? AND seq >= ?")
        };
        let mut sql = format!("SELECT {EVENT_COLUMNS} FROM {table} WHERE kind = ?{range}");
        let mut values = vec![
            Value::Integer(kind_code(self.query.kind)),
            Value::Integer(self.position),
        ];
        if !self.one_account {
            values.push(Value::Integer(self.position - SCOPE_STEP));
        }
        filter_clause(self.scope, self.query, &mut sql, &mut values);
        sql.push_str(" ORDER BY seq DESC");
        if self.one_account {
            sql.push_str(" LIMIT ?");
            values.push(Value::Integer(SCOPE_STEP));
        }
        (sql, values)
    }
}
