//! The cheap first look: one pass over the bytes notes the shapes detectors need (a long digit
//! run, a dotted quad, an `@`, two letters then two digits…), so clean text skips most regexes.
//! Detectors whose patterns start with a distinctive literal (`-----BEGIN`, `lv_`, `eyJ`) need
//! no gate: the regex engine's own literal search is already fast.

use super::detectors::Rule;

/// What one pass over a text found.
#[derive(Debug, Clone, Copy, Default)]
pub struct Signals {
    /// Most digits in a run where single spaces or dashes may separate digits.
    longest_digit_run: u32,
    /// A run of digits and dots with at least three dots.
    dotted_quad: bool,
    /// `::`, or a run of hex digits and colons with at least five colons.
    ipv6_shape: bool,
    /// Two letters then two digits at a word start: the head of an IBAN.
    iban_head: bool,
    /// `@`, or a `%40` that may encode one.
    at_sign: bool,
    /// `+` followed by a digit.
    plus_digit: bool,
    /// `=`, `:` or `%3D`: a `key=value` or `key: value` shape.
    assignment: bool,
    /// Bytes that the literal-led detectors need (`lv_`, `eyJ`, `-----BEGIN`, …).
    literals: Literals,
}

/// Cheap substring checks for the detectors whose patterns start with a literal.
#[derive(Debug, Clone, Copy, Default)]
struct Literals {
    private_key: bool,
    logvault_key: bool,
    vendor_key: bool,
    jwt: bool,
    auth_scheme: bool,
    cvv_pin: bool,
    user_path: bool,
}

const DIGIT: u8 = 1;
const SEPARATOR: u8 = 2;
const DOT: u8 = 3;
const COLON: u8 = 4;
const HEX_LETTER: u8 = 5;
const LETTER: u8 = 6;
/// `_`, `=`, `@`, `%`, `+`, `/`, `\`: bytes some detector hinges on.
const TRIGGER: u8 = 7;

/// Byte classes for the scan; 0 is "anything else".
const CLASS: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = match c {
            b'0'..=b'9' => DIGIT,
            b' ' | b'-' | b'\t' => SEPARATOR,
            b'.' => DOT,
            b':' => COLON,
            b'a'..=b'f' | b'A'..=b'F' => HEX_LETTER,
            b'g'..=b'z' | b'G'..=b'Z' => LETTER,
            b'_' | b'=' | b'@' | b'%' | b'+' | b'/' | b'\\' => TRIGGER,
            _ => 0,
        };
        b += 1;
    }
    table
};

/// Words right before `_` or `-` that start a vendor key (`sk_live_`, `xoxb-`, `github_pat_`).
const VENDOR_PREFIXES: &[&[u8]] = &[
    b"sk", b"rk", b"whsec", b"ghp", b"gho", b"ghu", b"ghs", b"ghr", b"github", b"npm", b"xoxa",
    b"xoxb", b"xoxp", b"xoxr", b"xoxo", b"xoxs",
];

/// Word starts (lower-cased) that may begin a CVV/PIN name, or an uppercase vendor key.
const CVV_PIN_STARTS: &[&[u8]] = &[b"cvv", b"cvc", b"csc", b"pin"];
const VENDOR_STARTS: &[&[u8]] = &[b"AKIA", b"ASIA", b"AIza", b"SG."];

/// The letters (at most 8) right before `end`.
fn word_before(bytes: &[u8], end: usize) -> &[u8] {
    let start = bytes[..end]
        .iter()
        .rev()
        .take(8)
        .take_while(|b| b.is_ascii_alphabetic())
        .count();
    &bytes[end - start..end]
}

fn starts_with_ignore_case(bytes: &[u8], prefix: &[u8]) -> bool {
    bytes.len() >= prefix.len() && bytes[..prefix.len()].eq_ignore_ascii_case(prefix)
}

impl Signals {
    /// Scans `text` once for shapes and trigger words.
    pub fn scan(text: &str) -> Signals {
        let bytes = text.as_bytes();
        let mut signals = Signals::default();
        let literals = &mut signals.literals;
        let (mut digits, mut pending_separator) = (0u32, false);
        let (mut dots, mut dot_run_digits) = (0u32, false);
        let (mut colons, mut dashes) = (0u32, 0u32);
        let mut prev_class = 0u8;
        for (i, &b) in bytes.iter().enumerate() {
            let class = CLASS[b as usize];
            if b == b'-' {
                dashes += 1;
                literals.private_key |= dashes >= 5;
            } else {
                dashes = 0;
            }
            match class {
                DIGIT => {
                    digits += 1;
                    pending_separator = false;
                    signals.longest_digit_run = signals.longest_digit_run.max(digits);
                    dot_run_digits = true;
                }
                SEPARATOR => {
                    if digits > 0 && !pending_separator {
                        pending_separator = true;
                    } else {
                        (digits, pending_separator) = (0, false);
                    }
                    (dots, dot_run_digits, colons) = (0, false, 0);
                    if b == b'-' {
                        literals.vendor_key |= VENDOR_PREFIXES.contains(&word_before(bytes, i));
                    } else {
                        let word = word_before(bytes, i);
                        literals.auth_scheme |= word.eq_ignore_ascii_case(b"bearer")
                            || word.eq_ignore_ascii_case(b"basic");
                    }
                }
                DOT => {
                    (digits, pending_separator) = (0, false);
                    if dot_run_digits {
                        dots += 1;
                        signals.dotted_quad |= dots >= 3;
                    }
                }
                COLON => {
                    (digits, pending_separator) = (0, false);
                    (dots, dot_run_digits) = (0, false);
                    colons += 1;
                    signals.ipv6_shape |= colons >= 5 || prev_class == COLON;
                    signals.assignment = true;
                }
                HEX_LETTER | LETTER => {
                    (digits, pending_separator) = (0, false);
                    (dots, dot_run_digits) = (0, false);
                    if class == LETTER {
                        colons = 0;
                    }
                    if !matches!(prev_class, DIGIT | HEX_LETTER | LETTER) {
                        let rest = &bytes[i..];
                        signals.iban_head |= rest.len() > 3
                            && rest[1].is_ascii_alphabetic()
                            && rest[2].is_ascii_digit()
                            && rest[3].is_ascii_digit();
                        literals.cvv_pin |= CVV_PIN_STARTS
                            .iter()
                            .any(|start| starts_with_ignore_case(rest, start));
                        literals.vendor_key |=
                            VENDOR_STARTS.iter().any(|start| rest.starts_with(start));
                        literals.jwt |= rest.starts_with(b"eyJ");
                    }
                }
                TRIGGER => {
                    (digits, pending_separator) = (0, false);
                    (dots, dot_run_digits, colons) = (0, false, 0);
                    let rest = &bytes[i + 1..];
                    match b {
                        b'_' => {
                            let word = word_before(bytes, i);
                            literals.logvault_key |= word == b"lv";
                            literals.vendor_key |= VENDOR_PREFIXES.contains(&word);
                        }
                        b'=' => signals.assignment = true,
                        b'@' => signals.at_sign = true,
                        b'%' => {
                            signals.at_sign |= rest.starts_with(b"40");
                            signals.assignment |= starts_with_ignore_case(rest, b"3d");
                        }
                        b'+' => signals.plus_digit |= rest.first().is_some_and(u8::is_ascii_digit),
                        _ => {
                            literals.user_path |=
                                rest.starts_with(b"Users") || rest.starts_with(b"home/");
                        }
                    }
                }
                _ => {
                    (digits, pending_separator) = (0, false);
                    (dots, dot_run_digits, colons) = (0, false, 0);
                }
            }
            prev_class = class;
        }
        signals
    }

    /// Whether `rule` could find anything in the scanned text.
    pub fn may_match(&self, rule: &Rule) -> bool {
        let literals = &self.literals;
        match rule {
            Rule::Card => self.longest_digit_run >= 12,
            Rule::Ssn => self.longest_digit_run >= 9,
            Rule::Iban => self.iban_head,
            Rule::Email | Rule::UrlCredentials => self.at_sign,
            Rule::Phone => self.plus_digit,
            Rule::Ipv4 => self.dotted_quad,
            Rule::Ipv6 => self.ipv6_shape,
            Rule::QueryParam | Rule::KeyValue => self.assignment,
            Rule::CvvPin => literals.cvv_pin,
            Rule::PrivateKey => literals.private_key,
            Rule::LogvaultKey => literals.logvault_key,
            Rule::VendorKey => literals.vendor_key,
            Rule::Jwt => literals.jwt,
            Rule::AuthScheme => literals.auth_scheme,
            Rule::UserPath => literals.user_path,
            Rule::Custom(_) => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals() {
        let clean = Signals::scan("request timed out after 30s (req_8f3b, sdk 4.2.1)");
        for rule in [Rule::Card, Rule::Ssn, Rule::Iban, Rule::Email, Rule::Ipv4] {
            assert!(!clean.may_match(&rule), "{rule:?}");
        }
        let dirty = Signals::scan("4111 1111 1111 1111 de89 3704 a%40b.c 1.2.3.4 fe80::1 +44");
        assert!(!Signals::scan("at 10:00:00").may_match(&Rule::Ipv6));
        assert!(Signals::scan("2001:0db8:85a3:0000:0000:8a2e:0370:7334").may_match(&Rule::Ipv6));
        for rule in [
            Rule::Card,
            Rule::Ssn,
            Rule::Iban,
            Rule::Email,
            Rule::Ipv4,
            Rule::Ipv6,
            Rule::Phone,
        ] {
            assert!(dirty.may_match(&rule), "{rule:?}");
        }
    }
}
