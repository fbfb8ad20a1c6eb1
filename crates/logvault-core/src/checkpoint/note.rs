//! C2SP signed notes: text, a blank line, then `— <key name> <base64(key id ‖ signature)>`
//! lines. Signing and opening work on any note text; checkpoints are one kind of text.

use ed25519_dalek::{Signature, Signer};

use super::keys::is_valid_key_name;
use super::{NoteError, NoteSigner, VerifierKey, base64};

/// Opening refuses notes with more signature lines than this (the spec asks for at least 16).
const MAX_SIGNATURES: usize = 100;

/// The start of every signature line: em dash (U+2014) and a space.
const SIGNATURE_PREFIX: &str = "\u{2014} ";

/// Whether `text` may be a note's text: non-empty, ending in a newline, and free of control
/// characters other than newline.
fn is_valid_note_text(text: &str) -> bool {
    text.ends_with('\n') && !has_control_characters(text)
}

fn has_control_characters(text: &str) -> bool {
    text.chars().any(|c| c.is_control() && c != '\n')
}

impl NoteSigner {
    /// Signs arbitrary note `text` (ending in a newline), returning the whole signed note.
    pub fn sign_text(&self, text: &str) -> Result<String, NoteError> {
        if !is_valid_note_text(text) {
            return Err(NoteError::Malformed(
                "note text must end in a newline, no controls",
            ));
        }
        let signature: Signature = self.signing_key().sign(text.as_bytes());
        let mut signed = Vec::with_capacity(68);
        signed.extend_from_slice(&self.key_id().to_be_bytes());
        signed.extend_from_slice(&signature.to_bytes());
        Ok(format!(
            "{text}\n{SIGNATURE_PREFIX}{} {}\n",
            self.name(),
            base64::encode(&signed)
        ))
    }
}

/// Opens a signed note with `key`: returns the note text (with its final newline) when a
/// signature line from `key` verifies.
///
/// Signature lines from other keys (another name or key id) are ignored, as the spec requires;
/// any signature that claims to be from `key` but fails refuses the whole note.
pub fn open_note<'a>(note: &'a str, key: &VerifierKey) -> Result<&'a str, NoteError> {
    if has_control_characters(note) {
        return Err(NoteError::Malformed("control character"));
    }
    let split = note
        .rfind("\n\n")
        .ok_or(NoteError::Malformed("no blank line before the signatures"))?;
    let (text, signature_block) = (&note[..=split], &note[split + 2..]);
    let lines = signature_block
        .strip_suffix('\n')
        .ok_or(NoteError::Malformed("signatures must end in a newline"))?;
    let mut n_signatures = 0;
    let mut verified = false;
    for line in lines.split('\n') {
        n_signatures += 1;
        if n_signatures > MAX_SIGNATURES {
            return Err(NoteError::Malformed("too many signatures"));
        }
        let (name, key_id, signature) = parse_signature_line(line)?;
        if name != key.name() || key_id != key.key_id() {
            continue;
        }
        let signature = Signature::from_slice(&signature).map_err(|_| NoteError::BadSignature)?;
        key.verifying_key()
            .verify_strict(text.as_bytes(), &signature)
            .map_err(|_| NoteError::BadSignature)?;
        verified = true;
    }
    if !verified {
        return Err(NoteError::NoVerifiedSignature);
    }
    Ok(text)
}

/// Splits `— <name> <base64>` into the name, the key id and the signature bytes after it.
fn parse_signature_line(line: &str) -> Result<(&str, u32, Vec<u8>), NoteError> {
    let rest = line
        .strip_prefix(SIGNATURE_PREFIX)
        .ok_or(NoteError::Malformed(
            "a signature line must start with an em dash",
        ))?;
    let (name, encoded) = rest.split_once(' ').ok_or(NoteError::Malformed(
        "a signature line needs a name and a signature",
    ))?;
    if !is_valid_key_name(name) {
        return Err(NoteError::Malformed("invalid key name in a signature line"));
    }
    let bytes =
        base64::decode(encoded).ok_or(NoteError::Malformed("signature is not valid base64"))?;
    match bytes.split_first_chunk::<4>() {
        Some((key_id, signature)) if !signature.is_empty() => {
            Ok((name, u32::from_be_bytes(*key_id), signature.to_vec()))
        }
        _ => Err(NoteError::Malformed("signature too short")),
    }
}
