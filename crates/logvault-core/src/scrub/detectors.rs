//! The text detectors: each regex in `patterns.rs` proposes candidates and the check here
//! validates them (Luhn, mod-97, context) before anything is redacted. Detectors run in
//! priority order; when two findings overlap, the earlier detector wins.

use regex::{Captures, Regex};

use super::checks;
use super::keys::KeyRules;

/// What a detector looks for; decides how its candidates are validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    /// PEM private key blocks, also when truncated.
    PrivateKey,
    /// logvault's own `lv_<key-id>_<secret>`: the secret goes, the public key id stays.
    LogvaultKey,
    /// Vendor key formats with a distinctive prefix (Stripe, AWS, GitHub, Slack, …).
    VendorKey,
    /// JSON Web Tokens.
    Jwt,
    /// A configured rule: the named kind.
    Custom(String),
    /// `scheme://user:password@host`.
    UrlCredentials,
    /// Sensitive query parameters, also URL-encoded.
    QueryParam,
    /// `Bearer …` and `Basic …` credentials.
    AuthScheme,
    /// CVV/CVC/PIN digits right after such a name.
    CvvPin,
    /// `name=value` / `name: value` where the name is a sensitive key name.
    KeyValue,
    /// Payment card numbers.
    Card,
    /// International bank account numbers.
    Iban,
    /// US social security numbers.
    Ssn,
    /// E-mail addresses.
    Email,
    /// Phone numbers in international (`+…`) format.
    Phone,
    /// IPv4 addresses.
    Ipv4,
    /// IPv6 addresses.
    Ipv6,
    /// The user name in home-directory paths.
    UserPath,
}

/// One validated finding: the byte range to replace and the kind it is replaced as.
#[derive(Debug, Clone, Copy)]
pub struct Hit<'a> {
    /// Start of the replaced range.
    pub start: usize,
    /// End of the replaced range.
    pub end: usize,
    /// Redaction kind, e.g. `card`.
    pub kind: &'a str,
    /// A card number: the placeholder keeps its last four digits.
    pub card: bool,
}

/// A compiled detector.
#[derive(Debug, Clone)]
pub struct Detector {
    /// What it finds.
    pub rule: Rule,
    /// The candidate pattern.
    pub regex: Regex,
}

/// Query parameter names that carry credentials even though, as key names, they are too
/// generic to wipe everywhere (`key`, `sig`, `code`).
const URL_PARAM_KINDS: &[(&str, &str)] = &[
    ("key", "api_key"),
    ("sig", "secret"),
    ("code", "secret"),
    ("auth", "secret"),
];

/// Values that say a secret is absent, not what it is.
const NON_SECRETS: &[&str] = &[
    "null",
    "nil",
    "none",
    "undefined",
    "true",
    "false",
    "empty",
    "missing",
    "invalid",
    "expired",
    "revoked",
    "required",
    "unset",
    "redacted",
    "hidden",
    "masked",
    "filtered",
    "n/a",
    "-",
    "bearer",
    "basic",
    "token",
    "digest",
    "negotiate",
    "realm",
];

/// Home-directory names that belong to nobody.
const SHARED_HOMES: &[&str] = &["Shared", "Public", "Default", "All Users", "Default User"];

/// File extensions that look like top-level domains after an `@` (`icon@2x.png`).
const FILE_EXTENSIONS: &[&str] = &[
    "png", "jpg", "jpeg", "gif", "svg", "webp", "js", "mjs", "ts", "tsx", "jsx", "css", "json",
    "map", "txt", "log", "html", "wasm", "so", "dll", "gz", "zip", "tgz",
];

impl Detector {
    /// Appends this detector's validated findings in `text` to `hits`.
    pub fn find<'a>(&'a self, text: &str, keys: &KeyRules, hits: &mut Vec<Hit<'a>>) {
        for caps in self.regex.captures_iter(text) {
            let whole = caps.get(0).map_or(0..0, |m| m.range());
            if whole.is_empty() {
                continue;
            }
            let hit = match &self.rule {
                Rule::PrivateKey => plain(whole.start, whole.end, "private_key"),
                Rule::VendorKey => plain(whole.start, whole.end, "api_key"),
                Rule::Jwt => plain(whole.start, whole.end, "jwt"),
                Rule::LogvaultKey => group(&caps, 1, "api_key"),
                Rule::Custom(kind) => match caps.get(1) {
                    Some(m) if !m.is_empty() => plain(m.start(), m.end(), kind),
                    _ => plain(whole.start, whole.end, kind),
                },
                Rule::UrlCredentials => group(&caps, 1, "credentials"),
                Rule::QueryParam => query_param(text, &caps, keys),
                Rule::AuthScheme => auth_scheme(text, &caps),
                Rule::CvvPin => cvv_pin(text, &caps),
                Rule::KeyValue => key_value(text, &caps, keys),
                // A run of digit groups may hold several cards, or one after a stray number.
                Rule::Card => {
                    hits.extend(cards(text, whole.start, whole.end));
                    continue;
                }
                Rule::Iban => iban(text, whole.start, whole.end),
                Rule::Ssn => ssn(text, &caps),
                Rule::Email => email(text, &caps),
                Rule::Phone => phone(text, whole.start, whole.end),
                Rule::Ipv4 => ipv4(text, whole.start, whole.end),
                Rule::Ipv6 => ipv6(text, whole.start, whole.end),
                Rule::UserPath => user_path(&caps),
            };
            hits.extend(hit);
        }
    }
}

fn plain(start: usize, end: usize, kind: &str) -> Option<Hit<'_>> {
    Some(Hit {
        start,
        end,
        kind,
        card: false,
    })
}

fn group<'a>(caps: &Captures<'_>, index: usize, kind: &'a str) -> Option<Hit<'a>> {
    caps.get(index)
        .filter(|m| !m.is_empty())
        .and_then(|m| plain(m.start(), m.end(), kind))
}

fn byte_before(text: &str, at: usize) -> Option<u8> {
    at.checked_sub(1).map(|i| text.as_bytes()[i])
}

fn byte_at(text: &str, at: usize) -> Option<u8> {
    text.as_bytes().get(at).copied()
}

/// `.5` after a number: the number is a decimal or a longer dotted sequence, not a whole token.
fn continues_with_dot_digit(text: &str, end: usize) -> bool {
    byte_at(text, end) == Some(b'.') && byte_at(text, end + 1).is_some_and(|b| b.is_ascii_digit())
}

/// Whether a value names the absence of a secret or is already a placeholder.
fn is_non_secret(value: &str) -> bool {
    value.is_empty()
        || value.starts_with(['[', '*', '<', '$', '{', '%'])
        || NON_SECRETS
            .iter()
            .any(|word| value.eq_ignore_ascii_case(word))
}

fn query_param<'a>(text: &str, caps: &Captures<'_>, keys: &KeyRules) -> Option<Hit<'a>> {
    let (name, value) = (caps.get(1)?, caps.get(2)?);
    let kind = keys.sensitive_kind(name.as_str()).or_else(|| {
        URL_PARAM_KINDS
            .iter()
            .find(|(param, _)| name.as_str().eq_ignore_ascii_case(param))
            .map(|(_, kind)| *kind)
    })?;
    let raw = value.as_str();
    let encoded = raw.starts_with('%') && !raw.starts_with("%7B");
    if (is_non_secret(raw) && !encoded) || is_partly_placeholder(text, value.start(), value.end()) {
        return None;
    }
    plain(value.start(), value.end(), kind)
}

/// Whether a value contains or runs into a placeholder from an earlier pass
/// (`lv_0123456789abcdef_[api_key]`), so scrubbing twice changes nothing.
fn is_partly_placeholder(text: &str, start: usize, end: usize) -> bool {
    let value = &text[start..end];
    let at_placeholder = |rest: &str| {
        rest.strip_prefix('[').is_some_and(|inner| {
            let name_len = inner
                .bytes()
                .take_while(|b| b.is_ascii_lowercase() || *b == b'_')
                .count();
            name_len > 0 && matches!(inner.as_bytes().get(name_len), Some(b']' | b':'))
        })
    };
    at_placeholder(&text[end..])
        || value
            .match_indices('[')
            .any(|(i, _)| at_placeholder(&value[i..]))
}

fn auth_scheme<'a>(text: &str, caps: &Captures<'_>) -> Option<Hit<'a>> {
    let (scheme, value) = (caps.get(1)?, caps.get(2)?);
    let token = value.as_str().trim_end_matches('=');
    if is_non_secret(token) || is_partly_placeholder(text, value.start(), value.end()) {
        return None;
    }
    let lookback = text[..scheme.start()]
        .char_indices()
        .rev()
        .nth(40)
        .map_or(0, |(i, _)| i);
    let in_header = text[lookback..scheme.start()]
        .to_ascii_lowercase()
        .contains("authoriz");
    let basic = scheme.as_str().eq_ignore_ascii_case("basic");
    let ok = if basic {
        in_header && token.len() >= 4
            || checks::base64_decode(value.as_str()).is_some_and(|bytes| {
                bytes.contains(&b':') && bytes.iter().all(|b| b.is_ascii_graphic() || *b == b' ')
            })
    } else {
        in_header && token.len() >= 6
            || token.len() >= 12 && token.bytes().any(|b| b.is_ascii_digit())
    };
    let kind = if basic { "credentials" } else { "token" };
    ok.then(|| plain(value.start(), value.end(), kind))
        .flatten()
}

fn cvv_pin<'a>(text: &str, caps: &Captures<'_>) -> Option<Hit<'a>> {
    let (name, digits) = (caps.get(1)?, caps.get(2)?);
    if continues_with_dot_digit(text, digits.end()) {
        return None;
    }
    let kind = if name.as_str().eq_ignore_ascii_case("pin") {
        "pin"
    } else {
        "cvv"
    };
    plain(digits.start(), digits.end(), kind)
}

fn key_value<'a>(text: &str, caps: &Captures<'_>, keys: &KeyRules) -> Option<Hit<'a>> {
    let (name, value) = (caps.get(1)?, caps.get(2)?);
    let kind = keys.sensitive_kind(name.as_str())?;
    let mut end = value.end();
    // A quoted value runs to its closing quote, spaces included (`"correct horse"`).
    let quote = byte_before(text, value.start()).filter(|b| matches!(b, b'"' | b'\''));
    if let Some(quote) = quote {
        let escaped = byte_before(text, value.start() - 1) == Some(b'\\');
        let rest = &text[value.start()..];
        let close = if escaped {
            rest.find(&format!("\\{}", quote as char))
        } else {
            rest.find(quote as char)
        };
        if let Some(close) = close.filter(|c| *c <= 256) {
            end = value.start() + close;
        }
    }
    if kind == "cookie" {
        // A cookie header holds `a=1; b=2`: everything up to the end of the header goes.
        end = text[value.start()..]
            .find(['\n', '\r', '"', '\\'])
            .map_or(text.len(), |i| value.start() + i);
    }
    if is_partly_placeholder(text, value.start(), end) {
        return None;
    }
    let mut raw = &text[value.start()..end];
    if quote.is_none() {
        raw = raw.trim_end_matches(['.', ',', ')', ']', '}', '>']);
        end = value.start() + raw.len();
    }
    let scheme_word = raw
        .split_once(' ')
        .is_some_and(|(word, _)| is_non_secret(word));
    if is_non_secret(raw) || scheme_word {
        return None;
    }
    // `password: must be at least 8 characters` is prose, not a password.
    let prose = quote.is_none()
        && raw.bytes().all(|b| b.is_ascii_lowercase())
        && byte_at(text, end) == Some(b' ')
        && byte_at(text, end + 1).is_some_and(|b| b.is_ascii_alphabetic());
    if prose {
        return None;
    }
    let card = kind == "card" && is_card_text(raw);
    Some(Hit {
        start: value.start(),
        end,
        kind,
        card,
    })
}

/// Digits with optional spaces or dashes that form a valid card number.
pub fn is_card_text(text: &str) -> bool {
    let digits: Vec<u8> = text.bytes().filter(u8::is_ascii_digit).collect();
    text.bytes()
        .all(|b| b.is_ascii_digit() || b == b' ' || b == b'-')
        && checks::is_card(&digits)
}

/// The cards in one whole run of digit groups: every stretch of whole groups of 12-19 digits
/// is tried and the longest are kept, then the longest of the rest that do not overlap them,
/// so `order 123456 4111 1111 1111 1111` still finds the card after a stray number and two
/// cards in a row are two cards.
fn cards<'a>(text: &str, start: usize, end: usize) -> Vec<Hit<'a>> {
    if matches!(byte_before(text, start), Some(b'.' | b'+' | b',')) {
        return Vec::new();
    }
    if continues_with_dot_digit(text, end) {
        return Vec::new();
    }
    let candidate = &text[start..end];
    let mut groups: Vec<(usize, usize)> = Vec::new();
    let mut group_start = 0;
    for (i, b) in candidate.bytes().enumerate() {
        if b == b' ' || b == b'-' {
            groups.push((group_start, i));
            group_start = i + 1;
        }
    }
    groups.push((group_start, candidate.len()));
    let mut found: Vec<(usize, usize)> = Vec::new();
    for first in 0..groups.len() {
        for last in first..groups.len() {
            let (from, to) = (groups[first].0, groups[last].1);
            let part = &candidate[from..to];
            let n_digits = part.bytes().filter(u8::is_ascii_digit).count();
            if n_digits > 19 {
                break;
            }
            let short_group = groups[first..=last].iter().any(|(a, b)| b - a < 3);
            let separators: Vec<u8> = part.bytes().filter(|b| !b.is_ascii_digit()).collect();
            let mixed = separators.windows(2).any(|w| w[0] != w[1]);
            // Dashes bind groups into one token (`1234-5678-9012-3456` is a SKU, not a card
            // hiding after `1234-`): only spaces may be dropped around a card.
            let cut_before = first > 0 && candidate.as_bytes()[from - 1] != b' ';
            let cut_after = to < candidate.len() && candidate.as_bytes()[to] != b' ';
            if (12..=19).contains(&n_digits)
                && (!short_group || first == last)
                && !mixed
                && !cut_before
                && !cut_after
                && is_card_text(part)
            {
                found.push((from, to));
            }
        }
    }
    // Longest first; among equals, the earliest.
    found.sort_by_key(|&(from, to)| (std::cmp::Reverse(to - from), from));
    let mut kept: Vec<(usize, usize)> = Vec::new();
    for (from, to) in found {
        if kept.iter().all(|&(a, b)| to <= a || b <= from) {
            kept.push((from, to));
        }
    }
    kept.into_iter()
        .map(|(from, to)| Hit {
            start: start + from,
            end: start + to,
            kind: "card",
            card: true,
        })
        .collect()
}

fn iban<'a>(text: &str, start: usize, end: usize) -> Option<Hit<'a>> {
    let candidate = &text[start..end];
    let mut cut_points: Vec<usize> = candidate.match_indices(' ').map(|(i, _)| i).collect();
    cut_points.push(candidate.len());
    for &cut in cut_points.iter().rev() {
        let compact: String = candidate[..cut]
            .chars()
            .filter(|c| *c != ' ')
            .map(|c| c.to_ascii_uppercase())
            .collect();
        if compact.len() < 15 {
            break;
        }
        if checks::is_iban(&compact) {
            return plain(start, start + cut, "iban");
        }
    }
    None
}

fn ssn<'a>(text: &str, caps: &Captures<'_>) -> Option<Hit<'a>> {
    let whole = caps.get(0)?;
    let (sep1, sep2) = (caps.get(2)?.as_str(), caps.get(4)?.as_str());
    if sep1 != sep2 || matches!(byte_before(text, whole.start()), Some(b'-' | b'.' | b'+')) {
        return None;
    }
    if byte_at(text, whole.end()) == Some(b'-') || continues_with_dot_digit(text, whole.end()) {
        return None;
    }
    if sep1 == " " {
        // Space-separated digit groups are too common to trust without the word nearby.
        let from = whole.start().saturating_sub(24);
        let before = text
            .get(from..whole.start())
            .unwrap_or("")
            .to_ascii_lowercase();
        if !before.contains("ssn") && !before.contains("social") {
            return None;
        }
    }
    let (area, group, serial) = (caps.get(1)?, caps.get(3)?, caps.get(5)?);
    checks::is_ssn(area.as_str(), group.as_str(), serial.as_str())
        .then(|| plain(whole.start(), whole.end(), "ssn"))
        .flatten()
}

fn email<'a>(text: &str, caps: &Captures<'_>) -> Option<Hit<'a>> {
    let (whole, tld) = (caps.get(0)?, caps.get(1)?);
    if FILE_EXTENSIONS
        .iter()
        .any(|ext| tld.as_str().eq_ignore_ascii_case(ext))
    {
        return None;
    }
    // `git@github.com:org/repo.git` is an scp-style remote, not a mailbox.
    let scp_remote = byte_at(text, whole.end()) == Some(b':')
        && byte_at(text, whole.end() + 1).is_some_and(|b| b.is_ascii_alphanumeric());
    let git_user = text[whole.start()..].starts_with("git@");
    if scp_remote || git_user {
        return None;
    }
    plain(whole.start(), whole.end(), "email")
}

fn phone<'a>(text: &str, start: usize, end: usize) -> Option<Hit<'a>> {
    if byte_before(text, start).is_some_and(|b| b.is_ascii_alphanumeric() || b == b'+') {
        return None;
    }
    let mut end = end;
    while text.as_bytes()[end - 1] == b')' && !text[start..end - 1].contains('(') {
        end -= 1;
    }
    if byte_at(text, end).is_some_and(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    let n_digits = text[start..end].bytes().filter(u8::is_ascii_digit).count();
    (8..=15)
        .contains(&n_digits)
        .then(|| plain(start, end, "phone"))
        .flatten()
}

fn ipv4<'a>(text: &str, start: usize, end: usize) -> Option<Hit<'a>> {
    if matches!(byte_before(text, start), Some(b'.')) || continues_with_dot_digit(text, end) {
        return None;
    }
    if checks::has_version_context(&text[..start]) {
        return None;
    }
    checks::is_ipv4_worth_redacting(&text[start..end])
        .then(|| plain(start, end, "ip"))
        .flatten()
}

fn ipv6<'a>(text: &str, start: usize, mut end: usize) -> Option<Hit<'a>> {
    let boundary = |b: u8| b.is_ascii_alphanumeric() || b == b':' || b == b'.' || b == b'_';
    if byte_before(text, start).is_some_and(boundary) {
        return None;
    }
    while end > start && text.as_bytes()[end - 1] == b'.' {
        end -= 1;
    }
    if byte_at(text, end).is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return None;
    }
    checks::is_ipv6_worth_redacting(&text[start..end])
        .then(|| plain(start, end, "ip"))
        .flatten()
}

fn user_path<'a>(caps: &Captures<'_>) -> Option<Hit<'a>> {
    let name = caps.get(1)?;
    if SHARED_HOMES.contains(&name.as_str()) {
        return None;
    }
    plain(name.start(), name.end(), "user")
}
