//! Every read of the logs is itself an audit event (`logs.viewed`, `logs.exported`) on the
//! reader's account. Handlers hand the event to this recorder and move on; a background task
//! writes what has gathered in one request to the store, so reads stay fast.

use std::sync::Arc;

use logvault_core::validate::{Limits, validate_event};
use logvault_core::{EventKind, NewEvent, Principal};
use logvault_store::Store;
use serde_json::{Value, json};
use tokio::sync::{Mutex, mpsc};
use tokio::task::JoinHandle;

use crate::HttpMetrics;
use crate::auth::RequestOrigin;

/// Most read events written in one store request.
const MAX_BATCH: usize = 1000;

/// A handle to the background recorder; cheap to clone.
#[derive(Clone)]
pub struct ViewRecorder {
    sender: Arc<Mutex<Option<mpsc::Sender<NewEvent>>>>,
    task: Arc<Mutex<Option<JoinHandle<()>>>>,
}

impl ViewRecorder {
    /// Starts the background task writing to `store`.
    pub fn start(store: Arc<dyn Store>, metrics: Arc<HttpMetrics>) -> Self {
        let (sender, mut receiver) = mpsc::channel::<NewEvent>(10_000);
        let task = tokio::spawn(async move {
            let mut batch = Vec::new();
            while receiver.recv_many(&mut batch, MAX_BATCH).await > 0 {
                let n_events = batch.len();
                match store.ingest(std::mem::take(&mut batch)).await {
                    Ok(_) => metrics.ingested(EventKind::Audit, n_events),
                    Err(error) => {
                        tracing::error!(%error, n_events, "could not record reads of the logs")
                    }
                }
            }
        });
        ViewRecorder {
            sender: Arc::new(Mutex::new(Some(sender))),
            task: Arc::new(Mutex::new(Some(task))),
        }
    }

    /// Records that `principal` read the logs. Waits only if the recorder is far behind.
    pub async fn record(
        &self,
        principal: &Principal,
        origin: &RequestOrigin,
        action: &str,
        metadata: Value,
    ) {
        let mut event = json!({
            "action": action,
            "outcome": "success",
            "actor": {"id": principal.actor_id, "type": principal.actor_type.as_str()},
            "account_id": principal.account_id,
            "metadata": metadata,
        });
        if let Some(origin) = origin.to_json() {
            event["origin"] = origin;
        }
        if let Some(name) = &principal.actor_name {
            event["actor"]["name"] = name.as_str().into();
        }
        if let (Some(token), Some(metadata)) =
            (&principal.viewer_token, event["metadata"].as_object_mut())
        {
            metadata.insert("via".into(), "embedded view".into());
            metadata.insert("view_id".into(), token.as_str().into());
        }
        // A read must never go unrecorded: if the details do not fit, record it without them.
        let limits = Limits::default();
        let account = principal.account_id.as_str();
        let new_event =
            validate_event(EventKind::Audit, 0, &event, account, &limits).or_else(|problems| {
                tracing::warn!(
                    ?problems,
                    "logs.viewed details did not fit; recording without them"
                );
                event["metadata"] = json!({"details_dropped": true});
                validate_event(EventKind::Audit, 0, &event, account, &limits)
            });
        let new_event = match new_event {
            Ok(new_event) => new_event,
            Err(problems) => {
                tracing::error!(?problems, "a logs.viewed event did not validate");
                return;
            }
        };
        let sender = self.sender.lock().await.clone();
        if let Some(sender) = sender {
            let _ = sender.send(new_event).await;
        }
    }

    /// Stops accepting reads and waits until every recorded one is stored.
    pub async fn flush_and_stop(&self) {
        self.sender.lock().await.take();
        if let Some(task) = self.task.lock().await.take() {
            let _ = task.await;
        }
    }
}

/// The query string as recorded in a `logs.viewed` event: enough to see what was asked,
/// bounded so the event always fits the metadata limit.
pub(crate) fn query_summary(raw: Option<&str>) -> String {
    raw.unwrap_or_default().chars().take(1024).collect()
}
