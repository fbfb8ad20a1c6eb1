//! Events as RFC 5424 syslog messages: a header (priority, `received_at`, host, `logvault`,
//! message id `audit` or `threat`), one structured data element `logvault@32473` with the
//! event's id, account, `seq` and its filter fields, and the event's JSON (as the API returns
//! it) as the message. Over TCP each message is framed by octet counting (RFC 6587 §3.4.1),
//! so a message may hold any byte.
//!
//! 32473 is the private enterprise number RFC 5612 reserves for documentation; a deployment
//! that wants its own can rewrite the SD-ID in its collector.

use std::fmt::Write;

use super::{Fields, PRODUCT};
use crate::{EventKind, StoredEvent};

/// The structured data element's id.
pub const SD_ID: &str = "logvault@32473";

/// Facility 13, log audit (RFC 5424 §6.2.1), for audit events.
const FACILITY_AUDIT: u8 = 13;
/// Facility 1, user-level messages, for threat events.
const FACILITY_USER: u8 = 1;

/// The parameters of the structured data element beyond id, account and seq: the name of
/// each and the JSON pointer of its value.
const AUDIT_PARAMS: [(&str, &str); 7] = [
    ("action", "/action"),
    ("outcome", "/outcome"),
    ("reason", "/reason"),
    ("actor_id", "/actor/id"),
    ("actor_type", "/actor/type"),
    ("ip", "/origin/ip"),
    ("request_id", "/request_id"),
];
const THREAT_PARAMS: [(&str, &str); 8] = [
    ("source", "/source"),
    ("error_type", "/error_type"),
    ("error_code", "/error_code"),
    ("version", "/version"),
    ("environment", "/environment"),
    ("api_method", "/api/method"),
    ("api_path", "/api/path"),
    ("api_status", "/api/status"),
];

/// The PRI value of an event: audit events on facility 13 (informational, a warning when
/// they failed), threat events on facility 1 as errors.
pub fn priority(event: &StoredEvent, failed: bool) -> u8 {
    match event.kind {
        EventKind::Audit => FACILITY_AUDIT * 8 + if failed { 4 } else { 6 },
        EventKind::Threat => FACILITY_USER * 8 + 3,
    }
}

/// The header of an RFC 5424 message about `event`, up to and without the structured data:
/// `<PRI>1 TIMESTAMP HOST logvault - MSGID`.
pub fn header(event: &StoredEvent, host: &str, failed: bool) -> String {
    format!(
        "<{}>1 {} {} {PRODUCT} - {}",
        priority(event, failed),
        event.received_at.to_rfc3339(),
        host_name(host),
        event.kind.as_str()
    )
}

/// The whole RFC 5424 message of `event`, from `host`.
pub fn message(event: &StoredEvent, host: &str) -> String {
    let fields = Fields::of(event);
    let failed = fields.text("/outcome").as_deref() == Some("failure");
    let mut out = header(event, host, failed);
    let _ = write!(out, " [{SD_ID}");
    param(&mut out, "id", &event.event_id);
    param(&mut out, "account", &event.account_id);
    param(&mut out, "seq", &event.seq.to_string());
    let params: &[(&str, &str)] = match event.kind {
        EventKind::Audit => &AUDIT_PARAMS,
        EventKind::Threat => &THREAT_PARAMS,
    };
    for (name, pointer) in params {
        if let Some(value) = fields.text(pointer) {
            param(&mut out, name, &value);
        }
    }
    out.push_str("] ");
    out.push_str(&fields.json().to_string());
    out
}

/// RFC 6587 octet-counting framing: the message's length in bytes, a space, the message.
pub fn octet_counted(message: &str) -> Vec<u8> {
    let mut frame = format!("{} ", message.len()).into_bytes();
    frame.extend_from_slice(message.as_bytes());
    frame
}

/// A host name as the header allows it: printable US-ASCII without spaces, at most 255
/// characters; `-` (the nil value) when nothing is left.
pub fn host_name(host: &str) -> String {
    let name: String = host
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(255)
        .collect();
    if name.is_empty() { "-".into() } else { name }
}

/// One ` name="value"` parameter, with `"`, `\` and `]` escaped as RFC 5424 §6.3.3 says.
fn param(out: &mut String, name: &str, value: &str) {
    let _ = write!(out, " {name}=\"");
    for c in value.chars() {
        if matches!(c, '"' | '\\' | ']') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}
