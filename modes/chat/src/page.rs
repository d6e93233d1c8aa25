//! The chat page and its static files, built into the crate: the CSP forbids inline script
//! and style, so the script and the style sheet are files of their own.

use std::sync::Arc;

use onionhost_sdk::axum::extract::State;
use onionhost_sdk::axum::http::{StatusCode, header};
use onionhost_sdk::axum::response::{IntoResponse, Response};

use crate::Chat;
use crate::html::escape;

const INDEX_HTML: &str = include_str!("../assets/index.html");
const CHAT_JS: &str = include_str!("../assets/chat.js");
const CHAT_CSS: &str = include_str!("../assets/chat.css");

const HTML: &str = "text/html; charset=utf-8";

/// `GET /`: the live page. Without JavaScript it offers the page of [`crate::nojs`].
pub(crate) async fn index(State(chat): State<Arc<Chat>>) -> Response {
    html(
        StatusCode::OK,
        INDEX_HTML.replace("{{title}}", &escape(&chat.config.title)),
    )
}

/// `GET /chat.js`.
pub(crate) async fn script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        CHAT_JS,
    )
        .into_response()
}

/// `GET /chat.css`.
pub(crate) async fn style() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        CHAT_CSS,
    )
        .into_response()
}

/// Anything else.
pub(crate) async fn not_found(State(chat): State<Arc<Chat>>) -> Response {
    message_page(
        &chat.config.title,
        StatusCode::NOT_FOUND,
        "There is nothing here.",
        "/",
        "Go to the chat",
    )
}

/// A complete HTML response.
pub(crate) fn html(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, HTML)], body).into_response()
}

/// The start of every page the server writes, up to and including `<body>`.
pub(crate) fn page_head(title: &str) -> String {
    let title = escape(title);
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title}</title>\n<link rel=\"stylesheet\" href=\"/chat.css\">\n</head>\n\
         <body class=\"nojs\">\n<header class=\"top\"><h1>{title}</h1></header>\n"
    )
}

/// A short page with one sentence and one link, for errors and dead ends.
pub(crate) fn message_page(
    title: &str,
    status: StatusCode,
    message: &str,
    link: &str,
    link_text: &str,
) -> Response {
    let head = page_head(title);
    let message = escape(message);
    let link = escape(link);
    let link_text = escape(link_text);
    html(
        status,
        format!(
            "{head}<section class=\"nojs-controls\">\n<p class=\"message\">{message}</p>\n\
             <p><a href=\"{link}\">{link_text}</a></p>\n</section>\n</body>\n</html>\n"
        ),
    )
}
