//! Turning a request body into validated [`NewEvent`]s. A request is judged as a whole: every
//! problem in every event is collected, so a client can fix them all at once.

use std::net::IpAddr;
use std::sync::OnceLock;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::account::is_valid_account_id;

use crate::event::{EventKind, IndexFields, NewEvent, new_event_id};
use crate::scrub::{Redactions, ScrubConfig, Scrubber};
use crate::{AccountId, Micros};

/// Size limits on ingest; defaults follow the product contract.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// Largest accepted OTLP/HTTP logs request (`POST /v1/logs`), after decompression: an
    /// OpenTelemetry SDK batches up to 512 records, stack traces included, so it needs more
    /// room than a native request.
    pub max_otlp_body_bytes: usize,
    /// Most events in one request.
    pub max_events: usize,
    /// Longest string field, in bytes.
    pub max_string_bytes: usize,
    /// Longest `stacktrace`, in bytes.
    pub max_stacktrace_bytes: usize,
    /// Largest `metadata` object, serialized.
    pub max_metadata_bytes: usize,
    /// Deepest nesting inside `metadata`.
    pub max_metadata_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 1024 * 1024,
            max_otlp_body_bytes: 8 * 1024 * 1024,
            max_events: 1000,
            max_string_bytes: 8 * 1024,
            max_stacktrace_bytes: 64 * 1024,
            max_metadata_bytes: 16 * 1024,
            max_metadata_depth: 8,
        }
    }
}

/// One thing wrong with one event of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldProblem {
    /// Position of the event in the request, from 0.
    pub index: usize,
    /// Dotted path of the field, e.g. `actor.id`; empty for the event as a whole.
    pub field: String,
    /// What is wrong, never echoing the value.
    pub message: String,
}

/// Why a body could not even be split into events.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// Not UTF-8, not JSON, or an NDJSON line that is not JSON.
    #[error("{0}")]
    Malformed(String),
    /// More events than [`Limits::max_events`].
    #[error("{found} events in one request; the limit is {limit}")]
    TooManyEvents {
        /// Events found.
        found: usize,
        /// The limit.
        limit: usize,
    },
}

/// Splits a body into JSON values: one object, an array of objects, or NDJSON lines.
pub fn parse_batch(body: &[u8], ndjson: bool, limits: &Limits) -> Result<Vec<Value>, BatchError> {
    let text = std::str::from_utf8(body)
        .map_err(|e| BatchError::Malformed(format!("body is not valid UTF-8 ({e})")))?;
    let values = if ndjson {
        let mut values = Vec::new();
        for (line_no, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            if values.len() == limits.max_events {
                return Err(too_many(
                    text.lines().filter(|l| !l.trim().is_empty()).count(),
                    limits,
                ));
            }
            let value = serde_json::from_str(line).map_err(|e| {
                BatchError::Malformed(format!("line {} is not valid JSON: {e}", line_no + 1))
            })?;
            values.push(value);
        }
        values
    } else {
        match serde_json::from_str(text) {
            Ok(Value::Array(values)) => values,
            Ok(value) => vec![value],
            Err(e) => {
                return Err(BatchError::Malformed(format!(
                    "body is not valid JSON: {e}"
                )));
            }
        }
    };
    if values.is_empty() {
        return Err(BatchError::Malformed("the request holds no events".into()));
    }
    if values.len() > limits.max_events {
        return Err(too_many(values.len(), limits));
    }
    Ok(values)
}

fn too_many(found: usize, limits: &Limits) -> BatchError {
    BatchError::TooManyEvents {
        found,
        limit: limits.max_events,
    }
}

/// The scrubber with the built-in rules only, compiled once.
fn default_scrubber() -> &'static Scrubber {
    static SCRUBBER: OnceLock<Scrubber> = OnceLock::new();
    SCRUBBER.get_or_init(|| {
        Scrubber::new(&ScrubConfig::default())
            .unwrap_or_else(|e| unreachable!("the built-in scrub rules always compile: {e}"))
    })
}

/// Validates one event with the built-in scrubbing rules. `default_account` is used when the
/// event names no account.
pub fn validate_event(
    kind: EventKind,
    index: usize,
    value: &Value,
    default_account: &str,
    limits: &Limits,
) -> Result<NewEvent, Vec<FieldProblem>> {
    validate_event_with(
        kind,
        index,
        value,
        default_account,
        limits,
        default_scrubber(),
    )
}

/// Validates one event and scrubs sensitive data out of it with `scrubber`, before anything
/// is stored, hashed or logged. Threat events always carry a `redactions` summary (kinds and
/// counts, never values); audit events carry one when their metadata needed scrubbing.
pub fn validate_event_with(
    kind: EventKind,
    index: usize,
    value: &Value,
    default_account: &str,
    limits: &Limits,
    scrubber: &Scrubber,
) -> Result<NewEvent, Vec<FieldProblem>> {
    let Some(object) = value.as_object() else {
        return Err(vec![FieldProblem {
            index,
            field: String::new(),
            message: "each event must be a JSON object".into(),
        }]);
    };
    let mut checker = Checker {
        index,
        limits,
        scrubber,
        problems: Vec::new(),
    };
    let spec = match kind {
        EventKind::Audit => AUDIT_FIELDS,
        EventKind::Threat => THREAT_FIELDS,
    };
    checker.unknown_fields(object, "", spec);

    let event_id = checker.id_string(object, "id");
    let account_id = match checker.string(object, "", "account_id", false, 64) {
        Some(id) if !is_valid_account_id(&id) => {
            checker.problem("account_id", "must be 1-64 characters of A-Z a-z 0-9 _ . -");
            None
        }
        other => other,
    };
    let occurred_at = object
        .get("occurred_at")
        .filter(|value| !value.is_null())
        .and_then(|value| match value.as_str() {
            Some(text) => Micros::parse_rfc3339(text).or_else(|| {
                checker.problem("occurred_at", "must be an RFC 3339 timestamp");
                None
            }),
            None => {
                checker.problem("occurred_at", "must be an RFC 3339 timestamp string");
                None
            }
        });
    if let Some(metadata) = object.get("metadata") {
        checker.metadata(metadata);
    }
    // U+0000 ends strings in C and is refused by PostgreSQL: no backend may see it.
    for (key, value) in object {
        checker.no_nul(value, key);
    }
    match kind {
        EventKind::Audit => checker.audit(object),
        EventKind::Threat => checker.threat(object),
    }

    if !checker.problems.is_empty() {
        return Err(checker.problems);
    }
    let mut body: Map<String, Value> = object.clone();
    for server_field in ["id", "account_id", "occurred_at"] {
        body.remove(server_field);
    }
    // JSON does not tell `504` from `504.0` (JSON Schema calls both integers); store `504`.
    if let Some(Value::Object(api)) = body.get_mut("api")
        && let Some(status) = api.get("status").and_then(http_status)
    {
        api.insert("status".into(), status.into());
    }
    let redactions = scrubber.scrub_event(kind, &mut body);
    if kind == EventKind::Threat || !redactions.is_empty() {
        body.insert("redactions".into(), redactions.to_json());
    }
    let body = Value::Object(body);
    // The body is an object, so it has columns.
    let index = IndexFields::from_value(kind, &body).unwrap_or_default();
    // Computed here, on the request's task, so the single writer does not have to.
    let fingerprint = match kind {
        EventKind::Threat => crate::event::fingerprint::Fingerprint::of_value(&body),
        EventKind::Audit => None,
    };
    // The same compact text as `Display`, written straight into a buffer rather than through
    // a formatter (it cannot fail: every key of a `Value` is a string).
    let body = serde_json::to_string(&body).unwrap_or_else(|_| body.to_string());
    Ok(NewEvent {
        kind,
        fingerprint,
        account_id: account_id.unwrap_or_else(|| AccountId::from(default_account)),
        id_from_client: event_id.is_some(),
        event_id: event_id.unwrap_or_else(new_event_id),
        occurred_at,
        index,
        body,
        demo_received_at: None,
    })
}

/// The fields an audit event may carry (`event::wire::AuditEventInput` has the same).
pub const AUDIT_FIELDS: &[&str] = &[
    "id",
    "account_id",
    "action",
    "outcome",
    "reason",
    "actor",
    "origin",
    "request_id",
    "occurred_at",
    "metadata",
];
/// The fields a threat event may carry (`event::wire::ThreatEventInput` has the same).
pub const THREAT_FIELDS: &[&str] = &[
    "id",
    "account_id",
    "source",
    "error_type",
    "error_code",
    "message",
    "version",
    "environment",
    "sdk",
    "api",
    "stacktrace",
    "occurred_at",
    "metadata",
];

struct Checker<'a> {
    index: usize,
    limits: &'a Limits,
    scrubber: &'a Scrubber,
    problems: Vec<FieldProblem>,
}

impl Checker<'_> {
    fn problem(&mut self, field: &str, message: &str) {
        self.problems.push(FieldProblem {
            index: self.index,
            field: field.to_string(),
            message: message.to_string(),
        });
    }

    fn unknown_fields(&mut self, object: &Map<String, Value>, prefix: &str, allowed: &[&str]) {
        for key in object.keys().filter(|key| !allowed.contains(&key.as_str())) {
            // The key itself is client text: it is named (scrubbed, shortened), values never are.
            let shown: String = self
                .scrubber
                .scrub_text(key, &mut Redactions::default())
                .chars()
                .take(64)
                .collect();
            self.problem(&format!("{prefix}{shown}"), "unknown field");
        }
    }

    /// A string field: `None` when absent or wrong (and then a problem is recorded).
    fn string(
        &mut self,
        object: &Map<String, Value>,
        prefix: &str,
        name: &str,
        required: bool,
        max_bytes: usize,
    ) -> Option<String> {
        let path = format!("{prefix}{name}");
        match object.get(name) {
            None | Some(Value::Null) if required => {
                self.problem(&path, "is required");
                None
            }
            None | Some(Value::Null) => None,
            Some(Value::String(text)) if text.is_empty() && required => {
                self.problem(&path, "must not be empty");
                None
            }
            Some(Value::String(text)) if text.len() > max_bytes => {
                self.problem(&path, &format!("is longer than {max_bytes} bytes"));
                None
            }
            Some(Value::String(text)) => Some(text.clone()),
            Some(_) => {
                self.problem(&path, "must be a string");
                None
            }
        }
    }

    fn id_string(&mut self, object: &Map<String, Value>, name: &str) -> Option<String> {
        let id = self.string(object, "", name, false, 128)?;
        let printable = !id.is_empty() && id.chars().all(|c| !c.is_control() && c != '/');
        if printable {
            Some(id)
        } else {
            self.problem(name, "must be 1-128 printable characters without '/'");
            None
        }
    }

    fn one_of(
        &mut self,
        object: &Map<String, Value>,
        prefix: &str,
        name: &str,
        required: bool,
        allowed: &[&str],
    ) -> Option<String> {
        let text = self.string(object, prefix, name, required, 64)?;
        if allowed.contains(&text.as_str()) {
            Some(text)
        } else {
            self.problem(
                &format!("{prefix}{name}"),
                &format!("must be one of {}", allowed.join(", ")),
            );
            None
        }
    }

    fn nested<'v>(
        &mut self,
        object: &'v Map<String, Value>,
        name: &str,
        required: bool,
        allowed: &[&str],
    ) -> Option<&'v Map<String, Value>> {
        match object.get(name) {
            None | Some(Value::Null) => {
                if required {
                    self.problem(name, "is required");
                }
                None
            }
            Some(Value::Object(inner)) => {
                self.unknown_fields(inner, &format!("{name}."), allowed);
                Some(inner)
            }
            Some(_) => {
                self.problem(name, "must be an object");
                None
            }
        }
    }

    /// Records the first NUL character inside `value`, if any, naming its path.
    fn no_nul(&mut self, value: &Value, path: &str) {
        if let Some(rest) = nul_path(value) {
            // Paths hold client key names: shown scrubbed, like unknown fields.
            let full = format!("{path}{rest}");
            let shown = self
                .scrubber
                .scrub_text(&full, &mut Redactions::default())
                .into_owned();
            self.problem(&shown, "must not contain NUL (U+0000) characters");
        }
    }

    fn metadata(&mut self, metadata: &Value) {
        if !metadata.is_object() {
            self.problem("metadata", "must be an object");
            return;
        }
        if depth(metadata) > self.limits.max_metadata_depth {
            let limit = self.limits.max_metadata_depth;
            self.problem("metadata", &format!("is nested deeper than {limit} levels"));
        }
        let size = json_len(metadata);
        if size > self.limits.max_metadata_bytes {
            let limit = self.limits.max_metadata_bytes;
            self.problem("metadata", &format!("is larger than {limit} bytes"));
        }
    }

    fn audit(&mut self, object: &Map<String, Value>) {
        let max = self.limits.max_string_bytes;
        let action = self.string(object, "", "action", true, 128);
        if let Some(action) = &action {
            let valid = action
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b':'));
            if !valid {
                self.problem("action", "must be letters, digits and . _ - : only");
            }
        }
        self.one_of(object, "", "outcome", true, &["success", "failure"]);
        self.string(object, "", "reason", false, 256);
        if let Some(actor) = self.nested(object, "actor", true, &["id", "type", "name"]) {
            self.string(actor, "actor.", "id", true, 256);
            self.one_of(
                actor,
                "actor.",
                "type",
                false,
                &["user", "api_key", "system"],
            );
            self.string(actor, "actor.", "name", false, 256);
        }
        if let Some(origin) = self.nested(object, "origin", false, &["ip", "user_agent"]) {
            let ip = self.string(origin, "origin.", "ip", false, 64);
            if ip.is_some_and(|text| text.parse::<IpAddr>().is_err()) {
                self.problem("origin.ip", "must be an IPv4 or IPv6 address");
            }
            self.string(origin, "origin.", "user_agent", false, max);
        }
        self.string(object, "", "request_id", false, 256);
    }

    fn threat(&mut self, object: &Map<String, Value>) {
        let max = self.limits.max_string_bytes;
        self.one_of(object, "", "source", true, &["sdk", "api"]);
        self.string(object, "", "error_type", true, 256);
        self.string(object, "", "error_code", false, 256);
        self.string(object, "", "message", true, max);
        self.string(object, "", "version", false, 256);
        self.string(object, "", "environment", false, 64);
        if let Some(sdk) = self.nested(object, "sdk", false, &["name", "platform"]) {
            self.string(sdk, "sdk.", "name", false, 256);
            self.string(sdk, "sdk.", "platform", false, 256);
        }
        if let Some(api) = self.nested(object, "api", false, &["method", "path", "status"]) {
            self.string(api, "api.", "method", false, 16);
            self.string(api, "api.", "path", false, 2048);
            match api.get("status") {
                None | Some(Value::Null) => {}
                Some(status) if http_status(status).is_some() => {}
                Some(_) => self.problem("api.status", "must be an HTTP status code (100-599)"),
            }
        }
        let stacktrace_limit = self.limits.max_stacktrace_bytes;
        self.string(object, "", "stacktrace", false, stacktrace_limit);
    }
}

/// An HTTP status code (100-599) written as a JSON number, `504` or `504.0` alike.
fn http_status(value: &Value) -> Option<u16> {
    let number = value.as_f64()?;
    let whole = number.fract() == 0.0 && (100.0..=599.0).contains(&number);
    // In range and whole, so the conversion is exact.
    whole.then_some(number as u16)
}

/// An address as 16 bytes; IPv4 is mapped into IPv6 so both sort in one space.
pub fn ip_bytes(addr: IpAddr) -> [u8; 16] {
    match addr {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    }
}

/// The path below `value` to its first string holding U+0000 (`""` for `value` itself);
/// builds no string at all when there is none, which is the common case.
fn nul_path(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => text.contains('\0').then(String::new),
        Value::Object(map) => map
            .iter()
            .find_map(|(key, inner)| nul_path(inner).map(|rest| format!(".{key}{rest}"))),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(index, inner)| nul_path(inner).map(|rest| format!("[{index}]{rest}"))),
        _ => None,
    }
}

/// The length of `value` as compact JSON, counted without building the text.
fn json_len(value: &Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0 += bytes.len();
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Writing a `Value` into a sink that never fails cannot fail.
    let _ = serde_json::to_writer(&mut count, value);
    count.0
}

fn depth(value: &Value) -> usize {
    match value {
        Value::Object(map) => 1 + map.values().map(depth).max().unwrap_or(0),
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn problems(kind: EventKind, value: Value) -> Vec<String> {
        match validate_event(kind, 0, &value, "mer_1", &Limits::default()) {
            Ok(_) => Vec::new(),
            Err(problems) => problems
                .into_iter()
                .map(|p| format!("{}: {}", p.field, p.message))
                .collect(),
        }
    }

    #[test]
    fn audit_cases() {
        let ok = json!({"action": "user.login", "outcome": "success", "actor": {"id": "usr_1"}});
        let cases: Vec<(Value, Vec<&str>)> = vec![
            (ok.clone(), vec![]),
            (
                json!({}),
                vec![
                    "action: is required",
                    "outcome: is required",
                    "actor: is required",
                ],
            ),
            (
                json!({"action": "user login", "outcome": "maybe", "actor": {"id": 7}, "extra": 1}),
                vec![
                    "extra: unknown field",
                    "action: must be letters, digits and . _ - : only",
                    "outcome: must be one of success, failure",
                    "actor.id: must be a string",
                ],
            ),
            (
                json!({"action": "a", "outcome": "failure", "actor": {"id": "u"}, "origin": {"ip": "300.1.1.1"}, "occurred_at": "now"}),
                vec![
                    "occurred_at: must be an RFC 3339 timestamp",
                    "origin.ip: must be an IPv4 or IPv6 address",
                ],
            ),
            (
                json!({"action": "a", "outcome": "failure", "actor": {"id": "u"}, "metadata": {"a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": {"i": 1}}}}}}}}}}),
                vec!["metadata: is nested deeper than 8 levels"],
            ),
            (
                json!({"id": "", "account_id": "bad id", "action": "a", "outcome": "success", "actor": {"id": "u"}}),
                vec![
                    "id: must be 1-128 printable characters without '/'",
                    "account_id: must be 1-64 characters of A-Z a-z 0-9 _ . -",
                ],
            ),
            (json!([1]), vec![": each event must be a JSON object"]),
            (
                json!({"action": "a", "outcome": "success", "actor": {"id": "u\u{0}"}, "metadata": {"k": ["x", "\u{0}"]}}),
                vec![
                    "actor.id: must not contain NUL (U+0000) characters",
                    "metadata.k[1]: must not contain NUL (U+0000) characters",
                ],
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(
                problems(EventKind::Audit, input.clone()),
                expected,
                "{input}"
            );
        }
    }

    #[test]
    fn threat_cases() {
        let cases: Vec<(Value, Vec<&str>)> = vec![
            (
                json!({"source": "sdk", "error_type": "Timeout", "message": "timed out"}),
                vec![],
            ),
            (
                json!({"source": "api", "error_type": "E", "message": "m", "api": {"status": 504.0}}),
                vec![],
            ),
            (
                json!({"source": "api", "error_type": "E", "message": "m", "api": {"status": 504.5}}),
                vec!["api.status: must be an HTTP status code (100-599)"],
            ),
            (
                json!({"source": "web", "message": "x".repeat(9000), "api": {"status": 99}}),
                vec![
                    "source: must be one of sdk, api",
                    "error_type: is required",
                    "message: is longer than 8192 bytes",
                    "api.status: must be an HTTP status code (100-599)",
                ],
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(
                problems(EventKind::Threat, input.clone()),
                expected,
                "{input}"
            );
        }
    }

    /// Found by schemathesis: `504.0` is an integer to JSON Schema, so it is taken, and
    /// stored as `504`.
    #[test]
    fn whole_number_statuses_are_stored_as_integers() {
        let input =
            json!({"source": "api", "error_type": "E", "message": "m", "api": {"status": 504.0}});
        let event = validate_event(EventKind::Threat, 0, &input, "mer_1", &Limits::default())
            .expect("valid");
        assert!(event.body.contains(r#""status":504}"#), "{}", event.body);
    }

    #[test]
    fn valid_event_is_normalized() {
        let input = json!({"id": "e1", "account_id": "mer_9", "action": "user.login", "outcome": "failure",
            "actor": {"id": "usr_1"}, "origin": {"ip": "203.0.113.7"}, "occurred_at": "2026-11-25T12:00:00+02:00"});
        let event = validate_event(EventKind::Audit, 0, &input, "mer_1", &Limits::default())
            .expect("valid");
        assert_eq!(event.event_id, "e1");
        assert_eq!(event.account_id, "mer_9");
        assert_eq!(
            event.occurred_at.map(Micros::to_rfc3339).as_deref(),
            Some("2026-11-25T10:00:00.000000Z")
        );
        assert_eq!(
            event.index.ip,
            Some(ip_bytes("203.0.113.7".parse().expect("ip")))
        );
        assert!(
            !event.body.contains("occurred_at") && !event.body.contains("mer_9"),
            "{}",
            event.body
        );
    }

    #[test]
    fn batch_shapes() {
        let limits = Limits {
            max_events: 2,
            ..Limits::default()
        };
        let ok =
            |body: &str, ndjson| parse_batch(body.as_bytes(), ndjson, &limits).map(|v| v.len());
        assert_eq!(ok("{}", false), Ok(1));
        assert_eq!(ok("[{}, {}]", false), Ok(2));
        assert_eq!(ok("{}\n\n{}\n", true), Ok(2));
        assert!(matches!(
            ok("[{},{},{}]", false),
            Err(BatchError::TooManyEvents { found: 3, limit: 2 })
        ));
        assert!(matches!(
            ok("{}\n{}\n{}", true),
            Err(BatchError::TooManyEvents { found: 3, limit: 2 })
        ));
        assert!(matches!(ok("[]", false), Err(BatchError::Malformed(_))));
        assert!(matches!(ok("{", false), Err(BatchError::Malformed(_))));
        assert!(
            matches!(ok("{}\nnope", true), Err(BatchError::Malformed(m)) if m.starts_with("line 2"))
        );
        assert!(matches!(
            parse_batch(b"\xff", false, &limits),
            Err(BatchError::Malformed(_))
        ));
    }
}
