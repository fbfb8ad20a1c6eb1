//! Ed25519 note keys and their text forms, compatible with golang.org/x/mod/sumdb/note:
//! verifier keys `<name>+<hex key id>+<base64(0x01 ‖ public key)>` and signer keys
//! `PRIVATE+KEY+<name>+<hex key id>+<base64(0x01 ‖ seed)>`.

use std::fmt;
use std::str::FromStr;

use ed25519_dalek::{SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use super::{NoteError, base64};

/// The signed-note signature type byte for Ed25519.
const ALG_ED25519: u8 = 0x01;

/// The prefix that marks a signer key as secret.
const SKEY_PREFIX: &str = "PRIVATE+KEY+";

/// The key id: the first 4 bytes, big-endian, of SHA-256(name ‖ "\n" ‖ 0x01 ‖ public key).
pub fn key_id(name: &str, key: &VerifyingKey) -> u32 {
    let mut hasher = Sha256::new();
    hasher.update(name.as_bytes());
    hasher.update([b'\n', ALG_ED25519]);
    hasher.update(key.as_bytes());
    let digest = hasher.finalize();
    u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
}

/// Whether `name` may name a key: non-empty, without spaces, `+` or control characters.
pub(crate) fn is_valid_key_name(name: &str) -> bool {
    !name.is_empty()
        && !name
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '+')
}

/// The public half of a note key: what an auditor needs to check checkpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifierKey {
    name: String,
    key_id: u32,
    key: VerifyingKey,
}

impl VerifierKey {
    /// A verifier for Ed25519 `key` under `name`.
    pub fn new(name: impl Into<String>, key: VerifyingKey) -> Result<Self, NoteError> {
        let name = name.into();
        if !is_valid_key_name(&name) {
            return Err(NoteError::InvalidKeyName);
        }
        let key_id = key_id(&name, &key);
        Ok(Self { name, key_id, key })
    }

    /// The key name, as it appears in signature lines.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key id, as it starts each signature.
    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    /// The Ed25519 public key.
    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.key
    }

    /// The text form `<name>+<hex key id>+<base64(0x01 ‖ public key)>`.
    pub fn encode(&self) -> String {
        let mut typed = vec![ALG_ED25519];
        typed.extend_from_slice(self.key.as_bytes());
        format!(
            "{}+{:08x}+{}",
            self.name,
            self.key_id,
            base64::encode(&typed)
        )
    }

    /// Reads the text form, refusing a key id that does not match the name and key.
    pub fn parse(text: &str) -> Result<Self, NoteError> {
        let (name, key_id, typed) = split_key_text(text)?;
        let key = VerifyingKey::from_bytes(&ed25519_key_bytes(&typed)?)
            .map_err(|_| NoteError::MalformedKey("not an Ed25519 public key"))?;
        let verifier = Self::new(name, key)?;
        if verifier.key_id != key_id {
            return Err(NoteError::KeyIdMismatch);
        }
        Ok(verifier)
    }
}

impl fmt::Display for VerifierKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.encode())
    }
}

impl FromStr for VerifierKey {
    type Err = NoteError;

    fn from_str(text: &str) -> Result<Self, NoteError> {
        Self::parse(text)
    }
}

/// The secret half of a note key: signs checkpoints. Its `Debug` shows no secret.
#[derive(Clone)]
pub struct NoteSigner {
    name: String,
    key_id: u32,
    key: SigningKey,
}

impl NoteSigner {
    /// A signer with Ed25519 `key` under `name`.
    pub fn new(name: impl Into<String>, key: SigningKey) -> Result<Self, NoteError> {
        let name = name.into();
        if !is_valid_key_name(&name) {
            return Err(NoteError::InvalidKeyName);
        }
        let key_id = key_id(&name, &key.verifying_key());
        Ok(Self { name, key_id, key })
    }

    /// A new key from 32 bytes of OS randomness.
    pub fn generate(name: impl Into<String>) -> Result<Self, NoteError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(NoteError::Random)?;
        let signer = Self::new(name, SigningKey::from_bytes(&seed));
        seed.fill(0);
        signer
    }

    /// The key name, as it appears in signature lines.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key id, as it starts each signature.
    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    /// The matching public key.
    pub fn verifier_key(&self) -> VerifierKey {
        VerifierKey {
            name: self.name.clone(),
            key_id: self.key_id,
            key: self.key.verifying_key(),
        }
    }

    /// The Ed25519 signing key.
    pub(crate) fn signing_key(&self) -> &SigningKey {
        &self.key
    }

    /// The secret text form `PRIVATE+KEY+<name>+<hex key id>+<base64(0x01 ‖ seed)>`: write it
    /// only to a file readable by the service alone.
    pub fn to_skey(&self) -> String {
        let mut typed = vec![ALG_ED25519];
        typed.extend_from_slice(self.key.as_bytes());
        let text = format!(
            "{SKEY_PREFIX}{}+{:08x}+{}",
            self.name,
            self.key_id,
            base64::encode(&typed)
        );
        typed.fill(0);
        text
    }

    /// Reads the secret text form, refusing a key id that does not match the derived key.
    pub fn from_skey(text: &str) -> Result<Self, NoteError> {
        let rest = text
            .strip_prefix(SKEY_PREFIX)
            .ok_or(NoteError::MalformedKey("missing PRIVATE+KEY+ prefix"))?;
        let (name, key_id, mut typed) = split_key_text(rest)?;
        let seed = ed25519_key_bytes(&typed);
        typed.fill(0);
        let signer = Self::new(name, SigningKey::from_bytes(&seed?))?;
        if signer.key_id != key_id {
            return Err(NoteError::KeyIdMismatch);
        }
        Ok(signer)
    }
}

impl fmt::Debug for NoteSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NoteSigner")
            .field("name", &self.name)
            .field("key_id", &format_args!("{:08x}", self.key_id))
            .finish_non_exhaustive()
    }
}

/// Splits `<name>+<8 hex digits>+<base64>` (the base64 may itself contain `+`).
fn split_key_text(text: &str) -> Result<(&str, u32, Vec<u8>), NoteError> {
    let (name, rest) = text
        .split_once('+')
        .ok_or(NoteError::MalformedKey("expected name+id+key"))?;
    let (id_hex, key_base64) = rest
        .split_once('+')
        .ok_or(NoteError::MalformedKey("expected name+id+key"))?;
    if id_hex.len() != 8 || !id_hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(NoteError::MalformedKey("key id is not 8 hex digits"));
    }
    let key_id = u32::from_str_radix(id_hex, 16)
        .map_err(|_| NoteError::MalformedKey("key id is not 8 hex digits"))?;
    let typed =
        base64::decode(key_base64).ok_or(NoteError::MalformedKey("key is not valid base64"))?;
    Ok((name, key_id, typed))
}

/// The 32 key bytes after the Ed25519 type byte.
fn ed25519_key_bytes(typed: &[u8]) -> Result<[u8; 32], NoteError> {
    match typed.split_first() {
        Some((&ALG_ED25519, key)) => key
            .try_into()
            .map_err(|_| NoteError::MalformedKey("Ed25519 key is not 32 bytes")),
        Some((&algorithm, _)) => Err(NoteError::UnsupportedAlgorithm(algorithm)),
        None => Err(NoteError::MalformedKey("empty key")),
    }
}
