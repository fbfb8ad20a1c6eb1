//! The rows a raw insert ceiling writes: what the service would store for the same events
//! (sequences, leaf hashes), built before any clock starts so only database work is timed.
//! Every backend's ceiling inserts these, so their figures compare like with like.

use std::collections::HashMap;

use logvault_core::{Micros, NewEvent, StoredEvent};

/// `events` as the log would store them from an empty start, all received at `received_at`.
pub fn ceiling_rows(events: &[NewEvent], received_at: Micros) -> Vec<StoredEvent> {
    let mut account_seqs: HashMap<&str, u64> = HashMap::new();
    events
        .iter()
        .enumerate()
        .map(|(index, event)| {
            let account_seq = account_seqs.entry(event.account_id.as_str()).or_default();
            *account_seq += 1;
            event.stored(index as u64 + 1, *account_seq, received_at, [7; 16])
        })
        .collect()
}
