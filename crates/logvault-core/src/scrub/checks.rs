//! Validation behind the detectors: Luhn and card brand prefixes, IBAN country lengths and
//! mod-97, SSN area/group/serial rules, IP address context, base64. Each check exists to turn
//! a pattern that merely looks right into a finding that is right.

use std::net::{Ipv4Addr, Ipv6Addr};

/// Luhn checksum over ASCII digits.
pub fn luhn(digits: &[u8]) -> bool {
    let mut sum = 0u32;
    for (i, d) in digits.iter().rev().enumerate() {
        let mut v = u32::from(d - b'0');
        if i % 2 == 1 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    sum.is_multiple_of(10)
}

/// Whether `digits` has a known card brand's prefix and one of that brand's lengths.
pub fn card_brand_ok(digits: &[u8]) -> bool {
    let len = digits.len();
    let prefix = |n: usize| -> u32 {
        digits[..n.min(len)]
            .iter()
            .fold(0, |acc, d| acc * 10 + u32::from(d - b'0'))
    };
    let (p1, p2, p3, p4) = (prefix(1), prefix(2), prefix(3), prefix(4));
    let visa = p1 == 4 && matches!(len, 13 | 16 | 19);
    let mastercard = ((51..=55).contains(&p2) || (2221..=2720).contains(&p4)) && len == 16;
    let amex = matches!(p2, 34 | 37) && len == 15;
    let diners =
        ((300..=305).contains(&p3) || matches!(p2, 36 | 38 | 39)) && (14..=19).contains(&len);
    let discover =
        (p4 == 6011 || (644..=649).contains(&p3) || p2 == 65) && (16..=19).contains(&len);
    let jcb = (3528..=3589).contains(&p4) && (16..=19).contains(&len);
    let unionpay_mir = (p2 == 62 || (2200..=2204).contains(&p4)) && (16..=19).contains(&len);
    let maestro = (matches!(p2, 50 | 56..=58) || matches!(p4, 6304 | 6759 | 6760..=6769))
        && (12..=19).contains(&len);
    visa || mastercard || amex || diners || discover || jcb || unionpay_mir || maestro
}

/// A card number: brand prefix and length, Luhn, and not one digit repeated.
pub fn is_card(digits: &[u8]) -> bool {
    digits.iter().all(u8::is_ascii_digit)
        && card_brand_ok(digits)
        && luhn(digits)
        && digits.iter().any(|d| *d != digits[0])
}

/// IBAN lengths per country (SWIFT IBAN registry).
const IBAN_LENGTHS: &[(&str, usize)] = &[
    ("AD", 24),
    ("AE", 23),
    ("AL", 28),
    ("AT", 20),
    ("AZ", 28),
    ("BA", 20),
    ("BE", 16),
    ("BG", 22),
    ("BH", 22),
    ("BI", 27),
    ("BR", 29),
    ("BY", 28),
    ("CH", 21),
    ("CR", 22),
    ("CY", 28),
    ("CZ", 24),
    ("DE", 22),
    ("DJ", 27),
    ("DK", 18),
    ("DO", 28),
    ("EE", 20),
    ("EG", 29),
    ("ES", 24),
    ("FI", 18),
    ("FK", 18),
    ("FO", 18),
    ("FR", 27),
    ("GB", 22),
    ("GE", 22),
    ("GI", 23),
    ("GL", 18),
    ("GR", 27),
    ("GT", 28),
    ("HR", 21),
    ("HU", 28),
    ("IE", 22),
    ("IL", 23),
    ("IQ", 23),
    ("IS", 26),
    ("IT", 27),
    ("JO", 30),
    ("KW", 30),
    ("KZ", 20),
    ("LB", 28),
    ("LC", 32),
    ("LI", 21),
    ("LT", 20),
    ("LU", 20),
    ("LV", 21),
    ("LY", 25),
    ("MC", 27),
    ("MD", 24),
    ("ME", 22),
    ("MK", 19),
    ("MN", 20),
    ("MR", 27),
    ("MT", 31),
    ("MU", 30),
    ("NI", 28),
    ("NL", 18),
    ("NO", 15),
    ("OM", 23),
    ("PK", 24),
    ("PL", 28),
    ("PS", 29),
    ("PT", 25),
    ("QA", 29),
    ("RO", 24),
    ("RS", 22),
    ("RU", 33),
    ("SA", 24),
    ("SC", 31),
    ("SD", 18),
    ("SE", 24),
    ("SI", 19),
    ("SK", 24),
    ("SM", 27),
    ("SO", 23),
    ("ST", 25),
    ("SV", 28),
    ("TL", 23),
    ("TN", 24),
    ("TR", 26),
    ("UA", 29),
    ("VA", 22),
    ("VG", 24),
    ("XK", 20),
    ("YE", 30),
];

/// An IBAN without spaces, upper-case: known country, that country's length, mod-97 == 1.
pub fn is_iban(compact: &str) -> bool {
    let bytes = compact.as_bytes();
    if bytes.len() < 15 || !bytes.iter().all(u8::is_ascii_alphanumeric) {
        return false;
    }
    let country = &compact[..2];
    let Some((_, want)) = IBAN_LENGTHS.iter().find(|(code, _)| *code == country) else {
        return false;
    };
    if bytes.len() != *want || !bytes[2].is_ascii_digit() || !bytes[3].is_ascii_digit() {
        return false;
    }
    let mut remainder = 0u32;
    for &b in bytes[4..].iter().chain(&bytes[..4]) {
        let value = if b.is_ascii_digit() {
            u32::from(b - b'0')
        } else {
            u32::from(b - b'A') + 10
        };
        remainder = if value >= 10 {
            (remainder * 100 + value) % 97
        } else {
            (remainder * 10 + value) % 97
        };
    }
    remainder == 1
}

/// A US SSN's parts: area not 000, 666 or 900–999; group not 00; serial not 0000.
pub fn is_ssn(area: &str, group: &str, serial: &str) -> bool {
    let (Ok(area), Ok(group), Ok(serial)) = (
        area.parse::<u32>(),
        group.parse::<u32>(),
        serial.parse::<u32>(),
    ) else {
        return false;
    };
    area != 0 && area != 666 && area < 900 && group != 0 && serial != 0
}

/// Words that, right before a dotted quad, make it a version rather than an address
/// (`sdk 1.2.3.4`, `version: 10.0.0.1`, `OID 2.5.4.3`).
const VERSION_WORDS: &[&str] = &[
    "v",
    "ver",
    "version",
    "versions",
    "sdk",
    "build",
    "release",
    "rel",
    "firmware",
    "fw",
    "os",
    "app",
    "lib",
    "library",
    "ios",
    "android",
    "macos",
    "windows",
    "chrome",
    "firefox",
    "safari",
    "edge",
    "node",
    "python",
    "java",
    "ruby",
    "php",
    "dotnet",
    "oid",
    "upgrade",
    "upgraded",
    "downgrade",
    "downgraded",
    "patch",
    "update",
];

/// Whether the text before a dotted quad says it is a version: a product token
/// (`Chrome/1.2.3.4`, `lodash@1.2.3.4`, `ios-1.2.3.4`) or a version word before it, possibly
/// separated by spaces, `:` or `=` (`sdk 1.2.3.4`, `sdk_version=1.2.3.4`).
pub fn has_version_context(before: &str) -> bool {
    let bytes = before.as_bytes();
    if let Some(&last) = bytes.last() {
        let prev = bytes.len().checked_sub(2).map(|i| bytes[i]);
        let product_token =
            matches!(last, b'/' | b'-' | b'_') && prev.is_some_and(|p| p.is_ascii_alphabetic());
        if last == b'@' || product_token {
            return true;
        }
    }
    let trimmed = before.trim_end_matches([' ', '\t', ':', '=', '"', '\'', '(']);
    // The word starts after the last other character, which may be several bytes long.
    let word_start = trimmed
        .char_indices()
        .rfind(|&(_, c)| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        .map_or(0, |(i, c)| i + c.len_utf8());
    // Only the last segment counts: `sdk_version=` is a version, `client_ip=` is not.
    super::keys::segments(&trimmed[word_start..])
        .last()
        .is_some_and(|seg| VERSION_WORDS.contains(&seg.as_str()))
}

/// A dotted quad that is a real, routable-looking address: four octets ≤ 255 without leading
/// zeros; loopback and `0.0.0.0` are kept because they identify nobody.
pub fn is_ipv4_worth_redacting(text: &str) -> bool {
    let octets_ok = text
        .split('.')
        .all(|octet| octet.len() == 1 || !octet.starts_with('0'));
    match text.parse::<Ipv4Addr>() {
        Ok(addr) => octets_ok && !addr.is_loopback() && !addr.is_unspecified(),
        Err(_) => false,
    }
}

/// A colon-separated candidate that parses as IPv6, has a digit (so `dead::beef`, a C++ path,
/// is not one) and is neither loopback nor unspecified.
pub fn is_ipv6_worth_redacting(text: &str) -> bool {
    let hex_digits = text.bytes().filter(u8::is_ascii_hexdigit).count();
    match text.parse::<Ipv6Addr>() {
        Ok(addr) => {
            hex_digits >= 3
                && text.bytes().any(|b| b.is_ascii_digit())
                && !addr.is_loopback()
                && !addr.is_unspecified()
        }
        Err(_) => false,
    }
}

/// Standard or URL-safe base64, padding optional; `None` when malformed.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut buffer = 0u32;
    let mut bits = 0;
    for b in text.trim_end_matches('=').bytes() {
        let value = match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        };
        buffer = (buffer << 6) | u32::from(value);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cards() {
        let cases = [
            ("4111111111111111", true),
            ("4242424242424242", true),
            ("5555555555554444", true),
            ("2223003122003222", true),
            ("378282246310005", true),
            ("6011111111111117", true),
            ("3056930009020004", true),
            ("36227206271667", true),
            ("3566002020360505", true),
            ("6200000000000005", true),
            ("4111111111111112", false),
            ("1234567812345670", false),
            ("0000000000000000", false),
            ("4444444444444444", false),
        ];
        for (digits, want) in cases {
            assert_eq!(is_card(digits.as_bytes()), want, "{digits}");
        }
    }

    #[test]
    fn ibans() {
        let cases = [
            ("DE89370400440532013000", true),
            ("GB82WEST12345698765432", true),
            ("NL91ABNA0417164300", true),
            ("FR1420041010050500013M02606", true),
            ("NO9386011117947", true),
            ("DE89370400440532013001", false),
            ("XX89370400440532013000", false),
            ("DE8937040044053201300", false),
        ];
        for (iban, want) in cases {
            assert_eq!(is_iban(iban), want, "{iban}");
        }
    }

    #[test]
    fn ssns_and_ips() {
        assert!(is_ssn("123", "45", "6789"));
        assert!(!is_ssn("000", "45", "6789"));
        assert!(!is_ssn("666", "45", "6789"));
        assert!(!is_ssn("912", "45", "6789"));
        assert!(!is_ssn("123", "00", "6789"));
        assert!(!is_ssn("123", "45", "0000"));
        assert!(is_ipv4_worth_redacting("203.0.113.7"));
        assert!(!is_ipv4_worth_redacting("256.1.1.1"));
        assert!(!is_ipv4_worth_redacting("01.2.3.4"));
        assert!(!is_ipv4_worth_redacting("127.0.0.1"));
        assert!(is_ipv6_worth_redacting("2001:db8::1"));
        assert!(!is_ipv6_worth_redacting("dead::beef"));
        assert!(!is_ipv6_worth_redacting("::1"));
        assert!(has_version_context("sdk "));
        assert!(has_version_context("Chrome/"));
        assert!(has_version_context("sdk_version="));
        assert!(!has_version_context("connect to "));
        // Found by fuzzing: a multi-byte character before the word was cut in half.
        assert!(!has_version_context("\u{fffd}"));
        assert!(has_version_context("caf\u{e9} version "));
        assert!(!has_version_context("ver\u{fffd}sion"));
        assert_eq!(
            base64_decode("dXNlcjpwYXNz").as_deref(),
            Some(&b"user:pass"[..])
        );
    }
}
