//! The one HTTP handler: every `GET`/`HEAD` path is looked up in the site's tree, and answered
//! with a file, a folder's `index.html`, a folder's listing, a redirect or an error page.
//!
//! Policy, as nginx and OnionShare serve a static folder:
//! - `/` and `/<folder>/`: the folder's `index.html` when it has one (a file), else the
//!   folder's listing (the sdk's, in the share mode's look), 1,000 names a page.
//! - `/<folder>` (no trailing slash): `301` to `/<folder>/`, so that the page's relative
//!   links resolve inside the folder.
//! - `/<file>`: the file, with its Content-Type from its extension, a strong `ETag`, `Range`,
//!   `If-Range`, `If-Match` and `If-None-Match` (the sdk's, as share); `/<file>/` is `404`.
//! - A path that tries to leave the tree (`..`, encoded or not, `%2f`, NUL...) is `400`; a
//!   name the tree does not hold (symbolic links included: they are not in it) is `404`; a
//!   file that changed after the start is `410`. Any other method is `405`.

use std::sync::Arc;

use futures::StreamExt as _;
use onionhost_sdk::axum::body::Body;
use onionhost_sdk::axum::extract::State;
use onionhost_sdk::axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use onionhost_sdk::axum::response::{IntoResponse, Response};
use onionhost_sdk::files::{
    Kind, Listing, Lookup, NoLongerServed, ServedFile, bounds, file_etag, head_response, node_url,
    page_number, preconditions, range,
};

use crate::Website;

/// The file a folder is served as when it has one.
pub(crate) const INDEX: &str = "index.html";

/// The name of the threads that read files for visitors.
const THREAD: &str = "website-file";

/// How the site's listings and error pages look and link.
fn look(site: &Website) -> Listing<'_> {
    Listing {
        title: &site.config.title,
        footer: "Served through a Tor onion service with onionhost, which keeps no log of \
                 visits.",
        base: "",
        home: "/",
        home_label: "Home",
    }
}

/// Every request.
pub(crate) async fn serve(
    State(site): State<Arc<Website>>,
    method: Method,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    if method != Method::GET && method != Method::HEAD {
        let mut response = message(
            &site,
            StatusCode::METHOD_NOT_ALLOWED,
            "This site can only be read.",
        );
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    let path = uri.path();
    let raw = path.strip_prefix('/').unwrap_or(path);
    let found = if raw.is_empty() {
        Ok(0)
    } else {
        site.tree.resolve(raw)
    };
    let id = match found {
        Ok(id) => id,
        Err(Lookup::Refused) => {
            return message(
                &site,
                StatusCode::BAD_REQUEST,
                "That path is not allowed: it does not name a page of this site.",
            );
        }
        Err(Lookup::NotFound) => return not_found(&site),
    };
    let node = &site.tree.nodes[id];
    match &node.kind {
        Kind::Dir { .. } if !raw.is_empty() && !raw.ends_with('/') => redirect(&node_url("", node)),
        Kind::Dir { .. } => match site.tree.child(id, INDEX) {
            Some(index) if matches!(site.tree.nodes[index].kind, Kind::File(_)) => {
                send_file(&site, index, &method, &headers).await
            }
            _ => page(
                StatusCode::OK,
                look(&site)
                    .page(&site.tree, id, page_number(uri.query()), None)
                    .into_string(),
            ),
        },
        Kind::File(_) if raw.ends_with('/') => not_found(&site),
        Kind::File(_) => send_file(&site, id, &method, &headers).await,
    }
}

/// A file of the site: its headers, then (for `GET`) its bytes, read on a thread of its own.
async fn send_file(
    site: &Arc<Website>,
    id: usize,
    method: &Method,
    headers: &HeaderMap,
) -> Response {
    let node = &site.tree.nodes[id];
    let Kind::File(file) = &node.kind else {
        return not_found(site);
    };
    let len = file.size;
    let etag = file_etag(node, len);
    if let Some(refused) = preconditions(headers, &etag) {
        return refused;
    }
    let decision = range::decide(headers, len, &etag);
    let mut response = match head_response(decision, len, &etag, content_type(&node.name)) {
        Ok(response) => response,
        Err(refused) => return *refused,
    };
    if *method == Method::HEAD {
        return response;
    }
    let Ok(permit) = Arc::clone(&site.downloads).try_acquire_owned() else {
        return busy(
            site,
            "Too many files are being sent; try again in a minute.",
        );
    };
    let opened = {
        let site = Arc::clone(site);
        tokio::task::spawn_blocking(move || ServedFile::open(&site.tree, id)).await
    };
    let opened = match opened {
        Ok(Ok(opened)) => opened,
        Ok(Err(err)) => {
            site.report_gone(&err);
            return match NoLongerServed::of(&err) {
                Some(gone) => message(site, StatusCode::GONE, gone.why.visitor_message()),
                None => {
                    tracing::debug!("a file of the site could not be opened: {}", err.kind());
                    unreadable(site)
                }
            };
        }
        Err(_) => return unreadable(site),
    };
    let (start, end) = bounds(decision, len);
    let failed = {
        let site = Arc::clone(site);
        move |err: &std::io::Error| site.report_gone(err)
    };
    let chunks = match onionhost_sdk::files::file_body(THREAD, opened, start, end, failed) {
        // The head waits for the first bytes, so that both leave in one write.
        Ok(chunks) => chunks.first_read().await,
        Err(err) => {
            tracing::warn!("cannot start sending a file: {err}");
            return busy(
                site,
                "The server is too busy to send this file; try again in a minute.",
            );
        }
    };
    // The permit is held as long as the body: until its last byte is sent or the visitor
    // goes away.
    let body = chunks.map(move |chunk| {
        let _held = &permit;
        chunk
    });
    *response.body_mut() = Body::from_stream(body);
    response
}

/// The Content-Type of a file, from its name's extension: `application/octet-stream` when
/// unknown (browsers then download it rather than guess: `nosniff` is always on), and text
/// marked as UTF-8, as OnionShare does.
pub(crate) fn content_type(name: &str) -> HeaderValue {
    let Some(essence) = mime_guess::from_path(name).first_raw() else {
        return HeaderValue::from_static("application/octet-stream");
    };
    let text = essence.starts_with("text/")
        || matches!(essence, "application/javascript" | "application/json");
    let value = if text {
        HeaderValue::from_str(&format!("{essence}; charset=utf-8"))
    } else {
        HeaderValue::from_str(essence)
    };
    value.unwrap_or(HeaderValue::from_static("application/octet-stream"))
}

fn redirect(location: &str) -> Response {
    let location = HeaderValue::from_str(location).unwrap_or(HeaderValue::from_static("/"));
    (
        StatusCode::MOVED_PERMANENTLY,
        [(header::LOCATION, location)],
    )
        .into_response()
}

fn not_found(site: &Website) -> Response {
    message(
        site,
        StatusCode::NOT_FOUND,
        "There is no such page on this site.",
    )
}

fn unreadable(site: &Website) -> Response {
    message(
        site,
        StatusCode::INTERNAL_SERVER_ERROR,
        "This file cannot be read right now.",
    )
}

fn busy(site: &Website, text: &str) -> Response {
    let mut response = message(site, StatusCode::SERVICE_UNAVAILABLE, text);
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
    response
}

fn message(site: &Website, status: StatusCode, text: &str) -> Response {
    page(status, look(site).message(text).into_string())
}

/// A page the host generates (a listing, an error), marked so that it carries the strict
/// default Content-Security-Policy, not the site's own (`csp` of the tab): the site's policy
/// is written for its files and may forbid the sdk's style sheet these pages load.
fn page(status: StatusCode, body: String) -> Response {
    onionhost_sdk::http::mark_generated(
        (
            status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            body,
        )
            .into_response(),
    )
}
