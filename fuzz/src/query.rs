//! Query strings of the API's reads (lists and exports of both kinds, trends) and of the Logs
//! page's lists, cursors and the `ip=` filter.

use logvault_core::{EventKind, Micros};
use logvault_server::fuzzing;

/// A fixed "now" for the Logs page's relative ranges (`range=24h`), so runs repeat.
const NOW: Micros = Micros(1_795_000_000_000_000);

/// Mode (mod 7): audit list, threat list, trends, cursor, address filter, Logs page audit
/// list, Logs page threat list.
pub fn run(data: &[u8]) {
    let Some((mode, rest)) = crate::split_mode(data) else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    match mode % 7 {
        0 => list(EventKind::Audit, &text),
        1 => list(EventKind::Threat, &text),
        2 => {
            if let Ok(query) = fuzzing::trend_query(&text) {
                assert!(query.from <= query.to, "trends from {query:?}");
            }
        }
        3 => cursor(rest, &text),
        4 => {
            if let Ok(range) = fuzzing::ip_range(&text) {
                assert!(range.low <= range.high, "{text:?} gave {range:?}");
            }
        }
        5 => page(EventKind::Audit, &text),
        _ => page(EventKind::Threat, &text),
    }
}

fn list(kind: EventKind, raw: &str) {
    let Ok(query) = fuzzing::list_query(kind, raw) else {
        return;
    };
    assert!((1..=1000).contains(&query.limit), "limit {}", query.limit);
    assert!(
        query
            .text
            .as_ref()
            .is_none_or(|q| !q.is_empty() && q.len() <= 256)
    );
    if let (Some(from), Some(to)) = (query.from, query.to) {
        assert!(from <= to);
    }
    if let Some(range) = query.ip {
        assert!(range.low <= range.high);
    }
}

fn page(kind: EventKind, raw: &str) {
    let Ok(query) = fuzzing::page_query(kind, raw, NOW) else {
        return;
    };
    if let (Some(from), Some(to)) = (query.from, query.to) {
        assert!(from <= to);
    }
}

/// A cursor decodes only if it is exactly what the service would have written, and every
/// position survives encoding.
fn cursor(bytes: &[u8], text: &str) {
    if let Some(seq) = fuzzing::decode_cursor(text) {
        assert_eq!(
            fuzzing::encode_cursor(seq),
            text,
            "a foreign spelling decoded"
        );
    }
    let mut word = [0u8; 8];
    for (slot, byte) in word.iter_mut().zip(bytes) {
        *slot = *byte;
    }
    let seq = u64::from_le_bytes(word);
    assert_eq!(
        fuzzing::decode_cursor(&fuzzing::encode_cursor(seq)),
        Some(seq)
    );
}
