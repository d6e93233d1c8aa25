//! Strict percent-decoding of a URL path (or one of its segments), and encoding of one
//! segment, on the `percent-encoding` crate.

use std::borrow::Cow;

/// Why a path could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PercentDecodeError {
    /// A `%` not followed by two hexadecimal digits (`%+1`, `%4`, `%zz`).
    #[error("a malformed percent escape in the path")]
    MalformedEscape,
    /// The decoded bytes are not UTF-8.
    #[error("the path is not UTF-8 once decoded")]
    NotUtf8,
}

/// `path` with its `%XX` escapes decoded; a malformed escape or bytes that are not UTF-8 are
/// an error (answer 400), never passed through or guessed at. `+` stays `+` (it means a space
/// only in a query). Borrowed when there is nothing to decode.
pub fn percent_decode(path: &str) -> Result<Cow<'_, str>, PercentDecodeError> {
    let bytes = path.as_bytes();
    let mut rest = bytes;
    while let Some(at) = rest.iter().position(|&b| b == b'%') {
        match rest.get(at + 1..at + 3) {
            Some([hi, lo]) if hi.is_ascii_hexdigit() && lo.is_ascii_hexdigit() => {
                rest = &rest[at + 3..];
            }
            _ => return Err(PercentDecodeError::MalformedEscape),
        }
    }
    match percent_encoding::percent_decode(bytes).decode_utf8() {
        Ok(decoded) => Ok(decoded),
        Err(_) => Err(PercentDecodeError::NotUtf8),
    }
}

/// What [`percent_encode_segment`] leaves as it is: RFC 3986's unreserved characters.
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// One path segment (a file name) for a URL: every byte but letters, digits and `-._~` as
/// `%XX`, so that `/`, `\`, `?`, `#`, `%` and non-ASCII can never change what the URL
/// names. [`percent_decode`] gives the segment back.
pub fn percent_encode_segment(segment: &str) -> String {
    percent_encoding::utf8_percent_encode(segment, SEGMENT).to_string()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use proptest::prelude::*;

    use super::*;

    #[test]
    fn escapes_are_decoded() {
        assert_eq!(percent_decode("a%20b%2Fc").unwrap(), "a b/c");
        assert_eq!(percent_decode("caf%C3%A9").unwrap(), "café");
        assert_eq!(percent_decode("a+b").unwrap(), "a+b");
        assert!(matches!(percent_decode("plain").unwrap(), Cow::Borrowed(_)));
    }

    /// Regression: the hand-written decoder of the modes accepted `%+1` (it parsed "+1" as
    /// hexadecimal).
    #[test]
    fn malformed_escapes_are_refused() {
        for bad in ["%+1", "%-1", "%4", "%", "a%zz", "%G0", "% 1", "x%1"] {
            assert_eq!(
                percent_decode(bad),
                Err(PercentDecodeError::MalformedEscape),
                "{bad}"
            );
        }
        assert_eq!(percent_decode("%FF"), Err(PercentDecodeError::NotUtf8));
    }

    proptest! {
        #[test]
        fn decoding_never_panics(text in "[%0-9a-fA-F+ /xé-]{0,32}") {
            let _ = percent_decode(&text);
        }

        /// Whatever is encoded decodes back to itself.
        #[test]
        fn encoded_text_round_trips(text in "\\PC{0,32}") {
            let encoded =
                percent_encoding::utf8_percent_encode(&text, percent_encoding::NON_ALPHANUMERIC)
                    .to_string();
            prop_assert_eq!(percent_decode(&encoded).unwrap(), text);
        }

        /// A `%` not followed by two hex digits is always an error.
        #[test]
        fn a_bad_escape_is_always_an_error(
            before in "[a-z]{0,8}",
            bad in "[^0-9a-fA-F][0-9a-fA-F]|[0-9a-fA-F][^0-9a-fA-F]|[^0-9a-fA-F]?",
        ) {
            let text = format!("{before}%{bad}");
            prop_assert_eq!(percent_decode(&text), Err(PercentDecodeError::MalformedEscape));
        }
    }
}
