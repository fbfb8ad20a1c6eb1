//! Counters kept by the HTTP layer.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use logvault_core::EventKind;

/// Events accepted and requests rejected, for `/metrics`.
#[derive(Debug, Default)]
pub struct HttpMetrics {
    audit_ingested: AtomicU64,
    threat_ingested: AtomicU64,
    rejected: Mutex<BTreeMap<&'static str, u64>>,
}

impl HttpMetrics {
    /// Counts newly stored events of `kind`.
    pub fn ingested(&self, kind: EventKind, n_events: usize) {
        let counter = match kind {
            EventKind::Audit => &self.audit_ingested,
            EventKind::Threat => &self.threat_ingested,
        };
        counter.fetch_add(n_events as u64, Ordering::Relaxed);
    }

    /// Counts a request answered with the problem `slug`.
    pub fn reject(&self, slug: &'static str) {
        if let Ok(mut rejected) = self.rejected.lock() {
            *rejected.entry(slug).or_default() += 1;
        }
    }

    /// Appends the counters in Prometheus text format.
    pub fn render(&self, out: &mut String) {
        use std::fmt::Write;
        let _ = writeln!(
            out,
            "# HELP logvault_events_ingested_total Events newly stored, by kind.\n\
             # TYPE logvault_events_ingested_total counter\n\
             logvault_events_ingested_total{{kind=\"audit\"}} {}\n\
             logvault_events_ingested_total{{kind=\"threat\"}} {}",
            self.audit_ingested.load(Ordering::Relaxed),
            self.threat_ingested.load(Ordering::Relaxed),
        );
        let _ = writeln!(
            out,
            "# HELP logvault_requests_rejected_total Requests answered with a problem, by type.\n\
             # TYPE logvault_requests_rejected_total counter"
        );
        if let Ok(rejected) = self.rejected.lock() {
            for (slug, count) in rejected.iter() {
                let _ = writeln!(
                    out,
                    "logvault_requests_rejected_total{{reason=\"{slug}\"}} {count}"
                );
            }
        }
    }
}
