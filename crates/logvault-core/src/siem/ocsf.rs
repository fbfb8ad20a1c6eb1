//! Events as OCSF 1.5.0 JSON: audit events as Authentication (class 3002), threat events as
//! Base Event (class 0).
//!
//! Threat events are errors that SDKs and APIs report, not a record of one API operation by
//! an actor: API Activity (6003) requires an `actor`, an `api` and a source endpoint, and an
//! activity among Create, Read, Update and Delete, none of which an SDK error carries. Base
//! Event says exactly what is known (a failure, its type, code and message) and keeps the
//! rest under `unmapped`, where nothing is invented.
//!
//! Times are the service's: `time` is `received_at` in milliseconds, and the client's claimed
//! time is `metadata.original_time`. `metadata.uid` is the event id (for de-duplication),
//! `metadata.sequence` its `seq`, `metadata.tenant_uid` its account.

use serde_json::{Map, Value, json};

use super::{Fields, PRODUCT, PRODUCT_VERSION, is_sign_in, is_sign_out};
use crate::{EventKind, StoredEvent};

/// The OCSF schema version the events follow.
pub const OCSF_VERSION: &str = "1.5.0";

/// The OCSF class of `kind`'s events.
pub fn class_uid(kind: EventKind) -> u32 {
    match kind {
        EventKind::Audit => 3002,
        EventKind::Threat => 0,
    }
}

/// The event as one OCSF event object.
pub fn event(event: &StoredEvent) -> Value {
    let fields = Fields::of(event);
    let mut object = match event.kind {
        EventKind::Audit => authentication(&fields),
        EventKind::Threat => base_event(&fields),
    };
    object.insert("metadata".into(), metadata(event, &fields));
    object.insert("time".into(), millis(event.received_at.0).into());
    Value::Object(object)
}

/// Milliseconds since the epoch, OCSF's timestamp.
fn millis(micros: i64) -> i64 {
    micros.div_euclid(1000)
}

fn metadata(event: &StoredEvent, fields: &Fields) -> Value {
    let mut metadata = Map::new();
    metadata.insert("version".into(), OCSF_VERSION.into());
    metadata.insert(
        "product".into(),
        json!({"name": PRODUCT, "vendor_name": PRODUCT, "version": PRODUCT_VERSION}),
    );
    metadata.insert("uid".into(), event.event_id.clone().into());
    metadata.insert("sequence".into(), event.seq.into());
    metadata.insert("tenant_uid".into(), event.account_id.clone().into());
    metadata.insert("log_name".into(), event.kind.as_str().into());
    metadata.insert("logged_time".into(), millis(event.received_at.0).into());
    if let Some(occurred_at) = event.occurred_at {
        metadata.insert("original_time".into(), occurred_at.to_rfc3339().into());
    }
    let code = match event.kind {
        EventKind::Audit => fields.text("/action"),
        EventKind::Threat => fields.text("/error_type"),
    };
    if let Some(code) = code {
        metadata.insert("event_code".into(), code.into());
    }
    if let Some(request_id) = fields.text("/request_id") {
        metadata.insert("correlation_uid".into(), request_id.into());
    }
    Value::Object(metadata)
}

/// An audit event as Authentication: sign-ins are Logon, sign-outs Logoff, every other
/// action Other with the action as the activity's name.
fn authentication(fields: &Fields) -> Map<String, Value> {
    let action = fields.text("/action").unwrap_or_default();
    let (activity_id, activity_name) = if is_sign_in(&action) {
        (1, "Logon".to_string())
    } else if is_sign_out(&action) {
        (2, "Logoff".to_string())
    } else {
        (99, action.clone())
    };
    let success = fields.text("/outcome").as_deref() != Some("failure");
    let mut object = Map::new();
    object.insert("class_uid".into(), 3002.into());
    object.insert("class_name".into(), "Authentication".into());
    object.insert("category_uid".into(), 3.into());
    object.insert(
        "category_name".into(),
        "Identity & Access Management".into(),
    );
    object.insert("activity_id".into(), activity_id.into());
    object.insert("activity_name".into(), activity_name.clone().into());
    object.insert("type_uid".into(), (300_200 + activity_id).into());
    object.insert(
        "type_name".into(),
        format!("Authentication: {activity_name}").into(),
    );
    let (severity_id, severity) = if success {
        (1, "Informational")
    } else {
        (3, "Medium")
    };
    object.insert("severity_id".into(), severity_id.into());
    object.insert("severity".into(), severity.into());
    object.insert("status_id".into(), if success { 1 } else { 2 }.into());
    object.insert(
        "status".into(),
        if success { "Success" } else { "Failure" }.into(),
    );
    let reason = fields.text("/reason");
    if let Some(reason) = &reason {
        object.insert("status_detail".into(), reason.clone().into());
    }
    let mut message = format!("{action} {}", if success { "succeeded" } else { "failed" });
    if let Some(reason) = &reason {
        message.push_str(": ");
        message.push_str(reason);
    }
    object.insert("message".into(), message.into());
    object.insert("user".into(), user(fields));
    // The service signed in to is the account that recorded the event.
    if let Some(account_id) = fields.text("/account_id") {
        object.insert("service".into(), json!({"uid": account_id}));
    }
    if let Some(ip) = fields.text("/origin/ip") {
        object.insert("src_endpoint".into(), json!({"ip": ip}));
    }
    if let Some(user_agent) = fields.text("/origin/user_agent") {
        object.insert("http_request".into(), json!({"user_agent": user_agent}));
    }
    if let Some(Value::Bool(mfa)) = fields.get("/metadata/mfa") {
        object.insert("is_mfa".into(), (*mfa).into());
    }
    object.insert(
        "unmapped".into(),
        unmapped(
            fields,
            &["account_seq", "leaf_hash", "metadata", "redactions"],
        ),
    );
    object
}

/// The actor as an OCSF user: people are User, the system System, API keys Other.
fn user(fields: &Fields) -> Value {
    let mut user = Map::new();
    let (type_id, type_name) = match fields.text("/actor/type").as_deref() {
        Some("user") => (1, "User"),
        Some("system") => (3, "System"),
        Some("api_key") => (99, "API key"),
        _ => (0, "Unknown"),
    };
    user.insert("type_id".into(), type_id.into());
    user.insert("type".into(), type_name.into());
    match fields.text("/actor/id") {
        Some(id) => user.insert("uid".into(), id.into()),
        None => user.insert("name".into(), "unknown".into()),
    };
    if let Some(name) = fields.text("/actor/name") {
        user.insert("name".into(), name.into());
    }
    Value::Object(user)
}

/// A threat event as a Base Event: always a failure, its error type as the status detail and
/// event code, its error code as the status code.
fn base_event(fields: &Fields) -> Map<String, Value> {
    let mut object = Map::new();
    object.insert("class_uid".into(), 0.into());
    object.insert("class_name".into(), "Base Event".into());
    object.insert("category_uid".into(), 0.into());
    object.insert("category_name".into(), "Uncategorized".into());
    object.insert("activity_id".into(), 99.into());
    object.insert("activity_name".into(), "Error".into());
    object.insert("type_uid".into(), 99.into());
    object.insert("type_name".into(), "Base Event: Other".into());
    // A server error from the API is worse than a client-side one.
    let server_error = fields
        .get("/api/status")
        .and_then(Value::as_u64)
        .is_some_and(|status| status >= 500);
    let (severity_id, severity) = if server_error {
        (4, "High")
    } else {
        (3, "Medium")
    };
    object.insert("severity_id".into(), severity_id.into());
    object.insert("severity".into(), severity.into());
    object.insert("status_id".into(), 2.into());
    object.insert("status".into(), "Failure".into());
    if let Some(error_type) = fields.text("/error_type") {
        object.insert("status_detail".into(), error_type.into());
    }
    if let Some(code) = fields.text("/error_code") {
        object.insert("status_code".into(), code.into());
    }
    if let Some(message) = fields.text("/message") {
        object.insert("message".into(), message.into());
    }
    object.insert(
        "unmapped".into(),
        unmapped(
            fields,
            &[
                "source",
                "version",
                "environment",
                "sdk",
                "api",
                "stacktrace",
                "account_seq",
                "leaf_hash",
                "metadata",
                "redactions",
            ],
        ),
    );
    object
}

/// The fields OCSF has no place for, as they are in the API's JSON.
fn unmapped(fields: &Fields, names: &[&str]) -> Value {
    let mut object = Map::new();
    for name in names {
        if let Some(value) = fields.json().get(*name).filter(|value| !value.is_null()) {
            object.insert((*name).into(), value.clone());
        }
    }
    Value::Object(object)
}
