//! The scrubber: a generated card number or address in any surrounding text never comes out
//! again, text comes back unchanged exactly when nothing was redacted, no card number the
//! scrubber would detect survives it, and no text or JSON makes it panic.

use std::borrow::Cow;

use logvault_core::EventKind;
use logvault_core::scrub::{Redactions, ScrubConfig, Scrubber};
use logvault_core::validate::{Limits, validate_event};
use proptest::prelude::*;
use serde_json::{Value, json};

fn scrubber() -> Scrubber {
    Scrubber::new(&ScrubConfig::default()).expect("built-in rules")
}

/// A Visa number (16 digits, Luhn-valid, not one digit repeated) from 15 random digits.
fn visa() -> impl Strategy<Value = String> {
    prop::collection::vec(0..10u32, 14).prop_map(|digits| {
        let mut number: Vec<u32> = std::iter::once(4).chain(digits).collect();
        // The check digit makes the Luhn sum a multiple of 10.
        let sum: u32 = number
            .iter()
            .rev()
            .enumerate()
            .map(|(i, &d)| {
                if i % 2 == 0 {
                    (2 * d) % 10 + 2 * d / 10
                } else {
                    d
                }
            })
            .sum();
        number.push((10 - sum % 10) % 10);
        number.iter().map(|d| char::from(b'0' + *d as u8)).collect()
    })
}

/// Card numbers as people write them: plain, in fours with spaces, or in fours with dashes.
fn written_card() -> impl Strategy<Value = (String, String)> {
    (visa(), 0..3usize).prop_map(|(digits, style)| {
        let groups: Vec<&str> = (0..4).map(|i| &digits[4 * i..4 * i + 4]).collect();
        let written = match style {
            0 => digits.clone(),
            1 => groups.join(" "),
            _ => groups.join("-"),
        };
        (digits, written)
    })
}

/// Prose around a secret: words of letters, separated by spaces.
fn prose() -> impl Strategy<Value = String> {
    "([a-zA-Z]{1,8} ){0,6}"
}

/// Prose with numbers in it: order numbers, amounts, codes.
fn prose_with_numbers() -> impl Strategy<Value = String> {
    "([a-zA-Z]{1,8} |[0-9]{1,6} |[0-9]{3}-[0-9]{2}-[0-9]{4} ){0,6}"
}

/// Any text, weighted towards the characters the detectors look at.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\PC{0,80}",
        "[0-9 .:@/=_-]{0,60}",
        "[a-z0-9 .@:=\u{e9}\u{fffd}]{0,60}",
    ]
}

/// Inputs the fuzzer found, each once a panic: `(what, text)`.
const FOUND_BY_FUZZING: [(&str, &str); 4] = [
    // A multi-byte character before a dotted quad cut a word in half (checks.rs)...
    ("text", "order ORD-123456 ve\u{fffd}sion 1.2.3.4"),
    ("text", "\u{e9}1.2.3.4"),
    // ... as in any message whose last word before an address ends in one.
    ("text", "\u{e9}chec de connexion \u{e0} 203.0.113.7"),
    // The same through a metadata key named like a version word.
    (
        "json",
        "{\"\u{fffd}ard\":\"1.2.3\",\"car\u{fffd}\":\"4.5\"}",
    ),
];

/// Card numbers the fuzzer found surviving the scrubber, `(text, the card's digits)`: after a
/// stray number or an SSN in the same run of digit groups, and next to another card.
const CARDS_FOUND_BY_FUZZING: [(&str, &str); 6] = [
    ("order 123456 4242 4242 4242 4242", "4242424242424242"),
    ("ssn 123-45-6789 4242 4242 4242 4242", "4242424242424242"),
    ("[ssn] 123-45-6242 22 4242 424242424242", "4242424242424242"),
    ("ref 12345 67890 4242 4242 4242 4242", "4242424242424242"),
    ("1234 5678 4242 4242 4242 4242", "4242424242424242"),
    (
        "4242 4242 4242 4242 4111 1111 1111 1111",
        "4111111111111111",
    ),
];

#[test]
fn cards_found_by_fuzzing_are_scrubbed() {
    let glued = ScrubConfig {
        extra_rules: vec![("order_ref".into(), "ORD-[0-9]{6}".into())],
        ..ScrubConfig::default()
    };
    let glued = Scrubber::new(&glued).expect("a valid config");
    // A card glued to a token a custom rule removes is found once that token is gone.
    let cases = CARDS_FOUND_BY_FUZZING
        .iter()
        .map(|&(text, digits)| (scrubber(), text, digits))
        .chain([(glued, "ORD-1234564111-1111-1111-1111", "4111111111111111")]);
    for (scrubber, text, digits) in cases {
        let mut redactions = Redactions::default();
        let scrubbed = scrubber.scrub_text(text, &mut redactions);
        let kept_digits: String = scrubbed.chars().filter(char::is_ascii_digit).collect();
        assert!(!kept_digits.contains(digits), "{text:?} -> {scrubbed:?}");
        assert!(redactions.count("card") >= 1, "{text:?} -> {scrubbed:?}");
        assert!(scrubber.card_numbers(&scrubbed).is_empty(), "{scrubbed:?}");
    }
}

#[test]
fn inputs_found_by_fuzzing_are_scrubbed() {
    let scrubber = scrubber();
    for (what, input) in FOUND_BY_FUZZING {
        let mut redactions = Redactions::default();
        match what {
            "text" => drop(scrubber.scrub_text(input, &mut redactions)),
            _ => {
                let mut value: Value = serde_json::from_str(input).expect("JSON");
                scrubber.scrub_json(&mut value, &mut redactions);
            }
        }
        // And through ingest validation, where a panic would have been a 500.
        let event = json!({"source": "sdk", "error_type": "E", "message": input,
                           "metadata": {"\u{fffd}version": "1.2.3", "note": input}});
        assert!(
            validate_event(EventKind::Threat, 0, &event, "mer_1", &Limits::default()).is_ok(),
            "{input:?}"
        );
    }
}

proptest! {
    #![proptest_config(crate::config(256))]

    #[test]
    fn a_card_number_in_prose_never_comes_out(
        before in prop_oneof![prose(), prose_with_numbers()],
        (digits, written) in written_card(),
        after in prose(),
    ) {
        let text = format!("{before}{written} {after}");
        let mut redactions = Redactions::default();
        let scrubbed = scrubber().scrub_text(&text, &mut redactions);
        prop_assert!(!scrubbed.contains(&written), "{:?}", scrubbed);
        let kept_digits: String = scrubbed.chars().filter(char::is_ascii_digit).collect();
        prop_assert!(!kept_digits.contains(&digits), "{:?}", scrubbed);
        prop_assert!(redactions.count("card") >= 1);
    }

    #[test]
    fn an_email_address_in_prose_never_comes_out(
        before in prose(),
        address in "[a-z][a-z0-9_]{0,10}@[a-z]{2,10}\\.(com|org|io|de)",
        after in prose(),
    ) {
        let text = format!("{before}{address} {after}");
        let mut redactions = Redactions::default();
        let scrubbed = scrubber().scrub_text(&text, &mut redactions);
        prop_assert!(!scrubbed.contains(&address), "{:?}", scrubbed);
        prop_assert_eq!(redactions.count("email"), 1);
    }

    #[test]
    fn a_card_number_in_metadata_never_comes_out(
        key in prop_oneof!["[a-z]{1,10}", Just("version".to_string()), Just("sdk_version".to_string()), Just("ios".to_string())],
        (digits, written) in written_card(),
    ) {
        let mut value = json!({ key.clone(): written.clone(), "nested": [{ key: digits.clone() }] });
        let mut redactions = Redactions::default();
        scrubber().scrub_json(&mut value, &mut redactions);
        let out = value.to_string();
        prop_assert!(!out.contains(&written) && !out.contains(&digits), "{}", out);
    }

    #[test]
    fn text_changes_exactly_when_something_is_redacted(text in text()) {
        let scrubber = scrubber();
        let mut redactions = Redactions::default();
        let scrubbed = scrubber.scrub_text(&text, &mut redactions);
        match &scrubbed {
            Cow::Borrowed(same) => {
                prop_assert_eq!(*same, text.as_str());
                prop_assert!(redactions.is_empty());
            }
            Cow::Owned(_) => prop_assert!(!redactions.is_empty()),
        }
        prop_assert!(scrubber.card_numbers(&scrubbed).is_empty(), "{:?}", scrubbed);
    }
}
