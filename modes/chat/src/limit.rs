//! Token buckets: how fast one visitor may act in the room, and how fast the room takes in
//! newcomers.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Mutex, PoisonError};
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

    /// A full bucket of `burst` tokens gaining `per_minute` a minute.
    pub(crate) fn with(per_minute: u32, burst: u32, now: Instant) -> Self {
        Self::new(
            RateLimitConfig {
                messages_per_minute: per_minute,
                burst,
            },
            now,
        )
    }

    /// Takes a token if there is one; `false` means the action must be refused.
    pub(crate) fn try_take(&mut self, now: Instant) -> bool {
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Whether the bucket is full again, so that forgetting it loses nothing.
    fn is_full(&mut self, now: Instant) -> bool {
        self.refill(now);
        self.tokens >= self.capacity
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = self.last.max(now);
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.capacity);
    }
}

/// One bucket per key (per visitor), kept only while it is not full: a full bucket is the
/// same as a new one, so the map holds only the visitors who acted recently, and it is swept
/// of full buckets whenever it has doubled. Beyond `max_keys` recent visitors, newcomers are
/// refused until buckets refill; that bounds the memory a crowd of fresh circuits can take.
pub(crate) struct KeyedBuckets<K> {
    config: RateLimitConfig,
    max_keys: usize,
    state: Mutex<Keyed<K>>,
}

struct Keyed<K> {
    buckets: HashMap<K, TokenBucket>,
    /// The map's size at which full buckets are swept out next.
    next_sweep: usize,
}

/// The size below which the map is never swept: a sweep of a small map is not worth it.
const MIN_SWEEP: usize = 1024;

impl<K: Hash + Eq> KeyedBuckets<K> {
    /// Buckets of `config` for at most `max_keys` visitors at once.
    pub(crate) fn new(config: RateLimitConfig, max_keys: usize) -> Self {
        Self {
            config,
            max_keys,
            state: Mutex::new(Keyed {
                buckets: HashMap::new(),
                next_sweep: MIN_SWEEP.min(max_keys),
            }),
        }
    }

    /// Takes a token from `key`'s bucket; `false` means the action must be refused.
    pub(crate) fn try_take(&self, key: K, now: Instant) -> bool {
        // Every critical section leaves the map consistent, so a poisoned lock is usable.
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let Keyed {
            buckets,
            next_sweep,
        } = &mut *state;
        if !buckets.contains_key(&key) {
            if buckets.len() >= *next_sweep {
                buckets.retain(|_, bucket| !bucket.is_full(now));
                // Sweeping again only once the map has doubled keeps the cost of sweeps
                // linear in the number of requests; at the cap, every newcomer sweeps.
                *next_sweep = buckets
                    .len()
                    .saturating_mul(2)
                    .clamp(MIN_SWEEP, self.max_keys);
            }
            if buckets.len() >= self.max_keys {
                return false;
            }
        }
        buckets
            .entry(key)
            .or_insert_with(|| TokenBucket::new(self.config, now))
            .try_take(now)
    }

    /// How many visitors have a bucket now (for tests).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .buckets
            .len()
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

    /// Regression (issue 9, room-wide floods): the limit was per connection, so a client
    /// that reconnected got a fresh burst each time. Keyed by visitor, the bucket outlives
    /// the connection.
    #[test]
    fn a_visitors_bucket_outlives_its_connections() {
        let now = Instant::now();
        let buckets = KeyedBuckets::new(
            RateLimitConfig {
                messages_per_minute: 60,
                burst: 2,
            },
            100,
        );
        assert!(buckets.try_take("circuit-1", now));
        assert!(buckets.try_take("circuit-1", now));
        // A new connection of the same visitor finds the same empty bucket...
        assert!(!buckets.try_take("circuit-1", now));
        // ...while another visitor has a bucket of their own.
        assert!(buckets.try_take("circuit-2", now));
        assert!(buckets.try_take("circuit-1", now + Duration::from_secs(1)));
    }

    #[test]
    fn full_buckets_are_forgotten_and_the_map_is_bounded() {
        let start = Instant::now();
        let config = RateLimitConfig {
            messages_per_minute: 60,
            burst: 1,
        };
        let buckets = KeyedBuckets::new(config, MIN_SWEEP + 10);
        for key in 0..MIN_SWEEP + 10 {
            assert!(buckets.try_take(key, start));
        }
        // At the cap, with every bucket still empty, a newcomer is refused...
        assert!(!buckets.try_take(usize::MAX, start));
        assert_eq!(buckets.len(), MIN_SWEEP + 10);
        // ...and once they have refilled, the sweep forgets them and lets newcomers in.
        let later = start + Duration::from_secs(2);
        assert!(buckets.try_take(usize::MAX, later));
        assert_eq!(buckets.len(), 1);
    }

    #[test]
    fn a_clock_going_backwards_gives_nothing() {
        let start = Instant::now() + Duration::from_secs(10);
        let mut b = bucket(60, 1, start);
        assert!(b.try_take(start));
        assert!(!b.try_take(start - Duration::from_secs(5)));
    }
}
