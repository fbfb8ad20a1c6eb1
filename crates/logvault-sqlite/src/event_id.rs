//! Event ids as stored: an id that is a UUID in canonical lower-case form (every id the
//! server assigns) is kept as its 16 bytes, in the row and in the id index, instead of 36
//! characters; any other client id is kept as text. The mapping is one-to-one, so a lookup
//! encodes the id it is given the same way and reading a row gives back the exact id.
//! Migration 3 applies the same rule in SQL to ids stored before it.

use rusqlite::types::{FromSql, FromSqlResult, Value, ValueRef};
use uuid::Uuid;

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
        ValueRef::Blob(bytes) => Ok(match Uuid::from_slice(bytes) {
            Ok(uuid) => uuid.hyphenated().to_string(),
            // Any other blob is not something logvault wrote: show it as hex so that
            // `verify` reports the event (its leaf hash cannot match) instead of failing to
            // read it.
            Err(_) => hex::encode(bytes),
        }),
        ValueRef::Text(text) => String::from_utf8(text.to_vec())
            .map_err(|e| rusqlite::types::FromSqlError::Other(Box::new(e))),
        _ => Err(rusqlite::types::FromSqlError::InvalidType),
    }
}

/// The 16 bytes of `id` if it is a UUID written as 8-4-4-4-12 lower-case hex digits, the
/// only form [`from_sql`] gives back.
fn uuid_bytes(id: &str) -> Option<[u8; 16]> {
    let canonical = id.len() == 36 && !id.bytes().any(|c| c.is_ascii_uppercase());
    canonical
        .then(|| Uuid::try_parse(id).ok())
        .flatten()
        .map(Uuid::into_bytes)
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
