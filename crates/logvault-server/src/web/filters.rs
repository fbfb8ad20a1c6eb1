//! The filters of the log pages as they appear in the URL (so a view can be shared): the
//! API's query parameters, plus `range` presets and the `datetime-local` form of times.
//! Empty form fields mean "no filter".

pub(crate) use crate::api::params::encode_cursor;
use crate::api::params::{decode_cursor, parse_ip_range};

use logvault_core::{EventKind, Micros};
use logvault_store::EventQuery;
use serde::Deserialize;

const HOUR: i64 = 3_600_000_000;

/// The time-range presets: URL value, label, width.
pub(crate) const RANGES: [(&str, &str, i64); 4] = [
    ("1h", "Last hour", HOUR),
    ("24h", "Last 24 hours", 24 * HOUR),
    ("7d", "Last 7 days", 7 * 24 * HOUR),
    ("30d", "Last 30 days", 30 * 24 * HOUR),
];

/// Audit-only filters, in form order.
pub(crate) const AUDIT_FIELDS: [&str; 5] = ["action", "outcome", "actor_id", "ip", "request_id"];
/// Threat-only filters, in form order.
pub(crate) const THREAT_FIELDS: [&str; 5] = [
    "error_type",
    "source",
    "version",
    "environment",
    "fingerprint",
];

/// Every filter a log page accepts. Unknown parameters are ignored: they can only come from
/// a hand-edited URL and widen nothing.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub(crate) struct Filters {
    pub range: String,
    pub from: String,
    pub to: String,
    pub account_id: String,
    pub q: String,
    pub action: String,
    pub outcome: String,
    pub actor_id: String,
    pub ip: String,
    pub request_id: String,
    pub error_type: String,
    pub source: String,
    pub version: String,
    pub environment: String,
    /// An error group's fingerprint (the Problems page links here with it).
    pub fingerprint: String,
    pub cursor: String,
}

fn some(text: &str) -> Option<String> {
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_string())
}

/// RFC 3339, or the `YYYY-MM-DDTHH:MM[:SS]` of a `datetime-local` field read as UTC.
pub(crate) fn parse_time(text: &str) -> Option<Micros> {
    let text = text.trim();
    Micros::parse_rfc3339(text)
        .or_else(|| Micros::parse_rfc3339(&format!("{text}Z")))
        .or_else(|| Micros::parse_rfc3339(&format!("{text}:00Z")))
}

/// `YYYY-MM-DDTHH:MM`, the value a `datetime-local` field shows.
pub(crate) fn local_input(at: Micros) -> String {
    at.to_rfc3339().chars().take(16).collect()
}

impl Filters {
    /// Parses a raw query string.
    pub(crate) fn parse(raw: Option<&str>) -> Result<Filters, String> {
        serde_urlencoded::from_str(raw.unwrap_or_default())
            .map_err(|e| format!("bad query string: {e}"))
    }

    /// The value of filter `name` (empty when unset).
    pub(crate) fn get(&self, name: &str) -> &str {
        match name {
            "range" => &self.range,
            "from" => &self.from,
            "to" => &self.to,
            "account_id" => &self.account_id,
            "q" => &self.q,
            "action" => &self.action,
            "outcome" => &self.outcome,
            "actor_id" => &self.actor_id,
            "ip" => &self.ip,
            "request_id" => &self.request_id,
            "error_type" => &self.error_type,
            "source" => &self.source,
            "version" => &self.version,
            "environment" => &self.environment,
            "fingerprint" => &self.fingerprint,
            "cursor" => &self.cursor,
            _ => "",
        }
    }

    /// The `[from, to)` window: a preset counts back from `now`; `custom` (or no preset with
    /// times given) uses `from` and `to`.
    pub(crate) fn window(&self, now: Micros) -> Result<(Option<Micros>, Option<Micros>), String> {
        if let Some((_, _, width)) = RANGES.iter().find(|(name, _, _)| *name == self.range) {
            return Ok((Some(Micros(now.0 - width)), None));
        }
        if !matches!(self.range.as_str(), "" | "all" | "custom") {
            return Err("range must be 1h, 24h, 7d, 30d, all or custom".into());
        }
        if self.range == "all" {
            return Ok((None, None));
        }
        let time = |name: &str, text: &str| {
            some(text)
                .map(|text| parse_time(&text).ok_or(format!("{name} must be a date and time")))
                .transpose()
        };
        let (from, to) = (time("from", &self.from)?, time("to", &self.to)?);
        if let (Some(from), Some(to)) = (from, to)
            && from > to
        {
            return Err("from must not be after to".into());
        }
        Ok((from, to))
    }

    /// The store query for one page of `kind`.
    pub(crate) fn to_query(
        &self,
        kind: EventKind,
        now: Micros,
        limit: usize,
    ) -> Result<EventQuery, String> {
        let (from, to) = self.window(now)?;
        let mut query = EventQuery::new(kind, limit);
        query.from = from;
        query.to = to;
        query.account_id = some(&self.account_id);
        query.text = some(&self.q);
        if query.text.as_ref().is_some_and(|q| q.len() > 256) {
            return Err("search text must be at most 256 bytes".into());
        }
        match kind {
            EventKind::Audit => {
                query.action = some(&self.action);
                query.outcome = some(&self.outcome);
                if query
                    .outcome
                    .as_deref()
                    .is_some_and(|o| o != "success" && o != "failure")
                {
                    return Err("outcome must be success or failure".into());
                }
                query.actor_id = some(&self.actor_id);
                query.ip = some(&self.ip).map(|ip| parse_ip_range(&ip)).transpose()?;
                query.request_id = some(&self.request_id);
            }
            EventKind::Threat => {
                query.error_type = some(&self.error_type);
                query.source = some(&self.source);
                if query
                    .source
                    .as_deref()
                    .is_some_and(|s| s != "sdk" && s != "api")
                {
                    return Err("source must be sdk or api".into());
                }
                query.version = some(&self.version);
                query.environment = some(&self.environment);
                query.fingerprint = some(&self.fingerprint)
                    .map(|hash| {
                        logvault_store::groups::fingerprint_number(&hash.to_ascii_lowercase())
                            .ok_or("a problem's fingerprint is 16 hex digits".to_string())
                    })
                    .transpose()?;
            }
        }
        query.before_seq = some(&self.cursor)
            .map(|cursor| decode_cursor(&cursor).ok_or("the cursor is not valid".to_string()))
            .transpose()?;
        Ok(query)
    }

    /// The non-empty filters that apply to `kind`, as URL pairs, for links that keep the
    /// current view (pagination, tabs, tail). The cursor is never carried over.
    pub(crate) fn pairs(&self, kind: EventKind) -> Vec<(&'static str, String)> {
        let kind_fields: &[&'static str] = match kind {
            EventKind::Audit => &AUDIT_FIELDS,
            EventKind::Threat => &THREAT_FIELDS,
        };
        ["range", "from", "to", "account_id", "q"]
            .iter()
            .chain(kind_fields)
            .filter_map(|name| some(self.get(name)).map(|value| (*name, value)))
            .filter(|(name, _)| self.range == "custom" || !matches!(*name, "from" | "to"))
            .collect()
    }

    /// The same filters as parameters of the JSON API (`from`/`to` as RFC 3339), for the
    /// export links.
    pub(crate) fn api_pairs(&self, kind: EventKind, now: Micros) -> Vec<(&'static str, String)> {
        let (from, to) = self.window(now).unwrap_or((None, None));
        let mut pairs: Vec<(&'static str, String)> = self
            .pairs(kind)
            .into_iter()
            .filter(|(name, _)| !matches!(*name, "range" | "from" | "to"))
            .collect();
        pairs.extend(from.map(|at| ("from", at.to_rfc3339())));
        pairs.extend(to.map(|at| ("to", at.to_rfc3339())));
        pairs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows() {
        let now = Micros::parse_rfc3339("2026-01-02T00:00:00Z").expect("time");
        let at = |text: &str| Micros::parse_rfc3339(text).expect("time");
        type Window = Result<(Option<Micros>, Option<Micros>), ()>;
        let cases: [(&str, Window); 6] = [
            ("", Ok((None, None))),
            ("range=24h", Ok((Some(at("2026-01-01T00:00:00Z")), None))),
            (
                "range=custom&from=2025-12-01T10%3A00&to=2025-12-02T00%3A00%3A00Z",
                Ok((
                    Some(at("2025-12-01T10:00:00Z")),
                    Some(at("2025-12-02T00:00:00Z")),
                )),
            ),
            (
                "range=custom&from=2025-12-03T00:00&to=2025-12-02T00:00",
                Err(()),
            ),
            ("range=custom&from=yesterday", Err(())),
            ("range=1y", Err(())),
        ];
        for (raw, expected) in cases {
            let filters = Filters::parse(Some(raw)).expect("parse");
            assert_eq!(filters.window(now).map_err(|_| ()), expected, "{raw}");
        }
    }

    #[test]
    fn pairs_keep_only_what_applies() {
        let raw = "range=7d&from=x&action=user.login&error_type=E&q=&cursor=c0000000000000001";
        let filters = Filters::parse(Some(raw)).expect("parse");
        assert_eq!(
            filters.pairs(EventKind::Audit),
            vec![("range", "7d".to_string()), ("action", "user.login".into())]
        );
        assert_eq!(
            filters.pairs(EventKind::Threat),
            vec![("range", "7d".to_string()), ("error_type", "E".into())]
        );
        let query = filters
            .to_query(EventKind::Audit, Micros(0), 50)
            .expect("query");
        assert_eq!(query.before_seq, Some(1));
        assert_eq!(query.error_type, None);
    }
}
