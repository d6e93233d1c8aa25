//! Helpers shared by the crate's router tests: requests in memory, streamed pages, forms.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use http_body_util::BodyExt;
use onionhost_sdk::axum::Router;
use onionhost_sdk::axum::body::Body;
use onionhost_sdk::axum::http::{Request, Response, StatusCode, header};
use onionhost_sdk::http::Visitor;
use onionhost_sdk::testing::TestTab;
use tower::ServiceExt;

use crate::ChatMode;

/// How long a test waits for something it expects.
pub(crate) const DEADLINE: Duration = Duration::from_secs(10);

/// A chat tab built from `section`.
pub(crate) fn tab(section: &str) -> TestTab {
    TestTab::build::<ChatMode>(section).unwrap()
}

/// `GET uri`.
pub(crate) async fn get(router: &Router, uri: &str) -> Response<Body> {
    let request = Request::get(uri).body(Body::empty()).unwrap();
    router.clone().oneshot(request).await.unwrap()
}

/// `POST uri` with a URL-encoded form, from a visitor of its own (as each connection is on
/// loopback).
pub(crate) async fn post_form(
    router: &Router,
    uri: &str,
    fields: &[(&str, &str)],
) -> Response<Body> {
    post_form_as(router, Visitor::unique(), uri, fields).await
}

/// `POST uri` with a URL-encoded form, from `visitor` (one Tor circuit, say).
pub(crate) async fn post_form_as(
    router: &Router,
    visitor: Visitor,
    uri: &str,
    fields: &[(&str, &str)],
) -> Response<Body> {
    let body = fields
        .iter()
        .map(|(k, v)| format!("{}={}", url_encode(k), url_encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    let mut request = Request::post(uri)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(body))
        .unwrap();
    request.extensions_mut().insert(visitor);
    router.clone().oneshot(request).await.unwrap()
}

fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The whole body of a response that ends.
pub(crate) async fn text(response: Response<Body>) -> String {
    let bytes = tokio::time::timeout(DEADLINE, response.into_body().collect())
        .await
        .expect("the body did not end in time")
        .unwrap()
        .to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

/// The `Location` of a `303 See Other`.
pub(crate) fn see_other(response: &Response<Body>) -> String {
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    response.headers()[header::LOCATION]
        .to_str()
        .unwrap()
        .to_owned()
}

/// A streamed page, read chunk by chunk.
pub(crate) struct Streamed {
    body: Body,
    /// Everything read so far.
    pub(crate) text: String,
    /// Where the next search starts: just after the last match.
    pos: usize,
    /// Whether the body has ended.
    pub(crate) ended: bool,
}

impl Streamed {
    pub(crate) fn new(response: Response<Body>) -> Self {
        assert_eq!(response.status(), StatusCode::OK);
        Self {
            body: response.into_body(),
            text: String::new(),
            pos: 0,
            ended: false,
        }
    }

    /// Reads until the page contains `needle` after the previous match, or fails at the
    /// deadline. Returns the text from the previous match to the end of this one.
    pub(crate) async fn read_until(&mut self, needle: &str) -> String {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            if let Some(at) = self.text[self.pos..].find(needle) {
                let end = self.pos + at + needle.len();
                let seen = self.text[self.pos..end].to_owned();
                self.pos = end;
                return seen;
            }
            assert!(
                !self.ended,
                "the page ended without {needle:?}:\n{}",
                self.text
            );
            if tokio::time::Instant::now() >= deadline {
                panic!("no {needle:?} in time; the page so far:\n{}", self.text);
            }
            self.next_chunk_until(deadline).await;
        }
    }

    /// Reads the next chunk of the body (with the deadline); `None` at the end.
    pub(crate) async fn next_chunk(&mut self) -> Option<String> {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        self.next_chunk_until(deadline).await
    }

    async fn next_chunk_until(&mut self, deadline: tokio::time::Instant) -> Option<String> {
        loop {
            match tokio::time::timeout_at(deadline, self.body.frame()).await {
                Err(_) => panic!("nothing more in time; the page so far:\n{}", self.text),
                Ok(None) => {
                    self.ended = true;
                    return None;
                }
                Ok(Some(frame)) => {
                    if let Ok(data) = frame.unwrap().into_data() {
                        let chunk = std::str::from_utf8(&data).unwrap().to_owned();
                        self.text.push_str(&chunk);
                        return Some(chunk);
                    }
                }
            }
        }
    }

    /// Reads to the end of the body (with the deadline).
    pub(crate) async fn read_to_end(&mut self) {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        while !self.ended {
            self.next_chunk_until(deadline).await;
        }
    }
}
