//! Retention on SQLite: policies, holds and purges (`logvault_store::retention` decides what
//! they mean). Changes and purges run in the writer, in the savepoint of the audit event that
//! records them; the `events_no_update` trigger (migration 4) lets a row change only as a
//! recorded purge of an expired event under no hold.

use logvault_core::event::IndexFields;
use logvault_core::{EventKind, Micros, Scope, StoredEvent};
use logvault_store::StoreResult;
use logvault_store::retention::{
    PurgeBatch, PurgeRecord, RetentionChange, RetentionState, StoredHold, StoredPolicy,
};
use logvault_store::trends::TrendCounts;
use rusqlite::types::Value;
use rusqlite::{Connection, Transaction, params, params_from_iter};

use crate::backend;
use crate::read::{EVENT_COLUMNS, event_from_row, kind_code, scope_clause};

fn kind_of(code: i64) -> EventKind {
    if code == 0 {
        EventKind::Audit
    } else {
        EventKind::Threat
    }
}

pub(crate) fn state(connection: &Connection) -> StoreResult<RetentionState> {
    let mut statement = connection
        .prepare_cached(
            "SELECT account_id, kind, days, archive, set_at FROM retention_policies \
             ORDER BY account_id, kind",
        )
        .map_err(backend)?;
    let policies = statement
        .query_map([], |row| {
            Ok(StoredPolicy {
                account_id: row.get(0)?,
                kind: kind_of(row.get(1)?),
                days: row.get(2)?,
                archive: row.get(3)?,
                set_at: Micros(row.get(4)?),
            })
        })
        .map_err(backend)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(backend)?;
    let mut statement = connection
        .prepare_cached("SELECT account_id, reason, placed_at FROM legal_holds ORDER BY account_id")
        .map_err(backend)?;
    let holds = statement
        .query_map([], |row| {
            Ok(StoredHold {
                account_id: row.get(0)?,
                reason: row.get(1)?,
                placed_at: Micros(row.get(2)?),
            })
        })
        .map_err(backend)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(backend)?;
    Ok(RetentionState { policies, holds })
}

/// Unpurged events of one account and kind received before `cutoff`, oldest first. Both
/// purged and expired events form a prefix of the account's events in `seq` order
/// (`received_at` never decreases along `seq`), so the walk starts after the last purge.
pub(crate) fn expired(
    connection: &Connection,
    account_id: &str,
    kind: EventKind,
    cutoff: Micros,
    limit: usize,
) -> StoreResult<Vec<StoredEvent>> {
    let sql = format!(
        "SELECT {EVENT_COLUMNS} FROM events INDEXED BY events_kind_account \
         WHERE kind = ?1 AND account_id = ?2 AND seq > \
           (SELECT coalesce(max(to_seq), 0) FROM purges WHERE account_id = ?2 AND kind = ?1) \
         AND received_at < ?3 AND purged_by IS NULL ORDER BY seq LIMIT ?4"
    );
    let mut statement = connection.prepare_cached(&sql).map_err(backend)?;
    let rows = statement
        .query_map(
            params![kind_code(kind), account_id, cutoff.0, limit as i64],
            event_from_row,
        )
        .map_err(backend)?;
    rows.collect::<rusqlite::Result<_>>().map_err(backend)
}

pub(crate) fn purges(connection: &Connection, scope: &Scope) -> StoreResult<Vec<PurgeRecord>> {
    let mut sql = "SELECT record_seq, account_id, kind, from_seq, to_seq, count, cutoff, days, \
                   source FROM purges WHERE 1 = 1"
        .to_string();
    let mut values: Vec<Value> = Vec::new();
    scope_clause(scope, "account_id", &mut sql, &mut values);
    sql.push_str(" ORDER BY record_seq");
    let mut statement = connection.prepare_cached(&sql).map_err(backend)?;
    let rows = statement
        .query_map(params_from_iter(values), |row| {
            Ok(PurgeRecord {
                record_seq: row.get(0)?,
                batch: PurgeBatch {
                    account_id: row.get(1)?,
                    kind: kind_of(row.get(2)?),
                    from_seq: row.get(3)?,
                    to_seq: row.get(4)?,
                    count: row.get(5)?,
                    cutoff: Micros(row.get(6)?),
                    days: row.get(7)?,
                    source: row.get(8)?,
                },
            })
        })
        .map_err(backend)?;
    rows.collect::<rusqlite::Result<_>>().map_err(backend)
}

/// Why the writer refuses a retention write: the request is refused, the batch goes on.
pub(crate) enum Refused {
    Invalid(String),
    Database(rusqlite::Error),
}

impl From<rusqlite::Error> for Refused {
    fn from(error: rusqlite::Error) -> Self {
        Refused::Database(error)
    }
}

pub(crate) fn change(
    transaction: &Transaction<'_>,
    change: &RetentionChange,
    now: Micros,
) -> Result<(), Refused> {
    match change {
        RetentionChange::SetPolicy {
            account_id,
            kind,
            policy: Some((days, archive)),
        } => {
            transaction.execute(
                "INSERT INTO retention_policies (account_id, kind, days, archive, set_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO UPDATE SET days = excluded.days, \
                 archive = excluded.archive, set_at = excluded.set_at",
                params![account_id, kind_code(*kind), days, archive, now.0],
            )?;
        }
        RetentionChange::SetPolicy {
            account_id,
            kind,
            policy: None,
        } => {
            transaction.execute(
                "DELETE FROM retention_policies WHERE account_id = ?1 AND kind = ?2",
                params![account_id, kind_code(*kind)],
            )?;
        }
        RetentionChange::PlaceHold { account_id, reason } => {
            transaction.execute(
                "INSERT INTO legal_holds (account_id, reason, placed_at) VALUES (?1, ?2, ?3) \
                 ON CONFLICT DO UPDATE SET reason = excluded.reason",
                params![account_id, reason, now.0],
            )?;
        }
        RetentionChange::LiftHold { account_id } => {
            let lifted = transaction.execute(
                "DELETE FROM legal_holds WHERE account_id = ?1",
                [account_id],
            )?;
            if lifted == 0 {
                return Err(Refused::Invalid(format!(
                    "account {account_id} is not under hold"
                )));
            }
        }
    }
    Ok(())
}

/// Purges `batch`, described by the event at `record_seq`, after checking that the stored
/// events still match it exactly; takes the purged events' counts out of `event_trends`, so
/// the rollup keeps counting exactly the events whose payload the log still holds.
pub(crate) fn purge(
    transaction: &Transaction<'_>,
    batch: &PurgeBatch,
    record_seq: u64,
) -> Result<(), Refused> {
    let held: bool = transaction.query_row(
        "SELECT EXISTS (SELECT 1 FROM legal_holds WHERE account_id = ?1 \
         OR account_id = (SELECT partner_id FROM accounts WHERE id = ?1))",
        [&batch.account_id],
        |row| row.get(0),
    )?;
    if held {
        return Err(Refused::Invalid(format!(
            "account {} is under legal hold",
            batch.account_id
        )));
    }
    let kind = kind_code(batch.kind);
    let mut statement = transaction.prepare_cached(
        "SELECT seq, received_at, body, ip, purged_by FROM events INDEXED BY events_kind_account \
         WHERE kind = ?1 AND account_id = ?2 AND seq BETWEEN ?3 AND ?4 ORDER BY seq",
    )?;
    let mut rows = statement.query(params![
        kind,
        batch.account_id,
        batch.from_seq,
        batch.to_seq
    ])?;
    let mut trends = TrendCounts::default();
    let mut columns = IndexFields::default();
    let (mut count, mut first, mut last) = (0u64, None, 0u64);
    while let Some(row) = rows.next()? {
        let seq: u64 = row.get(0)?;
        let received_at = Micros(row.get(1)?);
        let purged_by: Option<u64> = row.get(4)?;
        if purged_by.is_some() || received_at >= batch.cutoff {
            return Err(Refused::Invalid(format!(
                "event {seq} is already purged or not expired"
            )));
        }
        let body: String = row.get(2)?;
        if columns.set_from_body(batch.kind, &body) {
            let ip: Option<Vec<u8>> = row.get(3)?;
            columns.ip = ip.and_then(|ip| ip.try_into().ok());
            trends.count(batch.kind, &batch.account_id, received_at, &columns);
        }
        first.get_or_insert(seq);
        last = seq;
        count += 1;
    }
    if count != batch.count || first != Some(batch.from_seq) || last != batch.to_seq {
        return Err(Refused::Invalid(
            "the stored events no longer match the purge batch".into(),
        ));
    }
    transaction.execute(
        "INSERT INTO purges (record_seq, account_id, kind, from_seq, to_seq, count, cutoff, \
         days, source) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            record_seq,
            batch.account_id,
            kind,
            batch.from_seq,
            batch.to_seq,
            batch.count,
            batch.cutoff.0,
            batch.days,
            batch.source
        ],
    )?;
    transaction.execute(
        "UPDATE events INDEXED BY events_kind_account SET body = '{}', ip = NULL, \
         occurred_at = NULL, purged_by = ?5 \
         WHERE kind = ?1 AND account_id = ?2 AND seq BETWEEN ?3 AND ?4",
        params![
            kind,
            batch.account_id,
            batch.from_seq,
            batch.to_seq,
            record_seq
        ],
    )?;
    let mut subtract = transaction.prepare_cached(
        "UPDATE event_trends SET count = count - ?5 \
         WHERE dimension = ?1 AND account_id = ?2 AND hour = ?3 AND key = ?4",
    )?;
    let mut emptied = transaction.prepare_cached(
        "DELETE FROM event_trends \
         WHERE dimension = ?1 AND account_id = ?2 AND hour = ?3 AND key = ?4 AND count <= 0",
    )?;
    for (dimension, account, hour, key, n) in trends.rows() {
        subtract.execute(params![dimension, account, hour, key, n])?;
        emptied.execute(params![dimension, account, hour, key])?;
    }
    Ok(())
}
