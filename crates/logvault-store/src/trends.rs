//! The trend rollup every backend keeps in its inserting transaction: event counts per
//! (dimension, account, hour, key), so trend charts and the overview read counts instead of
//! the log. This is the one place that decides what is counted ([`counted_groups`]): the
//! writers count each event they insert with it, `verify` counts each stored event with it
//! again (from the columns its body gives) and compares; each backend only writes the
//! counts and sums them back in its own SQL.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use logvault_core::event::IndexFields;
use logvault_core::{EventKind, Micros, NewEvent};

use crate::{SIGN_IN_ACTION, TrendGroup, TrendQuery};

/// One hour in microseconds: the granularity of the rollup.
pub const HOUR: i64 = 3_600_000_000;

/// Every grouping the rollup keeps.
pub const GROUPS: [TrendGroup; 6] = [
    TrendGroup::Version,
    TrendGroup::Environment,
    TrendGroup::ErrorType,
    TrendGroup::SignInOutcome,
    TrendGroup::AuditAction,
    TrendGroup::FailedSignInIp,
];

/// The stored `dimension` code of a grouping.
pub fn dimension(group: TrendGroup) -> i16 {
    match group {
        TrendGroup::Version => 0,
        TrendGroup::Environment => 1,
        TrendGroup::ErrorType => 2,
        TrendGroup::SignInOutcome => 3,
        TrendGroup::AuditAction => 4,
        TrendGroup::FailedSignInIp => 5,
    }
}

/// The grouping whose stored code is `dimension`, if there is one.
pub fn group(dimension: i16) -> Option<TrendGroup> {
    GROUPS
        .into_iter()
        .find(|group| self::dimension(*group) == dimension)
}

/// The start of the hour an event received at `received_at` is counted in.
pub fn hour_of(received_at: Micros) -> i64 {
    received_at.0.div_euclid(HOUR) * HOUR
}

/// The whole hours `[from, to)` a query's range touches: counts are kept per hour, so a
/// range widens to the hours it overlaps.
pub fn hour_range(query: &TrendQuery) -> (i64, i64) {
    let from = query.from.0.div_euclid(HOUR) * HOUR;
    let to = query.to.0.div_euclid(HOUR) * HOUR
        + if query.to.0.rem_euclid(HOUR) > 0 {
            HOUR
        } else {
            0
        };
    (from, to)
}

/// Calls `count(group, key)` for every group an event of `kind` with the filter columns
/// `columns` is counted in: what the rollup counts, decided here once for the writers and
/// for `verify`. Allocates nothing.
pub fn counted_groups(
    kind: EventKind,
    columns: &IndexFields,
    mut count: impl FnMut(TrendGroup, &str),
) {
    fn text(value: &Option<String>) -> &str {
        value.as_deref().unwrap_or_default()
    }
    match kind {
        EventKind::Threat => {
            count(TrendGroup::Version, text(&columns.version));
            count(TrendGroup::Environment, text(&columns.environment));
            count(TrendGroup::ErrorType, text(&columns.error_type));
        }
        EventKind::Audit => {
            count(TrendGroup::AuditAction, text(&columns.action));
            if columns.action.as_deref() == Some(SIGN_IN_ACTION) {
                count(TrendGroup::SignInOutcome, text(&columns.outcome));
                if let (Some("failure"), Some(ip)) = (columns.outcome.as_deref(), columns.ip) {
                    let mut hex = [0u8; 32];
                    // 16 bytes fill exactly 32 hex digits, all ASCII: neither step can fail.
                    if hex::encode_to_slice(ip, &mut hex).is_ok()
                        && let Ok(key) = std::str::from_utf8(&hex)
                    {
                        count(TrendGroup::FailedSignInIp, key);
                    }
                }
            }
        }
    }
}

/// Event counts per (dimension, account, hour, key): a writer's for one transaction, written
/// once at its end, or `verify`'s for the whole log. Each account id and key is kept once and
/// rows refer to it by number, so counting an event allocates only for an account or key not
/// seen before (verification counts millions of events in a row).
#[derive(Debug, Default)]
pub struct TrendCounts {
    names: Names,
    counts: HashMap<(i16, u32, i64, u32), u64, BuildHasherDefault<FxHasher>>,
}

impl TrendCounts {
    /// Counts `event`, stored with `received_at`, in every group it belongs to.
    pub fn add(&mut self, event: &NewEvent, received_at: Micros) {
        self.count(event.kind, &event.account_id, received_at, &event.index);
    }

    /// Counts an event of `kind` in `account_id` received at `received_at` whose filter
    /// columns are `columns`, in every group it belongs to.
    pub fn count(
        &mut self,
        kind: EventKind,
        account_id: &str,
        received_at: Micros,
        columns: &IndexFields,
    ) {
        let hour = hour_of(received_at);
        let account = self.names.intern(account_id);
        let (names, counts) = (&mut self.names, &mut self.counts);
        counted_groups(kind, columns, |group, key| {
            let key = names.intern(key);
            *counts
                .entry((dimension(group), account, hour, key))
                .or_default() += 1;
        });
    }

    /// Adds `other`'s counts (a request that committed, or another worker's share) to these.
    pub fn merge(&mut self, other: TrendCounts) {
        if self.counts.is_empty() {
            *self = other;
            return;
        }
        for ((dimension, account, hour, key), count) in other.counts {
            let account = self.names.intern(other.names.name(account));
            let key = self.names.intern(other.names.name(key));
            *self
                .counts
                .entry((dimension, account, hour, key))
                .or_default() += count;
        }
    }

    /// Removes the count of one group and returns it, if anything was counted there.
    pub fn remove(
        &mut self,
        dimension: i16,
        account_id: &str,
        hour: i64,
        key: &str,
    ) -> Option<u64> {
        let account = self.names.number(account_id)?;
        let key = self.names.number(key)?;
        self.counts.remove(&(dimension, account, hour, key))
    }

    /// How many groups hold a count.
    pub fn len(&self) -> usize {
        self.counts.len()
    }

    /// Whether nothing was counted.
    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }

    /// `(dimension, account, hour, key, count)` for every counted group, in no order.
    pub fn rows(&self) -> impl Iterator<Item = (i16, &str, i64, &str, u64)> {
        self.counts
            .iter()
            .map(|((dimension, account, hour, key), count)| {
                (
                    *dimension,
                    self.names.name(*account),
                    *hour,
                    self.names.name(*key),
                    *count,
                )
            })
    }
}

/// Account ids and keys, each kept once and known by its number.
#[derive(Debug, Default)]
struct Names {
    numbers: HashMap<Box<str>, u32, BuildHasherDefault<FxHasher>>,
    names: Vec<Box<str>>,
}

impl Names {
    fn intern(&mut self, name: &str) -> u32 {
        // Look up before inserting: `entry` would need an owned key for every lookup.
        if let Some(number) = self.numbers.get(name) {
            return *number;
        }
        let number = u32::try_from(self.names.len()).unwrap_or(u32::MAX);
        self.names.push(name.into());
        self.numbers.insert(name.into(), number);
        number
    }

    fn number(&self, name: &str) -> Option<u32> {
        self.numbers.get(name).copied()
    }

    fn name(&self, number: u32) -> &str {
        self.names.get(number as usize).map_or("", |name| name)
    }
}

/// FxHash (the multiply-and-rotate hash rustc keeps its own tables with), a word at a time,
/// for the maps `verify` looks up once or more per event: the trend counts here, the
/// per-account sequences of its walk. The keys are the service's own short strings and
/// numbers, so the flooding resistance of the default hasher buys nothing, and its cost (and
/// that of a byte-at-a-time FNV) showed in profiles.
#[derive(Default)]
pub(crate) struct FxHasher(u64);

impl FxHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for word in &mut words {
            let mut eight = [0u8; 8];
            eight.copy_from_slice(word);
            self.add(u64::from_le_bytes(eight));
        }
        let rest = words.remainder();
        if !rest.is_empty() {
            let mut eight = [0u8; 8];
            eight[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(eight));
        }
    }

    fn write_u8(&mut self, value: u8) {
        self.add(u64::from(value));
    }

    fn write_u16(&mut self, value: u16) {
        self.add(u64::from(value));
    }

    fn write_u32(&mut self, value: u32) {
        self.add(u64::from(value));
    }

    fn write_u64(&mut self, value: u64) {
        self.add(value);
    }

    fn write_usize(&mut self, value: usize) {
        self.add(value as u64);
    }

    fn finish(&self) -> u64 {
        // The table takes its bucket from the low bits; the multiply leaves its best mixing
        // in the high ones.
        self.0.rotate_left(26)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_group_has_its_own_dimension() {
        for group in GROUPS {
            assert_eq!(super::group(dimension(group)), Some(group), "{group:?}");
        }
        assert_eq!(super::group(GROUPS.len() as i16), None);
    }

    /// Counting in pieces and merging them gives what counting in one piece gives, whatever
    /// the order the pieces met their account ids and keys in.
    #[test]
    fn merged_counts_equal_counts_made_in_one_piece() {
        let columns = |action: &str, outcome: &str, ip: u8| IndexFields {
            action: Some(action.into()),
            outcome: Some(outcome.into()),
            ip: Some([ip; 16]),
            ..IndexFields::default()
        };
        let events = [
            ("mer_a", 0, columns("user.login", "failure", 1)),
            ("mer_b", HOUR, columns("user.login", "failure", 1)),
            ("mer_a", 1, columns("user.logout", "success", 2)),
            ("mer_b", HOUR + 5, columns("user.login", "success", 2)),
            ("mer_a", 7, columns("user.login", "failure", 1)),
        ];
        let mut whole = TrendCounts::default();
        let (mut first, mut second) = (TrendCounts::default(), TrendCounts::default());
        for (i, (account, at, columns)) in events.iter().enumerate() {
            whole.count(EventKind::Audit, account, Micros(*at), columns);
            let part = if i % 2 == 0 { &mut first } else { &mut second };
            part.count(EventKind::Audit, account, Micros(*at), columns);
        }
        // `second` met mer_b first, so its numbers differ from `first`'s.
        first.merge(second);
        let sorted = |counts: &TrendCounts| {
            let mut rows: Vec<(i16, String, i64, String, u64)> = counts
                .rows()
                .map(|(d, a, h, k, c)| (d, a.to_string(), h, k.to_string(), c))
                .collect();
            rows.sort();
            rows
        };
        assert_eq!(sorted(&first), sorted(&whole));
        let failed_ip = (
            dimension(TrendGroup::FailedSignInIp),
            "mer_a".to_string(),
            0,
            "01".repeat(16),
            2,
        );
        assert!(sorted(&whole).contains(&failed_ip), "{:?}", sorted(&whole));
    }
}
