//! The pastebin's HTTP routes: the form, creating a paste, showing it.

use std::sync::Arc;
use std::time::Duration;

use onionhost_sdk::axum::Form;
use onionhost_sdk::axum::extract::rejection::FormRejection;
use onionhost_sdk::axum::extract::{Path, State};
use onionhost_sdk::axum::http::{StatusCode, header};
use onionhost_sdk::axum::response::{IntoResponse, Redirect, Response};
// `html!` needs `maud` as a dependency of this crate (it expands to `extern crate maud`):
// the same version as the sdk's, so that its `Markup` is the sdk's.
use maud::{Markup, html};
use onionhost_sdk::page::{Asset, Shell};
use serde::Deserialize;

use crate::store::{self, StoreError};

/// The script of the live viewer count (no inline script: the host's Content-Security-Policy
/// forbids it), served with an ETag by the sdk.
pub(crate) static LIVE_JS: Asset = Asset::js(include_str!("../assets/live.js"));

/// The form of `POST /paste`.
#[derive(Deserialize)]
pub(crate) struct NewPaste {
    text: String,
    /// Minutes to keep the paste; one of the form's choices. Missing: the longest.
    keep: Option<u64>,
    /// `on` when the paste is to be burned after reading.
    burn: Option<String>,
}

/// The privacy line under every page.
const FOOTER: &str = "Pastes are kept in memory only: each is gone when it expires, is burned, \
                      or the host stops.";

/// A whole page in the sdk's shell (and its look: the sdk's style sheet): every `(splice)` in
/// `body` is escaped by the template, so a paste cannot become markup.
fn page(title: &str, script: bool, body: Markup) -> Markup {
    let shell = Shell::new(title).footer(html! { p { (FOOTER) } });
    let shell = if script {
        shell.script("/live.js")
    } else {
        shell
    };
    shell.render(body)
}

/// An error as a page in the shell, like the built-in modes' (never plain text): what went
/// wrong, as a notice, and the way back to the form.
pub(crate) fn error_page(title: &str, status: StatusCode, message: &str) -> Response {
    let body = html! {
        p.note.error.message #error { (message) }
        p { a.button href="/" { "Make a paste" } }
    };
    (status, page(title, false, body)).into_response()
}

/// Anything else: a page in the shell too.
pub(crate) async fn fallback(State(state): State<Arc<crate::State>>) -> Response {
    error_page(
        &state.config.title,
        StatusCode::NOT_FOUND,
        "There is nothing here.",
    )
}

/// How a number of minutes reads on the form.
fn duration_label(minutes: u64) -> String {
    match minutes {
        1 => "1 minute".to_owned(),
        m if m % (24 * 60) == 0 && m / (24 * 60) == 1 => "1 day".to_owned(),
        m if m % 60 == 0 && m / 60 == 1 => "1 hour".to_owned(),
        m if m % 60 == 0 => format!("{} hours", m / 60),
        m => format!("{m} minutes"),
    }
}

/// `GET /`: the form.
pub(crate) async fn index(State(state): State<Arc<crate::State>>) -> Markup {
    let config = &state.config;
    let max = config.max_paste_bytes;
    page(
        &config.title,
        false,
        html! {
            form.card method="post" action="/paste" {
                div.field {
                    label for="text" { "Paste" }
                    textarea #text name="text" rows="16" maxlength=(max.0) required {}
                }
                div.field {
                    label for="keep" { "Delete after" }
                    " "
                    select #keep name="keep" {
                        @for minutes in config.expiry_choices() {
                            option value=(minutes) selected[minutes == config.keep_minutes] {
                                (duration_label(minutes))
                            }
                        }
                    }
                }
                div.field {
                    label.check {
                        input type="checkbox" name="burn";
                        " Burn after reading (the first person to open it is the only one to \
                         see it)"
                    }
                }
                div.actions { button type="submit" { "Paste" } }
            }
            p.hint {
                "Pastes are kept in memory only, up to " (max) " each, "
                (state.store.len()) " of " (config.max_pastes)
                " stored now. Anyone with a paste's link can read it."
            }
        },
    )
}

/// `POST /paste`: stores the text and sends the visitor to its page.
pub(crate) async fn create(
    State(state): State<Arc<crate::State>>,
    form: Result<Form<NewPaste>, FormRejection>,
) -> Response {
    let config = &state.config;
    let title = &config.title;
    let form = match form {
        Ok(Form(form)) => form,
        Err(FormRejection::BytesRejection(_)) => {
            return error_page(
                title,
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("The paste is too long: at most {}.", config.max_paste_bytes),
            );
        }
        Err(_) => {
            return error_page(
                title,
                StatusCode::BAD_REQUEST,
                "The form could not be read: send it from the pastebin's page.",
            );
        }
    };
    if form.text.is_empty() {
        return error_page(title, StatusCode::BAD_REQUEST, "The paste is empty.");
    }
    if form.text.len() as u64 > config.max_paste_bytes.0 {
        return error_page(
            title,
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("The paste is too long: at most {}.", config.max_paste_bytes),
        );
    }
    let keep = form.keep.unwrap_or(config.keep_minutes);
    if !config.expiry_choices().contains(&keep) {
        return error_page(
            title,
            StatusCode::BAD_REQUEST,
            "Choose how long to keep the paste from the form's list.",
        );
    }
    let paste = store::NewPaste {
        text: form.text,
        keep: Duration::from_secs(keep * 60),
        burn_after_reading: form.burn.is_some_and(|burn| burn == "on"),
    };
    match state.store.add(paste) {
        Ok(id) => Redirect::to(&format!("/p/{id}")).into_response(),
        Err(StoreError::Full) => error_page(
            title,
            StatusCode::SERVICE_UNAVAILABLE,
            "The pastebin is full. Try again when older pastes have expired.",
        ),
        Err(StoreError::TooFast(limited)) => error_page(
            title,
            StatusCode::TOO_MANY_REQUESTS,
            &format!(
                "Too many pastes were made in the last minute. Try again in {} s.",
                limited.retry_after.as_secs().max(1)
            ),
        ),
    }
}

/// `GET /p/{id}`: the paste with its live viewer count; for a paste to burn, a button that
/// reveals (and destroys) it, so that a link preview or a prefetch does not burn it.
pub(crate) async fn show(
    State(state): State<Arc<crate::State>>,
    Path(id): Path<String>,
) -> Response {
    let Some(paste) = state.store.get(&id) else {
        return not_found(&state);
    };
    if paste.burn_after_reading {
        return page(
            &state.config.title,
            false,
            html! {
                p {
                    "This paste will be destroyed once you read it: nobody, you included, can \
                     open it again."
                }
                form.actions method="post" action={ "/p/" (id) "/read" } {
                    button type="submit" { "Read and destroy" }
                }
            },
        )
        .into_response();
    }
    page(
        &state.config.title,
        true,
        html! {
            pre #paste { (paste.text) }
            p.hint {
                a href={ "/p/" (id) "/raw" } { "raw" }
                " · expires in " (duration_label(minutes_left(&paste))) " · "
                span #viewers data-live={ "/p/" (id) "/live" } {}
            }
        },
    )
    .into_response()
}

/// `POST /p/{id}/read`: reveals a paste to burn, and deletes it.
pub(crate) async fn read(
    State(state): State<Arc<crate::State>>,
    Path(id): Path<String>,
) -> Response {
    match state.store.get(&id) {
        Some(paste) if !paste.burn_after_reading => {
            return Redirect::to(&format!("/p/{id}")).into_response();
        }
        Some(_) => {}
        None => return not_found(&state),
    }
    let Some(paste) = state.store.take(&id) else {
        return not_found(&state);
    };
    page(
        &state.config.title,
        false,
        html! {
            pre #paste { (paste.text) }
            p.note { "This paste is now destroyed: copy it before you leave this page." }
        },
    )
    .into_response()
}

/// `GET /p/{id}/raw`: the paste as plain text (not for a paste to burn: open its page).
pub(crate) async fn raw(
    State(state): State<Arc<crate::State>>,
    Path(id): Path<String>,
) -> Response {
    match state.store.get(&id) {
        Some(paste) if !paste.burn_after_reading => (
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            paste.text.to_string(),
        )
            .into_response(),
        Some(_) => error_page(
            &state.config.title,
            StatusCode::NOT_FOUND,
            "This paste is burned after reading: open its page to read it.",
        ),
        None => not_found(&state),
    }
}

/// Whole minutes until `paste` expires, at least one.
fn minutes_left(paste: &store::Paste) -> u64 {
    let left = paste
        .expires
        .saturating_duration_since(std::time::Instant::now());
    left.as_secs().div_ceil(60).max(1)
}

fn not_found(state: &crate::State) -> Response {
    error_page(
        &state.config.title,
        StatusCode::NOT_FOUND,
        "No such paste: it never existed, or it has expired.",
    )
}

#[cfg(test)]
mod tests {
    use onionhost_sdk::axum::body::Body;
    use onionhost_sdk::axum::http::Request;
    use onionhost_sdk::testing::TestTab;
    use tower::ServiceExt as _;

    use crate::Pastebin;

    async fn send(tab: &TestTab, request: Request<Body>) -> (u16, String, String) {
        let response = tab
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("infallible");
        let status = response.status().as_u16();
        let location = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let body = onionhost_sdk::axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .expect("body");
        (
            status,
            location,
            String::from_utf8_lossy(&body).into_owned(),
        )
    }

    fn encode(text: &str) -> String {
        text.bytes().map(|b| format!("%{b:02X}")).collect()
    }

    fn post(path: &str, body: String) -> Request<Body> {
        Request::post(path)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .expect("request")
    }

    fn paste(text: &str) -> Request<Body> {
        post("/paste", format!("text={}", encode(text)))
    }

    fn get(path: &str) -> Request<Body> {
        Request::get(path).body(Body::empty()).expect("request")
    }

    #[tokio::test]
    async fn a_paste_is_stored_escaped_and_bounded() {
        let tab = TestTab::build::<Pastebin>("max_paste_bytes = 16").expect("build");
        let (status, location, _) = send(&tab, paste("<b>hi</b>")).await;
        assert_eq!(status, 303);
        let (status, _, page) = send(&tab, get(&location)).await;
        assert_eq!(status, 200);
        assert!(page.contains("&lt;b&gt;hi&lt;/b&gt;"), "{page}");
        assert!(page.contains("expires in 1 hour"), "{page}");
        let (_, _, text) = send(&tab, get(&format!("{location}/raw"))).await;
        assert_eq!(text, "<b>hi</b>");
        let (status, _, _) = send(&tab, paste("seventeen bytes!!")).await;
        assert_eq!(status, 413);
        assert_eq!(send(&tab, paste("")).await.0, 400);
    }

    /// Every error a visitor can meet is a page in the sdk's shell (its header, its style
    /// sheet, the error as a notice), like the built-in modes' errors: none is plain text.
    #[tokio::test]
    async fn every_error_is_a_page_in_the_shell() {
        let tab = TestTab::build::<Pastebin>("max_paste_bytes = 16").expect("build");
        let (_, location, _) = send(&tab, paste("x")).await;
        let not_form = Request::post("/paste")
            .header("content-type", "text/plain")
            .body(Body::from("text=x"))
            .expect("request");
        let cases = [
            (get("/nothing-here"), 404, "There is nothing here."),
            (get("/p/nothing-here"), 404, "No such paste"),
            (get("/p/nothing-here/raw"), 404, "No such paste"),
            (
                get(&format!("{location}/live")),
                400,
                "open the paste itself",
            ),
            (paste(""), 400, "The paste is empty."),
            (paste("seventeen bytes!!"), 413, "The paste is too long"),
            (
                post("/paste", "keep=5".to_owned()),
                400,
                "The form could not be read",
            ),
            (not_form, 400, "The form could not be read"),
            (
                post("/paste", "text=x&keep=7".to_owned()),
                400,
                "Choose how long",
            ),
        ];
        for (request, status, says) in cases {
            let path = request.uri().to_string();
            let response = tab
                .router
                .clone()
                .oneshot(request)
                .await
                .expect("infallible");
            assert_eq!(response.status().as_u16(), status, "{path}");
            assert_eq!(
                response.headers()["content-type"],
                "text/html; charset=utf-8",
                "{path}"
            );
            let body = onionhost_sdk::axum::body::to_bytes(response.into_body(), 1 << 20)
                .await
                .expect("body");
            let page = String::from_utf8_lossy(&body);
            assert!(
                page.contains(onionhost_sdk::page::LOGO_IMG)
                    && page.contains(onionhost_sdk::page::STYLE_PATH)
                    && page.contains("<p class=\"note error message\" id=\"error\">")
                    && page.contains(says),
                "{path}: {page}"
            );
        }
    }

    #[tokio::test]
    async fn a_burned_paste_is_shown_once_after_a_click() {
        let tab = TestTab::build::<Pastebin>("").expect("build");
        let body = format!("text={}&burn=on", encode("secret"));
        let (_, location, _) = send(&tab, post("/paste", body)).await;
        // Opening the link (or a preview fetching it) does not reveal or burn it.
        let (status, _, page) = send(&tab, get(&location)).await;
        assert_eq!(status, 200);
        assert!(
            !page.contains("secret") && page.contains("Read and destroy"),
            "{page}"
        );
        assert_eq!(send(&tab, get(&format!("{location}/raw"))).await.0, 404);
        let read = format!("{location}/read");
        let (status, _, page) = send(&tab, post(&read, String::new())).await;
        assert_eq!(status, 200);
        assert!(page.contains("secret"), "{page}");
        assert_eq!(send(&tab, post(&read, String::new())).await.0, 404);
        assert_eq!(send(&tab, get(&location)).await.0, 404);
    }

    #[tokio::test]
    async fn expiry_is_one_of_the_offered_choices() {
        let tab = TestTab::build::<Pastebin>("keep_minutes = 90").expect("build");
        let (_, _, form) = send(&tab, get("/")).await;
        assert!(
            form.contains("<option value=\"90\" selected>90 minutes</option>"),
            "{form}"
        );
        assert!(form.contains("up to 64 KiB each"), "{form}");
        let ok = "text=x&keep=5".to_owned();
        assert_eq!(send(&tab, post("/paste", ok)).await.0, 303);
        let too_long = format!("text=x&keep={}", 24 * 60);
        assert_eq!(send(&tab, post("/paste", too_long)).await.0, 400);
    }

    #[tokio::test]
    async fn creation_is_rate_limited_and_counted() {
        let tab = TestTab::build::<Pastebin>("max_pastes_per_minute = 1").expect("build");
        assert_eq!(send(&tab, paste("one")).await.0, 303);
        assert_eq!(send(&tab, paste("two")).await.0, 429);
        let (_, _, form) = send(&tab, get("/")).await;
        assert!(form.contains("1 of 100 stored"), "{form}");
    }

    #[tokio::test]
    async fn two_tabs_share_nothing() {
        let one = TestTab::build::<Pastebin>("").expect("build");
        let two = TestTab::build::<Pastebin>("").expect("build");
        let (_, location, _) = send(&one, paste("mine")).await;
        assert_eq!(send(&two, get(&location)).await.0, 404);
    }

    #[tokio::test]
    async fn the_script_is_served_with_an_etag_and_revalidated() {
        let tab = TestTab::build::<Pastebin>("").expect("build");
        let response = tab
            .router
            .clone()
            .oneshot(get("/live.js"))
            .await
            .expect("infallible");
        assert_eq!(response.status(), 200);
        let etag = response.headers()["etag"].clone();
        let again = Request::get("/live.js")
            .header("if-none-match", etag)
            .body(Body::empty())
            .expect("request");
        assert_eq!(send(&tab, again).await.0, 304);
    }

    /// A plugin serves the sdk's shared files too, without a route of its own.
    #[tokio::test]
    async fn the_favicon_and_the_logo_are_served() {
        let tab = TestTab::build::<Pastebin>("").expect("build");
        for (path, asset) in [
            ("/favicon.ico", &onionhost_sdk::page::FAVICON),
            (onionhost_sdk::page::LOGO_PATH, &onionhost_sdk::page::LOGO),
        ] {
            let response = tab
                .router
                .clone()
                .oneshot(get(path))
                .await
                .expect("infallible");
            assert_eq!(response.status(), 200, "{path}");
            let body = onionhost_sdk::axum::body::to_bytes(response.into_body(), 1 << 20)
                .await
                .expect("body");
            assert_eq!(body, asset.bytes(), "{path}");
        }
    }

    /// The page is a template: the title from the config is text, not markup.
    #[tokio::test]
    async fn the_title_is_escaped_by_the_template() {
        let tab = TestTab::build::<Pastebin>("title = \"<i>x</i>\"").expect("build");
        let (_, _, form) = send(&tab, get("/")).await;
        assert!(
            form.contains("<title>&lt;i&gt;x&lt;/i&gt;</title>"),
            "{form}"
        );
        assert!(!form.contains("<i>"), "{form}");
    }

    #[test]
    fn bad_config_names_the_key() {
        let err = TestTab::build::<Pastebin>("max_paste_bytes = 0")
            .err()
            .expect("refused");
        assert!(err.to_string().starts_with("`max_paste_bytes`"), "{err}");
        let err = TestTab::build::<Pastebin>("colour = 1")
            .err()
            .expect("refused");
        assert!(err.to_string().contains("colour"), "{err}");
    }
}
