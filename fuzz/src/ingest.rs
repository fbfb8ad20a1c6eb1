//! Request splitting and validation: a body as a JSON object, a JSON array or NDJSON, then
//! every event validated and scrubbed, as `POST /v1/{audit,threat}-events` does.

use logvault_core::EventKind;
use logvault_core::validate::{Limits, parse_batch, validate_event};
use serde_json::Value;

/// Mode bit 0: NDJSON; bit 1: threat events.
pub fn run(data: &[u8]) {
    let Some((mode, body)) = crate::split_mode(data) else {
        return;
    };
    let ndjson = mode & 1 == 1;
    let kind = if mode & 2 == 2 {
        EventKind::Threat
    } else {
        EventKind::Audit
    };
    let limits = Limits::default();
    let Ok(values) = parse_batch(body, ndjson, &limits) else {
        return;
    };
    assert!(!values.is_empty() && values.len() <= limits.max_events);
    for (index, value) in values.iter().enumerate() {
        match validate_event(kind, index, value, "mer_fuzz", &limits) {
            Ok(event) => {
                let body: Value = serde_json::from_str(&event.body).expect("body is JSON");
                let object = body.as_object().expect("body is an object");
                for server_field in ["id", "account_id", "occurred_at"] {
                    assert!(!object.contains_key(server_field), "{server_field} kept");
                }
                assert!(
                    kind == EventKind::Audit || object.contains_key("redactions"),
                    "threat events carry a redactions summary"
                );
            }
            Err(problems) => {
                assert!(!problems.is_empty(), "a refusal names its problems");
                assert!(problems.iter().all(|p| p.index == index));
            }
        }
    }
}
