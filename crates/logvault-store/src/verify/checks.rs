//! What can be checked of each event on its own — its leaf hash and its filter columns —
//! run on every core.

use std::collections::HashMap;
use std::sync::Arc;

use logvault_core::event::IndexFields;
use logvault_core::merkle::Hash;
use logvault_core::{EventKind, Micros, StoredEvent};
use serde_json::Value;

use super::rollup::DerivedTrends;
use super::task_failed;
use crate::retention::{DAY, HOLD_LIFTED_ACTION, HOLD_PLACED_ACTION, PURGED_ACTION, PurgeBatch};
use crate::trends::TrendCounts;
use crate::{ScannedEvent, StoreResult};

/// An event after the checks that need no other event (which run on every core), reduced to
/// what the walk in `seq` order needs.
pub(super) struct Checked {
    pub(super) seq: u64,
    pub(super) account_id: String,
    pub(super) kind: EventKind,
    pub(super) account_seq: u64,
    pub(super) received_at: Micros,
    pub(super) leaf_hash: Hash,
    /// The stored fields hash to the stored leaf hash.
    pub(super) hash_matches: bool,
    /// The first filter column that disagrees with the body, or `Err` if the body is not a
    /// JSON object.
    pub(super) columns: Result<Option<&'static str>, ()>,
    /// What this event means for retention (a purged event, a purge record, a hold change).
    pub(super) retention: Retention,
    /// Why a purged event or a purge record does not hold up, if it does not.
    pub(super) retention_problem: Option<String>,
}

/// The part an event plays in retention, for the walk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Retention {
    None,
    /// Purged by the stored purge recorded at this `seq`.
    Purged(u64),
    /// Purged by a record at this `seq` that was not stored when verification started: a
    /// purge made while it ran, checked again at the end.
    PurgedLater(u64),
    /// The `retention.purged` event of a stored purge.
    PurgeRecord,
    /// A hold placed (`true`) or lifted on the event's account.
    Hold(bool),
}

/// What is left of a purged event, to check against its purge.
#[derive(Debug, Clone)]
pub(super) struct PurgedEvent {
    pub(super) seq: u64,
    pub(super) account_id: String,
    pub(super) kind: EventKind,
    pub(super) received_at: Micros,
}

/// The stored purges by `record_seq`.
pub(super) type Purges = HashMap<u64, PurgeBatch>;

/// A purged event must lie inside the purge that its row names, which must be stored.
pub(super) fn check_purged(
    event: &PurgedEvent,
    record_seq: u64,
    purges: &Purges,
) -> Option<String> {
    let Some(batch) = purges.get(&record_seq) else {
        return Some(format!(
            "the payload was removed, but no purge is recorded at seq {record_seq}"
        ));
    };
    let inside = batch.account_id == event.account_id
        && batch.kind == event.kind
        && (batch.from_seq..=batch.to_seq).contains(&event.seq)
        && event.received_at < batch.cutoff;
    (!inside)
        .then(|| format!("the payload was removed outside the purge recorded at seq {record_seq}"))
}

/// A purge record must describe its stored purge exactly, and its policy must allow it.
fn check_purge_record(event: &StoredEvent, batch: &PurgeBatch) -> Option<String> {
    let body: Value = serde_json::from_str(&event.body).unwrap_or_default();
    let described = (body.get("action").and_then(Value::as_str) == Some(PURGED_ACTION))
        .then(|| body.get("metadata"))
        .flatten()
        .and_then(|metadata| PurgeBatch::from_metadata(&event.account_id, metadata));
    if described.as_ref() != Some(batch) {
        return Some("the stored purge differs from the purge record in the log".into());
    }
    let allowed = event.received_at.0 - i64::from(batch.days) * DAY;
    (batch.cutoff.0 > allowed).then(|| {
        format!(
            "the purge cut off events newer than its {}-day policy allows",
            batch.days
        )
    })
}

fn hold_change(event: &StoredEvent, columns: &IndexFields) -> Retention {
    if event.kind != EventKind::Audit {
        return Retention::None;
    }
    match columns.action.as_deref() {
        Some(HOLD_PLACED_ACTION) => Retention::Hold(true),
        Some(HOLD_LIFTED_ACTION) => Retention::Hold(false),
        _ => Retention::None,
    }
}

/// `columns`: the columns of the previous event, reused so that their strings are too. An
/// event up to `through_seq` is counted into `trends` from the columns its body gives, not
/// the stored ones, so that a changed column cannot hide a changed count.
fn standalone_check(
    scanned: ScannedEvent,
    columns: &mut IndexFields,
    trends: &mut TrendCounts,
    through_seq: u64,
    purges: &Purges,
) -> Checked {
    let event = &scanned.event;
    if let Some(record_seq) = scanned.purged_by {
        // Only what the proofs need is left: the leaf hash is checked by the tree and the
        // purge against its record; the purge took the event out of the rollup.
        let purged = PurgedEvent {
            seq: event.seq,
            account_id: event.account_id.clone(),
            kind: event.kind,
            received_at: event.received_at,
        };
        let (retention, retention_problem) = if purges.contains_key(&record_seq) {
            (
                Retention::Purged(record_seq),
                check_purged(&purged, record_seq, purges),
            )
        } else {
            (Retention::PurgedLater(record_seq), None)
        };
        return Checked {
            hash_matches: true,
            columns: Ok(None),
            kind: event.kind,
            retention,
            retention_problem,
            seq: event.seq,
            account_seq: event.account_seq,
            received_at: event.received_at,
            leaf_hash: event.leaf_hash,
            account_id: scanned.event.account_id,
        };
    }
    let (mut retention, mut retention_problem) = (Retention::None, None);
    if let Some(batch) = purges.get(&event.seq) {
        retention = Retention::PurgeRecord;
        retention_problem = check_purge_record(event, batch);
    }
    let columns = if columns.set_from_body(event.kind, &event.body) {
        if retention == Retention::None {
            retention = hold_change(event, columns);
        }
        if event.seq <= through_seq {
            trends.count(event.kind, &event.account_id, event.received_at, columns);
        }
        Ok(
            index_mismatch(columns, &scanned.index, scanned.search_text_stored)
                .or_else(|| fingerprint_mismatch(event, scanned.fingerprint)),
        )
    } else {
        Err(())
    };
    Checked {
        hash_matches: event.compute_leaf_hash() == event.leaf_hash,
        columns,
        kind: event.kind,
        retention,
        retention_problem,
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
    purges: &Arc<Purges>,
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
            let purges = purges.clone();
            tokio::task::spawn_blocking(move || {
                let mut columns = IndexFields::default();
                let checked = events
                    .into_iter()
                    .map(|event| {
                        standalone_check(event, &mut columns, &mut trends, through_seq, &purges)
                    })
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

/// `Some("fingerprint")` unless the fingerprint stored beside the event is the one its body
/// gives (and none is stored beside an audit event).
fn fingerprint_mismatch(event: &StoredEvent, stored: Option<i64>) -> Option<&'static str> {
    let derived = match event.kind {
        EventKind::Threat => crate::groups::fingerprint_of(&event.body).map(|(number, _)| number),
        EventKind::Audit => None,
    };
    (derived != stored).then_some("fingerprint")
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
