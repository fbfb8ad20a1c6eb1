//! The one fixture every HTTP test builds on: a SQLite store in a temporary directory, a
//! fixed tree of accounts, one key per principal, seeded events with known ids, and helpers
//! to send requests through `app(state).oneshot(..)` (or a real socket) and judge the answers.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use logvault_core::account::NewAccount;
use logvault_core::{AccountKind, EventKind, Micros, Permissions, Role, Scope, StoredEvent, key};
use logvault_server::{AppState, ServerConfig, app};
use logvault_sqlite::{SqliteConfig, SqliteStore};
use logvault_store::{EventQuery, KeyRecord, Store};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::net::TcpListener;
use tower::ServiceExt;

/// The built-in platform account.
pub const PLATFORM: &str = "platform";
/// Partner A, owner of merchants A1 and A2.
pub const PAR_A: &str = "par_a";
/// Merchant A1, under partner A.
pub const MER_A1: &str = "mer_a1";
/// Merchant A2, under partner A.
pub const MER_A2: &str = "mer_a2";
/// Partner B, owner of merchant B1.
pub const PAR_B: &str = "par_b";
/// Merchant B1, under partner B.
pub const MER_B1: &str = "mer_b1";
/// Merchant P0, directly under the platform.
pub const MER_P0: &str = "mer_p0";
/// An account id that does not exist.
pub const GHOST: &str = "mer_ghost";

/// Every account that exists, platform included.
pub const ACCOUNTS: [&str; 7] = [PLATFORM, PAR_A, MER_A1, MER_A2, PAR_B, MER_B1, MER_P0];

/// The audit event id the fixture uses in several accounts (A1, A2 and B1).
pub const SHARED_ID: &str = "evt-shared";
/// The threat event id the fixture uses in A1, A2 and B1. It differs from [`SHARED_ID`]
/// because ids are unique per account across both kinds.
pub const SHARED_THREAT_ID: &str = "evt-shared-threat";

/// The shared id of `kind`.
pub fn shared_id(kind: EventKind) -> &'static str {
    match kind {
        EventKind::Audit => SHARED_ID,
        EventKind::Threat => SHARED_THREAT_ID,
    }
}

/// The owning partner of a merchant, if any.
pub fn partner_of(account: &str) -> Option<&'static str> {
    match account {
        MER_A1 | MER_A2 => Some(PAR_A),
        MER_B1 => Some(PAR_B),
        _ => None,
    }
}

/// Who is calling: every kind of credential a request can carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Who {
    /// No `Authorization` header.
    Anonymous,
    /// `Bearer` followed by something that is not key-shaped.
    Malformed,
    /// A valid token under a scheme other than `Bearer`.
    WrongScheme,
    /// A key-shaped token whose key id does not exist.
    UnknownKey,
    /// The admin key's id with a wrong secret.
    WrongSecret,
    /// A revoked merchant A1 key.
    Revoked,
    /// Platform admin.
    Admin,
    /// Partner A key.
    PartnerA,
    /// Partner B key.
    PartnerB,
    /// Merchant A1 key.
    MerchantA1,
    /// Merchant A2 key.
    MerchantA2,
    /// Merchant B1 key.
    MerchantB1,
    /// Merchant P0 key.
    MerchantP0,
    /// Merchant A1 key with only `read`.
    ReadOnlyA1,
    /// Merchant A2 key with only `ingest`.
    IngestOnlyA2,
}

impl Who {
    /// Every principal, in a stable order.
    pub const ALL: [Who; 15] = [
        Who::Anonymous,
        Who::Malformed,
        Who::WrongScheme,
        Who::UnknownKey,
        Who::WrongSecret,
        Who::Revoked,
        Who::Admin,
        Who::PartnerA,
        Who::PartnerB,
        Who::MerchantA1,
        Who::MerchantA2,
        Who::MerchantB1,
        Who::MerchantP0,
        Who::ReadOnlyA1,
        Who::IngestOnlyA2,
    ];

    /// The role, account and permissions of a key that authenticates; `None` otherwise.
    pub fn key_spec(self) -> Option<(Role, &'static str, &'static str)> {
        match self {
            Who::Admin => Some((Role::Admin, PLATFORM, "ingest,read,admin")),
            Who::PartnerA => Some((Role::Partner, PAR_A, "ingest,read")),
            Who::PartnerB => Some((Role::Partner, PAR_B, "ingest,read")),
            Who::MerchantA1 => Some((Role::Merchant, MER_A1, "ingest,read")),
            Who::MerchantA2 => Some((Role::Merchant, MER_A2, "ingest,read")),
            Who::MerchantB1 => Some((Role::Merchant, MER_B1, "ingest,read")),
            Who::MerchantP0 => Some((Role::Merchant, MER_P0, "ingest,read")),
            Who::ReadOnlyA1 => Some((Role::Merchant, MER_A1, "read")),
            Who::IngestOnlyA2 => Some((Role::Merchant, MER_A2, "ingest")),
            _ => None,
        }
    }

    /// Whether the credentials authenticate at all.
    pub fn authenticates(self) -> bool {
        self.key_spec().is_some()
    }

    /// The account the principal is bound to (where its own reads are recorded).
    pub fn account(self) -> Option<&'static str> {
        self.key_spec().map(|(_, account, _)| account)
    }

    /// Whether the key holds `permission` (`ingest` or `read`).
    pub fn may(self, permission: &str) -> bool {
        self.key_spec()
            .is_some_and(|(_, _, permissions)| permissions.split(',').any(|p| p == permission))
    }
}

/// The contract's scope rule: admin sees every account, a partner itself and its merchants,
/// a merchant only itself. Unknown accounts are in nobody's scope.
pub fn in_scope(who: Who, account: &str) -> bool {
    if !ACCOUNTS.contains(&account) {
        return false;
    }
    match who.key_spec() {
        None => false,
        Some((Role::Admin, _, _)) => true,
        Some((Role::Partner, partner, _)) => {
            account == partner || partner_of(account) == Some(partner)
        }
        Some((Role::Merchant, merchant, _)) => account == merchant,
    }
}

/// The accounts `who` may see.
pub fn scope_of(who: Who) -> BTreeSet<&'static str> {
    ACCOUNTS
        .into_iter()
        .filter(|account| in_scope(who, account))
        .collect()
}

/// The id of the fixture's audit event in `account`.
pub fn audit_id(account: &str) -> String {
    format!("aud-{account}")
}

/// The id of the fixture's threat event in `account`.
pub fn threat_id(account: &str) -> String {
    format!("thr-{account}")
}

/// A minimal valid audit event.
pub fn audit_event(id: &str, account: &str) -> Value {
    json!({"id": id, "account_id": account, "action": "test.event", "outcome": "success",
        "actor": {"id": "usr_test", "type": "user"}})
}

/// A minimal valid threat event.
pub fn threat_event(id: &str, account: &str) -> Value {
    json!({"id": id, "account_id": account, "source": "api", "error_type": "TestError",
        "message": "a test error"})
}

/// A minimal valid event of `kind`.
pub fn event_of(kind: EventKind, id: &str, account: &str) -> Value {
    match kind {
        EventKind::Audit => audit_event(id, account),
        EventKind::Threat => threat_event(id, account),
    }
}

/// `/v1/audit-events` or `/v1/threat-events`.
pub fn base(kind: EventKind) -> &'static str {
    match kind {
        EventKind::Audit => "/v1/audit-events",
        EventKind::Threat => "/v1/threat-events",
    }
}

/// A response, fully read.
#[derive(Debug)]
pub struct Reply {
    /// HTTP status.
    pub status: StatusCode,
    /// Response headers.
    pub headers: HeaderMap,
    /// Raw body.
    pub body: Vec<u8>,
}

impl Reply {
    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON, or `Null` when it is not JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// The `Content-Type` header.
    pub fn content_type(&self) -> &str {
        self.headers
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("")
    }

    /// The rows of a list response (`data`).
    pub fn rows(&self) -> Vec<Value> {
        self.json()["data"].as_array().cloned().unwrap_or_default()
    }

    /// `id`s of the rows of a list response, in order.
    pub fn ids(&self) -> Vec<String> {
        self.rows()
            .iter()
            .map(|row| row["id"].as_str().unwrap_or("").to_string())
            .collect()
    }

    /// Checks this is an RFC 9457 problem with `status` and type `urn:logvault:problem:<slug>`;
    /// returns a description of every mismatch.
    pub fn problem_mismatch(&self, status: u16, slug: &str) -> Option<String> {
        let body = self.json();
        let expected_type = format!("urn:logvault:problem:{slug}");
        let ok = self.status.as_u16() == status
            && self.content_type() == "application/problem+json"
            && body["type"] == expected_type.as_str()
            && body["status"] == status;
        (!ok).then(|| {
            format!(
                "expected {status} {expected_type} as application/problem+json, got {} {:?}: {}",
                self.status,
                self.content_type(),
                self.text()
            )
        })
    }

    /// Asserts this is the problem `slug` with `status`.
    #[track_caller]
    pub fn assert_problem(&self, status: u16, slug: &str) {
        if let Some(mismatch) = self.problem_mismatch(status, slug) {
            panic!("{mismatch}");
        }
    }

    /// Asserts the status, showing the body when it differs.
    #[track_caller]
    pub fn assert_status(&self, status: u16) {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.text());
    }
}

/// A running app over a seeded store.
pub struct World {
    /// The router under test.
    pub app: Router,
    /// The store behind it, for checks that must not themselves be recorded as reads.
    pub store: Arc<dyn Store>,
    state: AppState,
    tokens: Vec<(Who, String)>,
    key_ids: Vec<(Who, String)>,
    _dir: TempDir,
}

impl World {
    /// The standard fixture with default store settings.
    pub async fn new() -> World {
        World::with_config(SqliteConfig::default(), true).await
    }

    /// A fixture over a store opened with `config`; seeds the fixture events when `seed`.
    pub async fn with_config(config: SqliteConfig, seed: bool) -> World {
        World::with_configs(config, ServerConfig::default(), seed).await
    }

    /// A fresh world with the given store and HTTP settings.
    pub async fn with_configs(config: SqliteConfig, server: ServerConfig, seed: bool) -> World {
        let dir = tempfile::tempdir().expect("temporary directory");
        let sqlite = SqliteStore::open(dir.path(), config).expect("open the SQLite store");
        let store: Arc<dyn Store> = Arc::new(sqlite);
        create_accounts(store.as_ref()).await;
        let mut tokens = Vec::new();
        let mut key_ids = Vec::new();
        for who in Who::ALL {
            if let Some((role, account, permissions)) = who.key_spec() {
                let (key_id, token) = create_key(store.as_ref(), role, account, permissions).await;
                tokens.push((who, token));
                key_ids.push((who, key_id));
            }
        }
        let (revoked_id, revoked_token) =
            create_key(store.as_ref(), Role::Merchant, MER_A1, "ingest,read").await;
        assert!(
            store.revoke_key(&revoked_id).await.expect("revoke"),
            "revoke the key"
        );
        tokens.push((Who::Revoked, revoked_token));
        let admin_key_id = key_ids
            .iter()
            .find(|(who, _)| *who == Who::Admin)
            .map(|(_, id)| id.clone())
            .expect("admin key");
        tokens.push((Who::Malformed, "not-a-key".to_string()));
        tokens.push((
            Who::UnknownKey,
            format!("lv_0123456789abcdef_{}", "ab".repeat(32)),
        ));
        tokens.push((
            Who::WrongSecret,
            format!("lv_{admin_key_id}_{}", "cd".repeat(32)),
        ));
        let state = AppState::new(store.clone(), server);
        let world = World {
            app: app(state.clone()),
            state,
            store,
            tokens,
            key_ids,
            _dir: dir,
        };
        if seed {
            world.seed().await;
        }
        world
    }

    /// The bearer token of `who`, if it has one.
    pub fn token(&self, who: Who) -> Option<&str> {
        self.tokens
            .iter()
            .find(|(holder, _)| *holder == who)
            .map(|(_, token)| token.as_str())
    }

    /// The key id of an authenticating principal.
    pub fn key_id(&self, who: Who) -> &str {
        self.key_ids
            .iter()
            .find(|(holder, _)| *holder == who)
            .map(|(_, id)| id.as_str())
            .expect("an authenticating principal")
    }

    /// The `Authorization` header value `who` sends, if any.
    pub fn authorization(&self, who: Who) -> Option<String> {
        match who {
            Who::Anonymous => None,
            Who::WrongScheme => Some(format!(
                "Token {}",
                self.token(Who::Admin).expect("admin token")
            )),
            _ => self.token(who).map(|token| format!("Bearer {token}")),
        }
    }

    /// Serves this world with the production `serve` on `127.0.0.1:0` until the test's
    /// runtime ends, for what only a real TCP connection shows.
    pub async fn listen(&self) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local address");
        let state = self.state.clone();
        tokio::spawn(logvault_server::serve(
            listener,
            state,
            std::future::pending(),
        ));
        addr
    }

    /// Sends a fully built request.
    pub async fn send_request(&self, request: Request<Body>) -> Reply {
        let response = self
            .app
            .clone()
            .oneshot(request)
            .await
            .expect("the router is infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("read the response body")
            .to_vec();
        Reply {
            status,
            headers,
            body,
        }
    }

    /// A request builder carrying `who`'s credentials.
    pub fn request(&self, who: Who, method: Method, uri: &str) -> axum::http::request::Builder {
        let builder = Request::builder().method(method).uri(uri);
        match self.authorization(who) {
            Some(value) => builder.header(header::AUTHORIZATION, value),
            None => builder,
        }
    }

    /// `GET uri` as `who`.
    pub async fn get(&self, who: Who, uri: &str) -> Reply {
        let request = self
            .request(who, Method::GET, uri)
            .body(Body::empty())
            .expect("request");
        self.send_request(request).await
    }

    /// `POST uri` with a JSON body as `who`.
    pub async fn post_json(&self, who: Who, uri: &str, body: &Value) -> Reply {
        self.post_raw(who, uri, "application/json", body.to_string().into_bytes())
            .await
    }

    /// `POST uri` with any body and content type as `who`.
    pub async fn post_raw(&self, who: Who, uri: &str, content_type: &str, body: Vec<u8>) -> Reply {
        let request = self
            .request(who, Method::POST, uri)
            .header(header::CONTENT_TYPE, content_type)
            .body(Body::from(body))
            .expect("request");
        self.send_request(request).await
    }

    /// Ingests `events` of `kind` as `who`, asserting success; returns the `data` rows.
    pub async fn ingest(&self, who: Who, kind: EventKind, events: Value) -> Vec<Value> {
        let reply = self.post_json(who, base(kind), &events).await;
        assert!(
            reply.status.is_success(),
            "ingest failed: {} {}",
            reply.status,
            reply.text()
        );
        reply.rows()
    }

    /// Every event of `kind` in `account`, newest first, read straight from the store (so
    /// the check itself records no `logs.viewed`).
    pub async fn stored(&self, kind: EventKind, account: &str) -> Vec<StoredEvent> {
        self.stored_matching(kind, account, None).await
    }

    /// Like [`World::stored`], only events with `action`.
    pub async fn stored_matching(
        &self,
        kind: EventKind,
        account: &str,
        action: Option<&str>,
    ) -> Vec<StoredEvent> {
        let mut query = EventQuery::new(kind, 1000);
        query.account_id = Some(account.to_string());
        query.action = action.map(str::to_string);
        self.store
            .query(&Scope::All, &query)
            .await
            .expect("store query")
            .events
    }

    /// Polls the store until `account` holds at least `n_events` `logs.viewed` events or
    /// `timeout` passes; returns them, newest first.
    pub async fn wait_for_views(
        &self,
        account: &str,
        n_events: usize,
        timeout: Duration,
    ) -> Vec<StoredEvent> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let views = self
                .stored_matching(EventKind::Audit, account, Some("logs.viewed"))
                .await;
            if views.len() >= n_events || tokio::time::Instant::now() >= deadline {
                return views;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Seeds one audit and one threat event per account (ids from [`audit_id`] and
    /// [`threat_id`]), plus [`SHARED_ID`] and [`SHARED_THREAT_ID`] in A1, A2 and B1.
    async fn seed(&self) {
        let mut audits = Vec::new();
        let mut threats = Vec::new();
        for (n, account) in ACCOUNTS.iter().enumerate() {
            audits.push(json!({
                "id": audit_id(account), "account_id": account, "action": "user.login",
                "outcome": "success", "actor": {"id": format!("usr_{account}"), "type": "user"},
                "origin": {"ip": format!("198.51.100.{}", n + 1), "user_agent": "fixture"},
                "request_id": format!("req-{account}"),
            }));
            threats.push(json!({
                "id": threat_id(account), "account_id": account, "source": "sdk",
                "error_type": "FixtureError", "message": "fixture error",
                "version": "fixture 1.0", "environment": "staging",
            }));
        }
        for account in [MER_A1, MER_A2, MER_B1] {
            audits.push(json!({
                "id": SHARED_ID, "account_id": account, "action": "user.logout",
                "outcome": "success", "actor": {"id": format!("usr_{account}")},
            }));
            threats.push(json!({
                "id": SHARED_THREAT_ID, "account_id": account, "source": "api",
                "error_type": "SharedError", "message": "shared", "environment": "staging",
                "version": "fixture 1.0",
            }));
        }
        self.ingest(Who::Admin, EventKind::Audit, Value::Array(audits))
            .await;
        self.ingest(Who::Admin, EventKind::Threat, Value::Array(threats))
            .await;
    }
}

async fn create_accounts(store: &dyn Store) {
    let accounts = [
        (AccountKind::Partner, PAR_A, None),
        (AccountKind::Merchant, MER_A1, Some(PAR_A)),
        (AccountKind::Merchant, MER_A2, Some(PAR_A)),
        (AccountKind::Partner, PAR_B, None),
        (AccountKind::Merchant, MER_B1, Some(PAR_B)),
        (AccountKind::Merchant, MER_P0, None),
    ];
    for (kind, id, partner) in accounts {
        store
            .create_account(NewAccount {
                kind,
                partner_id: partner.map(str::to_string),
                name: format!("Account {id}"),
                id: Some(id.to_string()),
            })
            .await
            .expect("create account");
    }
}

/// Creates a key; returns its id and bearer token.
async fn create_key(
    store: &dyn Store,
    role: Role,
    account: &str,
    permissions: &str,
) -> (String, String) {
    let generated = key::generate().expect("random key");
    store
        .create_key(KeyRecord {
            key_id: generated.key_id.clone(),
            secret_hash: generated.secret_hash.to_vec(),
            role,
            account_id: account.to_string(),
            permissions: Permissions::parse(permissions).expect("permissions"),
            name: Some(format!("{} key", role.as_str())),
            created_at: Micros::now(),
            revoked_at: None,
        })
        .await
        .expect("create key");
    (generated.key_id, generated.token)
}

/// Percent-encodes a query value.
pub fn encode(value: &str) -> String {
    let mut out = String::new();
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}
