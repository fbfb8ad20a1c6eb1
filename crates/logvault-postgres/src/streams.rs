//! SIEM stream cursors (migration 6): the last `seq` each stream delivered, advanced only
//! forward, so a node that lagged behind another cannot move a cursor back.

use logvault_core::Micros;
use logvault_store::StoreResult;

use crate::backend;
use crate::sql::{get_u64, to_i64};

pub(crate) async fn cursor(client: &deadpool_postgres::Client, name: &str) -> StoreResult<u64> {
    let statement = client
        .prepare_cached("SELECT seq FROM stream_cursors WHERE name = $1")
        .await
        .map_err(backend)?;
    match client
        .query_opt(&statement, &[&name])
        .await
        .map_err(backend)?
    {
        Some(row) => get_u64(&row, 0),
        None => Ok(0),
    }
}

pub(crate) async fn set_cursor(
    client: &deadpool_postgres::Client,
    name: &str,
    seq: u64,
) -> StoreResult<()> {
    let statement = client
        .prepare_cached(
            "INSERT INTO stream_cursors (name, seq, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE \
             SET seq = GREATEST(stream_cursors.seq, excluded.seq), \
                 updated_at = excluded.updated_at",
        )
        .await
        .map_err(backend)?;
    client
        .execute(&statement, &[&name, &to_i64(seq), &Micros::now().0])
        .await
        .map_err(backend)?;
    Ok(())
}
