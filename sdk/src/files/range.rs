//! `Range` and `If-Range` (RFC 9110 §14): which bytes of a file (or of share's zip) to send.
//!
//! One range is served as `206 Partial Content`. A request for several ranges is answered
//! with the whole content (`200`), which the RFC allows (a server may ignore `Range`) and
//! which spares multipart bodies nobody resuming a download asks for. A `Range` that cannot
//! be parsed, or with a unit other than `bytes`, is ignored the same way. A single range that
//! starts at or beyond the end gets `416` with `Content-Range: bytes */LENGTH`. `If-Range`
//! honours the range only when it carries our current strong ETag; a date or a weak or stale
//! ETag gets the whole content, so a visitor never splices bytes of two versions.

use http::{HeaderMap, header};

/// What to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Everything, `200`.
    Full,
    /// Bytes `start..end` (end exclusive), `206`.
    Partial {
        /// First byte.
        start: u64,
        /// One past the last byte.
        end: u64,
    },
    /// `416`.
    Unsatisfiable,
}

/// Decides what to send of a representation of `len` bytes whose strong ETag is `etag`.
pub fn decide(headers: &HeaderMap, len: u64, etag: &str) -> Decision {
    let mut ranges = headers.get_all(header::RANGE).iter();
    let (Some(range), None) = (ranges.next(), ranges.next()) else {
        return Decision::Full;
    };
    let mut if_range = headers.get_all(header::IF_RANGE).iter();
    match (if_range.next(), if_range.next()) {
        (None, _) => {}
        (Some(value), None) if value.as_bytes().trim_ascii() == etag.as_bytes() => {}
        _ => return Decision::Full,
    }
    let Ok(range) = range.to_str() else {
        return Decision::Full;
    };
    parse(range, len)
}

fn parse(range: &str, len: u64) -> Decision {
    let Some((unit, set)) = range.split_once('=') else {
        return Decision::Full;
    };
    if !unit.trim().eq_ignore_ascii_case("bytes") || len == 0 {
        return Decision::Full;
    }
    let mut specs = set.split(',').map(str::trim).filter(|s| !s.is_empty());
    let (Some(spec), None) = (specs.next(), specs.next()) else {
        return Decision::Full;
    };
    let Some((first, last)) = spec.split_once('-') else {
        return Decision::Full;
    };
    let number = |s: &str| -> Option<u64> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        // More digits than a u64 holds is still a valid, huge number.
        Some(s.parse().unwrap_or(u64::MAX))
    };
    match (first.trim(), last.trim()) {
        ("", suffix) => match number(suffix) {
            None => Decision::Full,
            Some(0) => Decision::Unsatisfiable,
            Some(n) => Decision::Partial {
                start: len - n.min(len),
                end: len,
            },
        },
        (first, "") => match number(first) {
            None => Decision::Full,
            Some(start) if start >= len => Decision::Unsatisfiable,
            Some(start) => Decision::Partial { start, end: len },
        },
        (first, last) => match (number(first), number(last)) {
            (Some(start), Some(last)) if start <= last => {
                if start >= len {
                    Decision::Unsatisfiable
                } else {
                    Decision::Partial {
                        start,
                        end: last.saturating_add(1).min(len),
                    }
                }
            }
            _ => Decision::Full,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use proptest::prelude::*;

    const ETAG: &str = "\"abc\"";

    fn with(range: &str, if_range: Option<&str>) -> Decision {
        let mut headers = HeaderMap::new();
        headers.insert(header::RANGE, HeaderValue::from_str(range).expect("value"));
        if let Some(v) = if_range {
            headers.insert(header::IF_RANGE, HeaderValue::from_str(v).expect("value"));
        }
        decide(&headers, 100, ETAG)
    }

    fn partial(start: u64, end: u64) -> Decision {
        Decision::Partial { start, end }
    }

    #[test]
    fn single_ranges() {
        assert_eq!(with("bytes=0-9", None), partial(0, 10));
        assert_eq!(with("bytes=10-", None), partial(10, 100));
        assert_eq!(with("bytes=-10", None), partial(90, 100));
        assert_eq!(with("bytes=-1000", None), partial(0, 100));
        assert_eq!(with("bytes=90-1000", None), partial(90, 100));
        assert_eq!(with("BYTES = 99-99", None), partial(99, 100));
        assert_eq!(
            with("bytes=5-99999999999999999999999", None),
            partial(5, 100)
        );
    }

    #[test]
    fn unsatisfiable_ranges() {
        assert_eq!(with("bytes=100-", None), Decision::Unsatisfiable);
        assert_eq!(with("bytes=100-200", None), Decision::Unsatisfiable);
        assert_eq!(with("bytes=-0", None), Decision::Unsatisfiable);
    }

    #[test]
    fn ignored_ranges_give_everything() {
        for range in [
            "bytes=0-1,5-6",
            "bytes=9-1",
            "bytes=a-b",
            "items=0-1",
            "bytes",
            "bytes=",
            "bytes=--1",
            "bytes=+1-2",
        ] {
            assert_eq!(with(range, None), Decision::Full, "{range}");
        }
        assert_eq!(decide(&HeaderMap::new(), 100, ETAG), Decision::Full);
    }

    #[test]
    fn if_range_needs_our_strong_etag() {
        assert_eq!(with("bytes=0-9", Some(ETAG)), partial(0, 10));
        assert_eq!(with("bytes=0-9", Some("\"old\"")), Decision::Full);
        assert_eq!(with("bytes=0-9", Some("W/\"abc\"")), Decision::Full);
        assert_eq!(
            with("bytes=0-9", Some("Fri, 27 Nov 2026 10:00:00 GMT")),
            Decision::Full
        );
    }

    /// The invariant every caller relies on: a piece is never empty and never reaches past
    /// the end of the content.
    fn within(decision: Decision, len: u64) -> bool {
        match decision {
            Decision::Partial { start, end } => start < end && end <= len,
            Decision::Full | Decision::Unsatisfiable => true,
        }
    }

    proptest! {
        /// Any text at all: no panic, and the range stays inside the content.
        #[test]
        fn any_range_text_stays_inside(range in "\\PC{0,40}", len in any::<u64>()) {
            prop_assert!(within(parse(&range, len), len));
        }

        /// Ranges that look like ranges (digits, dashes, commas, spaces, huge numbers).
        #[test]
        fn range_like_text_stays_inside(
            range in "(bytes|BYTES|items)? ?=? ?[0-9]{0,25} ?-? ?[0-9]{0,25}(,[0-9]{0,3}-[0-9]{0,3})?",
            len in prop_oneof![0u64..1000, any::<u64>()],
        ) {
            prop_assert!(within(parse(&range, len), len));
        }

        /// `bytes=a-b` inside the content gives exactly those bytes.
        #[test]
        fn a_range_inside_gives_exactly_it(len in 1u64..1_000_000, a in any::<u64>(), n in any::<u64>()) {
            let start = a % len;
            let last = start + n % (len - start);
            prop_assert_eq!(
                parse(&format!("bytes={start}-{last}"), len),
                Decision::Partial { start, end: last + 1 }
            );
        }

        /// Whole headers, `If-Range` included, with any bytes a header value may hold.
        #[test]
        fn any_headers_stay_inside(
            range in proptest::collection::vec(any::<u8>(), 0..60),
            if_range in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..20)),
            len in any::<u64>(),
        ) {
            let mut headers = HeaderMap::new();
            if let Ok(value) = HeaderValue::from_bytes(&range) {
                headers.insert(header::RANGE, value);
            }
            if let Some(Ok(value)) = if_range.map(|v| HeaderValue::from_bytes(&v)) {
                headers.insert(header::IF_RANGE, value);
            }
            prop_assert!(within(decide(&headers, len, ETAG), len));
        }
    }
}
