//! The HTTP handlers: pages, single files and the zip.
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

use onionhost_sdk::files::{
    Decision, Kind, Lookup, NoLongerServed, ServedFile, bounds, file_etag, head_response,
    preconditions, range,
};
use onionhost_sdk::http::percent_encode_segment;

use crate::Share;
use crate::body::{Transfer, file_chunks, zip_chunks};
use crate::html;

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
    let mut response = match attachment(decision, len, &etag, "application/zip", &share.zip_name) {
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
        // The head waits for the first bytes, so that both leave in one write.
        Ok(chunks) => chunks.first_read().await,
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
        match attachment(decision, len, &etag, "application/octet-stream", &node.name) {
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
        tokio::task::spawn_blocking(move || ServedFile::open(&share.index, id)).await
    };
    let opened = match opened {
        Ok(Ok(opened)) => opened,
        Ok(Err(err)) => {
            share.report_gone(&err);
            let Some(gone) = NoLongerServed::of(&err) else {
                tracing::debug!("a shared file could not be opened: {}", err.kind());
                return message(
                    share,
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "This file cannot be read right now.",
                );
            };
            return message(share, StatusCode::GONE, gone.why.visitor_message());
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
        // The head waits for the first bytes, so that both leave in one write.
        Ok(chunks) => chunks.first_read().await,
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

/// The status and headers of a download (the body is added by the caller): the sdk's, with
/// `Content-Disposition: attachment`; `Err` is the `416` to send instead.
fn attachment(
    decision: Decision,
    len: u64,
    etag: &str,
    content_type: &'static str,
    file_name: &str,
) -> Result<Response, Box<Response>> {
    let mut response = head_response(decision, len, etag, HeaderValue::from_static(content_type))?;
    if let Ok(value) = HeaderValue::from_str(&content_disposition(file_name)) {
        response
            .headers_mut()
            .insert(header::CONTENT_DISPOSITION, value);
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
        percent_encode_segment(name)
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
        onionhost_sdk::files::page_number(query),
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
