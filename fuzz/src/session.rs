//! The session cookie and the sign-in form: `Cookie` headers (one per line of the input
//! before the last) and a form body (the last line).

use logvault_server::fuzzing;

/// Mode bit 0: session cookie or sign-in form.
pub fn run(data: &[u8]) {
    let Some((mode, rest)) = crate::split_mode(data) else {
        return;
    };
    let mut parts: Vec<&[u8]> = rest.split(|b| *b == b'\n').collect();
    let body = parts.pop().unwrap_or_default();
    if mode & 1 == 0 {
        parts.push(body);
        if let Some(token) = fuzzing::session_token(&parts) {
            assert_eq!(token.len(), 64);
            assert!(token.bytes().all(|b| b.is_ascii_hexdigit()), "{token:?}");
        }
    } else if let Some(username) = fuzzing::login_username(&parts, body) {
        assert!(username.chars().count() <= 128, "{username:?}");
    }
}
