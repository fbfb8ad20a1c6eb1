//! The events of the wire contract as types: what ingest accepts ([`AuditEventInput`],
//! [`ThreatEventInput`]) and what reads return ([`AuditEvent`], [`ThreatEvent`]). The API's
//! OpenAPI document is derived from them.
//!
//! Validation itself walks the JSON (`validate`), because it must name every problem of every
//! event at once, which a typed deserializer cannot. What keeps these types and the validator
//! together is tested: their field names are the validator's, an event built from each type
//! passes validation, and every stored event's JSON (`StoredEvent::to_json`) reads back into
//! the output types with no field left over.
//!
//! Lengths are the default [`Limits`](crate::validate::Limits) and count UTF-8 bytes (JSON
//! Schema's `maxLength` counts characters, so it is an upper bound for text beyond ASCII). No
//! string may hold U+0000.
//!
//! `ToSchema` is derived unconditionally rather than behind a feature: the derive only adds a
//! trait impl, the server always wants it, and a feature would be one more build to keep
//! compiling.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;
use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, SchemaFormat, Type};
use utoipa::openapi::{KnownFormat, RefOr};

/// Whether the action succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// It succeeded.
    Success,
    /// It failed.
    Failure,
}

/// Who acted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ActorKind {
    /// A person.
    User,
    /// A machine holding an API key.
    ApiKey,
    /// The service itself.
    System,
}

/// Where an error came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ThreatSource {
    /// A client SDK.
    Sdk,
    /// The platform's API.
    Api,
}

/// An IPv4 or IPv6 address.
fn ip_address() -> Schema {
    let format = |known| {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(known)))
    };
    OneOfBuilder::new()
        .item(format(KnownFormat::Ipv4))
        .item(format(KnownFormat::Ipv6))
        .description(Some("An IPv4 or IPv6 address"))
        .into()
}

/// A JSON object of the client's own fields: at most 16 KiB serialized, nested at most 8 deep.
fn metadata() -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .description(Some(
            "Free-form JSON object, at most 16 KiB serialized and nested at most 8 levels deep",
        ))
        .into()
}

/// The `actor` of an audit event being ingested.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActorInput {
    /// The actor's identifier (a user id, a key id).
    #[schema(min_length = 1, max_length = 256)]
    pub id: String,
    /// What kind of actor.
    #[serde(rename = "type", default)]
    pub kind: Option<ActorKind>,
    /// A display name.
    #[serde(default)]
    #[schema(max_length = 256)]
    pub name: Option<String>,
}

/// Where the request behind an audit event came from.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OriginInput {
    /// The client's address.
    #[serde(default)]
    #[schema(schema_with = ip_address, required = false)]
    pub ip: Option<String>,
    /// The client's `User-Agent`.
    #[serde(default)]
    #[schema(max_length = 8192)]
    pub user_agent: Option<String>,
}

/// An audit event as a client sends it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditEventInput {
    /// The client's id for the event, unique per account: sending it again with the same
    /// content is answered as a duplicate, with different content 409. Without it the
    /// service assigns a UUIDv7.
    #[serde(default)]
    #[schema(
        min_length = 1,
        max_length = 128,
        pattern = "^[^/\\x00-\\x1f\\x7f-\\x9f]+$"
    )]
    pub id: Option<String>,
    /// The account the event belongs to; the key's own account when absent.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 64, pattern = "^[A-Za-z0-9_.-]+$")]
    pub account_id: Option<String>,
    /// What happened, e.g. `user.login`.
    #[schema(min_length = 1, max_length = 128, pattern = "^[A-Za-z0-9._:-]+$")]
    pub action: String,
    /// Whether it succeeded.
    pub outcome: Outcome,
    /// Why, e.g. `bad_password`.
    #[serde(default)]
    #[schema(max_length = 256)]
    pub reason: Option<String>,
    /// Who acted.
    pub actor: ActorInput,
    /// Where the request came from.
    #[serde(default)]
    pub origin: Option<OriginInput>,
    /// The client's request id.
    #[serde(default)]
    #[schema(max_length = 256)]
    pub request_id: Option<String>,
    /// The client's claimed time (RFC 3339); kept, never used for ordering.
    #[serde(default)]
    #[schema(format = DateTime)]
    pub occurred_at: Option<String>,
    /// The client's own fields.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = metadata, required = false)]
    pub metadata: Option<Map<String, Value>>,
}

/// The SDK that reported a threat event.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SdkInput {
    /// The SDK's name, e.g. `ios`.
    #[serde(default)]
    #[schema(max_length = 256)]
    pub name: Option<String>,
    /// The platform it runs on, e.g. `iOS 17.2`.
    #[serde(default)]
    #[schema(max_length = 256)]
    pub platform: Option<String>,
}

/// The API call behind a threat event.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiCallInput {
    /// The HTTP method.
    #[serde(default)]
    #[schema(max_length = 16)]
    pub method: Option<String>,
    /// The request path.
    #[serde(default)]
    #[schema(max_length = 2048)]
    pub path: Option<String>,
    /// The HTTP status answered.
    #[serde(default)]
    #[schema(minimum = 100, maximum = 599)]
    pub status: Option<u16>,
}

/// A threat event (an SDK or API error) as a client sends it. Text that looks like customer
/// data (card numbers, secrets, addresses) is scrubbed before it is stored.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ThreatEventInput {
    /// The client's id for the event (see the audit event's `id`).
    #[serde(default)]
    #[schema(
        min_length = 1,
        max_length = 128,
        pattern = "^[^/\\x00-\\x1f\\x7f-\\x9f]+$"
    )]
    pub id: Option<String>,
    /// The account the event belongs to; the key's own account when absent.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 64, pattern = "^[A-Za-z0-9_.-]+$")]
    pub account_id: Option<String>,
    /// Where the error came from.
    pub source: ThreatSource,
    /// The error's type, e.g. `NetworkTimeout`.
    #[schema(min_length = 1, max_length = 256)]
    pub error_type: String,
    /// The error's code, e.g. `E_TIMEOUT`.
    #[serde(default)]
    #[schema(max_length = 256)]
    pub error_code: Option<String>,
    /// What went wrong.
    #[schema(min_length = 1, max_length = 8192)]
    pub message: String,
    /// The SDK or API version, e.g. `ios-sdk 4.2.1`.
    #[serde(default)]
    #[schema(max_length = 256)]
    pub version: Option<String>,
    /// The environment, e.g. `production`.
    #[serde(default)]
    #[schema(max_length = 64)]
    pub environment: Option<String>,
    /// The SDK that reported it.
    #[serde(default)]
    pub sdk: Option<SdkInput>,
    /// The API call that failed.
    #[serde(default)]
    pub api: Option<ApiCallInput>,
    /// The stack trace.
    #[serde(default)]
    #[schema(max_length = 65536)]
    pub stacktrace: Option<String>,
    /// The client's claimed time (RFC 3339); kept, never used for ordering.
    #[serde(default)]
    #[schema(format = DateTime)]
    pub occurred_at: Option<String>,
    /// The client's own fields.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = metadata, required = false)]
    pub metadata: Option<Map<String, Value>>,
}

/// The body of an ingest request: one event or an array of 1 to 1000 (as JSON), or one event
/// per line (as NDJSON, `application/x-ndjson`).
pub struct IngestBody<T>(std::marker::PhantomData<T>);

impl<T: ToSchema> utoipa::PartialSchema for IngestBody<T> {
    fn schema() -> RefOr<Schema> {
        let one = RefOr::Ref(utoipa::openapi::Ref::from_schema_name(T::name()));
        let many = utoipa::openapi::schema::ArrayBuilder::new()
            .items(one.clone())
            .min_items(Some(1))
            .max_items(Some(1000));
        OneOfBuilder::new().item(one).item(many).into()
    }
}

impl<T: ToSchema> ToSchema for IngestBody<T> {
    fn name() -> std::borrow::Cow<'static, str> {
        format!("{}Batch", T::name()).into()
    }

    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((T::name().into(), T::schema()));
        T::schemas(schemas);
    }
}

/// The body of an audit-event ingest (a plain name for the OpenAPI derive).
pub type AuditIngestBody = IngestBody<AuditEventInput>;
/// The body of a threat-event ingest (a plain name for the OpenAPI derive).
pub type ThreatIngestBody = IngestBody<ThreatEventInput>;

/// What was scrubbed out of an event: counts per kind of data, never the values.
pub type RedactionCounts = BTreeMap<String, u64>;

/// The stored `actor` of an audit event.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Actor {
    /// The actor's identifier.
    pub id: String,
    /// What kind of actor.
    #[serde(rename = "type", default)]
    pub kind: Option<ActorKind>,
    /// A display name.
    #[serde(default)]
    pub name: Option<String>,
}

/// The stored `origin` of an audit event.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Origin {
    /// The client's address.
    #[serde(default)]
    pub ip: Option<String>,
    /// The client's `User-Agent`.
    #[serde(default)]
    pub user_agent: Option<String>,
}

/// `audit` or `threat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// An audit event.
    Audit,
    /// A threat event.
    Threat,
}

/// An audit event as stored and returned by reads.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditEvent {
    /// The event's id, unique per account.
    pub id: String,
    /// The owning account.
    pub account_id: String,
    /// Position in the deployment's log, from 1.
    #[schema(minimum = 1)]
    pub seq: u64,
    /// Gapless position within the account, from 1.
    #[schema(minimum = 1)]
    pub account_seq: u64,
    /// The service's clock at commit (UTC, microseconds).
    #[schema(format = DateTime)]
    pub received_at: String,
    /// The client's claimed time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime, nullable = false)]
    pub occurred_at: Option<String>,
    /// Always `audit`.
    pub kind: Kind,
    /// 16 random bytes drawn at ingest and covered by the leaf hash, in hex.
    #[schema(pattern = "^[0-9a-f]{32}$")]
    pub nonce: String,
    /// RFC 6962 leaf hash of the event's canonical bytes, in hex.
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub leaf_hash: String,
    /// What happened.
    pub action: String,
    /// Whether it succeeded.
    pub outcome: Outcome,
    /// Why.
    #[serde(default)]
    pub reason: Option<String>,
    /// Who acted.
    pub actor: Actor,
    /// Where the request came from.
    #[serde(default)]
    pub origin: Option<Origin>,
    /// The client's request id.
    #[serde(default)]
    pub request_id: Option<String>,
    /// The client's own fields, scrubbed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = metadata, required = false)]
    pub metadata: Option<Map<String, Value>>,
    /// What was scrubbed out of `metadata`, when anything was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub redactions: Option<RedactionCounts>,
}

/// The stored `sdk` of a threat event.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Sdk {
    /// The SDK's name.
    #[serde(default)]
    pub name: Option<String>,
    /// The platform it runs on.
    #[serde(default)]
    pub platform: Option<String>,
}

/// The stored `api` of a threat event.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiCall {
    /// The HTTP method.
    #[serde(default)]
    pub method: Option<String>,
    /// The request path.
    #[serde(default)]
    pub path: Option<String>,
    /// The HTTP status answered.
    #[serde(default)]
    pub status: Option<u16>,
}

/// A threat event as stored (scrubbed) and returned by reads.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ThreatEvent {
    /// The event's id, unique per account.
    pub id: String,
    /// The owning account.
    pub account_id: String,
    /// Position in the deployment's log, from 1.
    #[schema(minimum = 1)]
    pub seq: u64,
    /// Gapless position within the account, from 1.
    #[schema(minimum = 1)]
    pub account_seq: u64,
    /// The service's clock at commit (UTC, microseconds).
    #[schema(format = DateTime)]
    pub received_at: String,
    /// The client's claimed time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime, nullable = false)]
    pub occurred_at: Option<String>,
    /// Always `threat`.
    pub kind: Kind,
    /// 16 random bytes drawn at ingest and covered by the leaf hash, in hex.
    #[schema(pattern = "^[0-9a-f]{32}$")]
    pub nonce: String,
    /// RFC 6962 leaf hash of the event's canonical bytes, in hex.
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub leaf_hash: String,
    /// Where the error came from.
    pub source: ThreatSource,
    /// The error's type.
    pub error_type: String,
    /// The error's code.
    #[serde(default)]
    pub error_code: Option<String>,
    /// What went wrong, scrubbed.
    pub message: String,
    /// The SDK or API version.
    #[serde(default)]
    pub version: Option<String>,
    /// The environment.
    #[serde(default)]
    pub environment: Option<String>,
    /// The SDK that reported it.
    #[serde(default)]
    pub sdk: Option<Sdk>,
    /// The API call that failed.
    #[serde(default)]
    pub api: Option<ApiCall>,
    /// The stack trace, scrubbed.
    #[serde(default)]
    pub stacktrace: Option<String>,
    /// The client's own fields, scrubbed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = metadata, required = false)]
    pub metadata: Option<Map<String, Value>>,
    /// What was scrubbed out of the event (kinds and counts, never values).
    pub redactions: RedactionCounts,
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use utoipa::PartialSchema;

    use super::*;
    use crate::event::EventKind;
    use crate::validate::{Limits, validate_event};
    use crate::{Micros, StoredEvent};

    /// The property names of a component schema, as the OpenAPI document shows them.
    fn properties<T: ToSchema>() -> Vec<String> {
        let schema = serde_json::to_value(T::schema()).expect("schema JSON");
        let mut names: Vec<String> = schema["properties"]
            .as_object()
            .expect("properties")
            .keys()
            .cloned()
            .collect();
        names.sort();
        names
    }

    fn sorted(names: &[&str]) -> Vec<String> {
        let mut names: Vec<String> = names.iter().map(|name| name.to_string()).collect();
        names.sort();
        names
    }

    #[test]
    fn input_types_have_the_validators_fields() {
        use crate::validate::{AUDIT_FIELDS, THREAT_FIELDS};
        assert_eq!(properties::<AuditEventInput>(), sorted(AUDIT_FIELDS));
        assert_eq!(properties::<ThreatEventInput>(), sorted(THREAT_FIELDS));
    }

    /// Events built from the input types, fullest first, then with the required fields only:
    /// the validator accepts each, and without any one required field refuses it.
    #[test]
    fn events_of_the_input_types_validate() {
        let audit = AuditEventInput {
            id: Some("e-1".into()),
            account_id: Some("mer_1".into()),
            action: "user.login".into(),
            outcome: Outcome::Failure,
            reason: Some("bad_password".into()),
            actor: ActorInput {
                id: "usr_1".into(),
                kind: Some(ActorKind::ApiKey),
                name: Some("Ada".into()),
            },
            origin: Some(OriginInput {
                ip: Some("2001:db8::1".into()),
                user_agent: Some("curl/8".into()),
            }),
            request_id: Some("req_1".into()),
            occurred_at: Some("2026-11-25T10:00:00Z".into()),
            metadata: Some(Map::from_iter([("mfa".to_string(), json!(true))])),
        };
        let threat = ThreatEventInput {
            id: None,
            account_id: None,
            source: ThreatSource::Api,
            error_type: "Timeout".into(),
            error_code: Some("E_TIMEOUT".into()),
            message: "timed out".into(),
            version: Some("API 2024-06-01".into()),
            environment: Some("sandbox".into()),
            sdk: Some(SdkInput {
                name: Some("ios".into()),
                platform: Some("iOS 17.2".into()),
            }),
            api: Some(ApiCallInput {
                method: Some("POST".into()),
                path: Some("/v1/payments".into()),
                status: Some(504),
            }),
            stacktrace: Some("at main".into()),
            occurred_at: None,
            metadata: None,
        };
        let cases = [
            (EventKind::Audit, serde_json::to_value(&audit), "audit"),
            (EventKind::Threat, serde_json::to_value(&threat), "threat"),
        ];
        for (kind, full, name) in cases {
            let full = full.expect("event JSON");
            let required: Vec<String> = serde_json::to_value(match kind {
                EventKind::Audit => AuditEventInput::schema(),
                EventKind::Threat => ThreatEventInput::schema(),
            })
            .expect("schema")["required"]
                .as_array()
                .expect("required")
                .iter()
                .map(|name| name.as_str().expect("name").to_string())
                .collect();
            let minimal: Map<String, Value> = full
                .as_object()
                .expect("object")
                .iter()
                .filter(|(field, _)| required.contains(field))
                .map(|(field, value)| (field.clone(), value.clone()))
                .collect();
            for event in [full.clone(), Value::Object(minimal.clone())] {
                let checked = validate_event(kind, 0, &event, "mer_1", &Limits::default());
                assert!(checked.is_ok(), "{name}: {event} -> {checked:?}");
            }
            for field in &required {
                let mut without = minimal.clone();
                without.remove(field);
                let checked = validate_event(
                    kind,
                    0,
                    &Value::Object(without),
                    "mer_1",
                    &Limits::default(),
                );
                assert!(checked.is_err(), "{name} without {field} must be refused");
            }
        }
    }

    /// Every stored event's JSON reads into its output type with nothing left over (the output
    /// types refuse unknown fields).
    #[test]
    fn stored_events_read_back_into_the_output_types() {
        let cases = [
            (
                EventKind::Audit,
                json!({"action": "user.login", "outcome": "success", "actor": {"id": "u", "type": null},
                       "reason": null, "origin": {"ip": "203.0.113.7"}, "metadata": {"card": "4111 1111 1111 1111"}}),
            ),
            (
                EventKind::Audit,
                json!({"action": "a", "outcome": "failure", "actor": {"id": "u"}, "occurred_at": "2026-01-01T00:00:00Z"}),
            ),
            (
                EventKind::Threat,
                json!({"source": "sdk", "error_type": "E", "message": "card 4111111111111111",
                       "api": {"status": 500}, "sdk": {"name": "ios"}, "metadata": {}}),
            ),
        ];
        for (kind, input) in cases {
            let event = validate_event(kind, 0, &input, "mer_1", &Limits::default())
                .expect("valid")
                .stored(3, 2, Micros(1_764_000_000_000_000), [7; 16]);
            let json = StoredEvent::to_json(&event);
            let read = match kind {
                EventKind::Audit => serde_json::from_value::<AuditEvent>(json.clone()).map(drop),
                EventKind::Threat => serde_json::from_value::<ThreatEvent>(json.clone()).map(drop),
            };
            read.unwrap_or_else(|e| panic!("{json}: {e}"));
        }
    }
}
