//! The embedded default store: SQLite in WAL mode with `synchronous=FULL`, one writer thread
//! that group-commits concurrent requests into one transaction, and a pool of read-only
//! connections for queries.

mod accounts;
mod ceiling;
mod embed;
mod event_id;
mod groups;
mod people;
mod plans;
mod pool;
mod read;
mod retention;
mod rollup;
mod schema;
mod search;
mod streams;
mod tree;
mod window;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use logvault_core::account::NewAccount;
use logvault_core::merkle::Hash;
use logvault_core::{Account, EventKind, Micros, NewEvent, Scope, StoredEvent};
use logvault_store::embed::{EmbedSettings, Redemption, ViewerTokenRecord};
use logvault_store::queue::WriteQueue;
use logvault_store::retention::{
    PurgeBatch, PurgeRecord, RetentionChange, RetentionState, RetentionWrite,
};
use logvault_store::{
    EventQuery, IngestOutcome, KeyRecord, LogHead, Lookup, Page, ScannedEvent, SessionRecord,
    Store, StoreError, StoreMetrics, StoreResult, StoredCheckpoint, TrendQuery, TrendRow,
    UserRecord,
};

pub use crate::ceiling::{insert_ceiling, storage_bytes};
pub use crate::plans::read_plans;
use crate::pool::ReaderPool;
pub use crate::search::{SEARCH_FILE, search_index_lag};
use crate::writer::Writer;

/// Name of the database file inside the data directory.
pub const DB_FILE: &str = "logvault.db";

/// Tunables of the SQLite store.
#[derive(Debug, Clone)]
pub struct SqliteConfig {
    /// Events that may wait for the writer before ingest answers "overloaded".
    pub max_queued_events: usize,
    /// Most events committed in one transaction.
    pub max_batch_events: usize,
    /// Read-only connections for queries.
    pub readers: usize,
    /// Newest rows a partner or admin page scans backwards before using the index.
    pub recent_window: u64,
    /// WAL size above which the checkpointer waits for a moment without readers and writers
    /// to truncate it: under sustained ingest the WAL never empties by itself.
    pub wal_limit_bytes: u64,
}

impl Default for SqliteConfig {
    fn default() -> Self {
        SqliteConfig {
            max_queued_events: 100_000,
            max_batch_events: 20_000,
            readers: 4,
            recent_window: 100_000,
            wal_limit_bytes: 512 << 20,
        }
    }
}

/// logvault's store on one SQLite file.
pub struct SqliteStore {
    path: PathBuf,
    /// Dropping the queue stops the writer once it has answered every queued request.
    queue: Option<WriteQueue>,
    recent_window: u64,
    writer_thread: Option<std::thread::JoinHandle<()>>,
    /// Dropping the sender stops the WAL checkpoint thread.
    wal_checkpointer: Option<Stoppable>,
    /// Dropping the sender stops the text search indexer.
    indexer: Option<Stoppable>,
    readers: ReaderPool,
    /// Roots of complete subtrees computed for proofs so far.
    subtree_roots: Arc<tree::SubtreeRoots>,
    admin: Arc<std::sync::Mutex<rusqlite::Connection>>,
    metrics: Arc<StoreMetrics>,
}

impl SqliteStore {
    fn queue(&self) -> StoreResult<&WriteQueue> {
        self.queue
            .as_ref()
            .ok_or_else(|| StoreError::Unavailable("closed".into()))
    }

    /// Opens (creating if needed) the store in `data_dir`, applying migrations. Refuses to open
    /// if SQLite cannot give WAL mode with `synchronous=FULL`.
    pub fn open(data_dir: &Path, config: SqliteConfig) -> StoreResult<Self> {
        std::fs::create_dir_all(data_dir).map_err(|e| {
            StoreError::Unavailable(format!("cannot create {}: {e}", data_dir.display()))
        })?;
        let path = data_dir.join(DB_FILE);
        let mut admin = schema::open_writable(&path)?;
        schema::migrate(&mut admin)?;
        let metrics = Arc::new(StoreMetrics::default());
        let (queue, receiver) = WriteQueue::new(config.max_queued_events, metrics.clone());
        let writer_connection = schema::open_writable(&path)?;
        // The writer never checkpoints the WAL itself; a helper thread does, on the other core.
        writer_connection
            .execute_batch("PRAGMA wal_autocheckpoint = 0;")
            .map_err(backend)?;
        let writer = Writer::new(writer_connection, config.max_batch_events, metrics.clone());
        let writer_thread = std::thread::Builder::new()
            .name("logvault-writer".into())
            .spawn(move || writer.run(receiver))
            .map_err(|e| StoreError::Unavailable(format!("cannot start the writer: {e}")))?;
        let wal_checkpointer =
            spawn_wal_checkpointer(schema::open_writable(&path)?, config.wal_limit_bytes)?;
        let index = search::open_index(&path)?;
        let indexer = spawn_stoppable("logvault-search", {
            let log = schema::open_read_only(&path)?;
            move |stop| search::run_indexer(log, index, stop)
        })?;
        Ok(SqliteStore {
            wal_checkpointer: Some(wal_checkpointer),
            indexer: Some(indexer),
            readers: ReaderPool::open(&path, config.readers.max(1))?,
            subtree_roots: Arc::default(),
            path,
            queue: Some(queue),
            recent_window: config.recent_window,
            writer_thread: Some(writer_thread),
            admin: Arc::new(std::sync::Mutex::new(admin)),
            metrics,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Waits until the text search index covers the whole log as it is now (the indexer
    /// follows the writer a moment behind; answers are exact either way).
    pub async fn wait_for_search_index(&self) -> StoreResult<()> {
        let size = self.log_size().await?;
        loop {
            let indexed = self.readers.run(search::indexed_upto).await?;
            if indexed >= size {
                return Ok(());
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// Runs `work` on the connection used for account and key changes.
    async fn with_admin<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut rusqlite::Connection) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        let admin = self.admin.clone();
        tokio::task::spawn_blocking(move || {
            let mut connection = admin
                .lock()
                .map_err(|_| StoreError::Backend("admin connection poisoned".into()))?;
            work(&mut connection)
        })
        .await
        .map_err(|e| StoreError::Backend(format!("admin task failed: {e}")))?
    }
}

impl Drop for SqliteStore {
    /// Closes the queue and waits for the writer to commit what it already accepted.
    fn drop(&mut self) {
        self.queue.take();
        if let Some(thread) = self.writer_thread.take() {
            let _ = thread.join();
        }
        for (stop, thread) in [self.wal_checkpointer.take(), self.indexer.take()]
            .into_iter()
            .flatten()
        {
            drop(stop);
            let _ = thread.join();
        }
    }
}

/// Copies committed WAL pages into the database file every half second, so the writer thread
/// spends its time on inserts. PASSIVE never blocks readers or the writer, but it never
/// empties the WAL either: under sustained ingest the writer restarts the WAL only when a
/// checkpoint has caught up with it at the moment it begins, which may never happen, and the
/// file grows until the disk is full (a 10 M-event benchmark run reached 26 GB). So once the
/// WAL passes `limit_bytes`, a TRUNCATE checkpoint waits (up to the busy timeout) for the
/// readers and holds the writer back for the moment it takes to copy the few pages PASSIVE
/// has not, then empties the file.
fn spawn_wal_checkpointer(
    connection: rusqlite::Connection,
    limit_bytes: u64,
) -> StoreResult<Stoppable> {
    let wal = connection
        .path()
        .map(|db| PathBuf::from(format!("{db}-wal")));
    spawn_stoppable("logvault-wal", move |stopped| {
        while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
            stopped.recv_timeout(std::time::Duration::from_millis(500))
        {
            let wal_bytes = wal
                .as_ref()
                .and_then(|wal| std::fs::metadata(wal).ok())
                .map_or(0, |metadata| metadata.len());
            let mode = if wal_bytes > limit_bytes {
                "TRUNCATE"
            } else {
                "PASSIVE"
            };
            let sql = format!("PRAGMA wal_checkpoint({mode})");
            match connection.query_row(&sql, [], |row| row.get::<_, i64>(0)) {
                Ok(0) => {}
                Ok(_) => {
                    tracing::warn!(wal_bytes, "WAL {mode} checkpoint was blocked; will retry")
                }
                Err(error) => tracing::warn!(%error, "WAL checkpoint failed; will retry"),
            }
        }
    })
}

/// A background thread and the sender whose drop tells it to stop.
type Stoppable = (std::sync::mpsc::Sender<()>, std::thread::JoinHandle<()>);

/// Starts `work` on a thread named `name`; it should return once its receiver says the
/// sender is gone.
fn spawn_stoppable(
    name: &str,
    work: impl FnOnce(std::sync::mpsc::Receiver<()>) + Send + 'static,
) -> StoreResult<Stoppable> {
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    let thread = std::thread::Builder::new()
        .name(name.into())
        .spawn(move || work(stopped))
        .map_err(|e| StoreError::Unavailable(format!("cannot start {name}: {e}")))?;
    Ok((stop, thread))
}

/// Maps SQLite errors into the store's error type.
pub(crate) fn backend(error: rusqlite::Error) -> StoreError {
    StoreError::Backend(error.to_string())
}

#[async_trait]
impl Store for SqliteStore {
    async fn create_account(&self, new: NewAccount) -> StoreResult<Account> {
        self.with_admin(move |connection| accounts::create_account(connection, new))
            .await
    }

    async fn list_accounts(&self, scope: &Scope) -> StoreResult<Vec<Account>> {
        let scope = scope.clone();
        self.readers
            .run(move |connection| accounts::list(connection, &scope, None))
            .await
    }

    async fn accounts_in_scope(&self, scope: &Scope, ids: &[String]) -> StoreResult<Vec<Account>> {
        let (scope, ids) = (scope.clone(), ids.to_vec());
        self.readers
            .run(move |connection| accounts::list(connection, &scope, Some(&ids)))
            .await
    }

    async fn create_key(&self, key: KeyRecord) -> StoreResult<()> {
        self.with_admin(move |connection| accounts::create_key(connection, &key))
            .await
    }

    async fn key(&self, key_id: &str) -> StoreResult<Option<KeyRecord>> {
        let key_id = key_id.to_string();
        self.readers
            .run(move |connection| accounts::key(connection, &key_id))
            .await
    }

    async fn list_keys(&self) -> StoreResult<Vec<KeyRecord>> {
        self.readers.run(accounts::list_keys).await
    }

    async fn revoke_key(&self, key_id: &str) -> StoreResult<bool> {
        let key_id = key_id.to_string();
        self.with_admin(move |connection| accounts::revoke_key(connection, &key_id))
            .await
    }

    async fn create_user(&self, user: UserRecord) -> StoreResult<()> {
        self.with_admin(move |connection| people::create_user(connection, &user))
            .await
    }

    async fn user_by_name(&self, username: &str) -> StoreResult<Option<UserRecord>> {
        let username = username.to_string();
        self.readers
            .run(move |connection| people::user_by_name(connection, &username))
            .await
    }

    async fn list_users(&self) -> StoreResult<Vec<UserRecord>> {
        self.readers.run(people::list_users).await
    }

    async fn create_session(&self, session: SessionRecord) -> StoreResult<()> {
        self.with_admin(move |connection| people::create_session(connection, &session))
            .await
    }

    async fn session(&self, token_hash: &[u8]) -> StoreResult<Option<(SessionRecord, UserRecord)>> {
        let token_hash = token_hash.to_vec();
        self.readers
            .run(move |connection| people::session(connection, &token_hash))
            .await
    }

    async fn end_session(&self, token_hash: &[u8]) -> StoreResult<bool> {
        let token_hash = token_hash.to_vec();
        self.with_admin(move |connection| people::end_session(connection, &token_hash))
            .await
    }

    async fn set_password(&self, user_id: &str, password_hash: &str) -> StoreResult<Option<u64>> {
        let (user_id, password_hash) = (user_id.to_string(), password_hash.to_string());
        self.with_admin(move |connection| {
            people::set_password(connection, &user_id, &password_hash)
        })
        .await
    }

    async fn ingest(&self, events: Vec<NewEvent>) -> StoreResult<Vec<IngestOutcome>> {
        self.queue()?.submit(events).await
    }

    async fn query(&self, scope: &Scope, query: &EventQuery) -> StoreResult<Page> {
        let (scope, query, window) = (scope.clone(), query.clone(), self.recent_window);
        self.readers
            .run(move |connection| read::query(connection, &scope, &query, window))
            .await
    }

    async fn event(
        &self,
        scope: &Scope,
        kind: EventKind,
        event_id: &str,
        account_id: Option<&str>,
    ) -> StoreResult<Lookup> {
        let (scope, event_id) = (scope.clone(), event_id.to_string());
        let account_id = account_id.map(str::to_string);
        self.readers
            .run(move |connection| {
                read::event(connection, &scope, kind, &event_id, account_id.as_deref())
            })
            .await
    }

    async fn trends(&self, scope: &Scope, query: &TrendQuery) -> StoreResult<Vec<TrendRow>> {
        let (scope, query) = (scope.clone(), query.clone());
        self.readers
            .run(move |connection| read::trends(connection, &scope, &query))
            .await
    }

    async fn log_size(&self) -> StoreResult<u64> {
        self.readers.run(read::log_size).await
    }

    async fn log_head(&self) -> StoreResult<LogHead> {
        self.readers.run(tree::log_head).await
    }

    async fn scan(
        &self,
        scope: &Scope,
        after_seq: u64,
        limit: usize,
    ) -> StoreResult<Vec<ScannedEvent>> {
        let scope = scope.clone();
        self.readers
            .run(move |connection| read::scan(connection, &scope, after_seq, limit))
            .await
    }

    async fn trend_snapshot(&self, scope: &Scope) -> StoreResult<logvault_store::TrendSnapshot> {
        let scope = scope.clone();
        self.readers
            .run(move |connection| rollup::trend_snapshot(connection, &scope))
            .await
    }

    async fn threat_group_data(
        &self,
        scope: &Scope,
        query: &logvault_store::groups::GroupDataQuery,
    ) -> StoreResult<logvault_store::groups::GroupData> {
        let (scope, query) = (scope.clone(), query.clone());
        self.readers
            .run(move |connection| groups::data(connection, &scope, &query))
            .await
    }

    async fn group_snapshot(
        &self,
        scope: &Scope,
    ) -> StoreResult<logvault_store::groups::GroupSnapshot> {
        let scope = scope.clone();
        self.readers
            .run(move |connection| groups::snapshot(connection, &scope))
            .await
    }

    async fn retention_state(&self) -> StoreResult<RetentionState> {
        self.readers.run(retention::state).await
    }

    async fn change_retention(
        &self,
        change: RetentionChange,
        record: NewEvent,
    ) -> StoreResult<IngestOutcome> {
        self.queue()?
            .submit_retention(record, RetentionWrite::Change(change))
            .await
    }

    async fn expired(
        &self,
        account_id: &str,
        kind: EventKind,
        cutoff: Micros,
        limit: usize,
    ) -> StoreResult<Vec<StoredEvent>> {
        let account_id = account_id.to_string();
        self.readers
            .run(move |connection| retention::expired(connection, &account_id, kind, cutoff, limit))
            .await
    }

    async fn purge(&self, batch: PurgeBatch) -> StoreResult<PurgeRecord> {
        self.queue()?.submit_purge(batch).await
    }

    async fn purges(&self, scope: &Scope) -> StoreResult<Vec<PurgeRecord>> {
        let scope = scope.clone();
        self.readers
            .run(move |connection| retention::purges(connection, &scope))
            .await
    }

    async fn stream_cursor(&self, name: &str) -> StoreResult<u64> {
        let name = name.to_string();
        self.readers
            .run(move |connection| streams::cursor(connection, &name))
            .await
    }

    async fn set_stream_cursor(&self, name: &str, seq: u64) -> StoreResult<()> {
        let name = name.to_string();
        self.with_admin(move |connection| streams::set_cursor(connection, &name, seq))
            .await
    }

    async fn create_viewer_token(&self, token: ViewerTokenRecord) -> StoreResult<()> {
        self.with_admin(move |connection| embed::create_token(connection, &token))
            .await
    }

    async fn redeem_viewer_token(
        &self,
        token_hash: &[u8],
        session_hash: &[u8],
        now: Micros,
        session_expires_at: Micros,
    ) -> StoreResult<Redemption> {
        let (token_hash, session_hash) = (token_hash.to_vec(), session_hash.to_vec());
        self.with_admin(move |connection| {
            embed::redeem(
                connection,
                &token_hash,
                &session_hash,
                now,
                session_expires_at,
            )
        })
        .await
    }

    async fn viewer_session(&self, session_hash: &[u8]) -> StoreResult<Option<ViewerTokenRecord>> {
        let session_hash = session_hash.to_vec();
        self.readers
            .run(move |connection| embed::session(connection, &session_hash))
            .await
    }

    async fn viewer_tokens(
        &self,
        scope: &Scope,
        limit: usize,
    ) -> StoreResult<Vec<ViewerTokenRecord>> {
        let scope = scope.clone();
        self.readers
            .run(move |connection| embed::list(connection, &scope, limit))
            .await
    }

    async fn viewer_token(
        &self,
        scope: &Scope,
        token_id: &str,
    ) -> StoreResult<Option<ViewerTokenRecord>> {
        let (scope, token_id) = (scope.clone(), token_id.to_string());
        self.readers
            .run(move |connection| embed::token(connection, &scope, &token_id))
            .await
    }

    async fn revoke_viewer_token(
        &self,
        scope: &Scope,
        token_id: &str,
        now: Micros,
    ) -> StoreResult<bool> {
        let (scope, token_id) = (scope.clone(), token_id.to_string());
        self.with_admin(move |connection| embed::revoke(connection, &scope, &token_id, now))
            .await
    }

    async fn embed_settings(&self, partner_id: &str) -> StoreResult<Option<EmbedSettings>> {
        let partner_id = partner_id.to_string();
        self.readers
            .run(move |connection| embed::settings(connection, &partner_id))
            .await
    }

    async fn set_embed_settings(&self, settings: EmbedSettings) -> StoreResult<()> {
        self.with_admin(move |connection| embed::set_settings(connection, &settings))
            .await
    }

    async fn merkle_blocks(&self, from_block: u64, limit: usize) -> StoreResult<Vec<(u64, Hash)>> {
        self.readers
            .run(move |connection| tree::blocks(connection, from_block, limit))
            .await
    }

    async fn inclusion_proof(
        &self,
        scope: &Scope,
        seq: u64,
        tree_size: u64,
    ) -> StoreResult<Option<Vec<Hash>>> {
        let (scope, known) = (scope.clone(), self.subtree_roots.clone());
        self.readers
            .run(move |connection| tree::inclusion(connection, &known, &scope, seq, tree_size))
            .await
    }

    async fn consistency_proof(&self, old_size: u64, new_size: u64) -> StoreResult<Vec<Hash>> {
        let known = self.subtree_roots.clone();
        self.readers
            .run(move |connection| tree::consistency(connection, &known, old_size, new_size))
            .await
    }

    async fn add_checkpoint(&self, checkpoint: StoredCheckpoint) -> StoreResult<()> {
        self.with_admin(move |connection| tree::add_checkpoint(connection, &checkpoint))
            .await
    }

    async fn latest_checkpoint(&self) -> StoreResult<Option<StoredCheckpoint>> {
        self.readers
            .run(|connection| tree::checkpoints(connection, true))
            .await
            .map(|mut all| all.pop())
    }

    async fn checkpoints(&self) -> StoreResult<Vec<StoredCheckpoint>> {
        self.readers
            .run(|connection| tree::checkpoints(connection, false))
            .await
    }

    async fn ready(&self) -> StoreResult<()> {
        if self.queue.as_ref().is_none_or(WriteQueue::is_closed) {
            return Err(StoreError::Unavailable("the writer has stopped".into()));
        }
        self.readers
            .run(|connection| read::log_size(connection).map(drop))
            .await
    }

    fn metrics(&self) -> &StoreMetrics {
        &self.metrics
    }
}
