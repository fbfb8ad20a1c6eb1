//! Signed notes and checkpoints: checkpoint bodies, notes opened with a known key, key texts,
//! and notes this code signed with one byte changed.

use std::sync::OnceLock;

use ed25519_dalek::SigningKey;
use logvault_core::checkpoint::{Checkpoint, NoteSigner, VerifierKey, verify_note};
use logvault_core::merkle::leaf_hash;

/// The key every note of the corpus is signed with.
pub fn signer() -> &'static NoteSigner {
    static SIGNER: OnceLock<NoteSigner> = OnceLock::new();
    SIGNER.get_or_init(|| {
        NoteSigner::new("fuzz.example/log", SigningKey::from_bytes(&[7; 32])).expect("key name")
    })
}

fn verifier() -> &'static VerifierKey {
    static VERIFIER: OnceLock<VerifierKey> = OnceLock::new();
    VERIFIER.get_or_init(|| signer().verifier_key())
}

/// Mode (mod 5): checkpoint body, signed note, verifier key, signer key, flipped signed note.
pub fn run(data: &[u8]) {
    let Some((mode, rest)) = crate::split_mode(data) else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    match mode % 5 {
        0 => {
            if let Ok(checkpoint) = Checkpoint::parse_body(&text) {
                assert_eq!(checkpoint.body(), text, "one spelling per checkpoint");
                let note = signer()
                    .sign(&checkpoint)
                    .expect("a parsed checkpoint signs");
                assert_eq!(verify_note(&note, verifier()), Ok(checkpoint));
            }
        }
        1 => {
            if let Ok(checkpoint) = verify_note(&text, verifier()) {
                assert!(
                    text.starts_with(&checkpoint.body()),
                    "the body is the signed text"
                );
            }
        }
        2 => {
            if let Ok(key) = VerifierKey::parse(&text) {
                let again = VerifierKey::parse(&key.encode()).expect("an encoded key parses");
                assert_eq!(again.encode(), key.encode());
                assert_eq!(again.key_id(), key.key_id());
            }
        }
        3 => {
            if let Ok(key) = NoteSigner::from_skey(&text) {
                let again = NoteSigner::from_skey(&key.to_skey()).expect("a written key reads");
                assert_eq!(again.verifier_key().encode(), key.verifier_key().encode());
            }
        }
        _ => flipped(rest),
    }
}

/// `[position: 2 bytes][xor][size: 8 bytes][origin…]`: a checkpoint this code signs must open
/// to itself, and the same note with any one byte changed must not open at all.
fn flipped(data: &[u8]) {
    let Some((head, origin)) = data.split_first_chunk::<11>() else {
        return;
    };
    let position = usize::from(u16::from_le_bytes([head[0], head[1]]));
    let xor = head[2];
    let size = u64::from_le_bytes(head[3..11].try_into().expect("8 bytes"));
    let checkpoint = Checkpoint {
        origin: String::from_utf8_lossy(origin).into_owned(),
        size,
        root: leaf_hash(data),
    };
    let Ok(note) = signer().sign(&checkpoint) else {
        return;
    };
    assert_eq!(verify_note(&note, verifier()), Ok(checkpoint));
    if xor == 0 {
        return;
    }
    let mut bytes = note.into_bytes();
    let at = position % bytes.len();
    bytes[at] ^= xor;
    if let Ok(changed) = String::from_utf8(bytes) {
        let opened = verify_note(&changed, verifier());
        assert!(
            opened.is_err(),
            "a changed note opened: {changed:?} -> {opened:?}"
        );
    }
}
