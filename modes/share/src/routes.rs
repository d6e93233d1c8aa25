//! The HTTP handlers: pages, single files, the zip, and the style sheet.
//!
//! `GET` and `HEAD` everywhere (axum answers `HEAD` with the `GET` handler and drops the
//! body; the download handlers notice `HEAD` themselves so that they open nothing and
//! report no transfer).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use onionhost_sdk::axum::body::Body;
use onionhost_sdk::axum::extract::State;
use onionhost_sdk::axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use onionhost_sdk::axum::response::{IntoResponse, Response};
use onionhost_sdk::page::Asset;

use crate::Share;
use crate::body::{Transfer, file_chunks, zip_chunks};
use crate::conditional::{self, Precondition};
use crate::html;
use crate::index::{Kind, Lookup, Node, percent_encode};
use crate::range::{self, Decision};
use crate::source::{Gone, NoLongerShared, SharedFile};
use crate::zip::Fnv;

/// `GET /share.css`: the pages' style sheet (the sdk's asset helper: strong ETag, `304`).
pub(crate) static STYLE: Asset = Asset::css(include_str!("../assets/share.css"));

/// `GET /`: the shared items, their sizes, and "download all".
pub(crate) async fn index(State(share): State<Arc<Share>>, uri: Uri) -> Response {
    page(StatusCode::OK, listing(&share, 0, uri.query()))
}

/// Anything else.
pub(crate) async fn not_found(State(share): State<Arc<Share>>) -> Response {
    message(&share, StatusCode::NOT_FOUND, "There is nothing here.")
}

/// `GET /files/<path>`: a file (download) or a folder (its listing).
pub(crate) async fn files(
    State(share): State<Arc<Share>>,
    method: Method,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let raw = uri.path().strip_prefix("/files/").unwrap_or_default();
    match share.index.resolve(raw) {
        Err(Lookup::Refused) => message(
            &share,
            StatusCode::BAD_REQUEST,
            "That path is not allowed: it does not name a shared file.",
        ),
        Err(Lookup::NotFound) => message(&share, StatusCode::NOT_FOUND, "No such shared file."),
        Ok(id) => match &share.index.nodes[id].kind {
            Kind::Dir { .. } => page(StatusCode::OK, listing(&share, id, uri.query())),
            Kind::File(_) => send_file(&share, id, &method, &headers).await,
        },
    }
}

/// `GET /download`: the zip of everything.
pub(crate) async fn download(
    State(share): State<Arc<Share>>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    let len = share.zip.len();
    let etag = share.zip.etag().to_owned();
    if let Some(refused) = preconditions(&headers, &etag) {
        return refused;
    }
    let decision = range::decide(&headers, len, &etag);
    let mut response = match head_response(decision, len, &etag, "application/zip", &share.zip_name)
    {
        Ok(response) => response,
        Err(refused) => return *refused,
    };
    if method == Method::HEAD {
        return response;
    }
    let permit = match admit(&share) {
        Ok(permit) => permit,
        Err(refused) => return *refused,
    };
    let (start, end) = bounds(decision, len);
    let label = share
        .config
        .show_file_names_in_console
        .then(|| share.zip_name.clone());
    let chunks = match zip_chunks(Arc::clone(&share), start, end) {
        Ok(chunks) => chunks,
        Err(err) => return busy(&share, &err),
    };
    let transfer = Transfer::start(
        Arc::clone(&share),
        chunks,
        end - start,
        decision == Decision::Full,
        label,
        permit,
    );
    *response.body_mut() = Body::from_stream(transfer);
    response
}

async fn send_file(
    share: &Arc<Share>,
    id: usize,
    method: &Method,
    headers: &HeaderMap,
) -> Response {
    let node = &share.index.nodes[id];
    let Kind::File(file) = &node.kind else {
        return message(share, StatusCode::NOT_FOUND, "No such shared file.");
    };
    let len = file.size;
    let etag = file_etag(node, len);
    if let Some(refused) = preconditions(headers, &etag) {
        return refused;
    }
    let decision = range::decide(headers, len, &etag);
    let mut response =
        match head_response(decision, len, &etag, "application/octet-stream", &node.name) {
            Ok(response) => response,
            Err(refused) => return *refused,
        };
    if method == Method::HEAD {
        return response;
    }
    let permit = match admit(share) {
        Ok(permit) => permit,
        Err(refused) => return *refused,
    };
    let opened = {
        let share = Arc::clone(share);
        tokio::task::spawn_blocking(move || SharedFile::open(&share.index, id)).await
    };
    let opened = match opened {
        Ok(Ok(opened)) => opened,
        Ok(Err(err)) => {
            share.report_gone(&err);
            let Some(gone) = NoLongerShared::of(&err) else {
                tracing::debug!("a shared file could not be opened: {}", err.kind());
                return message(
                    share,
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "This file cannot be read right now.",
                );
            };
            let text = match gone.why {
                Gone::Changed => {
                    "This file changed after sharing started, so it is no longer shared."
                }
                Gone::Deleted => {
                    "This file was deleted after sharing started, so it is no longer shared."
                }
                Gone::Unreadable => "This file can no longer be read, so it is no longer shared.",
            };
            return message(share, StatusCode::GONE, text);
        }
        Err(_) => {
            return message(
                share,
                StatusCode::INTERNAL_SERVER_ERROR,
                "This file cannot be read right now.",
            );
        }
    };
    let (start, end) = bounds(decision, len);
    let chunks = match file_chunks(Arc::clone(share), opened, start, end) {
        Ok(chunks) => chunks,
        Err(err) => return busy(share, &err),
    };
    let label = share
        .config
        .show_file_names_in_console
        .then(|| node.rel.clone());
    let transfer = Transfer::start(
        Arc::clone(share),
        chunks,
        end - start,
        decision == Decision::Full,
        label,
        permit,
    );
    *response.body_mut() = Body::from_stream(transfer);
    response
}

/// A file's strong ETag: from its path in the share, size, modification time and kind.
fn file_etag(node: &Node, len: u64) -> String {
    let mut hash = Fnv::new();
    hash.write(node.rel.as_bytes());
    hash.write(&[0]);
    hash.write(&len.to_le_bytes());
    hash.write(&node.mtime.0.to_le_bytes());
    hash.write(&node.mtime.1.to_le_bytes());
    format!("\"file-{:016x}-{len:x}\"", hash.finish())
}

/// The `304` or `412` that `If-None-Match` / `If-Match` call for, if any (before `Range`).
fn preconditions(headers: &HeaderMap, etag: &str) -> Option<Response> {
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
        onionhost_sdk::http::plain_error(
            status,
            "This content has changed since you got its ETag; download it again.",
        )
    };
    if let Ok(value) = HeaderValue::from_str(etag) {
        response.headers_mut().insert(header::ETAG, value);
    }
    Some(response)
}

/// The bytes a decision sends.
fn bounds(decision: Decision, len: u64) -> (u64, u64) {
    match decision {
        Decision::Partial { start, end } => (start, end),
        Decision::Full | Decision::Unsatisfiable => (0, len),
    }
}

/// The status and headers of a download (the body is added by the caller); `Err` is the
/// `416` to send instead.
fn head_response(
    decision: Decision,
    len: u64,
    etag: &str,
    content_type: &'static str,
    file_name: &str,
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
            let mut response = onionhost_sdk::http::plain_error(
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
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    headers.insert(header::ETAG, etag);
    if let Some(range) = content_range.and_then(|r| HeaderValue::from_str(&r).ok()) {
        headers.insert(header::CONTENT_RANGE, range);
    }
    if let Ok(value) = HeaderValue::from_str(&content_disposition(file_name)) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}

/// `attachment` with an ASCII fallback name and the exact name in `filename*` (RFC 6266).
pub(crate) fn content_disposition(name: &str) -> String {
    let fallback: String = name
        .chars()
        .map(|c| {
            if (c.is_ascii_graphic() || c == ' ') && !matches!(c, '"' | '\\' | '%' | ';') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let fallback = if fallback.trim().is_empty() {
        "download".to_owned()
    } else {
        fallback
    };
    format!(
        "attachment; filename=\"{fallback}\"; filename*=UTF-8''{}",
        percent_encode(name)
    )
}

/// Whether a new download may start: not after the share stopped, and not beyond the limit.
fn admit(share: &Arc<Share>) -> Result<tokio::sync::OwnedSemaphorePermit, Box<Response>> {
    if share.ctx.is_shutting_down() || share.stop_requested.load(Ordering::SeqCst) {
        return Err(Box::new(message(
            share,
            StatusCode::SERVICE_UNAVAILABLE,
            "This share has stopped.",
        )));
    }
    Arc::clone(&share.downloads)
        .try_acquire_owned()
        .map_err(|_| {
            let mut response = message(
                share,
                StatusCode::SERVICE_UNAVAILABLE,
                "Too many downloads are running; try again in a minute.",
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
            Box::new(response)
        })
}

/// The answer when the system cannot start one more download (no thread to be had).
fn busy(share: &Share, err: &std::io::Error) -> Response {
    tracing::warn!("cannot start a download: {err}");
    let mut response = message(
        share,
        StatusCode::SERVICE_UNAVAILABLE,
        "The server is too busy to start this download; try again in a minute.",
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
    response
}

fn listing(share: &Share, dir: usize, query: Option<&str>) -> String {
    html::listing(
        &share.config.title,
        &share.index,
        dir,
        &share.zip_name,
        share.zip.len(),
        html::page_number(query),
    )
}

fn message(share: &Share, status: StatusCode, text: &str) -> Response {
    page(status, html::message(&share.config.title, text))
}

fn page(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response()
}
