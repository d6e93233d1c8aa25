//! The minimum transfer rate of an upload (`min_upload_rate`, `upload_rate_grace_seconds`).
//!
//! Without one, a visitor that sends a byte now and then, just inside
//! `upload_idle_timeout_seconds`, holds an upload slot for ever at no cost, and a few such
//! visitors hold every slot. The rule: an upload may fall behind `min_upload_rate` by at most
//! `upload_rate_grace_seconds`. It is kept as a deadline: the upload starts with the grace
//! period, every byte that arrives pushes the deadline back by `1 / min_upload_rate` seconds,
//! and the deadline is never more than the grace period ahead, so that bytes sent fast early
//! on cannot buy an hour of trickling later. Holding a slot therefore costs at least
//! `min_upload_rate` of bandwidth for as long as it is held, while a slow Tor circuit, far
//! above the default 4 KiB/s, may still pause for the grace period.

use std::time::Duration;

use tokio::time::Instant;

/// An upload's rate deadline.
#[derive(Debug, Clone)]
pub(super) struct Pace {
    /// The time one byte buys, in nanoseconds; `None` when there is no minimum rate.
    nanos_per_byte: Option<f64>,
    grace: Duration,
    deadline: Instant,
}

impl Pace {
    /// A pace of `min_rate` bytes a second (0: none) with `grace`, for an upload starting at
    /// `start`.
    pub(super) fn new(min_rate: u64, grace: Duration, start: Instant) -> Self {
        #[allow(clippy::cast_precision_loss)]
        let nanos_per_byte = (min_rate > 0).then(|| 1e9 / min_rate as f64);
        Self {
            nanos_per_byte,
            grace,
            deadline: start + grace,
        }
    }

    /// `bytes` more arrived at `now`.
    pub(super) fn record(&mut self, bytes: u64, now: Instant) {
        let Some(nanos_per_byte) = self.nanos_per_byte else {
            return;
        };
        #[allow(clippy::cast_precision_loss)]
        let bought = bytes as f64 * nanos_per_byte;
        let ceiling = now + self.grace;
        // Anything at or beyond the ceiling is the ceiling: no overflow for huge chunks.
        let left = ceiling.saturating_duration_since(self.deadline).as_nanos();
        #[allow(clippy::cast_precision_loss)]
        if bought >= left as f64 {
            self.deadline = ceiling;
        } else {
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let bought = Duration::from_nanos(bought as u64);
            self.deadline += bought;
        }
    }

    /// When the upload is too slow if nothing more arrives; `None` without a minimum rate.
    pub(super) fn deadline(&self) -> Option<Instant> {
        self.nanos_per_byte.map(|_| self.deadline)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn the_grace_period_comes_first_then_bytes_buy_time() {
        let start = Instant::now();
        let mut pace = Pace::new(1000, 10 * SECOND, start);
        assert_eq!(pace.deadline(), Some(start + 10 * SECOND));
        // 500 bytes buy half a second.
        pace.record(500, start + SECOND);
        assert_eq!(pace.deadline(), Some(start + 10 * SECOND + SECOND / 2));
    }

    #[test]
    fn a_trickle_below_the_rate_runs_out() {
        // One byte a second against 1000 B/s: the deadline barely moves.
        let start = Instant::now();
        let mut pace = Pace::new(1000, 5 * SECOND, start);
        let mut now = start;
        while pace.deadline().is_some_and(|deadline| deadline > now) {
            now += SECOND;
            pace.record(1, now);
            assert!(now <= start + 6 * SECOND, "the trickle was never cut");
        }
    }

    #[test]
    fn the_rate_itself_is_enough_for_ever() {
        let start = Instant::now();
        let mut pace = Pace::new(1000, 5 * SECOND, start);
        for second in 1..=3600 {
            let now = start + second * SECOND;
            pace.record(1000, now);
            assert!(pace.deadline().is_some_and(|deadline| deadline > now));
        }
    }

    #[test]
    fn a_fast_start_buys_at_most_the_grace_period() {
        let start = Instant::now();
        let mut pace = Pace::new(1000, 5 * SECOND, start);
        pace.record(u64::MAX, start + SECOND);
        assert_eq!(pace.deadline(), Some(start + 6 * SECOND));
        pace.record(1_000_000_000, start + 2 * SECOND);
        assert_eq!(pace.deadline(), Some(start + 7 * SECOND));
    }

    #[test]
    fn no_minimum_rate_has_no_deadline() {
        let mut pace = Pace::new(0, SECOND, Instant::now());
        pace.record(1, Instant::now());
        assert_eq!(pace.deadline(), None);
    }
}
