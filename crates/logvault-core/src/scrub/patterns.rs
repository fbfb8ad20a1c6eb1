//! The detectors' candidate patterns, in priority order: when two findings overlap, the
//! earlier pattern wins. Each pattern only proposes; `detectors.rs` validates.

use regex::Regex;

use super::detectors::Rule;

/// Compiles a pattern with ASCII word boundaries: Unicode `\b` would push the regex engine
/// off its fast DFA path on non-ASCII text.
pub fn compile(pattern: &str) -> Result<Regex, regex::Error> {
    Regex::new(&pattern.replace(r"\b", r"(?-u:\b)"))
}

/// The built-in detectors' patterns, in priority order; custom rules go after `Jwt`.
pub const BUILTIN_BEFORE_CUSTOM: &[(Rule, &str)] = &[
    (
        Rule::PrivateKey,
        r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----(?:[\s\S]*?-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|[A-Za-z0-9+/=\s\\]*)",
    ),
    (Rule::LogvaultKey, r"\blv_[0-9a-f]{16}_([0-9a-f]{16,})\b"),
    (
        Rule::VendorKey,
        r"\b(?:(?:sk|rk)_(?:live|test)_[0-9A-Za-z]{10,}|whsec_[0-9A-Za-z+/=]{16,}|(?:AKIA|ASIA)[0-9A-Z]{16}|gh[pousr]_[0-9A-Za-z]{30,}|github_pat_[0-9A-Za-z_]{22,}|xox[abpors]-[0-9A-Za-z-]{10,}|AIza[0-9A-Za-z_-]{35}|SG\.[0-9A-Za-z_-]{16,}\.[0-9A-Za-z_-]{16,}|npm_[0-9A-Za-z]{36}|sk-(?:proj-)?[0-9A-Za-z_-]{32,})",
    ),
    (
        Rule::Jwt,
        r"\beyJ[0-9A-Za-z_-]{8,}\.eyJ[0-9A-Za-z_-]{4,}\.[0-9A-Za-z_-]*",
    ),
];

/// The built-in detectors that run after custom rules, in priority order.
pub const BUILTIN_AFTER_CUSTOM: &[(Rule, &str)] = &[
    (
        Rule::UrlCredentials,
        r#"\b[A-Za-z][A-Za-z0-9+.-]{1,20}://([^\s/?#@:"'<>\[\]]+:[^\s/?#@"'<>]+)@"#,
    ),
    (
        Rule::QueryParam,
        r#"(?:[?&;]|%3[Ff]|%26)([A-Za-z0-9_.\-\[\]]{1,64})(?:=|%3[Dd])((?:[^&#\s"'<>%]|%[014-9A-Fa-f][0-9A-Fa-f]|%3[0-9A-Ca-cEe]|%2[0-57-9A-Fa-f])+)"#,
    ),
    (
        Rule::AuthScheme,
        r"(?i)\b(bearer|basic)[ \t]+([0-9A-Za-z._~+/\-]+=*)",
    ),
    // A whole run of digit groups: the cards in it are picked out in `detectors::cards`.
    (Rule::Card, r"\b[0-9](?:[ \-]?[0-9]){11,}\b"),
    (
        Rule::Iban,
        r"(?i)\b[a-z]{2}[0-9]{2}(?:[ ]?[0-9a-z]){11,30}\b",
    ),
    (
        Rule::Ssn,
        r"\b([0-9]{3})([\- ])([0-9]{2})([\- ])([0-9]{4})\b",
    ),
    (
        Rule::CvvPin,
        r#"(?i)\b(cvv2?|cvc2?|csc|pin)(?:[ _-]?(?:code|number|no))?["']?[ \t]*[:=#]?[ \t]*["']?([0-9]{3,6})\b"#,
    ),
    (
        Rule::KeyValue,
        r#"(?i)\b((?:[A-Za-z0-9][A-Za-z0-9_.\-]*?)?(?:pass|pwd|secret|token|key|auth|cookie|session|sid|cvv|cvc|csc|security|pin|ssn|iban|pan|card|credential|signature|otp|jwt|bearer|private)[A-Za-z0-9_.\-]*)(?:\\?["'])?[ \t]*[:=][ \t]*(?:\\?["'])?([^\s"'&,;\\]+)"#,
    ),
    (
        Rule::Email,
        r"\b[A-Za-z0-9][A-Za-z0-9._%+\-]*(?:@|%40)[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?)*\.([A-Za-z]{2,24})\b",
    ),
    (Rule::Phone, r"\+[0-9]{1,3}(?:[ .\-]?\(?[0-9]{1,4}\)?){2,6}"),
    (
        Rule::Ipv6,
        r"(?:[0-9A-Fa-f]{1,4})?(?::(?:[0-9A-Fa-f]{1,4})?){2,7}(?:\.[0-9]{1,3}){0,3}",
    ),
    (Rule::Ipv4, r"\b(?:[0-9]{1,3}\.){3}[0-9]{1,3}\b"),
    (
        Rule::UserPath,
        r#"(?:/Users/|/home/|\b[A-Za-z]:\\{1,2}Users\\{1,2}|\\{1,2}Users\\{1,2})([^/\\\s"':*?<>|\[\]]+)"#,
    ),
];
