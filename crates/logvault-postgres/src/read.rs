//! Scoped reads: event pages, lookups by id, trend counts and scans. Every statement adds the
//! scope clause ([`Sql::scope`]), or reads only the partner's accounts one by one, and runs in a
//! transaction whose row-level-security scope is set to the same scope
//! ([`crate::sql::begin_scoped`]).

use deadpool_postgres::Transaction;
use logvault_core::event::IndexFields;
use logvault_core::{EventKind, Micros, Scope, StoredEvent};
use logvault_store::{
    EventQuery, Lookup, Page, ScannedEvent, StoreResult, TrendQuery, TrendRow, trends,
};

use crate::sql::{EVENT_COLUMNS, Sql, event_from_row, get, get_u64, kind_code, to_i64};

/// Escapes `%`, `_` and `\` so `text` matches itself in a `LIKE` pattern.
fn like_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

pub(crate) async fn query(
    transaction: &Transaction<'_>,
    scope: &Scope,
    query: &EventQuery,
    trigram: bool,
) -> StoreResult<Page> {
    let events = query_sql(scope, query, trigram)
        .query(transaction)
        .await?
        .iter()
        .map(event_from_row)
        .collect::<StoreResult<Vec<StoredEvent>>>()?;
    Ok(Page::from_overfetched(events, query.limit))
}

/// The statement [`query`] runs.
pub(crate) fn query_sql(scope: &Scope, query: &EventQuery, trigram: bool) -> Sql {
    let mut sql = Sql::default();
    // A partner filtering on a column indexed per account (error type, actor) or on a time
    // window reads each account's newest matches and merges them: the plain form makes
    // PostgreSQL collect every match of every account in scope and sort them all (170 ms at
    // 10 M events), or walk the whole window of every account (the last minute at 2 M
    // events: 50 ms plain, 85 ms through the window's positions, 13 ms per account).
    let per_account = match scope {
        Scope::Partner(partner)
            if query.account_id.is_none()
                && query.fingerprint.is_none()
                && (query.error_type.is_some()
                    || query.actor_id.is_some()
                    || query.from.is_some()) =>
        {
            let accounts = sql.partner_accounts(partner);
            sql.push(&format!(
                "SELECT {EVENT_COLUMNS} FROM ({accounts}) a CROSS JOIN LATERAL \
                 (SELECT {EVENT_COLUMNS} FROM events e WHERE e.account_id = a.id AND e.kind = "
            ));
            true
        }
        _ => match query.fingerprint {
            // A group's events through the fingerprint index, newest first, each joined to
            // its row by position and partition key: the walk stops once the page is full.
            // The group's positions come from its index newest first (`OFFSET 0` keeps the
            // planner from flattening the walk into a scan of every threat event), and the
            // outer order is theirs, so the join stops once the page is full.
            Some(fingerprint) => {
                let placeholder = sql.bind(fingerprint);
                let before = match query.before_seq {
                    Some(before) => format!(" AND f.seq < {}", sql.bind(to_i64(before))),
                    None => String::new(),
                };
                sql.push(&format!(
                    "SELECT {EVENT_COLUMNS} FROM (SELECT f.seq, f.received_at \
                     FROM threat_fingerprints f WHERE f.fingerprint = {placeholder}{before} \
                     ORDER BY f.seq DESC OFFSET 0) f \
                     JOIN events e ON e.seq = f.seq AND e.received_at = f.received_at \
                     WHERE e.kind = "
                ));
                false
            }
            None => {
                sql.push(&format!(
                    "SELECT {EVENT_COLUMNS} FROM events e WHERE e.kind = "
                ));
                false
            }
        },
    };
    let kind = sql.bind(kind_code(query.kind));
    sql.push(&kind);
    // Purged events (their payload gone, see `crate::retention`) are never listed.
    sql.push(" AND e.purged_by IS NULL");
    if !per_account {
        sql.scope(scope, "e.account_id");
    }
    sql.equals("e.account_id", &query.account_id);
    // A time window is also a range of positions (migration 5): the index is read from the
    // window's first event, not down to the first event of the partition. Each bound is an
    // InitPlan, computed once for every partition and account of the statement.
    if let Some(from) = query.from {
        let placeholder = sql.bind(from.0);
        sql.push(&format!(
            " AND e.received_at >= {placeholder} \
             AND e.seq >= (SELECT logvault_first_seq_at({placeholder}))"
        ));
    }
    if let Some(to) = query.to {
        let placeholder = sql.bind(to.0);
        sql.push(&format!(
            " AND e.received_at < {placeholder} \
             AND e.seq < (SELECT logvault_first_seq_at({placeholder}))"
        ));
    }
    sql.equals("e.action", &query.action);
    sql.equals("e.outcome", &query.outcome);
    sql.equals("e.actor_id", &query.actor_id);
    sql.equals("e.request_id", &query.request_id);
    sql.equals("e.error_type", &query.error_type);
    sql.equals("e.source", &query.source);
    sql.equals("e.version", &query.version);
    sql.equals("e.environment", &query.environment);
    if let Some(range) = query.ip {
        let low = sql.bind(range.low.to_vec());
        let high = sql.bind(range.high.to_vec());
        sql.push(&format!(" AND e.ip BETWEEN {low} AND {high}"));
    }
    if let Some(text) = &query.text {
        // search_text is lower-cased by the core; the needle is lower-cased the same way.
        let needle = text.to_lowercase();
        if trigram {
            let placeholder = sql.bind(like_pattern(&needle));
            sql.push(&format!(" AND e.search_text LIKE {placeholder}"));
        } else {
            let placeholder = sql.bind(needle);
            sql.push(&format!(
                " AND position({placeholder} IN e.search_text) > 0"
            ));
        }
    }
    if let Some(before) = query.before_seq {
        let placeholder = sql.bind(to_i64(before));
        sql.push(&format!(" AND e.seq < {placeholder}"));
    }
    let limit = sql.bind(i64::try_from(query.limit).unwrap_or(i64::MAX - 1) + 1);
    sql.push(&format!(" ORDER BY e.seq DESC LIMIT {limit}"));
    if per_account {
        sql.push(&format!(") e ORDER BY e.seq DESC LIMIT {limit}"));
    }
    sql
}

pub(crate) async fn event(
    transaction: &Transaction<'_>,
    scope: &Scope,
    kind: EventKind,
    event_id: &str,
    account_id: Option<&str>,
) -> StoreResult<Lookup> {
    let mut found = event_sql(scope, kind, event_id, account_id)
        .query(transaction)
        .await?
        .iter()
        .map(event_from_row)
        .collect::<StoreResult<Vec<StoredEvent>>>()?;
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
) -> Sql {
    let mut sql = Sql::new(&format!(
        "SELECT {EVENT_COLUMNS} FROM event_ids i \
         JOIN events e ON e.seq = i.seq AND e.received_at = i.received_at WHERE i.event_id = "
    ));
    let id = sql.bind(event_id.to_string());
    let kind = sql.bind(kind_code(kind));
    sql.push(&format!("{id} AND i.kind = {kind} AND e.purged_by IS NULL"));
    sql.scope(scope, "i.account_id");
    sql.equals("i.account_id", &account_id.map(str::to_string));
    sql.push(" LIMIT 2");
    sql
}

pub(crate) async fn trends(
    transaction: &Transaction<'_>,
    scope: &Scope,
    query: &TrendQuery,
) -> StoreResult<Vec<TrendRow>> {
    let width = query.interval.micros();
    let (from, to) = trends::hour_range(query);
    let mut sql = Sql::new(&format!(
        "SELECT (t.hour / {width}) * {width} AS bucket, t.key, sum(t.count)::bigint \
         FROM event_trends t WHERE t.dimension = "
    ));
    let dimension = sql.bind(trends::dimension(query.group_by));
    let from = sql.bind(from);
    let to = sql.bind(to);
    sql.push(&format!(
        "{dimension} AND t.hour >= {from} AND t.hour < {to}"
    ));
    sql.scope(scope, "t.account_id");
    sql.equals("t.account_id", &query.account_id);
    sql.push(" GROUP BY 1, 2");
    if query.min_count > 1 {
        let min = sql.bind(i64::try_from(query.min_count).unwrap_or(i64::MAX));
        // sum(bigint) is numeric: type the bound so it is sent as a bigint.
        sql.push(&format!(" HAVING sum(t.count) >= {min}::bigint"));
    }
    sql.push(" ORDER BY 1, t.key COLLATE \"C\"");
    sql.query(transaction)
        .await?
        .iter()
        .map(|row| {
            Ok(TrendRow {
                bucket: Micros(get(row, 0)?),
                key: get(row, 1)?,
                count: get_u64(row, 2)?,
            })
        })
        .collect()
}

/// Events after `after_seq` in `seq` order, with their index columns.
pub(crate) async fn scan(
    transaction: &Transaction<'_>,
    scope: &Scope,
    after_seq: u64,
    limit: usize,
) -> StoreResult<Vec<ScannedEvent>> {
    let mut sql = Sql::new(&format!(
        "SELECT {EVENT_COLUMNS}, e.action, e.outcome, e.actor_id, e.ip, e.request_id, \
         e.error_type, e.source, e.version, e.environment, e.search_text, e.purged_by, \
         (SELECT f.fingerprint FROM threat_fingerprints f WHERE f.seq = e.seq) \
         FROM events e WHERE e.seq > "
    ));
    let after = sql.bind(to_i64(after_seq));
    sql.push(&after);
    sql.scope(scope, "e.account_id");
    let limit = sql.bind(i64::try_from(limit).unwrap_or(i64::MAX));
    sql.push(&format!(" ORDER BY e.seq LIMIT {limit}"));
    sql.query(transaction)
        .await?
        .iter()
        .map(|row| {
            let ip: Option<Vec<u8>> = get(row, 13)?;
            Ok(ScannedEvent {
                event: event_from_row(row)?,
                index: IndexFields {
                    action: get(row, 10)?,
                    outcome: get(row, 11)?,
                    actor_id: get(row, 12)?,
                    // A malformed stored address must be reported, not hidden: keep what
                    // can be kept and let verification compare.
                    ip: ip.map(|bytes| {
                        let mut address = [0xff; 16];
                        let n = bytes.len().min(16);
                        address[..n].copy_from_slice(&bytes[..n]);
                        address
                    }),
                    request_id: get(row, 14)?,
                    error_type: get(row, 15)?,
                    source: get(row, 16)?,
                    version: get(row, 17)?,
                    environment: get(row, 18)?,
                    search_text: get(row, 19)?,
                },
                search_text_stored: true,
                purged_by: get::<Option<i64>>(row, 20)?.and_then(|seq| u64::try_from(seq).ok()),
                fingerprint: get(row, 21)?,
            })
        })
        .collect()
}
