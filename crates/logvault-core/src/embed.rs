//! The embedded Logs page: what a viewer token may show, how long it lives, and the partner
//! settings a framed view uses (the origins allowed to frame it, the partner's name and
//! colours). Every value that ends up in a header or a stylesheet is checked here, so none
//! can carry more than it says.

use std::time::Duration;

/// How long a viewer token stays exchangeable unless the minting request says otherwise.
pub const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(10 * 60);
/// The longest a viewer token may stay exchangeable.
pub const MAX_TOKEN_TTL: Duration = Duration::from_secs(60 * 60);
/// How long an embedded session lasts after its token was exchanged (a partner's page that
/// stays open longer mints a new token).
pub const SESSION_TTL: Duration = Duration::from_secs(60 * 60);
/// Most frame origins one partner may register.
pub const MAX_FRAME_ORIGINS: usize = 16;

/// The action of the audit event recording a minted viewer token.
pub const TOKEN_MINTED_ACTION: &str = "viewer_token.minted";
/// The action of the audit event recording a revoked viewer token.
pub const TOKEN_REVOKED_ACTION: &str = "viewer_token.revoked";
/// The action of the audit event recording a partner's changed embedding settings.
pub const SETTINGS_SET_ACTION: &str = "embed.settings_set";

/// What an embedded view may show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ViewGrant {
    /// The Audit Logs tab.
    pub audit: bool,
    /// The Threat Logs tab.
    pub threat: bool,
    /// The export links of the tabs it shows.
    pub export: bool,
}

impl ViewGrant {
    /// Whether the view may show events of `kind`.
    pub fn shows(self, kind: crate::EventKind) -> bool {
        match kind {
            crate::EventKind::Audit => self.audit,
            crate::EventKind::Threat => self.threat,
        }
    }
}

/// A new viewer token's id: `vt_` and 16 hex digits (public, used to list and revoke it).
pub fn new_token_id() -> Result<String, getrandom::Error> {
    let mut id = [0u8; 8];
    getrandom::fill(&mut id)?;
    Ok(format!("vt_{}", hex::encode(id)))
}

/// Whether `text` has the shape of a viewer token id.
pub fn is_token_id(text: &str) -> bool {
    text.strip_prefix("vt_").is_some_and(|hex| {
        hex.len() == 16 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    })
}

/// The lifetime a minting request asks for, in seconds: absent means the default; it must be
/// between 1 second and [`MAX_TOKEN_TTL`].
pub fn token_ttl(seconds: Option<u64>) -> Result<Duration, String> {
    match seconds {
        None => Ok(DEFAULT_TOKEN_TTL),
        Some(s) if (1..=MAX_TOKEN_TTL.as_secs()).contains(&s) => Ok(Duration::from_secs(s)),
        Some(_) => Err(format!(
            "ttl_seconds must be between 1 and {}",
            MAX_TOKEN_TTL.as_secs()
        )),
    }
}

/// An origin a partner may register to frame the view, in its canonical form: `https://host`
/// or `https://host:port` (a DNS name or IP address, lower-case, no path), or, for a partner
/// page on the same machine, `http://127.0.0.1:port`, `http://localhost:port` or
/// `http://[::1]:port`. Wildcards, paths, user info and other schemes are refused, so the
/// value can be written into `frame-ancestors` as it is.
pub fn parse_frame_origin(text: &str) -> Result<String, String> {
    let refuse = || {
        format!(
            "{text:?} is not an origin to frame from (https://host[:port], or http://127.0.0.1:port \
             for a page on the same machine)"
        )
    };
    let lower = text.trim().to_ascii_lowercase();
    let (scheme, rest) = lower.split_once("://").ok_or_else(refuse)?;
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let (host, port) = match rest.strip_prefix('[') {
        Some(v6) => {
            let (host, after) = v6.split_once(']').ok_or_else(refuse)?;
            let port = match after {
                "" => None,
                p => Some(p.strip_prefix(':').ok_or_else(refuse)?),
            };
            (format!("[{host}]"), port)
        }
        None => match rest.split_once(':') {
            Some((host, port)) => (host.to_string(), Some(port)),
            None => (rest.to_string(), None),
        },
    };
    if let Some(port) = port
        && (port.is_empty()
            || port.len() > 5
            || !port.bytes().all(|b| b.is_ascii_digit())
            || port.parse::<u32>().map_or(true, |p| p == 0 || p > 65_535))
    {
        return Err(refuse());
    }
    let dns_name = |host: &str| {
        !host.is_empty()
            && host.len() <= 253
            && host.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            })
    };
    let v6 = |host: &str| {
        host.strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .is_some_and(|h| h.parse::<std::net::Ipv6Addr>().is_ok())
    };
    let loopback = matches!(host.as_str(), "127.0.0.1" | "localhost" | "[::1]");
    let ok = match scheme {
        "https" => dns_name(&host) || v6(&host),
        "http" => loopback && port.is_some(),
        _ => false,
    };
    if !ok {
        return Err(refuse());
    }
    Ok(match port {
        Some(port) => format!("{scheme}://{host}:{port}"),
        None => format!("{scheme}://{host}"),
    })
}

/// A colour for the partner's branding: `#rrggbb` (six hex digits), returned lower-case.
/// Nothing else is accepted, so a colour written into a stylesheet cannot end its rule.
pub fn parse_colour(text: &str) -> Result<String, String> {
    let hex = text.strip_prefix('#').unwrap_or_default();
    if hex.len() == 6 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(format!("#{}", hex.to_ascii_lowercase()))
    } else {
        Err(format!("{text:?} is not a colour (#rrggbb)"))
    }
}

/// The display name of the partner's brand: 1 to 64 characters, no control characters.
pub fn parse_brand_name(text: &str) -> Result<String, String> {
    let trimmed = text.trim();
    let n = trimmed.chars().count();
    if (1..=64).contains(&n) && !trimmed.chars().any(char::is_control) {
        Ok(trimmed.to_string())
    } else {
        Err("the brand name is 1 to 64 characters without control characters".into())
    }
}

/// The end user a token names: `actor_id` 1 to 128 bytes, `actor_name` up to 128 characters,
/// neither with control characters.
pub fn check_actor(actor_id: &str, actor_name: Option<&str>) -> Result<(), String> {
    if actor_id.is_empty() || actor_id.len() > 128 || actor_id.chars().any(char::is_control) {
        return Err("actor_id is 1 to 128 bytes without control characters".into());
    }
    if let Some(name) = actor_name
        && (name.trim().is_empty()
            || name.chars().count() > 128
            || name.chars().any(char::is_control))
    {
        return Err("actor_name is 1 to 128 characters without control characters".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_origins_are_origins_and_nothing_more() {
        let cases = [
            (
                "https://portal.example.com",
                Some("https://portal.example.com"),
            ),
            (
                "HTTPS://Portal.Example.com:8443/",
                Some("https://portal.example.com:8443"),
            ),
            (
                "https://[2001:db8::1]:443",
                Some("https://[2001:db8::1]:443"),
            ),
            ("http://127.0.0.1:4000", Some("http://127.0.0.1:4000")),
            ("http://localhost:4000", Some("http://localhost:4000")),
            ("http://[::1]:4000", Some("http://[::1]:4000")),
            ("http://127.0.0.1", None),
            ("http://portal.example.com", None),
            ("https://*.example.com", None),
            ("https://portal.example.com/path", None),
            ("https://user@portal.example.com", None),
            ("https://portal.example.com:0", None),
            ("https://portal.example.com:70000", None),
            ("https://a.example; script-src *", None),
            ("https://a.example b.example", None),
            ("https://a.example\r\nx: y", None),
            ("'self'", None),
            ("javascript://x", None),
            ("https://", None),
            ("https://-a.example", None),
        ];
        for (text, expected) in cases {
            assert_eq!(
                parse_frame_origin(text).ok().as_deref(),
                expected,
                "{text:?}"
            );
        }
    }

    #[test]
    fn colours_are_six_hex_digits() {
        let cases = [
            ("#1A2b3C", Some("#1a2b3c")),
            ("#000000", Some("#000000")),
            ("1a2b3c", None),
            ("#123", None),
            ("#12345g", None),
            ("red", None),
            ("#123456;}body{display:none", None),
            ("", None),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_colour(text).ok().as_deref(), expected, "{text:?}");
        }
    }

    #[test]
    fn lifetimes_and_ids() {
        assert_eq!(token_ttl(None), Ok(DEFAULT_TOKEN_TTL));
        assert_eq!(token_ttl(Some(3600)), Ok(MAX_TOKEN_TTL));
        assert!(token_ttl(Some(3601)).is_err());
        assert!(token_ttl(Some(0)).is_err());
        let id = new_token_id().expect("random");
        assert!(is_token_id(&id), "{id}");
        assert!(!is_token_id("vt_0123"));
        assert!(!is_token_id("lv_0123456789abcdef"));
        assert!(check_actor("merchant-user-7", Some("Ada")).is_ok());
        assert!(check_actor("", None).is_err());
        assert!(check_actor("a\nb", None).is_err());
        assert!(check_actor("a", Some(" ")).is_err());
        assert!(parse_brand_name(" Acme Pay ").is_ok_and(|n| n == "Acme Pay"));
        assert!(parse_brand_name("").is_err());
    }
}
