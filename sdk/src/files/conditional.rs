//! `If-Match` and `If-None-Match` (RFC 9110 §13.1.1, §13.1.2), evaluated in the order of
//! §13.2.2 before `Range` and `If-Range` (`range.rs`) are looked at.
//!
//! - `If-Match`: `*` or a list of entity tags compared strongly (a weak tag never matches).
//!   No match: `412 Precondition Failed`, whatever `Range` says. A download manager resuming
//!   with `If-Match` then learns that the file changed instead of splicing two versions.
//! - `If-None-Match` (only when `If-Match` passed or is absent): `*` or a list compared
//!   weakly (`W/"x"` matches `"x"`). A match: `304 Not Modified`, for `GET` and `HEAD` (the
//!   only methods served), again before any `Range`.
//!
//! A field that is not a valid list fails closed for `If-Match` (the client asked for a
//! guarantee we cannot check: 412) and is ignored for `If-None-Match` (the content is sent).
//! `If-Unmodified-Since` and `If-Modified-Since` are ignored, as the RFC requires of a
//! server that sends no `Last-Modified` (a modification date would tell visitors when the
//! host's user last touched each file).

use http::{HeaderMap, HeaderName, header};

/// What the preconditions say about a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precondition {
    /// Go on (to `Range`, then the content).
    Proceed,
    /// `304 Not Modified`.
    NotModified,
    /// `412 Precondition Failed`.
    Failed,
}

/// Evaluates `If-Match` and `If-None-Match` for a representation whose strong ETag (quotes
/// included) is `etag`.
pub fn evaluate(headers: &HeaderMap, etag: &str) -> Precondition {
    if let Some(list) = field(headers, header::IF_MATCH) {
        let matched = match parse(&list) {
            Some(Tags::Any) => true,
            Some(Tags::List(tags)) => tags.iter().any(|t| !t.weak && t.opaque == etag.as_bytes()),
            None => false,
        };
        if !matched {
            return Precondition::Failed;
        }
    }
    if let Some(list) = field(headers, header::IF_NONE_MATCH) {
        let matched = match parse(&list) {
            Some(Tags::Any) => true,
            Some(Tags::List(tags)) => tags.iter().any(|t| t.opaque == etag.as_bytes()),
            None => false,
        };
        if matched {
            return Precondition::NotModified;
        }
    }
    Precondition::Proceed
}

/// All the lines of a field joined as one list (RFC 9110 §5.3), or `None` when absent.
fn field(headers: &HeaderMap, name: HeaderName) -> Option<Vec<u8>> {
    let mut lines = headers.get_all(name).iter();
    let mut joined = lines.next()?.as_bytes().to_vec();
    for line in lines {
        joined.push(b',');
        joined.extend_from_slice(line.as_bytes());
    }
    Some(joined)
}

/// A parsed `If-Match` / `If-None-Match` value.
#[derive(Debug, PartialEq, Eq)]
enum Tags<'a> {
    /// `*`.
    Any,
    /// Entity tags, in order.
    List(Vec<Tag<'a>>),
}

/// One entity tag.
#[derive(Debug, PartialEq, Eq)]
struct Tag<'a> {
    weak: bool,
    /// The opaque tag with its quotes, as our ETags are written.
    opaque: &'a [u8],
}

/// `"*" / #entity-tag`; `None` when the value is neither.
///
/// `entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE` with `etagc = %x21 / %x23-7E / obs-text`:
/// a comma may sit inside the quotes, so the list is read tag by tag, not split on commas.
fn parse(value: &[u8]) -> Option<Tags<'_>> {
    let ows = |b: u8| b == b' ' || b == b'\t';
    let trimmed = value.trim_ascii();
    if trimmed == b"*" {
        return Some(Tags::Any);
    }
    let mut tags = Vec::new();
    let mut i = 0;
    loop {
        // Empty elements and whitespace between elements are allowed (RFC 9110 §5.6.1).
        while i < value.len() && (ows(value[i]) || value[i] == b',') {
            i += 1;
        }
        if i == value.len() {
            break;
        }
        let weak = value[i..].starts_with(b"W/");
        if weak {
            i += 2;
        }
        if value.get(i) != Some(&b'"') {
            return None;
        }
        let start = i;
        i += 1;
        while i < value.len() && value[i] != b'"' {
            let b = value[i];
            if !(b == 0x21 || (0x23..=0x7e).contains(&b) || b >= 0x80) {
                return None;
            }
            i += 1;
        }
        if i == value.len() {
            return None;
        }
        i += 1;
        tags.push(Tag {
            weak,
            opaque: &value[start..i],
        });
        while i < value.len() && ows(value[i]) {
            i += 1;
        }
        if i < value.len() && value[i] != b',' {
            return None;
        }
    }
    // An empty list is not a valid `1#entity-tag`.
    if tags.is_empty() {
        None
    } else {
        Some(Tags::List(tags))
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;
    use proptest::prelude::*;

    use super::*;

    const ETAG: &str = "\"file-1\"";

    fn with(fields: &[(HeaderName, &str)]) -> Precondition {
        let mut headers = HeaderMap::new();
        for (name, value) in fields {
            headers.append(name, HeaderValue::from_str(value).expect("value"));
        }
        evaluate(&headers, ETAG)
    }

    /// Regression (issue 9): `If-Match` with a wrong ETag gave 200/206 instead of 412.
    #[test]
    fn if_match_needs_our_strong_etag() {
        use Precondition::{Failed, Proceed};
        let m = header::IF_MATCH;
        assert_eq!(with(&[(m.clone(), ETAG)]), Proceed);
        assert_eq!(with(&[(m.clone(), "*")]), Proceed);
        assert_eq!(with(&[(m.clone(), "\"a\", \"file-1\"")]), Proceed);
        assert_eq!(with(&[(m.clone(), "\"a\""), (m.clone(), ETAG)]), Proceed);
        assert_eq!(with(&[(m.clone(), "\"old\"")]), Failed);
        assert_eq!(
            with(&[(m.clone(), "W/\"file-1\"")]),
            Failed,
            "weak never matches"
        );
        assert_eq!(
            with(&[(m.clone(), "file-1")]),
            Failed,
            "unquoted: malformed"
        );
        assert_eq!(with(&[(m.clone(), "")]), Failed);
        assert_eq!(with(&[(m, "\"file-1\" x")]), Failed);
        assert_eq!(with(&[]), Proceed);
    }

    /// Regression (issue 9): `If-None-Match` with the current ETag gave 200 instead of 304.
    #[test]
    fn if_none_match_compares_weakly() {
        use Precondition::{NotModified, Proceed};
        let n = header::IF_NONE_MATCH;
        assert_eq!(with(&[(n.clone(), ETAG)]), NotModified);
        assert_eq!(with(&[(n.clone(), "W/\"file-1\"")]), NotModified);
        assert_eq!(with(&[(n.clone(), "*")]), NotModified);
        assert_eq!(with(&[(n.clone(), "\"x,y\", \"file-1\"")]), NotModified);
        assert_eq!(with(&[(n.clone(), "\"old\"")]), Proceed);
        assert_eq!(
            with(&[(n.clone(), "\"x,\"file-1\"")]),
            Proceed,
            "malformed: ignored"
        );
        assert_eq!(with(&[(n, "  ")]), Proceed);
    }

    #[test]
    fn if_match_is_evaluated_first() {
        let (m, n) = (header::IF_MATCH, header::IF_NONE_MATCH);
        assert_eq!(
            with(&[(m.clone(), "\"old\""), (n.clone(), ETAG)]),
            Precondition::Failed
        );
        assert_eq!(with(&[(m, ETAG), (n, ETAG)]), Precondition::NotModified);
    }

    proptest! {
        /// Any bytes a header may hold: no panic, and every tag found is a quoted string
        /// taken from the value.
        #[test]
        fn parsing_any_value_never_panics(value in proptest::collection::vec(any::<u8>(), 0..200)) {
            if let Some(Tags::List(tags)) = parse(&value) {
                for tag in tags {
                    prop_assert!(tag.opaque.len() >= 2);
                    prop_assert_eq!(tag.opaque[0], b'"');
                    prop_assert_eq!(tag.opaque[tag.opaque.len() - 1], b'"');
                }
            }
        }

        /// A list holding our tag among others always matches, however it is spaced.
        #[test]
        fn our_tag_in_any_list_matches(
            others in proptest::collection::vec("[a-z0-9,]{0,8}", 0..5),
            at in 0usize..5,
            space in "[ \t]{0,2}",
        ) {
            let mut tags: Vec<String> = others.iter().map(|o| format!("\"{o}\"")).collect();
            tags.insert(at.min(tags.len()), ETAG.to_owned());
            let list = tags.join(&format!("{space},{space}"));
            prop_assert_eq!(with(&[(header::IF_MATCH, &list)]), Precondition::Proceed);
            prop_assert_eq!(with(&[(header::IF_NONE_MATCH, &list)]), Precondition::NotModified);
        }
    }
}
