//! The benchmark's result: one JSON object with every figure, and a readable table.

use serde_json::{Map, Value, json};

/// Latency samples in milliseconds.
#[derive(Debug, Default, Clone)]
pub(crate) struct Latencies(Vec<f64>);

impl Latencies {
    pub(crate) fn push(&mut self, millis: f64) {
        self.0.push(millis);
    }

    pub(crate) fn extend(&mut self, samples: Vec<f64>) {
        self.0.extend(samples);
    }

    /// The `p`-th percentile (nearest rank); 0 when empty.
    pub(crate) fn percentile(&self, p: f64) -> f64 {
        if self.0.is_empty() {
            return 0.0;
        }
        let mut sorted = self.0.clone();
        sorted.sort_by(f64::total_cmp);
        let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
        sorted[rank.clamp(1, sorted.len()) - 1]
    }

    fn json(&self) -> Value {
        json!({
            "p50_ms": round(self.percentile(50.0)),
            "p95_ms": round(self.percentile(95.0)),
            "p99_ms": round(self.percentile(99.0)),
            "samples": self.0.len(),
        })
    }
}

fn round(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

/// Every figure one `logvault bench` run produces.
#[derive(Debug, Default)]
pub(crate) struct Report {
    settings: Value,
    pub(crate) ingest_events_per_s: f64,
    pub(crate) ingest_mb_per_s: f64,
    pub(crate) ceiling_events_per_s: f64,
    pub(crate) batch_latency: Latencies,
    pub(crate) single_latency: Latencies,
    pub(crate) background_events_per_s: f64,
    pub(crate) queries: Vec<(&'static str, Latencies)>,
    /// Logs-page loads, signed in through the form.
    pub(crate) pages: Vec<(&'static str, Latencies)>,
    pub(crate) peak_rss_mb: Option<f64>,
    pub(crate) bytes_per_event: f64,
    pub(crate) bytes_per_event_without_text: f64,
    pub(crate) reopen_after_kill_ms: f64,
    pub(crate) events_stored: u64,
    pub(crate) verify_events_per_s: f64,
    pub(crate) scrub_clean_mb_per_s: f64,
    pub(crate) scrub_dirty_mb_per_s: f64,
}

impl Report {
    pub(crate) fn new(events: usize, clients: usize, batch: usize, backend: &str) -> Self {
        Report {
            settings: super::settings_json(events, clients, batch, backend),
            ..Report::default()
        }
    }

    pub(crate) fn to_json(&self) -> Value {
        let by_name = |measured: &[(&'static str, Latencies)]| {
            let mut figures = Map::new();
            for (name, latencies) in measured {
                figures.insert((*name).into(), latencies.json());
            }
            Value::Object(figures)
        };
        json!({
            "settings": self.settings,
            "machine": machine(),
            "ingest": {
                "events_per_s": self.ingest_events_per_s.round(),
                "mb_per_s": round(self.ingest_mb_per_s),
                "ceiling_events_per_s": self.ceiling_events_per_s.round(),
                "ratio_to_ceiling": round(self.ingest_events_per_s / self.ceiling_events_per_s.max(1.0)),
                "batch_p99_ms": round(self.batch_latency.percentile(99.0)),
                "single_event_p50_ms": round(self.single_latency.percentile(50.0)),
                "single_event_p99_ms": round(self.single_latency.percentile(99.0)),
            },
            "query": by_name(&self.queries),
            "pages": by_name(&self.pages),
            "query_background_ingest_events_per_s": self.background_events_per_s.round(),
            "server": {"peak_rss_mb": self.peak_rss_mb.map(round)},
            "storage": {
                "bytes_per_event": self.bytes_per_event.round(),
                "bytes_per_event_excluding_text_index": self.bytes_per_event_without_text.round(),
                "reopen_after_kill_ms": round(self.reopen_after_kill_ms),
            },
            "events_stored": self.events_stored,
            "verify": {"events_per_s": self.verify_events_per_s.round()},
            "scrub": {
                "clean_mb_per_s": round(self.scrub_clean_mb_per_s),
                "dirty_mb_per_s": round(self.scrub_dirty_mb_per_s),
            },
        })
    }

    pub(crate) fn table(&self) -> String {
        let mut out = String::from("\nfigure                               value\n");
        let mut row = |name: &str, value: String| out.push_str(&format!("{name:<36} {value}\n"));
        row(
            "ingest events/s",
            format!("{:.0}", self.ingest_events_per_s),
        );
        row(
            "ingest MB/s (request bodies)",
            format!("{:.1}", self.ingest_mb_per_s),
        );
        row(
            "raw ceiling events/s",
            format!("{:.0}", self.ceiling_events_per_s),
        );
        row(
            "ratio to ceiling",
            format!(
                "{:.2}",
                self.ingest_events_per_s / self.ceiling_events_per_s.max(1.0)
            ),
        );
        row(
            "batch request p99 ms",
            format!("{:.2}", self.batch_latency.percentile(99.0)),
        );
        row(
            "single-event ingest p99 ms",
            format!("{:.2}", self.single_latency.percentile(99.0)),
        );
        let measured = self
            .queries
            .iter()
            .map(|(name, l)| (format!("query {name}"), l));
        let pages = self
            .pages
            .iter()
            .map(|(name, l)| (name.replacen('_', " ", 1), l));
        for (name, latencies) in measured.chain(pages) {
            row(
                &format!("{name} p50/p95/p99 ms"),
                format!(
                    "{:.2} / {:.2} / {:.2}",
                    latencies.percentile(50.0),
                    latencies.percentile(95.0),
                    latencies.percentile(99.0)
                ),
            );
        }
        row(
            "background ingest during queries/s",
            format!("{:.0}", self.background_events_per_s),
        );
        row(
            "server peak RSS MiB",
            self.peak_rss_mb
                .map_or("n/a".into(), |mb| format!("{mb:.0}")),
        );
        row(
            "database bytes per event",
            format!("{:.0}", self.bytes_per_event),
        );
        row(
            "reopen after SIGKILL ms",
            format!("{:.0}", self.reopen_after_kill_ms),
        );
        row("events stored", self.events_stored.to_string());
        row(
            "verify events/s",
            format!("{:.0}", self.verify_events_per_s),
        );
        row(
            "scrub MB/s clean / dirty (1 core)",
            format!(
                "{:.0} / {:.0}",
                self.scrub_clean_mb_per_s, self.scrub_dirty_mb_per_s
            ),
        );
        out
    }
}

/// What the figures were measured on.
fn machine() -> Value {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let memory_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map(|kib| round(kib / 1024.0 / 1024.0));
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        });
    json!({"cores": cores, "memory_gib": memory_gib, "cpu": cpu, "os": std::env::consts::OS})
}

#[cfg(test)]
mod tests {
    use super::Latencies;

    #[test]
    fn percentiles_use_nearest_rank() {
        let mut latencies = Latencies::default();
        latencies.extend((1..=100).map(f64::from).collect());
        let cases = [
            (50.0, 50.0),
            (95.0, 95.0),
            (99.0, 99.0),
            (100.0, 100.0),
            (0.0, 1.0),
        ];
        for (p, expected) in cases {
            assert_eq!(latencies.percentile(p), expected, "p{p}");
        }
        assert_eq!(Latencies::default().percentile(99.0), 0.0);
    }
}
