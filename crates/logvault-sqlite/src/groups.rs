//! Threat event groups in SQLite: the writer's upserts of what a transaction counted
//! ([`write`]), the scoped reads of a group list or detail ([`data`]), the snapshot `verify`
//! compares ([`snapshot`]), and the counting of the events stored before the tables existed
//! ([`backfill`]). What is counted and what the statuses mean is `logvault_store::groups`.

use std::collections::HashMap;

use logvault_core::{Micros, Scope};
use logvault_store::StoreResult;
use logvault_store::groups::{
    GroupCounts, GroupData, GroupDataQuery, GroupHourKey, GroupRow, GroupSnapshot, ReturnRow,
};
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Row, Transaction, params, params_from_iter};

use crate::read::scope_clause;
use crate::{backend, tree};

/// Adds what `counts` holds to the group tables, inside the writer's transaction.
pub(crate) fn write(transaction: &Transaction<'_>, counts: &GroupCounts) -> rusqlite::Result<()> {
    if counts.is_empty() {
        return Ok(());
    }
    let mut stored = HashMap::new();
    {
        let mut last_seen = transaction.prepare_cached(
            "SELECT last_seen FROM threat_groups WHERE account_id = ?1 AND fingerprint = ?2",
        )?;
        for (account, fingerprint) in counts.keys() {
            let last: Option<i64> = last_seen
                .query_row(params![account, fingerprint], |row| row.get(0))
                .optional()?;
            if let Some(last) = last {
                stored.insert((account.to_string(), fingerprint), last);
            }
        }
    }
    let mut fingerprints = transaction
        .prepare_cached("INSERT INTO threat_fingerprints (seq, fingerprint) VALUES (?1, ?2)")?;
    for event in &counts.fingerprints {
        fingerprints.execute(params![event.seq, event.fingerprint])?;
    }
    let mut groups = transaction.prepare_cached(
        "INSERT INTO threat_groups (account_id, fingerprint, error_type, source, message, \
         location, first_seen, last_seen, count, first_version, first_environment) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) \
         ON CONFLICT DO UPDATE SET last_seen = max(last_seen, excluded.last_seen), \
         count = count + excluded.count",
    )?;
    for group in counts.groups() {
        groups.execute(params![
            group.account_id,
            group.fingerprint,
            group.error_type,
            group.source,
            group.message,
            group.location,
            group.first_seen,
            group.last_seen,
            group.count,
            group.first_version,
            group.first_environment,
        ])?;
    }
    let mut hours = transaction.prepare_cached(
        "INSERT INTO threat_group_hours (account_id, fingerprint, hour, version, environment, \
         count) VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
         ON CONFLICT DO UPDATE SET count = count + excluded.count",
    )?;
    for (key, count) in counts.hours() {
        hours.execute(params![
            key.account_id,
            key.fingerprint,
            key.hour,
            key.version,
            key.environment,
            count
        ])?;
    }
    let mut returns = transaction.prepare_cached(
        "INSERT OR IGNORE INTO threat_group_returns (account_id, fingerprint, returned_at, \
         quiet_since) VALUES (?1, ?2, ?3, ?4)",
    )?;
    for ret in counts.returns(&stored) {
        returns.execute(params![
            ret.account_id,
            ret.fingerprint,
            ret.returned_at,
            ret.quiet_since
        ])?;
    }
    Ok(())
}

/// Threat events counted per backfill step.
const BACKFILL_CHUNK: i64 = 50_000;

/// Counts every threat event stored before the group tables existed (a purged one has no
/// body left to count), chunk by chunk in `seq` order.
pub(crate) fn backfill(transaction: &Transaction<'_>) -> rusqlite::Result<()> {
    let mut after = 0i64;
    loop {
        let mut counts = GroupCounts::default();
        let mut last = None;
        {
            let mut statement = transaction.prepare(
                "SELECT seq, account_id, received_at, body, version, environment FROM events \
                 WHERE kind = 1 AND purged_by IS NULL AND seq > ?1 ORDER BY seq LIMIT ?2",
            )?;
            let mut rows = statement.query(params![after, BACKFILL_CHUNK])?;
            while let Some(row) = rows.next()? {
                let seq: i64 = row.get(0)?;
                let account: String = row.get(1)?;
                let body: String = row.get(3)?;
                let version: Option<String> = row.get(4)?;
                let environment: Option<String> = row.get(5)?;
                counts.count(
                    &account,
                    seq as u64,
                    Micros(row.get(2)?),
                    &body,
                    version.as_deref(),
                    environment.as_deref(),
                );
                last = Some(seq);
            }
        }
        let Some(last) = last else {
            return Ok(());
        };
        write(transaction, &counts)?;
        after = last;
    }
}

fn group_from_row(row: &Row<'_>) -> rusqlite::Result<GroupRow> {
    Ok(GroupRow {
        account_id: row.get(0)?,
        fingerprint: row.get(1)?,
        error_type: row.get(2)?,
        source: row.get(3)?,
        message: row.get(4)?,
        location: row.get(5)?,
        first_seen: row.get(6)?,
        last_seen: row.get(7)?,
        count: row.get(8)?,
        first_version: row.get(9)?,
        first_environment: row.get(10)?,
    })
}

const GROUP_COLUMNS: &str = "account_id, fingerprint, error_type, source, message, location, \
                             first_seen, last_seen, count, first_version, first_environment";

fn collect<T>(
    connection: &Connection,
    sql: &str,
    values: Vec<Value>,
    map: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
) -> StoreResult<Vec<T>> {
    let mut statement = connection.prepare_cached(sql).map_err(backend)?;
    let rows = statement
        .query_map(params_from_iter(values), map)
        .map_err(backend)?;
    rows.collect::<rusqlite::Result<_>>().map_err(backend)
}

/// Appends the filters every hourly read shares: the group, environment and version.
fn hour_filters(query: &GroupDataQuery, sql: &mut String, values: &mut Vec<Value>) {
    if let Some(fingerprint) = query.fingerprint {
        sql.push_str(" AND fingerprint = ?");
        values.push(Value::Integer(fingerprint));
    }
    if let Some(environment) = &query.environment {
        sql.push_str(" AND environment = ?");
        values.push(Value::Text(environment.clone()));
    }
    if let Some(version) = &query.version {
        sql.push_str(" AND version = ?");
        values.push(Value::Text(version.clone()));
    }
}

/// The statements [`data`] runs, in order: groups, totals, series, returns, version firsts.
pub(crate) fn data_sql(scope: &Scope, query: &GroupDataQuery) -> Vec<(String, Vec<Value>)> {
    let mut statements = Vec::new();
    let mut sql = format!("SELECT {GROUP_COLUMNS} FROM threat_groups WHERE 1");
    let mut values = Vec::new();
    if let Some(fingerprint) = query.fingerprint {
        sql.push_str(" AND fingerprint = ?");
        values.push(Value::Integer(fingerprint));
    }
    scope_clause(scope, "account_id", &mut sql, &mut values);
    statements.push((sql, values));

    let mut sql = "SELECT fingerprint, version, environment, sum(count) FROM threat_group_hours \
                   WHERE hour >= ? AND hour < ?"
        .to_string();
    let mut values = vec![
        Value::Integer(query.from_hour),
        Value::Integer(query.to_hour),
    ];
    hour_filters(query, &mut sql, &mut values);
    scope_clause(scope, "account_id", &mut sql, &mut values);
    sql.push_str(" GROUP BY fingerprint, version, environment");
    statements.push((sql, values));

    let mut sql = "SELECT fingerprint, hour, sum(count) FROM threat_group_hours \
                   WHERE hour >= ? AND hour < ?"
        .to_string();
    let mut values = vec![
        Value::Integer(query.series_from_hour),
        Value::Integer(query.to_hour),
    ];
    hour_filters(query, &mut sql, &mut values);
    scope_clause(scope, "account_id", &mut sql, &mut values);
    sql.push_str(" GROUP BY fingerprint, hour");
    statements.push((sql, values));

    let mut returns_where = " WHERE 1".to_string();
    let mut returns_values = Vec::new();
    if let Some(fingerprint) = query.fingerprint {
        returns_where.push_str(" AND fingerprint = ?");
        returns_values.push(Value::Integer(fingerprint));
    }
    scope_clause(scope, "account_id", &mut returns_where, &mut returns_values);
    statements.push((
        format!(
            "SELECT account_id, fingerprint, quiet_since, returned_at FROM threat_group_returns{returns_where}"
        ),
        returns_values.clone(),
    ));
    statements.push((
        format!(
            "SELECT account_id, fingerprint, version, min(hour) FROM threat_group_hours \
             WHERE (account_id, fingerprint) IN \
             (SELECT account_id, fingerprint FROM threat_group_returns{returns_where}) \
             GROUP BY account_id, fingerprint, version"
        ),
        returns_values,
    ));
    statements
}

/// The rows of the group tables `query` asks for, in `scope`, as of one commit.
pub(crate) fn data(
    connection: &Connection,
    scope: &Scope,
    query: &GroupDataQuery,
) -> StoreResult<GroupData> {
    let transaction = connection.unchecked_transaction().map_err(backend)?;
    let mut statements = data_sql(scope, query).into_iter();
    let mut next = || statements.next().unwrap_or_default();
    let (sql, values) = next();
    let groups = collect(&transaction, &sql, values, group_from_row)?;
    let (sql, values) = next();
    let totals = if query.totals {
        collect(&transaction, &sql, values, |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
        })?
    } else {
        Vec::new()
    };
    let (sql, values) = next();
    let series = collect(&transaction, &sql, values, |row| {
        Ok((row.get(0)?, row.get(1)?, row.get(2)?))
    })?;
    let (sql, values) = next();
    let returns = collect(&transaction, &sql, values, return_from_row)?;
    let (sql, values) = next();
    let version_firsts = if returns.is_empty() {
        Vec::new()
    } else {
        collect(&transaction, &sql, values, |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
        })?
    };
    transaction.commit().map_err(backend)?;
    Ok(GroupData {
        groups,
        totals,
        series,
        returns,
        version_firsts,
    })
}

fn return_from_row(row: &Row<'_>) -> rusqlite::Result<ReturnRow> {
    Ok(ReturnRow {
        account_id: row.get(0)?,
        fingerprint: row.get(1)?,
        quiet_since: row.get(2)?,
        returned_at: row.get(3)?,
    })
}

/// The log size and every group row of `scope`, as of one commit.
pub(crate) fn snapshot(connection: &Connection, scope: &Scope) -> StoreResult<GroupSnapshot> {
    let transaction = connection.unchecked_transaction().map_err(backend)?;
    let log_size = tree::log_head(&transaction)?.size;
    let scoped = |select: &str| {
        let mut sql = format!("{select} WHERE 1");
        let mut values = Vec::new();
        scope_clause(scope, "account_id", &mut sql, &mut values);
        (sql, values)
    };
    let (sql, values) = scoped(&format!("SELECT {GROUP_COLUMNS} FROM threat_groups"));
    let groups = collect(&transaction, &sql, values, group_from_row)?;
    let (sql, values) = scoped(
        "SELECT account_id, fingerprint, hour, version, environment, count FROM threat_group_hours",
    );
    let hours = collect(&transaction, &sql, values, |row| {
        Ok((
            GroupHourKey {
                account_id: row.get(0)?,
                fingerprint: row.get(1)?,
                hour: row.get(2)?,
                version: row.get(3)?,
                environment: row.get(4)?,
            },
            row.get(5)?,
        ))
    })?;
    let (sql, values) = scoped(
        "SELECT account_id, fingerprint, quiet_since, returned_at FROM threat_group_returns",
    );
    let returns = collect(&transaction, &sql, values, return_from_row)?;
    transaction.commit().map_err(backend)?;
    Ok(GroupSnapshot {
        log_size,
        groups,
        hours,
        returns,
    })
}
