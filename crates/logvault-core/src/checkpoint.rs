//! Signed checkpoints: the C2SP `tlog-checkpoint` body (origin, tree size, root hash) inside a
//! C2SP `signed-note` with an Ed25519 signature, as `GET /v1/checkpoints/latest` serves them
//! and `logvault verify` checks them. Keys use the text forms of golang.org/x/mod/sumdb/note.

mod base64;
mod keys;
mod note;

#[cfg(test)]
mod tests;

pub use keys::{NoteSigner, VerifierKey, key_id};
pub use note::open_note;

use crate::merkle::Hash;

/// Why a note, checkpoint or key text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    /// The note does not have the signed-note shape.
    #[error("malformed note: {0}")]
    Malformed(&'static str),
    /// The note text is not a checkpoint body.
    #[error("malformed checkpoint: {0}")]
    MalformedCheckpoint(&'static str),
    /// A key name is empty or contains a space, `+` or a control character.
    #[error("invalid key name")]
    InvalidKeyName,
    /// A verifier or signer key text is not in the expected form.
    #[error("malformed key: {0}")]
    MalformedKey(&'static str),
    /// A key text names a signature type other than Ed25519.
    #[error("unsupported key algorithm {0:#04x}")]
    UnsupportedAlgorithm(u8),
    /// A key text's id does not match its name and key.
    #[error("key id does not match the key")]
    KeyIdMismatch,
    /// A signature line from the expected key does not verify.
    #[error("invalid signature")]
    BadSignature,
    /// No signature line comes from the expected key.
    #[error("note has no signature from the expected key")]
    NoVerifiedSignature,
    /// The OS could not supply randomness for a new key.
    #[error("no randomness for a new key: {0}")]
    Random(getrandom::Error),
}

/// A tree head: the log named `origin` had `size` leaves with this `root`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's identity, e.g. `logvault.example.com/log`; the first line of the body.
    pub origin: String,
    /// The number of leaves.
    pub size: u64,
    /// The RFC 6962 root of those leaves.
    pub root: Hash,
}

impl Checkpoint {
    /// The note text: `<origin>\n<size>\n<base64 root>\n`.
    pub fn body(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            base64::encode(&self.root)
        )
    }

    /// Reads a note text written by [`Checkpoint::body`].
    ///
    /// Extension lines are refused rather than dropped: the signature covers them, logvault
    /// never writes them, and a caller handed only origin, size and root could not see them.
    pub fn parse_body(text: &str) -> Result<Self, NoteError> {
        let lines = text
            .strip_suffix('\n')
            .ok_or(NoteError::MalformedCheckpoint("body must end in a newline"))?;
        let mut lines = lines.split('\n');
        let (Some(origin), Some(size), Some(root)) = (lines.next(), lines.next(), lines.next())
        else {
            return Err(NoteError::MalformedCheckpoint(
                "expected origin, size and root",
            ));
        };
        if lines.next().is_some() {
            return Err(NoteError::MalformedCheckpoint(
                "extension lines are not supported",
            ));
        }
        check_origin(origin)?;
        let size = parse_size(size)?;
        let root = base64::decode(root)
            .and_then(|bytes| Hash::try_from(bytes).ok())
            .ok_or(NoteError::MalformedCheckpoint(
                "root is not a base64 SHA-256 hash",
            ))?;
        Ok(Self {
            origin: origin.to_owned(),
            size,
            root,
        })
    }
}

impl NoteSigner {
    /// Signs `checkpoint`, returning the whole signed note.
    pub fn sign(&self, checkpoint: &Checkpoint) -> Result<String, NoteError> {
        check_origin(&checkpoint.origin)?;
        self.sign_text(&checkpoint.body())
    }
}

/// Opens a signed checkpoint with `key` and parses its body. Whether the origin is the one
/// expected is the caller's check.
pub fn verify_note(note: &str, key: &VerifierKey) -> Result<Checkpoint, NoteError> {
    Checkpoint::parse_body(open_note(note, key)?)
}

fn check_origin(origin: &str) -> Result<(), NoteError> {
    if origin.is_empty() {
        return Err(NoteError::MalformedCheckpoint("empty origin"));
    }
    if origin.chars().any(char::is_control) {
        return Err(NoteError::MalformedCheckpoint(
            "control character in origin",
        ));
    }
    Ok(())
}

/// ASCII decimal without sign or leading zeros ("0" for the empty tree).
fn parse_size(text: &str) -> Result<u64, NoteError> {
    let canonical = !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    if !canonical {
        return Err(NoteError::MalformedCheckpoint(
            "size is not a plain decimal",
        ));
    }
    text.parse()
        .map_err(|_| NoteError::MalformedCheckpoint("size is too large"))
}
