//! Events as accepted ([`NewEvent`]) and as stored ([`StoredEvent`]), and the canonical bytes
//! every leaf hash covers (see `docs/INTEGRITY.md`).

use std::io::Write;

use serde_json::{Map, Value};

use crate::{AccountId, Micros};

pub mod fingerprint;
mod index;
pub mod wire;

pub use index::IndexFields;

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

/// A validated event, ready for the store to sequence and append.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// Audit or threat.
    pub kind: EventKind,
    /// The account the event belongs to.
    pub account_id: AccountId,
    /// The client's id, or a server-assigned UUIDv7.
    pub event_id: String,
    /// Whether the client chose `event_id` (only then can it repeat an earlier event).
    pub id_from_client: bool,
    /// The client's claimed time; kept, never used for ordering.
    pub occurred_at: Option<Micros>,
    /// The event's own fields (everything but id, account and times) as canonical JSON.
    pub body: String,
    /// Columns extracted from the body for filtering.
    pub index: IndexFields,
    /// A threat event's error group, computed from `body` at validation
    /// ([`fingerprint::Fingerprint::of_body`]); the store computes it if it is missing.
    pub fingerprint: Option<fingerprint::Fingerprint>,
    /// Only for seeding demo data on an empty store: the `received_at` to use instead of
    /// the clock. The store still never lets `received_at` decrease along `seq`.
    pub demo_received_at: Option<Micros>,
}

impl NewEvent {
    /// The event as stored at position `seq` (and `account_seq` in its account), received at
    /// `received_at`, with its nonce, and its leaf hash computed: what every store appends.
    pub fn stored(
        &self,
        seq: u64,
        account_seq: u64,
        received_at: Micros,
        nonce: [u8; 16],
    ) -> StoredEvent {
        let mut stored = StoredEvent {
            seq,
            account_seq,
            kind: self.kind,
            account_id: self.account_id.clone(),
            event_id: self.event_id.clone(),
            received_at,
            occurred_at: self.occurred_at,
            body: self.body.clone(),
            nonce,
            leaf_hash: [0; 32],
        };
        stored.leaf_hash = stored.compute_leaf_hash();
        stored
    }
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
    /// The bytes the leaf hash covers: compact JSON, keys sorted, of every stored field
    /// (see `docs/INTEGRITY.md`). `body` is already canonical JSON (compact, keys sorted, as
    /// produced by validation), so it is embedded as is instead of being parsed again.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.body.len() + 256);
        // Writing to a Vec cannot fail.
        let _ = self.write_canonical_bytes(&mut out);
        out
    }

    /// Writes [`StoredEvent::canonical_bytes`] to `out` piece by piece, without intermediate
    /// strings: `verify` hashes every stored event this way, straight into the hasher.
    pub fn write_canonical_bytes<W: Write>(&self, out: &mut W) -> std::io::Result<()> {
        // serde_json escapes exactly as the canonical form requires.
        fn text<W: Write>(out: &mut W, value: &str) -> std::io::Result<()> {
            serde_json::to_writer(out, value).map_err(std::io::Error::from)
        }
        fn time<W: Write>(out: &mut W, at: Micros) -> std::io::Result<()> {
            out.write_all(b"\"")?;
            at.write_rfc3339(out)?;
            out.write_all(b"\"")
        }
        out.write_all(b"{\"account_id\":")?;
        text(out, &self.account_id)?;
        write!(out, ",\"account_seq\":{},\"body\":", self.account_seq)?;
        out.write_all(self.body.as_bytes())?;
        out.write_all(b",\"id\":")?;
        text(out, &self.event_id)?;
        write!(out, ",\"kind\":\"{}\",\"nonce\":\"", self.kind.as_str())?;
        let mut nonce = [0u8; 32];
        hex::encode_to_slice(self.nonce, &mut nonce).map_err(std::io::Error::other)?;
        out.write_all(&nonce)?;
        out.write_all(b"\",\"occurred_at\":")?;
        match self.occurred_at {
            Some(at) => time(out, at)?,
            None => out.write_all(b"null")?,
        }
        out.write_all(b",\"received_at\":")?;
        time(out, self.received_at)?;
        write!(out, ",\"seq\":{}}}", self.seq)
    }

    /// SHA-256(0x00 ‖ canonical bytes), as RFC 6962 defines a leaf, hashed as the bytes
    /// are written.
    pub fn compute_leaf_hash(&self) -> [u8; 32] {
        let mut hasher = crate::merkle::LeafHasher::new();
        // A hasher accepts every write.
        let _ = self.write_canonical_bytes(&mut hasher);
        hasher.finish()
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
        object.insert("kind".into(), self.kind.as_str().into());
        object.insert("nonce".into(), hex::encode(self.nonce).into());
        object.insert("leaf_hash".into(), hex::encode(self.leaf_hash).into());
        Value::Object(object)
    }

    /// Rebuilds a stored event from the JSON [`StoredEvent::to_json`] produced, so anyone
    /// holding an event as the API returned it can recompute its leaf hash offline.
    pub fn from_json(value: &Value) -> Result<Self, String> {
        let mut body = value
            .as_object()
            .cloned()
            .ok_or("the event must be a JSON object")?;
        let mut take = |name: &str| body.remove(name).ok_or(format!("the event has no {name}"));
        let text = |value: Value, name: &str| match value {
            Value::String(text) => Ok(text),
            _ => Err(format!("{name} must be a string")),
        };
        let number =
            |value: Value, name: &str| value.as_u64().ok_or(format!("{name} must be an integer"));
        let time = |value: Value, name: &str| {
            Micros::parse_rfc3339(value.as_str().unwrap_or_default())
                .ok_or(format!("{name} must be an RFC 3339 time"))
        };
        let hex_array = |value: Value, name: &str| -> Result<Vec<u8>, String> {
            hex::decode(value.as_str().unwrap_or_default())
                .map_err(|_| format!("{name} must be hex"))
        };
        let event_id = text(take("id")?, "id")?;
        let account_id = text(take("account_id")?, "account_id")?;
        let seq = number(take("seq")?, "seq")?;
        let account_seq = number(take("account_seq")?, "account_seq")?;
        let received_at = time(take("received_at")?, "received_at")?;
        let occurred_at = match take("occurred_at") {
            Ok(value) => Some(time(value, "occurred_at")?),
            Err(_) => None,
        };
        let kind = EventKind::parse(&text(take("kind")?, "kind")?)
            .ok_or("kind must be audit or threat")?;
        let nonce = hex_array(take("nonce")?, "nonce")?
            .try_into()
            .map_err(|_| "nonce must be 16 bytes")?;
        let leaf_hash = hex_array(take("leaf_hash")?, "leaf_hash")?
            .try_into()
            .map_err(|_| "leaf_hash must be 32 bytes")?;
        Ok(StoredEvent {
            seq,
            account_seq,
            kind,
            account_id,
            event_id,
            received_at,
            occurred_at,
            body: Value::Object(body).to_string(),
            nonce,
            leaf_hash,
        })
    }
}

/// A new UUIDv7 for events sent without an id.
pub fn new_event_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    /// The hand-built canonical bytes must equal serde_json's sorted, compact rendering of
    /// the same fields; otherwise independent verifiers could not recompute leaf hashes.
    #[test]
    fn api_json_round_trips_to_the_same_leaf_hash() {
        let mut event = StoredEvent {
            seq: 12,
            account_seq: 4,
            kind: EventKind::Audit,
            account_id: "mer_1".into(),
            event_id: "e-1".into(),
            received_at: Micros(1_764_000_000_000_001),
            occurred_at: Some(Micros(1_763_999_999_000_000)),
            body: r#"{"action":"user.login","actor":{"id":"u1"},"metadata":{"n":1.5},"outcome":"success"}"#.into(),
            nonce: [3; 16],
            leaf_hash: [0; 32],
        };
        event.leaf_hash = event.compute_leaf_hash();
        let rebuilt = StoredEvent::from_json(&event.to_json()).expect("rebuild");
        assert_eq!(rebuilt, event);
        assert_eq!(rebuilt.compute_leaf_hash(), event.leaf_hash);
        let mut edited = event.to_json();
        edited["outcome"] = "failure".into();
        let tampered = StoredEvent::from_json(&edited).expect("rebuild");
        assert_ne!(
            tampered.compute_leaf_hash(),
            event.leaf_hash,
            "an edited field changes the hash"
        );
    }

    #[test]
    fn canonical_bytes_equal_sorted_compact_json() {
        let bodies = [
            r#"{"action":"user.login","actor":{"id":"u\"1"},"outcome":"success"}"#,
            r#"{"message":"naïve \u0001 ✓","metadata":{"a":[1,2.5,null,true]},"source":"sdk"}"#,
        ];
        for (body, occurred_at) in bodies.into_iter().zip([None, Some(Micros(1))]) {
            let event = StoredEvent {
                seq: 7,
                account_seq: 3,
                kind: EventKind::Threat,
                account_id: "mer_\"x".into(),
                event_id: "id/ü".into(),
                received_at: Micros(1_764_000_000_123_456),
                occurred_at,
                body: body.into(),
                nonce: [0xab; 16],
                leaf_hash: [0; 32],
            };
            let body_value: Value = serde_json::from_str(body).expect("body");
            let expected = json!({
                "account_id": event.account_id, "account_seq": 3, "body": body_value,
                "id": event.event_id, "kind": "threat", "nonce": hex::encode([0xab; 16]),
                "occurred_at": occurred_at.map(Micros::to_rfc3339),
                "received_at": "2025-11-24T16:00:00.123456Z", "seq": 7,
            });
            let canonical = String::from_utf8(event.canonical_bytes()).expect("utf-8");
            assert_eq!(canonical, expected.to_string());
        }
    }
}
