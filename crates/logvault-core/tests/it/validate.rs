//! Request splitting and validation: the events of a body come out the same whether it is
//! sent as one object, an array or NDJSON; no body or event makes validation panic; an
//! accepted event's stored body holds no server field, and a refused one names its problems.

use logvault_core::EventKind;
use logvault_core::validate::{Limits, parse_batch, validate_event};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

/// Any JSON value, a few levels deep, with the strings and keys the validator knows.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        prop_oneof![Just(1.5), Just(-0.25), Just(1e300)].prop_map(Value::from),
        "\\PC{0,20}".prop_map(Value::String),
        prop_oneof![
            Just("success"),
            Just("failure"),
            Just("sdk"),
            Just("api"),
            Just("user"),
            Just("mer_1"),
            Just("2026-11-25T10:00:00Z"),
            Just("203.0.113.7"),
            Just("a\u{0}b"),
        ]
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..6)
                .prop_map(|pairs| Value::Object(pairs.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Field names of both kinds of event, and a few others.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
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
            "source",
            "error_type",
            "error_code",
            "message",
            "version",
            "environment",
            "sdk",
            "api",
            "stacktrace",
            "type",
            "ip",
            "user_agent",
            "name",
            "path",
            "status",
            "method",
            "password",
        ])
        .prop_map(str::to_string),
        "[a-z_]{1,8}",
    ]
}

/// Events that are objects of known fields with any values: most are refused, some pass.
fn event() -> impl Strategy<Value = Value> {
    prop::collection::vec((key(), json_value()), 0..10)
        .prop_map(|pairs| Value::Object(pairs.into_iter().collect()))
}

fn kind() -> impl Strategy<Value = EventKind> {
    prop_oneof![Just(EventKind::Audit), Just(EventKind::Threat)]
}

proptest! {
    #![proptest_config(crate::config(256))]

    #[test]
    fn validation_accepts_or_names_problems_without_a_panic(kind in kind(), value in event()) {
        match validate_event(kind, 3, &value, "mer_1", &Limits::default()) {
            Ok(event) => {
                let body: Value = serde_json::from_str(&event.body).expect("body is JSON");
                for server_field in ["id", "account_id", "occurred_at"] {
                    prop_assert!(body.get(server_field).is_none(), "{} kept", server_field);
                }
                prop_assert!(kind == EventKind::Audit || body.get("redactions").is_some());
                prop_assert!(!event.body.contains("\\u0000"), "NUL stored");
            }
            Err(problems) => {
                prop_assert!(!problems.is_empty());
                prop_assert!(problems.iter().all(|p| p.index == 3));
            }
        }
    }

    #[test]
    fn any_value_is_refused_or_accepted_without_a_panic(kind in kind(), value in json_value()) {
        let _ = validate_event(kind, 0, &value, "mer_1", &Limits::default());
    }

    #[test]
    fn an_object_an_array_and_ndjson_split_into_the_same_events(
        events in prop::collection::vec(event(), 1..6),
    ) {
        let limits = Limits::default();
        let array = Value::Array(events.clone()).to_string();
        prop_assert_eq!(parse_batch(array.as_bytes(), false, &limits), Ok(events.clone()));
        let ndjson: String = events.iter().map(|e| format!("{e}\n\n")).collect();
        prop_assert_eq!(parse_batch(ndjson.as_bytes(), true, &limits), Ok(events.clone()));
        let object = events[0].to_string();
        prop_assert_eq!(parse_batch(object.as_bytes(), false, &limits), Ok(vec![events[0].clone()]));
    }

    #[test]
    fn no_body_makes_splitting_panic(
        body in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..64),
            "[\\[\\]{}\",:\n 0-9a-z\\\\]{0,64}".prop_map(String::into_bytes),
        ],
        ndjson in any::<bool>(),
    ) {
        let limits = Limits { max_events: 3, ..Limits::default() };
        if let Ok(values) = parse_batch(&body, ndjson, &limits) {
            prop_assert!(!values.is_empty() && values.len() <= 3);
        }
    }
}

#[test]
fn a_valid_event_of_each_kind_passes() {
    let audit = json!({"action": "user.login", "outcome": "success",
                       "actor": {"id": "usr_1", "type": "user"}});
    let threat = json!({"source": "api", "error_type": "Timeout", "message": "timed out"});
    for (kind, value) in [(EventKind::Audit, audit), (EventKind::Threat, threat)] {
        let result = validate_event(kind, 0, &value, "mer_1", &Limits::default());
        assert!(result.is_ok(), "{kind:?}: {result:?}");
    }
}
