//! The one error type of the Logs page and its response: an HTML page (or a redirect to the
//! sign-in form), never a problem+json document, and never internal details.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use logvault_store::StoreError;
use serde_json::json;

use super::render::{Chrome, render};

/// Every way a page request can fail.
#[derive(Debug)]
pub(crate) enum WebError {
    /// No valid session: go to the sign-in form.
    SignIn,
    /// Nothing here, or nothing this person may see; both look the same.
    NotFound(Option<Box<Chrome>>),
    /// A filter or form value is not acceptable.
    BadRequest(String, Option<Box<Chrome>>),
    /// A form without the right CSRF token.
    Forbidden(String),
    /// The store's write queue is full.
    Unavailable,
    /// Something failed inside the service; the detail goes to the log only.
    Internal(String),
}

impl From<StoreError> for WebError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Overloaded => WebError::Unavailable,
            other => WebError::Internal(other.to_string()),
        }
    }
}

impl From<minijinja::Error> for WebError {
    fn from(error: minijinja::Error) -> Self {
        WebError::Internal(format!("template: {error:#}"))
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let (status, title, message, chrome) = match self {
            WebError::SignIn => return Redirect::to("/login").into_response(),
            WebError::NotFound(chrome) => (
                StatusCode::NOT_FOUND,
                "Not found",
                "There is nothing here, or nothing you may see.".to_string(),
                chrome,
            ),
            WebError::BadRequest(message, chrome) => {
                (StatusCode::BAD_REQUEST, "Bad request", message, chrome)
            }
            WebError::Forbidden(message) => (StatusCode::FORBIDDEN, "Forbidden", message, None),
            WebError::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "Busy",
                "The service is busy; try again in a moment.".to_string(),
                None,
            ),
            WebError::Internal(detail) => {
                tracing::error!(%detail, "page failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Error",
                    "Something went wrong on our side; it has been logged.".to_string(),
                    None,
                )
            }
        };
        let context = json!({
            "chrome": chrome,
            "title": title,
            "status": status.as_u16(),
            "message": message,
        });
        let mut response = match render("error.html", &context) {
            Ok(html) => (status, Html(html)).into_response(),
            Err(_) => (status, format!("{} {title}\n", status.as_u16())).into_response(),
        };
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}
