//! `bench --fingerprints N`: how well threat event fingerprints group errors, on a labelled
//! corpus generated here: bug templates, each rendered `N` times with other ids, numbers,
//! durations, addresses, hex, quoted values and times (one bug → should be one group), and
//! near-duplicates that are different bugs (another error type, source, path, stack frame
//! or wording → should be other groups). It reports purity (the share of messages that sit
//! in a group whose majority is their own bug) and split rate (the share of bugs spread over
//! more than one group) as JSON. No server or store is involved.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use logvault_core::event::fingerprint::Fingerprint;
use serde_json::json;

use crate::rng::Rng;

/// One labelled error: its bug and the fields the fingerprint reads.
struct Sample {
    bug: &'static str,
    error_type: &'static str,
    source: &'static str,
    message: String,
    method: Option<&'static str>,
    path: Option<String>,
    stacktrace: Option<String>,
}

/// The variable parts a template draws from.
struct Draw<'a>(&'a mut Rng);

impl Draw<'_> {
    fn id(&mut self, prefix: &str) -> String {
        let n = 6 + self.0.below(20);
        let alphabet = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
        let mut id: String = (0..n)
            .map(|_| alphabet[self.0.below(alphabet.len())] as char)
            .collect();
        // An id always holds a digit, as generated ids do.
        id.push(char::from(b'0' + self.0.below(10) as u8));
        format!("{prefix}{id}")
    }
    fn uuid(&mut self) -> String {
        let a = self.0.next();
        let b = self.0.next();
        format!(
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xffff,
            b >> 48,
            b & 0xffff_ffff_ffff
        )
    }
    fn number(&mut self, max: usize) -> usize {
        self.0.below(max) + 1
    }
    fn hex(&mut self) -> String {
        format!("{:x}", self.0.next() | (1 << 60))
    }
    fn ip(&mut self) -> String {
        format!(
            "10.{}.{}.{}",
            self.0.below(256),
            self.0.below(256),
            self.0.below(256)
        )
    }
    fn word(&mut self) -> &'static str {
        const WORDS: [&str; 6] = [
            "amount",
            "currency",
            "customer",
            "metadata",
            "return_url",
            "email",
        ];
        WORDS[self.0.below(WORDS.len())]
    }
    fn time(&mut self) -> String {
        format!(
            "2026-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            self.number(12),
            self.number(28),
            self.0.below(24),
            self.0.below(60),
            self.0.below(60)
        )
    }
}

type Template = fn(&mut Draw<'_>) -> Sample;

fn sample(
    bug: &'static str,
    error_type: &'static str,
    source: &'static str,
    message: String,
) -> Sample {
    Sample {
        bug,
        error_type,
        source,
        message,
        method: None,
        path: None,
        stacktrace: None,
    }
}

fn api(mut sample: Sample, method: &'static str, path: String) -> Sample {
    sample.method = Some(method);
    sample.path = Some(path);
    sample
}

fn frame(mut sample: Sample, trace: String) -> Sample {
    sample.stacktrace = Some(trace);
    sample
}

/// The bug templates. Several pairs are near-duplicates of each other on purpose.
const TEMPLATES: &[Template] = &[
    |d| {
        sample(
            "timeout-confirm",
            "NetworkTimeout",
            "sdk",
            format!(
                "request to api.example.com timed out after {} ms while confirming the payment",
                d.number(60_000)
            ),
        )
    },
    |d| {
        sample(
            "timeout-capture",
            "NetworkTimeout",
            "sdk",
            format!(
                "request to api.example.com timed out after {} ms while capturing the payment",
                d.number(60_000)
            ),
        )
    },
    |d| {
        sample(
            "timeout-api",
            "NetworkTimeout",
            "api",
            format!(
                "request to api.example.com timed out after {} ms while confirming the payment",
                d.number(60_000)
            ),
        )
    },
    |d| {
        sample(
            "decode-next-action",
            "ResponseDecodingError",
            "sdk",
            format!(
                "could not decode PaymentIntent: missing field `next_action` at line {} column {}",
                d.number(9),
                d.number(900)
            ),
        )
    },
    |d| {
        sample(
            "decode-setup",
            "ResponseDecodingError",
            "sdk",
            format!(
                "could not decode SetupIntent: unexpected end of input at line {} column {}",
                d.number(9),
                d.number(900)
            ),
        )
    },
    |d| {
        sample(
            "amount-negative",
            "InvalidRequestError",
            "api",
            format!(
                "amount must be a positive integer in the smallest currency unit; got -{}",
                d.number(100_000)
            ),
        )
    },
    |d| {
        sample(
            "amount-too-large",
            "InvalidRequestError",
            "api",
            format!(
                "amount must be at most 99999999; got {}",
                100_000_000 + d.number(1_000_000)
            ),
        )
    },
    // As the scrubber leaves it: the key's kind and last characters.
    |d| {
        let key = d.id("sk_live_");
        sample(
            "bad-key",
            "AuthenticationError",
            "api",
            format!(
                "Invalid API key provided: [secret:…{}]",
                &key[key.len() - 4..]
            ),
        )
    },
    |d| {
        sample(
            "rate-limit",
            "RateLimitError",
            "api",
            format!(
                "too many requests to /v1/payments; retry after {} second(s)",
                d.number(30)
            ),
        )
    },
    |d| {
        let id = d.id("pi_");
        api(
            sample(
                "payment-not-found",
                "NotFound",
                "api",
                format!("No such payment_intent: '{id}'"),
            ),
            "GET",
            format!("/v1/payment_intents/{id}"),
        )
    },
    |d| {
        let id = d.id("cus_");
        api(
            sample(
                "customer-not-found",
                "NotFound",
                "api",
                format!("No such customer: '{id}'"),
            ),
            "GET",
            format!("/v1/customers/{id}"),
        )
    },
    |d| {
        let id = d.id("pi_");
        api(
            sample(
                "confirm-state",
                "InvalidStateError",
                "api",
                format!(
                    "payment {id} cannot be confirmed in state \"{}\"",
                    *d.0.pick(&["canceled", "succeeded", "processing"])
                ),
            ),
            "POST",
            format!("/v1/payment_intents/{id}/confirm"),
        )
    },
    |d| {
        let id = d.id("pi_");
        api(
            sample(
                "capture-state",
                "InvalidStateError",
                "api",
                format!(
                    "payment {id} cannot be confirmed in state \"{}\"",
                    *d.0.pick(&["canceled", "succeeded", "processing"])
                ),
            ),
            "POST",
            format!("/v1/payment_intents/{id}/capture"),
        )
    },
    |d| {
        sample(
            "refund-exceeds",
            "InvalidRequestError",
            "api",
            format!(
                "refund of {} exceeds the {} left on charge {}",
                d.number(9999),
                d.number(999),
                d.id("ch_")
            ),
        )
    },
    |d| {
        sample(
            "webhook-signature",
            "SignatureVerificationError",
            "api",
            format!(
                "no signature matching the expected one for payload at t={}; tolerance {} s",
                1_760_000_000 + d.number(10_000_000),
                d.number(600)
            ),
        )
    },
    |d| {
        sample(
            "idempotency-reuse",
            "IdempotencyError",
            "api",
            format!(
                "key {} was used with different parameters {} seconds ago",
                d.uuid(),
                d.number(86_400)
            ),
        )
    },
    |d| {
        sample(
            "dns",
            "NetworkError",
            "sdk",
            format!("could not resolve host api-{}.example.com", d.number(9)),
        )
    },
    |d| {
        sample(
            "tls",
            "NetworkError",
            "sdk",
            format!(
                "TLS handshake with {}:443 failed: certificate expired at {}",
                d.ip(),
                d.time()
            ),
        )
    },
    |d| {
        sample(
            "connection-reset",
            "NetworkError",
            "sdk",
            format!(
                "connection to {}:443 reset by peer after {} bytes",
                d.ip(),
                d.number(65_536)
            ),
        )
    },
    |d| {
        sample(
            "card-declined",
            "CardError",
            "api",
            format!(
                "card ending {:04} was declined: code {} (attempt {} of {})",
                d.number(9999),
                *d.0.pick(&["51", "05", "14"]),
                d.number(3),
                3
            ),
        )
    },
    |d| {
        sample(
            "3ds-timeout",
            "AuthenticationTimeout",
            "sdk",
            format!(
                "3-D Secure challenge {} not completed within {} s",
                d.uuid(),
                d.number(900)
            ),
        )
    },
    |d| {
        sample(
            "param-unknown",
            "InvalidRequestError",
            "api",
            format!("Received unknown parameter: metadata[{}]", d.id("k_")),
        )
    },
    |_| {
        sample(
            "param-missing",
            "InvalidRequestError",
            "api",
            "Missing required param: amount.".into(),
        )
    },
    |d| {
        sample(
            "param-invalid",
            "InvalidRequestError",
            "api",
            format!("Invalid value '{}' for param {}", d.id("v"), d.word()),
        )
    },
    |d| {
        sample(
            "webview-crash",
            "WebViewCrash",
            "sdk",
            format!(
                "render process gone (pid {}) at address 0x{}",
                d.number(65_535),
                d.hex()
            ),
        )
    },
    |d| {
        frame(
            sample(
                "null-deref",
                "TypeError",
                "sdk",
                "Cannot read properties of undefined (reading 'clientSecret')".into(),
            ),
            format!(
                "TypeError: Cannot read properties of undefined (reading 'clientSecret')\n    at confirmPayment (checkout-{}.js:{}:{})\n    at onSubmit (form.js:{}:{})",
                d.hex(),
                d.number(900),
                d.number(80),
                d.number(300),
                d.number(80)
            ),
        )
    },
    |d| {
        frame(
            sample(
                "null-deref-mount",
                "TypeError",
                "sdk",
                "Cannot read properties of undefined (reading 'clientSecret')".into(),
            ),
            format!(
                "TypeError: Cannot read properties of undefined (reading 'clientSecret')\n    at mountElement (elements.js:{}:{})\n    at init (app.js:{}:{})",
                d.number(900),
                d.number(80),
                d.number(300),
                d.number(80)
            ),
        )
    },
    |d| {
        frame(
            sample(
                "ios-crash",
                "NSInvalidArgumentException",
                "sdk",
                format!(
                    "-[STPPaymentHandler confirm:] unrecognized selector sent to instance 0x{}",
                    d.hex()
                ),
            ),
            format!(
                "0   CoreFoundation 0x{} __exceptionPreprocess + {}\n1   libobjc.A.dylib 0x{} objc_exception_throw + {}",
                d.hex(),
                d.number(200),
                d.hex(),
                d.number(60)
            ),
        )
    },
    |d| {
        sample(
            "quota",
            "QuotaExceeded",
            "api",
            format!(
                "daily quota of {} requests exceeded for account {}; resets at {}",
                d.number(100_000),
                d.id("acct_"),
                d.time()
            ),
        )
    },
    |d| {
        sample(
            "version-unsupported",
            "InvalidRequestError",
            "api",
            format!(
                "API version {} is not supported; use {} or later",
                d.time(),
                d.time()
            ),
        )
    },
    |d| {
        sample(
            "email-invalid",
            "InvalidRequestError",
            "api",
            format!(
                "invalid email address [email] for customer {}",
                d.id("cus_")
            ),
        )
    },
    |d| {
        sample(
            "lock-timeout",
            "LockTimeout",
            "api",
            format!(
                "could not lock payment {} within {}ms (held by worker-{})",
                d.uuid(),
                d.number(5_000),
                d.number(64)
            ),
        )
    },
    |d| {
        sample(
            "upstream-5xx",
            "UpstreamError",
            "api",
            format!(
                "acquirer returned HTTP {} for request {}",
                *d.0.pick(&["500", "502", "503"]),
                d.id("req_")
            ),
        )
    },
    |d| {
        sample(
            "upstream-4xx",
            "UpstreamError",
            "api",
            format!(
                "acquirer rejected request {}: invalid merchant configuration",
                d.id("req_")
            ),
        )
    },
];

/// Runs the measurement with `variants` renderings of every bug and prints the figures.
pub(crate) fn run(variants: usize, seed: u64) -> anyhow::Result<()> {
    anyhow::ensure!(variants > 0, "--fingerprints must be positive");
    let mut rng = Rng(seed);
    let mut samples = Vec::with_capacity(variants * TEMPLATES.len());
    for template in TEMPLATES {
        for _ in 0..variants {
            samples.push(template(&mut Draw(&mut rng)));
        }
    }
    let started = Instant::now();
    let hashes: Vec<String> = samples
        .iter()
        .map(|s| {
            Fingerprint::of(
                s.error_type,
                s.source,
                &s.message,
                s.method,
                s.path.as_deref(),
                s.stacktrace.as_deref(),
            )
            .hash
        })
        .collect();
    let elapsed = started.elapsed();
    let figures = measure(&samples, &hashes);
    let report = json!({
        "messages": samples.len(),
        "bugs": TEMPLATES.len(),
        "variants_per_bug": variants,
        "groups": figures.groups,
        "purity": figures.purity,
        "split_rate": figures.split_rate,
        "extra_groups_per_bug": figures.extra_groups_per_bug,
        "split_bugs": figures.split_bugs,
        "merged_bugs": figures.merged_bugs,
        "ns_per_fingerprint": elapsed.as_nanos() as f64 / samples.len() as f64,
        "seed": seed,
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

/// The figures of one labelled grouping.
#[derive(Debug)]
struct Figures {
    groups: usize,
    purity: f64,
    split_rate: f64,
    extra_groups_per_bug: f64,
    split_bugs: Vec<String>,
    merged_bugs: Vec<Vec<String>>,
}

fn measure(samples: &[Sample], hashes: &[String]) -> Figures {
    let mut by_group: HashMap<&str, BTreeMap<&str, usize>> = HashMap::new();
    let mut by_bug: BTreeMap<&str, BTreeMap<&str, usize>> = BTreeMap::new();
    for (sample, hash) in samples.iter().zip(hashes) {
        *by_group
            .entry(hash)
            .or_default()
            .entry(sample.bug)
            .or_default() += 1;
        *by_bug
            .entry(sample.bug)
            .or_default()
            .entry(hash)
            .or_default() += 1;
    }
    let majority: usize = by_group
        .values()
        .map(|bugs| bugs.values().copied().max().unwrap_or(0))
        .sum();
    let split_bugs: Vec<String> = by_bug
        .iter()
        .filter(|(_, groups)| groups.len() > 1)
        .map(|(bug, groups)| format!("{bug} ({} groups)", groups.len()))
        .collect();
    let extra: usize = by_bug.values().map(|groups| groups.len() - 1).sum();
    let mut merged_bugs: Vec<Vec<String>> = by_group
        .values()
        .filter(|bugs| bugs.len() > 1)
        .map(|bugs| bugs.keys().map(|bug| bug.to_string()).collect())
        .collect();
    merged_bugs.sort();
    Figures {
        groups: by_group.len(),
        purity: majority as f64 / samples.len().max(1) as f64,
        split_rate: split_bugs.len() as f64 / by_bug.len().max(1) as f64,
        extra_groups_per_bug: extra as f64 / by_bug.len().max(1) as f64,
        split_bugs,
        merged_bugs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// No two bugs of the corpus share a group, and every bug is one group but the one whose
    /// message names a field without quotes (a field name is not masked: it often is the bug).
    #[test]
    fn every_bug_of_the_corpus_is_one_group_of_its_own() {
        let mut rng = Rng(7);
        let samples: Vec<Sample> = TEMPLATES
            .iter()
            .flat_map(|template| {
                (0..50)
                    .map(|_| template(&mut Draw(&mut rng)))
                    .collect::<Vec<_>>()
            })
            .collect();
        let hashes: Vec<String> = samples
            .iter()
            .map(|s| {
                Fingerprint::of(
                    s.error_type,
                    s.source,
                    &s.message,
                    s.method,
                    s.path.as_deref(),
                    s.stacktrace.as_deref(),
                )
                .hash
            })
            .collect();
        let figures = measure(&samples, &hashes);
        assert_eq!(figures.split_bugs, ["param-invalid (6 groups)"]);
        assert_eq!(figures.merged_bugs, Vec::<Vec<String>>::new());
        assert_eq!(figures.groups, TEMPLATES.len() + 5);
        assert!((figures.purity - 1.0).abs() < f64::EPSILON);
    }

    /// The measure itself: a split bug and two merged bugs are counted as such.
    #[test]
    fn the_measure_counts_splits_and_merges() {
        let s = |bug| sample(bug, "E", "sdk", String::new());
        let samples = [s("a"), s("a"), s("b"), s("c")];
        let hashes = ["1", "2", "2", "2"].map(String::from);
        let figures = measure(&samples, &hashes);
        assert_eq!(figures.groups, 2);
        assert_eq!(figures.split_bugs, ["a (2 groups)"]);
        assert_eq!(figures.merged_bugs, [vec!["a", "b", "c"]]);
        assert!((figures.purity - 0.5).abs() < 1e-9, "{figures:?}");
        assert!((figures.split_rate - 1.0 / 3.0).abs() < 1e-9);
    }
}
