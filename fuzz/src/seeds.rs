//! The starting corpus of every target: a few inputs of each mode, written by the `seeds`
//! binary into `corpus/<target>/`. Regenerate with `scripts/fuzz.sh seeds`.

use std::convert::Infallible;
use std::path::Path;

use logvault_core::checkpoint::Checkpoint;
use logvault_core::merkle::{Frontier, Hash, inclusion_proof, leaf_hash, root_of};

/// A target's seeds: each a file name and its bytes (mode byte first).
pub type Seeds = Vec<(String, Vec<u8>)>;

/// Every target and its seeds.
pub fn all() -> Vec<(&'static str, Seeds)> {
    vec![
        ("ingest", ingest()),
        ("scrub", scrub()),
        ("query", query()),
        ("checkpoint", checkpoint()),
        ("proof", proof()),
        ("session", session()),
        ("otlp", otlp()),
    ]
}

/// Writes every target's seeds under `dir`.
pub fn write_all(dir: &Path) -> std::io::Result<()> {
    for (target, seeds) in all() {
        let target_dir = dir.join(target);
        std::fs::create_dir_all(&target_dir)?;
        for (name, bytes) in seeds {
            std::fs::write(target_dir.join(name), bytes)?;
        }
    }
    Ok(())
}

fn with_mode(mode: u8, text: impl AsRef<[u8]>) -> Vec<u8> {
    let mut bytes = vec![mode];
    bytes.extend_from_slice(text.as_ref());
    bytes
}

fn named(seeds: Vec<(&str, Vec<u8>)>) -> Seeds {
    seeds
        .into_iter()
        .map(|(name, bytes)| (name.to_string(), bytes))
        .collect()
}

const AUDIT: &str = r#"{"id":"evt-1","account_id":"mer_123","action":"user.login","outcome":"failure","reason":"bad_password","actor":{"id":"usr_42","type":"user","name":"Jane"},"origin":{"ip":"203.0.113.7","user_agent":"Mozilla/5.0"},"request_id":"req_abc","occurred_at":"2026-11-25T10:00:00Z","metadata":{"mfa":true,"password":"hunter2"}}"#;
const THREAT: &str = r#"{"account_id":"mer_123","source":"sdk","error_type":"NetworkTimeout","error_code":"E_TIMEOUT","message":"card 4242 4242 4242 4242 declined for jane.doe@example.com","version":"ios-sdk 4.2.1","environment":"production","sdk":{"name":"ios","platform":"iOS 17.2"},"api":{"method":"POST","path":"/v1/payments?token=abc123","status":504},"stacktrace":"at pay()\n at main()","metadata":{"nested":{"list":[1,"x",null,{"ssn":"123-45-6789"}]}}}"#;

fn ingest() -> Seeds {
    named(vec![
        ("audit_object", with_mode(0, AUDIT)),
        ("audit_array", with_mode(0, format!("[{AUDIT},{AUDIT}]"))),
        (
            "audit_ndjson",
            with_mode(1, format!("{AUDIT}\n\n{AUDIT}\n")),
        ),
        ("threat_object", with_mode(2, THREAT)),
        ("threat_ndjson", with_mode(3, format!("{THREAT}\n{THREAT}"))),
        (
            "invalid",
            with_mode(2, r#"[{"source":"web","extra":1,"occurred_at":5},7]"#),
        ),
    ])
}

const TEXTS: [&str; 10] = [
    "card 4242 4242 4242 4242 declined",
    "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJlc2lnbmF0dXJl",
    "customer jane.doe@example.com called +1 415 555 0100",
    "api_key=sk_live_4eC39HqLyjWDarjtT1zdp7dc&password=\"s3cr3t\"",
    "iban DE89 3704 0044 0532 0130 00, ssn 123-45-6789",
    "from 203.0.113.7 and 2001:db8::1 via /users/jane@example.com/cards/4111111111111111",
    "order ORD-123456 version 1.2.3.4 build 4111-1111-1111-1111",
    "dXNlcjpwYXNzd29yZA== basic auth; AKIAIOSFODNN7EXAMPLE aws",
    "request timed out after 30s",
    "[card:…4242] [email] already scrubbed",
];

fn scrub() -> Seeds {
    let mut seeds = Vec::new();
    for (i, text) in TEXTS.iter().enumerate() {
        seeds.push((format!("text_{i}"), with_mode(0, text)));
        seeds.push((format!("text_configured_{i}"), with_mode(1, text)));
    }
    let metadata = r#"{"card":"4242424242424242","customerTaxId":12345,"token_type":"bearer","note":"mail jane@example.com","n":4111111111111111,"deep":[{"password":true}]}"#;
    seeds.push(("json".into(), with_mode(2, metadata)));
    seeds.push(("json_configured".into(), with_mode(3, metadata)));
    seeds.push(("audit_event".into(), with_mode(4, AUDIT)));
    seeds.push(("threat_event".into(), with_mode(6, THREAT)));
    seeds.push(("threat_event_configured".into(), with_mode(7, THREAT)));
    seeds
}

fn query() -> Seeds {
    named(vec![
        (
            "audit_list",
            with_mode(
                0,
                "account_id=mer_1&from=2026-11-25T10:00:00Z&to=2026-11-26T00:00:00%2B01:00\
                 &action=user.login&outcome=failure&actor_id=usr_1&ip=203.0.113.0/24\
                 &request_id=req_1&limit=100&cursor=c00000000000004d2&q=timed%20out",
            ),
        ),
        (
            "threat_list",
            with_mode(
                1,
                "error_type=NetworkTimeout&source=sdk&version=ios-sdk+4.2.1\
                 &environment=production&limit=1000&ip=1.2.3.4",
            ),
        ),
        (
            "trends",
            with_mode(
                2,
                "group_by=version&interval=day&from=2026-01-01T00:00:00Z&to=2026-02-01T00:00:00Z",
            ),
        ),
        ("cursor", with_mode(3, "c00000000000004d2")),
        ("ip_v4", with_mode(4, "203.0.113.0/24")),
        ("ip_v6", with_mode(4, "2001:db8::/32")),
        (
            "page_audit",
            with_mode(
                5,
                "range=custom&from=2026-11-25T10:00&to=2026-11-26T10:00&action=user.login\
                 &outcome=failure&ip=10.0.0.0/8&account_id=mer_1&cursor=c00000000000004d2",
            ),
        ),
        (
            "page_threat",
            with_mode(
                6,
                "range=7d&q=timed+out&source=api&error_type=NetworkTimeout",
            ),
        ),
    ])
}

fn checkpoint() -> Seeds {
    let signer = crate::checkpoint::signer();
    let checkpoint = Checkpoint {
        origin: "fuzz.example/log".into(),
        size: 42,
        root: leaf_hash(b"root"),
    };
    let note = signer.sign(&checkpoint).expect("signs");
    // A second signature line from another key, which opening must skip.
    let other = logvault_core::checkpoint::NoteSigner::new(
        "other.example",
        ed25519_dalek::SigningKey::from_bytes(&[9; 32]),
    )
    .expect("key name");
    let other_line = other
        .sign(&checkpoint)
        .expect("signs")
        .rsplit_once("\n\n")
        .map(|(_, line)| line.to_string())
        .unwrap_or_default();
    let mut flipped = vec![4, 7, 0, 1];
    flipped.extend_from_slice(&42u64.to_le_bytes());
    flipped.extend_from_slice(b"fuzz.example/log");
    named(vec![
        ("body", with_mode(0, checkpoint.body())),
        (
            "empty_tree",
            with_mode(0, "log\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n"),
        ),
        ("note", with_mode(1, &note)),
        (
            "note_two_signatures",
            with_mode(1, format!("{note}{other_line}")),
        ),
        ("verifier_key", with_mode(2, signer.verifier_key().encode())),
        ("signer_key", with_mode(3, signer.to_skey())),
        ("flipped", flipped),
    ])
}

fn proof() -> Seeds {
    let leaves: Vec<Hash> = (0u64..7).map(|i| leaf_hash(&i.to_be_bytes())).collect();
    let source = |index: u64| Ok::<Hash, Infallible>(leaves[index as usize]);
    let path = inclusion_proof(&source, 3, 7).expect("in range");
    let mut inclusion = vec![2];
    inclusion.extend_from_slice(&3u64.to_le_bytes());
    inclusion.extend_from_slice(&7u64.to_le_bytes());
    inclusion.extend_from_slice(&leaves[3]);
    inclusion.extend_from_slice(&root_of(&leaves));
    for hash in &path {
        inclusion.extend_from_slice(hash);
    }
    let mut consistency = vec![3];
    consistency.extend_from_slice(&4u64.to_le_bytes());
    consistency.extend_from_slice(&7u64.to_le_bytes());
    consistency.extend_from_slice(&root_of(&leaves[..4]));
    consistency.extend_from_slice(&root_of(&leaves));
    consistency.extend_from_slice(&path[0]);
    let mut frontier = Frontier::new();
    for leaf in &leaves[..5] {
        frontier.push(*leaf);
    }
    named(vec![
        ("real_inclusion", vec![0, 6, 3, 17, 0, 1]),
        ("real_inclusion_flip", vec![0, 63, 20, 40, 1, 0]),
        ("real_consistency", vec![1, 6, 3, 17, 0, 0]),
        ("real_consistency_flip", vec![1, 68, 33, 90, 0, 128]),
        ("arbitrary_inclusion", inclusion),
        ("arbitrary_consistency", consistency),
        ("frontier", with_mode(4, frontier.to_bytes())),
    ])
}

fn session() -> Seeds {
    let token = "0123456789abcdef".repeat(4);
    named(vec![
        (
            "session_cookie",
            with_mode(0, format!("theme=dark; logvault_session={token}")),
        ),
        (
            "two_cookie_headers",
            with_mode(0, format!("a=1\nlogvault_session= {token} ;b=2")),
        ),
        (
            "login_form",
            with_mode(
                1,
                format!(
                    "logvault_login_csrf={token}\ncsrf={token}&username=+alice%40example.com+&password=p%26w"
                ),
            ),
        ),
        (
            "login_form_wrong_token",
            with_mode(
                1,
                format!("logvault_login_csrf={token}\ncsrf=00&username=bob"),
            ),
        ),
    ])
}

/// OTLP/JSON as the specification's examples write it, with an exception, a sign-in, every
/// kind of value and a field from a later protocol version; and the same in protobuf.
const OTLP_JSON: &str = r#"{"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"checkout"}},{"key":"service.version","value":{"stringValue":"2.3.1"}},{"key":"deployment.environment.name","value":{"stringValue":"production"}}]},"scopeLogs":[{"scope":{"name":"payments","version":"1.0"},"logRecords":[{"timeUnixNano":"1764000000123456789","observedTimeUnixNano":1764000000123456789,"severityNumber":17,"severityText":"ERROR","traceId":"5B8EFFF798038103D269B633813FC60C","spanId":"EEE19B7EC3C1B174","body":{"stringValue":"charge failed for card 4111 1111 1111 1111"},"attributes":[{"key":"exception.type","value":{"stringValue":"GatewayTimeout"}},{"key":"exception.message","value":{"stringValue":"timed out after 30s"}},{"key":"http.route","value":{"stringValue":"/v1/payments"}},{"key":"http.response.status_code","value":{"intValue":"504"}},{"key":"ratio","value":{"doubleValue":"NaN"}},{"key":"ok","value":{"boolValue":false}},{"key":"raw","value":{"bytesValue":"AAEC"}},{"key":"list","value":{"arrayValue":{"values":[{"intValue":1},{"kvlistValue":{"values":[{"key":"k","value":{"stringValue":"v"}}]}}]}}}],"futureField":1},{"timeUnixNano":"1764000000000000000","eventName":"user.login","attributes":[{"key":"event.outcome","value":{"stringValue":"failure"}},{"key":"user.id","value":{"stringValue":"usr_42"}},{"key":"client.address","value":{"stringValue":"203.0.113.7"}}]}]}]}]}"#;

fn otlp() -> Seeds {
    use prost::Message;
    let request = logvault_core::otlp::decode_request(
        OTLP_JSON.as_bytes(),
        logvault_core::otlp::Encoding::Json,
    )
    .expect("the seed is valid OTLP/JSON");
    named(vec![
        ("protobuf", with_mode(0, request.encode_to_vec())),
        ("json", with_mode(1, OTLP_JSON)),
        ("json_empty", with_mode(1, "{}")),
    ])
}
