//! The benchmark's seeded workload: 50 partners with 5,000 merchants whose activity follows a
//! Zipf-like distribution, about two audit events for every threat event, and field sizes
//! like production traffic (browser user agents, error messages, small metadata); and the
//! search terms the query phase looks for, one of them in a handful of events sent once.

use bytes::Bytes;
use logvault_core::validate::{Limits, validate_event};
use logvault_core::{EventKind, Micros, NewEvent};
use serde_json::{Value, json};

use crate::rng::Rng;

/// Partners in the benchmark tenancy.
pub(crate) const N_PARTNERS: usize = 50;
/// Merchants, spread over the partners round-robin by activity rank.
pub(crate) const N_MERCHANTS: usize = 5_000;

pub(crate) fn partner_id(index: usize) -> String {
    format!("par_bench_{index:02}")
}

/// Merchant of activity rank `rank` (0 is the busiest).
pub(crate) fn merchant_id(rank: usize) -> String {
    format!("mer_bench_{rank:04}")
}

/// Every account with its partner, for creating the tenancy.
pub(crate) fn accounts() -> Vec<(String, Option<String>)> {
    let partners = (0..N_PARTNERS).map(|p| (partner_id(p), None));
    let merchants = (0..N_MERCHANTS).map(|m| (merchant_id(m), Some(partner_id(m % N_PARTNERS))));
    partners.chain(merchants).collect()
}

/// Draws merchant ranks with probability proportional to 1 / (rank + 1).
pub(crate) struct Zipf {
    cumulative: Vec<f64>,
}

impl Zipf {
    pub(crate) fn new(n: usize) -> Self {
        let mut total = 0.0;
        let cumulative = (0..n)
            .map(|rank| {
                total += 1.0 / (rank as f64 + 1.0);
                total
            })
            .collect::<Vec<_>>();
        Zipf {
            cumulative: cumulative.iter().map(|c| c / total).collect(),
        }
    }

    pub(crate) fn sample(&self, rng: &mut Rng) -> usize {
        let roll = rng.unit();
        self.cumulative
            .partition_point(|c| *c < roll)
            .min(self.cumulative.len() - 1)
    }
}

const USER_AGENTS: [&str; 4] = [
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
    "okhttp/4.12.0 (Android 14; Pixel 8)",
];
const ACTIONS: [(&str, &str); 6] = [
    ("user.login", "success"),
    ("user.login", "success"),
    ("user.login", "failure"),
    ("user.logout", "success"),
    ("user.password_changed", "success"),
    ("api_key.created", "success"),
];
const ERRORS: [(&str, &str, &str); 5] = [
    (
        "sdk",
        "NetworkTimeout",
        "request to api.example.com timed out after 30000 ms while confirming the payment",
    ),
    (
        "sdk",
        "ResponseDecodingError",
        "could not decode PaymentIntent: missing field `next_action` at line 1 column 412",
    ),
    (
        "api",
        "InvalidRequestError",
        "amount must be a positive integer in the smallest currency unit; got -100",
    ),
    ("api", "AuthenticationError", "Invalid API key provided"),
    (
        "api",
        "RateLimitError",
        "too many requests to /v1/payments; retry after 1 second",
    ),
];
const VERSIONS: [&str; 6] = [
    "ios-sdk 4.2.1",
    "ios-sdk 4.3.0",
    "android-sdk 3.10.0",
    "web-sdk 2.1.0",
    "API 2024-06-01",
    "API 2025-03-15",
];

/// One event as the client would send it.
pub(crate) fn event(rng: &mut Rng, zipf: &Zipf, kind: EventKind) -> Value {
    let account = merchant_id(zipf.sample(rng));
    let occurred_at = Micros(Micros::now().0 - rng.below(5_000_000) as i64).to_rfc3339();
    match kind {
        EventKind::Audit => {
            let (action, outcome) = *rng.pick(&ACTIONS);
            json!({
                "account_id": account, "action": action, "outcome": outcome,
                "actor": {"id": format!("usr_{}", rng.below(100_000)), "type": "user"},
                "origin": {"ip": format!("203.0.{}.{}", rng.below(256), rng.below(256)), "user_agent": *rng.pick(&USER_AGENTS)},
                "request_id": format!("req_{:016x}", rng.next()),
                "occurred_at": occurred_at,
                "metadata": {"mfa": rng.chance(60), "region": *rng.pick(&["eu-west-1", "us-east-1", "ap-south-1"])},
            })
        }
        EventKind::Threat => {
            let (source, error_type, message) = *rng.pick(&ERRORS);
            json!({
                "account_id": account, "source": source, "error_type": error_type,
                "error_code": format!("E_{}", error_type.to_uppercase()), "message": message,
                "version": *rng.pick(&VERSIONS), "environment": *rng.pick(&["production", "production", "sandbox"]),
                "occurred_at": occurred_at,
                "metadata": {"attempt": rng.below(4), "request_id": format!("req_{:016x}", rng.next())},
            })
        }
    }
}

/// The kind of the `index`-th request: two audit requests for every threat request.
pub(crate) fn kind_of(index: usize) -> EventKind {
    if index % 3 == 2 {
        EventKind::Threat
    } else {
        EventKind::Audit
    }
}

/// The 48 request bodies of `batch` events each that ingest cycles through, in the order of
/// [`kind_of`].
pub(crate) fn request_pool(rng: &mut Rng, zipf: &Zipf, batch: usize) -> Vec<(EventKind, Bytes)> {
    (0..48)
        .map(|i| {
            let kind = kind_of(i);
            (kind, Bytes::from(body(rng, zipf, kind, batch)))
        })
        .collect()
}

/// A request body of `batch` events of `kind`, as a JSON array.
pub(crate) fn body(rng: &mut Rng, zipf: &Zipf, kind: EventKind, batch: usize) -> Vec<u8> {
    let events: Vec<Value> = (0..batch).map(|_| event(rng, zipf, kind)).collect();
    serde_json::to_vec(&events).unwrap_or_default()
}

/// The same events validated as the server would, for the raw ceiling.
pub(crate) fn new_events(body: &[u8], kind: EventKind) -> Vec<NewEvent> {
    let values: Vec<Value> = serde_json::from_slice(body).unwrap_or_default();
    values
        .iter()
        .filter_map(|value| validate_event(kind, 0, value, "", &Limits::default()).ok())
        .collect()
}

/// Events that carry the rare search term: few enough that a search for it must look
/// through the whole scope to be sure it found them all.
pub(crate) const N_RARE: usize = 10;

/// The search terms of the query phase beside the common `timed out`, drawn from the seed.
#[derive(Debug)]
pub(crate) struct SearchTerms {
    /// In the messages of the [`N_RARE`] events of [`rare_body`] and in no other event.
    pub(crate) rare: String,
    /// In no event the workload sends.
    pub(crate) absent: String,
}

impl SearchTerms {
    pub(crate) fn new(seed: u64) -> Self {
        // A generator of its own, so the terms leave the rest of the workload unchanged.
        let mut rng = Rng(seed ^ 0x7261_7265_7465_726d);
        // Letters after `f` only: no hexadecimal request id or nonce can contain them, and
        // one word of letters is one token to any tokenizer.
        let mut word = |prefix: &str| {
            let letters: String = (0..12)
                .map(|_| char::from(b'g' + rng.below(20) as u8))
                .collect();
            format!("{prefix}{letters}")
        };
        SearchTerms {
            rare: word("rare"),
            absent: word("none"),
        }
    }
}

/// [`N_RARE`] threat events of the busiest merchant (so every role reading in the
/// benchmark can see them) whose message holds `terms.rare`, as one request body.
pub(crate) fn rare_body(seed: u64, terms: &SearchTerms) -> Vec<u8> {
    let mut rng = Rng(seed ^ 0x7261_7265_626f_6479);
    let zipf = Zipf::new(1);
    let events: Vec<Value> = (0..N_RARE)
        .map(|i| {
            let mut event = event(&mut rng, &zipf, EventKind::Threat);
            event["message"] = format!(
                "card reader firmware {} rejected the terminal handshake (attempt {i})",
                terms.rare
            )
            .into();
            event
        })
        .collect();
    serde_json::to_vec(&events).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use logvault_core::EventKind;

    use super::{N_RARE, SearchTerms, Zipf, body, kind_of, new_events, rare_body};
    use crate::rng::Rng;

    #[test]
    fn the_rare_term_is_in_its_events_only_and_the_absent_term_in_none() {
        for seed in [0, 42, u64::MAX] {
            let terms = SearchTerms::new(seed);
            assert_eq!(
                terms.rare,
                SearchTerms::new(seed).rare,
                "drawn from the seed"
            );
            assert_ne!(terms.rare, terms.absent);
            let rare = rare_body(seed, &terms);
            let stored = new_events(&rare, EventKind::Threat);
            assert_eq!(stored.len(), N_RARE, "every rare event is valid");
            for event in &stored {
                assert!(event.body.contains(&terms.rare), "{}", event.body);
                assert_eq!(event.account_id, super::merchant_id(0));
            }
            let (mut rng, zipf) = (Rng(seed), Zipf::new(super::N_MERCHANTS));
            for i in 0..12 {
                let text =
                    String::from_utf8(body(&mut rng, &zipf, kind_of(i), 200)).expect("UTF-8");
                assert!(!text.contains(&terms.rare) && !text.contains(&terms.absent));
            }
        }
    }
}
