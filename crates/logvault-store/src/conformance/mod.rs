//! The conformance suite every backend runs: `run_all(store)` on a fresh, empty store.
//! Backends call it from their own tests so they cannot drift apart.

mod groups;
mod ingest;
mod merkle_log;
mod passwords;
mod reads;
mod retention;
mod rollup;
pub mod search;
mod streams;
mod tenancy;
mod viewer_tokens;

use logvault_core::account::NewAccount;
use logvault_core::validate::{Limits, validate_event};
use logvault_core::{AccountKind, EventKind, NewEvent, Scope};
use serde_json::{Value, json};

use crate::{EventQuery, Store};

/// Runs every check against `store`, which must be freshly created and empty.
pub async fn run_all(store: &dyn Store) {
    tenancy::accounts(store).await;
    tenancy::keys(store).await;
    tenancy::people(store).await;
    passwords::sign_out_everywhere(store).await;
    ingest::ingest_sequences(store).await;
    ingest::idempotency(store).await;
    ingest::rejected_requests_store_nothing(store).await;
    reads::scoped_queries(store).await;
    reads::filters(store).await;
    reads::partner_filters(store).await;
    reads::pagination(store).await;
    reads::time_windows(store).await;
    reads::lookups(store).await;
    reads::trends(store).await;
    search::text_search(store).await;
    ingest::concurrent_ingest(store).await;
    streams::stream_cursors(store).await;
    viewer_tokens::viewer_tokens(store).await;
    rollup::trend_snapshot(store).await;
    rollup::verify_while_ingesting(store).await;
    // After the checks that read events back whole: it purges some. Before the Merkle log
    // check, which stores checkpoints that are not signed notes (verify would refuse them).
    retention::retention(store).await;
    merkle_log::merkle_log(store).await;
    // Last: its events are received in the future.
    groups::threat_groups(store).await;
}

/// An audit event for `account` with optional client id and extra fields.
pub fn audit(account: &str, id: Option<&str>, extra: Value) -> NewEvent {
    let mut value = json!({"account_id": account, "action": "user.login", "outcome": "success",
        "actor": {"id": "usr_1", "type": "user"}});
    merge(&mut value, id, extra);
    validate_event(EventKind::Audit, 0, &value, account, &Limits::default())
        .expect("valid audit event")
}

/// A threat event for `account` with optional client id and extra fields.
pub fn threat(account: &str, id: Option<&str>, extra: Value) -> NewEvent {
    let mut value = json!({"account_id": account, "source": "sdk", "error_type": "NetworkTimeout",
        "message": "request timed out", "version": "ios-sdk 4.2.1", "environment": "production"});
    merge(&mut value, id, extra);
    validate_event(EventKind::Threat, 0, &value, account, &Limits::default())
        .expect("valid threat event")
}

fn merge(value: &mut Value, id: Option<&str>, extra: Value) {
    if let Some(id) = id {
        value["id"] = id.into();
    }
    if let (Some(target), Value::Object(extra)) = (value.as_object_mut(), extra) {
        target.extend(extra);
    }
}

async fn account(store: &dyn Store, kind: AccountKind, id: &str, partner: Option<&str>) {
    let new = NewAccount {
        kind,
        partner_id: partner.map(str::to_string),
        name: format!("{id} name"),
        id: Some(id.into()),
    };
    store.create_account(new).await.expect("create account");
}

fn ids(accounts: &[logvault_core::Account]) -> Vec<&str> {
    accounts.iter().map(|account| account.id.as_str()).collect()
}

async fn all_events(
    store: &dyn Store,
    scope: &Scope,
    query: EventQuery,
) -> Vec<logvault_core::StoredEvent> {
    let mut query = query;
    let mut events = Vec::new();
    loop {
        let page = store.query(scope, &query).await.expect("query");
        events.extend(page.events);
        match page.next_before_seq {
            Some(next) => query.before_seq = Some(next),
            None => return events,
        }
    }
}

/// Awaits every future concurrently (a tiny join_all, to avoid a dependency for tests).
async fn futures_join_all<F: std::future::Future>(
    futures: impl Iterator<Item = F>,
) -> Vec<F::Output> {
    use std::pin::Pin;
    use std::task::{Context, Poll};
    let mut pending: Vec<Pin<Box<F>>> = futures.map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = pending.iter().map(|_| None).collect();
    std::future::poll_fn(|cx: &mut Context<'_>| {
        let mut done = true;
        for (future, output) in pending.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    Poll::Ready(value) => *output = Some(value),
                    Poll::Pending => done = false,
                }
            }
        }
        if done { Poll::Ready(()) } else { Poll::Pending }
    })
    .await;
    outputs.into_iter().flatten().collect()
}
