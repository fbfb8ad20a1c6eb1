//! The browser-side defences every page and asset carries: a Content-Security-Policy that
//! allows only the service's own origin (no inline script or style), `nosniff`, a referrer
//! policy that keeps filter URLs inside the site, framing allowed only to the ancestors the
//! deployment names (none by default), and over TLS, Strict-Transport-Security.

use std::str::FromStr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;

use super::session::over_tls;

/// Who may show the Logs page in a frame: CSP `frame-ancestors` sources, `'none'` unless
/// the deployment says otherwise (`--frame-ancestors "'self' https://portal.example.com"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameAncestors(String);

impl Default for FrameAncestors {
    fn default() -> Self {
        FrameAncestors("'none'".into())
    }
}

impl FromStr for FrameAncestors {
    type Err = String;

    /// Space-separated CSP sources: `'none'` alone, `'self'`, schemes (`https:`) and hosts
    /// (`https://*.example.com`, `portal.example.com:8443`). Anything else is refused, so no
    /// value can smuggle another directive into the policy.
    fn from_str(text: &str) -> Result<Self, String> {
        let sources: Vec<&str> = text.split_whitespace().collect();
        let host_source = |source: &str| {
            !source.is_empty()
                && source
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._:/*".contains(&b))
        };
        let bad = sources
            .iter()
            .find(|source| !matches!(**source, "'self'" | "'none'") && !host_source(source));
        if let Some(bad) = bad {
            return Err(format!(
                "{bad:?} is not a frame-ancestors source ('self', https:, https://host.example)"
            ));
        }
        if sources.is_empty() || (sources.contains(&"'none'") && sources.len() > 1) {
            return Err("frame-ancestors is 'none' or a list of sources without 'none'".into());
        }
        Ok(FrameAncestors(sources.join(" ")))
    }
}

/// The headers, built once from the configuration.
#[derive(Debug)]
pub(crate) struct SecurityHeaders {
    fixed: Vec<(HeaderName, HeaderValue)>,
}

/// The policy of every page but its `frame-ancestors` sources.
const POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; form-action 'self'; base-uri 'none'; object-src 'none'; \
     frame-ancestors";

/// The policy with `frame_ancestors` sources (already checked).
fn policy(frame_ancestors: &str) -> String {
    format!("{POLICY} {frame_ancestors}")
}

impl SecurityHeaders {
    pub(crate) fn new(frame_ancestors: &FrameAncestors) -> Arc<Self> {
        // Sources were checked by `FromStr`, so the policy is always a valid header value.
        let mut fixed = vec![
            (header::CONTENT_SECURITY_POLICY, policy(&frame_ancestors.0)),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".into()),
            (header::REFERRER_POLICY, "same-origin".into()),
            (
                HeaderName::from_static("cross-origin-opener-policy"),
                "same-origin".into(),
            ),
        ];
        // The older header for browsers without frame-ancestors; it cannot name other sites,
        // so it is sent only when it says the same as the policy.
        match frame_ancestors.0.as_str() {
            "'none'" => fixed.push((header::X_FRAME_OPTIONS, "DENY".into())),
            "'self'" => fixed.push((header::X_FRAME_OPTIONS, "SAMEORIGIN".into())),
            _ => {}
        }
        let fixed = fixed
            .into_iter()
            .filter_map(|(name, value)| Some((name, HeaderValue::from_str(&value).ok()?)))
            .collect();
        Arc::new(SecurityHeaders { fixed })
    }
}

/// A year: once a browser has seen the page over HTTPS, it never tries plain HTTP for it
/// again (not `includeSubDomains`: other services of the domain are not ours to decide).
const STRICT_TRANSPORT_SECURITY: &str = "max-age=31536000";

pub(crate) async fn add(
    State(headers): State<Arc<SecurityHeaders>>,
    request: Request,
    next: Next,
) -> Response {
    let tls = over_tls(request.headers());
    let mut response = next.run(request).await;
    let map = response.headers_mut();
    for (name, value) in &headers.fixed {
        map.insert(name.clone(), value.clone());
    }
    // An embedded view is framed by the origins its partner registered, not the deployment's.
    let frame = response
        .extensions()
        .get::<super::embed::FrameOverride>()
        .map(|frame| frame.0.clone());
    let map = response.headers_mut();
    if let Some(frame) = frame {
        map.remove(header::X_FRAME_OPTIONS);
        match HeaderValue::from_str(&policy(&frame)) {
            Ok(value) => {
                map.insert(header::CONTENT_SECURITY_POLICY, value);
            }
            Err(_) => {
                map.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
            }
        }
        if frame == "'none'" {
            map.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        }
    }
    if tls {
        map.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static(STRICT_TRANSPORT_SECURITY),
        );
    }
    // Pages show logs: keep them out of shared and back-forward caches. Static assets are
    // versioned by the binary and may be cached briefly.
    if !map.contains_key(header::CACHE_CONTROL) {
        map.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_ancestors_accept_sources_and_refuse_injection() {
        let cases = [
            ("'none'", Some("'none'")),
            ("'self'", Some("'self'")),
            (
                " 'self'   https://portal.example.com ",
                Some("'self' https://portal.example.com"),
            ),
            (
                "https://*.example.com:8443",
                Some("https://*.example.com:8443"),
            ),
            ("https:", Some("https:")),
            ("", None),
            ("'none' 'self'", None),
            ("'unsafe-inline'", None),
            ("https://a.example; script-src *", None),
            ("https://a.example,https://b.example", None),
            ("https://a.example\r\nSet-Cookie: x=1", None),
        ];
        for (text, expected) in cases {
            let parsed = text.parse::<FrameAncestors>().ok();
            assert_eq!(parsed.as_ref().map(|f| f.0.as_str()), expected, "{text:?}");
        }
    }
}
