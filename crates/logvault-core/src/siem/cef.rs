//! Events as ArcSight Common Event Format lines:
//! `CEF:0|logvault|logvault|VERSION|SIGNATURE|NAME|SEVERITY|key=value …`.
//!
//! Header fields escape `\` and `|`; extension values escape `\`, `=` and line breaks (`\n`,
//! `\r`), so a line never breaks and a value never ends early whatever an event holds.
//! Extension keys are fixed names of the CEF dictionary; custom strings (`csN`) carry their
//! labels (`csNLabel`).

use std::fmt::Write;

use serde_json::Value;

use super::{Fields, PRODUCT, PRODUCT_VERSION};
use crate::{EventKind, StoredEvent};

/// The longest `Name` header field: the start of a threat event's message.
const NAME_CHARS: usize = 128;

/// The event as one CEF line, without a line end.
pub fn line(event: &StoredEvent) -> String {
    let fields = Fields::of(event);
    let mut extension = Extension::default();
    extension.put("rt", Some(event.received_at.0.div_euclid(1000).to_string()));
    extension.put("externalId", Some(event.event_id.clone()));
    extension.labelled("cs1", "account", Some(event.account_id.clone()));
    extension.labelled("cn1", "seq", Some(event.seq.to_string()));
    let (signature, name, severity) = match event.kind {
        EventKind::Audit => {
            let action = fields.text("/action").unwrap_or_default();
            let outcome = fields.text("/outcome").unwrap_or_default();
            extension.put("act", Some(action.clone()));
            extension.put("outcome", Some(outcome.clone()));
            extension.put("reason", fields.text("/reason"));
            extension.put("suid", fields.text("/actor/id"));
            extension.put("suser", fields.text("/actor/name"));
            extension.labelled("cs2", "actor_type", fields.text("/actor/type"));
            if let Some(ip) = fields.text("/origin/ip") {
                extension.put(if ip.contains(':') { "c6a2" } else { "src" }, Some(ip));
            }
            extension.put(
                "requestClientApplication",
                fields.text("/origin/user_agent"),
            );
            extension.labelled("cs3", "request_id", fields.text("/request_id"));
            let severity = if outcome == "failure" { 5 } else { 3 };
            (action.clone(), format!("{action} {outcome}"), severity)
        }
        EventKind::Threat => {
            let error_type = fields.text("/error_type").unwrap_or_default();
            let message = fields.text("/message").unwrap_or_default();
            extension.put("msg", Some(message.clone()));
            extension.labelled("cs2", "source", fields.text("/source"));
            extension.labelled("cs3", "error_code", fields.text("/error_code"));
            extension.labelled("cs4", "version", fields.text("/version"));
            extension.labelled("cs5", "environment", fields.text("/environment"));
            extension.put("requestMethod", fields.text("/api/method"));
            extension.put("request", fields.text("/api/path"));
            extension.labelled("cn2", "http_status", fields.text("/api/status"));
            let sdk = [fields.text("/sdk/name"), fields.text("/sdk/platform")]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>();
            if !sdk.is_empty() {
                extension.labelled("cs6", "sdk", Some(sdk.join(" ")));
            }
            let server_error = fields
                .get("/api/status")
                .and_then(Value::as_u64)
                .is_some_and(|status| status >= 500);
            let name = message.chars().take(NAME_CHARS).collect::<String>();
            (error_type, name, if server_error { 8 } else { 7 })
        }
    };
    format!(
        "CEF:0|{}|{}|{}|{}|{}|{severity}|{}",
        header(PRODUCT),
        header(PRODUCT),
        header(PRODUCT_VERSION),
        header(&signature),
        header(&name),
        extension.0
    )
}

/// The CEF line of `event` as the message of an RFC 5424 syslog header from `host` (no
/// structured data), without a line end: what a CEF stream sends, one per line.
pub fn syslog_line(event: &StoredEvent, host: &str) -> String {
    let failed = Fields::of(event).text("/outcome").as_deref() == Some("failure");
    format!(
        "{} - {}",
        super::syslog::header(event, host, failed),
        line(event)
    )
}

/// A header field: `\` and `|` escaped, line breaks (not allowed there) as spaces.
pub fn header(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '|' => out.push_str("\\|"),
            '\r' | '\n' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// An extension value: `\`, `=` and line breaks escaped.
pub fn extension_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '=' => out.push_str("\\="),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out
}

/// The extension: space-separated `key=value` pairs.
#[derive(Default)]
struct Extension(String);

impl Extension {
    fn put(&mut self, key: &str, value: Option<String>) {
        let Some(value) = value else { return };
        if !self.0.is_empty() {
            self.0.push(' ');
        }
        let _ = write!(self.0, "{key}={}", extension_value(&value));
    }

    fn labelled(&mut self, key: &str, label: &str, value: Option<String>) {
        if value.is_some() {
            self.put(key, value);
            self.put(&format!("{key}Label"), Some(label.into()));
        }
    }
}
