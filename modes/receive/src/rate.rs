//! A token bucket for the uploads a tab accepts per minute.
//!
//! Visitors of an onion service have no address to tell them apart, so the bucket is per
//! tab: it stops one visitor from filling the folder with thousands of tiny uploads.

use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug)]
pub(crate) struct RateLimit {
    per_minute: u32,
    state: Mutex<Bucket>,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl RateLimit {
    /// `per_minute` uploads a minute, in bursts of as many.
    pub(crate) fn new(per_minute: u32) -> Self {
        Self {
            per_minute,
            state: Mutex::new(Bucket {
                tokens: f64::from(per_minute),
                updated: Instant::now(),
            }),
        }
    }

    /// Takes a token at `now`, or returns how long until one is there.
    pub(crate) fn try_take(&self, now: Instant) -> Result<(), Duration> {
        let mut bucket = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let capacity = f64::from(self.per_minute);
        let per_second = capacity / 60.0;
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * per_second).min(capacity);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / per_second))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_sustained_rate() {
        let limit = RateLimit::new(3);
        let start = Instant::now();
        for _ in 0..3 {
            assert!(limit.try_take(start).is_ok());
        }
        let wait = limit.try_take(start).expect_err("the bucket is empty");
        assert!(
            wait > Duration::from_secs(19) && wait <= Duration::from_secs(20),
            "{wait:?}"
        );
        assert!(limit.try_take(start + Duration::from_secs(19)).is_err());
        assert!(limit.try_take(start + Duration::from_secs(20)).is_ok());
        assert!(limit.try_take(start + Duration::from_secs(21)).is_err());
        // Tokens do not pile up beyond a burst.
        let later = start + Duration::from_secs(3600);
        for _ in 0..3 {
            assert!(limit.try_take(later).is_ok());
        }
        assert!(limit.try_take(later).is_err());
    }
}
