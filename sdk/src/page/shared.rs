//! The files every tab serves from the sdk, whatever its mode: the style sheet, the logo and
//! the favicon.
//!
//! Policy: [`DynMode::build`](crate::host::DynMode) wraps every mode's router with
//! [`serve_shared`], so the host, a plugin's export and [`crate::testing`] serve them alike and
//! no mode copies them.
//! - Paths under [`SHARED_PREFIX`] (`/onionhost%2F`) belong to the sdk and are answered before
//!   the mode sees the request. No file of a mode that serves files can have such a path: a
//!   name on disk never holds `/`, and the sdk's [`Tree`](crate::files::Tree) refuses `%2F` in
//!   a name, so a shared file never hides a file of a site, nor a file of a site a shared one.
//! - `/favicon.ico` is the mode's first: a website whose folder has its own `favicon.ico`
//!   serves that. Only when the mode answers `404` does the sdk answer with its icon, so that
//!   no browser logs a `404` for it on every page.

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use http::{Method, StatusCode};

use super::Asset;

/// The prefix of the paths the sdk serves on every tab. `%2F` is an encoded `/`, which no name
/// on disk holds, so these paths never name a file a mode serves.
pub const SHARED_PREFIX: &str = "/onionhost%2F";

/// Where every tab serves [`LOGO`].
pub const LOGO_PATH: &str = "/onionhost%2Flogo.svg";

/// Where browsers look for a site's icon without being told.
pub const FAVICON_PATH: &str = "/favicon.ico";

/// The onionhost logo: an onion, as SVG (32 by 32, no script, no style sheet: colours are
/// presentation attributes, so no Content-Security-Policy blocks any of it).
pub static LOGO: Asset = Asset::new(include_bytes!("../../assets/logo.svg"), "image/svg+xml");

/// The logo as an icon file, for browsers that ask for `/favicon.ico`: an `.ico` holding 16,
/// 32 and 48 pixel PNGs of [`LOGO`] (each a headless Chromium screenshot of the SVG at that
/// size on a transparent background, packed in the `.ico` directory by hand). Redraw it when
/// the logo changes; `the_favicon_is_an_ico_of_pngs` checks its structure.
pub static FAVICON: Asset = Asset::new(include_bytes!("../../assets/favicon.ico"), "image/x-icon");

/// `router` with the sdk's shared files added (see the module's policy).
pub fn serve_shared(router: Router) -> Router {
    router.layer(axum::middleware::from_fn(shared))
}

/// The sdk's file at `path`, if it has one.
fn shared_asset(path: &str) -> Option<&'static Asset> {
    match path {
        LOGO_PATH => Some(&LOGO),
        super::STYLE_PATH => Some(&super::STYLE),
        _ => None,
    }
}

async fn shared(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    if method != Method::GET && method != Method::HEAD {
        return next.run(request).await;
    }
    let path = request.uri().path();
    let answer = if path.starts_with(SHARED_PREFIX) {
        match shared_asset(path) {
            Some(asset) => asset.response(request.headers()),
            // The prefix is the sdk's: the mode never sees it.
            None => Response::builder()
                .status(StatusCode::NOT_FOUND)
                .body(Body::empty())
                .unwrap_or_default(),
        }
    } else if path == FAVICON_PATH {
        let headers = request.headers().clone();
        let response = next.run(request).await;
        if response.status() != StatusCode::NOT_FOUND {
            return response;
        }
        FAVICON.response(&headers)
    } else {
        return next.run(request).await;
    };
    if method == Method::HEAD {
        let (parts, _) = answer.into_parts();
        return Response::from_parts(parts, Body::empty());
    }
    answer
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::to_bytes;
    use axum::routing::get;
    use http::{HeaderMap, header};
    use tower::ServiceExt as _;

    async fn send(router: &Router, method: Method, path: &str) -> (StatusCode, HeaderMap, Vec<u8>) {
        let response = router
            .clone()
            .oneshot(
                Request::builder()
                    .method(method)
                    .uri(path)
                    .body(Body::empty())
                    .expect("request"),
            )
            .await
            .expect("infallible");
        let (parts, body) = response.into_parts();
        let body = to_bytes(body, 1 << 20).await.expect("body").to_vec();
        (parts.status, parts.headers, body)
    }

    fn mode_router() -> Router {
        serve_shared(
            Router::new()
                .route("/", get(|| async { "page" }))
                .route("/onionhost%2Fmine", get(|| async { "the mode's" })),
        )
    }

    #[tokio::test]
    async fn every_router_answers_the_favicon_and_the_logo() {
        let router = mode_router();
        let (status, headers, body) = send(&router, Method::GET, FAVICON_PATH).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers[header::CONTENT_TYPE], "image/x-icon");
        assert_eq!(body, FAVICON.bytes());
        let (status, headers, body) = send(&router, Method::GET, LOGO_PATH).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers[header::CONTENT_TYPE], "image/svg+xml");
        assert_eq!(headers[header::ETAG], LOGO.etag().as_str());
        assert_eq!(body, LOGO.bytes());
        // The mode's own routes are untouched.
        assert_eq!(send(&router, Method::GET, "/").await.2, b"page");
    }

    #[tokio::test]
    async fn head_gets_the_headers_without_the_bytes() {
        let router = mode_router();
        for path in [FAVICON_PATH, LOGO_PATH] {
            let (status, headers, body) = send(&router, Method::HEAD, path).await;
            assert_eq!(status, StatusCode::OK, "{path}");
            assert!(headers.contains_key(header::ETAG), "{path}");
            assert!(body.is_empty(), "{path}");
        }
    }

    /// A website's own `favicon.ico` wins over the sdk's.
    #[tokio::test]
    async fn a_modes_own_favicon_wins() {
        let router = serve_shared(Router::new().route(FAVICON_PATH, get(|| async { "own icon" })));
        let (status, _, body) = send(&router, Method::GET, FAVICON_PATH).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, b"own icon");
    }

    /// The mode's fallback (a website answers every path) sees `/favicon.ico` first; its `404`
    /// becomes the sdk's icon, any other answer stays.
    #[tokio::test]
    async fn a_fallbacks_404_becomes_the_icon_and_other_answers_stay() {
        let missing = serve_shared(
            Router::new().fallback(|| async { (StatusCode::NOT_FOUND, "no such page") }),
        );
        assert_eq!(
            send(&missing, Method::GET, FAVICON_PATH).await.2,
            FAVICON.bytes()
        );
        let gone = serve_shared(Router::new().fallback(|| async { (StatusCode::GONE, "gone") }));
        let (status, _, body) = send(&gone, Method::GET, FAVICON_PATH).await;
        assert_eq!((status, body), (StatusCode::GONE, b"gone".to_vec()));
    }

    /// The prefix is the sdk's: a mode's route under it is never reached, and a name the sdk
    /// does not have is a plain `404`.
    #[tokio::test]
    async fn the_shared_prefix_belongs_to_the_sdk() {
        let router = mode_router();
        assert_eq!(
            send(&router, Method::GET, "/onionhost%2Fmine").await.0,
            StatusCode::NOT_FOUND
        );
        // A `POST` is the mode's to answer (here: no such route).
        assert_eq!(
            send(&router, Method::POST, LOGO_PATH).await.0,
            StatusCode::NOT_FOUND
        );
    }

    #[tokio::test]
    async fn an_unchanged_logo_is_not_sent_again() {
        let router = mode_router();
        let response = router
            .oneshot(
                Request::get(LOGO_PATH)
                    .header(header::IF_NONE_MATCH, LOGO.etag())
                    .body(Body::empty())
                    .expect("request"),
            )
            .await
            .expect("infallible");
        assert_eq!(response.status(), StatusCode::NOT_MODIFIED);
    }

    /// The logo is an SVG image and nothing more: no script, no link out, no style sheet that
    /// a Content-Security-Policy would block.
    #[test]
    fn the_logo_is_plain_svg() {
        let svg = std::str::from_utf8(LOGO.bytes()).expect("text");
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        for forbidden in ["<script", "href", "<style", "style=", "url("] {
            assert!(!svg.contains(forbidden), "the logo holds {forbidden:?}");
        }
        let handler = svg
            .split_whitespace()
            .find(|word| word.starts_with("on") && word.contains('='));
        assert_eq!(handler, None, "the logo holds an event handler");
    }

    /// The icon file is a real `.ico`: its header, and every image in it a PNG within the file.
    #[test]
    fn the_favicon_is_an_ico_of_pngs() {
        let ico = FAVICON.bytes();
        assert_eq!(&ico[..4], &[0, 0, 1, 0], "ICO header");
        let count = usize::from(u16::from_le_bytes([ico[4], ico[5]]));
        assert!(count >= 2, "{count} images");
        for entry in ico[6..6 + 16 * count].chunks(16) {
            let le = |at: usize| {
                u32::from_le_bytes([entry[at], entry[at + 1], entry[at + 2], entry[at + 3]])
            };
            let (size, offset) = (le(8) as usize, le(12) as usize);
            let image = &ico[offset..offset + size];
            assert_eq!(&image[..8], b"\x89PNG\r\n\x1a\n");
            // The PNG's own width agrees with the directory's (0 means 256).
            let width = u32::from_be_bytes([image[16], image[17], image[18], image[19]]);
            assert_eq!(width, u32::from(entry[0]), "width");
        }
    }
}
