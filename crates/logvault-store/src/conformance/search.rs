//! Text search (`q=`) against a full scan: for every scope, needle and page size, walking the
//! pages must give exactly the in-scope events whose search text contains the needle, newest
//! first. The log mixes rare, common and absent terms, short needles and non-ASCII text, so a
//! backend with an index that finds candidates (SQLite's trigram index beside a walk of the
//! scope) is checked on every path: rare terms through the index, common ones through the walk.

use logvault_core::event::IndexFields;
use logvault_core::{AccountKind, EventKind, Scope, StoredEvent};
use serde_json::json;

use super::{account, all_events, audit, threat};
use crate::{EventQuery, Store};

/// Every event in the log once the cases are set up: what [`check`] compares against.
pub struct SearchFixture {
    events: Vec<StoredEvent>,
}

/// Creates the accounts and ingests the events of the text search cases.
pub async fn setup(store: &dyn Store) -> SearchFixture {
    account(store, AccountKind::Partner, "par_q1", None).await;
    account(store, AccountKind::Merchant, "mer_q1", Some("par_q1")).await;
    account(store, AccountKind::Merchant, "mer_q2", Some("par_q1")).await;
    account(store, AccountKind::Merchant, "mer_q3", None).await;
    let accounts = ["mer_q1", "mer_q2", "mer_q3", "par_q1", "mer_q1", "mer_q1"];
    let mut batch = Vec::new();
    for n in 0..600usize {
        let account = accounts[n % accounts.len()];
        // Every seventh event is common in its account; a handful carry a rare marker.
        let message = match n {
            _ if n % 97 == 5 => format!("rare Marker-Zebra {n}"),
            _ if n % 7 == 0 => format!("common gateway timeout {n}"),
            _ if n % 50 == 3 => "Überweisung fehlgeschlagen: \"quoted\"".to_string(),
            // Holds every trigram of "ababab" without holding "ababab".
            _ if n % 31 == 4 => format!("pattern xabab {n}"),
            _ => format!("ordinary line {n}"),
        };
        batch.push(if n % 3 == 0 {
            audit(account, None, json!({"reason": message}))
        } else {
            threat(account, None, json!({"message": message}))
        });
        if batch.len() == 50 {
            store
                .ingest(std::mem::take(&mut batch))
                .await
                .expect("ingest");
        }
    }
    let events = all_events(store, &Scope::All, EventQuery::new(EventKind::Audit, 1000)).await;
    let threats = all_events(store, &Scope::All, EventQuery::new(EventKind::Threat, 1000)).await;
    SearchFixture {
        events: events.into_iter().chain(threats).collect(),
    }
}

/// Compares every scope, kind, needle and page size with a full scan of the fixture.
pub async fn check(store: &dyn Store, fixture: &SearchFixture) {
    let scopes = [
        Scope::All,
        Scope::Partner("par_q1".into()),
        Scope::Account("mer_q1".into()),
        Scope::Account("mer_q3".into()),
    ];
    let needles = [
        "marker-zebra",
        "MARKER-ZEBRA 5",
        "gateway timeout",
        "ordinary",
        "überweisung",
        "\"quoted\"",
        "ti",
        "zzz-not-there",
        "line 59",
        "abab",
        "ababab",
    ];
    for scope in &scopes {
        for kind in [EventKind::Audit, EventKind::Threat] {
            for needle in needles {
                for (limit, account_id) in [(7, None), (1000, None), (3, Some("mer_q1"))] {
                    let mut query = EventQuery::new(kind, limit);
                    query.text = Some(needle.to_string());
                    query.account_id = account_id.map(str::to_string);
                    let found: Vec<u64> = all_events(store, scope, query)
                        .await
                        .iter()
                        .map(|event| event.seq)
                        .collect();
                    let expected = expected(fixture, scope, kind, needle, account_id);
                    assert_eq!(
                        found, expected,
                        "q={needle:?} kind {kind:?} scope {scope:?} limit {limit} account {account_id:?}"
                    );
                }
            }
        }
    }
}

fn expected(
    fixture: &SearchFixture,
    scope: &Scope,
    kind: EventKind,
    needle: &str,
    account_id: Option<&str>,
) -> Vec<u64> {
    let needle = needle.to_lowercase();
    let in_scope = |account: &str| match scope {
        Scope::All => true,
        Scope::Partner(_) => matches!(account, "par_q1" | "mer_q1" | "mer_q2"),
        Scope::Account(id) => account == id,
    };
    let mut seqs: Vec<u64> = fixture
        .events
        .iter()
        .filter(|event| event.kind == kind && in_scope(&event.account_id))
        .filter(|event| account_id.is_none_or(|id| event.account_id == id))
        .filter(|event| {
            IndexFields::from_body(event.kind, &event.body)
                .is_some_and(|fields| fields.search_text.contains(&needle))
        })
        .map(|event| event.seq)
        .collect();
    seqs.sort_unstable_by(|a, b| b.cmp(a));
    seqs
}

/// Sets up and checks at once, as the suite runs it.
pub(super) async fn text_search(store: &dyn Store) {
    let fixture = setup(store).await;
    check(store, &fixture).await;
}
