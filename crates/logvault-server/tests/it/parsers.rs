//! Property tests of the HTTP layer's parsers of outside input, each the fast mirror of a
//! fuzz target in `fuzz/` (see docs/HARDENING.md): query strings of the API and the Logs
//! page, cursors, the `ip=` filter, the session cookie and the sign-in form. Inputs the
//! fuzzer found are kept as cases.

use logvault_core::{EventKind, Micros};
use logvault_server::fuzzing;
use proptest::prelude::*;
use proptest::test_runner::Config;

fn config() -> Config {
    Config {
        cases: 256,
        failure_persistence: None,
        ..Config::default()
    }
}

/// A query-string value: anything, percent-escapes and the values the parsers know.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9%+:./_ -]{0,20}",
        Just("2026-11-25T10:00:00Z".to_string()),
        Just("0000-01-01T00:00:00Z".to_string()),
        Just("9999-12-31T23:59:59.999999Z".to_string()),
        Just("c00000000000004d2".to_string()),
        Just("1000".to_string()),
        Just("failure".to_string()),
        Just("203.0.113.0/24".to_string()),
        Just("day".to_string()),
        Just("version".to_string()),
    ]
}

/// Query strings of known and unknown parameters.
fn query_string() -> impl Strategy<Value = String> {
    let name = prop::sample::select(vec![
        "account_id",
        "from",
        "to",
        "q",
        "limit",
        "cursor",
        "action",
        "outcome",
        "actor_id",
        "ip",
        "request_id",
        "error_type",
        "source",
        "version",
        "environment",
        "group_by",
        "interval",
        "range",
        "format",
        "other",
    ]);
    prop::collection::vec((name, value()), 0..6).prop_map(|pairs| {
        pairs
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("&")
    })
}

/// Cursors the fuzzer found accepted though the service never writes them.
const FOREIGN_CURSORS: [&str; 3] = [
    "c1A111111111119c8",
    "c00000000000004D2",
    "c+0000000000004d2",
];

#[test]
fn cursors_found_by_fuzzing_are_refused() {
    for cursor in FOREIGN_CURSORS {
        assert_eq!(fuzzing::decode_cursor(cursor), None, "{cursor}");
        let query = format!("cursor={}", cursor.replace('+', "%2B"));
        assert!(
            fuzzing::list_query(EventKind::Audit, &query).is_err(),
            "{query}"
        );
        assert!(
            fuzzing::page_query(EventKind::Audit, &query, Micros(0)).is_err(),
            "{query}"
        );
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn a_list_query_is_refused_or_within_bounds(raw in query_string(), threat in any::<bool>()) {
        let kind = if threat { EventKind::Threat } else { EventKind::Audit };
        if let Ok(query) = fuzzing::list_query(kind, &raw) {
            prop_assert!((1..=1000).contains(&query.limit));
            prop_assert!(query.text.as_ref().is_none_or(|q| !q.is_empty() && q.len() <= 256));
            if let (Some(from), Some(to)) = (query.from, query.to) {
                prop_assert!(from <= to);
            }
        }
        if let Ok(query) = fuzzing::page_query(kind, &raw, Micros::now())
            && let (Some(from), Some(to)) = (query.from, query.to)
        {
            prop_assert!(from <= to);
        }
    }

    #[test]
    fn a_trends_query_is_refused_or_ordered(raw in query_string()) {
        if let Ok(query) = fuzzing::trend_query(&raw) {
            prop_assert!(query.from <= query.to);
        }
    }

    #[test]
    fn every_position_survives_its_cursor(seq in any::<u64>()) {
        prop_assert_eq!(fuzzing::decode_cursor(&fuzzing::encode_cursor(seq)), Some(seq));
    }

    #[test]
    fn a_cursor_decodes_only_as_written(
        cursor in prop_oneof!["c[0-9a-fA-F+-]{16}", "c?[0-9a-f]{0,18}", "\\PC{0,20}"],
    ) {
        if let Some(seq) = fuzzing::decode_cursor(&cursor) {
            prop_assert_eq!(fuzzing::encode_cursor(seq), cursor);
        }
    }

    #[test]
    fn an_address_filter_is_a_range_holding_its_address(
        octets in any::<[u8; 4]>(),
        prefix in 0..=40u32,
        text in "[0-9a-f:./]{0,24}",
    ) {
        let address = std::net::Ipv4Addr::from(octets);
        if let Ok(range) = fuzzing::ip_range(&format!("{address}/{prefix}")) {
            prop_assert!(prefix <= 32);
            let mapped = address.to_ipv6_mapped().octets();
            prop_assert!(range.low <= mapped && mapped <= range.high);
        } else {
            prop_assert!(prefix > 32);
        }
        if let Ok(range) = fuzzing::ip_range(&text) {
            prop_assert!(range.low <= range.high);
        }
    }

    #[test]
    fn only_a_token_shaped_session_cookie_is_looked_up(
        headers in prop::collection::vec("[ -~]{0,40}(logvault_session=[0-9a-fA-F]{62,66})?[ -~]{0,10}", 0..3),
    ) {
        let headers: Vec<&[u8]> = headers.iter().map(|h| h.as_bytes()).collect();
        if let Some(token) = fuzzing::session_token(&headers) {
            prop_assert_eq!(token.len(), 64);
            prop_assert!(token.bytes().all(|b| b.is_ascii_hexdigit()));
        }
    }

    #[test]
    fn a_sign_in_form_needs_its_cookie(
        token in "[0-9a-f]{64}",
        other in "[0-9a-f]{64}",
        username in "[ -~]{0,200}",
        body in "[ -~]{0,80}",
    ) {
        let cookie = format!("logvault_login_csrf={token}");
        let encoded: String = form_urlencode(&username);
        let form = format!("csrf={token}&username={encoded}&password=x");
        let read = fuzzing::login_username(&[cookie.as_bytes()], form.as_bytes());
        let expected: String = username.trim().chars().take(128).collect();
        prop_assert_eq!(read, Some(expected));
        let forged = format!("csrf={other}&username={encoded}");
        prop_assert_eq!(fuzzing::login_username(&[cookie.as_bytes()], forged.as_bytes()), None);
        prop_assert_eq!(fuzzing::login_username(&[], form.as_bytes()), None);
        if let Some(name) = fuzzing::login_username(&[cookie.as_bytes()], body.as_bytes()) {
            prop_assert!(name.chars().count() <= 128);
        }
    }
}

/// `application/x-www-form-urlencoded` of `text`: every byte but letters and digits escaped.
fn form_urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
