//! The trend rollup every backend keeps in its inserting transaction: event counts per
//! (dimension, account, hour, key), so trend charts and the overview read counts instead of
//! the log. This is the one place that decides what is counted; each backend only writes the
//! counts and sums them back in its own SQL.

use std::collections::HashMap;

use logvault_core::{EventKind, Micros, NewEvent};

use crate::{SIGN_IN_ACTION, TrendGroup, TrendQuery};

/// One hour in microseconds: the granularity of the rollup.
pub const HOUR: i64 = 3_600_000_000;

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

/// Counts gathered in memory for one transaction, written once at its end.
#[derive(Debug, Default)]
pub struct TrendCounts(HashMap<(i16, String, i64, String), u64>);

impl TrendCounts {
    /// Counts `event`, stored with `received_at`, in every dimension it belongs to.
    pub fn add(&mut self, event: &NewEvent, received_at: Micros) {
        let hour = received_at.0.div_euclid(HOUR) * HOUR;
        let index = &event.index;
        let text = |value: &Option<String>| value.as_deref().unwrap_or_default().to_string();
        let mut count = |group: TrendGroup, key: String| {
            *self
                .0
                .entry((dimension(group), event.account_id.clone(), hour, key))
                .or_default() += 1;
        };
        match event.kind {
            EventKind::Threat => {
                count(TrendGroup::Version, text(&index.version));
                count(TrendGroup::Environment, text(&index.environment));
                count(TrendGroup::ErrorType, text(&index.error_type));
            }
            EventKind::Audit => {
                count(TrendGroup::AuditAction, text(&index.action));
                if index.action.as_deref() == Some(SIGN_IN_ACTION) {
                    count(TrendGroup::SignInOutcome, text(&index.outcome));
                    if let (Some("failure"), Some(ip)) = (index.outcome.as_deref(), index.ip) {
                        count(TrendGroup::FailedSignInIp, hex::encode(ip));
                    }
                }
            }
        }
    }

    /// Adds `other`'s counts (a request that committed) to these.
    pub fn merge(&mut self, other: TrendCounts) {
        for (key, count) in other.0 {
            *self.0.entry(key).or_default() += count;
        }
    }

    /// `(dimension, account, hour, key, count)` for every counted group.
    pub fn rows(&self) -> impl Iterator<Item = (i16, &str, i64, &str, u64)> {
        self.0
            .iter()
            .map(|((dimension, account, hour, key), count)| {
                (*dimension, account.as_str(), *hour, key.as_str(), *count)
            })
    }
}
