//! OpenTelemetry logs (OTLP/HTTP): decoding an export request in either encoding, turning
//! its records into logvault events ([`map`] says what goes where), and the protocol's
//! answers. No IO: the HTTP side lives in the server.

mod json;
pub mod map;
pub mod proto;

use prost::Message;

pub use map::{Mapped, map_request};

/// The two encodings of OTLP/HTTP, chosen by `Content-Type`; an answer uses the request's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// `application/x-protobuf`.
    Protobuf,
    /// `application/json`.
    Json,
}

impl Encoding {
    /// The encoding a `Content-Type` value names (parameters and case ignored), if any.
    pub fn from_content_type(content_type: &str) -> Option<Self> {
        let essence = content_type.split(';').next()?.trim();
        if essence.eq_ignore_ascii_case("application/x-protobuf") {
            Some(Encoding::Protobuf)
        } else if essence.eq_ignore_ascii_case("application/json") {
            Some(Encoding::Json)
        } else {
            None
        }
    }

    /// The `Content-Type` of an answer in this encoding.
    pub fn content_type(self) -> &'static str {
        match self {
            Encoding::Protobuf => "application/x-protobuf",
            Encoding::Json => "application/json",
        }
    }
}

/// Reads an `ExportLogsServiceRequest`; the error says what is wrong, never echoing content.
pub fn decode_request(
    body: &[u8],
    encoding: Encoding,
) -> Result<proto::ExportLogsServiceRequest, String> {
    match encoding {
        Encoding::Protobuf => proto::ExportLogsServiceRequest::decode(body)
            .map_err(|error| format!("the body is not an OTLP logs export request: {error}")),
        Encoding::Json => json::decode_request(body),
    }
}

/// The success answer: `partial_success` set only when records were rejected.
pub fn encode_response(rejected: usize, error_message: &str, encoding: Encoding) -> Vec<u8> {
    let partial_success = (rejected > 0).then(|| proto::ExportLogsPartialSuccess {
        rejected_log_records: i64::try_from(rejected).unwrap_or(i64::MAX),
        error_message: error_message.to_string(),
    });
    match encoding {
        Encoding::Protobuf => proto::ExportLogsServiceResponse { partial_success }.encode_to_vec(),
        Encoding::Json => {
            let body = match partial_success {
                // 64-bit integers are decimal strings in protobuf's JSON mapping.
                Some(partial) => serde_json::json!({"partialSuccess": {
                    "rejectedLogRecords": partial.rejected_log_records.to_string(),
                    "errorMessage": partial.error_message,
                }}),
                None => serde_json::json!({}),
            };
            body.to_string().into_bytes()
        }
    }
}

/// A failure answer: a `google.rpc.Status` with `code` (a gRPC code) and `message`.
pub fn encode_status(code: i32, message: &str, encoding: Encoding) -> Vec<u8> {
    match encoding {
        Encoding::Protobuf => proto::Status {
            code,
            message: message.to_string(),
        }
        .encode_to_vec(),
        Encoding::Json => serde_json::json!({"code": code, "message": message})
            .to_string()
            .into_bytes(),
    }
}
