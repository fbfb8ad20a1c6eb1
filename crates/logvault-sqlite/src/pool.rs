//! A small pool of read-only connections, each with the text search index attached;
//! queries run on the blocking thread pool.

use std::path::Path;
use std::sync::{Arc, Mutex};

use logvault_store::{StoreError, StoreResult};
use rusqlite::Connection;
use tokio::sync::Semaphore;

use crate::{schema, search};

/// Read-only connections handed out one query at a time.
pub(crate) struct ReaderPool {
    idle: Arc<Mutex<Vec<Connection>>>,
    available: Arc<Semaphore>,
}

impl ReaderPool {
    pub(crate) fn open(path: &Path, size: usize) -> StoreResult<Self> {
        let connections = (0..size)
            .map(|_| {
                let connection = schema::open_read_only(path)?;
                search::attach(&connection, path)?;
                Ok(connection)
            })
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(ReaderPool {
            idle: Arc::new(Mutex::new(connections)),
            available: Arc::new(Semaphore::new(size)),
        })
    }

    /// Runs `work` on an idle connection, waiting for one if all are busy.
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        let permit = self
            .available
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Unavailable("reader pool closed".into()))?;
        let idle = self.idle.clone();
        tokio::task::spawn_blocking(move || {
            let connection = idle
                .lock()
                .map_err(|_| StoreError::Backend("reader pool poisoned".into()))?
                .pop()
                .ok_or_else(|| StoreError::Backend("reader pool empty".into()))?;
            let result = work(&connection);
            if let Ok(mut idle) = idle.lock() {
                idle.push(connection);
            }
            drop(permit);
            result
        })
        .await
        .map_err(|e| StoreError::Backend(format!("query task failed: {e}")))?
    }
}
