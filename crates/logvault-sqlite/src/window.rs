//! A `from`/`to` time window as a range of `seq`. `received_at` never decreases along `seq`
//! (the writer reuses the last stamp when the clock steps back), so the events of a window
//! are one run of positions, found by bisecting the table's integer key: about 22 lookups at
//! 3.6 M events. Without it a page of a recent window read its scope's index down to the
//! scope's first event, comparing every event's time on the way (an export of the last
//! minute took 89 ms at 60 k events and 1.3–2.7 s at 3.6 M).

use logvault_core::Micros;
use logvault_store::{EventQuery, StoreResult};
use rusqlite::{Connection, OptionalExtension};

use crate::backend;
use crate::read::log_size;

/// The positions a query's time window can match: `seq >= min_seq` and `seq < before_seq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct SeqRange {
    /// The first event stamped at or after `from`.
    pub(crate) min_seq: Option<u64>,
    /// The first event stamped at or after `to`; `None` while no event is, so events
    /// committed after the bisection still count.
    pub(crate) before_seq: Option<u64>,
}

impl SeqRange {
    /// The range of `query`'s `from` and `to`, with its cursor applied.
    pub(crate) fn of(connection: &Connection, query: &EventQuery) -> StoreResult<SeqRange> {
        if query.from.is_none() && query.to.is_none() {
            return Ok(SeqRange {
                min_seq: None,
                before_seq: query.before_seq,
            });
        }
        let size = log_size(connection)?;
        let min_seq = match query.from {
            // No event stamped at or after `from` yet: only events still to come can match.
            Some(from) => Some(first_stamped_at(connection, from, size)?.unwrap_or(size + 1)),
            None => None,
        };
        let to_seq = match query.to {
            Some(to) => first_stamped_at(connection, to, size)?,
            None => None,
        };
        let before_seq = match (to_seq, query.before_seq) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        Ok(SeqRange {
            min_seq,
            before_seq,
        })
    }

    /// True when no position can match.
    pub(crate) fn is_empty(&self) -> bool {
        matches!((self.min_seq, self.before_seq), (Some(low), Some(high)) if low >= high)
    }
}

/// The `seq` of the first event whose `received_at` is at least `at`, among the first
/// `size` positions; `None` if there is none.
fn first_stamped_at(connection: &Connection, at: Micros, size: u64) -> StoreResult<Option<u64>> {
    let mut statement = connection.prepare_cached(PROBE_SQL).map_err(backend)?;
    // Invariant: every event below `low` is stamped before `at`; the event at or after
    // `high`, if any, is stamped at or after it.
    let (mut low, mut high) = (1u64, size + 1);
    while low < high {
        let middle = low + (high - low) / 2;
        let next: Option<(u64, i64)> = statement
            .query_row([i64::try_from(middle).unwrap_or(i64::MAX)], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })
            .optional()
            .map_err(backend)?;
        match next {
            Some((seq, received_at)) if received_at < at.0 => low = seq + 1,
            _ => high = middle,
        }
    }
    Ok((low <= size).then_some(low))
}

/// The lookup [`first_stamped_at`] makes at each step: one search of the integer key.
pub(crate) const PROBE_SQL: &str =
    "SELECT seq, received_at FROM events WHERE seq >= ? ORDER BY seq LIMIT 1";
