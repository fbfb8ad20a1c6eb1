//! Sensitive key names: which field names (`api_key`, `clientSecret`, `x-api-key`, …) mark their
//! value as a secret, matched on whole name segments so `author` or `max_tokens` are not wiped.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// A built-in sensitive name: a run of segments and the kind its value is redacted as.
/// Single-word spellings (`apikey`, `sessionid`) are listed because people write them so.
const SENSITIVE_NAMES: &[(&[&str], &str)] = &[
    (&["password"], "password"),
    (&["passwords"], "password"),
    (&["passwd"], "password"),
    (&["pwd"], "password"),
    (&["passphrase"], "password"),
    (&["secret"], "secret"),
    (&["secrets"], "secret"),
    (&["signature"], "secret"),
    (&["credential"], "secret"),
    (&["credentials"], "secret"),
    (&["otp"], "secret"),
    (&["api", "key"], "api_key"),
    (&["apikey"], "api_key"),
    (&["access", "key"], "api_key"),
    (&["accesskey"], "api_key"),
    (&["secret", "key"], "secret"),
    (&["secretkey"], "secret"),
    (&["private", "key"], "private_key"),
    (&["privatekey"], "private_key"),
    (&["signing", "key"], "private_key"),
    (&["encryption", "key"], "secret"),
    (&["master", "key"], "secret"),
    (&["token"], "token"),
    (&["accesstoken"], "token"),
    (&["refreshtoken"], "token"),
    (&["authtoken"], "token"),
    (&["jwt"], "jwt"),
    (&["bearer"], "token"),
    (&["authorization"], "token"),
    (&["cookie"], "cookie"),
    (&["cookies"], "cookie"),
    (&["setcookie"], "cookie"),
    (&["session"], "session"),
    (&["sessionid"], "session"),
    (&["sid"], "session"),
    (&["card", "number"], "card"),
    (&["cardnumber"], "card"),
    (&["card", "num"], "card"),
    (&["cc", "number"], "card"),
    (&["credit", "card"], "card"),
    (&["creditcard"], "card"),
    (&["pan"], "card"),
    (&["cvv"], "cvv"),
    (&["cvv2"], "cvv"),
    (&["cvc"], "cvv"),
    (&["cvc2"], "cvv"),
    (&["csc"], "cvv"),
    (&["security", "code"], "cvv"),
    (&["pin"], "pin"),
    (&["ssn"], "ssn"),
    (&["iban"], "iban"),
    (&["account", "number"], "account_number"),
];

/// A name whose first segment is one of these describes a quantity or a flag, not a secret
/// (`max_tokens`, `is_pin_set`, `n_sessions`).
const PREFIX_QUALIFIERS: &[&str] = &["max", "min", "num", "n", "total", "is", "has"];

/// A name whose last segment is one of these describes the secret rather than holding it
/// (`session_timeout_ms`, `token_count`, `token_type`, `password_changed_at`, `cvc_check`).
const SUFFIX_QUALIFIERS: &[&str] = &[
    "count",
    "counts",
    "total",
    "limit",
    "max",
    "min",
    "timeout",
    "ttl",
    "ms",
    "sec",
    "secs",
    "seconds",
    "minutes",
    "duration",
    "expires",
    "expiry",
    "expiration",
    "at",
    "length",
    "len",
    "size",
    "type",
    "kind",
    "name",
    "policy",
    "enabled",
    "disabled",
    "required",
    "set",
    "present",
    "valid",
    "strength",
    "changed",
    "updated",
    "created",
    "rotated",
    "url",
    "uri",
    "endpoint",
    "format",
    "version",
    "algorithm",
    "alg",
    "scope",
    "scopes",
    "status",
    "error",
    "attempts",
    "retries",
    "check",
    "checks",
    "result",
    "brand",
    "last4",
    "country",
];

/// Splits a field name into lower-case segments on `_`, `-`, `.`, spaces and camelCase
/// boundaries: `XApiKey` → `x`, `api`, `key`; `client_secret` → `client`, `secret`.
pub fn segments(name: &str) -> Vec<String> {
    let chars: Vec<char> = name.chars().collect();
    let mut out = Vec::new();
    let mut current = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if !c.is_alphanumeric() {
            if !current.is_empty() {
                out.push(std::mem::take(&mut current));
            }
            continue;
        }
        if c.is_uppercase() && !current.is_empty() {
            let prev = chars[i - 1];
            let next_is_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
            if prev.is_lowercase()
                || prev.is_ascii_digit()
                || (prev.is_uppercase() && next_is_lower)
            {
                out.push(std::mem::take(&mut current));
            }
        }
        current.extend(c.to_lowercase());
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// The rules for one scrubber: built-in names plus configured extra and allow-listed names.
#[derive(Debug, Clone, Default)]
pub struct KeyRules {
    extra: Vec<Vec<String>>,
    allowed: Vec<String>,
    /// Answers already worked out, by name: the same few field names come in every event,
    /// and splitting a name and matching its segments costs far more than a lookup.
    memo: Arc<RwLock<HashMap<Box<str>, Option<&'static str>>>>,
}

/// How many names [`KeyRules`] remembers; past that, new names are worked out each time, so a
/// client sending ever-new names cannot grow it.
const MEMO_NAMES: usize = 4096;

impl KeyRules {
    /// Rules with the configured extras; names are compared by their segments.
    pub fn new(extra: &[String], allowed: &[String]) -> Self {
        KeyRules {
            extra: extra.iter().map(|name| segments(name)).collect(),
            allowed: allowed
                .iter()
                .map(|name| segments(name).join("_"))
                .collect(),
            memo: Arc::default(),
        }
    }

    /// The kind a value under `name` is redacted as, or `None` when the name is not sensitive.
    pub fn sensitive_kind(&self, name: &str) -> Option<&'static str> {
        if let Some(known) = self
            .memo
            .read()
            .ok()
            .and_then(|memo| memo.get(name).copied())
        {
            return known;
        }
        let kind = self.work_out(name);
        if let Ok(mut memo) = self.memo.write()
            && memo.len() < MEMO_NAMES
        {
            memo.insert(name.into(), kind);
        }
        kind
    }

    fn work_out(&self, name: &str) -> Option<&'static str> {
        let segs = segments(name);
        let (first, last) = (segs.first()?, segs.last()?);
        if !self.allowed.is_empty() && self.allowed.contains(&segs.join("_")) {
            return None;
        }
        if self.extra.iter().any(|extra| contains_run(&segs, extra)) {
            return Some("secret");
        }
        if PREFIX_QUALIFIERS.contains(&first.as_str()) || SUFFIX_QUALIFIERS.contains(&last.as_str())
        {
            return None;
        }
        // The rightmost sensitive run names the value: `password_reset_token` holds a token.
        SENSITIVE_NAMES
            .iter()
            .filter_map(|(run, kind)| run_end(&segs, run).map(|end| (end, *kind)))
            .max_by_key(|(end, _)| *end)
            .map(|(_, kind)| kind)
    }
}

fn contains_run<S: AsRef<str>>(segs: &[String], run: &[S]) -> bool {
    run_end(segs, run).is_some()
}

/// Where the last occurrence of `run` in `segs` ends.
fn run_end<S: AsRef<str>>(segs: &[String], run: &[S]) -> Option<usize> {
    if run.is_empty() {
        return None;
    }
    segs.windows(run.len())
        .rposition(|window| {
            window
                .iter()
                .zip(run)
                .all(|(seg, want)| seg == want.as_ref())
        })
        .map(|start| start + run.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_names() {
        let cases = [
            ("api_key", "api key"),
            ("apiKey", "api key"),
            ("XApiKey", "x api key"),
            ("APIKey", "api key"),
            ("x-api-key", "x api key"),
            ("Set-Cookie", "set cookie"),
            ("cvv2", "cvv2"),
            ("user.password", "user password"),
        ];
        for (name, want) in cases {
            assert_eq!(segments(name).join(" "), want, "{name}");
        }
    }

    #[test]
    fn sensitive_names() {
        let rules = KeyRules::new(&["tax_id".into()], &["session_id".into()]);
        let cases = [
            ("api_key", Some("api_key")),
            ("apiKey", Some("api_key")),
            ("x-api-key", Some("api_key")),
            ("client_secret", Some("secret")),
            ("clientSecret", Some("secret")),
            ("password", Some("password")),
            ("passwd", Some("password")),
            ("Cookie", Some("cookie")),
            ("set-cookie", Some("cookie")),
            ("session", Some("session")),
            ("Authorization", Some("token")),
            ("refresh_token", Some("token")),
            ("password_reset_token", Some("token")),
            ("card_number", Some("card")),
            ("cardNumber", Some("card")),
            ("pan", Some("card")),
            ("cvv", Some("cvv")),
            ("cvc", Some("cvv")),
            ("pin", Some("pin")),
            ("ssn", Some("ssn")),
            ("iban", Some("iban")),
            ("private_key", Some("private_key")),
            ("customer_tax_id", Some("secret")),
            ("session_id", None),
            ("author", None),
            ("max_tokens", None),
            ("session_timeout_ms", None),
            ("token_count", None),
            ("tokenizer", None),
            ("pinned", None),
            ("token_type", None),
            ("password_changed_at", None),
            ("cvc_check", None),
            ("is_pin_set", None),
            ("key", None),
            ("span", None),
            ("", None),
        ];
        // Twice: the second answer comes from the memo and must be the same.
        for _ in 0..2 {
            for (name, want) in cases {
                assert_eq!(rules.sensitive_kind(name), want, "{name}");
            }
        }
    }
}
