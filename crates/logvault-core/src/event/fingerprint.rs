//! The fingerprint of a threat event: what makes two errors "the same problem". It hashes the
//! error type, the source, the message with every variable part masked (numbers, UUIDs, hex,
//! addresses, ids, quoted values, scrubbed placeholders), and where the error happened (the
//! API call's method and path template, or else the top frame of the stack trace, masked the
//! same way). Pure and deterministic: the writers compute it for every threat event they
//! store and `verify` computes it again from the body.

use std::borrow::Cow;

use serde::Deserialize;
use sha2::{Digest, Sha256};

/// Longest normalised message kept for display, in characters.
const MAX_MESSAGE: usize = 300;
/// Longest location (path template or frame) kept, in characters.
const MAX_LOCATION: usize = 200;

/// A threat event's fingerprint and the text it was computed from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    /// 16 lower-case hex digits: the first 8 bytes of SHA-256 over the parts.
    pub hash: String,
    /// The message with its variable parts masked, for display.
    pub message: String,
    /// `METHOD /path/{id}` of the API call, or the masked top stack frame, or empty.
    pub location: String,
    /// The error type, as given.
    pub error_type: String,
    /// The source, as given.
    pub source: String,
}

/// The fields of a threat body the fingerprint reads; everything else is skipped.
#[derive(Deserialize)]
struct Parts<'a> {
    #[serde(borrow, default)]
    error_type: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    source: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    message: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    api: Option<ApiParts<'a>>,
    #[serde(borrow, default)]
    stacktrace: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct ApiParts<'a> {
    #[serde(borrow, default)]
    method: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    path: Option<Cow<'a, str>>,
}

impl Fingerprint {
    /// The fingerprint of a threat event whose canonical body is `body`; `None` if the body
    /// is not a JSON object (a purged event's `{}` has one: that of empty parts).
    pub fn of_body(body: &str) -> Option<Fingerprint> {
        serde_json::from_str(body).ok().map(Fingerprint::of_parts)
    }

    /// [`Fingerprint::of_body`] of a body still in its parsed form, as validation holds it
    /// before writing it out (the same answer, without parsing the text again).
    pub fn of_value(body: &serde_json::Value) -> Option<Fingerprint> {
        Parts::deserialize(body).ok().map(Fingerprint::of_parts)
    }

    fn of_parts(parts: Parts<'_>) -> Fingerprint {
        let (method, path) = match &parts.api {
            Some(api) => (api.method.as_deref(), api.path.as_deref()),
            None => (None, None),
        };
        Fingerprint::of(
            parts.error_type.as_deref().unwrap_or_default(),
            parts.source.as_deref().unwrap_or_default(),
            parts.message.as_deref().unwrap_or_default(),
            method,
            path,
            parts.stacktrace.as_deref(),
        )
    }

    /// The fingerprint of an error of `error_type` from `source` with `message`, raised by
    /// the API call `method path` or at the top frame of `stacktrace`.
    pub fn of(
        error_type: &str,
        source: &str,
        message: &str,
        method: Option<&str>,
        path: Option<&str>,
        stacktrace: Option<&str>,
    ) -> Fingerprint {
        let message = truncate(normalise(message), MAX_MESSAGE);
        let location = match path {
            Some(path) => {
                let template = path_template(path);
                match method {
                    Some(method) if !method.is_empty() => {
                        format!("{} {template}", method.to_ascii_uppercase())
                    }
                    _ => template,
                }
            }
            None => stacktrace
                .and_then(top_frame)
                .map(normalise)
                .unwrap_or_default(),
        };
        let location = truncate(location, MAX_LOCATION);
        let mut hasher = Sha256::new();
        for part in ["v1", error_type, source, &message, &location] {
            hasher.update(part.as_bytes());
            hasher.update([0u8]);
        }
        let digest = hasher.finalize();
        Fingerprint {
            hash: hex::encode(&digest[..8]),
            message,
            location,
            error_type: error_type.to_string(),
            source: source.to_string(),
        }
    }
}

fn truncate(mut text: String, max_chars: usize) -> String {
    if let Some((at, _)) = text.char_indices().nth(max_chars) {
        text.truncate(at);
    }
    text
}

/// Whether `c` continues a word token: the characters ids, numbers, addresses and versions
/// are made of.
fn is_word(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '@' | ':' | '+')
}

/// `message` with every variable part masked and runs of white space made one space.
pub fn normalise(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let chars: Vec<char> = message.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            if !out.is_empty() && !out.ends_with(' ') {
                out.push(' ');
            }
            i += 1;
        } else if let Some(end) = quoted_end(&chars, i) {
            out.push_str("<str>");
            i = end + 1;
        } else if c == '['
            && let Some(end) = placeholder_end(&chars, i)
        {
            // A scrubbed value, `[card:4242…4242]`: its kind stays, its hints go.
            let inner: String = chars[i + 1..end].iter().collect();
            let kind = inner.split(':').next().unwrap_or_default();
            out.push('<');
            out.push_str(kind);
            out.push('>');
            i = end + 1;
        } else if is_word(c) {
            let start = i;
            while i < chars.len() && is_word(chars[i]) {
                i += 1;
            }
            // A sentence's full stop or colon is not part of the word.
            let mut end = i;
            while end > start && matches!(chars[end - 1], '.' | ':' | '-' | '+') {
                end -= 1;
            }
            let word: String = chars[start..end].iter().collect();
            out.push_str(&mask_word(&word));
            out.extend(&chars[end..i]);
        } else {
            out.push(c);
            i += 1;
        }
    }
    while out.ends_with(' ') {
        out.pop();
    }
    out
}

/// The index of the quote closing the one at `start`, for a quoted value on one line of at
/// most 200 characters.
fn quoted_end(chars: &[char], start: usize) -> Option<usize> {
    let quote = chars[start];
    if !matches!(quote, '"' | '\'' | '`' | '“' | '‘') {
        return None;
    }
    // An apostrophe inside a word ("can't") opens nothing.
    if quote == '\'' && start > 0 && chars[start - 1].is_alphanumeric() {
        return None;
    }
    let close = match quote {
        '“' => '”',
        '‘' => '’',
        other => other,
    };
    chars[start + 1..]
        .iter()
        .take(200)
        .take_while(|c| **c != '\n')
        .position(|c| *c == close)
        .map(|offset| start + 1 + offset)
}

/// The index of the `]` closing a scrubbing placeholder opened at `start` (`[card…]`,
/// `[email]`), whose kind is lower-case letters and underscores.
fn placeholder_end(chars: &[char], start: usize) -> Option<usize> {
    let mut i = start + 1;
    while i < chars.len() && (chars[i].is_ascii_lowercase() || chars[i] == '_') {
        i += 1;
    }
    if i == start + 1 || i >= chars.len() || !matches!(chars[i], ']' | ':') {
        return None;
    }
    chars[i..]
        .iter()
        .take(64)
        .position(|c| *c == ']')
        .map(|offset| i + offset)
}

/// One word token with its variable part masked, or the word itself.
fn mask_word(word: &str) -> Cow<'_, str> {
    if word.is_empty() {
        return Cow::Borrowed(word);
    }
    let has_digit = word.bytes().any(|b| b.is_ascii_digit());
    if let Some(at) = word.find('@')
        && at > 0
        && word[at + 1..].contains('.')
    {
        return Cow::Borrowed("<email>");
    }
    if is_uuid(word) {
        return Cow::Borrowed("<uuid>");
    }
    if is_time(word) {
        return Cow::Borrowed("<time>");
    }
    // `checkout.js:120:7`, `host:443`: each part on its own (an IPv6 address stays whole).
    if word.contains(':') && !is_ip(word) {
        let parts: Vec<Cow<'_, str>> = word.split(':').map(mask_word).collect();
        return Cow::Owned(parts.join(":"));
    }
    if !has_digit {
        // Long random tokens without digits (base62 secrets, nonces) are still ids.
        let mixed_case = word.bytes().any(|b| b.is_ascii_uppercase())
            && word.bytes().any(|b| b.is_ascii_lowercase());
        if word.len() >= 20 && mixed_case && !word.contains(['-', '.', '_']) {
            return Cow::Borrowed("<id>");
        }
        return Cow::Borrowed(word);
    }
    if is_ip(word) {
        return Cow::Borrowed("<ip>");
    }
    if is_number(word) {
        return Cow::Borrowed("<num>");
    }
    if is_hex(word) {
        return Cow::Borrowed("<hex>");
    }
    // `v1`, `utf8`, `sha256`, `TLSv1.3`: a name with a small number at its end.
    let letters = word.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
    if word.len() - letters.len() <= 4
        && !letters.is_empty()
        && letters.chars().all(|c| c.is_ascii_alphabetic())
        && word.len() <= 12
    {
        return Cow::Borrowed(word);
    }
    // `req_8f3a2c`, `usr-42`, `pi_3N0x…`: the prefix names the kind of id; keep it.
    if let Some(at) = word.find(['_', '-'])
        && at > 0
        && word[..at].bytes().all(|b| b.is_ascii_alphabetic())
        && word[at + 1..].bytes().any(|b| b.is_ascii_digit())
    {
        return Cow::Owned(format!("{}<id>", &word[..=at]));
    }
    Cow::Borrowed("<id>")
}

/// `123`, `-4`, `30.5`, `30s`, `500ms`, `1.5KB`, `2x`, `1,234` (a number, maybe with a unit).
fn is_number(word: &str) -> bool {
    let body = word.strip_prefix(['-', '+']).unwrap_or(word);
    let digits_end = body
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == ','))
        .unwrap_or(body.len());
    if digits_end == 0 || !body.as_bytes()[0].is_ascii_digit() {
        return false;
    }
    let unit = &body[digits_end..];
    unit.len() <= 3 && unit.bytes().all(|b| b.is_ascii_alphabetic()) || unit == "%"
}

/// A date or time: `2024-06-01`, `2026-12-06T10:00:00Z`.
fn is_time(word: &str) -> bool {
    word.len() >= 10
        && word.as_bytes()[..4].iter().all(u8::is_ascii_digit)
        && word.as_bytes()[4] == b'-'
        && word
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'-' | b':' | b'T' | b'Z' | b'.' | b'+'))
}

/// A dotted IPv4 address, or an IPv6 address with a colon.
fn is_ip(word: &str) -> bool {
    let parts: Vec<&str> = word.split('.').collect();
    if parts.len() == 4
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()))
    {
        return true;
    }
    word.contains(':')
        && word.split(':').filter(|p| !p.is_empty()).count() >= 3
        && word
            .bytes()
            .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
}

/// `0x1f`, or 8 or more hex digits holding both a digit and a letter (a hash, an address).
fn is_hex(word: &str) -> bool {
    if let Some(rest) = word.strip_prefix("0x").or_else(|| word.strip_prefix("0X")) {
        return !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_hexdigit());
    }
    word.len() >= 8 && word.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The 8-4-4-4-12 form of a UUID.
fn is_uuid(word: &str) -> bool {
    let groups: Vec<&str> = word.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(group, n)| group.len() == n && group.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// An API path with its query dropped and every segment that is an id made `{id}`.
pub fn path_template(path: &str) -> String {
    let path = path.split(['?', '#']).next().unwrap_or_default();
    let mut out = String::with_capacity(path.len());
    for (i, segment) in path.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        if segment.is_empty() {
            continue;
        }
        let masked = mask_word(segment);
        if masked == segment {
            out.push_str(segment);
        } else {
            out.push_str("{id}");
        }
    }
    out
}

/// The first line of a stack trace that names a frame (`at …`, `File …`, `#3 …`, a numbered
/// frame), trimmed; failing those, the first line after the first one (which usually
/// repeats the error) with a call's parentheses.
fn top_frame(stacktrace: &str) -> Option<&str> {
    let lines = || {
        stacktrace
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty())
    };
    lines()
        .find(|line| {
            line.starts_with("at ")
                || line.starts_with("File ")
                || line.starts_with('#')
                || line.as_bytes().first().is_some_and(u8::is_ascii_digit)
        })
        .or_else(|| {
            lines()
                .skip(1)
                .find(|line| line.contains('(') && line.contains(')'))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_normalised() {
        let cases = [
            (
                "request timed out after 30s",
                "request timed out after <num>",
            ),
            ("timed out after 30000 ms", "timed out after <num> ms"),
            (
                "payment 9b2f6c1e-3a44-4f1c-9d2e-0c6a1b2c3d4e not found",
                "payment <uuid> not found",
            ),
            ("order ord_8f3a2c91 failed", "order ord_<id> failed"),
            ("user usr-42 locked", "user usr-<id> locked"),
            ("user usr_7 locked", "user usr_<id> locked"),
            ("bad digest 3fa9c0d21b7e", "bad digest <hex>"),
            ("segfault at 0x7ffee4b2", "segfault at <hex>"),
            ("no route to 10.0.3.17:443", "no route to <ip>:<num>"),
            ("missing field `next_action`", "missing field <str>"),
            (
                "unknown currency \"XYZ\" for 'acct'",
                "unknown currency <str> for <str>",
            ),
            ("can't parse it", "can't parse it"),
            ("sent to jane.doe@example.com", "sent to <email>"),
            ("card [card:4242…4242] declined", "card <card> declined"),
            (
                "got -100 at line 1 column 412.",
                "got <num> at line <num> column <num>.",
            ),
            (
                "HTTP/2 stream reset over TLSv1.3",
                "HTTP/<num> stream reset over TLSv1.3",
            ),
            ("  many   spaces\n here ", "many spaces here"),
            ("utf8 error in v2 api", "utf8 error in v2 api"),
            (
                "token AbCdEfGhIjKlMnOpQrStUv rejected",
                "token <id> rejected",
            ),
            ("retry 3 of 5 (50%)", "retry <num> of <num> (<num>%)"),
            (
                "since 2026-12-06T10:00:00Z on API 2024-06-01",
                "since <time> on API <time>",
            ),
            ("bad address fe80::1:2:3", "bad address <ip>"),
        ];
        for (message, expected) in cases {
            assert_eq!(normalise(message), expected, "{message:?}");
        }
    }

    #[test]
    fn paths_become_templates() {
        let cases = [
            ("/v1/payments", "/v1/payments"),
            (
                "/v1/payments/pay_123abc/capture",
                "/v1/payments/{id}/capture",
            ),
            ("/v1/customers/42?expand=true", "/v1/customers/{id}"),
            (
                "/v1/refunds/9b2f6c1e-3a44-4f1c-9d2e-0c6a1b2c3d4e",
                "/v1/refunds/{id}",
            ),
        ];
        for (path, expected) in cases {
            assert_eq!(path_template(path), expected, "{path:?}");
        }
    }

    #[test]
    fn the_same_bug_with_other_ids_has_one_fingerprint() {
        let a = Fingerprint::of(
            "NotFound",
            "api",
            "payment pay_1a2b3c not found",
            Some("get"),
            Some("/v1/payments/pay_1a2b3c"),
            None,
        );
        let b = Fingerprint::of(
            "NotFound",
            "api",
            "payment pay_9z8y7x6 not found",
            Some("GET"),
            Some("/v1/payments/pay_9z8y7x6"),
            None,
        );
        assert_eq!(a, b);
        assert_eq!(a.hash.len(), 16);
        assert_eq!(a.location, "GET /v1/payments/{id}");
    }

    #[test]
    fn different_bugs_have_different_fingerprints() {
        let base = Fingerprint::of("Timeout", "sdk", "timed out after 30s", None, None, None);
        let others = [
            Fingerprint::of("Timeout", "api", "timed out after 30s", None, None, None),
            Fingerprint::of("Decode", "sdk", "timed out after 30s", None, None, None),
            Fingerprint::of(
                "Timeout",
                "sdk",
                "connect timed out after 30s",
                None,
                None,
                None,
            ),
            Fingerprint::of(
                "Timeout",
                "sdk",
                "timed out after 30s",
                Some("POST"),
                Some("/v1/refunds"),
                None,
            ),
            Fingerprint::of(
                "Timeout",
                "sdk",
                "timed out after 30s",
                None,
                None,
                Some("Error\n  at confirm (pay.js:10:5)"),
            ),
        ];
        for other in others {
            assert_ne!(base.hash, other.hash, "{other:?}");
        }
    }

    #[test]
    fn stack_frames_lose_their_line_numbers() {
        let a = Fingerprint::of(
            "TypeError",
            "sdk",
            "x is undefined",
            None,
            None,
            Some("TypeError: x is undefined\n    at confirm (checkout.js:120:7)\n    at main"),
        );
        let b = Fingerprint::of(
            "TypeError",
            "sdk",
            "x is undefined",
            None,
            None,
            Some("TypeError: x is undefined\n    at confirm (checkout.js:131:9)"),
        );
        assert_eq!(a.hash, b.hash);
        assert_eq!(a.location, "at confirm (checkout.js:<num>:<num>)");
    }

    #[test]
    fn the_top_frame_is_a_frame_not_the_error_line() {
        let cases = [
            (
                "TypeError: x (y)\n    at a (f.js:1:2)",
                Some("at a (f.js:1:2)"),
            ),
            (
                "Traceback:\n  File \"x.py\", line 3, in f",
                Some("File \"x.py\", line 3, in f"),
            ),
            ("0 CoreFoundation 0x1f", Some("0 CoreFoundation 0x1f")),
            (
                "Error: boom (x)\nmain.go:12 (handler)",
                Some("main.go:12 (handler)"),
            ),
            ("just one line (x)", None),
        ];
        for (trace, expected) in cases {
            assert_eq!(top_frame(trace), expected, "{trace:?}");
        }
    }

    #[test]
    fn the_body_gives_the_same_fingerprint_as_its_fields() {
        let body = r#"{"api":{"method":"POST","path":"/v1/payments/pay_77","status":504},"error_type":"NetworkTimeout","message":"timed out after 30s","source":"api"}"#;
        let from_body = Fingerprint::of_body(body).expect("an object");
        let from_fields = Fingerprint::of(
            "NetworkTimeout",
            "api",
            "timed out after 30s",
            Some("POST"),
            Some("/v1/payments/pay_77"),
            None,
        );
        assert_eq!(from_body, from_fields);
        assert_eq!(Fingerprint::of_body("[1]"), None);
        assert!(Fingerprint::of_body("{}").is_some());
    }

    /// Validation gives a threat event the fingerprint of its stored body (after scrubbing),
    /// and an audit event none.
    #[test]
    fn validation_fingerprints_the_stored_body() {
        use crate::EventKind;
        use crate::validate::{Limits, validate_event};
        let threat = serde_json::json!({"source": "sdk", "error_type": "CardError",
            "message": "card 4242 4242 4242 4242 declined after 3 tries"});
        let event = validate_event(EventKind::Threat, 0, &threat, "mer_1", &Limits::default())
            .expect("valid");
        let fingerprint = event.fingerprint.clone().expect("a threat event has one");
        assert_eq!(Some(fingerprint.clone()), Fingerprint::of_body(&event.body));
        assert!(!fingerprint.message.contains("4242"), "{fingerprint:?}");
        let audit = serde_json::json!({"action": "user.login", "outcome": "success",
            "actor": {"id": "usr_1"}});
        let event = validate_event(EventKind::Audit, 0, &audit, "mer_1", &Limits::default())
            .expect("valid");
        assert_eq!(event.fingerprint, None);
    }

    #[test]
    fn long_messages_are_cut_on_a_character() {
        let message = "é".repeat(1000);
        let fingerprint = Fingerprint::of("E", "sdk", &message, None, None, None);
        assert_eq!(fingerprint.message.chars().count(), MAX_MESSAGE);
    }
}
