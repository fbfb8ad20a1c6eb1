//! Checkpoints and signed notes: a checkpoint's body and its signed note read back as the
//! same checkpoint, a changed byte never opens, and no text makes a parser panic.

use ed25519_dalek::SigningKey;
use logvault_core::checkpoint::{Checkpoint, NoteSigner, VerifierKey, verify_note};
use proptest::prelude::*;

fn signer() -> NoteSigner {
    NoteSigner::new("fuzz.example/log", SigningKey::from_bytes(&[7; 32])).expect("key name")
}

/// Origins a log may have: any text without control characters.
fn origin() -> impl Strategy<Value = String> {
    "[^\\p{Cc}]{1,40}"
}

fn checkpoint() -> impl Strategy<Value = Checkpoint> {
    (origin(), any::<u64>(), any::<[u8; 32]>()).prop_map(|(origin, size, root)| Checkpoint {
        origin,
        size,
        root,
    })
}

proptest! {
    #![proptest_config(crate::config(64))]

    #[test]
    fn a_body_reads_back_as_its_checkpoint(checkpoint in checkpoint()) {
        prop_assert_eq!(Checkpoint::parse_body(&checkpoint.body()), Ok(checkpoint));
    }

    #[test]
    fn a_signed_note_opens_to_its_checkpoint_and_not_once_changed(
        checkpoint in checkpoint(),
        position in any::<usize>(),
        xor in 1..=255u8,
    ) {
        let signer = signer();
        let verifier = signer.verifier_key();
        let note = signer.sign(&checkpoint).expect("signs");
        prop_assert_eq!(verify_note(&note, &verifier), Ok(checkpoint));
        let mut bytes = note.into_bytes();
        let at = position % bytes.len();
        bytes[at] ^= xor;
        if let Ok(changed) = String::from_utf8(bytes) {
            prop_assert!(verify_note(&changed, &verifier).is_err(), "{:?}", changed);
        }
    }

    #[test]
    fn a_parsed_body_has_one_spelling(text in "[a-z./]{1,8}\n(0|[1-9][0-9]{0,20})\n[A-Za-z0-9+/=]{40,48}\n") {
        if let Ok(checkpoint) = Checkpoint::parse_body(&text) {
            prop_assert_eq!(checkpoint.body(), text);
        }
    }

    #[test]
    fn no_text_makes_a_note_or_key_parser_panic(text in "\\PC*(\n\n\u{2014} [a-z.]{1,12} [A-Za-z0-9+/=]{0,96}\n)?") {
        let verifier = signer().verifier_key();
        let _ = Checkpoint::parse_body(&text);
        let _ = verify_note(&text, &verifier);
        if let Ok(key) = VerifierKey::parse(&text) {
            prop_assert_eq!(VerifierKey::parse(&key.encode()).map(|k| k.encode()), Ok(key.encode()));
        }
        if let Ok(key) = NoteSigner::from_skey(&text) {
            prop_assert_eq!(key.to_skey(), NoteSigner::from_skey(&key.to_skey()).expect("reads").to_skey());
        }
    }
}
