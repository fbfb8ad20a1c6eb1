//! Templates (minijinja, compiled into the binary, auto-escaped because every name ends in
//! `.html`) and the small formatting helpers the pages share.

use std::sync::OnceLock;

use logvault_core::Micros;
use minijinja::Environment;
use serde::Serialize;

use super::WebError;

const TEMPLATES: [(&str, &str); 11] = [
    ("layout.html", include_str!("templates/layout.html")),
    ("login.html", include_str!("templates/login.html")),
    ("password.html", include_str!("templates/password.html")),
    ("error.html", include_str!("templates/error.html")),
    ("overview.html", include_str!("templates/overview.html")),
    ("logs.html", include_str!("templates/logs.html")),
    ("filters.html", include_str!("templates/filters.html")),
    ("rows.html", include_str!("templates/rows.html")),
    ("detail.html", include_str!("templates/detail.html")),
    ("trends.html", include_str!("templates/trends.html")),
    ("problems.html", include_str!("templates/problems.html")),
];

fn environment() -> Result<&'static Environment<'static>, WebError> {
    static ENVIRONMENT: OnceLock<Result<Environment<'static>, String>> = OnceLock::new();
    ENVIRONMENT
        .get_or_init(|| {
            let mut environment = Environment::new();
            for (name, source) in TEMPLATES {
                environment
                    .add_template(name, source)
                    .map_err(|e| format!("{name}: {e:#}"))?;
            }
            Ok(environment)
        })
        .as_ref()
        .map_err(|e| WebError::Internal(format!("templates: {e}")))
}

/// Renders template `name` with `context`.
pub(crate) fn render(name: &str, context: impl Serialize) -> Result<String, WebError> {
    Ok(environment()?.get_template(name)?.render(context)?)
}

/// What the layout shows around every page: who is signed in, the CSRF token of the
/// sign-out form, and which tab is active.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Chrome {
    pub username: String,
    pub role: &'static str,
    pub account_id: String,
    pub account_name: String,
    pub csrf_token: String,
    pub active: &'static str,
    /// The compact layout of an embedded view.
    pub embed: Option<super::embed::EmbedChrome>,
}

/// `2026-11-25 10:00:00` (UTC; the page's script adds the viewer's local time on hover).
pub(crate) fn short_time(at: Micros) -> String {
    let text = at.to_rfc3339();
    match (text.get(..10), text.get(11..19)) {
        (Some(date), Some(time)) => format!("{date} {time}"),
        _ => text,
    }
}

/// Percent-encodes one URL component (path segment or query value).
pub(crate) fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// `a=1&b=2` from pairs, values encoded.
pub(crate) fn query_string<'a>(pairs: impl IntoIterator<Item = (&'a str, String)>) -> String {
    pairs
        .into_iter()
        .map(|(name, value)| format!("{name}={}", encode(&value)))
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_compiles() {
        assert!(environment().is_ok(), "{:?}", environment().err());
    }

    #[test]
    fn times_and_encodings() {
        let cases = [
            ("2026-11-25T10:00:00Z", "2026-11-25 10:00:00"),
            ("1970-01-01T00:00:00.5Z", "1970-01-01 00:00:00"),
        ];
        for (input, expected) in cases {
            let at = Micros::parse_rfc3339(input).expect("time");
            assert_eq!(short_time(at), expected);
        }
        assert_eq!(encode("a b/c?&é"), "a%20b%2Fc%3F%26%C3%A9");
        assert_eq!(
            query_string([("q", "x y".to_string()), ("ip", "10.0.0.0/8".into())]),
            "q=x%20y&ip=10.0.0.0%2F8"
        );
    }
}
