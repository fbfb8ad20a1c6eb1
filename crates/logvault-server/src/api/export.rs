//! `GET /v1/{audit,threat}-events/export?format=csv|ndjson|ocsf&…filters`: every matching event
//! in the caller's scope, newest first, streamed page by page with the cursor so memory
//! stays bounded whatever the size. Callers are API keys with `read` or people signed in to the
//! Logs page (its export links). Each export is recorded as `logs.exported`.

use axum::body::{Body, Bytes};
use axum::extract::{FromRequestParts, RawQuery, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use futures_util::stream;
use logvault_core::{EventKind, Micros, Principal, Scope, StoredEvent};
use logvault_store::EventQuery;
use serde_json::{Value, json};

use super::params::{ListParams, parse_query};
use crate::auth::{Reader, RequestOrigin};
use crate::viewed::query_summary;
use crate::{ApiError, AppState};

/// Events fetched per store request while streaming.
const PAGE: usize = 1000;

/// A bearer key with `read`, or else a live Logs-page session (whose people always read).
pub(crate) struct Exporter(Principal, Option<logvault_core::embed::ViewGrant>);

impl FromRequestParts<AppState> for Exporter {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if parts.headers.contains_key(header::AUTHORIZATION) {
            let Reader(principal) = Reader::from_request_parts(parts, state).await?;
            return Ok(Exporter(principal, None));
        }
        // A session cookie rides along on links from other sites too; only a request the
        // browser marks as same-origin (or typed by the person) may export with it.
        let site = parts
            .headers
            .get("sec-fetch-site")
            .and_then(|v| v.to_str().ok());
        if site.is_some_and(|site| site != "same-origin" && site != "none") {
            return Err(ApiError::Forbidden(
                "exports with a session must start from the Logs page".into(),
            ));
        }
        crate::web::session::signed_in(&parts.headers, state)
            .await?
            .map(|signed_in| {
                let grant = signed_in.embed.as_ref().map(|view| view.grant);
                Exporter(signed_in.principal, grant)
            })
            .ok_or(ApiError::Unauthorized)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Csv,
    Ndjson,
    /// NDJSON of OCSF events (`logvault_core::siem::ocsf`).
    Ocsf,
}

/// The format of an export.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // The parameter's documentation; `split_format` reads it.
struct FormatParam {
    /// `csv` (RFC 4180; cells a spreadsheet would run as formulas start with `'`), `ndjson`,
    /// or `ocsf` (one OCSF event per line).
    #[param(value_type = ExportFormat)]
    format: String,
}

/// The formats an export streams.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)] // The schema of `format`.
pub(crate) enum ExportFormat {
    /// Comma-separated values.
    Csv,
    /// One JSON event per line.
    Ndjson,
    /// One OCSF 1.5.0 event per line: Authentication (3002) for audit events, Base Event (0)
    /// for threat events.
    Ocsf,
}

/// One line of an NDJSON export: the event as the API returns it (`format=ndjson`), or its
/// OCSF form (`format=ocsf`).
pub(crate) struct ExportLine<E>(std::marker::PhantomData<E>);

impl<E: utoipa::ToSchema> utoipa::PartialSchema for ExportLine<E> {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{AnyOfBuilder, ObjectBuilder, Type};
        let ocsf = ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some("An OCSF 1.5.0 event (`format=ocsf`)"));
        AnyOfBuilder::new()
            .item(utoipa::openapi::Ref::from_schema_name(E::name()))
            .item(ocsf)
            .into()
    }
}

impl<E: utoipa::ToSchema> utoipa::ToSchema for ExportLine<E> {
    fn name() -> std::borrow::Cow<'static, str> {
        format!("{}ExportLine", E::name()).into()
    }

    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        schemas.push((E::name().into(), E::schema()));
        E::schemas(schemas);
    }
}

// Plain names for the OpenAPI derive, which composes generic arguments itself.
type AuditExportLine = ExportLine<logvault_core::event::wire::AuditEvent>;
type ThreatExportLine = ExportLine<logvault_core::event::wire::ThreatEvent>;

#[utoipa::path(
    get,
    path = "/v1/audit-events/export",
    tag = "read",
    operation_id = "exportAuditEvents",
    summary = "Every matching audit event in the caller's scope, newest first, streamed",
    description = "Takes the list filters but not `limit`. Also open to a signed-in person of \
        the Logs page (its session cookie, same-origin). Recorded as `logs.exported`.",
    params(FormatParam, super::params::ListParams),
    responses(
        (status = 200, description = "The events as CSV, NDJSON or OCSF NDJSON", content(
            (String = "text/csv; charset=utf-8"),
            (AuditExportLine = "application/x-ndjson"),
        )),
        (status = 400, response = super::openapi::Problem),
        (status = 404, response = super::openapi::Problem),
    ),
)]
pub(crate) async fn export_audit(
    state: State<AppState>,
    exporter: Exporter,
    origin: RequestOrigin,
    query: RawQuery,
) -> Result<Response, ApiError> {
    export(state, exporter, origin, query, EventKind::Audit).await
}

#[utoipa::path(
    get,
    path = "/v1/threat-events/export",
    tag = "read",
    operation_id = "exportThreatEvents",
    summary = "Every matching threat event in the caller's scope, newest first, streamed",
    description = "Takes the list filters but not `limit`. Also open to a signed-in person of \
        the Logs page (its session cookie, same-origin). Recorded as `logs.exported`.",
    params(FormatParam, super::params::ListParams),
    responses(
        (status = 200, description = "The events as CSV, NDJSON or OCSF NDJSON", content(
            (String = "text/csv; charset=utf-8"),
            (ThreatExportLine = "application/x-ndjson"),
        )),
        (status = 400, response = super::openapi::Problem),
        (status = 404, response = super::openapi::Problem),
    ),
)]
pub(crate) async fn export_threat(
    state: State<AppState>,
    exporter: Exporter,
    origin: RequestOrigin,
    query: RawQuery,
) -> Result<Response, ApiError> {
    export(state, exporter, origin, query, EventKind::Threat).await
}

/// Splits `format` off the query string; the rest must be list filters.
fn split_format(raw: Option<&str>) -> Result<(Format, String), ApiError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw.unwrap_or_default())
        .map_err(|e| ApiError::InvalidQuery(format!("bad query string: {e}")))?;
    let mut format = None;
    let mut rest = Vec::new();
    for (name, value) in pairs {
        match name.as_str() {
            "format" if format.is_none() => format = Some(value),
            "format" => return Err(ApiError::InvalidQuery("format given twice".into())),
            "limit" => {
                return Err(ApiError::InvalidQuery(
                    "export streams every matching event; limit is not accepted".into(),
                ));
            }
            _ => rest.push((name, value)),
        }
    }
    let format = match format.as_deref() {
        Some("csv") => Format::Csv,
        Some("ndjson") => Format::Ndjson,
        Some("ocsf") => Format::Ocsf,
        _ => {
            return Err(ApiError::InvalidQuery(
                "format must be csv, ndjson or ocsf".into(),
            ));
        }
    };
    let rest = serde_urlencoded::to_string(&rest)
        .map_err(|e| ApiError::InvalidQuery(format!("bad query string: {e}")))?;
    Ok((format, rest))
}

async fn export(
    State(state): State<AppState>,
    Exporter(principal, grant): Exporter,
    origin: RequestOrigin,
    RawQuery(raw): RawQuery,
    kind: EventKind,
) -> Result<Response, ApiError> {
    // An embedded view exports only where its token allowed exports, of the tabs it shows.
    if let Some(grant) = grant
        && !(grant.export && grant.shows(kind))
    {
        return Err(ApiError::Forbidden(
            "this embedded view does not allow this export".into(),
        ));
    }
    let (format, rest) = split_format(raw.as_deref())?;
    let params: ListParams = parse_query(Some(&rest))?;
    let mut query = params.to_query(kind)?;
    query.limit = PAGE;
    if let Some(account_id) = params.account_id() {
        let found = state
            .store
            .accounts_in_scope(&principal.scope(), &[account_id.to_string()])
            .await?;
        if found.is_empty() {
            return Err(ApiError::NotFound);
        }
    }
    let metadata = json!({
        "kind": kind.as_str(),
        "format": match format {
            Format::Csv => "csv",
            Format::Ndjson => "ndjson",
            Format::Ocsf => "ocsf",
        },
        "query": query_summary(raw.as_deref()),
    });
    state
        .viewed
        .record(&principal, &origin, "logs.exported", metadata)
        .await;

    let (content_type, extension) = match format {
        Format::Csv => ("text/csv; charset=utf-8", "csv"),
        Format::Ndjson => ("application/x-ndjson", "ndjson"),
        Format::Ocsf => ("application/x-ndjson", "ocsf.ndjson"),
    };
    let filename = format!(
        "{}-events-{}.{extension}",
        kind.as_str(),
        Micros::now()
            .to_rfc3339()
            .get(..19)
            .unwrap_or("export")
            .replace(':', "")
    );
    let pages = Pages {
        state,
        scope: principal.scope(),
        query,
        format,
        header_sent: false,
        done: false,
    };
    let body = Body::from_stream(stream::unfold(pages, |mut pages| async move {
        let chunk = pages.next_chunk().await?;
        Some((chunk, pages))
    }));
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// The export's progress: one store page becomes one body chunk.
struct Pages {
    state: AppState,
    scope: Scope,
    query: EventQuery,
    format: Format,
    header_sent: bool,
    done: bool,
}

impl Pages {
    async fn next_chunk(&mut self) -> Option<Result<Bytes, std::io::Error>> {
        if self.done {
            return None;
        }
        let mut out = String::new();
        if !self.header_sent && self.format == Format::Csv {
            out.push_str(&csv_line(
                columns(self.query.kind).map(|(header, _)| header.to_string()),
            ));
        }
        self.header_sent = true;
        let page = match self.state.store.query(&self.scope, &self.query).await {
            Ok(page) => page,
            Err(error) => {
                // The status is already sent: cutting the body short is the only signal left.
                tracing::error!(%error, "export failed mid-stream");
                self.done = true;
                return Some(Err(std::io::Error::other("export failed")));
            }
        };
        for event in &page.events {
            match self.format {
                Format::Csv => out.push_str(&csv_row(event)),
                Format::Ndjson => {
                    out.push_str(&event.to_json().to_string());
                    out.push('\n');
                }
                Format::Ocsf => {
                    out.push_str(&logvault_core::siem::ocsf::event(event).to_string());
                    out.push('\n');
                }
            }
        }
        match page.next_before_seq {
            Some(seq) => self.query.before_seq = Some(seq),
            None => self.done = true,
        }
        Some(Ok(Bytes::from(out)))
    }
}

/// A CSV column: its header and the JSON pointer of its value in the event.
type Column = (&'static str, &'static str);

const COMMON_COLUMNS: [Column; 6] = [
    ("seq", "/seq"),
    ("account_seq", "/account_seq"),
    ("received_at", "/received_at"),
    ("occurred_at", "/occurred_at"),
    ("id", "/id"),
    ("account_id", "/account_id"),
];
const AUDIT_COLUMNS: [Column; 13] = [
    ("action", "/action"),
    ("outcome", "/outcome"),
    ("reason", "/reason"),
    ("actor_id", "/actor/id"),
    ("actor_type", "/actor/type"),
    ("actor_name", "/actor/name"),
    ("ip", "/origin/ip"),
    ("user_agent", "/origin/user_agent"),
    ("request_id", "/request_id"),
    ("metadata", "/metadata"),
    ("redactions", "/redactions"),
    ("leaf_hash", "/leaf_hash"),
    ("nonce", "/nonce"),
];
const THREAT_COLUMNS: [Column; 16] = [
    ("source", "/source"),
    ("error_type", "/error_type"),
    ("error_code", "/error_code"),
    ("message", "/message"),
    ("version", "/version"),
    ("environment", "/environment"),
    ("sdk_name", "/sdk/name"),
    ("sdk_platform", "/sdk/platform"),
    ("api_method", "/api/method"),
    ("api_path", "/api/path"),
    ("api_status", "/api/status"),
    ("stacktrace", "/stacktrace"),
    ("redactions", "/redactions"),
    ("metadata", "/metadata"),
    ("leaf_hash", "/leaf_hash"),
    ("nonce", "/nonce"),
];

/// The CSV columns of `kind`: the stored fields every event has, then its own.
fn columns(kind: EventKind) -> impl Iterator<Item = &'static Column> {
    let own: &'static [Column] = match kind {
        EventKind::Audit => &AUDIT_COLUMNS,
        EventKind::Threat => &THREAT_COLUMNS,
    };
    COMMON_COLUMNS.iter().chain(own)
}

fn csv_row(event: &StoredEvent) -> String {
    let json = event.to_json();
    csv_line(columns(event.kind).map(|(_, pointer)| {
        match json.pointer(pointer).cloned().unwrap_or(Value::Null) {
            Value::Null => String::new(),
            Value::String(text) => text,
            other => other.to_string(),
        }
    }))
}

/// One CSV record (RFC 4180, CRLF line ends).
fn csv_line(cells: impl Iterator<Item = String>) -> String {
    let mut line = cells
        .map(|cell| csv_cell(&cell))
        .collect::<Vec<_>>()
        .join(",");
    line.push_str("\r\n");
    line
}

/// One CSV cell. A cell a spreadsheet would read as a formula (starting with `=`, `+`, `-`,
/// `@`, tab or carriage return) gets a leading `'` so it stays text; then any cell holding a
/// quote, comma or line break is quoted with inner quotes doubled.
pub(crate) fn csv_cell(value: &str) -> String {
    let neutral = if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value.to_string()
    };
    if neutral.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", neutral.replace('"', "\"\""))
    } else {
        neutral
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_are_escaped_and_neutralised() {
        let cases = [
            ("plain", "plain"),
            ("", ""),
            ("a,b", "\"a,b\""),
            ("say \"hi\"", "\"say \"\"hi\"\"\""),
            ("two\nlines", "\"two\nlines\""),
            ("=HYPERLINK(\"x\")", "\"'=HYPERLINK(\"\"x\"\")\""),
            ("+1", "'+1"),
            ("-2", "'-2"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\tx", "'\tx"),
            ("a=b", "a=b"),
        ];
        for (input, expected) in cases {
            assert_eq!(csv_cell(input), expected, "{input:?}");
        }
    }

    #[test]
    fn format_is_split_from_the_filters() {
        let cases = [
            (Some("format=csv&action=x"), Some((Format::Csv, "action=x"))),
            (
                Some("action=x&format=ndjson"),
                Some((Format::Ndjson, "action=x")),
            ),
            (Some("action=x"), None),
            (Some("format=ocsf"), Some((Format::Ocsf, ""))),
            (Some("format=xml"), None),
            (Some("format=csv&format=csv"), None),
            (Some("format=csv&limit=5"), None),
            (None, None),
        ];
        for (raw, expected) in cases {
            let got = split_format(raw).ok();
            let expected = expected.map(|(f, rest)| (f, rest.to_string()));
            assert_eq!(got, expected, "{raw:?}");
        }
    }
}
