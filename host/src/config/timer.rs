//! A tab's timers, `auto_start` and `auto_stop`: when it starts serving, and when it stops.
//!
//! Both are read as a local time (`"2026-12-24 18:00"`, seconds optional) or a delay
//! (`"90s"`, `"1h 30m"`: humantime's syntax). A start delay counts from when the host reads
//! the config; a stop delay from when the tab starts serving. They are turned into absolute
//! times here, once, so that "in the past" and "stop before start" are checked when the
//! config is read, not discovered later.

use std::time::{Duration, SystemTime};

use chrono::{DateTime, Local, NaiveDateTime, TimeZone as _};

/// The longest delay or the furthest time a timer may be set to: a year.
const MAX_DELAY: Duration = Duration::from_secs(366 * 24 * 3600);

/// How a timer value may be written, for error messages.
pub(crate) const FORMAT: &str =
    "a local time such as \"2026-12-24 18:00\" or a delay such as \"90s\", \"20m\" or \"1h 30m\"";

/// When a tab serves.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct TabTimers {
    /// When the tab starts serving; `None`: at once. Before then its address is printed,
    /// but nothing is listening (no onion service is published).
    pub(crate) start: Option<SystemTime>,
    /// When it stops.
    pub(crate) stop: Option<StopAt>,
}

/// When a tab stops on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StopAt {
    /// This long after it starts serving.
    After(Duration),
    /// At this time.
    At(SystemTime),
}

impl TabTimers {
    /// Timers from the command line's `--auto-start-timer SECONDS` and `--auto-stop-timer
    /// SECONDS`.
    pub(crate) fn from_seconds(
        start: Option<u64>,
        stop: Option<u64>,
    ) -> Result<Self, &'static str> {
        let delay = |seconds: u64| {
            let delay = Duration::from_secs(seconds);
            if delay.is_zero() || delay > MAX_DELAY {
                Err("must be 1 second to a year")
            } else {
                Ok(delay)
            }
        };
        Ok(Self {
            start: start
                .map(delay)
                .transpose()?
                .map(|delay| SystemTime::now() + delay),
            stop: stop.map(delay).transpose()?.map(StopAt::After),
        })
    }

    /// How long after it starts serving the tab stops, if it does.
    pub(crate) fn stop_after_start(&self) -> Option<Duration> {
        match self.stop? {
            StopAt::After(delay) => Some(delay),
            StopAt::At(at) => Some(at.duration_since(SystemTime::now()).unwrap_or_default()),
        }
    }
}

/// A timer value as written: a local time or a delay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum When {
    /// At this time.
    At(SystemTime),
    /// After this long.
    After(Duration),
}

/// Reads a timer value; the error says what is wrong and how to write it. `now` is when the
/// config is read: a time must be after it.
pub(crate) fn parse(written: &str, now: SystemTime) -> Result<When, String> {
    let written = written.trim();
    if let Some(at) = local_time(written)? {
        let Ok(ahead) = at.duration_since(now) else {
            return Err(format!(
                "{written:?} is in the past (it is {} now): give a later time, or a delay such as \"90s\"",
                show(now)
            ));
        };
        if ahead > MAX_DELAY {
            return Err(format!("{written:?} is more than a year away"));
        }
        return Ok(When::At(at));
    }
    match humantime::parse_duration(written) {
        Ok(delay) if delay.is_zero() => Err("a delay of 0: leave the key out instead".to_owned()),
        Ok(delay) if delay > MAX_DELAY => Err(format!("{written:?} is more than a year")),
        Ok(delay) => Ok(When::After(delay)),
        Err(_) => Err(format!(
            "{written:?} is neither a time nor a delay: write {FORMAT}"
        )),
    }
}

/// `YYYY-MM-DD HH:MM[:SS]` in the host's local time zone; `None` if it is not written so.
fn local_time(written: &str) -> Result<Option<SystemTime>, String> {
    let naive = ["%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M"]
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(written, format).ok());
    let Some(naive) = naive else {
        return Ok(None);
    };
    // A time skipped by a daylight saving change does not exist; one repeated by it is taken
    // at its first occurrence.
    match Local.from_local_datetime(&naive).earliest() {
        Some(at) => Ok(Some(at.into())),
        None => Err(format!(
            "{written:?} does not exist in the local time zone (a daylight saving change skips it)"
        )),
    }
}

/// When a tab stops, as `onionhost check` says it.
pub(crate) fn show_stop(stop: StopAt) -> String {
    match stop {
        StopAt::After(delay) => format!(
            "{} after it starts serving",
            humantime::format_duration(delay)
        ),
        StopAt::At(at) => format!("at {}", show(at)),
    }
}

/// A time as the console shows it: local, to the second.
pub(crate) fn show(at: SystemTime) -> String {
    DateTime::<Local>::from(at)
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_and_local_times_are_read() {
        let now = SystemTime::now();
        assert_eq!(parse("90s", now), Ok(When::After(Duration::from_secs(90))));
        assert_eq!(
            parse(" 1h 30m ", now),
            Ok(When::After(Duration::from_secs(5400)))
        );
        let soon = DateTime::<Local>::from(now + Duration::from_secs(3 * 3600));
        let written = soon.format("%Y-%m-%d %H:%M").to_string();
        let Ok(When::At(at)) = parse(&written, now) else {
            panic!("{written} is a time");
        };
        let ahead = at.duration_since(now).expect("ahead");
        // Minutes only: up to a minute earlier than `soon`.
        assert!(
            ahead > Duration::from_secs(3 * 3600 - 61) && ahead <= Duration::from_secs(3 * 3600)
        );
        let with_seconds = soon.format("%Y-%m-%d %H:%M:%S").to_string();
        assert!(matches!(parse(&with_seconds, now), Ok(When::At(_))));
    }

    #[test]
    fn a_time_in_the_past_zero_and_nonsense_are_refused() {
        let now = SystemTime::now();
        let err = parse("2020-01-01 10:00", now).expect_err("refused");
        assert!(err.contains("in the past"), "{err}");
        assert!(parse("0s", now).expect_err("refused").contains("0"));
        let err = parse("tomorrow-ish", now).expect_err("refused");
        assert!(err.contains("neither a time nor a delay"), "{err}");
        assert!(
            parse("400 days", now)
                .expect_err("refused")
                .contains("more than a year")
        );
    }

    #[test]
    fn command_line_seconds_become_timers() {
        let timers = TabTimers::from_seconds(Some(60), Some(30)).expect("timers");
        let start = timers.start.expect("start");
        assert!(start > SystemTime::now() + Duration::from_secs(50));
        assert_eq!(timers.stop, Some(StopAt::After(Duration::from_secs(30))));
        assert_eq!(timers.stop_after_start(), Some(Duration::from_secs(30)));
        assert!(TabTimers::from_seconds(Some(0), None).is_err());
        assert_eq!(
            TabTimers::from_seconds(None, None),
            Ok(TabTimers::default())
        );
    }
}
