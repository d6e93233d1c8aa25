//! Refusing cross-site requests that change state, so a page elsewhere that knows a tab's
//! address cannot act in it through the browser of someone who has that address.

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use http::{HeaderMap, Method, StatusCode, header};

use super::plain_error;

/// The middleware [`super::harden`] puts in front of every mode.
pub(super) async fn refuse_cross_site(request: Request, next: Next) -> Response {
    if changes_state(request.method(), request.headers()) && is_cross_site(request.headers()) {
        return plain_error(
            StatusCode::FORBIDDEN,
            "Requests from other sites are refused.",
        );
    }
    next.run(request).await
}

/// Every method but the safe ones, and WebSocket upgrades (a GET that opens a channel which
/// can act, and which browsers send cross-site without asking).
fn changes_state(method: &Method, headers: &HeaderMap) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
        || headers.contains_key(header::UPGRADE)
}

/// Whether a browser says the request comes from another site. `Sec-Fetch-Site` is trusted
/// when present (a page cannot set it): `same-site` is refused too (another onion address is
/// another site, and a sibling subdomain is no friend either), and `same-origin` is let in
/// whatever `Origin` says. That matters: under the `Referrer-Policy: no-referrer` that
/// [`super::harden`] sets, the Fetch standard makes browsers send `Origin: null` with every
/// POST, even a form posted by the tab's own page (regression, issue 9: Chromium without
/// JavaScript got 403 when joining the chat or sending to a receive tab). Without
/// `Sec-Fetch-Site`, an `Origin` must be the request's own, `http://` and the `Host` it was
/// sent to (an onion service is plain HTTP; `null` is refused, since without `Sec-Fetch-Site`
/// it cannot be told from a sandboxed frame or a `file:` page elsewhere). A request with
/// neither header is not a browser's, and is let in: such a client could forge them anyway.
fn is_cross_site(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        if site == "cross-site" || site == "same-site" {
            return true;
        }
        if site == "same-origin" {
            return false;
        }
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return false;
    };
    let Some(host) = headers.get(header::HOST) else {
        return true;
    };
    let own = origin
        .as_bytes()
        .strip_prefix(b"http://")
        .is_some_and(|rest| rest.eq_ignore_ascii_case(host.as_bytes()));
    !own
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::body::Body;
    use axum::routing::{get, post};
    use tower::ServiceExt as _;

    use super::*;

    fn router() -> Router {
        super::super::harden(
            Router::new()
                .route("/", get(|| async { "page" }))
                .route("/upload", post(|| async { "saved" })),
        )
    }

    async fn status(method: &str, path: &str, headers: &[(&str, &str)]) -> StatusCode {
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, "abc.onion");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = router()
            .oneshot(request.body(Body::empty()).expect("request"))
            .await
            .expect("response");
        status_with_headers(response)
    }

    fn status_with_headers(response: Response) -> StatusCode {
        assert!(
            response
                .headers()
                .contains_key(header::CONTENT_SECURITY_POLICY),
            "a refusal without the security headers"
        );
        response.status()
    }

    /// Regression (issue 9, cross-site posts): `POST /upload` with `Origin: http://evil.example`
    /// saved the file (and `POST /nojs/join` made a member join): every mode now refuses it.
    #[tokio::test]
    async fn cross_site_posts_are_refused() {
        for headers in [
            &[("origin", "http://evil.example")][..],
            &[("origin", "null")],
            &[("origin", "null"), ("sec-fetch-site", "cross-site")],
            &[("origin", "https://abc.onion")],
            &[("origin", "http://abc.onion.evil.example")],
            &[("sec-fetch-site", "cross-site")],
            &[("sec-fetch-site", "same-site")],
            &[
                ("origin", "http://abc.onion"),
                ("sec-fetch-site", "cross-site"),
            ],
        ] {
            assert_eq!(
                status("POST", "/upload", headers).await,
                StatusCode::FORBIDDEN,
                "{headers:?}"
            );
            assert_eq!(
                status("PUT", "/upload", headers).await,
                StatusCode::FORBIDDEN,
                "{headers:?}"
            );
        }
    }

    #[tokio::test]
    async fn cross_site_websocket_upgrades_are_refused() {
        let upgrade = [
            ("connection", "upgrade"),
            ("upgrade", "websocket"),
            ("origin", "http://evil.example"),
        ];
        assert_eq!(status("GET", "/", &upgrade).await, StatusCode::FORBIDDEN);
        let own = [
            ("connection", "upgrade"),
            ("upgrade", "websocket"),
            ("origin", "http://abc.onion"),
        ];
        assert_eq!(status("GET", "/", &own).await, StatusCode::OK);
    }

    #[tokio::test]
    async fn same_origin_and_non_browser_posts_and_cross_site_reads_are_let_in() {
        for headers in [
            &[][..],
            &[("origin", "http://abc.onion")],
            &[("origin", "http://ABC.onion")],
            &[
                ("origin", "http://abc.onion"),
                ("sec-fetch-site", "same-origin"),
            ],
            &[("sec-fetch-site", "same-origin")],
            &[("sec-fetch-site", "none")],
            // What a browser sends for the tab's own form under `Referrer-Policy: no-referrer`.
            &[("origin", "null"), ("sec-fetch-site", "same-origin")],
        ] {
            assert_eq!(
                status("POST", "/upload", headers).await,
                StatusCode::OK,
                "{headers:?}"
            );
        }
        // A link from elsewhere must still open the page.
        let from_elsewhere = [
            ("origin", "http://evil.example"),
            ("sec-fetch-site", "cross-site"),
        ];
        assert_eq!(status("GET", "/", &from_elsewhere).await, StatusCode::OK);
        assert_eq!(status("HEAD", "/", &from_elsewhere).await, StatusCode::OK);
    }

    #[tokio::test]
    async fn an_origin_without_a_host_is_refused() {
        let request = Request::builder()
            .method("POST")
            .uri("/upload")
            .header("origin", "http://abc.onion")
            .body(Body::empty())
            .expect("request");
        let response = router().oneshot(request).await.expect("response");
        assert_eq!(status_with_headers(response), StatusCode::FORBIDDEN);
    }
}
