//! Keeps the trigram index's pending list short, beside ingest rather than inside it (see
//! `migrations/0003_search_pending.sql` for why).

use std::sync::Weak;
use std::time::Duration;

use logvault_store::StoreResult;
use tokio_postgres::Client;

use crate::{backend, schema};

/// How often a node merges the pending list. At 10,000 events/s that leaves a few megabytes
/// for a search to read besides the index.
const INTERVAL: Duration = Duration::from_millis(200);
/// The pause after a failed merge (a restarting server, a lost connection).
const RETRY: Duration = Duration::from_secs(5);

/// The writer's own limit for a pending list before it merges it itself: far above what
/// [`INTERVAL`] lets accumulate, so it only does so when the merges fall behind.
pub(crate) const WRITER_PENDING_LIMIT: &str = "SET gin_pending_list_limit = '16MB'";

/// Merges every few hundred milliseconds until the store that `alive` points to is dropped.
pub(crate) async fn merge_pending(config: tokio_postgres::Config, alive: Weak<()>) {
    let mut client: Option<Client> = None;
    while alive.upgrade().is_some() {
        let pause = match merge_once(&config, &mut client).await {
            Ok(()) => INTERVAL,
            Err(error) => {
                tracing::warn!(%error, "merging the text search index's pending list failed");
                client = None;
                RETRY
            }
        };
        tokio::time::sleep(pause).await;
    }
}

async fn merge_once(
    config: &tokio_postgres::Config,
    client: &mut Option<Client>,
) -> StoreResult<()> {
    if client.as_ref().is_none_or(Client::is_closed) {
        *client = Some(schema::connect(config).await?);
    }
    if let Some(client) = client {
        client
            .execute("SELECT logvault_merge_search_pending()", &[])
            .await
            .map_err(backend)?;
    }
    Ok(())
}
