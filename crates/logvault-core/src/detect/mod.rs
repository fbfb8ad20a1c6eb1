//! Security detections over audit events: a pure, deterministic state machine that takes
//! stored audit events in `seq` order and gives back findings, each with the `seq`s of the
//! events it was built from.
//!
//! The detector never reads the log: whoever runs it (the service's detection task, the
//! benchmark) feeds it events as they are committed. Its state is windows of recent sign-in
//! failures and small per-actor, per-address and per-key profiles, all bounded: a window
//! holds at most [`WINDOW_CAP`] entries, every map of an account is capped by [`Caps`], and
//! so are the entries across all accounts. A full map forgets first the entries only one
//! event has touched (most of a busy log's actors), least recently touched first, then the
//! least recently touched of the others, so an actor under a slow attack or with a history
//! outlives a flood of actors seen once. Forgetting only ever loses detections (an actor
//! without history is not an actor whose address is new), never invents one.
//!
//! The same events in the same order give the same findings; a finding is identified by its
//! detection, account and the `seq` of the event that raised it ([`Finding::alert_id`]), so a
//! replay after a restart raises it under the same id.
//!
//! Resuming: whoever follows the log keeps a cursor (the last `seq` fed) and on a restart
//! feeds again the events of twice the longest window before it, dropping what they raise
//! up to the cursor. That reproduces exactly what the window detections raise after the
//! cursor (a window is at most one window long, and the quiet period after an alert depends
//! on an alert at most one window earlier; see the replay test). The history detections
//! (new address, dormant actor, API key) know only what the look-back held, so a restart can
//! cost them a finding, never duplicate one.

mod config;
mod state;

use std::collections::HashMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use self::config::{
    ApiKeyNewAddress, BruteForce, CredentialStuffing, DetectConfig, DormantActor, NewAddress,
    PasswordSpraying, PrivilegeAfterFailures, SuccessAfterFailures,
};
use self::state::Profiles;
use crate::{AccountId, EventKind, Micros, StoredEvent};

/// Most entries one window of failures (of an actor, an address or an account) keeps.
pub const WINDOW_CAP: usize = 256;

/// What the detector detects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Detection {
    /// N failed sign-ins of one actor within T.
    BruteForce,
    /// Failed sign-ins of many actors from one address.
    PasswordSpraying,
    /// Failed sign-ins of many actors from many addresses, most sign-ins failing.
    CredentialStuffing,
    /// A successful sign-in ending a run of failed ones.
    SuccessAfterFailures,
    /// An actor with a history signing in from a prefix never seen for it.
    NewAddress,
    /// An actor acting again after a long silence.
    DormantActor,
    /// An API key used from a prefix never seen for it.
    ApiKeyNewAddress,
    /// A privilege change (role granted, MFA disabled) right after failed sign-ins.
    PrivilegeAfterFailures,
}

impl Detection {
    /// Every detection, in the order reports list them.
    pub const ALL: [Detection; 8] = [
        Detection::BruteForce,
        Detection::PasswordSpraying,
        Detection::CredentialStuffing,
        Detection::SuccessAfterFailures,
        Detection::NewAddress,
        Detection::DormantActor,
        Detection::ApiKeyNewAddress,
        Detection::PrivilegeAfterFailures,
    ];

    /// `brute_force`, `password_spraying`, …
    pub fn as_str(self) -> &'static str {
        match self {
            Detection::BruteForce => "brute_force",
            Detection::PasswordSpraying => "password_spraying",
            Detection::CredentialStuffing => "credential_stuffing",
            Detection::SuccessAfterFailures => "success_after_failures",
            Detection::NewAddress => "new_address",
            Detection::DormantActor => "dormant_actor",
            Detection::ApiKeyNewAddress => "api_key_new_address",
            Detection::PrivilegeAfterFailures => "privilege_after_failures",
        }
    }

    /// Inverse of [`Detection::as_str`].
    pub fn parse(text: &str) -> Option<Self> {
        Detection::ALL.into_iter().find(|d| d.as_str() == text)
    }

    /// `high` for what suggests an account is being taken over, `medium` otherwise.
    pub fn severity(self) -> &'static str {
        match self {
            Detection::SuccessAfterFailures
            | Detection::PrivilegeAfterFailures
            | Detection::CredentialStuffing => "high",
            _ => "medium",
        }
    }
}

/// The outcome of an audit event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// `success`.
    Success,
    /// `failure`.
    Failure,
    /// No or another outcome.
    Other,
}

/// The fields of one stored audit event the detections look at.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    /// The event's account.
    pub account_id: AccountId,
    /// The event's position in the log.
    pub seq: u64,
    /// `received_at`: the service's clock, which never decreases along `seq`.
    pub at: Micros,
    /// `action`, e.g. `user.login`.
    pub action: String,
    /// `outcome`.
    pub outcome: Outcome,
    /// `actor.id`.
    pub actor_id: Option<String>,
    /// `user`, `api_key`, `system`, …
    pub actor_type: Option<String>,
    /// `origin.ip`.
    pub ip: Option<IpAddr>,
}

#[derive(Deserialize)]
struct AuditBody {
    #[serde(default)]
    action: String,
    #[serde(default)]
    outcome: Option<String>,
    #[serde(default)]
    actor: Option<BodyActor>,
    #[serde(default)]
    origin: Option<BodyOrigin>,
}

#[derive(Deserialize)]
struct BodyActor {
    #[serde(default)]
    id: Option<String>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
}

#[derive(Deserialize)]
struct BodyOrigin {
    #[serde(default)]
    ip: Option<String>,
}

impl Observation {
    /// The observation of a stored event; `None` for anything but an audit event (or a
    /// purged one, whose body is gone).
    pub fn from_stored(event: &StoredEvent) -> Option<Self> {
        if event.kind != EventKind::Audit {
            return None;
        }
        Observation::from_body(&event.account_id, event.seq, event.received_at, &event.body)
    }

    /// The observation of an audit event's canonical body.
    pub fn from_body(account_id: &str, seq: u64, at: Micros, body: &str) -> Option<Self> {
        let body: AuditBody = serde_json::from_str(body).ok()?;
        if body.action.is_empty() {
            return None;
        }
        let outcome = match body.outcome.as_deref() {
            Some("success") => Outcome::Success,
            Some("failure") => Outcome::Failure,
            _ => Outcome::Other,
        };
        let (actor_id, actor_type) = match body.actor {
            Some(actor) => (actor.id, actor.kind),
            None => (None, None),
        };
        let ip = body
            .origin
            .and_then(|origin| origin.ip)
            .and_then(|ip| ip.parse().ok());
        Some(Observation {
            account_id: account_id.to_string(),
            seq,
            at,
            action: body.action,
            outcome,
            actor_id,
            actor_type,
            ip,
        })
    }
}

/// What a finding is about: the actor, address or key its detection keys on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subject {
    /// The actor (or API key) concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor_id: Option<String>,
    /// The address of the raising event.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// The prefix (`/24`, `/48`) of a new-address finding.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
}

/// One detection's finding: what an alert records.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// What was detected.
    pub detection: Detection,
    /// The account of every evidence event.
    pub account_id: AccountId,
    /// The `seq` of the event whose arrival raised the finding (the last of its evidence).
    pub trigger_seq: u64,
    /// `received_at` of that event.
    pub at: Micros,
    /// The `seq`s of the events it was built from, ascending, the trigger last.
    pub evidence: Vec<u64>,
    /// `received_at` of the first evidence event.
    pub first_at: Micros,
    /// What the finding is about.
    pub subject: Subject,
    /// One line for people.
    pub summary: String,
}

impl Finding {
    /// The alert's event id: a UUIDv8 from the SHA-256 of the detection, the account and the
    /// trigger's `seq`, so the same finding raised again (a replay) is the same event.
    pub fn alert_id(&self) -> String {
        alert_id(self.detection, &self.account_id, self.trigger_seq)
    }
}

/// See [`Finding::alert_id`].
pub fn alert_id(detection: Detection, account_id: &str, trigger_seq: u64) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"logvault alert\0");
    hasher.update(detection.as_str().as_bytes());
    hasher.update([0]);
    hasher.update(account_id.as_bytes());
    hasher.update([0]);
    hasher.update(trigger_seq.to_be_bytes());
    let digest = hasher.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes)
        .into_uuid()
        .to_string()
}

/// How much the detector may remember: each map of an account holds at most this many
/// entries, and all accounts together at most `total_entries` (plus one account's map); a
/// full map forgets its entries seen once, then its least recently touched ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    /// Actor profiles (failure windows, prefixes, last activity) per account.
    pub actors_per_account: usize,
    /// Addresses with a failure window per account.
    pub addresses_per_account: usize,
    /// API key profiles per account.
    pub keys_per_account: usize,
    /// Entries across all accounts.
    pub total_entries: usize,
}

impl Default for Caps {
    fn default() -> Self {
        Caps {
            actors_per_account: 20_000,
            addresses_per_account: 20_000,
            keys_per_account: 2_000,
            total_entries: 500_000,
        }
    }
}

/// The detector: every account's state and the configuration it applies.
pub struct Detector {
    defaults: DetectConfig,
    per_account: HashMap<AccountId, DetectConfig>,
    caps: Caps,
    profiles: Profiles,
}

impl Detector {
    /// A detector with the deployment's configuration.
    pub fn new(defaults: DetectConfig, caps: Caps) -> Self {
        Detector {
            defaults,
            per_account: HashMap::new(),
            caps,
            profiles: Profiles::default(),
        }
    }

    /// The deployment's configuration.
    pub fn defaults(&self) -> &DetectConfig {
        &self.defaults
    }

    /// Sets (or with `None` clears) an account's configuration, already merged over the
    /// deployment's with [`DetectConfig::with_overrides`].
    pub fn set_account_config(&mut self, account_id: &str, config: Option<DetectConfig>) {
        match config {
            Some(config) => self.per_account.insert(account_id.to_string(), config),
            None => self.per_account.remove(account_id),
        };
    }

    /// Entries held across all accounts (actors, addresses, keys and windows' owners).
    pub fn entries(&self) -> usize {
        self.profiles.entries()
    }

    /// Feeds one event (in `seq` order) and appends what it raises to `findings`.
    pub fn observe(&mut self, event: &Observation, findings: &mut Vec<Finding>) {
        let config = self
            .per_account
            .get(&event.account_id)
            .unwrap_or(&self.defaults);
        self.profiles.observe(config, &self.caps, event, findings);
    }
}

/// The masked prefix of `ip` (IPv4 mapped into IPv6), and its text (`198.51.100.0/24`).
pub(crate) fn prefix_of(ip: IpAddr, ipv4_bits: u8, ipv6_bits: u8) -> (u128, String) {
    let (bits, value) = match ip {
        IpAddr::V4(v4) => (96 + u32::from(ipv4_bits), v4.to_ipv6_mapped()),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => (96 + u32::from(ipv4_bits), v4.to_ipv6_mapped()),
            None => (u32::from(ipv6_bits), v6),
        },
    };
    let mask = if bits >= 128 {
        u128::MAX
    } else {
        !(u128::MAX >> bits)
    };
    let masked = u128::from(value) & mask;
    let text = match ip {
        IpAddr::V4(_) => {
            let v4 = std::net::Ipv6Addr::from(masked)
                .to_ipv4_mapped()
                .map(|v4| v4.to_string())
                .unwrap_or_default();
            format!("{v4}/{ipv4_bits}")
        }
        IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some() => {
            let v4 = std::net::Ipv6Addr::from(masked)
                .to_ipv4_mapped()
                .map(|v4| v4.to_string())
                .unwrap_or_default();
            format!("{v4}/{ipv4_bits}")
        }
        IpAddr::V6(_) => format!("{}/{ipv6_bits}", std::net::Ipv6Addr::from(masked)),
    };
    (masked, text)
}

#[cfg(test)]
mod tests;
