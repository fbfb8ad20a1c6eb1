//! The trend rollup derived again from the log and compared with the stored one. The
//! per-event workers count each event they check, from the columns its body gives, into a
//! set of counts of their own; the sets are merged and compared row by row, both ways, with a
//! snapshot of the stored rows read before the scan.

use logvault_core::Micros;

use super::{Divergence, diverge};
use crate::trends::{self, TrendCounts};
use crate::{TrendGroup, TrendSnapshot};

/// Groups a worker's own set may hold before it is merged into the total: each set then stays
/// small (and in cache) however many rows the rollup has, and the memory of the counts stays
/// bounded by the rollup's rows, not by that times the workers.
const WORKER_GROUPS: usize = 1 << 14;

/// Counts kept on the per-event workers, one set per worker so they never wait for each
/// other.
pub(super) struct DerivedTrends {
    /// Only events up to this `seq` are counted: those the stored snapshot covers.
    through_seq: u64,
    idle: Vec<TrendCounts>,
    merged: TrendCounts,
}

impl DerivedTrends {
    pub(super) fn new(through_seq: u64) -> Self {
        DerivedTrends {
            through_seq,
            idle: Vec::new(),
            merged: TrendCounts::default(),
        }
    }

    /// A set of counts for a worker to count into, and the last `seq` to count.
    pub(super) fn take(&mut self) -> (TrendCounts, u64) {
        (self.idle.pop().unwrap_or_default(), self.through_seq)
    }

    /// Takes back a worker's counts, merging them once they grow past [`WORKER_GROUPS`].
    pub(super) fn give_back(&mut self, counts: TrendCounts) {
        if counts.len() > WORKER_GROUPS {
            self.merged.merge(counts);
        } else {
            self.idle.push(counts);
        }
    }

    /// Every worker's counts together.
    pub(super) fn total(mut self) -> TrendCounts {
        for counts in self.idle {
            self.merged.merge(counts);
        }
        self.merged
    }
}

/// A row that differs between the stored rollup and the one derived from the log.
struct Difference<'a> {
    dimension: i64,
    account_id: &'a str,
    hour: i64,
    key: &'a str,
    stored: Option<i64>,
    derived: Option<u64>,
}

/// The first differing row (in dimension, account, hour, key order) between the stored
/// `snapshot` and `derived`, the counts of the events with `seq <= snapshot.log_size`.
pub(super) fn compare(snapshot: &TrendSnapshot, mut derived: TrendCounts) -> Option<Divergence> {
    let mut differences = Vec::new();
    for row in &snapshot.rows {
        // Taken out, so that what is left at the end is what the store lacks.
        let counted = i16::try_from(row.dimension)
            .ok()
            .and_then(|dimension| derived.remove(dimension, &row.account_id, row.hour, &row.key));
        if counted.and_then(|count| i64::try_from(count).ok()) != Some(row.count) {
            differences.push(Difference {
                dimension: row.dimension,
                account_id: &row.account_id,
                hour: row.hour,
                key: &row.key,
                stored: Some(row.count),
                derived: counted,
            });
        }
    }
    differences.extend(
        derived
            .rows()
            .map(|(dimension, account_id, hour, key, count)| Difference {
                dimension: dimension.into(),
                account_id,
                hour,
                key,
                stored: None,
                derived: Some(count),
            }),
    );
    differences.sort_unstable_by(|a, b| {
        (a.dimension, a.account_id, a.hour, a.key).cmp(&(b.dimension, b.account_id, b.hour, b.key))
    });
    let first = differences.first()?;
    let counts = match (first.stored, first.derived) {
        (Some(stored), Some(derived)) => format!("stored {stored}, the log gives {derived}"),
        (None, Some(derived)) => format!("no stored row, the log gives {derived}"),
        (Some(stored), None) => format!("stored {stored}, no event of the log is counted there"),
        (None, None) => String::new(),
    };
    let more = match differences.len() - 1 {
        0 => String::new(),
        n => format!(" ({n} more rows differ)"),
    };
    diverge(
        None,
        "event_trends",
        format!(
            "the counts differ from the log at dimension {} ({}), account {}, hour {}, key {}: {counts}{more}",
            first.dimension,
            group_name(first.dimension),
            quoted(first.account_id),
            Micros(first.hour).to_rfc3339(),
            quoted(first.key),
        ),
    )
}

/// The name a grouping is asked for by.
fn group_name(dimension: i64) -> &'static str {
    match i16::try_from(dimension).ok().and_then(trends::group) {
        Some(TrendGroup::Version) => "version",
        Some(TrendGroup::Environment) => "environment",
        Some(TrendGroup::ErrorType) => "error_type",
        Some(TrendGroup::SignInOutcome) => "sign-in outcome",
        Some(TrendGroup::AuditAction) => "audit action",
        Some(TrendGroup::FailedSignInIp) => "failed sign-in address",
        None => "no such dimension",
    }
}

/// `text` quoted and escaped, cut to its first 64 characters: a stored row may hold
/// anything, and a report is one line.
fn quoted(text: &str) -> String {
    const MAX_CHARS: usize = 64;
    match text.char_indices().nth(MAX_CHARS) {
        Some((end, _)) => format!("{:?}…", &text[..end]),
        None => format!("{text:?}"),
    }
}

#[cfg(test)]
mod tests {
    use logvault_core::EventKind;
    use logvault_core::event::IndexFields;

    use super::*;
    use crate::StoredTrendRow;

    fn row(dimension: i64, account_id: &str, key: &str, count: i64) -> StoredTrendRow {
        StoredTrendRow {
            dimension,
            account_id: account_id.into(),
            hour: 0,
            key: key.into(),
            count,
        }
    }

    /// Every way the stored rows can differ from the derived ones, and what is reported.
    #[test]
    fn reports_the_first_differing_row_either_way() {
        let derived = || {
            let mut derived = TrendCounts::default();
            let columns = IndexFields {
                action: Some("user.logout".into()),
                ..IndexFields::default()
            };
            for _ in 0..3 {
                derived.count(EventKind::Audit, "mer_a", Micros(5), &columns);
            }
            derived
        };
        let matching = row(4, "mer_a", "user.logout", 3);
        let cases: Vec<(&str, Vec<StoredTrendRow>, Option<&str>)> = vec![
            ("equal", vec![matching.clone()], None),
            (
                "count changed",
                vec![row(4, "mer_a", "user.logout", 4)],
                Some(
                    "dimension 4 (audit action), account \"mer_a\", hour 1970-01-01T00:00:00.000000Z, key \"user.logout\": stored 4, the log gives 3",
                ),
            ),
            (
                "negative count",
                vec![row(4, "mer_a", "user.logout", -3)],
                Some("stored -3, the log gives 3"),
            ),
            (
                "row deleted",
                vec![],
                Some("key \"user.logout\": no stored row, the log gives 3"),
            ),
            (
                "row added",
                vec![matching.clone(), row(9, "mer_a", "x\n", 0)],
                Some(
                    "dimension 9 (no such dimension), account \"mer_a\", hour 1970-01-01T00:00:00.000000Z, key \"x\\n\": stored 0, no event of the log is counted there",
                ),
            ),
            (
                "key renamed",
                vec![row(4, "mer_a", "user.logon", 3)],
                Some(
                    "key \"user.logon\": stored 3, no event of the log is counted there (1 more rows differ)",
                ),
            ),
        ];
        for (case, rows, expected) in cases {
            let snapshot = TrendSnapshot { log_size: 3, rows };
            let divergence = compare(&snapshot, derived());
            match (expected, &divergence) {
                (None, None) => {}
                (Some(expected), Some(divergence)) => {
                    assert_eq!(
                        (divergence.seq, divergence.field.as_str()),
                        (None, "event_trends")
                    );
                    assert!(
                        divergence.message.contains(expected),
                        "{case}: {divergence}"
                    );
                }
                _ => panic!("{case}: {divergence:?}"),
            }
        }
    }

    /// A worker's set that outgrows its bound is merged into the total and the worker starts
    /// a new one; nothing is lost or counted twice on the way.
    #[test]
    fn worker_sets_merged_early_lose_nothing() {
        let mut derived = DerivedTrends::new(u64::MAX);
        let groups = WORKER_GROUPS + 10;
        for _ in 0..2 {
            let (mut counts, _) = derived.take();
            assert!(counts.is_empty(), "a merged set is not handed out again");
            for i in 0..groups {
                let columns = IndexFields {
                    action: Some(format!("action.{i}")),
                    ..IndexFields::default()
                };
                counts.count(EventKind::Audit, "mer_a", Micros(0), &columns);
            }
            derived.give_back(counts);
        }
        let total = derived.total();
        assert_eq!(total.len(), groups);
        assert!(total.rows().all(|(.., count)| count == 2));
    }

    #[test]
    fn long_keys_are_cut() {
        let long = "é".repeat(100);
        assert_eq!(quoted(&long), format!("{:?}…", "é".repeat(64)));
        assert_eq!(quoted("short"), "\"short\"");
    }
}
