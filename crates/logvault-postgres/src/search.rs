//! Keeps the trigram index's pending list short, beside ingest rather than inside it (see
//! `migrations/0003_search_pending.sql` for why).

use std::time::Duration;

use logvault_store::StoreResult;
use tokio::task::JoinHandle;
use tokio_postgres::Client;

use crate::{backend, schema};

/// How often a merge runs. At 10,000 events/s that leaves a few megabytes for a search to
/// read besides the index.
const INTERVAL: Duration = Duration::from_millis(200);
/// The pause after a failed merge (a restarting server, a lost connection).
const RETRY: Duration = Duration::from_secs(5);

/// A writing session's own limit for a pending list before it merges the list itself: far
/// above what [`INTERVAL`] lets accumulate, so it only does so when the merges fall behind.
pub(crate) const WRITER_PENDING_LIMIT: &str = "SET gin_pending_list_limit = '16MB'";

/// Merges the pending lists of the log's trigram indexes (the owner's function).
pub(crate) const MERGE_EVENTS: &str = "SELECT logvault_merge_search_pending()";

/// A task that runs a merge `statement` every [`INTERVAL`] on a connection of its own until
/// it is dropped.
pub(crate) struct Merger(JoinHandle<()>);

impl Merger {
    pub(crate) fn start(config: tokio_postgres::Config, statement: &'static str) -> Self {
        Merger(tokio::spawn(async move {
            let mut client: Option<Client> = None;
            loop {
                let pause = match merge_once(&config, &mut client, statement).await {
                    Ok(()) => INTERVAL,
                    Err(error) => {
                        tracing::warn!(%error, "merging the text search index's pending list failed");
                        client = None;
                        RETRY
                    }
                };
                tokio::time::sleep(pause).await;
            }
        }))
    }
}

impl Drop for Merger {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn merge_once(
    config: &tokio_postgres::Config,
    client: &mut Option<Client>,
    statement: &str,
) -> StoreResult<()> {
    if client.as_ref().is_none_or(Client::is_closed) {
        *client = Some(schema::connect(config).await?);
    }
    if let Some(client) = client {
        client.execute(statement, &[]).await.map_err(backend)?;
    }
    Ok(())
}
