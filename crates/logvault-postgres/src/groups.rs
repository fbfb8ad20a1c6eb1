//! Threat event groups in PostgreSQL: the writer's upserts of what a transaction counted
//! ([`write`], under the log-head lock), the scoped reads of a group list or detail
//! ([`data`]), the snapshot `verify` compares ([`snapshot`]), and the counting of the events
//! stored before the tables existed ([`backfill`]). What is counted and what the statuses
//! mean is `logvault_store::groups`.

use std::collections::HashMap;

use deadpool_postgres::Client;
use logvault_core::merkle::Frontier;
use logvault_core::{Micros, Scope};
use logvault_store::groups::{
    GroupCounts, GroupData, GroupDataQuery, GroupHourKey, GroupRow, GroupSnapshot, ReturnRow,
};
use logvault_store::{StoreError, StoreResult};
use tokio_postgres::{GenericClient, IsolationLevel, Row};

use crate::backend;
use crate::sql::{Sql, get, to_i64};

/// Adds what `counts` holds to the group tables, inside the writer's transaction.
pub(crate) async fn write(
    transaction: &impl GenericClient,
    counts: &GroupCounts,
) -> StoreResult<()> {
    if counts.is_empty() {
        return Ok(());
    }
    let (accounts, fingerprints): (Vec<&str>, Vec<i64>) = counts.keys().unzip();
    let stored: HashMap<(String, i64), i64> = transaction
        .query(
            "SELECT g.account_id, g.fingerprint, g.last_seen FROM threat_groups g \
             JOIN unnest($1::text[], $2::bigint[]) AS k(account_id, fingerprint) \
             ON g.account_id = k.account_id AND g.fingerprint = k.fingerprint",
            &[&accounts, &fingerprints],
        )
        .await
        .map_err(backend)?
        .iter()
        .map(|row| Ok(((get(row, 0)?, get(row, 1)?), get(row, 2)?)))
        .collect::<StoreResult<_>>()?;

    let events = &counts.fingerprints;
    let seq: Vec<i64> = events.iter().map(|e| to_i64(e.seq)).collect();
    let received_at: Vec<i64> = events.iter().map(|e| e.received_at).collect();
    let account: Vec<&str> = events.iter().map(|e| e.account_id.as_str()).collect();
    let fingerprint: Vec<i64> = events.iter().map(|e| e.fingerprint).collect();
    transaction
        .execute(
            "INSERT INTO threat_fingerprints (seq, received_at, account_id, fingerprint) \
             SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::bigint[])",
            &[&seq, &received_at, &account, &fingerprint],
        )
        .await
        .map_err(backend)?;

    let groups: Vec<&GroupRow> = counts.groups().collect();
    let text = |field: fn(&GroupRow) -> &str| groups.iter().map(|g| field(g)).collect::<Vec<_>>();
    let number = |field: fn(&GroupRow) -> i64| groups.iter().map(|g| field(g)).collect::<Vec<_>>();
    transaction
        .execute(
            "INSERT INTO threat_groups (account_id, fingerprint, error_type, source, message, \
             location, first_seen, last_seen, count, first_version, first_environment) \
             SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], \
             $6::text[], $7::bigint[], $8::bigint[], $9::bigint[], $10::text[], $11::text[]) \
             ON CONFLICT (account_id, fingerprint) DO UPDATE SET \
             last_seen = greatest(threat_groups.last_seen, excluded.last_seen), \
             count = threat_groups.count + excluded.count",
            &[
                &text(|g| &g.account_id),
                &number(|g| g.fingerprint),
                &text(|g| &g.error_type),
                &text(|g| &g.source),
                &text(|g| &g.message),
                &text(|g| &g.location),
                &number(|g| g.first_seen),
                &number(|g| g.last_seen),
                &number(|g| g.count),
                &text(|g| &g.first_version),
                &text(|g| &g.first_environment),
            ],
        )
        .await
        .map_err(backend)?;

    let hours: Vec<(&GroupHourKey, i64)> = counts.hours().collect();
    let hour_text =
        |field: fn(&GroupHourKey) -> &str| hours.iter().map(|(k, _)| field(k)).collect::<Vec<_>>();
    let hour_number =
        |field: fn(&GroupHourKey) -> i64| hours.iter().map(|(k, _)| field(k)).collect::<Vec<_>>();
    let hour_counts: Vec<i64> = hours.iter().map(|(_, count)| *count).collect();
    transaction
        .execute(
            "INSERT INTO threat_group_hours (account_id, fingerprint, hour, version, \
             environment, count) \
             SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::text[], \
             $5::text[], $6::bigint[]) \
             ON CONFLICT (account_id, fingerprint, hour, version, environment) \
             DO UPDATE SET count = threat_group_hours.count + excluded.count",
            &[
                &hour_text(|k| &k.account_id),
                &hour_number(|k| k.fingerprint),
                &hour_number(|k| k.hour),
                &hour_text(|k| &k.version),
                &hour_text(|k| &k.environment),
                &hour_counts,
            ],
        )
        .await
        .map_err(backend)?;

    let returns = counts.returns(&stored);
    if !returns.is_empty() {
        let account: Vec<&str> = returns.iter().map(|r| r.account_id.as_str()).collect();
        let fingerprint: Vec<i64> = returns.iter().map(|r| r.fingerprint).collect();
        let returned_at: Vec<i64> = returns.iter().map(|r| r.returned_at).collect();
        let quiet_since: Vec<i64> = returns.iter().map(|r| r.quiet_since).collect();
        transaction
            .execute(
                "INSERT INTO threat_group_returns (account_id, fingerprint, returned_at, \
                 quiet_since) \
                 SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[]) \
                 ON CONFLICT DO NOTHING",
                &[&account, &fingerprint, &returned_at, &quiet_since],
            )
            .await
            .map_err(backend)?;
    }
    Ok(())
}

/// Threat events counted per backfill step.
const BACKFILL_CHUNK: i64 = 50_000;

/// Counts every threat event stored before the group tables existed (a purged one has no
/// body left to count), chunk by chunk in `seq` order, in the migration's transaction.
pub(crate) async fn backfill(transaction: &impl GenericClient) -> StoreResult<()> {
    // The event tables' row-level security shows nothing to a transaction without a scope.
    transaction
        .execute(
            "SELECT set_config('logvault.scope_kind', 'all', true), \
             set_config('logvault.scope_account', '', true)",
            &[],
        )
        .await
        .map_err(backend)?;
    let mut after = 0i64;
    loop {
        let rows = transaction
            .query(
                "SELECT seq, account_id, received_at, body, version, environment FROM events \
                 WHERE kind = 1 AND purged_by IS NULL AND seq > $1 ORDER BY seq LIMIT $2",
                &[&after, &BACKFILL_CHUNK],
            )
            .await
            .map_err(backend)?;
        let Some(last) = rows.last() else {
            return Ok(());
        };
        after = get(last, 0)?;
        let mut counts = GroupCounts::default();
        for row in &rows {
            let seq: i64 = get(row, 0)?;
            let account: String = get(row, 1)?;
            let body: String = get(row, 3)?;
            let version: Option<String> = get(row, 4)?;
            let environment: Option<String> = get(row, 5)?;
            counts.count(
                &account,
                u64::try_from(seq).unwrap_or_default(),
                Micros(get(row, 2)?),
                &body,
                version.as_deref(),
                environment.as_deref(),
            );
        }
        write(transaction, &counts).await?;
    }
}

const GROUP_COLUMNS: &str = "g.account_id, g.fingerprint, g.error_type, g.source, g.message, \
     g.location, g.first_seen, g.last_seen, g.count, g.first_version, g.first_environment";

fn group_from_row(row: &Row) -> StoreResult<GroupRow> {
    Ok(GroupRow {
        account_id: get(row, 0)?,
        fingerprint: get(row, 1)?,
        error_type: get(row, 2)?,
        source: get(row, 3)?,
        message: get(row, 4)?,
        location: get(row, 5)?,
        first_seen: get(row, 6)?,
        last_seen: get(row, 7)?,
        count: get(row, 8)?,
        first_version: get(row, 9)?,
        first_environment: get(row, 10)?,
    })
}

fn return_from_row(row: &Row) -> StoreResult<ReturnRow> {
    Ok(ReturnRow {
        account_id: get(row, 0)?,
        fingerprint: get(row, 1)?,
        quiet_since: get(row, 2)?,
        returned_at: get(row, 3)?,
    })
}

/// Appends the filters every hourly read shares: the group, environment and version.
fn hour_filters(query: &GroupDataQuery, sql: &mut Sql) {
    if let Some(fingerprint) = query.fingerprint {
        let placeholder = sql.bind(fingerprint);
        sql.push(&format!(" AND h.fingerprint = {placeholder}"));
    }
    sql.equals("h.environment", &query.environment);
    sql.equals("h.version", &query.version);
}

/// The statements [`data`] runs, in order: groups, totals, series, returns, version firsts.
pub(crate) fn data_sql(scope: &Scope, query: &GroupDataQuery) -> Vec<Sql> {
    let mut groups = Sql::new(&format!(
        "SELECT {GROUP_COLUMNS} FROM threat_groups g WHERE true"
    ));
    if let Some(fingerprint) = query.fingerprint {
        let placeholder = groups.bind(fingerprint);
        groups.push(&format!(" AND g.fingerprint = {placeholder}"));
    }
    groups.scope(scope, "g.account_id");

    let hourly = |select: &str, from_hour: i64, group_by: &str| {
        let mut sql = Sql::new(select);
        let from = sql.bind(from_hour);
        let to = sql.bind(query.to_hour);
        sql.push(&format!(" WHERE h.hour >= {from} AND h.hour < {to}"));
        hour_filters(query, &mut sql);
        sql.scope(scope, "h.account_id");
        sql.push(group_by);
        sql
    };
    let totals = hourly(
        "SELECT h.fingerprint, h.version, h.environment, sum(h.count)::bigint \
         FROM threat_group_hours h",
        query.from_hour,
        " GROUP BY 1, 2, 3",
    );
    let series = hourly(
        "SELECT h.fingerprint, h.hour, sum(h.count)::bigint FROM threat_group_hours h",
        query.series_from_hour,
        " GROUP BY 1, 2",
    );

    let returns_where = |sql: &mut Sql| {
        if let Some(fingerprint) = query.fingerprint {
            let placeholder = sql.bind(fingerprint);
            sql.push(&format!(" AND r.fingerprint = {placeholder}"));
        }
        sql.scope(scope, "r.account_id");
    };
    let mut returns = Sql::new(
        "SELECT r.account_id, r.fingerprint, r.quiet_since, r.returned_at \
         FROM threat_group_returns r WHERE true",
    );
    returns_where(&mut returns);
    let mut firsts = Sql::new(
        "SELECT h.account_id, h.fingerprint, h.version, min(h.hour) FROM threat_group_hours h \
         WHERE (h.account_id, h.fingerprint) IN \
         (SELECT r.account_id, r.fingerprint FROM threat_group_returns r WHERE true",
    );
    returns_where(&mut firsts);
    firsts.push(") GROUP BY 1, 2, 3");
    vec![groups, totals, series, returns, firsts]
}

/// The rows of the group tables `query` asks for, in `scope`, as of one snapshot.
pub(crate) async fn data(
    client: &mut Client,
    scope: &Scope,
    query: &GroupDataQuery,
) -> StoreResult<GroupData> {
    let transaction = client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .map_err(backend)?;
    crate::sql::set_scope(&transaction, scope).await?;
    let mut statements = data_sql(scope, query).into_iter();
    let mut next = || statements.next().unwrap_or_default();
    let groups = next()
        .query(&transaction)
        .await?
        .iter()
        .map(group_from_row)
        .collect::<StoreResult<_>>()?;
    let totals_sql = next();
    let totals = if query.totals {
        totals_sql
            .query(&transaction)
            .await?
            .iter()
            .map(|row| Ok((get(row, 0)?, get(row, 1)?, get(row, 2)?, get(row, 3)?)))
            .collect::<StoreResult<_>>()?
    } else {
        Vec::new()
    };
    let series = next()
        .query(&transaction)
        .await?
        .iter()
        .map(|row| Ok((get(row, 0)?, get(row, 1)?, get(row, 2)?)))
        .collect::<StoreResult<_>>()?;
    let returns: Vec<ReturnRow> = next()
        .query(&transaction)
        .await?
        .iter()
        .map(return_from_row)
        .collect::<StoreResult<_>>()?;
    let firsts_sql = next();
    let version_firsts = if returns.is_empty() {
        Vec::new()
    } else {
        firsts_sql
            .query(&transaction)
            .await?
            .iter()
            .map(|row| Ok((get(row, 0)?, get(row, 1)?, get(row, 2)?, get(row, 3)?)))
            .collect::<StoreResult<_>>()?
    };
    transaction.commit().await.map_err(backend)?;
    Ok(GroupData {
        groups,
        totals,
        series,
        returns,
        version_firsts,
    })
}

/// The log size and every group row of `scope`, as of one snapshot.
pub(crate) async fn snapshot(client: &mut Client, scope: &Scope) -> StoreResult<GroupSnapshot> {
    let transaction = client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .map_err(backend)?;
    crate::sql::set_scope(&transaction, scope).await?;
    let head = transaction
        .query_one("SELECT frontier FROM log_head WHERE id = 1", &[])
        .await
        .map_err(backend)?;
    let log_size = Frontier::from_bytes(&get::<Vec<u8>>(&head, 0)?)
        .map_err(|e| StoreError::Backend(format!("log_head.frontier is corrupt: {e}")))?
        .size();
    let mut groups_sql = Sql::new(&format!(
        "SELECT {GROUP_COLUMNS} FROM threat_groups g WHERE true"
    ));
    groups_sql.scope(scope, "g.account_id");
    let groups = groups_sql
        .query(&transaction)
        .await?
        .iter()
        .map(group_from_row)
        .collect::<StoreResult<_>>()?;
    let mut hours_sql = Sql::new(
        "SELECT h.account_id, h.fingerprint, h.hour, h.version, h.environment, h.count \
         FROM threat_group_hours h WHERE true",
    );
    hours_sql.scope(scope, "h.account_id");
    let hours = hours_sql
        .query(&transaction)
        .await?
        .iter()
        .map(|row| {
            Ok((
                GroupHourKey {
                    account_id: get(row, 0)?,
                    fingerprint: get(row, 1)?,
                    hour: get(row, 2)?,
                    version: get(row, 3)?,
                    environment: get(row, 4)?,
                },
                get(row, 5)?,
            ))
        })
        .collect::<StoreResult<_>>()?;
    let mut returns_sql = Sql::new(
        "SELECT r.account_id, r.fingerprint, r.quiet_since, r.returned_at \
         FROM threat_group_returns r WHERE true",
    );
    returns_sql.scope(scope, "r.account_id");
    let returns = returns_sql
        .query(&transaction)
        .await?
        .iter()
        .map(return_from_row)
        .collect::<StoreResult<_>>()?;
    transaction.commit().await.map_err(backend)?;
    Ok(GroupSnapshot {
        log_size,
        groups,
        hours,
        returns,
    })
}
