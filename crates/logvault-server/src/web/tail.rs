//! Live tail: `GET /tail/{audit|threat}?…filters` is a Server-Sent Events stream that polls
//! the store every second, in the reader's scope, for matching events newer than the last
//! one sent, and sends them as ready-made (escaped) table rows. It stops when the session
//! ends or expires (the browser reconnects with the renewed cookie while the person is
//! active). One person may hold at most `max_tails_per_person` tails at once.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream;
use logvault_core::{EventKind, Micros, Scope};
use logvault_store::EventQuery;
use serde::Deserialize;
use serde_json::json;

use super::WebError;
use super::filters::Filters;
use super::logs::{names, row_view, scoped_accounts};
use super::render::render;
use super::session::SignedIn;
use super::tail_slots::TailSlot;
use crate::auth::RequestOrigin;
use crate::{ApiError, AppState};

/// How often the store is asked for new events.
const POLL: Duration = Duration::from_secs(1);
/// Most rows sent per poll; a faster stream is shown by its newest rows.
const MAX_ROWS: usize = 200;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct TailParams {
    after: Option<u64>,
}

struct Tail {
    state: AppState,
    scope: Scope,
    query: EventQuery,
    names: Arc<HashMap<String, String>>,
    token_hash: Vec<u8>,
    show_account: bool,
    last_seq: u64,
    first: bool,
    /// Held for as long as the stream is open.
    _slot: TailSlot,
}

pub(crate) async fn stream(
    State(state): State<AppState>,
    signed_in: SignedIn,
    origin: RequestOrigin,
    Path(kind): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let Some(slot) = state.tails.take(&signed_in.principal.actor_id) else {
        let limit = state.tails.per_person();
        return Ok(ApiError::TooManyTails { limit }.into_response());
    };
    let chrome = signed_in.chrome(state.store.as_ref(), "tail").await?;
    let Some(kind) = EventKind::parse(&kind) else {
        return Err(WebError::NotFound(Some(Box::new(chrome))));
    };
    let bad = |message: String| WebError::BadRequest(message, Some(Box::new(chrome.clone())));
    let mut filters = Filters::parse(raw.as_deref()).map_err(bad)?;
    filters.cursor.clear();
    let params: TailParams =
        serde_urlencoded::from_str(raw.as_deref().unwrap_or_default()).unwrap_or_default();
    let accounts = scoped_accounts(&state, &signed_in, &chrome, &filters.account_id).await?;
    let scope = signed_in.principal.scope();
    let query = filters
        .to_query(kind, Micros::now(), MAX_ROWS)
        .map_err(bad)?;
    // A browser reconnecting (the stream ends whenever its session token is renewed or
    // ended) says which rows it has, so it gets only what came since.
    let resumed = headers
        .get("last-event-id")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok());
    let last_seq = match resumed.or(params.after) {
        Some(after) => after,
        None => {
            let newest = EventQuery {
                limit: 1,
                ..query.clone()
            };
            let page = state.store.query(&scope, &newest).await?;
            page.events.first().map_or(0, |event| event.seq)
        }
    };
    state
        .viewed
        .record(
            &signed_in.principal,
            &origin,
            "logs.viewed",
            json!({"kind": kind.as_str(), "tail": true, "via": "logs page"}),
        )
        .await;
    let tail = Tail {
        state,
        scope,
        query,
        names: Arc::new(names(&accounts)),
        token_hash: signed_in.token_hash,
        show_account: accounts.len() > 1,
        last_seq,
        first: true,
        _slot: slot,
    };
    let events = stream::unfold(tail, |mut tail| async move {
        let event = next_rows(&mut tail).await?;
        Some((Ok::<Event, Infallible>(event), tail))
    });
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response())
}

/// Waits for the next batch of new rows; `None` ends the stream.
async fn next_rows(tail: &mut Tail) -> Option<Event> {
    loop {
        if !tail.first {
            tokio::time::sleep(POLL).await;
        }
        tail.first = false;
        let live = match tail.state.store.session(&tail.token_hash).await {
            Ok(Some((session, user))) => {
                let lifetimes = tail.state.config.sessions;
                lifetimes.live(&session, &user, Micros::now())
            }
            _ => false,
        };
        if !live {
            return None;
        }
        let page = match tail.state.store.query(&tail.scope, &tail.query).await {
            Ok(page) => page,
            Err(error) => {
                tracing::warn!(%error, "live tail stopped");
                return None;
            }
        };
        let fresh: Vec<_> = page
            .events
            .iter()
            .filter(|event| event.seq > tail.last_seq)
            .collect();
        let Some(newest) = fresh.first() else {
            continue;
        };
        tail.last_seq = newest.seq;
        let rows: Vec<_> = fresh.iter().map(|e| row_view(e, &tail.names)).collect();
        let context = json!({"rows": rows, "kind": tail.query.kind.as_str(), "show_account": tail.show_account});
        return match render("rows.html", context) {
            Ok(html) => Some(
                Event::default()
                    .event("rows")
                    .id(tail.last_seq.to_string())
                    .data(html),
            ),
            Err(error) => {
                tracing::warn!(?error, "live tail could not render rows");
                None
            }
        };
    }
}
