//! Query shapes the store answers: filtered event pages and trend buckets.

use logvault_core::event::IndexFields;
use logvault_core::{EventKind, Micros, StoredEvent};

/// An inclusive range of 16-byte addresses (a single IP or a CIDR block).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpRange {
    /// Lowest address.
    pub low: [u8; 16],
    /// Highest address.
    pub high: [u8; 16],
}

/// Filters for one page of events; all present filters must match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventQuery {
    /// Audit or threat.
    pub kind: EventKind,
    /// Only this account (must be in scope to match anything).
    pub account_id: Option<String>,
    /// `received_at >= from`.
    pub from: Option<Micros>,
    /// `received_at < to`.
    pub to: Option<Micros>,
    /// Case-insensitive substring of the event's own fields.
    pub text: Option<String>,
    /// Audit: exact action.
    pub action: Option<String>,
    /// Audit: `success` or `failure`.
    pub outcome: Option<String>,
    /// Audit: exact actor id.
    pub actor_id: Option<String>,
    /// Audit: origin IP within this range.
    pub ip: Option<IpRange>,
    /// Audit: exact request id.
    pub request_id: Option<String>,
    /// Threat: exact error type.
    pub error_type: Option<String>,
    /// Threat: `sdk` or `api`.
    pub source: Option<String>,
    /// Threat: exact version.
    pub version: Option<String>,
    /// Threat: exact environment.
    pub environment: Option<String>,
    /// Threat: only the events of this group ([`crate::groups::fingerprint_number`]).
    pub fingerprint: Option<i64>,
    /// Only events with `seq` below this (the cursor).
    pub before_seq: Option<u64>,
    /// Page size.
    pub limit: usize,
}

impl EventQuery {
    /// A query with no filters.
    pub fn new(kind: EventKind, limit: usize) -> Self {
        EventQuery {
            kind,
            account_id: None,
            from: None,
            to: None,
            text: None,
            action: None,
            outcome: None,
            actor_id: None,
            ip: None,
            request_id: None,
            error_type: None,
            source: None,
            version: None,
            environment: None,
            fingerprint: None,
            before_seq: None,
            limit,
        }
    }

    /// Whether `event` matches every filter but the limit, decided in memory by the rules
    /// the stores apply (for events read back from an archive file).
    pub fn matches(&self, event: &StoredEvent) -> bool {
        let Some(columns) = IndexFields::from_body(event.kind, &event.body) else {
            return false;
        };
        let equal = |filter: &Option<String>, value: &Option<String>| {
            filter.is_none() || filter.as_deref() == value.as_deref()
        };
        event.kind == self.kind
            && self
                .account_id
                .as_deref()
                .is_none_or(|id| id == event.account_id)
            && self.from.is_none_or(|from| event.received_at >= from)
            && self.to.is_none_or(|to| event.received_at < to)
            && self.before_seq.is_none_or(|before| event.seq < before)
            && self
                .text
                .as_deref()
                .is_none_or(|text| columns.search_text.contains(&text.to_lowercase()))
            && equal(&self.action, &columns.action)
            && equal(&self.outcome, &columns.outcome)
            && equal(&self.actor_id, &columns.actor_id)
            && equal(&self.request_id, &columns.request_id)
            && equal(&self.error_type, &columns.error_type)
            && equal(&self.source, &columns.source)
            && equal(&self.version, &columns.version)
            && equal(&self.environment, &columns.environment)
            && self.fingerprint.is_none_or(|fingerprint| {
                event.kind == EventKind::Threat
                    && crate::groups::fingerprint_of(&event.body)
                        .is_some_and(|(number, _)| number == fingerprint)
            })
            && self.ip.is_none_or(|range| {
                columns
                    .ip
                    .is_some_and(|ip| range.low <= ip && ip <= range.high)
            })
    }
}

/// One page of events, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// The events.
    pub events: Vec<StoredEvent>,
    /// Set when more events match: pass it as `before_seq` for the next page.
    pub next_before_seq: Option<u64>,
}

impl Page {
    /// A page of `limit` events from up to `limit + 1` read newest first: the extra one only
    /// tells that more match.
    pub fn from_overfetched(mut events: Vec<StoredEvent>, limit: usize) -> Self {
        let next_before_seq = if events.len() > limit {
            events.truncate(limit);
            events.last().map(|event| event.seq)
        } else {
            None
        };
        Page {
            events,
            next_before_seq,
        }
    }
}

/// The audit action of a sign-in attempt, counted by [`TrendGroup::SignInOutcome`].
pub const SIGN_IN_ACTION: &str = "user.login";

/// What trend counts are grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrendGroup {
    /// Threat events by `version`.
    Version,
    /// Threat events by `environment`.
    Environment,
    /// Threat events by `error_type`.
    ErrorType,
    /// Audit `user.login` events by `outcome`: the sign-in chart of the overview, which must
    /// count every sign-in of a period without reading them.
    SignInOutcome,
    /// Audit events by `action`: the overview's counts of password, MFA, role and key changes.
    AuditAction,
    /// Failed `user.login` events by origin address (the key is the 16-byte address, IPv4
    /// mapped into IPv6, in lower-case hex): the overview's failed-login bursts.
    FailedSignInIp,
}

/// Trend bucket width.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrendInterval {
    /// One hour.
    Hour,
    /// One day (UTC).
    Day,
}

impl TrendInterval {
    /// Width in microseconds.
    pub fn micros(self) -> i64 {
        match self {
            TrendInterval::Hour => 3_600_000_000,
            TrendInterval::Day => 86_400_000_000,
        }
    }
}

/// A request for event counts over time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrendQuery {
    /// Only this account.
    pub account_id: Option<String>,
    /// `received_at >= from`.
    pub from: Micros,
    /// `received_at < to`.
    pub to: Micros,
    /// Grouping column.
    pub group_by: TrendGroup,
    /// Bucket width.
    pub interval: TrendInterval,
    /// Only buckets in which a group value counts at least this many events (0 for all).
    pub min_count: u64,
}

/// Count of events in one bucket for one group value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrendRow {
    /// Start of the bucket.
    pub bucket: Micros,
    /// Group value (`""` when the event has none).
    pub key: String,
    /// Events in the bucket.
    pub count: u64,
}

/// One read path as a backend's planner would run it, for the tests that keep every read's
/// plan independent of the scope (`read_plans` on each backend).
#[derive(Debug, Clone)]
pub struct ReadPlan {
    /// Which read, e.g. `event by id`.
    pub read: &'static str,
    /// The scope it was planned for.
    pub scope: logvault_core::Scope,
    /// The plan's lines, outermost first.
    pub plan: Vec<String>,
}
