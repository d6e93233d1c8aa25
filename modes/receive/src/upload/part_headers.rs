//! Raw control characters in the part headers of a form, made into `_` before the multipart
//! parser sees them.
//!
//! Browsers send a chosen file's name as it is in the part's `Content-Disposition: ...;
//! filename="..."`, escaping only `"`, CR and LF (as `%22`, `%0D`, `%0A`, as the HTML standard
//! says); any other control character, such as ESC or BS, arrives as a raw byte. The parser
//! (multer, through `httparse` and `http::HeaderValue`) refuses a header with such a byte, so
//! the whole upload was a 400 for a name that [`crate::names::sanitize`] would have cleaned
//! anyway. This stream replaces those bytes, in part headers only, by `_`, which is what the
//! sanitiser makes of every control character; part data passes untouched and uncopied.
//!
//! It finds part headers the way the parser does: a part's headers start after the delimiter
//! (CR LF, `--` and the boundary; at the very start of the body the CR LF may be missing) and
//! end at the first blank line (CR LF CR LF). The boundary comes from a header value, which
//! cannot hold a CR, so a CR occurs in the delimiter only as its first byte: a partial match
//! that fails can never be the start of another one, and no byte is looked at twice.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures::Stream;
use memchr::memmem;
use onionhost_sdk::axum::body::Bytes;

/// The blank line that ends a part's headers.
const HEADERS_END: &[u8] = b"\r\n\r\n";

/// Bytes that `httparse` refuses in a header value: every control character but TAB, CR and
/// LF (which make up the header lines themselves), and DEL.
fn is_refused(byte: u8) -> bool {
    matches!(byte, 0x00..=0x08 | 0x0B | 0x0C | 0x0E..=0x1F | 0x7F)
}

/// Where the stream is in the form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// In part data or the preamble; the last `matched` bytes seen are the start of a
    /// delimiter.
    Data { matched: usize },
    /// In a part's headers; the last `matched` bytes seen are the start of the blank line.
    Headers { matched: usize },
}

/// A form body with the control characters of its part headers replaced.
pub(super) struct PartHeaders<S> {
    inner: S,
    /// CR LF `--` boundary.
    delimiter: Vec<u8>,
    finder: memmem::Finder<'static>,
    place: Place,
}

impl<S> PartHeaders<S> {
    /// `boundary` is the form's boundary, without the leading `--`; it holds no CR.
    pub(super) fn new(inner: S, boundary: &str) -> Self {
        debug_assert!(!boundary.contains('\r'), "a header value holds no CR");
        let delimiter = [b"\r\n--", boundary.as_bytes()].concat();
        Self {
            finder: memmem::Finder::new(&delimiter).into_owned(),
            delimiter,
            // The body starts with `--boundary`: as if the CR LF before it had been seen.
            place: Place::Data { matched: 2 },
            inner,
        }
    }

    /// `chunk`, with the refused bytes of part headers replaced; copied only if one is.
    fn scrub(&mut self, chunk: Bytes) -> Bytes {
        let mut copy: Option<Vec<u8>> = None;
        let mut at = 0;
        while at < chunk.len() {
            match self.place {
                Place::Data { matched } => {
                    let rest = &chunk[at..];
                    if matched > 0 {
                        // A delimiter cut by the end of the previous chunk.
                        let wanted = &self.delimiter[matched..];
                        let n = wanted.len().min(rest.len());
                        if rest[..n] == wanted[..n] {
                            at += n;
                            self.place = if n == wanted.len() {
                                Place::Headers { matched: 0 }
                            } else {
                                Place::Data {
                                    matched: matched + n,
                                }
                            };
                            continue;
                        }
                    }
                    if let Some(found) = self.finder.find(rest) {
                        at += found + self.delimiter.len();
                        self.place = Place::Headers { matched: 0 };
                        continue;
                    }
                    // The chunk may end with the start of a delimiter: only its last CR can
                    // begin one.
                    let window = rest.len().saturating_sub(self.delimiter.len() - 1);
                    let matched = memchr::memrchr(b'\r', &rest[window..])
                        .map(|cr| &rest[window + cr..])
                        .filter(|tail| self.delimiter.starts_with(tail))
                        .map_or(0, <[u8]>::len);
                    self.place = Place::Data { matched };
                    at = chunk.len();
                }
                Place::Headers { matched } => {
                    let byte = chunk[at];
                    let matched = if byte == HEADERS_END[matched] {
                        matched + 1
                    } else if byte == b'\r' {
                        1
                    } else {
                        0
                    };
                    if is_refused(byte) {
                        copy.get_or_insert_with(|| chunk.to_vec())[at] = b'_';
                    }
                    at += 1;
                    self.place = if matched == HEADERS_END.len() {
                        Place::Data { matched: 0 }
                    } else {
                        Place::Headers { matched }
                    };
                }
            }
        }
        copy.map_or(chunk, Bytes::from)
    }
}

impl<S, E> Stream for PartHeaders<S>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
{
    type Item = Result<Bytes, E>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match Pin::new(&mut self.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => Poll::Ready(Some(Ok(self.scrub(chunk)))),
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOUNDARY: &str = "XyZ";

    /// Runs `body` through the scrubber cut into chunks of `size` bytes.
    fn scrub_in_chunks(body: &[u8], size: usize) -> Vec<u8> {
        let mut scrubber =
            PartHeaders::new(futures::stream::empty::<Result<Bytes, ()>>(), BOUNDARY);
        body.chunks(size)
            .flat_map(|chunk| scrubber.scrub(Bytes::copy_from_slice(chunk)).to_vec())
            .collect()
    }

    fn form(name: &[u8], data: &[u8]) -> Vec<u8> {
        [
            b"--XyZ\r\nContent-Disposition: form-data; name=\"files\"; filename=\"".as_slice(),
            name,
            b"\"\r\nContent-Type: application/octet-stream\r\n\r\n",
            data,
            b"\r\n--XyZ\r\nContent-Disposition: form-data; name=\"text\"\r\n\r\n",
            data,
            b"\r\n--XyZ--\r\n",
        ]
        .concat()
    }

    #[test]
    fn control_bytes_in_headers_become_underscores_and_data_is_untouched() {
        let data: Vec<u8> = (0..=255u8).chain(*b"\r\n--XyZ-not\r\n\r\n\x1b").collect();
        // The data holds every byte, and things that look like a boundary or a blank line.
        let data: Vec<u8> = data.iter().copied().filter(|&b| b != b'\r').collect();
        let body = form(b"a\x1b[31mred\x08\x7f.txt", &data);
        let expected = form(b"a_[31mred__.txt", &data);
        for size in [1, 2, 3, 5, 7, 64, body.len()] {
            assert_eq!(scrub_in_chunks(&body, size), expected, "chunks of {size}");
        }
    }

    #[test]
    fn data_with_a_cut_delimiter_look_alike_is_untouched() {
        // `\r\n--Xy` followed by something else, at every chunk size.
        let data = b"\r\n--Xy\x1b\r\n--X\r\n-\r\n\x01";
        let body = form(b"\x01", data);
        let expected = form(b"_", data);
        for size in 1..body.len() {
            assert_eq!(scrub_in_chunks(&body, size), expected, "chunks of {size}");
        }
    }

    #[test]
    fn a_preamble_before_the_first_boundary_is_data() {
        let mut body = b"preamble \x1b\r\n".to_vec();
        body.extend_from_slice(&form(b"\x1b", b"x"));
        let mut expected = b"preamble \x1b\r\n".to_vec();
        expected.extend_from_slice(&form(b"_", b"x"));
        assert_eq!(scrub_in_chunks(&body, 4), expected);
    }
}
