//! The [`Store`] trait that every logvault backend implements, the types it speaks in, and
//! the conformance suite ([`conformance::run_all`]) each backend runs so they cannot drift.
//!
//! Every read takes a [`Scope`]: a backend cannot be asked for events without saying whose.

pub mod ceiling;
pub mod conformance;
pub mod embed;
pub mod groups;
mod metrics;
mod query;
pub mod queue;
pub mod retention;
pub mod rules;
pub mod trends;
pub mod verify;

use async_trait::async_trait;
use logvault_core::account::NewAccount;
use logvault_core::event::IndexFields;
use logvault_core::merkle::Hash;
use logvault_core::{Account, EventKind, Micros, NewEvent, Permissions, Role, Scope, StoredEvent};

use embed::{EmbedSettings, Redemption, ViewerTokenRecord};
pub use metrics::StoreMetrics;
pub use query::{
    EventQuery, IpRange, Page, ReadPlan, SIGN_IN_ACTION, TrendGroup, TrendInterval, TrendQuery,
    TrendRow,
};
use retention::{PurgeBatch, PurgeRecord, RetentionChange, RetentionState};

/// What can go wrong in a store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The input names something that does not exist or cannot be used (e.g. a key bound to a
    /// partner account for a merchant role).
    #[error("{0}")]
    Invalid(String),
    /// Something with this id already exists.
    #[error("{0}")]
    AlreadyExists(String),
    /// The event at `index` reuses an id of its account with different content.
    #[error("event {index} reuses id {event_id:?} with different content")]
    IdConflict {
        /// Position in the request.
        index: usize,
        /// The reused id.
        event_id: String,
    },
    /// The event at `index` names an account that does not exist or is disabled.
    #[error("event {index} names an account that does not accept events")]
    AccountNotWritable {
        /// Position in the request.
        index: usize,
    },
    /// The write queue is full; the caller should retry later.
    #[error("the write queue is full")]
    Overloaded,
    /// The store is shutting down or its writer stopped.
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    /// The backend failed.
    #[error("storage error: {0}")]
    Backend(String),
}

/// Result of store operations.
pub type StoreResult<T> = Result<T, StoreError>;

/// An API key as stored: never the secret, only its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRecord {
    /// Public id (`lv_<key_id>_…`).
    pub key_id: String,
    /// SHA-256 of the secret.
    pub secret_hash: Vec<u8>,
    /// The role the key acts in.
    pub role: Role,
    /// The account it is bound to.
    pub account_id: String,
    /// What it may do.
    pub permissions: Permissions,
    /// Optional label.
    pub name: Option<String>,
    /// Creation time.
    pub created_at: Micros,
    /// Set once revoked; a revoked key never authenticates again.
    pub revoked_at: Option<Micros>,
}

/// A person who signs in to the Logs page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// Opaque id (`usr_…`), recorded as the actor of the person's actions.
    pub user_id: String,
    /// Sign-in name, unique.
    pub username: String,
    /// argon2id PHC string.
    pub password_hash: String,
    /// The role the person acts in.
    pub role: Role,
    /// The account the person belongs to (`platform` for admins).
    pub account_id: String,
    /// Creation time.
    pub created_at: Micros,
    /// Disabled users cannot sign in.
    pub disabled: bool,
}

/// A signed-in session. The cookie holds a random token; only its hash is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// SHA-256 of the cookie token.
    pub token_hash: Vec<u8>,
    /// Whose session it is.
    pub user_id: String,
    /// The token every form of this session must carry.
    pub csrf_token: String,
    /// Sign-in time.
    pub created_at: Micros,
    /// After this the session is void.
    pub expires_at: Micros,
    /// Set at sign-out.
    pub ended_at: Option<Micros>,
}

/// The result of storing one event of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestOutcome {
    /// The event's id (client's or assigned).
    pub event_id: String,
    /// Owning account.
    pub account_id: String,
    /// Position in the log.
    pub seq: u64,
    /// Position in the account.
    pub account_seq: u64,
    /// System time stamped at commit.
    pub received_at: Micros,
    /// Leaf hash of the stored event.
    pub leaf_hash: [u8; 32],
    /// True when the id was already stored with the same content: nothing new was written.
    pub duplicate: bool,
}

impl IngestOutcome {
    /// The answer for `event` as stored; `duplicate` when it was stored before.
    pub fn of(event: &StoredEvent, duplicate: bool) -> Self {
        IngestOutcome {
            event_id: event.event_id.clone(),
            account_id: event.account_id.clone(),
            seq: event.seq,
            account_seq: event.account_seq,
            received_at: event.received_at,
            leaf_hash: event.leaf_hash,
            duplicate,
        }
    }
}

/// The answer to a lookup by id within a scope.
#[derive(Debug, Clone, PartialEq)]
pub enum Lookup {
    /// Exactly one event in scope has the id.
    Found(Box<StoredEvent>),
    /// No event in scope has the id.
    NotFound,
    /// Several in-scope accounts used the id; the caller must name the account.
    Ambiguous,
}

/// The size and root of the whole log, as of the last commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogHead {
    /// Events in the log.
    pub size: u64,
    /// RFC 6962 root over every leaf hash.
    pub root: Hash,
}

/// A signed tree head as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCheckpoint {
    /// Tree size it commits to.
    pub size: u64,
    /// Root at that size.
    pub root: Hash,
    /// The whole signed note (C2SP tlog-checkpoint in a signed-note).
    pub note: String,
    /// When it was signed.
    pub signed_at: Micros,
}

/// An event with the index columns stored beside it, for verification.
#[derive(Debug, Clone, PartialEq)]
pub struct ScannedEvent {
    /// The event.
    pub event: StoredEvent,
    /// The filter columns as stored (they must agree with the body).
    pub index: IndexFields,
    /// Whether `index.search_text` was read from the row. A backend whose text index lives
    /// outside the row (SQLite's FTS5 file, derived and rebuildable) leaves it empty.
    pub search_text_stored: bool,
    /// For a purged event, the `seq` of the `retention.purged` event that purged it: its body
    /// is then `{}` and only the fields the proofs need remain.
    pub purged_by: Option<u64>,
    /// The fingerprint stored beside a threat event ([`groups::fingerprint_number`]).
    pub fingerprint: Option<i64>,
}

/// The trend rollup as one commit left it: the log size and the rows of `event_trends`, read
/// in one snapshot. The writers update the rollup in the inserting transaction, so its counts
/// are exactly those of the events with `seq <= log_size`; `verify` derives them again.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrendSnapshot {
    /// Events in the whole log at that commit.
    pub log_size: u64,
    /// The stored rows, in no order.
    pub rows: Vec<StoredTrendRow>,
}

/// One row of the trend rollup, every column as wide as any backend stores it, so that what
/// verification reports is what is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredTrendRow {
    /// Which grouping ([`trends::dimension`]).
    pub dimension: i64,
    /// The events' account.
    pub account_id: String,
    /// Start of the hour ([`trends::hour_of`]).
    pub hour: i64,
    /// The group value.
    pub key: String,
    /// Events counted.
    pub count: i64,
}

/// Persistent storage for accounts, keys and the append-only event log.
#[async_trait]
pub trait Store: Send + Sync {
    /// Creates a partner or merchant account.
    async fn create_account(&self, new: NewAccount) -> StoreResult<Account>;
    /// Accounts visible in `scope`, ordered by id.
    async fn list_accounts(&self, scope: &Scope) -> StoreResult<Vec<Account>>;
    /// The subset of `ids` that exist in `scope`.
    async fn accounts_in_scope(&self, scope: &Scope, ids: &[String]) -> StoreResult<Vec<Account>>;

    /// Stores a new key (its hash only). Role and account kind must agree.
    async fn create_key(&self, key: KeyRecord) -> StoreResult<()>;
    /// Finds a key by its public id, revoked or not.
    async fn key(&self, key_id: &str) -> StoreResult<Option<KeyRecord>>;
    /// Every key, newest first.
    async fn list_keys(&self) -> StoreResult<Vec<KeyRecord>>;
    /// Revokes a key; `false` if there is no such key or it was already revoked.
    async fn revoke_key(&self, key_id: &str) -> StoreResult<bool>;

    /// Stores a new user. Role and account kind must agree; usernames are unique.
    async fn create_user(&self, user: UserRecord) -> StoreResult<()>;
    /// Finds a user by sign-in name.
    async fn user_by_name(&self, username: &str) -> StoreResult<Option<UserRecord>>;
    /// Every user, by username.
    async fn list_users(&self) -> StoreResult<Vec<UserRecord>>;
    /// Stores a new session.
    async fn create_session(&self, session: SessionRecord) -> StoreResult<()>;
    /// A session by token hash, with its user, whether or not it is still valid.
    async fn session(&self, token_hash: &[u8]) -> StoreResult<Option<(SessionRecord, UserRecord)>>;
    /// Ends a session; `false` if there was no open session with that hash.
    async fn end_session(&self, token_hash: &[u8]) -> StoreResult<bool>;
    /// Replaces a user's password hash and, in the same transaction, ends every open session
    /// of theirs, so a changed password signs the person out everywhere. `None` if there is
    /// no such user; otherwise how many sessions ended.
    async fn set_password(&self, user_id: &str, password_hash: &str) -> StoreResult<Option<u64>>;

    /// Appends one request's events atomically and durably: on `Ok` every event is committed
    /// (or was already, for duplicates); on `Err` nothing of the request was stored.
    async fn ingest(&self, events: Vec<NewEvent>) -> StoreResult<Vec<IngestOutcome>>;
    /// One page of events in `scope`, newest first.
    async fn query(&self, scope: &Scope, query: &EventQuery) -> StoreResult<Page>;
    /// The event of `kind` with client or server id `event_id` in `scope`.
    async fn event(
        &self,
        scope: &Scope,
        kind: EventKind,
        event_id: &str,
        account_id: Option<&str>,
    ) -> StoreResult<Lookup>;
    /// Event counts per time bucket and group.
    async fn trends(&self, scope: &Scope, query: &TrendQuery) -> StoreResult<Vec<TrendRow>>;
    /// Number of events in the whole log.
    async fn log_size(&self) -> StoreResult<u64>;
    /// Size and Merkle root of the whole log.
    async fn log_head(&self) -> StoreResult<LogHead>;
    /// Events in `scope` with `seq > after_seq`, in `seq` order, with their stored index
    /// columns: the input of verification.
    async fn scan(
        &self,
        scope: &Scope,
        after_seq: u64,
        limit: usize,
    ) -> StoreResult<Vec<ScannedEvent>>;
    /// The log size and every trend rollup row of an account in `scope`, read in one
    /// snapshot: the input of verifying the rollup.
    async fn trend_snapshot(&self, scope: &Scope) -> StoreResult<TrendSnapshot>;
    /// Every retention policy set and every hold in force.
    async fn retention_state(&self) -> StoreResult<RetentionState>;
    /// Applies `change` and appends `record` (its audit event) in one transaction.
    async fn change_retention(
        &self,
        change: RetentionChange,
        record: NewEvent,
    ) -> StoreResult<IngestOutcome>;
    /// Up to `limit` unpurged events of `account_id` and `kind` received before `cutoff`,
    /// oldest first: the candidates of the next purge batch (and of its archive).
    async fn expired(
        &self,
        account_id: &str,
        kind: EventKind,
        cutoff: Micros,
        limit: usize,
    ) -> StoreResult<Vec<StoredEvent>>;
    /// Purges `batch` and appends its `retention.purged` event in one transaction. Refused
    /// (`Invalid`) when the account is under hold or the stored events no longer match the
    /// batch exactly (count, range, all expired, none purged yet).
    async fn purge(&self, batch: PurgeBatch) -> StoreResult<PurgeRecord>;
    /// Every purge of an account in `scope`, by `record_seq`.
    async fn purges(&self, scope: &Scope) -> StoreResult<Vec<PurgeRecord>>;

    /// The last `seq` the SIEM stream `name` delivered and had acknowledged; 0 for a stream
    /// that has delivered nothing yet. A restarted stream resumes after it.
    async fn stream_cursor(&self, name: &str) -> StoreResult<u64>;
    /// Records that the stream `name` delivered every event of its scope up to `seq`. The
    /// cursor never moves back: a smaller `seq` (from a node that lagged) leaves it as it is.
    async fn set_stream_cursor(&self, name: &str, seq: u64) -> StoreResult<()>;

    /// Stores a new viewer token (its hash only) for an existing account.
    async fn create_viewer_token(&self, token: ViewerTokenRecord) -> StoreResult<()>;
    /// Exchanges the token whose hash is `token_hash` at `now`, in one conditional update:
    /// only a token never exchanged, not revoked and not expired is marked used, with the
    /// hash of the session it becomes and that session's end. Of two racing exchanges of one
    /// token exactly one is `Redeemed`.
    async fn redeem_viewer_token(
        &self,
        token_hash: &[u8],
        session_hash: &[u8],
        now: Micros,
        session_expires_at: Micros,
    ) -> StoreResult<Redemption>;
    /// The token whose exchanged session has hash `session_hash`, whatever its state.
    async fn viewer_session(&self, session_hash: &[u8]) -> StoreResult<Option<ViewerTokenRecord>>;
    /// Viewer tokens of the accounts in `scope`, newest first, at most `limit`.
    async fn viewer_tokens(
        &self,
        scope: &Scope,
        limit: usize,
    ) -> StoreResult<Vec<ViewerTokenRecord>>;
    /// The token `token_id`, if its account is in `scope`.
    async fn viewer_token(
        &self,
        scope: &Scope,
        token_id: &str,
    ) -> StoreResult<Option<ViewerTokenRecord>>;
    /// Revokes the token `token_id` of an account in `scope` (and so its session); `false`
    /// if there is no such token in scope or it was already revoked.
    async fn revoke_viewer_token(
        &self,
        scope: &Scope,
        token_id: &str,
        now: Micros,
    ) -> StoreResult<bool>;
    /// A partner's embedding settings, if it set any.
    async fn embed_settings(&self, partner_id: &str) -> StoreResult<Option<EmbedSettings>>;
    /// Replaces a partner's embedding settings; `Invalid` unless `partner_id` is a partner
    /// account.
    async fn set_embed_settings(&self, settings: EmbedSettings) -> StoreResult<()>;

    /// Stored roots of complete 256-leaf blocks from `from_block` on, in order.
    async fn merkle_blocks(&self, from_block: u64, limit: usize) -> StoreResult<Vec<(u64, Hash)>>;

    /// The RFC 9162 inclusion proof of the event at `seq` in the tree of `tree_size`
    /// leaves, or `None` when that event is not in `scope`.
    async fn inclusion_proof(
        &self,
        scope: &Scope,
        seq: u64,
        tree_size: u64,
    ) -> StoreResult<Option<Vec<Hash>>>;
    /// The RFC 9162 consistency proof between two tree sizes (hashes only, no event data).
    async fn consistency_proof(&self, old_size: u64, new_size: u64) -> StoreResult<Vec<Hash>>;
    /// Stores a signed checkpoint. Storing the same one again is a no-op; a different root for
    /// a size already checkpointed is refused.
    async fn add_checkpoint(&self, checkpoint: StoredCheckpoint) -> StoreResult<()>;
    /// The checkpoint with the largest size.
    async fn latest_checkpoint(&self) -> StoreResult<Option<StoredCheckpoint>>;
    /// Every checkpoint, by size.
    async fn checkpoints(&self) -> StoreResult<Vec<StoredCheckpoint>>;

    /// The threat group rows, hourly counts and returns of `scope` that `query` asks for,
    /// from the rollups the writers keep ([`groups::list`] and [`groups::detail`] decide
    /// the statuses from them).
    async fn threat_group_data(
        &self,
        scope: &Scope,
        query: &groups::GroupDataQuery,
    ) -> StoreResult<groups::GroupData>;
    /// The log size and every threat group row, hourly count and return of an account in
    /// `scope`, read in one snapshot: the input of verifying them.
    async fn group_snapshot(&self, scope: &Scope) -> StoreResult<groups::GroupSnapshot>;

    /// Whether the store can serve requests now.
    async fn ready(&self) -> StoreResult<()>;
    /// Counters the store keeps about itself.
    fn metrics(&self) -> &StoreMetrics;
}
