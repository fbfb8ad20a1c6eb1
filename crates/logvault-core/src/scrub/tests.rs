//! Scrubber tests: the labelled corpus (`corpus.tsv`) with per-detector precision and recall,
//! configuration errors, pseudonyms, nested JSON, events, idempotency and robustness.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use super::*;

const CORPUS: &str = include_str!("corpus.tsv");

/// One labelled line of the corpus.
struct Case {
    line: usize,
    kinds: BTreeSet<String>,
    input: String,
    output: Option<String>,
    secrets: Vec<String>,
}

fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

fn corpus() -> Vec<Case> {
    let mut cases = Vec::new();
    for (i, line) in CORPUS.lines().enumerate() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let columns: Vec<&str> = line.split('\t').collect();
        assert_eq!(columns.len(), 4, "corpus line {} needs 4 columns", i + 1);
        let must_keep = columns[0] == "-";
        let kinds = if must_keep {
            BTreeSet::new()
        } else {
            columns[0].split(',').map(str::to_string).collect()
        };
        let input = unescape(columns[1]);
        let output = match columns[2] {
            _ if must_keep => Some(input.clone()),
            "*" => None,
            expected => Some(unescape(expected)),
        };
        let secrets = columns[3]
            .split('|')
            .filter(|s| !s.is_empty())
            .map(unescape)
            .collect();
        cases.push(Case {
            line: i + 1,
            kinds,
            input,
            output,
            secrets,
        });
    }
    cases
}

/// Scrubs a corpus input: text, or `json:` followed by a JSON value (compared re-serialized).
fn run(scrubber: &Scrubber, input: &str) -> (String, Redactions) {
    let mut redactions = Redactions::default();
    let output = match input.strip_prefix("json:") {
        Some(json) => {
            let mut value: Value = serde_json::from_str(json).expect("corpus JSON parses");
            scrubber.scrub_json(&mut value, &mut redactions);
            format!("json:{value}")
        }
        None => scrubber.scrub_text(input, &mut redactions).into_owned(),
    };
    (output, redactions)
}

fn normalize_expected(expected: &str) -> String {
    match expected.strip_prefix("json:") {
        Some(json) => {
            let value: Value = serde_json::from_str(json).expect("expected JSON parses");
            format!("json:{value}")
        }
        None => expected.to_string(),
    }
}

fn default_scrubber() -> Scrubber {
    Scrubber::new(&ScrubConfig::default()).expect("default config is valid")
}

#[test]
fn corpus_cases() {
    let scrubber = default_scrubber();
    let cases = corpus();
    let n_keep = cases.iter().filter(|c| c.kinds.is_empty()).count();
    assert!(cases.len() >= 300, "corpus has only {} cases", cases.len());
    assert!(
        n_keep >= 100 && cases.len() - n_keep >= 150,
        "corpus is unbalanced"
    );
    let mut failures = Vec::new();
    for case in &cases {
        let (output, redactions) = run(&scrubber, &case.input);
        let found: BTreeSet<String> = redactions.iter().map(|(k, _)| k.to_string()).collect();
        let mut problems = Vec::new();
        if found != case.kinds {
            problems.push(format!("kinds {found:?}, want {:?}", case.kinds));
        }
        if let Some(expected) = &case.output
            && normalize_expected(expected) != output
        {
            problems.push(format!("output {output:?}"));
        }
        for secret in case.secrets.iter().filter(|s| output.contains(s.as_str())) {
            problems.push(format!("secret {secret:?} survived in {output:?}"));
        }
        let (again, _) = run(&scrubber, &output);
        if again != output {
            problems.push(format!("not idempotent: {again:?}"));
        }
        if !problems.is_empty() {
            failures.push(format!(
                "line {} {:?}: {}",
                case.line,
                case.input,
                problems.join("; ")
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} corpus cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// Precision and recall per redaction kind over the corpus, counted per case and kind.
#[test]
fn corpus_precision_recall() {
    let scrubber = default_scrubber();
    let cases = corpus();
    // kind -> (true positives, false positives, false negatives)
    let mut table: BTreeMap<String, (u32, u32, u32)> = BTreeMap::new();
    for case in &cases {
        let (_, redactions) = run(&scrubber, &case.input);
        let found: BTreeSet<String> = redactions.iter().map(|(k, _)| k.to_string()).collect();
        for kind in found.union(&case.kinds) {
            let entry = table.entry(kind.clone()).or_default();
            match (found.contains(kind), case.kinds.contains(kind)) {
                (true, true) => entry.0 += 1,
                (true, false) => entry.1 += 1,
                _ => entry.2 += 1,
            }
        }
    }
    let ratio = |a: u32, b: u32| {
        if a + b == 0 {
            1.0
        } else {
            f64::from(a) / f64::from(a + b)
        }
    };
    println!("{} corpus cases", cases.len());
    println!(
        "{:<14} {:>4} {:>4} {:>4} {:>9} {:>7}",
        "kind", "tp", "fp", "fn", "precision", "recall"
    );
    let (mut tp, mut fp, mut fn_) = (0, 0, 0);
    for (kind, (t, p, n)) in &table {
        println!(
            "{kind:<14} {t:>4} {p:>4} {n:>4} {:>9.3} {:>7.3}",
            ratio(*t, *p),
            ratio(*t, *n)
        );
        (tp, fp, fn_) = (tp + t, fp + p, fn_ + n);
    }
    println!(
        "{:<14} {tp:>4} {fp:>4} {fn_:>4} {:>9.3} {:>7.3}",
        "all",
        ratio(tp, fp),
        ratio(tp, fn_)
    );
    assert!(ratio(tp, fp) >= 0.95 && ratio(tp, fn_) >= 0.95);
}

#[test]
fn config_errors() {
    let cases: Vec<(ScrubConfig, ScrubConfigError)> = vec![
        (
            ScrubConfig {
                extra_rules: vec![("order_ref".into(), "(unclosed".into())],
                ..ScrubConfig::default()
            },
            ScrubConfigError::BadRegex {
                name: "order_ref".into(),
                message: String::new(),
            },
        ),
        (
            ScrubConfig {
                extra_rules: vec![(String::new(), "abc".into())],
                ..ScrubConfig::default()
            },
            ScrubConfigError::BadRuleName {
                name: String::new(),
            },
        ),
        (
            ScrubConfig {
                extra_rules: vec![("Bad Name".into(), "abc".into())],
                ..ScrubConfig::default()
            },
            ScrubConfigError::BadRuleName {
                name: "Bad Name".into(),
            },
        ),
        (
            ScrubConfig {
                extra_rules: vec![("anything".into(), "x*".into())],
                ..ScrubConfig::default()
            },
            ScrubConfigError::EmptyMatch {
                name: "anything".into(),
            },
        ),
        (
            ScrubConfig {
                extra_sensitive_keys: vec!["tax_id".into(), "  ".into()],
                ..ScrubConfig::default()
            },
            ScrubConfigError::EmptyKeyName {
                list: "extra_sensitive_keys",
                index: 1,
            },
        ),
        (
            ScrubConfig {
                allowed_keys: vec![String::new()],
                ..ScrubConfig::default()
            },
            ScrubConfigError::EmptyKeyName {
                list: "allowed_keys",
                index: 0,
            },
        ),
        (
            ScrubConfig {
                pseudonym_key: Some(b"short".to_vec()),
                ..ScrubConfig::default()
            },
            ScrubConfigError::WeakPseudonymKey,
        ),
    ];
    for (config, want) in cases {
        match (Scrubber::new(&config), want) {
            (
                Err(ScrubConfigError::BadRegex { name, message }),
                ScrubConfigError::BadRegex {
                    name: want_name, ..
                },
            ) => {
                assert_eq!(name, want_name);
                assert!(!message.is_empty());
            }
            (Err(got), want) => assert_eq!(got, want),
            (Ok(_), want) => panic!("accepted a config that should fail with {want}"),
        }
    }
    let message = ScrubConfigError::EmptyMatch { name: "x".into() }.to_string();
    assert!(message.contains("matches the empty string"), "{message}");
}

#[test]
fn extra_rules_keys_and_allow_list() {
    let scrubber = Scrubber::new(&ScrubConfig {
        extra_sensitive_keys: vec!["tax_id".into()],
        extra_rules: vec![
            ("loyalty".into(), r"\bLOY-[0-9]{6}\b".into()),
            ("member".into(), r"member #([0-9]{5})".into()),
        ],
        allowed_keys: vec!["sessionId".into()],
        pseudonym_key: None,
    })
    .expect("valid config");
    let mut redactions = Redactions::default();
    let text = scrubber.scrub_text("card LOY-123456 for member #98765", &mut redactions);
    assert_eq!(text, "card [loyalty] for member #[member]");
    let mut value =
        json!({"customerTaxId": "DE123", "session_id": "s_1", "sessionId": "mail bob@example.com"});
    scrubber.scrub_json(&mut value, &mut redactions);
    assert_eq!(
        value,
        json!({"customerTaxId": "[secret]", "session_id": "s_1", "sessionId": "mail [email]"})
    );
    assert_eq!(
        redactions.to_json(),
        json!({"email": 1, "loyalty": 1, "member": 1, "secret": 1})
    );
}

#[test]
fn pseudonyms_are_stable_and_keyed() {
    let with_key = |key: &[u8]| {
        Scrubber::new(&ScrubConfig {
            pseudonym_key: Some(key.to_vec()),
            ..ScrubConfig::default()
        })
        .expect("valid config")
    };
    let (a, b) = (with_key(&[7; 32]), with_key(&[8; 32]));
    let mut redactions = Redactions::default();
    let text =
        "from alice@example.com to Alice@Example.com, cc bob@example.com, card 4242424242424242";
    let first = a.scrub_text(text, &mut redactions).into_owned();
    let again = a.scrub_text(text, &mut redactions).into_owned();
    let other_key = b.scrub_text(text, &mut redactions).into_owned();
    assert_eq!(first, again);
    assert_ne!(first, other_key);
    let tags: Vec<&str> = first
        .split('[')
        .skip(1)
        .map(|part| part.split(']').next().unwrap_or(""))
        .collect();
    assert_eq!(tags.len(), 4, "{first}");
    assert_eq!(tags[0], tags[1], "equal e-mails correlate: {first}");
    assert_ne!(tags[0], tags[2], "different e-mails differ: {first}");
    assert!(tags[0].starts_with("email:") && tags[0].len() == "email:".len() + 6);
    assert!(
        tags[3].starts_with("card:") && tags[3].ends_with("…4242"),
        "{first}"
    );
    assert!(!first.contains("alice") && !first.contains("424242424242"));
}

#[test]
fn nested_json_keys_and_values() {
    let scrubber = default_scrubber();
    let mut value = json!({
        "request": {
            "headers": {"Authorization": "Bearer abc.def", "X-Request-Id": "req_1"},
            "body": {"customer": {"contact": {"emails": ["a@example.com", "b@example.com"]}}},
            "cards": [{"number": "4111 1111 1111 1111", "cardNumber": "4242424242424242"}],
        },
        "ops@example.com": {"password": {"nested": "x"}},
        "flags": {"is_pin_set": true, "pinned": false, "token": null},
    });
    let mut redactions = Redactions::default();
    scrubber.scrub_json(&mut value, &mut redactions);
    assert_eq!(
        value,
        json!({
            "request": {
                "headers": {"Authorization": "[token]", "X-Request-Id": "req_1"},
                "body": {"customer": {"contact": {"emails": ["[email]", "[email]"]}}},
                "cards": [{"number": "[card:…1111]", "cardNumber": "[card:…4242]"}],
            },
            "[email]": {"password": "[password]"},
            "flags": {"is_pin_set": true, "pinned": false, "token": null},
        })
    );
    assert_eq!(
        redactions.to_json(),
        json!({"card": 2, "email": 3, "password": 1, "token": 1})
    );
    let mut colliding = json!({"a@example.com": 1, "b@example.com": 2});
    scrubber.scrub_json(&mut colliding, &mut redactions);
    assert_eq!(colliding, json!({"[email]": 1, "[email]_2": 2}));
}

#[test]
fn events_scrub_only_their_free_text_fields() {
    let scrubber = default_scrubber();
    let card = "4111111111111111";
    let mut threat = json!({
        "id": "evt_alice@example.com", "account_id": "mer_1", "source": "sdk",
        "error_type": "CardError", "error_code": "E_CARD_4111111111111111",
        "message": format!("charge {card} for bob@example.com failed"),
        "version": "ios-sdk 1.2.3.4", "environment": "production",
        "sdk": {"name": "ios", "platform": "iOS 17.2"},
        "api": {"method": "POST", "path": "/v1/pay?token=tk_123&amount=10", "status": 402},
        "stacktrace": "at /Users/alice/app/Pay.swift:10",
        "metadata": {"password": "hunter2", "note": "ip 203.0.113.7"},
    });
    let object = threat.as_object_mut().expect("object");
    let redactions = scrubber.scrub_event(EventKind::Threat, object);
    assert_eq!(
        threat,
        json!({
            "id": "evt_alice@example.com", "account_id": "mer_1", "source": "sdk",
            "error_type": "CardError", "error_code": "E_CARD_4111111111111111",
            "message": "charge [card:…1111] for [email] failed",
            "version": "ios-sdk 1.2.3.4", "environment": "production",
            "sdk": {"name": "ios", "platform": "iOS 17.2"},
            "api": {"method": "POST", "path": "/v1/pay?token=[token]&amount=10", "status": 402},
            "stacktrace": "at /Users/[user]/app/Pay.swift:10",
            "metadata": {"password": "[password]", "note": "ip [ip]"},
        })
    );
    assert_eq!(
        serde_json::to_value(&redactions).expect("serializes"),
        json!({"card": 1, "email": 1, "ip": 1, "password": 1, "token": 1, "user": 1})
    );

    let mut audit = json!({
        "action": "user.login", "outcome": "failure", "reason": "bad_password",
        "actor": {"id": "usr_42"}, "origin": {"ip": "203.0.113.7"},
        "metadata": {"email": "carol@example.com", "mfa": true},
    });
    let object = audit.as_object_mut().expect("object");
    let redactions = scrubber.scrub_event(EventKind::Audit, object);
    assert_eq!(audit["origin"]["ip"], "203.0.113.7");
    assert_eq!(audit["metadata"], json!({"email": "[email]", "mfa": true}));
    assert_eq!(redactions.total(), 1);
}

#[test]
fn error_code_is_scrubbed_as_text() {
    let scrubber = default_scrubber();
    let mut event = json!({"error_code": "declined 4111 1111 1111 1111", "message": "m"});
    let object = event.as_object_mut().expect("object");
    let redactions = scrubber.scrub_event(EventKind::Threat, object);
    assert_eq!(event["error_code"], "declined [card:…1111]");
    assert_eq!(redactions.count("card"), 1);
}

/// Every must-scrub corpus input, placed in every scrubbed field of a threat event and deep in
/// its metadata (as a value and as a key): none of its secrets may survive anywhere.
#[test]
fn no_secret_survives_anywhere() {
    let scrubber = default_scrubber();
    let mut failures = Vec::new();
    for case in corpus() {
        if case.kinds.is_empty() || case.input.starts_with("json:") {
            continue;
        }
        let text = case.input.as_str();
        let mut event = json!({
            "source": "api", "error_type": "E", "message": text, "stacktrace": text,
            "error_code": text, "api": {"path": format!("/v1/x?q={text}")},
            "metadata": {"a": [{"b": {"c": text}}], text: {"d": text}},
        });
        let object = event.as_object_mut().expect("object");
        let redactions = scrubber.scrub_event(EventKind::Threat, object);
        let output = event.to_string();
        for secret in &case.secrets {
            let escaped = Value::String(secret.clone()).to_string();
            if output.contains(escaped.trim_matches('"')) {
                failures.push(format!(
                    "line {}: {secret:?} survived in {output}",
                    case.line
                ));
            }
        }
        if redactions.is_empty() {
            failures.push(format!("line {}: nothing redacted", case.line));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A tiny deterministic generator: the scrubber must never panic and must be idempotent on
/// arbitrary UTF-8 built from the characters detectors care about.
#[test]
fn arbitrary_text_never_panics_and_is_idempotent() {
    let scrubber = default_scrubber();
    let alphabet: Vec<char> =
        "0123456789 -+.:@/\\=&?%_abcdefABCDEFxyzUsersHOMEhome[]\"'\n\té€😀lv_sk_eyJ"
            .chars()
            .collect();
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..3000 {
        let len = (next() % 80) as usize;
        let text: String = (0..len)
            .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
            .collect();
        let mut redactions = Redactions::default();
        let once = scrubber.scrub_text(&text, &mut redactions).into_owned();
        let twice = scrubber.scrub_text(&once, &mut redactions).into_owned();
        assert_eq!(once, twice, "not idempotent on {text:?}");
    }
}

#[test]
fn clean_text_is_borrowed_and_scrubber_is_shareable() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Scrubber>();
    let scrubber = default_scrubber();
    let mut redactions = Redactions::default();
    let text = "request timed out after 30s (req_8f3b2c1d, ios-sdk 4.2.1)";
    assert!(matches!(
        scrubber.scrub_text(text, &mut redactions),
        Cow::Borrowed(_)
    ));
    assert!(redactions.is_empty());
}
