//! A static file built into a mode (its style sheet, its script), served with a strong ETag.
//!
//! Pages are `Cache-Control: no-store` ([`harden`](crate::http::harden) sets it): they hold
//! what visitors said or sent. An asset is the same for every tab of a mode and holds nothing
//! of anyone's, so it is `no-cache` instead: a browser may keep it but must ask again each
//! time, and gets `304 Not Modified` (no body, which saves a round of bytes over Tor) while it
//! has not changed. `no-cache` rather than a lifetime: a host upgraded in place never serves a
//! page with a stale script.

use axum::body::Body;
use axum::routing::{MethodRouter, get};
use http::{HeaderMap, HeaderValue, StatusCode, header};

use axum::response::{IntoResponse, Response};

/// What an asset's responses carry as `Cache-Control`; [`harden`](crate::http::harden) keeps
/// a mode's own value.
const CACHE_CONTROL: &str = "no-cache";

/// A static file: its bytes, its content type and its ETag.
///
/// ```
/// use onionhost_sdk::axum::Router;
/// use onionhost_sdk::page::Asset;
///
/// static STYLE: Asset = Asset::css("body { margin: 0 }");
///
/// let router: Router = Router::new().route("/my.css", STYLE.get());
/// ```
#[derive(Debug)]
pub struct Asset {
    bytes: &'static [u8],
    content_type: &'static str,
    hash: u64,
}

impl Asset {
    /// An asset of `bytes` served as `content_type`. `const`, so that a mode keeps its assets
    /// in `static`s next to their `include_str!`.
    pub const fn new(bytes: &'static [u8], content_type: &'static str) -> Self {
        Self {
            bytes,
            content_type,
            hash: fnv1a(bytes),
        }
    }

    /// A style sheet (`text/css; charset=utf-8`).
    pub const fn css(text: &'static str) -> Self {
        Self::new(text.as_bytes(), "text/css; charset=utf-8")
    }

    /// A script (`text/javascript; charset=utf-8`).
    pub const fn js(text: &'static str) -> Self {
        Self::new(text.as_bytes(), "text/javascript; charset=utf-8")
    }

    /// The asset's bytes.
    pub fn bytes(&self) -> &'static [u8] {
        self.bytes
    }

    /// The strong ETag of the asset's bytes (quoted, as the header carries it).
    pub fn etag(&self) -> String {
        format!("\"{:016x}\"", self.hash)
    }

    /// The answer to a `GET` (or `HEAD`) with request headers `request`: `304 Not Modified`
    /// when `If-None-Match` names the current ETag (or is `*`), else `200` with the bytes.
    pub fn response(&self, request: &HeaderMap) -> Response {
        let etag = self.etag();
        let cache = [
            (
                header::ETAG,
                HeaderValue::from_str(&etag).unwrap_or(HeaderValue::from_static("\"\"")),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static(CACHE_CONTROL),
            ),
        ];
        if none_match(request, &etag) {
            return (StatusCode::NOT_MODIFIED, cache).into_response();
        }
        (
            cache,
            [(header::CONTENT_TYPE, self.content_type)],
            Body::from(self.bytes),
        )
            .into_response()
    }

    /// A route serving the asset (`GET`, and `HEAD` without the body).
    pub fn get<S>(&'static self) -> MethodRouter<S>
    where
        S: Clone + Send + Sync + 'static,
    {
        get(move |request: HeaderMap| async move { self.response(&request) })
    }
}

/// Whether `If-None-Match` fails for `etag` (RFC 9110 §13.1.2): the sdk's one evaluation of
/// preconditions ([`crate::files::conditional`]; a weak comparison, or `*`). A malformed
/// header matches nothing, so its sender gets the full answer.
fn none_match(request: &HeaderMap, etag: &str) -> bool {
    crate::files::conditional::evaluate(request, etag)
        == crate::files::conditional::Precondition::NotModified
}

/// 64-bit FNV-1a: enough to tell versions of one mode's few files apart, and computable at
/// compile time. An ETag needs no secrecy: the bytes it names are public.
const fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash = crate::files::Fnv::new();
    hash.write(bytes);
    hash.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::body::to_bytes;
    use http::Request;
    use tower::ServiceExt as _;

    static STYLE: Asset = Asset::css("body { color: red }");

    async fn get(if_none_match: Option<&str>) -> (StatusCode, HeaderMap, Vec<u8>) {
        let router: Router = crate::http::harden(Router::new().route("/s.css", STYLE.get()));
        let mut request = Request::get("/s.css");
        if let Some(tag) = if_none_match {
            request = request.header(header::IF_NONE_MATCH, tag);
        }
        let response = router
            .oneshot(request.body(Body::empty()).expect("request"))
            .await
            .expect("infallible");
        let (parts, body) = response.into_parts();
        let body = to_bytes(body, 1 << 20).await.expect("body").to_vec();
        (parts.status, parts.headers, body)
    }

    #[tokio::test]
    async fn the_first_request_gets_the_bytes_and_a_strong_etag() {
        let (status, headers, body) = get(None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, b"body { color: red }");
        assert_eq!(headers[header::CONTENT_TYPE], "text/css; charset=utf-8");
        let etag = headers[header::ETAG].to_str().expect("text");
        assert_eq!(etag, STYLE.etag());
        assert!(etag.starts_with('"') && etag.ends_with('"') && etag.len() == 18);
        // harden keeps the asset's own policy: no-store would make the ETag useless.
        assert_eq!(headers[header::CACHE_CONTROL], "no-cache");
    }

    #[tokio::test]
    async fn a_matching_if_none_match_gets_304_without_a_body() {
        let etag = STYLE.etag();
        for tag in [
            etag.clone(),
            format!("W/{etag}"),
            format!("\"other\", {etag}"),
            "*".to_owned(),
        ] {
            let (status, headers, body) = get(Some(&tag)).await;
            assert_eq!(status, StatusCode::NOT_MODIFIED, "{tag}");
            assert!(body.is_empty(), "{tag}");
            assert_eq!(headers[header::ETAG], etag.as_str());
            assert_eq!(headers[header::CACHE_CONTROL], "no-cache");
        }
    }

    #[tokio::test]
    async fn another_etag_gets_the_bytes() {
        for tag in ["\"0000000000000000\"", "garbage", ""] {
            let (status, _, body) = get(Some(tag)).await;
            assert_eq!(status, StatusCode::OK, "{tag}");
            assert_eq!(body, b"body { color: red }");
        }
    }

    #[test]
    fn different_bytes_have_different_etags() {
        assert_ne!(Asset::css("a").etag(), Asset::css("b").etag());
        assert_eq!(Asset::css("a").etag(), Asset::js("a").etag());
    }
}
