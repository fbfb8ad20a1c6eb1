//! Checkpoint and signed-note tests: published Go `note` vectors, a real sum.golang.org
//! checkpoint, an OpenSSL-signed checkpoint, and every way a note or key text can go wrong.

use super::*;

// From golang.org/x/mod, sumdb/note/note_test.go (github.com/golang/mod): the "PeterNeumann"
// and "EnochRoot" keys of TestNewVerifier/TestNewSigner/TestOpen, and TestSign's note.
const PETER_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
const PETER_SKEY: &str =
    "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
const ENOCH_VKEY: &str = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop";
const GO_TEXT: &str = "If you think cryptography is the answer to your problem,\n\
                       then you don't know what your problem is.\n";
const PETER_SIG: &str = "\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
const ENOCH_SIG: &str = "\u{2014} EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n";

// A production checkpoint of the Go checksum database, quoted in
// github.com/transparency-dev/trillian-tessera internal/parse/parse_test.go
// (BenchmarkCheckpointUnsafe; the final newline, cut there, is restored here), and the
// sum.golang.org key built into the go command (golang/go cmd/go/internal/modfetch/key.go).
const SUMDB_VKEY: &str = "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8";
const SUMDB_NOTE: &str = "go.sum database tree\n31700353\nqINS1GRFhWHwdkUeqLEoP4yEMkTBBzxBkGwGQlVlVcs=\n\n\u{2014} sum.golang.org Az3grnmrIUEDFqHzAElIQCPNoRFRAAdFo47fooyWKMHb89k11GJh5zHIfNCOBmwn/C3YI8oW9/C8DJ87F61QqspBYwM=\n";

// A checkpoint of the 8-leaf RFC 6962 reference tree (see merkle/vectors.rs) signed with the
// PeterNeumann seed by OpenSSL 3.0 (`openssl pkeyutl -sign -rawin`), an Ed25519
// implementation independent of ed25519-dalek; key id and base64 assembled by hand.
const OPENSSL_NOTE: &str = "logvault.example/test\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n\n\u{2014} PeterNeumann x08go7lE6orTXSc8gcLxY5IKIMoF5sAkZIxOa0F11Zv9sh3QdzxBxQjaTjD9eUMFuOyfm+xJi8O8HW6s6WZGpb4eNwQ=\n";
const RFC_ROOT_8: &str = "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328";

fn peter() -> VerifierKey {
    VerifierKey::parse(PETER_VKEY).expect("peter vkey")
}

fn peter_signer() -> NoteSigner {
    NoteSigner::from_skey(PETER_SKEY).expect("peter skey")
}

fn hash(hex_text: &str) -> Hash {
    hex::decode(hex_text)
        .expect("hex")
        .try_into()
        .expect("32 bytes")
}

fn sample_checkpoint() -> Checkpoint {
    Checkpoint {
        origin: "logvault.example/test".into(),
        size: 8,
        root: hash(RFC_ROOT_8),
    }
}

#[test]
fn go_note_keys_parse_and_encode_identically() {
    let verifier = peter();
    assert_eq!(verifier.name(), "PeterNeumann");
    assert_eq!(verifier.key_id(), 0xc74f20a3);
    assert_eq!(verifier.encode(), PETER_VKEY);
    assert_eq!(
        verifier.to_string().parse::<VerifierKey>(),
        Ok(verifier.clone())
    );

    let signer = peter_signer();
    assert_eq!(signer.key_id(), 0xc74f20a3);
    assert_eq!(signer.verifier_key(), verifier);
    assert_eq!(signer.to_skey(), PETER_SKEY);
    assert!(
        !format!("{signer:?}").contains("AYEKFALV"),
        "Debug leaks the seed"
    );

    let enoch = VerifierKey::parse(ENOCH_VKEY).expect("enoch vkey");
    assert_eq!((enoch.name(), enoch.key_id()), ("EnochRoot", 0xaf0cfe78));
    assert_eq!(
        VerifierKey::parse(SUMDB_VKEY).map(|k| k.key_id()),
        Ok(0x033de0ae)
    );
}

#[test]
fn signing_matches_go_note_output() {
    let want = format!("{GO_TEXT}\n{PETER_SIG}");
    assert_eq!(peter_signer().sign_text(GO_TEXT), Ok(want.clone()));
    assert_eq!(open_note(&want, &peter()), Ok(GO_TEXT));
}

#[test]
fn verifies_a_production_sumdb_checkpoint() {
    let key = VerifierKey::parse(SUMDB_VKEY).expect("sumdb vkey");
    let checkpoint = verify_note(SUMDB_NOTE, &key).expect("sumdb checkpoint");
    assert_eq!(checkpoint.origin, "go.sum database tree");
    assert_eq!(checkpoint.size, 31700353);
    assert_eq!(
        base64::encode(&checkpoint.root),
        "qINS1GRFhWHwdkUeqLEoP4yEMkTBBzxBkGwGQlVlVcs="
    );
    assert!(SUMDB_NOTE.starts_with(&checkpoint.body()));
}

#[test]
fn checkpoint_signatures_match_an_independent_ed25519() {
    let signer = peter_signer();
    assert_eq!(
        signer.sign(&sample_checkpoint()),
        Ok(OPENSSL_NOTE.to_string())
    );
    assert_eq!(verify_note(OPENSSL_NOTE, &peter()), Ok(sample_checkpoint()));
}

#[test]
fn open_note_follows_go_note_open() {
    let peter_and_enoch = format!("{GO_TEXT}\n{PETER_SIG}{ENOCH_SIG}");
    let mut bad_signature = PETER_SIG.to_string();
    bad_signature.insert_str(60, "ABCD");
    let too_many = format!("{GO_TEXT}\n{}", PETER_SIG.repeat(101));
    let sixteen = format!("{GO_TEXT}\n{}", PETER_SIG.repeat(16));
    let cases: Vec<(&str, String, &str, Result<&str, NoteError>)> = vec![
        (
            "peter of two",
            peter_and_enoch.clone(),
            PETER_VKEY,
            Ok(GO_TEXT),
        ),
        ("enoch of two", peter_and_enoch, ENOCH_VKEY, Ok(GO_TEXT)),
        ("sixteen copies", sixteen, PETER_VKEY, Ok(GO_TEXT)),
        (
            "only an unknown key",
            format!("{GO_TEXT}\n{ENOCH_SIG}"),
            PETER_VKEY,
            Err(NoteError::NoVerifiedSignature),
        ),
        (
            "too many signatures",
            too_many,
            PETER_VKEY,
            Err(NoteError::Malformed("too many signatures")),
        ),
        (
            "invalid signature",
            format!("{GO_TEXT}\n{bad_signature}"),
            PETER_VKEY,
            Err(NoteError::BadSignature),
        ),
        (
            "other name, same id",
            format!(
                "{GO_TEXT}\n{}",
                PETER_SIG.replace("PeterNeumann", "CarmenSandiego")
            ),
            PETER_VKEY,
            Err(NoteError::NoVerifiedSignature),
        ),
        (
            "same name, other id",
            format!("{GO_TEXT}\n{}", PETER_SIG.replace("x08g", "xxxx")),
            PETER_VKEY,
            Err(NoteError::NoVerifiedSignature),
        ),
    ];
    for (name, note, vkey, want) in cases {
        let key = VerifierKey::parse(vkey).expect("vkey");
        assert_eq!(open_note(&note, &key), want, "{name}");
    }
}

#[test]
fn malformed_notes_are_refused() {
    let no_final_newline = &PETER_SIG[..PETER_SIG.len() - 1];
    let cases = [
        ("text only", GO_TEXT.to_string()),
        ("blank line, no signature", format!("{GO_TEXT}\n")),
        (
            "signature without newline",
            format!("{GO_TEXT}\n{no_final_newline}"),
        ),
        ("control character", format!("\x01{GO_TEXT}\n{PETER_SIG}")),
        ("tab", format!("\t{GO_TEXT}\n{PETER_SIG}")),
        (
            "carriage return",
            format!("{GO_TEXT}\n{}", PETER_SIG.replace('\n', "\r\n")),
        ),
        (
            "space in key name",
            format!(
                "{GO_TEXT}\n\u{2014} Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
            ),
        ),
        (
            "trailing line",
            format!("{GO_TEXT}\n{PETER_SIG}Unexpected line.\n"),
        ),
        ("trailing blank line", format!("{GO_TEXT}\n{PETER_SIG}\n")),
        (
            "hyphen for em dash",
            format!("{GO_TEXT}\n{}", PETER_SIG.replacen('\u{2014}', "-", 1)),
        ),
        (
            "bad base64",
            format!("{GO_TEXT}\n{}", PETER_SIG.replace("AM=", "AM")),
        ),
        (
            "short signature",
            format!("{GO_TEXT}\n\u{2014} PeterNeumann x08gow==\n"),
        ),
        ("empty", String::new()),
    ];
    for (name, note) in cases {
        let verdict = open_note(&note, &peter());
        assert!(
            matches!(verdict, Err(NoteError::Malformed(_))),
            "{name}: {verdict:?}"
        );
    }
}

#[test]
fn mangled_key_texts_are_refused() {
    // The manglings of Go's TestNewVerifier and TestNewSigner: every proper substring, and
    // every single byte incremented.
    for (text, parse) in [
        (
            PETER_VKEY,
            (|t: &str| VerifierKey::parse(t).is_ok()) as fn(&str) -> bool,
        ),
        (PETER_SKEY, |t: &str| NoteSigner::from_skey(t).is_ok()),
    ] {
        assert!(parse(text));
        let bytes = text.as_bytes();
        for start in 0..=bytes.len() {
            for end in start + 1..=bytes.len() {
                if (start, end) != (0, bytes.len()) {
                    assert!(
                        !parse(&text[start..end]),
                        "accepted {:?}",
                        &text[start..end]
                    );
                }
            }
        }
        for position in 0..bytes.len() {
            let mut mangled = bytes.to_vec();
            mangled[position] += 1;
            let mangled = String::from_utf8(mangled).expect("ascii");
            assert!(!parse(&mangled), "accepted {mangled:?}");
        }
    }
    let cases = [
        // Go: wrong length key, with adjusted key hash.
        "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==",
        // Go: unknown algorithm, with adjusted key hash.
        "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+C74F20A3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW+",
        "PeterNeumann++c74f20a+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
    ];
    for text in cases {
        assert!(VerifierKey::parse(text).is_err(), "accepted {text}");
    }
    let wrong_algorithm = VerifierKey::parse(cases[1]);
    assert_eq!(wrong_algorithm, Err(NoteError::UnsupportedAlgorithm(0x65)));
}

#[test]
fn generated_keys_sign_and_verify_and_round_trip() {
    let signer = NoteSigner::generate("logvault.example/test").expect("random key");
    let verifier = signer.verifier_key();
    let checkpoint = sample_checkpoint();
    let note = signer.sign(&checkpoint).expect("sign");
    assert!(note.starts_with(&format!(
        "{}\n\u{2014} logvault.example/test ",
        checkpoint.body()
    )));
    assert_eq!(verify_note(&note, &verifier), Ok(checkpoint.clone()));

    let restored = NoteSigner::from_skey(&signer.to_skey()).expect("skey");
    assert_eq!(restored.verifier_key(), verifier);
    assert_eq!(restored.sign(&checkpoint), Ok(note.clone()));
    assert_eq!(VerifierKey::parse(&verifier.encode()), Ok(verifier.clone()));

    let other = NoteSigner::generate("logvault.example/test").expect("random key");
    let renamed = VerifierKey::new("logvault.example/other", *verifier.verifying_key());
    for key in [other.verifier_key(), renamed.expect("name")] {
        assert_eq!(
            verify_note(&note, &key),
            Err(NoteError::NoVerifiedSignature)
        );
    }

    // Unknown signatures are ignored, before or after ours.
    let foreign = other.sign(&checkpoint).expect("sign");
    let foreign_line = &foreign[checkpoint.body().len() + 1..];
    let both = format!("{note}{foreign_line}");
    assert_eq!(verify_note(&both, &verifier), Ok(checkpoint.clone()));
    assert_eq!(verify_note(&both, &other.verifier_key()), Ok(checkpoint));
}

#[test]
fn every_single_byte_change_to_a_signed_checkpoint_is_refused() {
    let signer = peter_signer();
    let note = signer.sign(&sample_checkpoint()).expect("sign");
    let key = signer.verifier_key();
    for (position, byte) in note.bytes().enumerate() {
        if !byte.is_ascii() {
            continue;
        }
        for replacement in [b'A', b'0', b'\n', b'+'] {
            if replacement == byte {
                continue;
            }
            let mut mangled = note.as_bytes().to_vec();
            mangled[position] = replacement;
            let mangled = String::from_utf8(mangled).expect("utf-8");
            assert!(verify_note(&mangled, &key).is_err(), "accepted {mangled:?}");
        }
    }
    let mut mangled = note.clone();
    mangled.push('\n');
    assert!(verify_note(&mangled, &key).is_err());
}

#[test]
fn checkpoint_bodies_parse_strictly() {
    let root = "XcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=";
    let empty_root = base64::encode(&crate::merkle::empty_root());
    let cases: Vec<(&str, String, Option<u64>)> = vec![
        ("plain", format!("o\n8\n{root}\n"), Some(8)),
        ("empty tree", format!("o\n0\n{empty_root}\n"), Some(0)),
        (
            "largest size",
            format!("o\n18446744073709551615\n{root}\n"),
            Some(u64::MAX),
        ),
        (
            "size overflow",
            format!("o\n18446744073709551616\n{root}\n"),
            None,
        ),
        ("leading zero", format!("o\n08\n{root}\n"), None),
        ("plus sign", format!("o\n+8\n{root}\n"), None),
        ("negative", format!("o\n-8\n{root}\n"), None),
        ("space", format!("o\n8 \n{root}\n"), None),
        ("empty size", format!("o\n\n{root}\n"), None),
        ("empty origin", format!("\n8\n{root}\n"), None),
        ("control in origin", format!("o\x7f\n8\n{root}\n"), None),
        ("no final newline", format!("o\n8\n{root}"), None),
        ("extension line", format!("o\n8\n{root}\nextra\n"), None),
        ("missing root", "o\n8\n".to_string(), None),
        ("short root", "o\n8\nZm9v\n".to_string(), None),
        (
            "unpadded root",
            format!("o\n8\n{}\n", root.trim_end_matches('=')),
            None,
        ),
        ("hex root", format!("o\n8\n{RFC_ROOT_8}\n"), None),
    ];
    for (name, body, size) in cases {
        let parsed = Checkpoint::parse_body(&body);
        assert_eq!(
            parsed.as_ref().ok().map(|c| c.size),
            size,
            "{name}: {parsed:?}"
        );
        if let Ok(checkpoint) = parsed {
            assert_eq!(checkpoint.body(), body, "{name} round trip");
        }
    }
}

#[test]
fn invalid_names_and_origins_are_refused() {
    let key = peter_signer().verifier_key();
    for name in ["", "a b", "a+b", "a\u{2003}b", "a\nb", "a\x01b"] {
        let verifier = VerifierKey::new(name, *key.verifying_key());
        assert_eq!(verifier, Err(NoteError::InvalidKeyName), "{name:?}");
    }
    for origin in ["", "a\nb", "a\tb"] {
        let checkpoint = Checkpoint {
            origin: origin.into(),
            ..sample_checkpoint()
        };
        let signed = peter_signer().sign(&checkpoint);
        assert!(
            matches!(signed, Err(NoteError::MalformedCheckpoint(_))),
            "{origin:?}"
        );
    }
    assert!(peter_signer().sign_text("no newline").is_err());
}
