//! OTLP's JSON encoding (the protobuf JSON mapping with OTLP's deviations: lowerCamelCase
//! keys, 64-bit integers as decimal strings or numbers, enums as integers, `traceId`/`spanId`
//! as hex, unknown keys ignored), read into the same [`proto`](super::proto) types as the
//! binary encoding so everything after decoding is shared.

use base64::Engine;
use serde_json::{Map, Value};

use super::proto;

/// Reads an `ExportLogsServiceRequest` from OTLP/JSON; the error names the path that is wrong.
pub fn decode_request(body: &[u8]) -> Result<proto::ExportLogsServiceRequest, String> {
    let value: Value =
        serde_json::from_slice(body).map_err(|error| format!("the body is not JSON: {error}"))?;
    let root = object(&value, "")?;
    Ok(proto::ExportLogsServiceRequest {
        resource_logs: list(root, "resourceLogs", "", resource_logs)?,
    })
}

fn resource_logs(value: &Value, path: &str) -> Result<proto::ResourceLogs, String> {
    let fields = object(value, path)?;
    let resource = match present(fields, "resource") {
        None => None,
        Some(resource) => {
            let path = format!("{path}.resource");
            let inner = object(resource, &path)?;
            Some(proto::Resource {
                attributes: list(inner, "attributes", &path, key_value)?,
                dropped_attributes_count: uint32(inner, "droppedAttributesCount", &path)?,
            })
        }
    };
    Ok(proto::ResourceLogs {
        resource,
        scope_logs: list(fields, "scopeLogs", path, scope_logs)?,
        schema_url: string(fields, "schemaUrl", path)?,
    })
}

fn scope_logs(value: &Value, path: &str) -> Result<proto::ScopeLogs, String> {
    let fields = object(value, path)?;
    let scope = match present(fields, "scope") {
        None => None,
        Some(scope) => {
            let path = format!("{path}.scope");
            let inner = object(scope, &path)?;
            Some(proto::InstrumentationScope {
                name: string(inner, "name", &path)?,
                version: string(inner, "version", &path)?,
                attributes: list(inner, "attributes", &path, key_value)?,
                dropped_attributes_count: uint32(inner, "droppedAttributesCount", &path)?,
            })
        }
    };
    Ok(proto::ScopeLogs {
        scope,
        log_records: list(fields, "logRecords", path, log_record)?,
        schema_url: string(fields, "schemaUrl", path)?,
    })
}

fn log_record(value: &Value, path: &str) -> Result<proto::LogRecord, String> {
    let fields = object(value, path)?;
    let body = match present(fields, "body") {
        None => None,
        Some(body) => Some(any_value(body, &format!("{path}.body"))?),
    };
    Ok(proto::LogRecord {
        time_unix_nano: integer(fields, "timeUnixNano", path)?,
        observed_time_unix_nano: integer(fields, "observedTimeUnixNano", path)?,
        severity_number: integer(fields, "severityNumber", path)?,
        severity_text: string(fields, "severityText", path)?,
        body,
        attributes: list(fields, "attributes", path, key_value)?,
        dropped_attributes_count: uint32(fields, "droppedAttributesCount", path)?,
        flags: integer(fields, "flags", path)?,
        trace_id: hex_bytes(fields, "traceId", path)?,
        span_id: hex_bytes(fields, "spanId", path)?,
        event_name: string(fields, "eventName", path)?,
    })
}

fn key_value(value: &Value, path: &str) -> Result<proto::KeyValue, String> {
    let fields = object(value, path)?;
    let value = match present(fields, "value") {
        None => None,
        Some(value) => Some(any_value(value, &format!("{path}.value"))?),
    };
    Ok(proto::KeyValue {
        key: string(fields, "key", path)?,
        value,
    })
}

fn any_value(value: &Value, path: &str) -> Result<proto::AnyValue, String> {
    use proto::Value as V;
    let fields = object(value, path)?;
    let inner = if let Some(text) = present(fields, "stringValue") {
        let text = text
            .as_str()
            .ok_or(format!("{path}.stringValue: must be a string"))?;
        Some(V::String(text.to_string()))
    } else if let Some(flag) = present(fields, "boolValue") {
        Some(V::Bool(
            flag.as_bool()
                .ok_or(format!("{path}.boolValue: must be a boolean"))?,
        ))
    } else if present(fields, "intValue").is_some() {
        Some(V::Int(integer(fields, "intValue", path)?))
    } else if let Some(number) = present(fields, "doubleValue") {
        Some(V::Double(
            double(number).ok_or(format!("{path}.doubleValue: must be a number"))?,
        ))
    } else if let Some(array) = present(fields, "arrayValue") {
        let path = format!("{path}.arrayValue");
        let values = list(object(array, &path)?, "values", &path, any_value)?;
        Some(V::Array(proto::ArrayValue { values }))
    } else if let Some(kvlist) = present(fields, "kvlistValue") {
        let path = format!("{path}.kvlistValue");
        let values = list(object(kvlist, &path)?, "values", &path, key_value)?;
        Some(V::KvList(proto::KeyValueList { values }))
    } else if let Some(bytes) = present(fields, "bytesValue") {
        let text = bytes.as_str().unwrap_or_default();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(|_| format!("{path}.bytesValue: must be base64"))?;
        Some(V::Bytes(decoded))
    } else {
        None
    };
    Ok(proto::AnyValue { value: inner })
}

fn object<'v>(value: &'v Value, path: &str) -> Result<&'v Map<String, Value>, String> {
    value.as_object().ok_or_else(|| {
        let at = if path.is_empty() { "the body" } else { path };
        format!("{at}: must be a JSON object")
    })
}

/// A field that is there and not `null` (protobuf's JSON mapping reads `null` as the default).
fn present<'v>(fields: &'v Map<String, Value>, key: &str) -> Option<&'v Value> {
    fields.get(key).filter(|value| !value.is_null())
}

fn list<T>(
    fields: &Map<String, Value>,
    key: &str,
    path: &str,
    item: fn(&Value, &str) -> Result<T, String>,
) -> Result<Vec<T>, String> {
    let Some(value) = present(fields, key) else {
        return Ok(Vec::new());
    };
    let items = value
        .as_array()
        .ok_or_else(|| format!("{}: must be an array", join(path, key)))?;
    items
        .iter()
        .enumerate()
        .map(|(index, value)| item(value, &format!("{}[{index}]", join(path, key))))
        .collect()
}

fn string(fields: &Map<String, Value>, key: &str, path: &str) -> Result<String, String> {
    match present(fields, key) {
        None => Ok(String::new()),
        Some(Value::String(text)) => Ok(text.clone()),
        Some(_) => Err(format!("{}: must be a string", join(path, key))),
    }
}

/// An integer field of any width: a JSON number or a decimal string, as protobuf's JSON
/// mapping allows for every integer type; out of the type's range is an error.
fn integer<T: TryFrom<i128>>(
    fields: &Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<T, String> {
    let wrong = || format!("{}: must be an integer in range", join(path, key));
    let wide: i128 = match present(fields, key) {
        None => 0,
        Some(Value::Number(number)) => match (number.as_i64(), number.as_u64()) {
            (Some(signed), _) => signed.into(),
            (None, Some(unsigned)) => unsigned.into(),
            // An integral float (`1e3`) is accepted by the mapping; a fraction is not.
            _ => match number.as_f64() {
                Some(float) if float.fract() == 0.0 && float.abs() < 1.8e19 => float as i128,
                _ => return Err(wrong()),
            },
        },
        Some(Value::String(text)) => text.trim().parse().map_err(|_| wrong())?,
        Some(_) => return Err(wrong()),
    };
    T::try_from(wide).map_err(|_| wrong())
}

fn uint32(fields: &Map<String, Value>, key: &str, path: &str) -> Result<u32, String> {
    integer(fields, key, path)
}

/// A double: a JSON number, or `"NaN"`, `"Infinity"`, `"-Infinity"` or a numeric string.
fn double(value: &Value) -> Option<f64> {
    match value {
        Value::Number(number) => number.as_f64(),
        Value::String(text) => match text.as_str() {
            "NaN" => Some(f64::NAN),
            "Infinity" => Some(f64::INFINITY),
            "-Infinity" => Some(f64::NEG_INFINITY),
            other => other.parse().ok(),
        },
        _ => None,
    }
}

fn hex_bytes(fields: &Map<String, Value>, key: &str, path: &str) -> Result<Vec<u8>, String> {
    let text = string(fields, key, path)?;
    hex::decode(&text).map_err(|_| format!("{}: must be hex", join(path, key)))
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}
