//! The HTTP layer's parsers of outside input as plain functions, for the fuzz targets in
//! `fuzz/` and the property tests: the API's and the Logs page's query strings, cursors,
//! address filters, the session cookie and the sign-in form. Each calls exactly what the
//! handlers call; none is an API.

use axum::http::{HeaderMap, HeaderValue, header};
use logvault_core::{EventKind, Micros};
use logvault_store::{EventQuery, IpRange, TrendQuery};

use crate::ApiError;
use crate::api::params::{self, ListParams, TrendParams};
use crate::web::filters::Filters;
use crate::web::login::LoginForm;
use crate::web::session::{self, SESSION_COOKIE};

/// The store query of `GET /v1/{audit,threat}-events?raw` (also what exports parse).
pub fn list_query(kind: EventKind, raw: &str) -> Result<EventQuery, ApiError> {
    params::parse_query::<ListParams>(Some(raw))?.to_query(kind)
}

/// The store query of `GET /v1/threat-events/trends?raw`.
pub fn trend_query(raw: &str) -> Result<TrendQuery, ApiError> {
    params::parse_query::<TrendParams>(Some(raw))?.to_query()
}

/// The store query of a Logs page list (`GET /audit?raw`, `/threat?raw`, the live tail) at
/// `now`, one page of 50.
pub fn page_query(kind: EventKind, raw: &str, now: Micros) -> Result<EventQuery, String> {
    Filters::parse(Some(raw))?.to_query(kind, now, 50)
}

/// The cursor the API hands out after the event at `before_seq`.
pub fn encode_cursor(before_seq: u64) -> String {
    params::encode_cursor(before_seq)
}

/// The position a cursor names; `None` for one this service did not produce.
pub fn decode_cursor(cursor: &str) -> Option<u64> {
    params::decode_cursor(cursor)
}

/// The `ip=` filter: an address or CIDR block as an inclusive range.
pub fn ip_range(text: &str) -> Result<IpRange, String> {
    params::parse_ip_range(text)
}

/// Request headers carrying each of `cookies` as one `Cookie` header; values that are not
/// valid header bytes are left out, as hyper never delivers them.
fn cookie_headers(cookies: &[&[u8]]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for value in cookies {
        if let Ok(value) = HeaderValue::from_bytes(value) {
            headers.append(header::COOKIE, value);
        }
    }
    headers
}

/// The session token the server would look up for a request with these `Cookie` headers:
/// the `logvault_session` value, if it has the shape of a token the server issues.
pub fn session_token(cookies: &[&[u8]]) -> Option<String> {
    let headers = cookie_headers(cookies);
    session::cookie(&headers, SESSION_COOKIE)
        .filter(|token| session::is_token_shaped(token))
        .map(str::to_string)
}

/// The username a sign-in form `body` submits, as looked up and recorded, when the request's
/// `Cookie` headers pass the double-submit check; `None` when they do not.
pub fn login_username(cookies: &[&[u8]], body: &[u8]) -> Option<String> {
    let form = LoginForm::parse(body);
    form.double_submitted(&cookie_headers(cookies))
        .then(|| form.username())
}
