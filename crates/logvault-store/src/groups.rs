//! Error groups: threat events grouped by their fingerprint
//! ([`logvault_core::event::fingerprint`]). The writers keep, in the inserting transaction,
//! each threat event's fingerprint (beside the event, never in its leaf), one row per
//! (account, fingerprint) with first and last seen, count and first version, hourly counts
//! per (account, fingerprint, version, environment), and every return of a group after at
//! least [`RETURN_GAP`] without events. What is counted is decided here once
//! ([`GroupCounts`]): the writers count with it and `verify` counts the whole log again with
//! it and compares. Reads gather the rows of a scope ([`GroupData`]) and the statuses
//! (new, regressed, spiking) are computed here for every backend ([`list`], [`detail`]).
//!
//! Definitions:
//! - **new in version X**: the group's first event (of the scope) came in version X;
//!   `status=new` lists groups first seen in the window (since/until, default the last 7
//!   days) and, with `version=X`, first seen in X.
//! - **regressed**: the group had no event for at least the quiet period (default 7 days,
//!   at least [`RETURN_GAP`]) and was seen again, in a version it had never been seen in
//!   before that gap. Decided per account; a partner's group is regressed when it is in
//!   any of its accounts.
//! - **spiking**: the count of the current clock hour is at least [`SPIKE_MIN`] and more
//!   than [`SPIKE_FACTOR`] times the baseline, the mean hourly count of the 24 hours before it.

use std::collections::{BTreeMap, HashMap, HashSet};

use logvault_core::event::fingerprint::Fingerprint;
use logvault_core::{EventKind, Micros, NewEvent};

use crate::trends::{HOUR, hour_of};

/// The shortest quiet gap the writers record as a return; the quiet period of a query may
/// not be shorter.
pub const RETURN_GAP: i64 = 24 * HOUR;
/// The default quiet period of a regression.
pub const DEFAULT_QUIET: i64 = 7 * 24 * HOUR;
/// How many times the baseline the current hour must exceed to spike.
pub const SPIKE_FACTOR: u64 = 3;
/// The fewest events in the current hour that can make a spike.
pub const SPIKE_MIN: u64 = 10;
/// Hours of the baseline, and of the sparklines.
pub const BASELINE_HOURS: i64 = 24;

/// The stored form of a fingerprint: its 8 bytes as a big-endian signed integer (compact in
/// both backends' indexes); `None` unless `hash` is 16 hex digits.
pub fn fingerprint_number(hash: &str) -> Option<i64> {
    if hash.len() != 16 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(hash, 16).ok().map(|n| n as i64)
}

/// The 16 hex digits of a stored fingerprint.
pub fn fingerprint_hex(number: i64) -> String {
    format!("{:016x}", number as u64)
}

/// The stored fingerprint of a threat event's canonical body.
pub fn fingerprint_of(body: &str) -> Option<(i64, Fingerprint)> {
    let fingerprint = Fingerprint::of_body(body)?;
    let number = fingerprint_number(&fingerprint.hash)?;
    Some((number, fingerprint))
}

/// One (account, fingerprint) group as a transaction (or the whole log) counted it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRow {
    /// The events' account.
    pub account_id: String,
    /// The stored fingerprint ([`fingerprint_number`]).
    pub fingerprint: i64,
    /// Error type of the events.
    pub error_type: String,
    /// `sdk` or `api`.
    pub source: String,
    /// The normalised message.
    pub message: String,
    /// Path template or top frame.
    pub location: String,
    /// `received_at` of the first event.
    pub first_seen: i64,
    /// `received_at` of the last event.
    pub last_seen: i64,
    /// Events counted.
    pub count: i64,
    /// Version of the first event (`""` without one).
    pub first_version: String,
    /// Environment of the first event (`""` without one).
    pub first_environment: String,
}

/// Events of one group in one hour, version and environment.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GroupHourKey {
    /// The events' account.
    pub account_id: String,
    /// The stored fingerprint.
    pub fingerprint: i64,
    /// Start of the hour.
    pub hour: i64,
    /// `""` without one.
    pub version: String,
    /// `""` without one.
    pub environment: String,
}

/// A group seen again after at least [`RETURN_GAP`] without events.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ReturnRow {
    /// The events' account.
    pub account_id: String,
    /// The stored fingerprint.
    pub fingerprint: i64,
    /// The last event before the gap.
    pub quiet_since: i64,
    /// The first event after it.
    pub returned_at: i64,
}

/// The fingerprint stored beside one threat event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventFingerprint {
    /// The event's position.
    pub seq: u64,
    /// Its `received_at` (PostgreSQL's partition key).
    pub received_at: i64,
    /// Its account.
    pub account_id: String,
    /// Its stored fingerprint.
    pub fingerprint: i64,
}

/// What a transaction's threat events add to the group tables, or (for `verify`) what the
/// whole log holds. Events must be added in `seq` order.
#[derive(Debug, Default)]
pub struct GroupCounts {
    /// The fingerprint of every threat event counted, in `seq` order.
    pub fingerprints: Vec<EventFingerprint>,
    groups: HashMap<(String, i64), GroupRow>,
    hours: HashMap<GroupHourKey, i64>,
    returns: Vec<ReturnRow>,
}

impl GroupCounts {
    /// Counts `event`, stored at `seq` with `received_at`, if it is a threat event, by the
    /// fingerprint validation gave it (or that of its body).
    pub fn add(&mut self, event: &NewEvent, seq: u64, received_at: Micros) {
        if event.kind != EventKind::Threat {
            return;
        }
        let computed;
        let fingerprint = match &event.fingerprint {
            Some(fingerprint) => fingerprint,
            None => match Fingerprint::of_body(&event.body) {
                Some(fingerprint) => {
                    computed = fingerprint;
                    &computed
                }
                None => return,
            },
        };
        self.count_fingerprint(
            &event.account_id,
            seq,
            received_at,
            fingerprint,
            event.index.version.as_deref(),
            event.index.environment.as_deref(),
        );
    }

    /// Counts the threat event of `account_id` at `seq` whose canonical body is `body`.
    pub fn count(
        &mut self,
        account_id: &str,
        seq: u64,
        received_at: Micros,
        body: &str,
        version: Option<&str>,
        environment: Option<&str>,
    ) {
        if let Some(fingerprint) = Fingerprint::of_body(body) {
            self.count_fingerprint(
                account_id,
                seq,
                received_at,
                &fingerprint,
                version,
                environment,
            );
        }
    }

    /// Counts the threat event of `account_id` at `seq` whose fingerprint is `fingerprint`.
    fn count_fingerprint(
        &mut self,
        account_id: &str,
        seq: u64,
        received_at: Micros,
        fingerprint: &Fingerprint,
        version: Option<&str>,
        environment: Option<&str>,
    ) {
        let Some(number) = fingerprint_number(&fingerprint.hash) else {
            return;
        };
        let (version, environment) = (version.unwrap_or(""), environment.unwrap_or(""));
        self.fingerprints.push(EventFingerprint {
            seq,
            received_at: received_at.0,
            account_id: account_id.to_string(),
            fingerprint: number,
        });
        let at = received_at.0;
        let key = (account_id.to_string(), number);
        match self.groups.get_mut(&key) {
            Some(group) => {
                if at - group.last_seen >= RETURN_GAP {
                    self.returns.push(ReturnRow {
                        account_id: account_id.to_string(),
                        fingerprint: number,
                        quiet_since: group.last_seen,
                        returned_at: at,
                    });
                }
                group.last_seen = group.last_seen.max(at);
                group.count += 1;
            }
            None => {
                self.groups.insert(
                    key,
                    GroupRow {
                        account_id: account_id.to_string(),
                        fingerprint: number,
                        error_type: fingerprint.error_type.clone(),
                        source: fingerprint.source.clone(),
                        message: fingerprint.message.clone(),
                        location: fingerprint.location.clone(),
                        first_seen: at,
                        last_seen: at,
                        count: 1,
                        first_version: version.to_string(),
                        first_environment: environment.to_string(),
                    },
                );
            }
        }
        *self
            .hours
            .entry(GroupHourKey {
                account_id: account_id.to_string(),
                fingerprint: number,
                hour: hour_of(received_at),
                version: version.to_string(),
                environment: environment.to_string(),
            })
            .or_default() += 1;
    }

    /// Adds `later`'s counts (a request that committed after these) to these.
    pub fn merge(&mut self, later: GroupCounts) {
        self.fingerprints.extend(later.fingerprints);
        for (key, group) in later.groups {
            match self.groups.get_mut(&key) {
                Some(earlier) => {
                    if group.first_seen - earlier.last_seen >= RETURN_GAP {
                        self.returns.push(ReturnRow {
                            account_id: key.0.clone(),
                            fingerprint: key.1,
                            quiet_since: earlier.last_seen,
                            returned_at: group.first_seen,
                        });
                    }
                    earlier.last_seen = earlier.last_seen.max(group.last_seen);
                    earlier.count += group.count;
                }
                None => {
                    self.groups.insert(key, group);
                }
            }
        }
        self.returns.extend(later.returns);
        for (key, count) in later.hours {
            *self.hours.entry(key).or_default() += count;
        }
    }

    /// The (account, fingerprint) pairs counted: the groups whose stored last event the
    /// writer reads before writing.
    pub fn keys(&self) -> impl Iterator<Item = (&str, i64)> {
        self.groups
            .keys()
            .map(|(account, fp)| (account.as_str(), *fp))
    }

    /// The rows to upsert: each group's first event and counts (a stored group keeps its
    /// first columns and adds the count, taking the later last event).
    pub fn groups(&self) -> impl Iterator<Item = &GroupRow> {
        self.groups.values()
    }

    /// The hourly counts to add.
    pub fn hours(&self) -> impl Iterator<Item = (&GroupHourKey, i64)> {
        self.hours.iter().map(|(key, count)| (key, *count))
    }

    /// The returns to insert, given the stored last event of each group already stored
    /// (`stored_last_seen`): the returns within these counts, and those of stored groups
    /// whose first event here comes at least [`RETURN_GAP`] after their stored last one.
    pub fn returns(&self, stored_last_seen: &HashMap<(String, i64), i64>) -> Vec<ReturnRow> {
        let mut returns = self.returns.clone();
        for (key, group) in &self.groups {
            if let Some(last) = stored_last_seen.get(key)
                && group.first_seen - last >= RETURN_GAP
            {
                returns.push(ReturnRow {
                    account_id: key.0.clone(),
                    fingerprint: key.1,
                    quiet_since: *last,
                    returned_at: group.first_seen,
                });
            }
        }
        returns
    }

    /// Whether no threat event was counted.
    pub fn is_empty(&self) -> bool {
        self.fingerprints.is_empty()
    }
}

/// The group tables as one commit left them, for `verify`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupSnapshot {
    /// Events in the whole log at that commit.
    pub log_size: u64,
    /// Every group row of the scope.
    pub groups: Vec<GroupRow>,
    /// Every hourly count of the scope.
    pub hours: Vec<(GroupHourKey, i64)>,
    /// Every return of the scope.
    pub returns: Vec<ReturnRow>,
}

impl GroupSnapshot {
    /// The first difference between these stored rows and `counted` (what the log gives),
    /// if there is one.
    pub fn difference(&self, counted: &GroupCounts) -> Option<String> {
        let stored: HashMap<(String, i64), &GroupRow> = self
            .groups
            .iter()
            .map(|row| ((row.account_id.clone(), row.fingerprint), row))
            .collect();
        for (key, group) in &counted.groups {
            match stored.get(key) {
                Some(row) if *row == group => {}
                Some(row) => {
                    return Some(format!(
                        "threat group {} of {} is stored as {row:?} but the log gives {group:?}",
                        fingerprint_hex(key.1),
                        key.0
                    ));
                }
                None => {
                    return Some(format!(
                        "threat group {} of {} is missing ({} events)",
                        fingerprint_hex(key.1),
                        key.0,
                        group.count
                    ));
                }
            }
        }
        if let Some(row) = self.groups.iter().find(|row| {
            !counted
                .groups
                .contains_key(&(row.account_id.clone(), row.fingerprint))
        }) {
            return Some(format!(
                "threat group {} of {} is stored but no event of the log is in it",
                fingerprint_hex(row.fingerprint),
                row.account_id
            ));
        }
        let hours: HashMap<&GroupHourKey, i64> = self
            .hours
            .iter()
            .map(|(key, count)| (key, *count))
            .collect();
        if hours.len() != counted.hours.len() {
            return Some(format!(
                "{} hourly threat group counts are stored but the log gives {}",
                hours.len(),
                counted.hours.len()
            ));
        }
        for (key, count) in &counted.hours {
            if hours.get(key) != Some(count) {
                return Some(format!(
                    "the hourly count of threat group {} of {} at {} ({:?}, {:?}) is {:?} but the log gives {count}",
                    fingerprint_hex(key.fingerprint),
                    key.account_id,
                    Micros(key.hour).to_rfc3339(),
                    key.version,
                    key.environment,
                    hours.get(key)
                ));
            }
        }
        let stored_returns: HashSet<&ReturnRow> = self.returns.iter().collect();
        let counted_returns: HashSet<&ReturnRow> = counted.returns.iter().collect();
        if stored_returns != counted_returns {
            return Some(format!(
                "{} threat group returns are stored but the log gives {}",
                stored_returns.len(),
                counted_returns.len()
            ));
        }
        None
    }
}

/// What a read of groups gathers from a backend, every row in the reader's scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDataQuery {
    /// Only this group (the detail view).
    pub fingerprint: Option<i64>,
    /// Only events of this environment in the counts.
    pub environment: Option<String>,
    /// Only events of this version in the counts.
    pub version: Option<String>,
    /// Counts of hours from this one (inclusive) ...
    pub from_hour: i64,
    /// ... to this one (exclusive).
    pub to_hour: i64,
    /// The hourly series: hours from this one (inclusive) to `to_hour`.
    pub series_from_hour: i64,
    /// Whether `totals` are wanted (else a list counts every event of a group).
    pub totals: bool,
}

/// A backend's answer to a [`GroupDataQuery`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupData {
    /// Every (account, fingerprint) group of the scope (of the one fingerprint if asked).
    pub groups: Vec<GroupRow>,
    /// `(fingerprint, version, environment, count)` over the scope's accounts and the hours
    /// `[from_hour, to_hour)`, filtered by environment and version.
    pub totals: Vec<(i64, String, String, i64)>,
    /// `(fingerprint, hour, count)` over the scope's accounts and the hours
    /// `[series_from_hour, to_hour)`, filtered by environment and version.
    pub series: Vec<(i64, i64, i64)>,
    /// Every return of the scope.
    pub returns: Vec<ReturnRow>,
    /// `(account, fingerprint, version, first hour)` of every version of each group of the
    /// scope that has a return.
    pub version_firsts: Vec<(String, i64, String, i64)>,
}

/// `status=` of a group list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupStatus {
    /// First seen in the window (and in `version` if given).
    New,
    /// Returned after a quiet period in a version not seen before it.
    Regressed,
    /// The current hour is far above the baseline.
    Spiking,
}

/// How a group list is ordered (newest or largest first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupSort {
    /// By the last event, newest first.
    LastSeen,
    /// By the count in the window, largest first.
    Count,
}

/// A request for a list of groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupQuery {
    /// Only groups with events of this environment (and only those counted).
    pub environment: Option<String>,
    /// Only groups with events of this version (and only those counted).
    pub version: Option<String>,
    /// Count events received from here (default: all).
    pub since: Option<Micros>,
    /// Count events received before here (default: now).
    pub until: Option<Micros>,
    /// Only groups with this status.
    pub status: Option<GroupStatus>,
    /// The order.
    pub sort: GroupSort,
    /// The quiet period of a regression, at least [`RETURN_GAP`].
    pub quiet: i64,
    /// Groups per page.
    pub limit: usize,
    /// After this `(sort key, fingerprint)` of the previous page's last group.
    pub after: Option<(i64, i64)>,
    /// The clock the statuses are decided by.
    pub now: Micros,
}

impl GroupQuery {
    /// A query of every group, by last event, at `now`.
    pub fn new(now: Micros, limit: usize) -> Self {
        GroupQuery {
            environment: None,
            version: None,
            since: None,
            until: None,
            status: None,
            sort: GroupSort::LastSeen,
            quiet: DEFAULT_QUIET,
            limit,
            after: None,
            now,
        }
    }

    /// What the backend must gather for this list (all groups) or for the detail of
    /// `fingerprint` (whose series covers the window, at most 31 days).
    pub fn data_query(&self, fingerprint: Option<i64>) -> GroupDataQuery {
        let now_hour = hour_of(self.now);
        let to_hour = match self.until {
            Some(until) => {
                hour_of(until)
                    + if until.0.rem_euclid(HOUR) > 0 {
                        HOUR
                    } else {
                        0
                    }
            }
            None => now_hour + HOUR,
        };
        let from_hour = self.since.map_or(i64::MIN, hour_of);
        let series_hours = if fingerprint.is_some() {
            7 * 24
        } else {
            BASELINE_HOURS + 1
        };
        let mut series_from_hour = to_hour - series_hours * HOUR;
        if fingerprint.is_some() && self.since.is_some() {
            series_from_hour = from_hour.max(to_hour - 31 * 24 * HOUR);
        }
        GroupDataQuery {
            fingerprint,
            environment: self.environment.clone(),
            version: self.version.clone(),
            from_hour,
            to_hour,
            series_from_hour,
            totals: fingerprint.is_some() || self.is_filtered(),
        }
    }

    /// Whether the counts are of part of the log only.
    pub fn is_filtered(&self) -> bool {
        self.environment.is_some()
            || self.version.is_some()
            || self.since.is_some()
            || self.until.is_some()
    }
}

/// A regression of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Regression {
    /// The last event before the quiet period.
    pub quiet_since: Micros,
    /// The first event after it.
    pub returned_at: Micros,
    /// The versions first seen after it, sorted.
    pub new_versions: Vec<String>,
}

/// A spike of a group.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spike {
    /// Events in the current hour.
    pub current_hour: u64,
    /// Mean events per hour over the 24 hours before it.
    pub baseline: f64,
}

/// One group of a scope, aggregated over the scope's accounts.
#[derive(Debug, Clone, PartialEq)]
pub struct ThreatGroup {
    /// 16 hex digits.
    pub fingerprint: String,
    /// Error type.
    pub error_type: String,
    /// `sdk` or `api`.
    pub source: String,
    /// Normalised message.
    pub message: String,
    /// Path template or top frame (`""` without either).
    pub location: String,
    /// First event of the scope.
    pub first_seen: Micros,
    /// Last event of the scope.
    pub last_seen: Micros,
    /// Version of that first event.
    pub first_version: String,
    /// Events of the scope ever.
    pub total: u64,
    /// Events counted by the query's window and filters.
    pub count: u64,
    /// Accounts of the scope with events in the group.
    pub n_accounts: u64,
    /// Whether it is new in the query's window (and version).
    pub new: bool,
    /// Its latest regression, if it regressed.
    pub regression: Option<Regression>,
    /// Its spike, if it is spiking.
    pub spike: Option<Spike>,
    /// Hourly counts, oldest first, from the start of the series (`series_from`).
    pub series: Vec<u64>,
    /// Start of the first hour of `series`.
    pub series_from: Micros,
    /// `(version, environment, count)` in the window, largest first.
    pub by_version: Vec<(String, String, u64)>,
}

impl ThreatGroup {
    /// The sort key of this group in `sort`.
    pub fn sort_key(&self, sort: GroupSort) -> i64 {
        match sort {
            GroupSort::LastSeen => self.last_seen.0,
            GroupSort::Count => i64::try_from(self.count).unwrap_or(i64::MAX),
        }
    }
}

/// One page of groups.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupPage {
    /// The groups.
    pub groups: Vec<ThreatGroup>,
    /// `(sort key, fingerprint)` to continue after, when more match.
    pub next: Option<(i64, i64)>,
}

/// Every group of `data` aggregated over its accounts, statuses decided at `query.now`.
fn aggregate(data: &GroupData, query: &GroupQuery, detail: bool) -> Vec<ThreatGroup> {
    let request = query.data_query(None);
    let to_hour = request.to_hour;
    let series_from = if detail {
        query.data_query(Some(0)).series_from_hour
    } else {
        request.series_from_hour
    };
    let n_series = usize::try_from((to_hour - series_from) / HOUR).unwrap_or(0);
    let mut groups: BTreeMap<i64, ThreatGroup> = BTreeMap::new();
    let mut first_of: HashMap<i64, i64> = HashMap::new();
    for row in &data.groups {
        let group = groups
            .entry(row.fingerprint)
            .or_insert_with(|| ThreatGroup {
                fingerprint: fingerprint_hex(row.fingerprint),
                error_type: row.error_type.clone(),
                source: row.source.clone(),
                message: row.message.clone(),
                location: row.location.clone(),
                first_seen: Micros(row.first_seen),
                last_seen: Micros(row.last_seen),
                first_version: row.first_version.clone(),
                total: 0,
                count: 0,
                n_accounts: 0,
                new: false,
                regression: None,
                spike: None,
                series: vec![0; n_series],
                series_from: Micros(series_from),
                by_version: Vec::new(),
            });
        let first = first_of.entry(row.fingerprint).or_insert(row.first_seen);
        if row.first_seen < *first || (row.first_seen == *first && group.n_accounts == 0) {
            *first = row.first_seen;
            group.first_seen = Micros(row.first_seen);
            group.first_version = row.first_version.clone();
        }
        group.last_seen = group.last_seen.max(Micros(row.last_seen));
        group.total += u64::try_from(row.count).unwrap_or(0);
        group.n_accounts += 1;
    }
    for (fingerprint, version, environment, count) in &data.totals {
        if let Some(group) = groups.get_mut(fingerprint) {
            let count = u64::try_from(*count).unwrap_or(0);
            group.count += count;
            group
                .by_version
                .push((version.clone(), environment.clone(), count));
        }
    }
    for (fingerprint, hour, count) in &data.series {
        if let Some(group) = groups.get_mut(fingerprint)
            && let Ok(slot) = usize::try_from((hour - series_from) / HOUR)
            && let Some(bucket) = group.series.get_mut(slot)
        {
            *bucket += u64::try_from(*count).unwrap_or(0);
        }
    }
    // Regressions, per account: a return after at least the quiet period, followed by a
    // version first seen after it.
    let mut firsts: HashMap<(&str, i64), Vec<(&str, i64)>> = HashMap::new();
    for (account, fingerprint, version, hour) in &data.version_firsts {
        firsts
            .entry((account.as_str(), *fingerprint))
            .or_default()
            .push((version.as_str(), *hour));
    }
    for ret in &data.returns {
        if ret.returned_at - ret.quiet_since < query.quiet.max(RETURN_GAP) {
            continue;
        }
        let returned_hour = ret.returned_at.div_euclid(HOUR) * HOUR;
        let mut new_versions: Vec<String> = firsts
            .get(&(ret.account_id.as_str(), ret.fingerprint))
            .into_iter()
            .flatten()
            .filter(|(_, first_hour)| *first_hour >= returned_hour)
            .map(|(version, _)| version.to_string())
            .collect();
        if new_versions.is_empty() {
            continue;
        }
        new_versions.sort();
        new_versions.dedup();
        if let Some(group) = groups.get_mut(&ret.fingerprint) {
            let later = group
                .regression
                .as_ref()
                .is_none_or(|known| known.returned_at.0 < ret.returned_at);
            if later {
                group.regression = Some(Regression {
                    quiet_since: Micros(ret.quiet_since),
                    returned_at: Micros(ret.returned_at),
                    new_versions,
                });
            }
        }
    }
    if !request.totals && !detail {
        for group in groups.values_mut() {
            group.count = group.total;
        }
    }
    let window_from = query.since.unwrap_or(Micros(query.now.0 - DEFAULT_QUIET));
    let window_to = query.until.unwrap_or(Micros(i64::MAX));
    let now_slot = usize::try_from((hour_of(query.now) - series_from) / HOUR).ok();
    for group in groups.values_mut() {
        group
            .by_version
            .sort_by(|a, b| b.2.cmp(&a.2).then_with(|| (&a.0, &a.1).cmp(&(&b.0, &b.1))));
        group.new = group.first_seen >= window_from
            && group.first_seen < window_to
            && query
                .version
                .as_deref()
                .is_none_or(|version| version == group.first_version);
        if let Some(now_slot) = now_slot.filter(|slot| *slot < group.series.len()) {
            let current = group.series[now_slot];
            let start = now_slot.saturating_sub(BASELINE_HOURS as usize);
            let before: u64 = group.series[start..now_slot].iter().sum();
            let baseline = before as f64 / BASELINE_HOURS as f64;
            if current >= SPIKE_MIN && current as f64 > SPIKE_FACTOR as f64 * baseline {
                group.spike = Some(Spike {
                    current_hour: current,
                    baseline,
                });
            }
        }
    }
    groups.into_values().collect()
}

/// One page of the groups of `data` (gathered for `query.data_query(None)`).
pub fn list(data: &GroupData, query: &GroupQuery) -> GroupPage {
    let filtered = query.is_filtered();
    let mut groups: Vec<ThreatGroup> = aggregate(data, query, false)
        .into_iter()
        .filter(|group| !filtered || group.count > 0)
        .filter(|group| match query.status {
            None => true,
            Some(GroupStatus::New) => group.new,
            Some(GroupStatus::Regressed) => group.regression.is_some(),
            Some(GroupStatus::Spiking) => group.spike.is_some(),
        })
        .collect();
    let fingerprint = |group: &ThreatGroup| fingerprint_number(&group.fingerprint).unwrap_or(0);
    groups.sort_by(|a, b| {
        (b.sort_key(query.sort), fingerprint(b)).cmp(&(a.sort_key(query.sort), fingerprint(a)))
    });
    if let Some(after) = query.after {
        groups.retain(|group| (group.sort_key(query.sort), fingerprint(group)) < after);
    }
    let next = if groups.len() > query.limit {
        groups.truncate(query.limit);
        groups
            .last()
            .map(|group| (group.sort_key(query.sort), fingerprint(group)))
    } else {
        None
    };
    GroupPage { groups, next }
}

/// The group `fingerprint` of `data` (gathered for `query.data_query(Some(fingerprint))`),
/// if the scope has it.
pub fn detail(data: &GroupData, query: &GroupQuery, fingerprint: i64) -> Option<ThreatGroup> {
    aggregate(data, query, true)
        .into_iter()
        .find(|group| fingerprint_number(&group.fingerprint) == Some(fingerprint))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(message: &str) -> String {
        serde_json::json!({"error_type": "Timeout", "source": "sdk", "message": message})
            .to_string()
    }

    #[test]
    fn fingerprints_round_trip_through_their_stored_number() {
        for hash in [
            "0000000000000000",
            "ffffffffffffffff",
            "8000000000000001",
            "0123456789abcdef",
        ] {
            let number = fingerprint_number(hash).expect("hex");
            assert_eq!(fingerprint_hex(number), hash);
        }
        assert_eq!(fingerprint_number("xyz"), None);
        assert_eq!(fingerprint_number("0123456789abcdeg"), None);
    }

    /// Counting in pieces and merging them gives what counting in one piece gives, returns
    /// across the pieces included.
    #[test]
    fn merged_counts_equal_counts_made_in_one_piece() {
        let day = 24 * HOUR;
        let events = [
            ("mer_a", 0, "timed out after 3s", "1.0"),
            ("mer_a", HOUR, "timed out after 9s", "1.0"),
            ("mer_b", HOUR, "timed out after 9s", "1.0"),
            ("mer_a", 10 * day, "timed out after 1s", "2.0"),
            ("mer_a", 10 * day + 5, "other bug", "2.0"),
        ];
        let mut whole = GroupCounts::default();
        let (mut first, mut second) = (GroupCounts::default(), GroupCounts::default());
        for (i, (account, at, message, version)) in events.iter().enumerate() {
            let body = body(message);
            let seq = i as u64 + 1;
            whole.count(
                account,
                seq,
                Micros(*at),
                &body,
                Some(version),
                Some("prod"),
            );
            let part = if i < 3 { &mut first } else { &mut second };
            part.count(
                account,
                seq,
                Micros(*at),
                &body,
                Some(version),
                Some("prod"),
            );
        }
        first.merge(second);
        let sorted = |counts: &GroupCounts| {
            let mut groups: Vec<GroupRow> = counts.groups().cloned().collect();
            groups.sort_by_key(|g| (g.account_id.clone(), g.fingerprint));
            let mut hours: Vec<(GroupHourKey, i64)> =
                counts.hours().map(|(k, c)| (k.clone(), c)).collect();
            hours.sort();
            (
                groups,
                hours,
                counts.returns(&HashMap::new()),
                counts.fingerprints.clone(),
            )
        };
        assert_eq!(sorted(&first), sorted(&whole));
        let (groups, _, returns, fingerprints) = sorted(&whole);
        assert_eq!(groups.len(), 3, "one bug in two accounts and another bug");
        assert_eq!(fingerprints.len(), 5);
        assert_eq!(returns.len(), 1);
        assert_eq!(
            (returns[0].quiet_since, returns[0].returned_at),
            (HOUR, 10 * day)
        );
    }

    #[test]
    fn statuses_follow_their_definitions() {
        let day = 24 * HOUR;
        let now = 20 * day + 30 * 60 * 1_000_000;
        let (quiet_fp, spike_fp, steady_fp) = (1, 2, 3);
        let row = |fp: i64, first_seen: i64, last_seen: i64, version: &str| GroupRow {
            account_id: "mer_a".into(),
            fingerprint: fp,
            error_type: "E".into(),
            source: "sdk".into(),
            message: "m".into(),
            location: String::new(),
            first_seen,
            last_seen,
            count: 100,
            first_version: version.into(),
            first_environment: "prod".into(),
        };
        let now_hour = hour_of(Micros(now));
        let mut series = vec![(spike_fp, now_hour, 40)];
        for h in 1..=24 {
            series.push((spike_fp, now_hour - h * HOUR, 1));
            series.push((steady_fp, now_hour - h * HOUR, 10));
        }
        series.push((steady_fp, now_hour, 12));
        let data = GroupData {
            groups: vec![
                row(quiet_fp, 0, now - HOUR, "1.0"),
                row(spike_fp, 0, now, "1.0"),
                row(steady_fp, now - 2 * day, now, "2.0"),
            ],
            totals: vec![
                (quiet_fp, "1.0".into(), "prod".into(), 90),
                (quiet_fp, "2.0".into(), "prod".into(), 10),
            ],
            series,
            returns: vec![ReturnRow {
                account_id: "mer_a".into(),
                fingerprint: quiet_fp,
                quiet_since: day,
                returned_at: 19 * day,
            }],
            version_firsts: vec![
                ("mer_a".into(), quiet_fp, "1.0".into(), 0),
                ("mer_a".into(), quiet_fp, "2.0".into(), 19 * day),
            ],
        };
        let query = GroupQuery::new(Micros(now), 50);
        let page = list(&data, &query);
        let by = |fp: i64| {
            page.groups
                .iter()
                .find(|g| g.fingerprint == fingerprint_hex(fp))
                .expect("listed")
        };
        let regression = by(quiet_fp).regression.clone().expect("regressed");
        assert_eq!(regression.new_versions, ["2.0"]);
        assert!(by(spike_fp).spike.is_some());
        assert!(by(steady_fp).spike.is_none(), "12 against a baseline of 10");
        assert!(by(steady_fp).new && !by(quiet_fp).new);
        assert_eq!(
            by(quiet_fp).by_version[0],
            ("1.0".into(), "prod".into(), 90)
        );
        // A longer quiet period than the gap: no regression.
        let longer = GroupQuery {
            quiet: 30 * day,
            ..query.clone()
        };
        assert!(
            list(&data, &longer)
                .groups
                .iter()
                .all(|g| g.regression.is_none())
        );
        // A return whose versions were all seen before the gap is no regression.
        let mut old_versions = data.clone();
        old_versions.version_firsts.pop();
        assert!(
            list(&old_versions, &query)
                .groups
                .iter()
                .all(|g| g.regression.is_none())
        );
        // Status filters and pages.
        let regressed = GroupQuery {
            status: Some(GroupStatus::Regressed),
            ..query.clone()
        };
        assert_eq!(list(&data, &regressed).groups.len(), 1);
        let first = list(
            &data,
            &GroupQuery {
                limit: 2,
                ..query.clone()
            },
        );
        assert_eq!(first.groups.len(), 2);
        let rest = list(
            &data,
            &GroupQuery {
                after: first.next,
                ..query.clone()
            },
        );
        assert_eq!(rest.groups.len(), 1);
        assert!(rest.next.is_none());
        assert!(
            first
                .groups
                .iter()
                .all(|g| g.fingerprint != rest.groups[0].fingerprint)
        );
    }
}
