//! Signs checkpoints: at start, then whenever the log has grown and the last signature is
//! older than the interval (so at least every interval while events arrive), and once more
//! at shutdown so every acknowledged event is covered. An idle log needs no new signature:
//! the note for an unchanged tree is byte-for-byte the one already stored.

use std::sync::Arc;
use std::time::Duration;

use logvault_core::Micros;
use logvault_core::checkpoint::{Checkpoint, NoteSigner};
use logvault_store::{Store, StoredCheckpoint};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Signs the current tree head unless it is already checkpointed; returns the size signed.
pub(crate) async fn sign_head(store: &dyn Store, signer: &NoteSigner) -> anyhow::Result<u64> {
    let head = store.log_head().await?;
    if store
        .latest_checkpoint()
        .await?
        .is_some_and(|latest| latest.size == head.size)
    {
        return Ok(head.size);
    }
    let checkpoint = Checkpoint {
        origin: signer.name().to_string(),
        size: head.size,
        root: head.root,
    };
    let note = signer
        .sign(&checkpoint)
        .map_err(|e| anyhow::anyhow!("cannot sign: {e}"))?;
    store
        .add_checkpoint(StoredCheckpoint {
            size: head.size,
            root: head.root,
            note,
            signed_at: Micros::now(),
        })
        .await?;
    Ok(head.size)
}

/// Runs until `stop` changes, then signs a final checkpoint.
pub(crate) fn spawn(
    store: Arc<dyn Store>,
    signer: Arc<NoteSigner>,
    interval: Duration,
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            if let Err(error) = sign_head(store.as_ref(), &signer).await {
                tracing::error!(%error, "could not sign a checkpoint");
            }
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = stop.changed() => break,
            }
        }
        if let Err(error) = sign_head(store.as_ref(), &signer).await {
            tracing::error!(%error, "could not sign the final checkpoint");
        }
    })
}
