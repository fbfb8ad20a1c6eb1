//! What a store reports about its write path.

use std::sync::atomic::AtomicU64;

use logvault_core::metrics::Histogram;

/// Write-path metrics, updated by the backend and rendered by `/metrics`.
#[derive(Debug)]
pub struct StoreMetrics {
    /// Events per committed transaction.
    pub batch_events: Histogram,
    /// Seconds from transaction start to durable commit.
    pub commit_seconds: Histogram,
    /// Events waiting for the writer.
    pub queue_events: AtomicU64,
}

impl Default for StoreMetrics {
    fn default() -> Self {
        StoreMetrics {
            batch_events: Histogram::new(&[1.0, 10.0, 100.0, 500.0, 1000.0, 5000.0, 20000.0]),
            commit_seconds: Histogram::new(&[
                0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
            ]),
            queue_events: AtomicU64::new(0),
        }
    }
}
