//! From OTLP log records to logvault's own event input, which then goes through the same
//! validation, scrubbing and limits as an event posted to the native API. The README's
//! "OpenTelemetry logs" section is the table of what maps to what; this file is its code.

use base64::Engine;
use prost::Message;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::proto::{self, AnyValue, KeyValue, LogRecord};
use crate::EventKind;
use crate::time::Micros;

/// The attributes that feed named fields, and so are not repeated in `metadata`.
const MAPPED_KEYS: &[&str] = &[
    "event.name",
    "event.outcome",
    "event.reason",
    "user.id",
    "user.name",
    "logvault.actor.type",
    "logvault.account_id",
    "logvault.source",
    "client.address",
    "user_agent.original",
    "request.id",
    "exception.type",
    "exception.message",
    "exception.stacktrace",
    "error.type",
    "error.code",
    "http.request.method",
    "http.route",
    "url.path",
    "http.response.status_code",
];

/// The resource attributes that feed a threat event's `version`, `environment` and `sdk`
/// (an audit event keeps them in `metadata`, where they say which service wrote it).
const THREAT_RESOURCE_KEYS: &[&str] = &[
    "service.name",
    "service.version",
    "deployment.environment.name",
    "deployment.environment",
    "telemetry.sdk.name",
    "telemetry.sdk.language",
    "os.description",
    "process.runtime.description",
];

/// Severity numbers from ERROR (17) up mark a record as a threat event without an exception.
const SEVERITY_ERROR: i32 = 17;

/// One log record of a request, turned into native event input, or why it cannot be.
pub type Mapped = Result<(EventKind, Value), String>;

/// Every log record of `request`, in order, as native event input.
pub fn map_request(request: &proto::ExportLogsServiceRequest) -> Vec<Mapped> {
    let mut mapped = Vec::new();
    for resource_logs in &request.resource_logs {
        let resource = resource_logs.resource.clone().unwrap_or_default();
        let resource_digest = Sha256::digest(resource.encode_to_vec());
        for scope_logs in &resource_logs.scope_logs {
            let scope = scope_logs.scope.clone().unwrap_or_default();
            let scope_digest = Sha256::digest(scope.encode_to_vec());
            for record in &scope_logs.log_records {
                let context = Context {
                    record,
                    scope: &scope,
                    resource: &resource.attributes,
                };
                let mut digest = Sha256::new();
                digest.update(resource_digest);
                digest.update(scope_digest);
                digest.update(record.encode_to_vec());
                let id = record_id(context.nanos() / 1_000_000, &digest.finalize());
                mapped.push(context.event(id));
            }
        }
    }
    mapped
}

/// A UUID (version 8, RFC 9562) whose first 48 bits are the record's time in milliseconds, as
/// in the UUIDv7 the server assigns, and whose other 74 bits come from `digest` (of the
/// resource, scope and record): an exporter's retry gets the same id, and ids in time order
/// keep the id index's inserts together, as the server's own do.
fn record_id(millis: u64, digest: &[u8]) -> String {
    let mut bytes = [0u8; 16];
    bytes[..6].copy_from_slice(&millis.to_be_bytes()[2..]);
    bytes[6..].copy_from_slice(&digest[..10]);
    bytes[6] = (bytes[6] & 0x0f) | 0x80; // version 8
    bytes[8] = (bytes[8] & 0x3f) | 0x80; // the RFC 9562 variant
    uuid::Uuid::from_bytes(bytes).hyphenated().to_string()
}

struct Context<'a> {
    record: &'a LogRecord,
    scope: &'a proto::InstrumentationScope,
    resource: &'a [KeyValue],
}

impl Context<'_> {
    /// The attribute `key` from the record, its scope, then its resource.
    fn attribute(&self, key: &str) -> Option<&AnyValue> {
        [
            &self.record.attributes[..],
            &self.scope.attributes[..],
            self.resource,
        ]
        .into_iter()
        .flat_map(|attributes| attributes.iter().rev())
        .find(|attribute| attribute.key == key)
        .and_then(|attribute| attribute.value.as_ref())
    }

    /// The attribute `key` as text: strings as they are, numbers and booleans written out.
    fn text(&self, key: &str) -> Option<String> {
        match self.attribute(key)?.value.as_ref()? {
            proto::Value::String(text) if text.is_empty() => None,
            proto::Value::String(text) => Some(text.clone()),
            proto::Value::Int(number) => Some(number.to_string()),
            proto::Value::Double(number) => Some(number.to_string()),
            proto::Value::Bool(flag) => Some(flag.to_string()),
            _ => None,
        }
    }

    /// When the record happened: its time, else when it was observed (0 when neither is set).
    fn nanos(&self) -> u64 {
        match self.record.time_unix_nano {
            0 => self.record.observed_time_unix_nano,
            time => time,
        }
    }

    fn event_name(&self) -> Option<String> {
        Some(self.record.event_name.clone())
            .filter(|name| !name.is_empty())
            .or_else(|| self.text("event.name"))
    }

    fn event(&self, id: String) -> Mapped {
        let is_error = self.text("exception.type").is_some()
            || self.text("error.type").is_some()
            || self.record.severity_number >= SEVERITY_ERROR;
        let (kind, mut event) = match self.event_name() {
            Some(action) if self.text("exception.type").is_none() => {
                (EventKind::Audit, self.audit(action))
            }
            _ if is_error => (EventKind::Threat, self.threat()),
            _ => {
                return Err(
                    "neither an audit event (no event name) nor a threat event (no \
                            exception.type or error.type, severity below ERROR)"
                        .to_string(),
                );
            }
        };
        event.insert("id".into(), id.into());
        if let Some(account) = self.text("logvault.account_id") {
            event.insert("account_id".into(), account.into());
        }
        let nanos = self.nanos();
        if nanos > 0 {
            let micros = i64::try_from(nanos / 1000).unwrap_or(i64::MAX);
            event.insert("occurred_at".into(), Micros(micros).to_rfc3339().into());
        }
        event.insert("metadata".into(), Value::Object(self.metadata(kind)));
        Ok((kind, Value::Object(event)))
    }

    fn audit(&self, action: String) -> Map<String, Value> {
        let mut event = Map::new();
        event.insert("action".into(), action.into());
        self.put(&mut event, "outcome", "event.outcome");
        self.put(&mut event, "reason", "event.reason");
        let mut actor = Map::new();
        self.put(&mut actor, "id", "user.id");
        self.put(&mut actor, "type", "logvault.actor.type");
        self.put(&mut actor, "name", "user.name");
        if !actor.is_empty() {
            event.insert("actor".into(), Value::Object(actor));
        }
        let mut origin = Map::new();
        self.put(&mut origin, "ip", "client.address");
        self.put(&mut origin, "user_agent", "user_agent.original");
        if !origin.is_empty() {
            event.insert("origin".into(), Value::Object(origin));
        }
        self.put(&mut event, "request_id", "request.id");
        event
    }

    fn threat(&self) -> Map<String, Value> {
        let mut event = Map::new();
        let error_type = self
            .text("exception.type")
            .or_else(|| self.text("error.type"))
            .or_else(|| Some(self.record.severity_text.clone()).filter(|s| !s.is_empty()))
            .unwrap_or_else(|| "error".to_string());
        let message = self
            .text("exception.message")
            .or_else(|| self.body_text())
            .unwrap_or_else(|| error_type.clone());
        let is_api = ["http.route", "url.path", "http.request.method"]
            .iter()
            .any(|key| self.attribute(key).is_some());
        let source = match self.text("logvault.source") {
            Some(source) => source,
            None if is_api => "api".to_string(),
            None => "sdk".to_string(),
        };
        event.insert("source".into(), source.into());
        event.insert("error_type".into(), error_type.into());
        event.insert("message".into(), message.into());
        self.put(&mut event, "stacktrace", "exception.stacktrace");
        self.put(&mut event, "error_code", "error.code");
        let version = [self.text("service.name"), self.text("service.version")]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
        if !version.is_empty() {
            event.insert("version".into(), version.into());
        }
        if let Some(environment) = self
            .text("deployment.environment.name")
            .or_else(|| self.text("deployment.environment"))
        {
            event.insert("environment".into(), environment.into());
        }
        let mut sdk = Map::new();
        let sdk_name = [
            self.text("telemetry.sdk.name"),
            self.text("telemetry.sdk.language"),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join("-");
        if !sdk_name.is_empty() {
            sdk.insert("name".into(), sdk_name.into());
        }
        if let Some(platform) = self
            .text("os.description")
            .or_else(|| self.text("process.runtime.description"))
        {
            sdk.insert("platform".into(), platform.into());
        }
        if !sdk.is_empty() {
            event.insert("sdk".into(), Value::Object(sdk));
        }
        let mut api = Map::new();
        self.put(&mut api, "method", "http.request.method");
        if let Some(path) = self.text("http.route").or_else(|| self.text("url.path")) {
            api.insert("path".into(), path.into());
        }
        if let Some(status) = self.attribute("http.response.status_code") {
            api.insert("status".into(), any_to_json(status));
        }
        if !api.is_empty() {
            event.insert("api".into(), Value::Object(api));
        }
        event
    }

    fn body_text(&self) -> Option<String> {
        match self.record.body.as_ref()?.value.as_ref()? {
            proto::Value::String(text) if text.is_empty() => None,
            proto::Value::String(text) => Some(text.clone()),
            _ => Some(any_to_json(self.record.body.as_ref()?).to_string()),
        }
    }

    /// `field` in `target` from the attribute `key`, when there is one.
    fn put(&self, target: &mut Map<String, Value>, field: &str, key: &str) {
        if let Some(text) = self.text(key) {
            target.insert(field.into(), text.into());
        }
    }

    fn metadata(&self, kind: EventKind) -> Map<String, Value> {
        let mut metadata = Map::new();
        let is_mapped = |key: &str| {
            MAPPED_KEYS.contains(&key)
                || (kind == EventKind::Threat && THREAT_RESOURCE_KEYS.contains(&key))
        };
        let unmapped = |attributes: &[KeyValue]| -> Map<String, Value> {
            attributes
                .iter()
                .filter(|attribute| !is_mapped(&attribute.key))
                .map(|attribute| {
                    let value = attribute.value.as_ref().map_or(Value::Null, any_to_json);
                    (attribute.key.clone(), value)
                })
                .collect()
        };
        let record = unmapped(&self.record.attributes);
        if !record.is_empty() {
            metadata.insert("attributes".into(), Value::Object(record));
        }
        let mut resource = unmapped(self.resource);
        resource.extend(unmapped(&self.scope.attributes));
        if !resource.is_empty() {
            metadata.insert("resource".into(), Value::Object(resource));
        }
        if !self.scope.name.is_empty() {
            let mut scope = json!({"name": self.scope.name});
            if !self.scope.version.is_empty() {
                scope["version"] = self.scope.version.clone().into();
            }
            metadata.insert("scope".into(), scope);
        }
        // The log line itself, when `message` is the exception's (an audit event has no
        // message field, so its body always lands here).
        let body_is_message = kind == EventKind::Threat && self.text("exception.message").is_none();
        let kept_body =
            (self.record.body.as_ref()).filter(|body| !body_is_message && body.value.is_some());
        if let Some(body) = kept_body {
            metadata.insert("body".into(), any_to_json(body));
        }
        if self.record.severity_number > 0 || !self.record.severity_text.is_empty() {
            let severity =
                json!({"number": self.record.severity_number, "text": self.record.severity_text});
            metadata.insert("severity".into(), severity);
        }
        for (name, bytes) in [
            ("trace_id", &self.record.trace_id),
            ("span_id", &self.record.span_id),
        ] {
            if bytes.iter().any(|byte| *byte != 0) {
                metadata.insert(name.into(), hex::encode(bytes).into());
            }
        }
        metadata
    }
}

/// An OTLP value as JSON: bytes as base64, non-finite doubles as their protobuf JSON names.
fn any_to_json(value: &AnyValue) -> Value {
    match &value.value {
        None => Value::Null,
        Some(proto::Value::String(text)) => text.clone().into(),
        Some(proto::Value::Bool(flag)) => (*flag).into(),
        Some(proto::Value::Int(number)) => (*number).into(),
        Some(proto::Value::Double(number)) => serde_json::Number::from_f64(*number)
            .map(Value::Number)
            .unwrap_or_else(|| {
                let name = if number.is_nan() {
                    "NaN"
                } else if *number > 0.0 {
                    "Infinity"
                } else {
                    "-Infinity"
                };
                name.into()
            }),
        Some(proto::Value::Array(array)) => array.values.iter().map(any_to_json).collect(),
        Some(proto::Value::KvList(list)) => Value::Object(
            list.values
                .iter()
                .map(|pair| {
                    let value = pair.value.as_ref().map_or(Value::Null, any_to_json);
                    (pair.key.clone(), value)
                })
                .collect(),
        ),
        Some(proto::Value::Bytes(bytes)) => base64::engine::general_purpose::STANDARD
            .encode(bytes)
            .into(),
    }
}
