//! `GET /v1/openapi.json`: the OpenAPI 3.1 document of the whole `/v1` API, derived from the
//! handlers' annotations and the types they read and answer with, so it cannot drift from
//! the code. It also lists every problem `type` (`x-problem-types`) with its status.

use axum::Json;
use axum::extract::State;
use logvault_core::EventKind;
use logvault_core::event::wire;
use serde_json::{Value, json};
use utoipa::openapi::extensions::ExtensionsBuilder;
use utoipa::openapi::path::Operation;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{Modify, OpenApi, ToResponse};

mod otlp;

use super::{events, export, groups, ingest, params, proofs, retention, viewer_tokens};
use crate::AppState;
use crate::problem::{ApiError, ProblemDetails, ProblemKind};

/// The name of the bearer-key security scheme.
const BEARER: &str = "api_key";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "logvault",
        description = "Audit and threat logs for partners and their merchants: ingest, scoped \
            reads, exports, trends, retention and tamper-evidence proofs. Every error is an RFC 9457 \
            problem (`application/problem+json`) whose `type` is one of `x-problem-types`. \
            Machines authenticate with `Authorization: Bearer lv_<key-id>_<secret>`; what a key \
            reads is its scope (an admin: everything; a partner: itself and its merchants; a \
            merchant: itself), and out-of-scope data answers as absent (404).",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    paths(
        ingest::post_audit,
        ingest::post_threat,
        events::list_audit,
        events::list_threat,
        events::get_audit,
        events::get_threat,
        events::trends,
        groups::list,
        groups::get,
        export::export_audit,
        export::export_threat,
        proofs::latest_checkpoint,
        proofs::inclusion,
        proofs::consistency,
        retention::show,
        retention::set_policy,
        retention::place_hold,
        retention::lift_hold,
        viewer_tokens::mint,
        viewer_tokens::list,
        viewer_tokens::get,
        viewer_tokens::revoke,
        viewer_tokens::show_settings,
        viewer_tokens::set_settings,
        otlp::post_logs,
        serve,
    ),
    components(
        schemas(
            ProblemDetails,
            logvault_core::FieldProblem,
            wire::AuditEventInput,
            wire::ThreatEventInput,
            wire::Outcome,
            wire::ThreatSource,
            wire::Kind,
            params::TrendGroupName,
            params::TrendIntervalName,
            export::ExportFormat,
            groups::StatusName,
            groups::SortName,
            otlp::Status,
        ),
        responses(Problem),
    ),
    modifiers(&Contract),
    tags(
        (name = "ingest", description = "Sending events"),
        (name = "read", description = "Reading events: lists, single events, trends and exports"),
        (name = "integrity", description = "Signed checkpoints, inclusion and consistency proofs"),
        (name = "retention", description = "Retention policies and legal holds"),
        (name = "embed", description = "Viewer tokens and partners' settings for the embedded Logs page"),
        (name = "meta", description = "This document"),
    ),
)]
struct ApiDoc;

/// An error of the API: an RFC 9457 problem whose `type` says which (see `x-problem-types`).
#[derive(ToResponse)]
#[response(
    description = "A problem (RFC 9457); its `type` is one of `x-problem-types`",
    content_type = "application/problem+json"
)]
#[allow(dead_code)] // Only its schema is used; `ApiError` writes the body.
pub(crate) struct Problem(ProblemDetails);

/// The document as this server serves it.
pub(crate) fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// The OpenAPI 3.1 document of this API.
#[utoipa::path(
    get,
    path = "/v1/openapi.json",
    tag = "meta",
    operation_id = "openapi",
    security(()),
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json", body = Object)),
)]
pub(crate) async fn serve(State(_): State<AppState>) -> Json<Value> {
    // A document that cannot be turned into JSON is a bug the tests catch; answer an empty
    // object rather than a panic.
    Json(serde_json::to_value(document()).unwrap_or_else(|_| json!({})))
}

/// The `type` of a problem: one of the catalogue's URIs.
pub(crate) fn problem_type_uris() -> Schema {
    let uris: Vec<Value> = ProblemKind::ALL
        .iter()
        .map(|kind| ApiError::type_uri(kind.slug()).into())
        .collect();
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(uris))
        .description(Some("One of the URIs in `x-problem-types`"))
        .into()
}

/// What the derive cannot say by itself: the bearer keys, the problem catalogue, the errors
/// every authenticated operation can answer, and which list filters belong to which kind.
struct Contract;

impl Modify for Contract {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("lv_<key-id>_<secret>")
                    .description(Some(
                        "An API key, shown once when it is created; its permissions \
                         (`ingest`, `read`, `admin`) and account decide what it may do",
                    ))
                    .build(),
            ),
        );
        openapi.security = Some(vec![SecurityRequirement::new(BEARER, Vec::<String>::new())]);
        let catalogue: Vec<Value> = ProblemKind::ALL
            .iter()
            .map(|kind| {
                json!({
                    "type": ApiError::type_uri(kind.slug()),
                    "status": kind.status().as_u16(),
                    "title": kind.status().canonical_reason(),
                    "description": kind.summary(),
                })
            })
            .collect();
        openapi.extensions = Some(
            ExtensionsBuilder::new()
                .add("x-problem-types", catalogue)
                .build(),
        );
        for (path, item) in openapi.paths.paths.iter_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for operation in operations.into_iter().flatten() {
                let public = operation
                    .security
                    .as_ref()
                    .is_some_and(|security| security.iter().all(is_empty_requirement));
                if path == "/v1/logs" {
                    otlp::add_failures(operation);
                } else {
                    add_common_problems(operation, public);
                }
                if let Some(kind) = listed_kind(path) {
                    keep_filters_of(operation, kind, path.ends_with("/export"));
                }
            }
        }
    }
}

fn is_empty_requirement(requirement: &SecurityRequirement) -> bool {
    serde_json::to_value(requirement)
        .is_ok_and(|value| value.as_object().is_some_and(|o| o.is_empty()))
}

/// Statuses any request can meet before its handler runs: the listener's timeouts and
/// connection cap, a failure inside, and for authenticated operations the key checks and its
/// rate limit.
fn add_common_problems(operation: &mut Operation, public: bool) {
    let mut statuses = vec![408, 500, 503];
    if !public {
        statuses.extend([401, 403, 429]);
    }
    for status in statuses {
        operation
            .responses
            .responses
            .entry(status.to_string())
            .or_insert_with(|| RefOr::Ref(Ref::from_response_name("Problem")));
    }
}

/// The kind of event a list or export path reads, if it is one.
fn listed_kind(path: &str) -> Option<EventKind> {
    match path {
        "/v1/audit-events" | "/v1/audit-events/export" => Some(EventKind::Audit),
        "/v1/threat-events" | "/v1/threat-events/export" => Some(EventKind::Threat),
        _ => None,
    }
}

/// `ListParams` documents every filter; a list or export of one kind takes only its own (and
/// an export no `limit`), exactly as `ListParams::to_query` and `export` check.
fn keep_filters_of(operation: &mut Operation, kind: EventKind, export: bool) {
    let refused = params::ListParams::filters_of_other_kind(kind);
    if let Some(parameters) = operation.parameters.as_mut() {
        parameters.retain(|parameter| match parameter {
            RefOr::T(parameter) => {
                let refused_here = refused.contains(&parameter.name.as_str())
                    || (export && parameter.name == "limit");
                !refused_here
            }
            RefOr::Ref(_) => true,
        });
    }
}
