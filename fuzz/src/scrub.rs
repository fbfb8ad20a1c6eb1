//! The scrubber on free text, on arbitrary JSON and on whole events, with the built-in rules
//! and with a pseudonym key and a custom rule.

use std::borrow::Cow;
use std::sync::OnceLock;

use logvault_core::EventKind;
use logvault_core::scrub::{Redactions, ScrubConfig, Scrubber};
use serde_json::Value;

fn scrubbers() -> &'static [Scrubber; 2] {
    static SCRUBBERS: OnceLock<[Scrubber; 2]> = OnceLock::new();
    SCRUBBERS.get_or_init(|| {
        let configured = ScrubConfig {
            extra_sensitive_keys: vec!["tax_id".into()],
            extra_rules: vec![("order_ref".into(), r"ORD-[0-9]{6}".into())],
            allowed_keys: vec!["token_type".into()],
            pseudonym_key: Some(b"fuzzing pseudonym key".to_vec()),
        };
        [
            Scrubber::new(&ScrubConfig::default()).expect("built-in rules"),
            Scrubber::new(&configured).expect("a valid config"),
        ]
    })
}

/// Mode bit 0: which scrubber; bits 1-2: text, JSON value, audit event, threat event.
pub fn run(data: &[u8]) {
    let Some((mode, rest)) = crate::split_mode(data) else {
        return;
    };
    let scrubber = &scrubbers()[usize::from(mode & 1)];
    let text = String::from_utf8_lossy(rest);
    match (mode >> 1) & 3 {
        0 => text_properties(scrubber, &text),
        1 => {
            if let Ok(mut value) = serde_json::from_str::<Value>(&text) {
                let mut redactions = Redactions::default();
                scrubber.scrub_json(&mut value, &mut redactions);
            }
        }
        kind => {
            if let Ok(Value::Object(mut object)) = serde_json::from_str::<Value>(&text) {
                let kind = if kind == 2 {
                    EventKind::Audit
                } else {
                    EventKind::Threat
                };
                scrubber.scrub_event(kind, &mut object);
            }
        }
    }
}

/// Text comes back unchanged exactly when nothing was redacted, and what the scrubber leaves
/// holds no card number its card detector finds.
fn text_properties(scrubber: &Scrubber, text: &str) {
    let mut redactions = Redactions::default();
    let scrubbed = scrubber.scrub_text(text, &mut redactions);
    match &scrubbed {
        Cow::Borrowed(same) => {
            assert_eq!(*same, text);
            assert!(redactions.is_empty(), "a redaction changed nothing");
        }
        Cow::Owned(_) => assert!(!redactions.is_empty(), "text changed without a redaction"),
    }
    let cards = scrubber.card_numbers(&scrubbed);
    assert!(
        cards.is_empty(),
        "a card number survived: {scrubbed:?} at {cards:?}"
    );
}
