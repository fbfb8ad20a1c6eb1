//! `POST /v1/logs`: OpenTelemetry logs in, from the real OpenTelemetry Python SDK through its
//! normal logging path, and OTLP/JSON by hand for the protocol's answers.

use std::process::Command;

use logvault_core::otlp::proto::Status;
use prost::Message;
use serde_json::{Value, json};

use crate::http;
use crate::peers;
use crate::server::{Server, cli, temp_data_dir};

/// Runs `tests/peers/otlp_logs.py` against `server`; returns what the SDK says it exported.
fn send_with_sdk(python: &std::path::Path, server: &Server, key: &str, gzip: bool) -> Value {
    let endpoint = format!("http://{}/v1/logs", server.addr);
    let mut command = Command::new(python);
    command
        .arg(peers::script("otlp_logs.py"))
        .args([&endpoint, key]);
    if gzip {
        command.arg("gzip");
    }
    let output = command.output().expect("python runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "otlp_logs.py failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(stdout.trim()).expect("otlp_logs.py prints JSON")
}

#[test]
fn sdk_logs_become_threat_and_audit_events() {
    let Some(python) = peers::python() else {
        return;
    };
    let (_guard, dir) = temp_data_dir();
    let server = Server::start(&dir, &[]);
    let key = server.admin_key();

    // Five records each run: three exceptions, one sign-in, one plain INFO line that is
    // neither kind and is rejected through partial success (which the SDK counts as sent).
    let sent = send_with_sdk(&python, &server, &key, false);
    assert_eq!(sent, json!({"exported": 5, "failed": 0}));
    let sent = send_with_sdk(&python, &server, &key, true);
    assert_eq!(sent, json!({"exported": 5, "failed": 0}), "gzip");

    let threats = server.list_all(&key, "threat", "error_type=TimeoutError");
    assert_eq!(threats.len(), 6, "{threats:#?}");
    for event in &threats {
        assert_eq!(event["source"], "api");
        assert_eq!(event["version"], "checkout 2.3.1");
        assert_eq!(event["environment"], "staging");
        assert_eq!(event["sdk"]["name"], "opentelemetry-python");
        assert_eq!(
            event["api"],
            json!({"method": "POST", "path": "/v1/payments"})
        );
        let message = event["message"].as_str().expect("message");
        assert!(
            message.starts_with("upstream timed out after 30s"),
            "{message}"
        );
        let stacktrace = event["stacktrace"].as_str().expect("stacktrace");
        assert!(stacktrace.contains("raise TimeoutError"), "{stacktrace}");
        // The log line is kept, with the card number scrubbed out before it was stored.
        let body = event["metadata"]["body"].as_str().expect("the log line");
        assert!(body.starts_with("charge failed for card"), "{body}");
        assert!(!body.contains("4111"), "{body}");
        assert!(event["redactions"].to_string().contains("card"), "{event}");
        let id = event["id"].as_str().expect("an id");
        assert_eq!(&id[14..15], "8", "a UUIDv8 derived from the record: {id}");
    }
    // Three versions of the same failure: trends see them under the SDK's version.
    let trends = server.get("/v1/threat-events/trends?group_by=version", &key);
    assert_eq!(trends.status, 200, "{}", trends.body);
    assert!(trends.body.contains("checkout 2.3.1"), "{}", trends.body);

    let sign_ins = server.list_all(&key, "audit", "action=user.login&actor_id=usr_otel");
    assert_eq!(sign_ins.len(), 2, "{sign_ins:#?}");
    for event in &sign_ins {
        assert_eq!(event["outcome"], "failure");
        assert_eq!(event["reason"], "bad_password");
        assert_eq!(event["origin"]["ip"], "198.51.100.23");
        assert_eq!(event["metadata"]["body"], "sign-in");
        assert_eq!(event["metadata"]["resource"]["service.name"], "checkout");
    }
}

fn post_logs(
    server: &Server,
    key: Option<&str>,
    content_type: &str,
    body: &[u8],
) -> http::Response {
    let authorization = key.map(|key| format!("Bearer {key}"));
    let mut headers = vec![("Content-Type", content_type)];
    if let Some(authorization) = &authorization {
        headers.push(("Authorization", authorization));
    }
    http::request(&server.addr, "POST", "/v1/logs", &headers, Some(body)).expect("an answer")
}

fn record(attributes: Value) -> Value {
    let attributes: Vec<Value> = attributes
        .as_object()
        .expect("an object")
        .iter()
        .map(|(key, value)| json!({"key": key, "value": {"stringValue": value}}))
        .collect();
    json!({"timeUnixNano": "1764000000000000000", "severityNumber": 17, "attributes": attributes})
}

#[test]
fn partial_success_retries_and_failures_follow_the_otlp_spec() {
    let (_guard, dir) = temp_data_dir();
    let server = Server::start(&dir, &[]);
    let admin = server.admin_key();
    let data_dir = dir.to_str().expect("UTF-8 path");
    let created = |args: &[&str]| -> Value {
        let output = cli(args);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).expect("JSON")
    };
    let merchant = created(&[
        "accounts",
        "create",
        "--kind",
        "merchant",
        "--name",
        "Shop",
        "--data-dir",
        data_dir,
    ]);
    let merchant_id = merchant["id"].as_str().expect("id");
    let other = created(&[
        "accounts",
        "create",
        "--kind",
        "merchant",
        "--name",
        "Other",
        "--data-dir",
        data_dir,
    ]);
    let other_id = other["id"].as_str().expect("id");
    let key = created(&[
        "keys",
        "create",
        "--role",
        "merchant",
        "--account",
        merchant_id,
        "--permissions",
        "ingest,read",
        "--data-dir",
        data_dir,
    ]);
    let key = key["key"].as_str().expect("key").to_string();

    let body = json!({"resourceLogs": [{"scopeLogs": [{"logRecords": [
        record(json!({"exception.type": "CardDeclined", "exception.message": "declined"})),
        // An audit event without `event.outcome` is invalid: rejected, the rest kept.
        {"eventName": "user.login", "attributes": [{"key": "user.id", "value": {"stringValue": "usr_1"}}]},
        record(json!({"exception.type": "Foreign", "logvault.account_id": other_id})),
    ]}]}]})
    .to_string();
    let answer = post_logs(&server, Some(&key), "application/json", body.as_bytes());
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.header("content-type"), Some("application/json"));
    let partial = &answer.json()["partialSuccess"];
    assert_eq!(partial["rejectedLogRecords"], "2", "{}", answer.body);
    let message = partial["errorMessage"].as_str().expect("a message");
    assert!(
        message.contains("log record 1: audit event: outcome: is required"),
        "{message}"
    );
    assert!(
        message.contains("log record 2: this key may not write to account"),
        "{message}"
    );

    // An exporter's retry of the same request stores nothing twice.
    let again = post_logs(&server, Some(&key), "application/json", body.as_bytes());
    assert_eq!(again.status, 200, "{}", again.body);
    let stored = server.list_all(&key, "threat", "");
    assert_eq!(stored.len(), 1, "{stored:#?}");
    assert_eq!(stored[0]["account_id"], merchant_id);
    assert!(
        server
            .list_all(&admin, "threat", &format!("account_id={other_id}"))
            .is_empty()
    );

    // Everything accepted: `partialSuccess` is left out.
    let clean = json!({"resourceLogs": [{"scopeLogs": [{"logRecords": [
        record(json!({"exception.type": "Timeout"}))]}]}]});
    let answer = post_logs(
        &server,
        Some(&key),
        "application/json",
        clean.to_string().as_bytes(),
    );
    assert_eq!(
        (answer.status, answer.json()),
        (200, json!({})),
        "{}",
        answer.body
    );

    // Failures: the HTTP status OTLP asks for and a google.rpc.Status in the request's
    // encoding; the server keeps serving.
    let no_key = post_logs(&server, None, "application/json", b"{}");
    assert_eq!(no_key.status, 401);
    assert_eq!(no_key.json()["code"], 16, "{}", no_key.body);
    let malformed = post_logs(
        &server,
        Some(&key),
        "application/json",
        br#"{"resourceLogs": 7}"#,
    );
    assert_eq!(malformed.status, 400);
    assert_eq!(malformed.json()["code"], 3);
    assert!(
        malformed.json()["message"]
            .as_str()
            .is_some_and(|m| m.contains("resourceLogs"))
    );
    let garbage = post_logs(
        &server,
        Some(&key),
        "application/x-protobuf",
        &[0x0a, 0xff, 0xff, 0x01],
    );
    assert_eq!(garbage.status, 400);
    assert_eq!(
        garbage.header("content-type"),
        Some("application/x-protobuf")
    );
    let status = Status::decode(&garbage.bytes[..]).expect("a google.rpc.Status");
    assert_eq!(status.code, 3);
    assert!(
        status.message.contains("not an OTLP logs export request"),
        "{status:?}"
    );
    let text = post_logs(&server, Some(&key), "text/plain", b"hello");
    assert_eq!(text.status, 415);
    let empty = post_logs(&server, Some(&key), "application/x-protobuf", b"");
    assert_eq!(
        (empty.status, empty.body.as_str()),
        (200, ""),
        "an empty export succeeds"
    );
    assert_eq!(server.get("/healthz", &admin).status, 200);
}
