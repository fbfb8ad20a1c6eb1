//! The filter columns of an event, derived from its body by one serde visitor. Validation runs
//! it over the JSON tree it already holds before the event is stored; `verify` runs it again
//! over the canonical text of every stored event to check the stored columns, building no
//! tree (at verification speed a tree per event was most of the cost). One visitor, so one
//! derivation.

use serde::de::{DeserializeSeed, Deserializer, Error, MapAccess, SeqAccess, Visitor};

use super::EventKind;

/// The columns the store indexes and filters on, extracted from the body at validation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IndexFields {
    /// Audit: the action, e.g. `user.login`.
    pub action: Option<String>,
    /// Audit: `success` or `failure`.
    pub outcome: Option<String>,
    /// Audit: `actor.id`.
    pub actor_id: Option<String>,
    /// Audit: `origin.ip` as 16 bytes (IPv4 mapped into IPv6), so CIDR filters are ranges.
    pub ip: Option<[u8; 16]>,
    /// Audit: `request_id`.
    pub request_id: Option<String>,
    /// Threat: `error_type`.
    pub error_type: Option<String>,
    /// Threat: `sdk` or `api`.
    pub source: Option<String>,
    /// Threat: `version`.
    pub version: Option<String>,
    /// Threat: `environment`.
    pub environment: Option<String>,
    /// Every string value of the body (not the field names), lower-cased, one per line, in
    /// the body's (sorted) key order: what the `q` filter searches.
    pub search_text: String,
}

impl IndexFields {
    /// The filter columns of an event whose canonical body (compact JSON, keys sorted) is
    /// `body`; `None` if `body` is not a JSON object.
    pub fn from_body(kind: EventKind, body: &str) -> Option<Self> {
        let mut columns = IndexFields {
            // Holds every string of the body, so the body's length is enough.
            search_text: String::with_capacity(body.len()),
            ..IndexFields::default()
        };
        columns.set_from_body(kind, body).then_some(columns)
    }

    /// The filter columns of the body `body` before it is written out as canonical text:
    /// the same walk as [`IndexFields::from_body`], over the tree validation already holds
    /// (object keys come out sorted either way); `None` if `body` is not an object.
    pub fn from_value(kind: EventKind, body: &serde_json::Value) -> Option<Self> {
        let mut columns = IndexFields::default();
        columns.walk(kind, body).then_some(columns)
    }

    /// Overwrites `self` with the columns of `body`, reusing the strings it already holds
    /// (verification derives millions in a row); `false`, leaving `self` unspecified, if
    /// `body` is not a JSON object.
    pub fn set_from_body(&mut self, kind: EventKind, body: &str) -> bool {
        let mut json = serde_json::Deserializer::from_str(body);
        self.walk(kind, &mut json) && json.end().is_ok()
    }

    /// Overwrites `self` with the columns of the value `body` yields; `false` unless it is a
    /// well-formed object.
    fn walk<'de>(&mut self, kind: EventKind, body: impl Deserializer<'de>) -> bool {
        self.search_text.clear();
        self.ip = None;
        let mut found = Found {
            columns: self,
            kind,
            seen: 0,
            is_object: false,
        };
        let walked = Walk {
            found: &mut found,
            slot: Slot::Root,
        }
        .deserialize(body)
        .is_ok();
        let Found {
            seen, is_object, ..
        } = found;
        for field in Field::ALL {
            if seen & field.bit() == 0 {
                *self.column(field) = None;
            }
        }
        walked && is_object
    }

    fn column(&mut self, field: Field) -> &mut Option<String> {
        match field {
            Field::Action => &mut self.action,
            Field::Outcome => &mut self.outcome,
            Field::RequestId => &mut self.request_id,
            Field::ActorId => &mut self.actor_id,
            Field::ErrorType => &mut self.error_type,
            Field::Source => &mut self.source,
            Field::Version => &mut self.version,
            Field::Environment => &mut self.environment,
        }
    }
}

/// The string columns taken from a body field.
#[derive(Clone, Copy)]
enum Field {
    Action,
    Outcome,
    RequestId,
    /// `actor.id`
    ActorId,
    ErrorType,
    Source,
    Version,
    Environment,
}

impl Field {
    const ALL: [Field; 8] = [
        Field::Action,
        Field::Outcome,
        Field::RequestId,
        Field::ActorId,
        Field::ErrorType,
        Field::Source,
        Field::Version,
        Field::Environment,
    ];

    fn bit(self) -> u16 {
        1 << self as u16
    }
}

/// Where a value sits in the body, as far as the columns care.
#[derive(Clone, Copy)]
enum Slot {
    /// The body itself.
    Root,
    /// The top-level `actor` value.
    Actor,
    /// The top-level `origin` value.
    Origin,
    /// A value a column is taken from, if it is a string.
    Column(Field),
    /// `origin.ip`, a column if it is a string holding an IP address.
    Ip,
    /// Anything else: only its strings matter, for `search_text`.
    Other,
}

impl Slot {
    /// The slot of the value under `key` in an object sitting in this slot.
    fn child(self, kind: EventKind, key: &str) -> Slot {
        use EventKind::{Audit, Threat};
        let column = match (kind, self, key) {
            (Audit, Slot::Root, "action") => Field::Action,
            (Audit, Slot::Root, "outcome") => Field::Outcome,
            (Audit, Slot::Root, "request_id") => Field::RequestId,
            (Audit, Slot::Root, "actor") => return Slot::Actor,
            (Audit, Slot::Root, "origin") => return Slot::Origin,
            (Audit, Slot::Actor, "id") => Field::ActorId,
            (Audit, Slot::Origin, "ip") => return Slot::Ip,
            (Threat, Slot::Root, "error_type") => Field::ErrorType,
            (Threat, Slot::Root, "source") => Field::Source,
            (Threat, Slot::Root, "version") => Field::Version,
            (Threat, Slot::Root, "environment") => Field::Environment,
            _ => return Slot::Other,
        };
        Slot::Column(column)
    }
}

/// What the walk has found so far.
struct Found<'a> {
    columns: &'a mut IndexFields,
    kind: EventKind,
    /// [`Field::bit`]s of the columns set by this walk.
    seen: u16,
    is_object: bool,
}

/// Visits one JSON value in `slot`, recording what the columns need.
struct Walk<'a, 'b> {
    found: &'a mut Found<'b>,
    slot: Slot,
}

impl<'de> DeserializeSeed<'de> for Walk<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk<'_, '_> {
    type Value = ();

    fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
        formatter.write_str("a JSON value")
    }

    fn visit_str<E: Error>(self, text: &str) -> Result<(), E> {
        let columns = &mut *self.found.columns;
        // `str::to_lowercase` handles the context-dependent cases (a final sigma) that a
        // per-character mapping would not; ASCII, the common case, needs no allocation.
        if text.is_ascii() {
            let start = columns.search_text.len();
            columns.search_text.push_str(text);
            columns.search_text[start..].make_ascii_lowercase();
        } else {
            columns.search_text.push_str(&text.to_lowercase());
        }
        columns.search_text.push('\n');
        match self.slot {
            Slot::Column(field) => {
                match columns.column(field) {
                    Some(value) => {
                        value.clear();
                        value.push_str(text);
                    }
                    empty => *empty = Some(text.to_owned()),
                }
                self.found.seen |= field.bit();
            }
            Slot::Ip => {
                columns.ip = text.parse().ok().map(crate::validate::ip_bytes);
            }
            _ => {}
        }
        Ok(())
    }

    fn visit_bool<E: Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E: Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E: Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E: Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E: Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<(), A::Error> {
        let found = self.found;
        while let Some(()) = items.next_element_seed(Walk {
            found: &mut *found,
            slot: Slot::Other,
        })? {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut entries: A) -> Result<(), A::Error> {
        let found = self.found;
        if matches!(self.slot, Slot::Root) {
            found.is_object = true;
        }
        while let Some(slot) = entries.next_key_seed(Key(self.slot, found.kind))? {
            entries.next_value_seed(Walk {
                found: &mut *found,
                slot,
            })?;
        }
        Ok(())
    }
}

/// Reads an object key without copying it and answers the slot of its value.
struct Key(Slot, EventKind);

impl<'de> DeserializeSeed<'de> for Key {
    type Value = Slot;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Slot, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key {
    type Value = Slot;

    fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
        formatter.write_str("an object key")
    }

    fn visit_str<E: Error>(self, key: &str) -> Result<Slot, E> {
        Ok(self.0.child(self.1, key))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    /// What the columns mean, written the slow and obvious way over a parsed JSON tree.
    fn reference(kind: EventKind, body: &Value) -> IndexFields {
        fn strings(value: &Value, out: &mut String) {
            match value {
                Value::String(text) => {
                    out.push_str(&text.to_lowercase());
                    out.push('\n');
                }
                Value::Array(items) => items.iter().for_each(|item| strings(item, out)),
                Value::Object(map) => map.values().for_each(|item| strings(item, out)),
                _ => {}
            }
        }
        let text = |value: Option<&Value>| value.and_then(Value::as_str).map(str::to_string);
        let field = |name: &str| text(body.get(name));
        let nested = |outer: &str, inner: &str| text(body.get(outer).and_then(|o| o.get(inner)));
        let mut search_text = String::new();
        strings(body, &mut search_text);
        let fields = match kind {
            EventKind::Audit => IndexFields {
                action: field("action"),
                outcome: field("outcome"),
                actor_id: nested("actor", "id"),
                ip: nested("origin", "ip")
                    .and_then(|ip| ip.parse().ok())
                    .map(crate::validate::ip_bytes),
                request_id: field("request_id"),
                ..IndexFields::default()
            },
            EventKind::Threat => IndexFields {
                error_type: field("error_type"),
                source: field("source"),
                version: field("version"),
                environment: field("environment"),
                ..IndexFields::default()
            },
        };
        IndexFields {
            search_text,
            ..fields
        }
    }

    #[test]
    fn one_pass_derivation_matches_the_tree_walk() {
        let bodies = [
            json!({"action": "user.login", "outcome": "failure", "request_id": "R-1",
                   "actor": {"id": "U-7", "type": "user", "id2": "x"},
                   "origin": {"ip": "10.0.0.1", "user_agent": "Mozilla ΣΑΣ"},
                   "metadata": {"nested": [{"deep": "ΔEEP"}, 1, null, true, 2.5, "Tail"]}}),
            json!({"action": 5, "actor": "not-an-object", "origin": {"ip": "::1"},
                   "outcome": {"id": "inner"}, "metadata": {"actor": {"id": "not top level"}}}),
            json!({"error_type": "Timeout", "source": "sdk", "version": "2.3.1",
                   "environment": "production", "message": "Quote \" and \\ and \n line",
                   "redactions": {"count": 0}, "action": "ignored for threat"}),
            json!({"origin": {"ip": "not an ip"}, "actor": {"id": ["list"]}}),
            json!({}),
        ];
        for body in bodies {
            let text = body.to_string();
            for kind in [EventKind::Audit, EventKind::Threat] {
                assert_eq!(
                    IndexFields::from_body(kind, &text),
                    Some(reference(kind, &body)),
                    "{kind:?} {text}"
                );
                assert_eq!(
                    IndexFields::from_value(kind, &body),
                    Some(reference(kind, &body)),
                    "{kind:?} {text} as a tree"
                );
            }
        }
    }

    /// Reusing one `IndexFields` for event after event gives what a fresh one gives: no
    /// column of an earlier event survives into a later one.
    #[test]
    fn reused_columns_hold_only_the_latest_body() {
        let bodies = [
            json!({"action": "a", "outcome": "success", "actor": {"id": "u"}, "origin": {"ip": "::1"}}),
            json!({"action": "b"}),
            json!({"error_type": "E", "version": "1"}),
            json!({"error_type": "F", "environment": "prod", "source": "api"}),
        ];
        let mut reused = IndexFields::default();
        for body in bodies.iter().chain(bodies.iter().rev()) {
            let text = body.to_string();
            for kind in [EventKind::Audit, EventKind::Threat] {
                assert!(reused.set_from_body(kind, &text));
                assert_eq!(reused, reference(kind, body), "{kind:?} {text}");
            }
        }
    }

    #[test]
    fn only_json_objects_have_columns() {
        for body in ["[]", "\"text\"", "1", "null", "", "{", "{} {}", "{\"a\":}"] {
            assert_eq!(
                IndexFields::from_body(EventKind::Audit, body),
                None,
                "{body}"
            );
        }
    }
}
