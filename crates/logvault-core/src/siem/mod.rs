//! Events in the formats security tools read: OCSF JSON ([`ocsf`]), CEF lines ([`cef`]) and
//! RFC 5424 syslog messages with structured data ([`syslog`]). Pure functions of a stored
//! event; the streams that carry them to a SIEM live in the binary.

pub mod cef;
pub mod ocsf;
pub mod syslog;

use serde_json::Value;

use crate::StoredEvent;

/// The product that writes these events, as SIEM formats name it.
pub const PRODUCT: &str = "logvault";

/// The product's version, as SIEM formats name it.
pub const PRODUCT_VERSION: &str = env!("CARGO_PKG_VERSION");

/// An event as the API returns it, with helpers to read its optional fields.
pub(crate) struct Fields(Value);

impl Fields {
    pub(crate) fn of(event: &StoredEvent) -> Self {
        Fields(event.to_json())
    }

    /// The value at a JSON pointer, when it is present and not null.
    pub(crate) fn get(&self, pointer: &str) -> Option<&Value> {
        self.0.pointer(pointer).filter(|value| !value.is_null())
    }

    /// A string or number at `pointer` as text.
    pub(crate) fn text(&self, pointer: &str) -> Option<String> {
        match self.get(pointer)? {
            Value::String(text) => Some(text.clone()),
            Value::Number(number) => Some(number.to_string()),
            Value::Bool(flag) => Some(flag.to_string()),
            _ => None,
        }
    }

    pub(crate) fn json(&self) -> &Value {
        &self.0
    }
}

/// Whether an audit action is a sign-in (`user.login`, `…login`).
pub(crate) fn is_sign_in(action: &str) -> bool {
    action.ends_with("login") || action.ends_with("logon") || action.ends_with("sign_in")
}

/// Whether an audit action is a sign-out.
pub(crate) fn is_sign_out(action: &str) -> bool {
    action.ends_with("logout") || action.ends_with("logoff") || action.ends_with("sign_out")
}
