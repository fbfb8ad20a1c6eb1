//! logvault's scale-out store: several stateless `logvault serve` nodes on one PostgreSQL.
//!
//! Each node runs one writer task that group-commits its queued requests into one
//! transaction; the sequencer (`seq`, `account_seq`, `received_at`, the Merkle frontier) is
//! serialized across nodes by locking the single `log_head` row in that transaction. Reads go
//! through a small pool, each in a read-only transaction whose scope is also set for the
//! database's row-level security. See `migrations/0001_init.sql` for the schema, the
//! append-only triggers, the policies and the grants.

mod accounts;
mod ceiling;
mod embed;
mod groups;
mod people;
mod plans;
mod read;
mod retention;
mod rollup;
mod schema;
mod search;
mod sql;
mod streams;
mod tree;
mod writer;

use std::sync::Arc;

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use logvault_core::account::NewAccount;
use logvault_core::merkle::Hash;
use logvault_core::{Account, EventKind, Micros, NewEvent, Scope, StoredEvent};
use logvault_store::{
    EventQuery, IngestOutcome, KeyRecord, LogHead, Lookup, Page, ScannedEvent, SessionRecord,
    Store, StoreError, StoreMetrics, StoreResult, StoredCheckpoint, TrendQuery, TrendRow,
    UserRecord,
};
use tokio_postgres::NoTls;

pub use crate::ceiling::{copy_ceiling, storage_bytes};
pub use crate::schema::{MIGRATIONS, migrate};
pub use crate::sql::scope_settings;
use crate::writer::Writer;
use logvault_store::embed::{EmbedSettings, Redemption, ViewerTokenRecord};
use logvault_store::queue::WriteQueue;
use logvault_store::retention::{
    PurgeBatch, PurgeRecord, RetentionChange, RetentionState, RetentionWrite,
};

/// Tunables of the PostgreSQL store.
#[derive(Debug, Clone)]
pub struct PgConfig {
    /// Events that may wait for this node's writer before ingest answers "overloaded".
    pub max_queued_events: usize,
    /// Most events committed in one transaction.
    pub max_batch_events: usize,
    /// Pooled connections for reads and account, key and checkpoint changes.
    pub pool_size: usize,
}

impl Default for PgConfig {
    fn default() -> Self {
        PgConfig {
            max_queued_events: 100_000,
            max_batch_events: 20_000,
            pool_size: 8,
        }
    }
}

/// logvault's store on PostgreSQL.
pub struct PgStore {
    pool: Pool,
    queue: WriteQueue,
    /// Whether `q=` is served by the pg_trgm index (`LIKE`) or a sequential `position()`.
    trigram: bool,
    metrics: Arc<StoreMetrics>,
    /// Merges the text search index's pending list while the store lives.
    _merger: Option<search::Merger>,
}

impl PgStore {
    /// Connects to `url` (`postgres://user:password@host:port/db`, or key=value form),
    /// applies pending migrations when the role may (otherwise refuses with a hint to run
    /// `logvault migrate` as the owner), checks that commits are durable
    /// (`synchronous_commit` = `on` or `remote_apply`, `fsync` = `on`), creates this month's
    /// and next month's event partitions, and starts this node's writer task. Call it inside
    /// a Tokio runtime.
    pub async fn connect(url: &str, config: PgConfig) -> StoreResult<Self> {
        let pg_config = schema::parse_url(url)?;
        let mut client = schema::connect(&pg_config).await?;
        schema::check_durability(&client).await?;
        schema::migrate_client(&mut client, None).await?;
        let trigram = schema::has_trigram_index(&client).await?;
        if trigram {
            tracing::info!("text search (q=) uses the pg_trgm GIN index on events.search_text");
        } else {
            tracing::warn!(
                "pg_trgm is not installed: text search (q=) falls back to a sequential \
                 position() scan of events.search_text"
            );
        }
        let metrics = Arc::new(StoreMetrics::default());
        let mut writer = Writer::new(
            pg_config.clone(),
            client,
            config.max_batch_events,
            metrics.clone(),
        );
        writer.prepare_partitions().await?;
        // Reads are prepared once per connection, and after five runs PostgreSQL may switch a
        // statement to a generic plan that cannot see its values: for `q=` that plan collects
        // every trigram match of every account and sorts them (1.3 s instead of 4 ms for a
        // common word at 1 M events). Planning each read anew costs a millisecond or less.
        let mut read_config = pg_config.clone();
        let options = read_config.get_options().unwrap_or_default();
        read_config.options(format!("{options} -c plan_cache_mode=force_custom_plan").trim());
        let manager = Manager::from_config(
            read_config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(config.pool_size.max(1))
            .build()
            .map_err(|e| StoreError::Unavailable(format!("cannot build the pool: {e}")))?;
        let (queue, receiver) = WriteQueue::new(config.max_queued_events, metrics.clone());
        tokio::spawn(writer.run(receiver));
        let merger = trigram.then(|| search::Merger::start(pg_config, search::MERGE_EVENTS));
        Ok(PgStore {
            pool,
            queue,
            trigram,
            metrics,
            _merger: merger,
        })
    }

    /// Whether text search uses the pg_trgm index.
    pub fn uses_trigram_index(&self) -> bool {
        self.trigram
    }

    async fn client(&self) -> StoreResult<deadpool_postgres::Object> {
        self.pool
            .get()
            .await
            .map_err(|e| StoreError::Unavailable(format!("no database connection: {e}")))
    }
}

/// Maps PostgreSQL errors into the store's error type, keeping the server's message.
pub(crate) fn backend(error: tokio_postgres::Error) -> StoreError {
    match error.as_db_error() {
        Some(db) => StoreError::Backend(format!("{}: {}", db.code().code(), db.message())),
        None => StoreError::Backend(error.to_string()),
    }
}

#[async_trait]
impl Store for PgStore {
    async fn create_account(&self, new: NewAccount) -> StoreResult<Account> {
        accounts::create_account(&mut self.client().await?, new).await
    }

    async fn list_accounts(&self, scope: &Scope) -> StoreResult<Vec<Account>> {
        accounts::list(&self.client().await?, scope, None).await
    }

    async fn accounts_in_scope(&self, scope: &Scope, ids: &[String]) -> StoreResult<Vec<Account>> {
        accounts::list(&self.client().await?, scope, Some(ids)).await
    }

    async fn create_key(&self, key: KeyRecord) -> StoreResult<()> {
        accounts::create_key(&mut self.client().await?, &key).await
    }

    async fn key(&self, key_id: &str) -> StoreResult<Option<KeyRecord>> {
        accounts::key(&self.client().await?, key_id).await
    }

    async fn list_keys(&self) -> StoreResult<Vec<KeyRecord>> {
        accounts::list_keys(&self.client().await?).await
    }

    async fn revoke_key(&self, key_id: &str) -> StoreResult<bool> {
        accounts::revoke_key(&self.client().await?, key_id).await
    }

    async fn create_user(&self, user: UserRecord) -> StoreResult<()> {
        people::create_user(&mut self.client().await?, &user).await
    }

    async fn user_by_name(&self, username: &str) -> StoreResult<Option<UserRecord>> {
        people::user_by_name(&self.client().await?, username).await
    }

    async fn list_users(&self) -> StoreResult<Vec<UserRecord>> {
        people::list_users(&self.client().await?).await
    }

    async fn create_session(&self, session: SessionRecord) -> StoreResult<()> {
        people::create_session(&self.client().await?, &session).await
    }

    async fn session(&self, token_hash: &[u8]) -> StoreResult<Option<(SessionRecord, UserRecord)>> {
        people::session(&self.client().await?, token_hash).await
    }

    async fn end_session(&self, token_hash: &[u8]) -> StoreResult<bool> {
        people::end_session(&self.client().await?, token_hash).await
    }

    async fn set_password(&self, user_id: &str, password_hash: &str) -> StoreResult<Option<u64>> {
        people::set_password(&mut self.client().await?, user_id, password_hash).await
    }

    async fn ingest(&self, events: Vec<NewEvent>) -> StoreResult<Vec<IngestOutcome>> {
        self.queue.submit(events).await
    }

    async fn query(&self, scope: &Scope, query: &EventQuery) -> StoreResult<Page> {
        let mut client = self.client().await?;
        let transaction = sql::begin_scoped(&mut client, scope).await?;
        let page = read::query(&transaction, scope, query, self.trigram).await?;
        transaction.commit().await.map_err(backend)?;
        Ok(page)
    }

    async fn event(
        &self,
        scope: &Scope,
        kind: EventKind,
        event_id: &str,
        account_id: Option<&str>,
    ) -> StoreResult<Lookup> {
        let mut client = self.client().await?;
        let transaction = sql::begin_scoped(&mut client, scope).await?;
        let lookup = read::event(&transaction, scope, kind, event_id, account_id).await?;
        transaction.commit().await.map_err(backend)?;
        Ok(lookup)
    }

    async fn trends(&self, scope: &Scope, query: &TrendQuery) -> StoreResult<Vec<TrendRow>> {
        let mut client = self.client().await?;
        let transaction = sql::begin_scoped(&mut client, scope).await?;
        let rows = read::trends(&transaction, scope, query).await?;
        transaction.commit().await.map_err(backend)?;
        Ok(rows)
    }

    async fn log_size(&self) -> StoreResult<u64> {
        tree::log_size(&self.client().await?).await
    }

    async fn log_head(&self) -> StoreResult<LogHead> {
        tree::log_head(&self.client().await?).await
    }

    async fn scan(
        &self,
        scope: &Scope,
        after_seq: u64,
        limit: usize,
    ) -> StoreResult<Vec<ScannedEvent>> {
        let mut client = self.client().await?;
        let transaction = sql::begin_scoped(&mut client, scope).await?;
        let events = read::scan(&transaction, scope, after_seq, limit).await?;
        transaction.commit().await.map_err(backend)?;
        Ok(events)
    }

    async fn trend_snapshot(&self, scope: &Scope) -> StoreResult<logvault_store::TrendSnapshot> {
        rollup::trend_snapshot(&mut self.client().await?, scope).await
    }

    async fn threat_group_data(
        &self,
        scope: &Scope,
        query: &logvault_store::groups::GroupDataQuery,
    ) -> StoreResult<logvault_store::groups::GroupData> {
        groups::data(&mut self.client().await?, scope, query).await
    }

    async fn group_snapshot(
        &self,
        scope: &Scope,
    ) -> StoreResult<logvault_store::groups::GroupSnapshot> {
        groups::snapshot(&mut self.client().await?, scope).await
    }

    async fn retention_state(&self) -> StoreResult<RetentionState> {
        retention::state(&self.client().await?).await
    }

    async fn change_retention(
        &self,
        change: RetentionChange,
        record: NewEvent,
    ) -> StoreResult<IngestOutcome> {
        self.queue
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
        let mut client = self.client().await?;
        let transaction = sql::begin_scoped(&mut client, &Scope::All).await?;
        let events = retention::expired(&transaction, account_id, kind, cutoff, limit).await?;
        transaction.commit().await.map_err(backend)?;
        Ok(events)
    }

    async fn purge(&self, batch: PurgeBatch) -> StoreResult<PurgeRecord> {
        self.queue.submit_purge(batch).await
    }

    async fn purges(&self, scope: &Scope) -> StoreResult<Vec<PurgeRecord>> {
        let mut client = self.client().await?;
        let transaction = sql::begin_scoped(&mut client, scope).await?;
        let purges = retention::purges(&transaction, scope).await?;
        transaction.commit().await.map_err(backend)?;
        Ok(purges)
    }

    async fn merkle_blocks(&self, from_block: u64, limit: usize) -> StoreResult<Vec<(u64, Hash)>> {
        tree::blocks(&self.client().await?, from_block, limit).await
    }

    async fn inclusion_proof(
        &self,
        scope: &Scope,
        seq: u64,
        tree_size: u64,
    ) -> StoreResult<Option<Vec<Hash>>> {
        let mut client = self.client().await?;
        let transaction = sql::begin_scoped(&mut client, scope).await?;
        let proof = tree::inclusion(&transaction, scope, seq, tree_size).await?;
        transaction.commit().await.map_err(backend)?;
        Ok(proof)
    }

    async fn consistency_proof(&self, old_size: u64, new_size: u64) -> StoreResult<Vec<Hash>> {
        let mut client = self.client().await?;
        // Consistency proofs hold only hashes; they read every account's leaves.
        let transaction = sql::begin_scoped(&mut client, &Scope::All).await?;
        let proof = tree::consistency(&transaction, old_size, new_size).await?;
        transaction.commit().await.map_err(backend)?;
        Ok(proof)
    }

    async fn stream_cursor(&self, name: &str) -> StoreResult<u64> {
        streams::cursor(&self.client().await?, name).await
    }

    async fn set_stream_cursor(&self, name: &str, seq: u64) -> StoreResult<()> {
        streams::set_cursor(&self.client().await?, name, seq).await
    }

    async fn create_viewer_token(&self, token: ViewerTokenRecord) -> StoreResult<()> {
        embed::create_token(&self.client().await?, &token).await
    }

    async fn redeem_viewer_token(
        &self,
        token_hash: &[u8],
        session_hash: &[u8],
        now: Micros,
        session_expires_at: Micros,
    ) -> StoreResult<Redemption> {
        embed::redeem(
            &self.client().await?,
            token_hash,
            session_hash,
            now,
            session_expires_at,
        )
        .await
    }

    async fn viewer_session(&self, session_hash: &[u8]) -> StoreResult<Option<ViewerTokenRecord>> {
        embed::session(&self.client().await?, session_hash).await
    }

    async fn viewer_tokens(
        &self,
        scope: &Scope,
        limit: usize,
    ) -> StoreResult<Vec<ViewerTokenRecord>> {
        embed::list(&self.client().await?, scope, limit).await
    }

    async fn viewer_token(
        &self,
        scope: &Scope,
        token_id: &str,
    ) -> StoreResult<Option<ViewerTokenRecord>> {
        embed::token(&self.client().await?, scope, token_id).await
    }

    async fn revoke_viewer_token(
        &self,
        scope: &Scope,
        token_id: &str,
        now: Micros,
    ) -> StoreResult<bool> {
        embed::revoke(&self.client().await?, scope, token_id, now).await
    }

    async fn embed_settings(&self, partner_id: &str) -> StoreResult<Option<EmbedSettings>> {
        embed::settings(&self.client().await?, partner_id).await
    }

    async fn set_embed_settings(&self, settings: EmbedSettings) -> StoreResult<()> {
        embed::set_settings(&self.client().await?, &settings).await
    }

    async fn add_checkpoint(&self, checkpoint: StoredCheckpoint) -> StoreResult<()> {
        tree::add_checkpoint(&mut self.client().await?, &checkpoint).await
    }

    async fn latest_checkpoint(&self) -> StoreResult<Option<StoredCheckpoint>> {
        Ok(tree::checkpoints(&self.client().await?, true).await?.pop())
    }

    async fn checkpoints(&self) -> StoreResult<Vec<StoredCheckpoint>> {
        tree::checkpoints(&self.client().await?, false).await
    }

    async fn ready(&self) -> StoreResult<()> {
        if self.queue.is_closed() {
            return Err(StoreError::Unavailable("the writer has stopped".into()));
        }
        tree::log_size(&self.client().await?).await.map(drop)
    }

    fn metrics(&self) -> &StoreMetrics {
        &self.metrics
    }
}
