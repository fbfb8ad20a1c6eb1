//! Per-key rate limits: a token bucket per API key, refilled continuously. A key over its
//! limit gets 429 with `Retry-After`; other keys are unaffected.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// Requests per second a key may make on average, and how many it may make at once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Sustained requests per second.
    pub per_second: f64,
    /// Largest burst.
    pub burst: f64,
}

impl Default for RateLimit {
    /// Generous enough for batch ingest from many clients on one key; a runaway loop of
    /// single-event requests is what it stops.
    fn default() -> Self {
        RateLimit {
            per_second: 10_000.0,
            burst: 20_000.0,
        }
    }
}

/// Buckets of every key seen recently.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    limit: Option<RateLimit>,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl RateLimiter {
    pub(crate) fn new(limit: Option<RateLimit>) -> Self {
        RateLimiter {
            limit,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one request from `key`'s bucket, or says how many seconds until one is free.
    pub(crate) fn take(&self, key: &str) -> Result<(), u64> {
        let Some(limit) = self.limit else {
            return Ok(());
        };
        let now = Instant::now();
        let Ok(mut buckets) = self.buckets.lock() else {
            return Ok(());
        };
        if buckets.len() > 100_000 {
            // Forget keys idle long enough to have refilled completely.
            let full = limit.burst / limit.per_second;
            buckets.retain(|_, (_, at)| now.duration_since(*at).as_secs_f64() < full);
        }
        let (tokens, at) = buckets.entry(key.to_string()).or_insert((limit.burst, now));
        *tokens =
            (*tokens + now.duration_since(*at).as_secs_f64() * limit.per_second).min(limit.burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - *tokens) / limit.per_second).ceil().max(1.0) as u64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_per_key_and_refill() {
        let limiter = RateLimiter::new(Some(RateLimit {
            per_second: 1.0,
            burst: 2.0,
        }));
        let taken: Vec<bool> = (0..3).map(|_| limiter.take("a").is_ok()).collect();
        assert_eq!(taken, [true, true, false], "a burst of two, then refused");
        assert_eq!(limiter.take("a"), Err(1), "retry after about a second");
        assert!(limiter.take("b").is_ok(), "another key has its own bucket");
        assert!(RateLimiter::new(None).take("a").is_ok());
    }
}
