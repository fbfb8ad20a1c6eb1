//! Events as accepted ([`NewEvent`]) and as stored ([`StoredEvent`]), and the canonical bytes
//! every leaf hash covers (see `docs/INTEGRITY.md`).

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::{AccountId, Micros};

/// Audit or threat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// Access and authentication actions.
    Audit,
    /// Errors from SDK and API usage.
    Threat,
}

impl EventKind {
    /// `audit` or `threat`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Audit => "audit",
            EventKind::Threat => "threat",
        }
    }

    /// Inverse of [`EventKind::as_str`].
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "audit" => Some(EventKind::Audit),
            "threat" => Some(EventKind::Threat),
            _ => None,
        }
    }
}

/// The columns the store indexes and filters on, extracted from the body at validation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IndexFields {
    /// Audit: the action, e.g. `user.login`.
    pub action: Option<String>,
    /// Audit: `success` or `failure`.
    pub outcome: Option<String>,
    /// Audit: `actor.id`.
    pub actor_id: Option<String>,
    /// Audit: `origin.ip` as 16 bytes (IPv4 mapped into IPv6), so CIDR filters are ranges.
    pub ip: Option<[u8; 16]>,
    /// Audit: `request_id`.
    pub request_id: Option<String>,
    /// Threat: `error_type`.
    pub error_type: Option<String>,
    /// Threat: `sdk` or `api`.
    pub source: Option<String>,
    /// Threat: `version`.
    pub version: Option<String>,
    /// Threat: `environment`.
    pub environment: Option<String>,
}

/// A validated event, ready for the store to sequence and append.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// Audit or threat.
    pub kind: EventKind,
    /// The account the event belongs to.
    pub account_id: AccountId,
    /// The client's id, or a server-assigned UUIDv7.
    pub event_id: String,
    /// The client's claimed time; kept, never used for ordering.
    pub occurred_at: Option<Micros>,
    /// The event's own fields (everything but id, account and times) as canonical JSON.
    pub body: String,
    /// Columns extracted from the body for filtering.
    pub index: IndexFields,
    /// Only for seeding demo data on an empty store: the `received_at` to use instead of
    /// the clock. The store still never lets `received_at` decrease along `seq`.
    pub demo_received_at: Option<Micros>,
}

/// An event as stored: a [`NewEvent`] plus everything the store assigned.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    /// Position in the deployment's log, from 1.
    pub seq: u64,
    /// Gapless position within the account, from 1.
    pub account_seq: u64,
    /// Audit or threat.
    pub kind: EventKind,
    /// Owning account.
    pub account_id: AccountId,
    /// Client or server id, unique per account.
    pub event_id: String,
    /// The service's clock at commit.
    pub received_at: Micros,
    /// The client's claimed time.
    pub occurred_at: Option<Micros>,
    /// Canonical JSON of the event's own fields.
    pub body: String,
    /// 16 random bytes drawn at ingest, covered by the leaf hash.
    pub nonce: [u8; 16],
    /// RFC 6962 leaf hash of [`StoredEvent::canonical_bytes`].
    pub leaf_hash: [u8; 32],
}

impl StoredEvent {
    /// The bytes the leaf hash covers: compact JSON, keys sorted, of every stored field.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let body: Value = serde_json::from_str(&self.body).unwrap_or(Value::Null);
        let canonical = json!({
            "account_id": self.account_id,
            "account_seq": self.account_seq,
            "body": body,
            "id": self.event_id,
            "kind": self.kind.as_str(),
            "nonce": hex::encode(self.nonce),
            "occurred_at": self.occurred_at.map(Micros::to_rfc3339),
            "received_at": self.received_at.to_rfc3339(),
            "seq": self.seq,
        });
        serde_json::to_vec(&canonical).unwrap_or_default()
    }

    /// SHA-256(0x00 ‖ canonical bytes), as RFC 6962 defines a leaf.
    pub fn compute_leaf_hash(&self) -> [u8; 32] {
        let mut hasher = Sha256::new();
        hasher.update([0u8]);
        hasher.update(self.canonical_bytes());
        hasher.finalize().into()
    }

    /// The event as the API returns it: its own fields plus the stored ones.
    pub fn to_json(&self) -> Value {
        let mut object = match serde_json::from_str::<Value>(&self.body) {
            Ok(Value::Object(object)) => object,
            _ => Map::new(),
        };
        object.insert("id".into(), self.event_id.clone().into());
        object.insert("account_id".into(), self.account_id.clone().into());
        object.insert("seq".into(), self.seq.into());
        object.insert("account_seq".into(), self.account_seq.into());
        object.insert("received_at".into(), self.received_at.to_rfc3339().into());
        if let Some(occurred_at) = self.occurred_at {
            object.insert("occurred_at".into(), occurred_at.to_rfc3339().into());
        }
        object.insert("leaf_hash".into(), hex::encode(self.leaf_hash).into());
        Value::Object(object)
    }
}

/// A new UUIDv7 for events sent without an id.
pub fn new_event_id() -> String {
    uuid::Uuid::now_v7().to_string()
}
