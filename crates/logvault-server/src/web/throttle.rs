//! Increasing delay after repeated failed sign-ins, per username and per client address,
//! kept in memory: the first few failures cost nothing (people mistype), then each further
//! failure doubles the wait, capped so a real person is never locked out for long.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures that carry no delay.
const FREE_FAILURES: u32 = 3;
/// The longest wait after a failure.
const MAX_DELAY: Duration = Duration::from_secs(30);
/// A key with no failure for this long is forgotten.
const FORGET_AFTER: Duration = Duration::from_secs(15 * 60);
/// Keys kept at most; beyond this the oldest quiet ones are dropped first.
const MAX_KEYS: usize = 100_000;

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
    locked_until: Instant,
}

/// Failure counts by key (`user:NAME`, `ip:ADDR`).
#[derive(Debug, Default)]
pub(crate) struct LoginThrottle {
    keys: Mutex<HashMap<String, Failures>>,
}

/// The wait after the `count`-th failure in a row.
pub(crate) fn delay_after(count: u32) -> Duration {
    if count <= FREE_FAILURES {
        return Duration::ZERO;
    }
    let doublings = (count - FREE_FAILURES - 1).min(16);
    Duration::from_secs(1u64 << doublings).min(MAX_DELAY)
}

impl LoginThrottle {
    /// How long the caller must still wait before another attempt with any of `keys`;
    /// `None` when it may try now.
    pub(crate) fn wait(&self, keys: &[String], now: Instant) -> Option<Duration> {
        let map = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        keys.iter()
            .filter_map(|key| map.get(key))
            .filter(|failures| failures.locked_until > now)
            .map(|failures| failures.locked_until - now)
            .max()
    }

    /// Counts a failure against every key.
    pub(crate) fn fail(&self, keys: &[String], now: Instant) {
        let mut map = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_KEYS {
            map.retain(|_, failures| now.duration_since(failures.last) < FORGET_AFTER);
        }
        if map.len() >= MAX_KEYS {
            // Still full: an address sweep. Forget everything rather than grow without bound.
            map.clear();
        }
        for key in keys {
            let entry = map.entry(key.clone()).or_insert(Failures {
                count: 0,
                last: now,
                locked_until: now,
            });
            if now.duration_since(entry.last) >= FORGET_AFTER {
                entry.count = 0;
            }
            entry.count = entry.count.saturating_add(1);
            entry.last = now;
            entry.locked_until = now + delay_after(entry.count);
        }
    }

    /// Forgets the failures of `key` (after a successful sign-in).
    pub(crate) fn clear(&self, key: &str) {
        self.keys
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_and_cap() {
        let cases = [
            (1, 0),
            (3, 0),
            (4, 1),
            (5, 2),
            (6, 4),
            (8, 16),
            (9, 30),
            (50, 30),
        ];
        for (count, seconds) in cases {
            assert_eq!(delay_after(count), Duration::from_secs(seconds), "{count}");
        }
    }

    #[test]
    fn waits_follow_failures_and_clear() {
        let throttle = LoginThrottle::default();
        let keys = ["user:a".to_string(), "ip:1".to_string()];
        let now = Instant::now();
        for _ in 0..3 {
            throttle.fail(&keys, now);
            assert_eq!(throttle.wait(&keys, now), None);
        }
        throttle.fail(&keys, now);
        assert_eq!(throttle.wait(&keys, now), Some(Duration::from_secs(1)));
        assert_eq!(throttle.wait(&keys, now + Duration::from_secs(2)), None);
        throttle.clear("user:a");
        assert_eq!(
            throttle.wait(&["ip:1".to_string()], now),
            Some(Duration::from_secs(1))
        );
        assert_eq!(throttle.wait(&["user:a".to_string()], now), None);
    }
}
