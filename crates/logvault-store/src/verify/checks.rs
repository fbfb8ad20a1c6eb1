//! What can be checked of each event on its own — its leaf hash and its filter columns —
//! run on every core.

use logvault_core::Micros;
use logvault_core::event::IndexFields;
use logvault_core::merkle::Hash;

use super::rollup::DerivedTrends;
use super::task_failed;
use crate::trends::TrendCounts;
use crate::{ScannedEvent, StoreResult};

/// An event after the checks that need no other event (which run on every core), reduced to
/// what the walk in `seq` order needs.
pub(super) struct Checked {
    pub(super) seq: u64,
    pub(super) account_id: String,
    pub(super) account_seq: u64,
    pub(super) received_at: Micros,
    pub(super) leaf_hash: Hash,
    /// The stored fields hash to the stored leaf hash.
    pub(super) hash_matches: bool,
    /// The first filter column that disagrees with the body, or `Err` if the body is not a
    /// JSON object.
    pub(super) columns: Result<Option<&'static str>, ()>,
}

/// `columns`: the columns of the previous event, reused so that their strings are too. An
/// event up to `through_seq` is counted into `trends` from the columns its body gives, not
/// the stored ones, so that a changed column cannot hide a changed count.
fn standalone_check(
    scanned: ScannedEvent,
    columns: &mut IndexFields,
    trends: &mut TrendCounts,
    through_seq: u64,
) -> Checked {
    let event = &scanned.event;
    let columns = if columns.set_from_body(event.kind, &event.body) {
        if event.seq <= through_seq {
            trends.count(event.kind, &event.account_id, event.received_at, columns);
        }
        Ok(index_mismatch(
            columns,
            &scanned.index,
            scanned.search_text_stored,
        ))
    } else {
        Err(())
    };
    Checked {
        hash_matches: event.compute_leaf_hash() == event.leaf_hash,
        columns,
        seq: event.seq,
        account_seq: event.account_seq,
        received_at: event.received_at,
        leaf_hash: event.leaf_hash,
        account_id: scanned.event.account_id,
    }
}

/// [`standalone_check`] of every event, split across `threads` (on the blocking pool, whose
/// threads live on from chunk to chunk), each counting into a set of `derived` of its own.
/// The events' strings are freed there too.
pub(super) async fn standalone_checks(
    mut chunk: Vec<ScannedEvent>,
    threads: usize,
    derived: &mut DerivedTrends,
) -> StoreResult<Vec<Checked>> {
    let part = chunk.len().div_ceil(threads).max(1);
    let mut parts = Vec::new();
    while chunk.len() > part {
        parts.push(chunk.split_off(chunk.len() - part));
    }
    parts.push(chunk);
    let workers: Vec<_> = parts
        .into_iter()
        .rev()
        .map(|events| {
            let (mut trends, through_seq) = derived.take();
            tokio::task::spawn_blocking(move || {
                let mut columns = IndexFields::default();
                let checked = events
                    .into_iter()
                    .map(|event| standalone_check(event, &mut columns, &mut trends, through_seq))
                    .collect::<Vec<_>>();
                (checked, trends)
            })
        })
        .collect();
    let mut checked = Vec::new();
    for worker in workers {
        let (part, trends) = worker.await.map_err(task_failed)?;
        checked.extend(part);
        derived.give_back(trends);
    }
    Ok(checked)
}

fn index_mismatch(
    derived: &IndexFields,
    stored: &IndexFields,
    search_text_stored: bool,
) -> Option<&'static str> {
    let pairs: [(&'static str, bool); 10] = [
        ("action", derived.action == stored.action),
        ("outcome", derived.outcome == stored.outcome),
        ("actor_id", derived.actor_id == stored.actor_id),
        ("ip", derived.ip == stored.ip),
        ("request_id", derived.request_id == stored.request_id),
        ("error_type", derived.error_type == stored.error_type),
        ("source", derived.source == stored.source),
        ("version", derived.version == stored.version),
        ("environment", derived.environment == stored.environment),
        (
            "search_text",
            !search_text_stored || derived.search_text == stored.search_text,
        ),
    ];
    pairs
        .into_iter()
        .find(|(_, equal)| !equal)
        .map(|(name, _)| name)
}
