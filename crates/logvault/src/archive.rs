//! Archives of purged events, and `logvault archive verify|show`.
//!
//! One file per account, kind and month of `received_at`:
//! `DIR/<account>/<kind>-<YYYY-MM>.ndjson.zst`, zstd-compressed NDJSON, one event per line
//! exactly as the API returns it (with `seq`, `nonce` and `leaf_hash`, so each line's leaf
//! hash can be recomputed). Each archived batch is appended as a zstd frame of its own and
//! synced before the purge it precedes. Beside each file, `….manifest.json` lists the `seq`
//! ranges it holds. A crash between archiving and purging archives a batch twice; readers
//! keep one copy of each `seq`.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use logvault_core::checkpoint::verify_note;
use logvault_core::merkle::verify_inclusion;
use logvault_core::{EventKind, Scope, StoredEvent};
use logvault_store::retention::Archiver;
use serde_json::{Value, json};

use crate::StorageArgs;
use crate::signing::{SigningArgs, parse_public_key};

/// The zstd level archives are written at: most of the ratio of higher levels at a fraction
/// of the time, so archiving does not hold a purge batch up.
const LEVEL: i32 = 3;

/// Writes archives into a directory.
#[derive(Debug, Clone)]
pub(crate) struct ArchiveDir {
    root: PathBuf,
}

impl ArchiveDir {
    pub(crate) fn new(root: PathBuf) -> Self {
        ArchiveDir { root }
    }

    /// The file holding `account`'s events of `kind` received in `month` (`YYYY-MM`).
    fn file(&self, account: &str, kind: EventKind, month: &str) -> PathBuf {
        self.root
            .join(path_safe(account))
            .join(format!("{}-{month}.ndjson.zst", kind.as_str()))
    }

    fn append(&self, events: &[&StoredEvent]) -> std::io::Result<()> {
        let (Some(first), Some(last)) = (events.first(), events.last()) else {
            return Ok(());
        };
        let month = &first.received_at.to_rfc3339()[..7];
        let path = self.file(&first.account_id, first.kind, month);
        let dir = path.parent().unwrap_or(&self.root);
        std::fs::create_dir_all(dir)?;
        let mut frame = zstd::stream::Encoder::new(Vec::new(), LEVEL)?;
        for event in events {
            serde_json::to_writer(&mut frame, &event.to_json())?;
            frame.write_all(b"\n")?;
        }
        let frame = frame.finish()?;
        let mut file = OpenOptions::new().create(true).append(true).open(&path)?;
        file.write_all(&frame)?;
        file.sync_all()?;
        let mut manifest = read_manifest(&path).unwrap_or_else(|_| {
            json!({
                "account_id": first.account_id,
                "kind": first.kind.as_str(),
                "month": month,
                "ranges": [],
            })
        });
        if let Some(ranges) = manifest["ranges"].as_array_mut() {
            ranges.push(json!({"from_seq": first.seq, "to_seq": last.seq, "count": events.len()}));
        }
        let manifest_path = manifest_path(&path);
        let temporary = manifest_path.with_extension("json.tmp");
        let mut out = File::create(&temporary)?;
        out.write_all(serde_json::to_string_pretty(&manifest)?.as_bytes())?;
        out.sync_all()?;
        std::fs::rename(&temporary, &manifest_path)?;
        File::open(dir)?.sync_all()
    }
}

#[async_trait::async_trait]
impl Archiver for ArchiveDir {
    async fn archive(&self, events: &[StoredEvent]) -> Result<(), String> {
        let archive = self.clone();
        let events = events.to_vec();
        tokio::task::spawn_blocking(move || {
            // A batch can straddle a month boundary: each month goes to its own file.
            let mut by_month: BTreeMap<String, Vec<&StoredEvent>> = BTreeMap::new();
            for event in &events {
                let month = event.received_at.to_rfc3339()[..7].to_string();
                by_month.entry(month).or_default().push(event);
            }
            by_month
                .values()
                .try_for_each(|events| archive.append(events))
                .map_err(|e| {
                    format!(
                        "cannot write the archive in {}: {e}",
                        archive.root.display()
                    )
                })
        })
        .await
        .map_err(|e| format!("the archive task failed: {e}"))?
    }
}

/// Account ids are opaque: anything but plain letters, digits, `_`, `-` and `.` (or a leading
/// dot) is written as hex, so an id can never name a path outside the archive.
fn path_safe(account: &str) -> String {
    let plain = !account.is_empty()
        && !account.starts_with('.')
        && account
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if plain {
        account.to_string()
    } else {
        format!("x-{}", hex::encode(account))
    }
}

fn manifest_path(archive: &Path) -> PathBuf {
    let mut name = archive.as_os_str().to_owned();
    name.push(".manifest.json");
    PathBuf::from(name)
}

fn read_manifest(archive: &Path) -> anyhow::Result<Value> {
    let text = std::fs::read_to_string(manifest_path(archive))?;
    Ok(serde_json::from_str(&text)?)
}

/// Every event of an archive file, one per `seq`, in `seq` order; an error names the line.
fn read_archive(path: &Path) -> anyhow::Result<Vec<StoredEvent>> {
    let file =
        File::open(path).map_err(|e| anyhow::anyhow!("cannot open {}: {e}", path.display()))?;
    let decoder = zstd::stream::Decoder::new(file)?;
    let mut events: BTreeMap<u64, StoredEvent> = BTreeMap::new();
    for (number, line) in BufReader::new(decoder).lines().enumerate() {
        let line = line.map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        let value: Value = serde_json::from_str(&line)
            .map_err(|e| anyhow::anyhow!("line {}: not JSON: {e}", number + 1))?;
        let event = StoredEvent::from_json(&value)
            .map_err(|e| anyhow::anyhow!("line {}: {e}", number + 1))?;
        if event.compute_leaf_hash() != event.leaf_hash {
            anyhow::bail!(
                "line {} (seq {}): the event no longer hashes to its leaf hash: it was changed",
                number + 1,
                event.seq
            );
        }
        if let Some(earlier) = events.get(&event.seq)
            && earlier != &event
        {
            anyhow::bail!(
                "line {}: seq {} appears twice, differently",
                number + 1,
                event.seq
            );
        }
        events.insert(event.seq, event);
    }
    Ok(events.into_values().collect())
}

#[derive(Debug, Subcommand)]
pub(crate) enum ArchiveCommand {
    /// Prove an archive file against the log: every line hashes to its leaf, the manifest
    /// covers it, and each leaf is in the tree of the latest signed checkpoint.
    Verify(VerifyArchiveArgs),
    /// Print the events of an archive file as NDJSON, filtered like the API.
    Show(ShowArchiveArgs),
}

#[derive(Debug, Args)]
pub(crate) struct VerifyArchiveArgs {
    /// The archive file (`….ndjson.zst`).
    file: PathBuf,
    #[command(flatten)]
    storage: StorageArgs,
    #[command(flatten)]
    signing: SigningArgs,
    /// The log's public key (text or file); default: derived from the local signing key.
    #[arg(long)]
    public_key: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct ShowArchiveArgs {
    /// The archive file (`….ndjson.zst`).
    file: PathBuf,
    /// Filters as the API takes them, e.g. `action=user.login&outcome=failure&ip=10.0.0.0/8`.
    #[arg(long, default_value = "")]
    filter: String,
}

pub(crate) async fn archive(command: ArchiveCommand) -> anyhow::Result<bool> {
    match command {
        ArchiveCommand::Verify(args) => verify(args).await,
        ArchiveCommand::Show(args) => show(args).map(|()| true),
    }
}

fn show(args: ShowArchiveArgs) -> anyhow::Result<()> {
    let events = read_archive(&args.file)?;
    let Some(kind) = events.first().map(|event| event.kind) else {
        return Ok(());
    };
    // The same parser as `GET /v1/{audit,threat}-events`, so the filters mean the same.
    let query = logvault_server::fuzzing::list_query(kind, &args.filter)
        .map_err(|e| anyhow::anyhow!("--filter: {e}"))?;
    let mut out = std::io::stdout().lock();
    let written = events
        .iter()
        .rev()
        .filter(|event| query.matches(event))
        .try_for_each(|event| {
            serde_json::to_writer(&mut out, &event.to_json())?;
            out.write_all(b"\n")
        });
    match written {
        // Read by `head` or a pager that quit: not an error.
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

async fn verify(args: VerifyArchiveArgs) -> anyhow::Result<bool> {
    let events = match read_archive(&args.file) {
        Ok(events) => events,
        Err(error) => {
            println!("FAILED: {error}");
            return Ok(false);
        }
    };
    if let Err(error) = check_manifest(&args.file, &events) {
        println!("FAILED: {error}");
        return Ok(false);
    }
    let key = match &args.public_key {
        Some(text) => Some(parse_public_key(text)?),
        None => args.signing.verifier(&args.storage.dir())?,
    };
    let store = args.storage.open().await?;
    let Some(checkpoint) = store.latest_checkpoint().await? else {
        anyhow::bail!("the log has no signed checkpoint yet");
    };
    let signed = match &key {
        Some(key) => {
            let note = verify_note(&checkpoint.note, key)
                .map_err(|e| anyhow::anyhow!("the latest checkpoint does not verify: {e}"))?;
            anyhow::ensure!(
                note.size == checkpoint.size && note.root == checkpoint.root,
                "the latest checkpoint's stored size or root differs from its signed note"
            );
            true
        }
        None => false,
    };
    for event in &events {
        if event.seq > checkpoint.size {
            println!(
                "FAILED: seq {} is beyond the latest checkpoint ({} events); sign one first",
                event.seq, checkpoint.size
            );
            return Ok(false);
        }
        let proof = store
            .inclusion_proof(&Scope::All, event.seq, checkpoint.size)
            .await?
            .ok_or_else(|| anyhow::anyhow!("seq {} is not in the log", event.seq))?;
        if let Err(error) = verify_inclusion(
            &event.leaf_hash,
            event.seq - 1,
            checkpoint.size,
            &proof,
            &checkpoint.root,
        ) {
            println!(
                "FAILED: seq {}: not the log's leaf there: {error}",
                event.seq
            );
            return Ok(false);
        }
    }
    println!(
        "OK: {} events, each hashing to its leaf and included in the checkpoint at size {}{}",
        events.len(),
        checkpoint.size,
        if signed { " (signature checked)" } else { "" }
    );
    Ok(true)
}

/// Every event lies in a range the manifest lists, and every listed range is complete.
fn check_manifest(file: &Path, events: &[StoredEvent]) -> anyhow::Result<()> {
    let manifest = read_manifest(file)
        .map_err(|e| anyhow::anyhow!("cannot read the manifest beside the archive: {e}"))?;
    let ranges: Vec<(u64, u64, u64)> = manifest["ranges"]
        .as_array()
        .map(|ranges| {
            ranges
                .iter()
                .filter_map(|r| {
                    Some((
                        r["from_seq"].as_u64()?,
                        r["to_seq"].as_u64()?,
                        r["count"].as_u64()?,
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    for event in events {
        anyhow::ensure!(
            manifest["account_id"] == event.account_id.as_str()
                && manifest["kind"] == event.kind.as_str(),
            "seq {} belongs to another account or kind than the manifest's",
            event.seq
        );
        anyhow::ensure!(
            ranges
                .iter()
                .any(|(from, to, _)| (*from..=*to).contains(&event.seq)),
            "seq {} is in no range of the manifest",
            event.seq
        );
    }
    for (from, to, count) in ranges {
        let held = events
            .iter()
            .filter(|event| (from..=to).contains(&event.seq))
            .count() as u64;
        anyhow::ensure!(
            held == count,
            "the manifest lists {count} events in seq {from}–{to}, the archive holds {held}"
        );
    }
    Ok(())
}
