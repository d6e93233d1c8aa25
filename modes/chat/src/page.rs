//! The chat's pages and static files. Pages are maud templates in the sdk's page shell: the
//! templates escape every value put in them, so a visitor's name or text (or the room's
//! title) is always shown as text, never read as markup. The CSP forbids inline script and
//! style, so the script and the style sheet are files of their own, served as the sdk's
//! assets. The look is the sdk's style sheet; `chat.css` adds only the room's layout.
//!
//! What `chat.js` and the browser tests find on the live page (keep these stable):
//! `#app` (the `<main>`, hidden until the script runs), `#status` (a notice: connecting,
//! disconnected, stopped), `#log` (the message list, `role="log"`, each line an `<li>`:
//! `.msg` with `.from` and `.text`, `.notice`, `.error`), `#send-form` with `#text` and
//! `#send-button`, `#enter-hint`, `#people` with `#count`, `#members` and `#people-stale`,
//! `#rename-form` with `#name` and `#rename-button`, `#nojs-link` in the footer.

use std::sync::Arc;

use onionhost_sdk::axum::extract::State;
use onionhost_sdk::axum::http::StatusCode;
use onionhost_sdk::axum::response::{IntoResponse, Response};
use onionhost_sdk::maud::{Markup, html};
use onionhost_sdk::page::{Asset, Shell};

use crate::Chat;

/// `GET /chat.js`: the live page's script.
pub(crate) static SCRIPT: Asset = Asset::js(include_str!("../assets/chat.js"));

/// `GET /chat.css`: every page's style sheet.
pub(crate) static STYLE: Asset = Asset::css(include_str!("../assets/chat.css"));

/// `GET /`: the live page. Without JavaScript it offers the page of [`crate::nojs`].
pub(crate) async fn index(State(chat): State<Arc<Chat>>) -> Response {
    index_page(&chat.config.title).into_response()
}

/// The privacy line under every page.
pub(crate) const PRIVACY: &str = "Nothing said here is stored: newcomers see only what is said \
                                  after they arrive.";

/// The live page: `chat.js` shows and fills it in once it has joined.
fn index_page(title: &str) -> Markup {
    Shell::new(title)
        .stylesheet("/chat.css")
        .script("/chat.js")
        .body_class("chat-page")
        .before_main(html! {
            noscript {
                div.site-main {
                    section.card.nojs-join {
                        p {
                            "JavaScript is off. You can still chat: the next page shows new \
                             messages as they are said, and plain forms send yours."
                        }
                        (join_form("nojs-name"))
                    }
                }
            }
        })
        .main_id("app")
        .main_class("wide app")
        .main_hidden()
        .footer(html! {
            p {
                (PRIVACY)
                // Shown by the script: without JavaScript the page already is the chat
                // without JavaScript.
                span #nojs-link hidden { " " a href="/nojs" { "Chat without JavaScript" } }
            }
        })
        .render(html! {
            p #status .note role="status" hidden {}
            div.chat {
                section.room aria-label="Messages" {
                    ol #log .log role="log" aria-live="polite" {}
                    form #send-form .send autocomplete="off" {
                        label for="text" .visually-hidden { "Message" }
                        textarea #text rows="2" disabled placeholder="Say something"
                            aria-describedby="enter-hint" {}
                        button type="submit" #send-button disabled { "Send" }
                    }
                    p #enter-hint .hint .enter-hint {
                        "Enter sends, Shift+Enter starts a new line."
                    }
                }
                aside #people .people aria-labelledby="people-heading" {
                    h2 #people-heading { "Here now (" span #count { "0" } ")" }
                    p #people-stale .hint hidden {
                        "Not connected: this list may be out of date."
                    }
                    ul #members .members {}
                    form #rename-form .rename autocomplete="off" {
                        label for="name" { "Your name" }
                        div.actions {
                            input #name maxlength="64" disabled;
                            button.secondary type="submit" #rename-button disabled { "Rename" }
                        }
                    }
                }
            }
        })
}

/// The form that joins without JavaScript, with its name field's id.
pub(crate) fn join_form(name_id: &str) -> Markup {
    html! {
        form method="post" action="/nojs/join" {
            div.field {
                label for=(name_id) { "Name" }
                input id=(name_id) name="name" maxlength="64" autocomplete="off"
                    aria-describedby={ (name_id) "-hint" };
                p.hint id={ (name_id) "-hint" } { "Leave it empty for a random one." }
            }
            div.actions { button type="submit" { "Join the chat" } }
        }
    }
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

/// Every page without JavaScript: the room's title at the top, then `main`, then the
/// privacy line.
pub(crate) fn shell(title: &str, main: Markup) -> Markup {
    Shell::new(title)
        .stylesheet("/chat.css")
        .body_class("nojs")
        .main_class("wide")
        .footer(html! { p { (PRIVACY) } })
        .render(main)
}

/// A short page with one sentence and one link, for errors and dead ends.
pub(crate) fn message_page(
    title: &str,
    status: StatusCode,
    message: &str,
    link: &str,
    link_text: &str,
) -> Response {
    let page = shell(
        title,
        html! {
            p.note.error.message { (message) }
            p { a.button href=(link) { (link_text) } }
        },
    );
    (status, page).into_response()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use onionhost_sdk::axum::body::Body;
    use onionhost_sdk::axum::http::{Request, StatusCode, header};
    use tower::ServiceExt;

    use crate::test_support::{get, tab, text};

    /// The script and the style sheet are the sdk's assets: their own content type, a strong
    /// ETag, and `304 Not Modified` for a browser that has the current one.
    #[tokio::test]
    async fn the_script_and_style_sheet_are_served_with_an_etag() {
        let tab = tab("");
        for (path, content_type, start) in [
            ("/chat.js", "text/javascript; charset=utf-8", "//"),
            ("/chat.css", "text/css; charset=utf-8", "/*"),
        ] {
            let response = get(&tab.router, path).await;
            assert_eq!(response.status(), StatusCode::OK, "{path}");
            assert_eq!(response.headers()[header::CONTENT_TYPE], content_type);
            let etag = response.headers()[header::ETAG].clone();
            assert!(text(response).await.starts_with(start), "{path}");
            let request = Request::get(path)
                .header(header::IF_NONE_MATCH, etag)
                .body(Body::empty())
                .unwrap();
            let response = tab.router.clone().oneshot(request).await.unwrap();
            assert_eq!(response.status(), StatusCode::NOT_MODIFIED, "{path}");
            assert!(text(response).await.is_empty(), "{path}");
        }
    }

    /// The sdk's shared files are the chat's too: no browser logs a `404` for its icon.
    #[tokio::test]
    async fn the_favicon_and_the_logo_are_served() {
        let tab = tab("");
        for (path, asset) in [
            ("/favicon.ico", &onionhost_sdk::page::FAVICON),
            (onionhost_sdk::page::LOGO_PATH, &onionhost_sdk::page::LOGO),
        ] {
            let response = get(&tab.router, path).await;
            assert_eq!(response.status(), StatusCode::OK, "{path}");
            let body = response.into_body();
            let bytes = http_body_util::BodyExt::collect(body).await.unwrap();
            assert_eq!(bytes.to_bytes(), asset.bytes(), "{path}");
        }
    }

    /// The live page keeps its parts where `chat.js` and `chat.css` look for them.
    #[tokio::test]
    async fn the_live_page_has_what_its_script_fills_in() {
        let tab = tab("");
        let page = text(get(&tab.router, "/").await).await;
        for part in [
            "<script src=\"/chat.js\" defer></script>",
            "<link rel=\"stylesheet\" href=\"/chat.css\">",
            "<h1>onionhost chat</h1></header>",
            "<main id=\"app\" class=\"site-main wide app\" hidden>",
            "<p class=\"note\" id=\"status\" role=\"status\" hidden>",
            "<ol class=\"log\" id=\"log\" role=\"log\" aria-live=\"polite\">",
            "id=\"send-form\"",
            "id=\"enter-hint\"",
            "id=\"members\"",
            "id=\"people-stale\"",
            "id=\"rename-form\"",
            "<footer class=\"site-footer\">",
            "<span id=\"nojs-link\" hidden>",
            // Regression (issue 12, seen in a desktop browser): the body had the class of the
            // room's grid (`chat`), so the whole page became that two-column grid.
            "<body class=\"chat-page\">",
            "<div class=\"chat\">",
        ] {
            assert!(page.contains(part), "no {part:?} in {page}");
        }
    }
}
