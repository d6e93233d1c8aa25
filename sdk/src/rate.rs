//! One rate limiter for every mode: a [`RateLimiter`] for a whole tab, a [`KeyedRateLimiter`]
//! per [`crate::Visitor`] (or any other key), both on `governor`'s GCRA.
//!
//! A [`Rate`] is "`n` a minute, in bursts of `b`": a limiter starts full (a burst passes at
//! once), then allows one more action every minute/`n`. A refused action learns how long to
//! wait ([`Limited::retry_after`]), for a `Retry-After` header or a message. Tests drive time
//! with a [`ManualClock`].

use std::hash::Hash;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use governor::clock::Reference as _;
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::keyed::DashMapStateStore;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, clock};

/// How fast: `per_minute` actions a minute, in bursts of up to `burst`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    per_minute: NonZeroU32,
    burst: NonZeroU32,
}

impl Rate {
    /// `per_minute` a minute (at least one), in bursts of as many.
    pub fn per_minute(per_minute: u32) -> Self {
        let per_minute = NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN);
        Self {
            per_minute,
            burst: per_minute,
        }
    }

    /// The same rate in bursts of `burst` (at least one).
    pub fn with_burst(self, burst: u32) -> Self {
        Self {
            burst: NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN),
            ..self
        }
    }

    fn quota(self) -> Quota {
        // One action every minute/per_minute, never faster than once a nanosecond.
        let period = Duration::from_secs(60) / self.per_minute.get();
        Quota::with_period(period.max(Duration::from_nanos(1)))
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MAX))
            .allow_burst(self.burst)
    }
}

/// An action refused by a limiter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many requests: try again in {} s", retry_after.as_secs().max(1))]
pub struct Limited {
    /// How long until the action would be allowed.
    pub retry_after: Duration,
}

/// The time a limiter sees: the real monotonic clock, or a [`ManualClock`] in tests.
#[derive(Debug, Clone)]
struct Clock {
    start: Instant,
    manual: Option<Arc<AtomicU64>>,
}

impl Clock {
    fn real() -> Self {
        Self {
            start: Instant::now(),
            manual: None,
        }
    }
}

impl clock::Clock for Clock {
    type Instant = Nanos;

    fn now(&self) -> Nanos {
        match &self.manual {
            Some(nanos) => Nanos::new(nanos.load(Ordering::SeqCst)),
            None => Nanos::from(self.start.elapsed()),
        }
    }
}

/// A clock for tests that moves only when told to. Cheap to clone; clones share the time.
#[derive(Debug, Clone, Default)]
pub struct ManualClock(Arc<AtomicU64>);

impl ManualClock {
    /// A clock at time zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        let nanos = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        self.0.fetch_add(nanos, Ordering::SeqCst);
    }

    fn clock(&self) -> Clock {
        Clock {
            start: Instant::now(),
            manual: Some(Arc::clone(&self.0)),
        }
    }
}

/// One limit for everything it is asked about (a tab-wide limit).
#[derive(Debug)]
pub struct RateLimiter {
    inner: governor::RateLimiter<NotKeyed, InMemoryState, Clock, NoOpMiddleware<Nanos>>,
    clock: Clock,
}

impl RateLimiter {
    /// A limiter at `rate`, full.
    pub fn new(rate: Rate) -> Self {
        Self::with(rate, Clock::real())
    }

    /// A limiter at `rate` on a test's clock.
    pub fn with_clock(rate: Rate, clock: &ManualClock) -> Self {
        Self::with(rate, clock.clock())
    }

    fn with(rate: Rate, clock: Clock) -> Self {
        Self {
            inner: governor::RateLimiter::direct_with_clock(rate.quota(), clock.clone()),
            clock,
        }
    }

    /// Takes one action, or says how long until one is allowed.
    pub fn check(&self) -> Result<(), Limited> {
        self.inner.check().map_err(|not_until| Limited {
            retry_after: not_until.wait_time_from(clock::Clock::now(&self.clock)),
        })
    }
}

/// One limit per key (per [`crate::Visitor`]), with a bounded number of keys.
///
/// Keys whose limit is back to full are forgotten when the map is full; if it is still full
/// of keys that acted recently, new actions are refused (fail closed) rather than the map
/// growing without bound.
#[derive(Debug)]
pub struct KeyedRateLimiter<K: Hash + Eq + Clone> {
    inner: governor::RateLimiter<K, DashMapStateStore<K>, Clock, NoOpMiddleware<Nanos>>,
    clock: Clock,
    max_keys: usize,
    /// When the map was last purged: at most once a second, so that a full map does not cost
    /// a walk over every key on every action.
    purged: Mutex<Option<Nanos>>,
}

impl<K: Hash + Eq + Clone> KeyedRateLimiter<K> {
    /// A limiter at `rate` for each key, remembering at most `max_keys` keys.
    pub fn new(rate: Rate, max_keys: usize) -> Self {
        Self::with(rate, max_keys, Clock::real())
    }

    /// The same on a test's clock.
    pub fn with_clock(rate: Rate, max_keys: usize, clock: &ManualClock) -> Self {
        Self::with(rate, max_keys, clock.clock())
    }

    fn with(rate: Rate, max_keys: usize, clock: Clock) -> Self {
        Self {
            inner: governor::RateLimiter::dashmap_with_clock(rate.quota(), clock.clone()),
            clock,
            max_keys: max_keys.max(1),
            purged: Mutex::new(None),
        }
    }

    /// Takes one action of `key`, or says how long until one is allowed.
    pub fn check(&self, key: &K) -> Result<(), Limited> {
        let now = clock::Clock::now(&self.clock);
        if self.inner.len() >= self.max_keys {
            let mut purged = self
                .purged
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let due = purged.is_none_or(|last| now.duration_since(last) >= Nanos::from(SECOND));
            if due {
                self.inner.retain_recent();
                *purged = Some(now);
            }
            if self.inner.len() >= self.max_keys {
                return Err(Limited {
                    retry_after: SECOND,
                });
            }
        }
        self.inner.check_key(key).map_err(|not_until| Limited {
            retry_after: not_until.wait_time_from(now),
        })
    }

    /// How many keys are remembered.
    pub fn len(&self) -> usize {
        self.inner.len()
    }

    /// Whether no key is remembered.
    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }
}

const SECOND: Duration = Duration::from_secs(1);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_passes_then_the_sustained_rate() {
        let clock = ManualClock::new();
        let limit = RateLimiter::with_clock(Rate::per_minute(3), &clock);
        for _ in 0..3 {
            assert!(limit.check().is_ok());
        }
        let refused = limit.check().expect_err("the burst is spent");
        assert_eq!(refused.retry_after, Duration::from_secs(20));
        clock.advance(Duration::from_secs(19));
        assert!(limit.check().is_err());
        clock.advance(Duration::from_secs(1));
        assert!(limit.check().is_ok());
        assert!(limit.check().is_err());
        // Nothing piles up beyond a burst.
        clock.advance(Duration::from_secs(3600));
        for _ in 0..3 {
            assert!(limit.check().is_ok());
        }
        assert!(limit.check().is_err());
    }

    #[test]
    fn the_burst_can_differ_from_the_rate() {
        let clock = ManualClock::new();
        let limit = RateLimiter::with_clock(Rate::per_minute(60).with_burst(2), &clock);
        assert!(limit.check().is_ok());
        assert!(limit.check().is_ok());
        assert!(limit.check().is_err());
        clock.advance(Duration::from_millis(1000));
        assert!(limit.check().is_ok());
        assert!(limit.check().is_err());
    }

    #[test]
    fn keys_have_their_own_limits() {
        let clock = ManualClock::new();
        let limit = KeyedRateLimiter::with_clock(Rate::per_minute(60).with_burst(1), 100, &clock);
        let (a, b) = (crate::Visitor::unique(), crate::Visitor::unique());
        assert!(limit.check(&a).is_ok());
        assert!(limit.check(&a).is_err());
        assert!(limit.check(&b).is_ok());
        clock.advance(Duration::from_secs(1));
        assert!(limit.check(&a).is_ok());
    }

    #[test]
    fn the_number_of_keys_is_bounded() {
        let clock = ManualClock::new();
        let limit = KeyedRateLimiter::with_clock(Rate::per_minute(60).with_burst(1), 4, &clock);
        for key in 0..4u32 {
            assert!(limit.check(&key).is_ok());
        }
        // Full of keys that acted just now: a fifth is refused, the map does not grow.
        assert!(limit.check(&4).is_err());
        assert_eq!(limit.len(), 4);
        // Once their limits are full again, they are forgotten and room is made.
        clock.advance(Duration::from_secs(2));
        assert!(limit.check(&4).is_ok());
        assert!(limit.len() <= 4);
    }

    #[test]
    fn zero_is_read_as_one() {
        let clock = ManualClock::new();
        let limit = RateLimiter::with_clock(Rate::per_minute(0).with_burst(0), &clock);
        assert!(limit.check().is_ok());
        assert!(limit.check().is_err());
    }
}
