//! The checkpoint signing key: an Ed25519 key in the Go note `PRIVATE+KEY+…` text form,
//! kept in a file outside the database (by default `DATA_DIR/checkpoint-key`, mode 0600).

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use logvault_core::checkpoint::{NoteSigner, VerifierKey};

use crate::serve::write_secret_file;

/// Where the signing key lives and what the log is called.
#[derive(Debug, Clone, Args)]
pub(crate) struct SigningArgs {
    /// File holding the checkpoint signing key (default: DATA_DIR/checkpoint-key).
    #[arg(long, env = "LOGVAULT_CHECKPOINT_KEY_FILE", global = true)]
    checkpoint_key: Option<PathBuf>,
    /// The log's origin line in checkpoints, used when a new key is created
    /// (default: `<hostname>/logvault`).
    #[arg(long, env = "LOGVAULT_LOG_ORIGIN", global = true)]
    log_origin: Option<String>,
}

impl SigningArgs {
    fn path(&self, data_dir: &Path) -> PathBuf {
        self.checkpoint_key
            .clone()
            .unwrap_or_else(|| data_dir.join("checkpoint-key"))
    }

    /// The signer, created (and saved with mode 0600) on first use.
    pub(crate) fn load_or_create(&self, data_dir: &Path) -> anyhow::Result<NoteSigner> {
        let path = self.path(data_dir);
        if path.exists() {
            return read_signer(&path);
        }
        let origin = self.log_origin.clone().unwrap_or_else(default_origin);
        let signer = NoteSigner::generate(origin.clone()).map_err(|e| {
            anyhow::anyhow!("cannot create a signing key for origin {origin:?}: {e}")
        })?;
        write_secret_file(&path, &format!("{}\n", signer.to_skey()))?;
        tracing::info!(path = %path.display(), %origin, "created the checkpoint signing key");
        Ok(signer)
    }

    /// The public key of an existing signing key, if there is one.
    pub(crate) fn verifier(&self, data_dir: &Path) -> anyhow::Result<Option<VerifierKey>> {
        let path = self.path(data_dir);
        if !path.exists() {
            return Ok(None);
        }
        Ok(Some(read_signer(&path)?.verifier_key()))
    }
}

fn read_signer(path: &Path) -> anyhow::Result<NoteSigner> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the signing key {}", path.display()))?;
    NoteSigner::from_skey(text.trim())
        .map_err(|e| anyhow::anyhow!("{} is not a signing key: {e}", path.display()))
}

fn default_origin() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty() && !name.contains(['+', ' ']))
        .unwrap_or_else(|| "localhost".into());
    format!("{host}/logvault")
}

/// A public key given as its text or as a file holding it.
pub(crate) fn parse_public_key(text_or_path: &str) -> anyhow::Result<VerifierKey> {
    let text = if Path::new(text_or_path).is_file() {
        std::fs::read_to_string(text_or_path)?
    } else {
        text_or_path.to_string()
    };
    VerifierKey::parse(text.trim()).map_err(|e| anyhow::anyhow!("not a public key ({e})"))
}
