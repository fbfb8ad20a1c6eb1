//! Event ids as stored: an id that is a UUID in canonical lower-case form (every id the
//! server assigns) is kept as its 16 bytes, in the row and in the id index, instead of 36
//! characters; any other client id is kept as text. The mapping is one-to-one, so a lookup
//! encodes the id it is given the same way and reading a row gives back the exact id.
//! Migration 3 applies the same rule in SQL to ids stored before it.

use rusqlite::types::{FromSql, FromSqlResult, Value, ValueRef};

/// Positions of the hyphens in a canonical UUID.
const HYPHENS: [usize; 4] = [8, 13, 18, 23];

/// The stored form of `event_id`.
pub(crate) fn to_sql(event_id: &str) -> Value {
    match uuid_bytes(event_id) {
        Some(bytes) => Value::Blob(bytes.to_vec()),
        None => Value::Text(event_id.to_string()),
    }
}

/// An id read from a row: `row.get::<_, StoredId>(i)?.0`.
pub(crate) struct StoredId(pub(crate) String);

impl FromSql for StoredId {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        from_sql(value).map(StoredId)
    }
}

/// The id a stored value stands for.
fn from_sql(value: ValueRef<'_>) -> FromSqlResult<String> {
    match value {
        ValueRef::Blob(bytes) if bytes.len() == 16 => Ok(canonical(bytes)),
        ValueRef::Text(text) => String::from_utf8(text.to_vec())
            .map_err(|e| rusqlite::types::FromSqlError::Other(Box::new(e))),
        // Any other blob is not something logvault wrote: show it as hex so that `verify`
        // reports the event (its leaf hash cannot match) instead of failing to read it.
        ValueRef::Blob(bytes) => Ok(hex_lower(bytes)),
        _ => Err(rusqlite::types::FromSqlError::InvalidType),
    }
}

/// The 16 bytes of `id` if it is a UUID written as 8-4-4-4-12 lower-case hex digits.
fn uuid_bytes(id: &str) -> Option<[u8; 16]> {
    let text = id.as_bytes();
    if text.len() != 36 || HYPHENS.iter().any(|&at| text[at] != b'-') {
        return None;
    }
    let mut digits = text.iter().filter(|&&c| c != b'-');
    let mut bytes = [0u8; 16];
    for byte in &mut bytes {
        let high = lower_hex_value(*digits.next()?)?;
        let low = lower_hex_value(*digits.next()?)?;
        *byte = high << 4 | low;
    }
    Some(bytes)
}

fn lower_hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

fn hex_lower(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        text.push(DIGITS[usize::from(byte >> 4)] as char);
        text.push(DIGITS[usize::from(byte & 15)] as char);
    }
    text
}

/// The canonical text of a UUID's 16 bytes.
fn canonical(bytes: &[u8]) -> String {
    let digits = hex_lower(bytes);
    let mut text = String::with_capacity(36);
    for (at, c) in digits.chars().enumerate() {
        if matches!(at, 8 | 12 | 16 | 20) {
            text.push('-');
        }
        text.push(c);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_only_canonical_uuids_become_bytes() {
        let cases = [
            ("0190d8c4-7f3a-7c1e-9b2d-4e5f60718293", true),
            ("0190D8C4-7F3A-7C1E-9B2D-4E5F60718293", false),
            ("0190d8c47f3a7c1e9b2d4e5f60718293", false),
            ("0190d8c4-7f3a-7c1e-9b2d-4e5f6071829", false),
            ("0190d8c4-7f3a-7c1e-9b2d-4e5f6071829g", false),
            ("0190d8c4+7f3a-7c1e-9b2d-4e5f60718293", false),
            ("evt-1", false),
            ("é", false),
        ];
        for (id, as_bytes) in cases {
            let stored = to_sql(id);
            assert_eq!(matches!(stored, Value::Blob(_)), as_bytes, "{id}");
            let back = match &stored {
                Value::Blob(bytes) => from_sql(ValueRef::Blob(bytes)),
                Value::Text(text) => from_sql(ValueRef::Text(text.as_bytes())),
                _ => unreachable!("ids are stored as blobs or text"),
            };
            assert_eq!(back.ok().as_deref(), Some(id), "{id}");
        }
    }
}
