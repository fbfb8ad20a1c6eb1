//! SIEM formats: CEF escaping of header fields and extension values, the RFC 5424 message
//! and its structured data, octet-counting framing, and the OCSF classes each kind maps to
//! (the OCSF schema itself is checked by the binary's tests, with the schema's own package).

use logvault_core::siem::{cef, ocsf, syslog};
use logvault_core::{EventKind, Micros, StoredEvent};
use serde_json::{Value, json};

fn stored(kind: EventKind, body: Value) -> StoredEvent {
    StoredEvent {
        seq: 42,
        account_seq: 7,
        kind,
        account_id: "mer_1".into(),
        event_id: "evt-1".into(),
        received_at: Micros(1_764_064_800_123_456),
        occurred_at: None,
        body: body.to_string(),
        nonce: [0; 16],
        leaf_hash: [1; 32],
    }
}

#[test]
fn cef_escapes_header_fields_and_extension_values() {
    let cases = [
        ("plain", "plain", "plain"),
        ("a|b", "a\\|b", "a|b"),
        ("back\\slash", "back\\\\slash", "back\\\\slash"),
        ("k=v", "k=v", "k\\=v"),
        ("two\nlines\r", "two lines ", "two\\nlines\\r"),
        ("|=\\\n", "\\|=\\\\ ", "|\\=\\\\\\n"),
    ];
    for (input, header, value) in cases {
        assert_eq!(cef::header(input), header, "header {input:?}");
        assert_eq!(cef::extension_value(input), value, "value {input:?}");
    }
}

#[test]
fn cef_lines_carry_the_event_and_never_break() {
    let audit = stored(
        EventKind::Audit,
        json!({"action": "user.login", "outcome": "failure", "reason": "bad=pass|word\nx",
               "actor": {"id": "usr\\42", "type": "user"}, "origin": {"ip": "203.0.113.7"}}),
    );
    let line = cef::line(&audit);
    let expected_start = "CEF:0|logvault|logvault|";
    assert!(line.starts_with(expected_start), "{line}");
    let header: Vec<&str> = line.splitn(8, '|').collect();
    assert_eq!(header[4], "user.login");
    assert_eq!(header[5], "user.login failure");
    assert_eq!(header[6], "5");
    let extension = header[7];
    for pair in [
        "rt=1764064800123",
        "externalId=evt-1",
        "cs1=mer_1 cs1Label=account",
        "cn1=42 cn1Label=seq",
        "act=user.login",
        "outcome=failure",
        "reason=bad\\=pass|word\\nx",
        "suid=usr\\\\42",
        "src=203.0.113.7",
    ] {
        assert!(extension.contains(pair), "{pair} in {extension}");
    }
    assert!(!line.contains('\n') && !line.contains('\r'));

    let threat = stored(
        EventKind::Threat,
        json!({"source": "api", "error_type": "Time|out", "message": "a\nb", "version": "v1",
               "environment": "production", "api": {"method": "POST", "path": "/v1/p", "status": 504},
               "redactions": {}}),
    );
    let line = cef::line(&threat);
    assert!(line.contains("|Time\\|out|a b|8|"), "{line}");
    assert!(line.contains("msg=a\\nb"), "{line}");
    assert!(line.contains("cn2=504 cn2Label=http_status"), "{line}");
}

#[test]
fn syslog_messages_have_structured_data_and_are_octet_counted() {
    let audit = stored(
        EventKind::Audit,
        json!({"action": "user.login", "outcome": "success", "actor": {"id": "usr_\"42]\\", "type": "user"}}),
    );
    let message = syslog::message(&audit, "host one");
    let expected = "<110>1 2025-11-25T10:00:00.123456Z hostone logvault - audit \
        [logvault@32473 id=\"evt-1\" account=\"mer_1\" seq=\"42\" action=\"user.login\" \
        outcome=\"success\" actor_id=\"usr_\\\"42\\]\\\\\" actor_type=\"user\"] {";
    assert!(message.starts_with(expected), "{message}");
    let json_part = &message[message.find("] {").unwrap_or(0) + 2..];
    let parsed: Value = serde_json::from_str(json_part).unwrap_or(Value::Null);
    assert_eq!(parsed["id"], "evt-1");
    assert_eq!(parsed["seq"], 42);

    let failed = stored(
        EventKind::Audit,
        json!({"action": "user.login", "outcome": "failure", "actor": {"id": "u", "type": "user"}}),
    );
    assert!(syslog::message(&failed, "h").starts_with("<108>1 "));
    let threat = stored(
        EventKind::Threat,
        json!({"source": "sdk", "error_type": "E", "message": "m", "redactions": {}}),
    );
    assert!(
        syslog::message(&threat, "")
            .starts_with("<11>1 2025-11-25T10:00:00.123456Z - logvault - threat ")
    );

    let frame = syslog::octet_counted("héllo");
    assert_eq!(frame, b"6 h\xc3\xa9llo");
}

#[test]
fn ocsf_classes_follow_the_kind() {
    let cases = [
        ("user.login", "success", 1, 300_201, 1),
        ("user.login", "failure", 1, 300_201, 2),
        ("user.logout", "success", 2, 300_202, 1),
        ("user.password_changed", "success", 99, 300_299, 1),
    ];
    for (action, outcome, activity, type_uid, status) in cases {
        let event = stored(
            EventKind::Audit,
            json!({"action": action, "outcome": outcome, "actor": {"id": "u", "type": "user"}}),
        );
        let ocsf = ocsf::event(&event);
        assert_eq!(ocsf["class_uid"], 3002, "{action}");
        assert_eq!(ocsf["activity_id"], activity, "{action}");
        assert_eq!(ocsf["type_uid"], type_uid, "{action}");
        assert_eq!(ocsf["status_id"], status, "{action}");
        assert_eq!(ocsf["metadata"]["uid"], "evt-1");
        assert_eq!(ocsf["metadata"]["sequence"], 42);
        assert_eq!(ocsf["time"], 1_764_064_800_123_i64);
    }
    let threat = stored(
        EventKind::Threat,
        json!({"source": "sdk", "error_type": "E", "message": "m", "redactions": {}}),
    );
    let ocsf = ocsf::event(&threat);
    assert_eq!(ocsf["class_uid"], 0);
    assert_eq!(ocsf["status_detail"], "E");
    assert_eq!(ocsf["unmapped"]["source"], "sdk");
}
