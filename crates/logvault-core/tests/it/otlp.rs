//! OTLP logs decoding and mapping: both encodings read into the same records, each record
//! maps to the event the mapping table in `logvault_core::otlp::map` promises, and no input
//! makes the decoder panic.

use logvault_core::EventKind;
use logvault_core::otlp::proto::{
    AnyValue, ExportLogsServiceRequest, InstrumentationScope, KeyValue, LogRecord, Resource,
    ResourceLogs, ScopeLogs, Value,
};
use logvault_core::otlp::{Encoding, decode_request, map_request};
use proptest::prelude::*;
use prost::Message;
use serde_json::json;

fn request(records: Vec<LogRecord>) -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: vec![
                    KeyValue::string("service.name", "checkout"),
                    KeyValue::string("service.version", "2.3.1"),
                    KeyValue::string("deployment.environment.name", "production"),
                    KeyValue::string("telemetry.sdk.name", "opentelemetry"),
                    KeyValue::string("telemetry.sdk.language", "python"),
                    KeyValue::string("host.name", "web-1"),
                ],
                dropped_attributes_count: 0,
            }),
            scope_logs: vec![ScopeLogs {
                scope: Some(InstrumentationScope {
                    name: "payments".into(),
                    version: "1.0".into(),
                    ..InstrumentationScope::default()
                }),
                log_records: records,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

fn exception_record() -> LogRecord {
    LogRecord {
        time_unix_nano: 1_764_000_000_123_456_789,
        severity_number: 17,
        severity_text: "ERROR".into(),
        body: Some(AnyValue {
            value: Some(Value::String("charge failed".into())),
        }),
        attributes: vec![
            KeyValue::string("exception.type", "GatewayTimeout"),
            KeyValue::string("exception.message", "upstream timed out after 30s"),
            KeyValue::string(
                "exception.stacktrace",
                "Traceback ...\n  File \"pay.py\", line 3",
            ),
            KeyValue::string("http.route", "/v1/payments"),
            KeyValue::string("http.request.method", "POST"),
            KeyValue::int("http.response.status_code", 504),
            KeyValue::int("retry", 2),
        ],
        trace_id: vec![0xab; 16],
        span_id: vec![0xcd; 8],
        ..LogRecord::default()
    }
}

fn sign_in_record() -> LogRecord {
    LogRecord {
        time_unix_nano: 1_764_000_000_000_000_000,
        severity_number: 9,
        event_name: "user.login".into(),
        attributes: vec![
            KeyValue::string("event.outcome", "failure"),
            KeyValue::string("event.reason", "bad_password"),
            KeyValue::string("user.id", "usr_42"),
            KeyValue::string("client.address", "203.0.113.7"),
            KeyValue::string("user_agent.original", "curl/8"),
            KeyValue::string("logvault.account_id", "mer_7"),
        ],
        ..LogRecord::default()
    }
}

#[test]
fn records_map_to_threat_and_audit_events() {
    let plain = LogRecord {
        severity_number: 9,
        body: Some(AnyValue {
            value: Some(Value::String("cache warmed".into())),
        }),
        ..LogRecord::default()
    };
    let mapped = map_request(&request(vec![exception_record(), sign_in_record(), plain]));
    assert_eq!(mapped.len(), 3);

    let (kind, threat) = mapped[0].clone().expect("an exception is a threat event");
    assert_eq!(kind, EventKind::Threat);
    assert_eq!(threat["error_type"], "GatewayTimeout");
    assert_eq!(threat["message"], "upstream timed out after 30s");
    assert_eq!(threat["source"], "api");
    assert_eq!(threat["version"], "checkout 2.3.1");
    assert_eq!(threat["environment"], "production");
    assert_eq!(threat["sdk"], json!({"name": "opentelemetry-python"}));
    assert_eq!(
        threat["api"],
        json!({"method": "POST", "path": "/v1/payments", "status": 504})
    );
    assert!(
        threat["stacktrace"]
            .as_str()
            .is_some_and(|s| s.contains("pay.py"))
    );
    assert_eq!(threat["occurred_at"], "2025-11-24T16:00:00.123456Z");
    assert_eq!(threat["metadata"]["attributes"], json!({"retry": 2}));
    assert_eq!(
        threat["metadata"]["resource"],
        json!({"host.name": "web-1"})
    );
    assert_eq!(threat["metadata"]["trace_id"], "ab".repeat(16));
    assert_eq!(threat["metadata"]["body"], "charge failed");
    assert_eq!(
        threat["metadata"]["scope"],
        json!({"name": "payments", "version": "1.0"})
    );
    let id = threat["id"].as_str().expect("an id");
    let uuid = uuid::Uuid::parse_str(id).expect("a UUID");
    assert_eq!(uuid.get_version_num(), 8, "{id}");
    assert_eq!(
        uuid.hyphenated().to_string(),
        id,
        "canonical, so stored as 16 bytes"
    );
    // Its first 48 bits are the record's time in milliseconds, as in a UUIDv7.
    assert_eq!(
        &uuid.as_bytes()[..6],
        &1_764_000_000_123u64.to_be_bytes()[2..]
    );

    let (kind, audit) = mapped[1].clone().expect("a named event is an audit event");
    assert_eq!(kind, EventKind::Audit);
    assert_eq!(audit["action"], "user.login");
    assert_eq!(audit["outcome"], "failure");
    assert_eq!(audit["reason"], "bad_password");
    assert_eq!(audit["actor"], json!({"id": "usr_42"}));
    assert_eq!(
        audit["origin"],
        json!({"ip": "203.0.113.7", "user_agent": "curl/8"})
    );
    assert_eq!(audit["account_id"], "mer_7");

    let reason = mapped[2].clone().expect_err("an INFO line is neither kind");
    assert!(reason.contains("neither"), "{reason}");
}

/// The same request in OTLP/JSON (as the OpenTelemetry specification's examples write it)
/// and in protobuf decodes to the same records, so the same events with the same ids.
#[test]
fn json_and_protobuf_read_the_same() {
    let binary = request(vec![exception_record(), sign_in_record()]).encode_to_vec();
    let from_binary = decode_request(&binary, Encoding::Protobuf).expect("protobuf decodes");
    let body = json!({"resourceLogs": [{
        "resource": {"attributes": [
            {"key": "service.name", "value": {"stringValue": "checkout"}},
            {"key": "service.version", "value": {"stringValue": "2.3.1"}},
            {"key": "deployment.environment.name", "value": {"stringValue": "production"}},
            {"key": "telemetry.sdk.name", "value": {"stringValue": "opentelemetry"}},
            {"key": "telemetry.sdk.language", "value": {"stringValue": "python"}},
            {"key": "host.name", "value": {"stringValue": "web-1"}}]},
        "scopeLogs": [{"scope": {"name": "payments", "version": "1.0"}, "logRecords": [
            {"timeUnixNano": "1764000000123456789", "severityNumber": 17, "severityText": "ERROR",
             "body": {"stringValue": "charge failed"},
             "traceId": "ABABABABABABABABABABABABABABABAB", "spanId": "cdcdcdcdcdcdcdcd",
             "attributes": [
                {"key": "exception.type", "value": {"stringValue": "GatewayTimeout"}},
                {"key": "exception.message", "value": {"stringValue": "upstream timed out after 30s"}},
                {"key": "exception.stacktrace", "value": {"stringValue": "Traceback ...\n  File \"pay.py\", line 3"}},
                {"key": "http.route", "value": {"stringValue": "/v1/payments"}},
                {"key": "http.request.method", "value": {"stringValue": "POST"}},
                {"key": "http.response.status_code", "value": {"intValue": "504"}},
                {"key": "retry", "value": {"intValue": 2}}],
             "someFutureField": {"ignored": true}},
            {"timeUnixNano": 1764000000000000000u64, "severityNumber": 9, "eventName": "user.login",
             "attributes": [
                {"key": "event.outcome", "value": {"stringValue": "failure"}},
                {"key": "event.reason", "value": {"stringValue": "bad_password"}},
                {"key": "user.id", "value": {"stringValue": "usr_42"}},
                {"key": "client.address", "value": {"stringValue": "203.0.113.7"}},
                {"key": "user_agent.original", "value": {"stringValue": "curl/8"}},
                {"key": "logvault.account_id", "value": {"stringValue": "mer_7"}}]}]}]}]});
    let from_json =
        decode_request(body.to_string().as_bytes(), Encoding::Json).expect("JSON decodes");
    assert_eq!(from_json, from_binary);
    assert_eq!(map_request(&from_json), map_request(&from_binary));
}

#[test]
fn bad_bodies_are_named_errors() {
    for (body, expected) in [
        (&b"not json"[..], "not JSON"),
        (br#"{"resourceLogs": {}}"#, "resourceLogs: must be an array"),
        (
            br#"{"resourceLogs": [{"scopeLogs": [{"logRecords": [{"timeUnixNano": "soon"}]}]}]}"#,
            "resourceLogs[0].scopeLogs[0].logRecords[0].timeUnixNano",
        ),
        (
            br#"{"resourceLogs": [{"scopeLogs": [{"logRecords": [{"traceId": "xyz"}]}]}]}"#,
            "traceId: must be hex",
        ),
        (
            br#"{"resourceLogs": [{"scopeLogs": [{"logRecords": [{"severityNumber": 1.5}]}]}]}"#,
            "severityNumber: must be an integer",
        ),
    ] {
        let error = decode_request(body, Encoding::Json).expect_err("refused");
        assert!(error.contains(expected), "{error} should name {expected}");
    }
    let error = decode_request(&[0x0a, 0xff, 0xff], Encoding::Protobuf).expect_err("refused");
    assert!(error.contains("not an OTLP logs export request"), "{error}");
    assert_eq!(
        decode_request(b"{}", Encoding::Json).expect("an empty export is valid"),
        ExportLogsServiceRequest::default()
    );
}

/// A retried export maps to the same ids; a changed record to a different one.
#[test]
fn ids_are_stable_across_retries() {
    let first = map_request(&request(vec![exception_record()]));
    let again = map_request(&request(vec![exception_record()]));
    assert_eq!(first, again);
    let mut changed = exception_record();
    changed.time_unix_nano += 1;
    let other = map_request(&request(vec![changed]));
    let id =
        |mapped: &[logvault_core::otlp::Mapped]| mapped[0].clone().expect("maps").1["id"].clone();
    assert_ne!(id(&first), id(&other));
}

proptest! {
    #![proptest_config(crate::config(256))]

    /// Arbitrary bytes in either encoding (the `otlp` fuzz target's property): an answer,
    /// never a panic; what decodes re-encodes to itself and maps the same way twice.
    #[test]
    fn any_bytes_decode_or_fail_cleanly(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        for encoding in [Encoding::Protobuf, Encoding::Json] {
            if let Ok(request) = decode_request(&bytes, encoding) {
                let encoded = request.encode_to_vec();
                let again = decode_request(&encoded, Encoding::Protobuf).expect("decodes");
                prop_assert_eq!(again.encode_to_vec(), encoded);
                let mapped = format!("{:?}", map_request(&request));
                prop_assert_eq!(mapped, format!("{:?}", map_request(&again)));
            }
        }
    }
}
