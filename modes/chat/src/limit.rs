//! A token bucket: how fast one connection may act in the room.

use std::time::Instant;

use crate::config::RateLimitConfig;

/// Holds up to `burst` tokens and gains `messages_per_minute` of them per minute; every
/// action takes one. Time is passed in, so tests need no clock.
#[derive(Debug, Clone)]
pub(crate) struct TokenBucket {
    capacity: f64,
    per_second: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub(crate) fn new(config: RateLimitConfig, now: Instant) -> Self {
        let capacity = f64::from(config.burst);
        Self {
            capacity,
            per_second: f64::from(config.messages_per_minute) / 60.0,
            tokens: capacity,
            last: now,
        }
    }

    /// Takes a token if there is one; `false` means the action must be refused.
    pub(crate) fn try_take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = self.last.max(now);
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.capacity);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn bucket(per_minute: u32, burst: u32, now: Instant) -> TokenBucket {
        TokenBucket::new(
            RateLimitConfig {
                messages_per_minute: per_minute,
                burst,
            },
            now,
        )
    }

    #[test]
    fn a_burst_passes_then_the_next_is_refused() {
        let now = Instant::now();
        let mut b = bucket(60, 3, now);
        assert!(b.try_take(now));
        assert!(b.try_take(now));
        assert!(b.try_take(now));
        assert!(!b.try_take(now));
    }

    #[test]
    fn tokens_come_back_at_the_configured_rate() {
        let start = Instant::now();
        let mut b = bucket(60, 1, start);
        assert!(b.try_take(start));
        assert!(!b.try_take(start + Duration::from_millis(900)));
        assert!(b.try_take(start + Duration::from_millis(1001)));
        assert!(!b.try_take(start + Duration::from_millis(1500)));
    }

    #[test]
    fn the_bucket_never_holds_more_than_the_burst() {
        let start = Instant::now();
        let mut b = bucket(60, 2, start);
        let later = start + Duration::from_secs(3600);
        assert!(b.try_take(later));
        assert!(b.try_take(later));
        assert!(!b.try_take(later));
    }

    #[test]
    fn a_clock_going_backwards_gives_nothing() {
        let start = Instant::now() + Duration::from_secs(10);
        let mut b = bucket(60, 1, start);
        assert!(b.try_take(start));
        assert!(!b.try_take(start - Duration::from_secs(5)));
    }
}
