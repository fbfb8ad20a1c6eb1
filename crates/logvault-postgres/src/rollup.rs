//! The trend rollup as verification reads it: the log size and every `event_trends` row in
//! one REPEATABLE READ transaction, so that (every node's writer updating both in the
//! inserting transaction) the counts are exactly those of the events up to that size.

use deadpool_postgres::Client;
use futures_util::TryStreamExt;
use logvault_core::Scope;
use logvault_core::merkle::Frontier;
use logvault_store::{StoreError, StoreResult, StoredTrendRow, TrendSnapshot};
use tokio_postgres::IsolationLevel;

use crate::backend;
use crate::sql::{Sql, get, set_scope};

/// The log size and the rollup rows of the accounts in `scope`, as of one snapshot.
pub(crate) async fn trend_snapshot(
    client: &mut Client,
    scope: &Scope,
) -> StoreResult<TrendSnapshot> {
    // READ COMMITTED, the default, would take a new snapshot per statement.
    let transaction = client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .map_err(backend)?;
    set_scope(&transaction, scope).await?;
    // The size verification checks the head by: that of the frontier.
    let head = transaction
        .query_one("SELECT frontier FROM log_head WHERE id = 1", &[])
        .await
        .map_err(backend)?;
    let log_size = Frontier::from_bytes(&get::<Vec<u8>>(&head, 0)?)
        .map_err(|e| StoreError::Backend(format!("log_head.frontier is corrupt: {e}")))?
        .size();
    let mut sql = Sql::new(
        "SELECT t.dimension, t.account_id, t.hour, t.key, t.count FROM event_trends t WHERE true",
    );
    sql.scope(scope, "t.account_id");
    let statement = transaction
        .prepare_cached(&sql.text)
        .await
        .map_err(backend)?;
    // Streamed: the rows are held once, as they are kept.
    let rows = transaction
        .query_raw(&statement, sql.params())
        .await
        .map_err(backend)?
        .map_err(backend)
        .and_then(|row| async move {
            Ok(StoredTrendRow {
                dimension: get::<i16>(&row, 0)?.into(),
                account_id: get(&row, 1)?,
                hour: get(&row, 2)?,
                key: get(&row, 3)?,
                count: get(&row, 4)?,
            })
        })
        .try_collect()
        .await?;
    transaction.commit().await.map_err(backend)?;
    Ok(TrendSnapshot { log_size, rows })
}
