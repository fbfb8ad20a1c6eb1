//! Retention on PostgreSQL: policies, holds and purges (`logvault_store::retention` decides
//! what they mean). Changes and purges run in the writer, in the savepoint of the audit event
//! that records them, under the log-head lock; the `logvault_no_change` trigger (migration 4)
//! lets a row change only as a recorded purge of an expired event under no hold.
//!
//! Purges go row by row through that one narrow path rather than dropping monthly
//! partitions: a dropped partition would take the leaf hashes and sequence numbers with it,
//! which must stay for every proof.

use logvault_core::event::IndexFields;
use logvault_core::{EventKind, Micros, Scope, StoredEvent};
use logvault_store::retention::{
    PurgeBatch, PurgeRecord, RetentionChange, RetentionState, StoredHold, StoredPolicy,
};
use logvault_store::trends::TrendCounts;
use logvault_store::{StoreError, StoreResult};
use tokio_postgres::Transaction;

use crate::backend;
use crate::sql::{EVENT_COLUMNS, Sql, event_from_row, get, get_u64, kind_code, to_i64};

fn kind_of(code: i16) -> EventKind {
    if code == 0 {
        EventKind::Audit
    } else {
        EventKind::Threat
    }
}

fn days(row: &tokio_postgres::Row, index: usize) -> StoreResult<u32> {
    let days: i32 = get(row, index)?;
    u32::try_from(days).map_err(|_| StoreError::Backend(format!("negative days: {days}")))
}

pub(crate) async fn state(client: &deadpool_postgres::Client) -> StoreResult<RetentionState> {
    let policies = client
        .query(
            "SELECT account_id, kind, days, archive, set_at FROM retention_policies \
             ORDER BY account_id, kind",
            &[],
        )
        .await
        .map_err(backend)?
        .iter()
        .map(|row| {
            Ok(StoredPolicy {
                account_id: get(row, 0)?,
                kind: kind_of(get(row, 1)?),
                days: days(row, 2)?,
                archive: get(row, 3)?,
                set_at: Micros(get(row, 4)?),
            })
        })
        .collect::<StoreResult<Vec<_>>>()?;
    let holds = client
        .query(
            "SELECT account_id, reason, placed_at FROM legal_holds ORDER BY account_id",
            &[],
        )
        .await
        .map_err(backend)?
        .iter()
        .map(|row| {
            Ok(StoredHold {
                account_id: get(row, 0)?,
                reason: get(row, 1)?,
                placed_at: Micros(get(row, 2)?),
            })
        })
        .collect::<StoreResult<Vec<_>>>()?;
    Ok(RetentionState { policies, holds })
}

/// Unpurged events of one account and kind received before `cutoff`, oldest first: a prefix
/// of the account's events in `seq` order, starting after the last purge.
pub(crate) async fn expired(
    transaction: &deadpool_postgres::Transaction<'_>,
    account_id: &str,
    kind: EventKind,
    cutoff: Micros,
    limit: usize,
) -> StoreResult<Vec<StoredEvent>> {
    let rows = transaction
        .query(
            &format!(
                "SELECT {EVENT_COLUMNS} FROM events e \
                 WHERE e.kind = $1 AND e.account_id = $2 AND e.seq > \
                   (SELECT coalesce(max(to_seq), 0) FROM purges WHERE account_id = $2 AND kind = $1) \
                 AND e.received_at < $3 AND e.purged_by IS NULL ORDER BY e.seq LIMIT $4"
            ),
            &[
                &kind_code(kind),
                &account_id,
                &cutoff.0,
                &i64::try_from(limit).unwrap_or(i64::MAX),
            ],
        )
        .await
        .map_err(backend)?;
    rows.iter().map(event_from_row).collect()
}

pub(crate) async fn purges(
    transaction: &deadpool_postgres::Transaction<'_>,
    scope: &Scope,
) -> StoreResult<Vec<PurgeRecord>> {
    let mut sql = Sql::new(
        "SELECT record_seq, account_id, kind, from_seq, to_seq, count, cutoff, days, source \
         FROM purges WHERE true",
    );
    sql.scope(scope, "account_id");
    sql.push(" ORDER BY record_seq");
    sql.query(transaction)
        .await?
        .iter()
        .map(|row| {
            Ok(PurgeRecord {
                record_seq: get_u64(row, 0)?,
                batch: PurgeBatch {
                    account_id: get(row, 1)?,
                    kind: kind_of(get(row, 2)?),
                    from_seq: get_u64(row, 3)?,
                    to_seq: get_u64(row, 4)?,
                    count: get_u64(row, 5)?,
                    cutoff: Micros(get(row, 6)?),
                    days: days(row, 7)?,
                    source: get(row, 8)?,
                },
            })
        })
        .collect()
}

pub(crate) async fn change(
    transaction: &Transaction<'_>,
    change: &RetentionChange,
    now: Micros,
) -> StoreResult<()> {
    match change {
        RetentionChange::SetPolicy {
            account_id,
            kind,
            policy: Some((days, archive)),
        } => {
            let days = i32::try_from(*days)
                .map_err(|_| StoreError::Invalid(format!("{days} days is too long")))?;
            transaction
                .execute(
                    "INSERT INTO retention_policies (account_id, kind, days, archive, set_at) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (account_id, kind) DO UPDATE \
                     SET days = excluded.days, archive = excluded.archive, set_at = excluded.set_at",
                    &[account_id, &kind_code(*kind), &days, archive, &now.0],
                )
                .await
                .map_err(backend)?;
        }
        RetentionChange::SetPolicy {
            account_id,
            kind,
            policy: None,
        } => {
            transaction
                .execute(
                    "DELETE FROM retention_policies WHERE account_id = $1 AND kind = $2",
                    &[account_id, &kind_code(*kind)],
                )
                .await
                .map_err(backend)?;
        }
        RetentionChange::PlaceHold { account_id, reason } => {
            transaction
                .execute(
                    "INSERT INTO legal_holds (account_id, reason, placed_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (account_id) DO UPDATE SET reason = excluded.reason",
                    &[account_id, reason, &now.0],
                )
                .await
                .map_err(backend)?;
        }
        RetentionChange::LiftHold { account_id } => {
            let lifted = transaction
                .execute(
                    "DELETE FROM legal_holds WHERE account_id = $1",
                    &[account_id],
                )
                .await
                .map_err(backend)?;
            if lifted == 0 {
                return Err(StoreError::Invalid(format!(
                    "account {account_id} is not under hold"
                )));
            }
        }
    }
    Ok(())
}

/// Purges `batch`, described by the event at `record_seq`, after checking that the stored
/// events still match it exactly; takes the purged events' counts out of `event_trends`.
pub(crate) async fn purge(
    transaction: &Transaction<'_>,
    batch: &PurgeBatch,
    record_seq: u64,
) -> StoreResult<()> {
    let held: bool = transaction
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM legal_holds WHERE account_id = $1 \
             OR account_id = (SELECT partner_id FROM accounts WHERE id = $1))",
            &[&batch.account_id],
        )
        .await
        .map_err(backend)?
        .get(0);
    if held {
        return Err(StoreError::Invalid(format!(
            "account {} is under legal hold",
            batch.account_id
        )));
    }
    let kind = kind_code(batch.kind);
    let (from_seq, to_seq) = (to_i64(batch.from_seq), to_i64(batch.to_seq));
    let rows = transaction
        .query(
            "SELECT seq, received_at, body, purged_by FROM events \
             WHERE kind = $1 AND account_id = $2 AND seq BETWEEN $3 AND $4 ORDER BY seq",
            &[&kind, &batch.account_id, &from_seq, &to_seq],
        )
        .await
        .map_err(backend)?;
    let mut trends = TrendCounts::default();
    let (mut first, mut last) = (None, 0u64);
    for row in &rows {
        let seq = get_u64(row, 0)?;
        let received_at = Micros(get(row, 1)?);
        let purged_by: Option<i64> = get(row, 3)?;
        if purged_by.is_some() || received_at >= batch.cutoff {
            return Err(StoreError::Invalid(format!(
                "event {seq} is already purged or not expired"
            )));
        }
        let body: &str = get(row, 2)?;
        if let Some(columns) = IndexFields::from_body(batch.kind, body) {
            trends.count(batch.kind, &batch.account_id, received_at, &columns);
        }
        first.get_or_insert(seq);
        last = seq;
    }
    if rows.len() as u64 != batch.count || first != Some(batch.from_seq) || last != batch.to_seq {
        return Err(StoreError::Invalid(
            "the stored events no longer match the purge batch".into(),
        ));
    }
    let days = i32::try_from(batch.days).unwrap_or(i32::MAX);
    transaction
        .execute(
            "INSERT INTO purges (record_seq, account_id, kind, from_seq, to_seq, count, cutoff, \
             days, source) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            &[
                &to_i64(record_seq),
                &batch.account_id,
                &kind,
                &from_seq,
                &to_seq,
                &to_i64(batch.count),
                &batch.cutoff.0,
                &days,
                &batch.source,
            ],
        )
        .await
        .map_err(backend)?;
    transaction
        .execute(
            "UPDATE events SET body = '{}', search_text = '', occurred_at = NULL, action = NULL, \
             outcome = NULL, actor_id = NULL, ip = NULL, request_id = NULL, error_type = NULL, \
             source = NULL, version = NULL, environment = NULL, purged_by = $5 \
             WHERE kind = $1 AND account_id = $2 AND seq BETWEEN $3 AND $4",
            &[
                &kind,
                &batch.account_id,
                &from_seq,
                &to_seq,
                &to_i64(record_seq),
            ],
        )
        .await
        .map_err(backend)?;
    let columns = crate::writer::trend_columns(&trends);
    transaction
        .execute(
            "UPDATE event_trends t SET count = t.count - c.n \
             FROM unnest($1::smallint[], $2::text[], $3::bigint[], $4::text[], $5::bigint[]) \
               AS c(dimension, account_id, hour, key, n) \
             WHERE (t.dimension, t.account_id, t.hour, t.key) = (c.dimension, c.account_id, c.hour, c.key)",
            &[&columns.0, &columns.1, &columns.2, &columns.3, &columns.4],
        )
        .await
        .map_err(backend)?;
    transaction
        .execute(
            "DELETE FROM event_trends t USING unnest($1::smallint[], $2::text[], $3::bigint[], $4::text[]) \
               AS c(dimension, account_id, hour, key) \
             WHERE (t.dimension, t.account_id, t.hour, t.key) = (c.dimension, c.account_id, c.hour, c.key) \
               AND t.count <= 0",
            &[&columns.0, &columns.1, &columns.2, &columns.3],
        )
        .await
        .map_err(backend)?;
    Ok(())
}
