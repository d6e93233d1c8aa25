//! The pages and answers a visitor gets: the form, what was received, why an upload was
//! refused (HTML, or JSON for the page's script), and the static script and style sheet (the
//! CSP forbids inline ones).

use std::fmt::Write as _;
use std::sync::Arc;

use onionhost_sdk::axum::extract::State;
use onionhost_sdk::axum::http::{HeaderMap, StatusCode, header};
use onionhost_sdk::axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::Receive;
use crate::store::SavedFile;
use crate::upload::{FILES_FIELD, Limit, TEXT_FIELD, UploadError};
use onionhost_sdk::ByteSize;

const RECEIVE_JS: &str = include_str!("../assets/receive.js");
const RECEIVE_CSS: &str = include_str!("../assets/receive.css");

const TITLE: &str = "Send files";

/// `GET /`: the upload form. It works as a plain form; the script adds progress.
pub(crate) async fn index(State(receive): State<Arc<Receive>>) -> Response {
    let config = &receive.config;
    let mut body = page_head(TITLE);
    body.push_str(
        "<form id=\"upload-form\" method=\"post\" action=\"/upload\" \
         enctype=\"multipart/form-data\">\n",
    );
    if !config.disable_files {
        let _ = write!(
            body,
            "<p><label for=\"files\">Files</label>\n\
             <input id=\"files\" type=\"file\" name=\"{FILES_FIELD}\" multiple></p>\n"
        );
    }
    if !config.disable_text {
        let optional = if config.disable_files {
            ""
        } else {
            " (optional)"
        };
        let _ = write!(
            body,
            "<p><label for=\"text\">Message{optional}</label>\n\
             <textarea id=\"text\" name=\"{TEXT_FIELD}\" rows=\"6\"></textarea></p>\n"
        );
    }
    body.push_str(
        "<p><button type=\"submit\" id=\"send\">Send</button></p>\n</form>\n\
         <div id=\"progress\" class=\"progress\" hidden>\
         <progress id=\"bar\" max=\"100\" value=\"0\"></progress> \
         <span id=\"progress-text\"></span></div>\n\
         <div id=\"result\" role=\"status\" aria-live=\"polite\"></div>\n",
    );
    let mut limits = Vec::new();
    if !config.disable_files {
        limits.push(format!(
            "at most {} files and {} per upload",
            config.max_files_per_upload, config.max_upload_size
        ));
    }
    if !config.disable_text {
        limits.push(format!("messages up to {}", config.max_text_size));
    }
    let _ = writeln!(
        body,
        "<p class=\"limits\">Limits: {}.</p>",
        escape(&limits.join("; "))
    );
    body.push_str(PAGE_END);
    html(StatusCode::OK, body)
}

/// `GET /receive.js`.
pub(crate) async fn script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        RECEIVE_JS,
    )
        .into_response()
}

/// `GET /bytes.js`: the sdk's size formatter for the script, so that sizes read the same with
/// and without JavaScript.
pub(crate) async fn bytes_script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        onionhost_sdk::size::BYTES_JS,
    )
        .into_response()
}

/// `GET /receive.css`.
pub(crate) async fn style() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        RECEIVE_CSS,
    )
        .into_response()
}

/// Anything else.
pub(crate) async fn not_found() -> Response {
    let mut body = page_head("Not found");
    body.push_str("<p>There is nothing here.</p>\n<p><a href=\"/\">Send files</a></p>\n");
    body.push_str(PAGE_END);
    html(StatusCode::NOT_FOUND, body)
}

/// Whether the request asks for JSON (the page's script does).
pub(crate) fn wants_json(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .any(|value| value.contains("application/json"))
}

/// The answer to a complete upload: what was saved, under which names.
pub(crate) fn received(_receive: &Receive, json: bool, saved: &[SavedFile]) -> Response {
    let files: Vec<&SavedFile> = saved.iter().filter(|s| !s.is_message).collect();
    let messages = saved.len() - files.len();
    if json {
        let files: Vec<_> = files
            .iter()
            .map(|f| json!({ "name": f.name, "size": f.bytes }))
            .collect();
        return json_response(
            StatusCode::OK,
            &json!({ "ok": true, "files": files, "message": messages > 0 }),
        );
    }
    let mut body = page_head("Received");
    if !files.is_empty() {
        let _ = writeln!(
            body,
            "<p>{} received:</p>\n<ul class=\"files\">",
            if files.len() == 1 {
                "1 file".to_owned()
            } else {
                format!("{} files", files.len())
            }
        );
        for file in &files {
            let _ = writeln!(
                body,
                "<li><span class=\"name\">{}</span> <span class=\"size\">({})</span></li>",
                escape(&file.name),
                ByteSize(file.bytes)
            );
        }
        body.push_str("</ul>\n");
    }
    if messages > 0 {
        body.push_str("<p>Your message was received.</p>\n");
    }
    body.push_str("<p><a href=\"/\">Send more</a></p>\n");
    body.push_str(PAGE_END);
    html(StatusCode::OK, body)
}

/// The answer to a refused or failed upload: which limit, or what went wrong.
pub(crate) fn refused(receive: &Receive, json: bool, err: &UploadError) -> Response {
    let message = visitor_message(receive, err);
    if json {
        return json_response(
            err.status(),
            &json!({ "ok": false, "error": err.code(), "message": message }),
        );
    }
    let mut body = page_head("Not sent");
    let _ = write!(
        body,
        "<p class=\"error\" data-error=\"{}\">{}</p>\n<p><a href=\"/\">Back</a></p>\n",
        err.code(),
        escape(&message)
    );
    body.push_str(PAGE_END);
    html(err.status(), body)
}

/// One or two sentences for the visitor: what went wrong and what they can do. Nothing
/// about the host beyond the limits it advertises on the form.
fn visitor_message(receive: &Receive, err: &UploadError) -> String {
    let config = &receive.config;
    let nothing = "Nothing was saved.";
    match err {
        UploadError::TooLarge(Limit::UploadSize) => format!(
            "The upload is too large: the limit is {} per upload (max_upload_size). {nothing}",
            config.max_upload_size
        ),
        UploadError::TooLarge(Limit::TotalSize) => {
            format!("This service has received all it accepts in total (max_total_size). {nothing}")
        }
        UploadError::TooLarge(Limit::FreeSpace) => format!(
            "The receiving computer does not have enough free disk space (min_free_space). \
             {nothing}"
        ),
        UploadError::TooLarge(Limit::FileCount) => format!(
            "Too many files: the limit is {} per upload (max_files_per_upload). {nothing}",
            config.max_files_per_upload
        ),
        UploadError::TooLarge(Limit::TextSize) => format!(
            "The message is too long: the limit is {} (max_text_size). {nothing}",
            config.max_text_size
        ),
        UploadError::FilesDisabled => {
            format!("This service does not accept files, only text messages. {nothing}")
        }
        UploadError::TextDisabled => {
            format!("This service does not accept text messages, only files. {nothing}")
        }
        UploadError::NotMultipart | UploadError::Malformed(_) => {
            format!("The upload could not be read (it was malformed or cut off). {nothing}")
        }
        UploadError::Empty => "Choose at least one file or write a message.".to_owned(),
        UploadError::Busy => {
            "Too many uploads are in progress. Please try again in a moment.".to_owned()
        }
        UploadError::VisitorBusy => format!(
            "You already have {} uploads in progress (max_concurrent_uploads_per_visitor). \
             Please wait for one to finish.",
            config.max_concurrent_uploads_per_visitor
        ),
        UploadError::RateLimited => {
            "This service has received many uploads in the last minute. Please try again in a \
             minute."
                .to_owned()
        }
        UploadError::IdleTimeout => {
            format!("The upload stalled and was abandoned. {nothing}")
        }
        UploadError::TooSlow => format!(
            "The upload was too slow and was abandoned: it must keep up at least {} a second \
             (min_upload_rate). {nothing}",
            config.min_upload_rate
        ),
        UploadError::Io { .. } => {
            format!("The upload could not be saved because of an error on the server. {nothing}")
        }
    }
}

fn json_response(status: StatusCode, value: &serde_json::Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        value.to_string(),
    )
        .into_response()
}

fn html(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response()
}

/// The start of every page, up to the page's own content.
fn page_head(title: &str) -> String {
    let title = escape(title);
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title}</title>\n<link rel=\"stylesheet\" href=\"/receive.css\">\n\
         <script src=\"/bytes.js\" defer></script>\n\
         <script src=\"/receive.js\" defer></script>\n</head>\n<body>\n<main>\n\
         <h1>{title}</h1>\n"
    )
}

const PAGE_END: &str = "</main>\n</body>\n</html>\n";

/// `text` made safe between tags and inside quoted attributes.
pub(crate) use onionhost_sdk::html::escape;
