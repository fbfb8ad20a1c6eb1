//! `logvault verify` (recompute the whole log from storage) and `logvault verify-proof`
//! (check one event against a signed checkpoint offline, with no database).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use logvault_core::checkpoint::verify_note;
use logvault_core::merkle::{Hash, verify_inclusion};
use logvault_core::{Micros, StoredEvent};
use logvault_store::retention::PurgeRecord;
use logvault_store::verify::{VerifyOptions, verify_log};
use serde_json::Value;

use crate::StorageArgs;
use crate::signing::{SigningArgs, parse_public_key};

#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    #[command(flatten)]
    storage: StorageArgs,
    #[command(flatten)]
    signing: SigningArgs,
    /// A checkpoint note saved earlier: the log must still contain that tree.
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    /// The log's public key (text or file); default: derived from the local signing key.
    #[arg(long)]
    public_key: Option<String>,
}

/// Returns `Ok(false)` when the log diverges (the caller exits non-zero).
pub(crate) async fn verify(args: VerifyArgs) -> anyhow::Result<bool> {
    let public_key = match &args.public_key {
        Some(text) => Some(parse_public_key(text)?),
        None => args.signing.verifier(&args.storage.dir())?,
    };
    match &public_key {
        Some(key) => eprintln!("checking signatures with {}", key.encode()),
        None => eprintln!("no public key: checkpoint signatures are not checked"),
    }
    let external_checkpoint = match &args.checkpoint {
        Some(path) => Some(
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?,
        ),
        None => None,
    };
    let store = args.storage.open().await?;
    let options = VerifyOptions {
        public_key,
        external_checkpoint,
        chunk_events: None,
    };
    let started = Instant::now();
    let mut last_report = Instant::now();
    let mut progress = |done: u64, total: u64| {
        if last_report.elapsed().as_millis() >= 500 {
            eprint!("\rverified {done}/{total} events");
            last_report = Instant::now();
        }
    };
    let report = verify_log(store.as_ref(), &options, &mut progress).await?;
    let seconds = started.elapsed().as_secs_f64();
    eprintln!("\r                                             ");
    match report.divergence {
        None => {
            println!(
                "OK: {} events, {} checkpoints{} verified in {seconds:.1} s ({:.0} events/s)",
                report.events,
                report.checkpoints,
                if report.signatures_checked {
                    " (signatures checked)"
                } else {
                    ""
                },
                report.events as f64 / seconds.max(1e-9),
            );
            print_purges(&report.purges);
            Ok(true)
        }
        Some(divergence) => {
            println!("FAILED after {} good events: {divergence}", report.events);
            Ok(false)
        }
    }
}

/// What retention purged, per account, kind and policy: each purge was checked against the
/// events it covers and its record in the log.
fn print_purges(purges: &[PurgeRecord]) {
    // (account, kind, policy source, days) -> (events, batches, latest cutoff)
    type Totals<'a> = BTreeMap<(&'a str, &'a str, &'a str, u32), (u64, u64, Micros)>;
    let mut totals = Totals::new();
    for purge in purges {
        let batch = &purge.batch;
        let key = (
            batch.account_id.as_str(),
            batch.kind.as_str(),
            batch.source.as_str(),
            batch.days,
        );
        let total = totals.entry(key).or_insert((0, 0, batch.cutoff));
        total.0 += batch.count;
        total.1 += 1;
        total.2 = total.2.max(batch.cutoff);
    }
    for ((account, kind, source, days), (events, batches, cutoff)) in totals {
        println!(
            "purged by policy: {account} {kind}: {events} events received before {} \
             ({days}-day policy from {source}, {batches} batches)",
            cutoff.to_rfc3339()
        );
    }
}

#[derive(Debug, Args)]
pub(crate) struct VerifyProofArgs {
    /// The log's public key (text or file).
    #[arg(long)]
    public_key: String,
    /// The signed checkpoint note (from GET /v1/checkpoints/latest).
    #[arg(long)]
    checkpoint: PathBuf,
    /// The event as the API returned it (GET /v1/audit-events/{id}).
    #[arg(long)]
    event: PathBuf,
    /// The inclusion proof (GET /v1/proofs/inclusion?event_id=…).
    #[arg(long)]
    proof: PathBuf,
}

fn read_json(path: &PathBuf) -> anyhow::Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))
}

/// Checks one event against a checkpoint; `Ok(false)` when it does not verify.
pub(crate) fn verify_proof(args: VerifyProofArgs) -> anyhow::Result<bool> {
    let key = parse_public_key(&args.public_key)?;
    let note = std::fs::read_to_string(&args.checkpoint)?;
    let checkpoint = match verify_note(&note, &key) {
        Ok(checkpoint) => checkpoint,
        Err(error) => {
            println!("FAILED: the checkpoint does not verify with this key: {error}");
            return Ok(false);
        }
    };
    let event = StoredEvent::from_json(&read_json(&args.event)?).map_err(anyhow::Error::msg)?;
    if event.compute_leaf_hash() != event.leaf_hash {
        println!("FAILED: the event's fields do not hash to its leaf_hash: it was altered");
        return Ok(false);
    }
    let proof_json = read_json(&args.proof)?;
    let tree_size = proof_json["tree_size"]
        .as_u64()
        .context("the proof has no tree_size")?;
    let hashes: Vec<Hash> = proof_json["proof"]
        .as_array()
        .context("the proof has no hash list")?
        .iter()
        .map(|h| {
            hex::decode(h.as_str().unwrap_or_default())
                .ok()
                .and_then(|b| b.try_into().ok())
        })
        .collect::<Option<_>>()
        .context("the proof holds a malformed hash")?;
    if tree_size != checkpoint.size {
        println!(
            "FAILED: the proof is for a tree of {tree_size} events, the checkpoint for {}",
            checkpoint.size
        );
        return Ok(false);
    }
    let index = event.seq.checked_sub(1).context("the event has seq 0")?;
    match verify_inclusion(
        &event.leaf_hash,
        index,
        tree_size,
        &hashes,
        &checkpoint.root,
    ) {
        Ok(()) => {
            println!(
                "OK: event {} (seq {}, account {}) is in {} at size {}",
                event.event_id, event.seq, event.account_id, checkpoint.origin, checkpoint.size
            );
            Ok(true)
        }
        Err(error) => {
            println!("FAILED: the inclusion proof does not verify: {error}");
            Ok(false)
        }
    }
}
