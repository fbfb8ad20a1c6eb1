//! The events, as the ingest API takes them. Every event gets its id when it is made (a
//! UUIDv7), so a retried request carries the same ids and the service stores each event once.

use std::time::SystemTime;

use serde::Serialize;
use serde_json::{Map, Value};

/// Whether the action succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// It did.
    Success,
    /// It did not.
    Failure,
}

/// Who acted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Actor {
    /// Their id in your system, e.g. `usr_42`.
    pub id: String,
    /// `user`, `api_key` or `system`.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// A display name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// Where a request came from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Origin {
    /// An IPv4 or IPv6 address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// The request's `User-Agent`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
}

/// A sign-in or other access or authentication action.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEvent {
    /// The idempotency id, assigned by [`AuditEvent::new`].
    pub id: String,
    /// The account it belongs to; the key's own account when `None`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    /// What happened, e.g. `user.login`.
    pub action: String,
    /// Whether it worked.
    pub outcome: Outcome,
    /// Why, e.g. `bad_password`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Who did it.
    pub actor: Actor,
    /// From where.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin: Option<Origin>,
    /// Your request id, for correlation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// When it happened by your clock (the service also records its own).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub occurred_at: Option<String>,
    /// Anything else, as JSON.
    #[serde(skip_serializing_if = "Map::is_empty")]
    pub metadata: Map<String, Value>,
}

impl AuditEvent {
    /// `actor_id` did `action` with `outcome`, now.
    pub fn new(action: impl Into<String>, outcome: Outcome, actor_id: impl Into<String>) -> Self {
        AuditEvent {
            id: new_id(),
            account_id: None,
            action: action.into(),
            outcome,
            reason: None,
            actor: Actor {
                id: actor_id.into(),
                kind: None,
                name: None,
            },
            origin: None,
            request_id: None,
            occurred_at: Some(rfc3339(SystemTime::now())),
            metadata: Map::new(),
        }
    }

    /// For this account (a partner's key may write to its merchants).
    pub fn account(mut self, account_id: impl Into<String>) -> Self {
        self.account_id = Some(account_id.into());
        self
    }

    /// With this reason.
    pub fn reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }

    /// From this address.
    pub fn ip(mut self, ip: impl Into<String>) -> Self {
        self.origin.get_or_insert_with(Origin::default).ip = Some(ip.into());
        self
    }

    /// With this user agent.
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.origin.get_or_insert_with(Origin::default).user_agent = Some(user_agent.into());
        self
    }

    /// With your request id.
    pub fn request_id(mut self, request_id: impl Into<String>) -> Self {
        self.request_id = Some(request_id.into());
        self
    }

    /// With one more metadata entry.
    pub fn metadata(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }
}

/// Where a threat event came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// An SDK in your customers' apps.
    Sdk,
    /// Your API.
    Api,
}

/// The SDK that reported an error.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Sdk {
    /// E.g. `ios`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// E.g. `iOS 17.2`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
}

/// The API call that failed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Api {
    /// The HTTP method.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// The path (the service scrubs secrets out of query strings).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The HTTP status answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
}

/// An error from SDK or API usage. The service scrubs customer data out of it before storing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ThreatEvent {
    /// The idempotency id, assigned by [`ThreatEvent::new`].
    pub id: String,
    /// The account it belongs to; the key's own account when `None`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    /// SDK or API.
    pub source: Source,
    /// E.g. `NetworkTimeout`.
    pub error_type: String,
    /// E.g. `E_TIMEOUT`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    /// What went wrong.
    pub message: String,
    /// E.g. `ios-sdk 4.2.1`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// E.g. `production`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// The SDK, for SDK errors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sdk: Option<Sdk>,
    /// The call, for API errors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api: Option<Api>,
    /// A stack trace.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stacktrace: Option<String>,
    /// When it happened by your clock.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub occurred_at: Option<String>,
    /// Anything else, as JSON.
    #[serde(skip_serializing_if = "Map::is_empty")]
    pub metadata: Map<String, Value>,
}

impl ThreatEvent {
    /// An error of `error_type` from `source` saying `message`, now.
    pub fn new(source: Source, error_type: impl Into<String>, message: impl Into<String>) -> Self {
        ThreatEvent {
            id: new_id(),
            account_id: None,
            source,
            error_type: error_type.into(),
            error_code: None,
            message: message.into(),
            version: None,
            environment: None,
            sdk: None,
            api: None,
            stacktrace: None,
            occurred_at: Some(rfc3339(SystemTime::now())),
            metadata: Map::new(),
        }
    }

    /// For this account.
    pub fn account(mut self, account_id: impl Into<String>) -> Self {
        self.account_id = Some(account_id.into());
        self
    }

    /// With this error code.
    pub fn code(mut self, error_code: impl Into<String>) -> Self {
        self.error_code = Some(error_code.into());
        self
    }

    /// From this SDK or API version.
    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.version = Some(version.into());
        self
    }

    /// In this environment.
    pub fn environment(mut self, environment: impl Into<String>) -> Self {
        self.environment = Some(environment.into());
        self
    }

    /// From this API call.
    pub fn api_call(mut self, method: &str, path: &str, status: u16) -> Self {
        self.api = Some(Api {
            method: Some(method.into()),
            path: Some(path.into()),
            status: Some(status),
        });
        self
    }

    /// With a stack trace.
    pub fn stacktrace(mut self, stacktrace: impl Into<String>) -> Self {
        self.stacktrace = Some(stacktrace.into());
        self
    }

    /// With one more metadata entry.
    pub fn metadata(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }
}

fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

fn rfc3339(at: SystemTime) -> String {
    let at = time::OffsetDateTime::from(at);
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
