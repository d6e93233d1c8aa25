//! The pages and answers a visitor gets: the form, what was received, why an upload was
//! refused (HTML, or JSON for the page's script), and the static script (the CSP forbids
//! inline ones). Pages are maud templates on the sdk's shell, in the sdk's look, so every
//! splice is escaped without an `escape()` call that could be forgotten.
//!
//! What `receive.js` and the browser tests find on the form page (keep these stable):
//! `#upload-form` (a plain multipart form posting to `/upload`), `#files` (the file input)
//! inside `#drop` (where files may be dropped, with `#drop-hint` and `#chosen`, the chosen
//! files), `#text` (the message), `#send`; `#progress` (hidden until an upload starts) with
//! `#bar`, `#progress-text` and `#file-progress` (a bar per file, with two files or more);
//! `#result` (`role="status"`: the answer, `.note.success` or `.note.error`). A received
//! page has `#received` (`.note.success`), a refused one `.note.error` with `data-error`.

use std::sync::Arc;

use onionhost_sdk::axum::extract::State;
use onionhost_sdk::axum::http::{HeaderMap, StatusCode, header};
use onionhost_sdk::axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::Receive;
use crate::store::SavedFile;
use crate::upload::{FILES_FIELD, Limit, TEXT_FIELD, UploadError};
use maud::{Markup, html};
use onionhost_sdk::ByteSize;
use onionhost_sdk::page::{Asset, Shell};

/// The progress script.
pub(crate) static RECEIVE_JS: Asset = Asset::js(include_str!("../assets/receive.js"));
/// The sdk's size formatter, which the progress script uses, so that sizes read the same with
/// and without JavaScript.
pub(crate) static BYTES_JS: Asset = Asset::js(onionhost_sdk::size::BYTES_JS);

/// The form's heading, under the tab's title.
const SEND_FILES: &str = "Send files";

/// `GET /`: the upload form. It works as a plain form; the script adds progress.
pub(crate) async fn index(State(receive): State<Arc<Receive>>) -> Response {
    let config = &receive.config;
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
    let optional = if config.disable_files {
        ""
    } else {
        " (optional)"
    };
    let body = html! {
        form id="upload-form" method="post" action="/upload" enctype="multipart/form-data" {
            @if !config.disable_files {
                div class="field dropzone" id="drop" {
                    label for="files" { "Files" }
                    input id="files" type="file" name=(FILES_FIELD) multiple;
                    p id="drop-hint" class="hint" hidden { "Or drop files on this form." }
                    ul id="chosen" class="chosen" hidden {}
                }
            }
            @if !config.disable_text {
                div class="field" {
                    label for="text" { "Message" span class="muted" { (optional) } }
                    textarea id="text" name=(TEXT_FIELD) rows="6" {}
                }
            }
            div class="actions" { button type="submit" id="send" { "Send" } }
        }
        div id="progress" class="progress" hidden {
            progress id="bar" max="100" value="0" aria-label="Upload" {}
            p id="progress-text" class="hint" {}
            ul id="file-progress" class="file-progress" hidden {}
        }
        div id="result" role="status" aria-live="polite" {}
        p class="limits hint" { "Limits: " (limits.join("; ")) "." }
    };
    page(&receive, StatusCode::OK, SEND_FILES, body)
}

/// Anything else.
pub(crate) async fn not_found(State(receive): State<Arc<Receive>>) -> Response {
    let body = html! {
        p { "There is nothing here." }
        p { a href="/" { "Send files" } }
    };
    page(&receive, StatusCode::NOT_FOUND, "Not found", body)
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
pub(crate) fn received(receive: &Receive, json: bool, saved: &[SavedFile]) -> Response {
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
    let count = if files.len() == 1 {
        "1 file".to_owned()
    } else {
        format!("{} files", files.len())
    };
    let body = html! {
        div class="note success" id="received" {
            @if !files.is_empty() {
                p { (count) " received:" }
                ul class="files" {
                    @for file in &files {
                        li {
                            span class="name" { (file.name) }
                            " "
                            span class="size" { "(" (ByteSize(file.bytes)) ")" }
                        }
                    }
                }
            }
            @if messages > 0 {
                p { "Your message was received." }
            }
        }
        p { a class="button" href="/" { "Send more" } }
    };
    page(receive, StatusCode::OK, "Received", body)
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
    let body = html! {
        p class="note error" data-error=(err.code()) { (message) }
        p { a class="button secondary" href="/" { "Back" } }
    };
    page(receive, err.status(), "Not sent", body)
}

/// One or two sentences for the visitor: what went wrong and what they can do. Nothing
/// about the host beyond the limits it advertises on the form, and no config key (those are
/// the host's words: the visitor gets the limit's value; the key is the answer's `code`).
fn visitor_message(receive: &Receive, err: &UploadError) -> String {
    let config = &receive.config;
    let nothing = "Nothing was saved.";
    match err {
        UploadError::TooLarge(Limit::UploadSize) => format!(
            "The upload is too large: the limit is {} per upload. {nothing}",
            config.max_upload_size
        ),
        UploadError::TooLarge(Limit::TotalSize) => {
            format!("This service has received all it accepts in total. {nothing}")
        }
        UploadError::TooLarge(Limit::FreeSpace) => {
            format!("The receiving computer does not have enough free disk space. {nothing}")
        }
        UploadError::TooLarge(Limit::FileCount) => format!(
            "Too many files: the limit is {} per upload. {nothing}",
            config.max_files_per_upload
        ),
        UploadError::TooLarge(Limit::TextSize) => format!(
            "The message is too long: the limit is {}. {nothing}",
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
            "You already have {} uploads in progress. Please wait for one to finish.",
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
            "The upload was too slow and was abandoned: it must keep up at least {} a second. \
             {nothing}",
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

/// The privacy line under every page.
const FOOTER: &str = "What you send goes only to whoever runs this service, through a Tor onion \
                      service; onionhost keeps no log of who sent what.";

/// A whole page: the sdk's shell (its header holds the tab's title as `<h1>`) around a card
/// with the page's own `heading` and `main`, and the mode's scripts (`bytes.js` first:
/// `receive.js` formats sizes with it). The look is the sdk's style sheet's.
pub(crate) fn page(receive: &Receive, status: StatusCode, heading: &str, main: Markup) -> Response {
    let markup = Shell::new(&receive.config.title)
        .script("/bytes.js")
        .script("/receive.js")
        .footer(html! { p { (FOOTER) } })
        .render(html! {
            section class="card" {
                h2 { (heading) }
                (main)
            }
        });
    (status, markup).into_response()
}
