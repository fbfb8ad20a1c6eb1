//! The benchmark's result: one JSON object with every figure, and a readable table.
//!
//! The JSON object's keys: `settings`, `machine`, `ingest` (throughput, the raw ceiling and
//! ingest latencies), `queries`, `pages`, `query_background_ingest_events_per_s`, `server`,
//! `storage`, `events_stored`, `verify` and `scrub`. A latency figure is always
//! `{"p50_ms", "p95_ms", "p99_ms", "samples"}` in milliseconds. `queries` holds one latency
//! figure per API read kind (see [`super::queries`]) per role, always all three roles:
//!
//! ```json
//! "queries": {
//!   "by_id": {
//!     "admin":    {"p50_ms": 0.4, "p95_ms": 0.9, "p99_ms": 2.1, "samples": 1000},
//!     "partner":  {"p50_ms": 0.3, "p95_ms": 0.8, "p99_ms": 1.7, "samples": 1000},
//!     "merchant": {"p50_ms": 0.2, "p95_ms": 0.6, "p99_ms": 1.5, "samples": 1000}
//!   },
//!   "page_200": {
//!     "admin": {"p50_ms": 0.9, "p95_ms": 2.0, "p99_ms": 3.3, "samples": 1000, "page": 200},
//!     …
//!   },
//!   …
//! }
//! ```
//!
//! `samples` is `settings.queries` unless the role ran out of `settings.query_seconds` on
//! that kind first (never fewer than 10). `page_20` and `page_200` also give the `page`
//! really timed: lower than asked when the role's audit list has fewer pages. `pages` holds
//! one latency figure per Logs page.

use serde_json::{Map, Value, json};

/// Latency samples in milliseconds.
#[derive(Debug, Default, Clone)]
pub(crate) struct Latencies(Vec<f64>);

impl Latencies {
    pub(crate) fn push(&mut self, millis: f64) {
        self.0.push(millis);
    }

    /// The number of samples.
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    pub(crate) fn extend(&mut self, samples: Vec<f64>) {
        self.0.extend(samples);
    }

    /// Adds every sample of `other`.
    pub(crate) fn merge(&mut self, other: &Latencies) {
        self.0.extend_from_slice(&other.0);
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

    /// `{"p50_ms", "p95_ms", "p99_ms", "samples"}`.
    pub(crate) fn json(&self) -> Value {
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

/// One API read kind, measured as every role.
#[derive(Debug)]
pub(crate) struct QueryFigures {
    pub(crate) kind: &'static str,
    /// In the order of [`super::queries::ROLES`].
    pub(crate) roles: Vec<RoleFigure>,
}

/// One read kind as one role.
#[derive(Debug)]
pub(crate) struct RoleFigure {
    pub(crate) role: &'static str,
    /// For the cursor kinds, the page number timed.
    pub(crate) page: Option<usize>,
    pub(crate) latencies: Latencies,
}

impl QueryFigures {
    fn json(&self) -> Value {
        let mut roles = Map::new();
        for figure in &self.roles {
            let mut value = figure.latencies.json();
            if let (Some(page), Some(object)) = (figure.page, value.as_object_mut()) {
                object.insert("page".into(), page.into());
            }
            roles.insert(figure.role.into(), value);
        }
        Value::Object(roles)
    }
}

/// `p50 / p95 / p99` of `latencies`, for the table.
fn percentiles(latencies: &Latencies) -> String {
    format!(
        "{:.2} / {:.2} / {:.2}",
        latencies.percentile(50.0),
        latencies.percentile(95.0),
        latencies.percentile(99.0)
    )
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
    /// SQLite: events the text index had not reached when the batched ingest ended.
    pub(crate) search_lag_after_ingest: u64,
    /// SQLite: seconds from the end of the batched ingest until the text index caught up.
    pub(crate) search_caught_up_s: f64,
    /// API reads, by kind and role.
    pub(crate) queries: Vec<QueryFigures>,
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
    /// An empty report of a run with these settings.
    pub(crate) fn new(settings: Value) -> Self {
        Report {
            settings,
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
                "search_index_lag_after_ingest": self.search_lag_after_ingest,
                "search_index_caught_up_s": round(self.search_caught_up_s),
            },
            "queries": Value::Object(
                self.queries.iter().map(|figures| (figures.kind.into(), figures.json())).collect(),
            ),
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
        for (name, latencies) in &self.pages {
            row(
                &format!("{} p50/p95/p99 ms", name.replacen('_', " ", 1)),
                percentiles(latencies),
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
        out.push_str(&self.query_table());
        out
    }

    /// The API reads: one row per kind, one column per role.
    fn query_table(&self) -> String {
        let Some(first) = self.queries.first() else {
            return String::new();
        };
        // A role that stopped at its time budget took fewer samples than the others.
        let most_samples = self
            .queries
            .iter()
            .flat_map(|figures| figures.roles.iter().map(|figure| figure.latencies.len()))
            .max()
            .unwrap_or(0);
        let rows: Vec<(&str, Vec<String>)> = self
            .queries
            .iter()
            .map(|figures| {
                let cells = figures
                    .roles
                    .iter()
                    .map(|figure| {
                        let mut cell = percentiles(&figure.latencies);
                        // Only a shorter walk than the kind's name says is worth a note.
                        let shorter = figure
                            .page
                            .filter(|page| !figures.kind.ends_with(&format!("_{page}")));
                        if let Some(page) = shorter {
                            cell.push_str(&format!(" (page {page})"));
                        }
                        let samples = figure.latencies.len();
                        if samples < most_samples {
                            cell.push_str(&format!(" ({samples} samples)"));
                        }
                        cell
                    })
                    .collect();
                (figures.kind, cells)
            })
            .collect();
        let width = rows
            .iter()
            .flat_map(|(_, cells)| cells.iter().map(String::len))
            .max()
            .unwrap_or(0);
        let mut header = format!("{:<20}", "query p50/p95/p99 ms");
        for figure in &first.roles {
            header.push_str(&format!("  {:<width$}", figure.role));
        }
        let mut out = format!("\n{}\n", header.trim_end());
        for (kind, cells) in rows {
            let mut line = format!("{kind:<20}");
            for cell in cells {
                line.push_str(&format!("  {cell:<width$}"));
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// What the figures were measured on.
pub(super) fn machine() -> Value {
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
