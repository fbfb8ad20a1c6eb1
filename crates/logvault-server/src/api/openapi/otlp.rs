//! `POST /v1/logs` in the OpenAPI document. OTLP/HTTP is OpenTelemetry's protocol, not ours:
//! its messages are the opentelemetry-proto `ExportLogsServiceRequest`/`Response` and
//! `google.rpc.Status` (read and written in `logvault_core::otlp`), and failures answer with a
//! `Status` in the request's encoding rather than problem+json, as the OTLP specification
//! says. The schemas here describe the JSON encoding of those messages, the part of them
//! logvault reads; unknown fields are ignored, as the protocol asks.

use serde::Serialize;
use utoipa::openapi::path::Operation;
use utoipa::openapi::schema::{ObjectBuilder, Schema, SchemaFormat, Type};
use utoipa::openapi::{ContentBuilder, KnownFormat, Ref, RefOr, ResponseBuilder};
use utoipa::{PartialSchema, ToSchema};

/// A message in protobuf's binary encoding.
pub(crate) struct Protobuf;

impl PartialSchema for Protobuf {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary)))
            .description(Some("Protobuf binary encoding"))
            .into()
    }
}

impl ToSchema for Protobuf {}

/// A 64-bit integer as OTLP/JSON writes it: a decimal string (protobuf's JSON mapping) or a
/// number.
fn integer_64(pattern: &str, minimum: utoipa::Number, maximum: utoipa::Number) -> Schema {
    utoipa::openapi::schema::OneOfBuilder::new()
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(pattern)),
        )
        .item(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(minimum))
                .maximum(Some(maximum)),
        )
        .into()
}

fn unsigned_64() -> Schema {
    let max = utoipa::Number::UInt(usize::try_from(u64::MAX).unwrap_or(usize::MAX));
    integer_64("^[0-9]{1,19}$", utoipa::Number::UInt(0), max)
}

fn signed_64() -> Schema {
    let (min, max) = (i64::MIN, i64::MAX);
    let bound = |value: i64| utoipa::Number::Int(isize::try_from(value).unwrap_or_default());
    integer_64("^-?[0-9]{1,18}$", bound(min), bound(max))
}

/// An OTLP/JSON logs export (`opentelemetry.proto.collector.logs.v1.ExportLogsServiceRequest`).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)] // Schemas only; `logvault_core::otlp` decodes the request.
pub(crate) struct ExportLogsServiceRequest {
    /// Log records grouped by the resource (service) that produced them.
    resource_logs: Option<Vec<ResourceLogs>>,
}

/// The records of one resource.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
pub(crate) struct ResourceLogs {
    /// The resource: `service.name`, `service.version`, `deployment.environment.name`, ….
    resource: Option<Resource>,
    /// The records, grouped by instrumentation scope.
    scope_logs: Option<Vec<ScopeLogs>>,
    /// The semantic conventions' schema URL.
    schema_url: Option<String>,
}

/// A resource's attributes.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
pub(crate) struct Resource {
    /// Its attributes.
    attributes: Option<Vec<KeyValue>>,
}

/// The records of one instrumentation scope.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
pub(crate) struct ScopeLogs {
    /// The records.
    log_records: Option<Vec<LogRecord>>,
    /// The semantic conventions' schema URL.
    schema_url: Option<String>,
}

/// One log record; README says which attributes become which event fields.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
pub(crate) struct LogRecord {
    /// When it happened, in nanoseconds since the epoch.
    #[schema(schema_with = unsigned_64, required = false)]
    time_unix_nano: Option<String>,
    /// When the SDK saw it, in nanoseconds since the epoch.
    #[schema(schema_with = unsigned_64, required = false)]
    observed_time_unix_nano: Option<String>,
    /// The severity, 1 (TRACE) to 24 (FATAL4).
    #[schema(minimum = 0, maximum = 24)]
    severity_number: Option<u8>,
    /// The severity as the source wrote it.
    severity_text: Option<String>,
    /// The message.
    body: Option<AnyValue>,
    /// `exception.*`, `event.name`, `user.id`, ….
    attributes: Option<Vec<KeyValue>>,
    /// The event's name (`event.name`).
    event_name: Option<String>,
}

/// One attribute.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub(crate) struct KeyValue {
    /// The attribute's name.
    key: String,
    /// Its value.
    value: Option<AnyValue>,
}

/// An attribute value; one of its fields is set.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
pub(crate) struct AnyValue {
    /// A string.
    string_value: Option<String>,
    /// A boolean.
    bool_value: Option<bool>,
    /// A 64-bit integer.
    #[schema(schema_with = signed_64, required = false)]
    int_value: Option<String>,
    /// A floating-point number.
    double_value: Option<f64>,
}

/// The answer to an export (`ExportLogsServiceResponse`): empty when every record was stored,
/// else `partialSuccess` counts and explains the rejected ones.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
pub(crate) struct ExportLogsServiceResponse {
    /// Set when records were rejected.
    partial_success: Option<ExportLogsPartialSuccess>,
}

/// The records that were not stored, and why.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
pub(crate) struct ExportLogsPartialSuccess {
    /// How many (a decimal string, as protobuf's JSON mapping writes 64-bit integers).
    #[schema(pattern = "^[0-9]+$")]
    rejected_log_records: String,
    /// The first few rejected records and why.
    error_message: String,
}

/// An OTLP failure (`google.rpc.Status`), in the request's encoding.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub(crate) struct Status {
    /// The gRPC status code.
    code: i32,
    /// What went wrong.
    message: String,
}

#[utoipa::path(
    post,
    path = "/v1/logs",
    tag = "ingest",
    operation_id = "ingestOtlpLogs",
    summary = "OpenTelemetry logs over OTLP/HTTP (the key needs `ingest`)",
    description = "Records become threat events (those with `exception.*` attributes) or audit \
        events (those whose `event.name` marks an access event); the rest are rejected through \
        `partialSuccess`. Validation, scrubbing, limits and durable acks are those of the native \
        ingest; a body may be gzipped (`Content-Encoding: gzip`). Failures answer with a \
        `google.rpc.Status` in the request's encoding.",
    request_body(
        description = "An `ExportLogsServiceRequest`, in protobuf or in OTLP/JSON",
        content(
            (Protobuf = "application/x-protobuf"),
            (ExportLogsServiceRequest = "application/json"),
        ),
    ),
    responses(
        (status = 200, description = "Every record not rejected in `partialSuccess` is durably stored", content(
            (Protobuf = "application/x-protobuf"),
            (ExportLogsServiceResponse = "application/json"),
        )),
    ),
)]
#[allow(dead_code)] // The route's documentation; `api::otlp::post_logs` serves it.
pub(crate) fn post_logs() {}

/// OTLP answers every failure with a `Status` (see the module documentation), for the same
/// statuses as the native ingest plus those any request can meet.
pub(crate) fn add_failures(operation: &mut Operation) {
    for status in [400, 401, 403, 408, 413, 415, 429, 500, 503] {
        let response = ResponseBuilder::new()
            .description("A `google.rpc.Status`, in the request's encoding")
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("Status")))
                    .build(),
            )
            .content(
                "application/x-protobuf",
                ContentBuilder::new()
                    .schema(Some(Protobuf::schema()))
                    .build(),
            )
            .build();
        operation
            .responses
            .responses
            .entry(status.to_string())
            .or_insert(RefOr::T(response));
    }
}
