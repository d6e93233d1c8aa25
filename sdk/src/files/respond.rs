//! The status and headers of a file's response: its strong ETag, the `304`/`412` that
//! `If-None-Match`/`If-Match` call for, and `200`, `206` or `416` from `Range`.
//!
//! No `Last-Modified` is ever sent: it would tell visitors when the host's user last touched
//! each file (see [`super::conditional`]).

use axum::body::Body;
use axum::response::Response;
use http::{HeaderMap, HeaderValue, StatusCode, header};

use super::conditional::{self, Precondition};
use super::range::Decision;
use super::tree::Node;

/// FNV-1a, 64 bits: a stable hash for ETags (the same on every run and every build).
#[derive(Debug, Clone, Copy)]
pub struct Fnv(u64);

impl Fnv {
    /// The hash of nothing.
    pub const fn new() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }

    /// Adds `bytes`.
    pub const fn write(&mut self, bytes: &[u8]) {
        let mut i = 0;
        while i < bytes.len() {
            self.0 ^= bytes[i] as u64;
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
            i += 1;
        }
    }

    /// The hash so far.
    pub const fn finish(&self) -> u64 {
        self.0
    }
}

impl Default for Fnv {
    fn default() -> Self {
        Self::new()
    }
}

/// A file's strong ETag: from its path in the tree, size and modification time, so that it
/// changes with the file and is the same across restarts for an unchanged one.
pub fn file_etag(node: &Node, len: u64) -> String {
    let mut hash = Fnv::new();
    hash.write(node.rel.as_bytes());
    hash.write(&[0]);
    hash.write(&len.to_le_bytes());
    hash.write(&node.mtime.0.to_le_bytes());
    hash.write(&node.mtime.1.to_le_bytes());
    format!("\"file-{:016x}-{len:x}\"", hash.finish())
}

/// The `304` or `412` that `If-None-Match` / `If-Match` call for, if any: to be checked
/// before `Range` (RFC 9110 §13.2.2).
pub fn preconditions(headers: &HeaderMap, etag: &str) -> Option<Response> {
    let status = match conditional::evaluate(headers, etag) {
        Precondition::Proceed => return None,
        Precondition::NotModified => StatusCode::NOT_MODIFIED,
        Precondition::Failed => StatusCode::PRECONDITION_FAILED,
    };
    let mut response = if status == StatusCode::NOT_MODIFIED {
        // No body, and none of the content's headers but its ETag (RFC 9110 §15.4.5).
        let mut response = Response::new(Body::empty());
        *response.status_mut() = status;
        response
    } else {
        crate::http::plain_error(
            status,
            "This content has changed since you got its ETag; download it again.",
        )
    };
    if let Ok(value) = HeaderValue::from_str(etag) {
        response.headers_mut().insert(header::ETAG, value);
    }
    Some(response)
}

/// The bytes a decision sends: `start..end`.
pub fn bounds(decision: Decision, len: u64) -> (u64, u64) {
    match decision {
        Decision::Partial { start, end } => (start, end),
        Decision::Full | Decision::Unsatisfiable => (0, len),
    }
}

/// The status and headers of a response of `len` bytes (`Content-Type`, `Content-Length`,
/// `Accept-Ranges`, `ETag`, and `Content-Range` for a piece); the caller adds the body. `Err`
/// is the `416` to send instead.
pub fn head_response(
    decision: Decision,
    len: u64,
    etag: &str,
    content_type: HeaderValue,
) -> Result<Response, Box<Response>> {
    let etag = HeaderValue::from_str(etag).unwrap_or(HeaderValue::from_static("\"none\""));
    let (status, length, content_range) = match decision {
        Decision::Full => (StatusCode::OK, len, None),
        Decision::Partial { start, end } => (
            StatusCode::PARTIAL_CONTENT,
            end - start,
            Some(format!("bytes {start}-{}/{len}", end - 1)),
        ),
        Decision::Unsatisfiable => {
            let mut response = crate::http::plain_error(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "The requested range is not in this file.",
            );
            let headers = response.headers_mut();
            headers.insert(header::ETAG, etag);
            headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
            if let Ok(value) = HeaderValue::from_str(&format!("bytes */{len}")) {
                headers.insert(header::CONTENT_RANGE, value);
            }
            return Err(Box::new(response));
        }
    };
    let mut response = Response::new(Body::empty());
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, content_type);
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    headers.insert(header::ETAG, etag);
    if let Some(range) = content_range.and_then(|r| HeaderValue::from_str(&r).ok()) {
        headers.insert(header::CONTENT_RANGE, range);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn head(decision: Decision) -> Result<Response, Box<Response>> {
        head_response(
            decision,
            100,
            "\"e\"",
            HeaderValue::from_static("text/plain"),
        )
    }

    #[test]
    fn a_piece_says_which_bytes_and_a_range_past_the_end_is_416() {
        let piece = head(Decision::Partial { start: 10, end: 20 }).unwrap();
        assert_eq!(piece.status(), StatusCode::PARTIAL_CONTENT);
        assert_eq!(piece.headers()[header::CONTENT_RANGE], "bytes 10-19/100");
        assert_eq!(piece.headers()[header::CONTENT_LENGTH], "10");
        let whole = head(Decision::Full).unwrap();
        assert_eq!(whole.status(), StatusCode::OK);
        assert_eq!(whole.headers()[header::CONTENT_LENGTH], "100");
        assert_eq!(whole.headers()[header::ETAG], "\"e\"");
        let refused = head(Decision::Unsatisfiable).unwrap_err();
        assert_eq!(refused.status(), StatusCode::RANGE_NOT_SATISFIABLE);
        assert_eq!(refused.headers()[header::CONTENT_RANGE], "bytes */100");
    }

    #[test]
    fn preconditions_give_304_and_412_with_the_etag() {
        let mut headers = HeaderMap::new();
        assert!(preconditions(&headers, "\"e\"").is_none());
        headers.insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"e\""));
        let not_modified = preconditions(&headers, "\"e\"").unwrap();
        assert_eq!(not_modified.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(not_modified.headers()[header::ETAG], "\"e\"");
        headers.insert(header::IF_MATCH, HeaderValue::from_static("\"old\""));
        let failed = preconditions(&headers, "\"e\"").unwrap();
        assert_eq!(failed.status(), StatusCode::PRECONDITION_FAILED);
    }
}
