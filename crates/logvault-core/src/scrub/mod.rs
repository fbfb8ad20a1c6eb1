//! Sensitive-data scrubbing: finds card numbers, credentials and personal data in free text and
//! structured event fields and replaces them with typed placeholders (`[card:…4242]`,
//! `[email]`, `[jwt]`), recording only the kinds and counts of what was removed.
//!
//! A [`Scrubber`] is built once from a [`ScrubConfig`] and shared (it is `Send + Sync`).
//! Clean text costs one pass of a byte-level prefilter (`prefilter::Signals`); only the
//! detectors whose required shapes are present run their regex and validation.

mod checks;
mod detectors;
mod keys;
mod patterns;
mod prefilter;
#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::collections::BTreeMap;

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::Sha256;

use crate::EventKind;
use detectors::{Detector, Hit, Rule};
use keys::KeyRules;
use patterns::{BUILTIN_AFTER_CUSTOM, BUILTIN_BEFORE_CUSTOM};

/// Shortest accepted pseudonym key: shorter keys make pseudonyms guessable.
pub const MIN_PSEUDONYM_KEY_BYTES: usize = 16;

/// What to scrub beyond the built-in detectors. The default adds nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScrubConfig {
    /// Extra field names whose values are secrets, matched on whole name segments like the
    /// built-in ones (`tax_id` also matches `customerTaxId`).
    pub extra_sensitive_keys: Vec<String>,
    /// Extra `(kind, regex)` rules for free text. The match (or its first capture group,
    /// when the pattern has one) is replaced by `[kind]`.
    pub extra_rules: Vec<(String, String)>,
    /// Field names never treated as sensitive names. Their values still pass the text
    /// detectors, so a card number under an allow-listed key is still caught.
    pub allowed_keys: Vec<String>,
    /// Key for HMAC-SHA256 pseudonyms (`[email:1f3a9c]`); kept outside the database.
    pub pseudonym_key: Option<Vec<u8>>,
}

/// Why a [`ScrubConfig`] was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScrubConfigError {
    /// A sensitive or allowed key name is empty.
    #[error("scrub config: {list} entry {index} is empty")]
    EmptyKeyName {
        /// `extra_sensitive_keys` or `allowed_keys`.
        list: &'static str,
        /// Position in the list, from 0.
        index: usize,
    },
    /// A rule name is empty or not `a-z 0-9 _` (it becomes a placeholder and a kind).
    #[error("scrub config: rule name {name:?} must be 1-32 characters of a-z 0-9 _")]
    BadRuleName {
        /// The refused name.
        name: String,
    },
    /// A rule's regex does not compile.
    #[error("scrub config: rule {name:?} has an invalid regex: {message}")]
    BadRegex {
        /// The rule.
        name: String,
        /// The regex compiler's message.
        message: String,
    },
    /// A rule's regex matches the empty string, so it would match everywhere.
    #[error("scrub config: rule {name:?} matches the empty string")]
    EmptyMatch {
        /// The rule.
        name: String,
    },
    /// The pseudonym key is too short.
    #[error("scrub config: pseudonym key must be at least {MIN_PSEUDONYM_KEY_BYTES} bytes")]
    WeakPseudonymKey,
}

/// What was scrubbed: counts per kind, never values. Serializes as `{"card": 2, "email": 1}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Redactions(BTreeMap<String, u64>);

impl Redactions {
    /// Counts one redaction of `kind`.
    pub fn add(&mut self, kind: &str) {
        *self.0.entry(kind.to_string()).or_default() += 1;
    }

    /// Adds every count of `other`.
    pub fn merge(&mut self, other: &Redactions) {
        for (kind, n) in &other.0 {
            *self.0.entry(kind.clone()).or_default() += n;
        }
    }

    /// Nothing was scrubbed.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many `kind` redactions were made.
    pub fn count(&self, kind: &str) -> u64 {
        self.0.get(kind).copied().unwrap_or(0)
    }

    /// All redactions together.
    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }

    /// Kinds and counts, in kind order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, u64)> {
        self.0.iter().map(|(kind, n)| (kind.as_str(), *n))
    }

    /// As a JSON object, e.g. `{"card": 2}`.
    pub fn to_json(&self) -> Value {
        Value::Object(
            self.0
                .iter()
                .map(|(kind, n)| (kind.clone(), Value::from(*n)))
                .collect(),
        )
    }
}

/// A whole value that is one placeholder, e.g. `[card:…4242]`, left by an earlier pass.
fn is_placeholder(text: &str) -> bool {
    text.strip_prefix('[')
        .and_then(|inner| inner.strip_suffix(']'))
        .is_some_and(|inner| {
            let kind = inner.split(':').next().unwrap_or("");
            !kind.is_empty()
                && !inner.contains(['[', ']'])
                && kind
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        })
}

/// A field named like a version (`version`, `sdk_version`) holding digits and dots. At least
/// one dot: `"version": "4111111111111111"` is a card number, whatever its key says.
fn is_dotted_version(key: &str, value: &Value) -> bool {
    value.as_str().is_some_and(|text| {
        text.contains('.') && text.bytes().all(|b| b.is_ascii_digit() || b == b'.')
    }) && checks::has_version_context(key)
}

/// A compiled scrubber: cheap to share, safe across threads.
#[derive(Debug, Clone)]
pub struct Scrubber {
    detectors: Vec<Detector>,
    keys: KeyRules,
    pseudonym_key: Option<Vec<u8>>,
}

impl Scrubber {
    /// Compiles the built-in detectors and the configured extras, refusing a bad config.
    pub fn new(config: &ScrubConfig) -> Result<Scrubber, ScrubConfigError> {
        for (list, names) in [
            ("extra_sensitive_keys", &config.extra_sensitive_keys),
            ("allowed_keys", &config.allowed_keys),
        ] {
            if let Some(index) = names.iter().position(|n| keys::segments(n).is_empty()) {
                return Err(ScrubConfigError::EmptyKeyName { list, index });
            }
        }
        if config
            .pseudonym_key
            .as_ref()
            .is_some_and(|key| key.len() < MIN_PSEUDONYM_KEY_BYTES)
        {
            return Err(ScrubConfigError::WeakPseudonymKey);
        }
        let mut detectors = Vec::new();
        let builtin = |rule: &Rule, pattern: &str| Detector {
            rule: rule.clone(),
            // The built-in patterns are constants covered by tests; a failure is a bug.
            regex: patterns::compile(pattern).expect("built-in scrub pattern compiles"),
        };
        for (rule, pattern) in BUILTIN_BEFORE_CUSTOM {
            detectors.push(builtin(rule, pattern));
        }
        for (name, pattern) in &config.extra_rules {
            let name_ok = !name.is_empty()
                && name.len() <= 32
                && name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            if !name_ok {
                return Err(ScrubConfigError::BadRuleName { name: name.clone() });
            }
            let regex = patterns::compile(pattern).map_err(|e| ScrubConfigError::BadRegex {
                name: name.clone(),
                message: e.to_string(),
            })?;
            if regex.is_match("") {
                return Err(ScrubConfigError::EmptyMatch { name: name.clone() });
            }
            detectors.push(Detector {
                rule: Rule::Custom(name.clone()),
                regex,
            });
        }
        for (rule, pattern) in BUILTIN_AFTER_CUSTOM {
            detectors.push(builtin(rule, pattern));
        }
        Ok(Scrubber {
            detectors,
            keys: KeyRules::new(&config.extra_sensitive_keys, &config.allowed_keys),
            pseudonym_key: config.pseudonym_key.clone(),
        })
    }

    /// Scrubs free text; borrows when nothing was found.
    pub fn scrub_text<'t>(&self, text: &'t str, redactions: &mut Redactions) -> Cow<'t, str> {
        if text.len() < 5 {
            return Cow::Borrowed(text);
        }
        let signals = prefilter::Signals::scan(text);
        let mut hits: Vec<Hit<'_>> = Vec::new();
        for detector in &self.detectors {
            if signals.may_match(&detector.rule) {
                detector.find(text, &self.keys, &mut hits);
            }
        }
        if hits.is_empty() {
            return Cow::Borrowed(text);
        }
        // Hits arrive in detector priority order: keep each unless it overlaps an earlier one.
        // Accepted ranges never overlap, so the nearest one starting before `end` decides.
        let mut taken: BTreeMap<usize, usize> = BTreeMap::new();
        let mut accepted: Vec<Hit<'_>> = Vec::with_capacity(hits.len());
        for hit in hits {
            let overlaps = taken
                .range(..hit.end)
                .next_back()
                .is_some_and(|(_, &end)| end > hit.start);
            if !overlaps {
                taken.insert(hit.start, hit.end);
                accepted.push(hit);
            }
        }
        accepted.sort_by_key(|hit| hit.start);
        let mut out = String::with_capacity(text.len());
        let mut at = 0;
        for hit in &accepted {
            out.push_str(&text[at..hit.start]);
            let value = &text[hit.start..hit.end];
            out.push_str(&self.placeholder(hit.kind, value, hit.card));
            redactions.add(hit.kind);
            at = hit.end;
        }
        out.push_str(&text[at..]);
        // A redaction can free a card number that was glued to what it removed
        // (`ORD-1234564111-1111-1111-1111` with an `ORD-[0-9]{6}` rule): what is left is
        // searched for cards again until none is found. Each round removes at least 12 digits.
        let cards = self.detectors.iter().find(|d| d.rule == Rule::Card);
        while let Some(cards) = cards {
            let mut found = Vec::new();
            cards.find(&out, &self.keys, &mut found);
            if found.is_empty() {
                break;
            }
            found.sort_by_key(|hit| hit.start);
            let mut rest = String::with_capacity(out.len());
            let mut at = 0;
            for hit in &found {
                rest.push_str(&out[at..hit.start]);
                rest.push_str(&self.placeholder(hit.kind, &out[hit.start..hit.end], hit.card));
                redactions.add(hit.kind);
                at = hit.end;
            }
            rest.push_str(&out[at..]);
            out = rest;
        }
        Cow::Owned(out)
    }

    /// Where the card detector finds card numbers in `text`: what scrubbed text must never
    /// hold, for the property tests and the fuzz targets.
    #[doc(hidden)]
    pub fn card_numbers(&self, text: &str) -> Vec<std::ops::Range<usize>> {
        let mut found = Vec::new();
        for detector in self.detectors.iter().filter(|d| d.rule == Rule::Card) {
            detector.find(text, &self.keys, &mut found);
        }
        found.iter().map(|hit| hit.start..hit.end).collect()
    }

    /// Scrubs a string in place.
    fn scrub_string(&self, text: &mut String, redactions: &mut Redactions) {
        if let Cow::Owned(scrubbed) = self.scrub_text(text, redactions) {
            *text = scrubbed;
        }
    }

    /// Scrubs structured data: values under sensitive key names are replaced whole; every
    /// other string (and number, which may hold a card) at any depth, and every object key,
    /// goes through [`Scrubber::scrub_text`]. Booleans and nulls are kept.
    pub fn scrub_json(&self, value: &mut Value, redactions: &mut Redactions) {
        match value {
            Value::String(text) => self.scrub_string(text, redactions),
            Value::Number(number) => {
                let text = number.to_string();
                if let Cow::Owned(scrubbed) = self.scrub_text(&text, redactions) {
                    *value = Value::String(scrubbed);
                }
            }
            Value::Array(items) => {
                for item in items {
                    self.scrub_json(item, redactions);
                }
            }
            Value::Object(object) => self.scrub_object(object, redactions),
            Value::Bool(_) | Value::Null => {}
        }
    }

    fn scrub_object(&self, object: &mut Map<String, Value>, redactions: &mut Redactions) {
        let entries = std::mem::take(object);
        for (key, mut value) in entries {
            let already_scrubbed = value.as_str().is_some_and(is_placeholder);
            match self.keys.sensitive_kind(&key) {
                _ if already_scrubbed => {}
                // `"version": "1.2.3.4"` is a version, whatever the IP detector thinks.
                _ if is_dotted_version(&key, &value) => {}
                Some(kind) if !matches!(value, Value::Bool(_) | Value::Null) => {
                    let text = match &value {
                        Value::String(text) => text.clone(),
                        other => other.to_string(),
                    };
                    let card = kind == "card" && detectors::is_card_text(&text);
                    value = Value::String(self.placeholder(kind, &text, card));
                    redactions.add(kind);
                }
                _ => self.scrub_json(&mut value, redactions),
            }
            let mut key = self.scrub_text(&key, redactions).into_owned();
            if object.contains_key(&key) {
                // Two keys scrubbed to the same placeholder: keep both values.
                let base = key.clone();
                let mut n = 2;
                while object.contains_key(&key) {
                    key = format!("{base}_{n}");
                    n += 1;
                }
            }
            object.insert(key, value);
        }
    }

    /// Scrubs an event's free-text and structured fields in place and returns what was
    /// removed. Threat events: `message`, `stacktrace`, `error_code`, `api.path` (its query
    /// string and its path segments) and `metadata`; audit events: `metadata`. Identifiers,
    /// `source`, `version`, `environment`, `error_type` and `sdk` are never touched.
    pub fn scrub_event(&self, kind: EventKind, object: &mut Map<String, Value>) -> Redactions {
        let mut redactions = Redactions::default();
        if kind == EventKind::Threat {
            // Every free-text field of a threat event: a secret can land anywhere an SDK
            // copies text, including the error type and version strings. The detectors keep
            // versions, codes and identifiers intact.
            let fields = [
                "message",
                "stacktrace",
                "error_code",
                "error_type",
                "version",
                "environment",
            ];
            for field in fields {
                if let Some(Value::String(text)) = object.get_mut(field) {
                    self.scrub_string(text, &mut redactions);
                }
            }
            for (outer, inner) in [
                ("api", "path"),
                ("api", "method"),
                ("sdk", "name"),
                ("sdk", "platform"),
            ] {
                if let Some(Value::Object(nested)) = object.get_mut(outer)
                    && let Some(Value::String(text)) = nested.get_mut(inner)
                {
                    self.scrub_string(text, &mut redactions);
                }
            }
        }
        if let Some(metadata) = object.get_mut("metadata") {
            self.scrub_json(metadata, &mut redactions);
        }
        redactions
    }

    /// `[kind]`, or `[kind:1f3a9c]` with a pseudonym key; cards keep their last four digits.
    fn placeholder(&self, kind: &str, value: &str, card: bool) -> String {
        let normalized: Cow<'_, str> = if card {
            Cow::Owned(value.chars().filter(char::is_ascii_digit).collect())
        } else if kind == "email" {
            Cow::Owned(value.to_ascii_lowercase())
        } else {
            Cow::Borrowed(value)
        };
        let pseudonym = self.pseudonym_key.as_ref().map(|key| {
            // HMAC accepts keys of any length, so this cannot fail.
            let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
            mac.update(normalized.as_bytes());
            hex::encode(&mac.finalize().into_bytes()[..3])
        });
        let last_four = card.then(|| &normalized[normalized.len().saturating_sub(4)..]);
        match (pseudonym, last_four) {
            (Some(p), Some(last)) => format!("[{kind}:{p}…{last}]"),
            (None, Some(last)) => format!("[{kind}:…{last}]"),
            (Some(p), None) => format!("[{kind}:{p}]"),
            (None, None) => format!("[{kind}]"),
        }
    }
}
