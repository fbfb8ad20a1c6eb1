//! The trend rollup as verification reads it: the log size and every `event_trends` row in
//! one read transaction, so that (the writer updating both in the inserting transaction) the
//! counts are exactly those of the events up to that size.

use logvault_core::Scope;
use logvault_store::{StoreResult, StoredTrendRow, TrendSnapshot};
use rusqlite::{Connection, params_from_iter};

use crate::backend;
use crate::read::scope_clause;
use crate::tree;

/// The log size and the rollup rows of the accounts in `scope`, as of one commit.
pub(crate) fn trend_snapshot(connection: &Connection, scope: &Scope) -> StoreResult<TrendSnapshot> {
    // In WAL mode a read transaction sees one commit from its first read to its end.
    let transaction = connection.unchecked_transaction().map_err(backend)?;
    // The size verification checks the head by: that of the frontier.
    let log_size = tree::log_head(&transaction)?.size;
    let mut sql =
        "SELECT dimension, account_id, hour, key, count FROM event_trends WHERE 1".to_string();
    let mut values = Vec::new();
    scope_clause(scope, "account_id", &mut sql, &mut values);
    let rows = transaction
        .prepare(&sql)
        .map_err(backend)?
        .query_map(params_from_iter(values), |row| {
            Ok(StoredTrendRow {
                dimension: row.get(0)?,
                account_id: row.get(1)?,
                hour: row.get(2)?,
                key: row.get(3)?,
                count: row.get(4)?,
            })
        })
        .map_err(backend)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(backend)?;
    transaction.commit().map_err(backend)?;
    Ok(TrendSnapshot { log_size, rows })
}
