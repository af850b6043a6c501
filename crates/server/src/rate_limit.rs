//! The optional per-app rate limit of the SIEM API: a token bucket per
//! client id, refilled at the configured rate and as deep as one second of
//! it, so a connector may burst briefly but not sustain more.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Client ids remembered at most; past this, full buckets are forgotten
/// (a full bucket is what a new one would be).
const MAX_TRACKED: usize = 10_000;

#[derive(Debug)]
pub struct RateLimit {
    per_second: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    refilled: Instant,
}

impl RateLimit {
    /// A limit of `per_second` requests a second for each app; it must be positive.
    pub fn new(per_second: f64) -> RateLimit {
        RateLimit { per_second, buckets: Mutex::default() }
    }

    /// Takes one request from `client`'s bucket, or says how long until one
    /// is there.
    pub fn take(&self, client: &str, now: Instant) -> Result<(), Duration> {
        let depth = self.per_second.max(1.0);
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        if buckets.len() >= MAX_TRACKED && !buckets.contains_key(client) {
            let rate = self.per_second;
            buckets.retain(|_, b| b.level(now, rate, depth) < depth);
        }
        let bucket =
            buckets.entry(client.to_owned()).or_insert(Bucket { tokens: depth, refilled: now });
        bucket.tokens = bucket.level(now, self.per_second, depth);
        bucket.refilled = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Ok(());
        }
        Err(Duration::from_secs_f64((1.0 - bucket.tokens) / self.per_second))
    }
}

impl Bucket {
    fn level(&self, now: Instant, rate: f64, depth: f64) -> f64 {
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        (self.tokens + elapsed * rate).min(depth)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_of_one_seconds_worth_then_the_rate() {
        let limit = RateLimit::new(5.0);
        let t = Instant::now();
        for _ in 0..5 {
            assert!(limit.take("a", t).is_ok());
        }
        let wait = limit.take("a", t).unwrap_err();
        assert!(
            wait > Duration::from_millis(150) && wait <= Duration::from_millis(200),
            "{wait:?}"
        );
        assert!(limit.take("b", t).is_ok(), "each app has its own bucket");
        assert!(limit.take("a", t + Duration::from_millis(200)).is_ok());
        assert!(limit.take("a", t + Duration::from_millis(200)).is_err());
    }

    #[test]
    fn slow_rates_still_allow_one_request() {
        let limit = RateLimit::new(0.5);
        let t = Instant::now();
        assert!(limit.take("a", t).is_ok());
        assert_eq!(limit.take("a", t).unwrap_err(), Duration::from_secs(2));
    }
}
