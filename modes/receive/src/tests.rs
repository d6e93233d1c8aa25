//! Router tests of the receive mode, in memory: the form, uploads, every limit, cleanup.

#![allow(clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use futures::SinkExt;
use http_body_util::BodyExt;
use onionhost_sdk::axum::body::{Body, Bytes};
use onionhost_sdk::axum::http::{Request, StatusCode, header};
use onionhost_sdk::testing::{Notices, TestTab};
use onionhost_sdk::{Direction, TabEvent, TransferOutcome, Visitor};
use tower::ServiceExt;

use onionhost_sdk::axum::extract::State;

use crate::{ReceiveConfig, ReceiveMode};

mod beyond;
mod refusals;

const BOUNDARY: &str = "----onionhost-test-boundary";

/// One part of a multipart body.
enum Part<'a> {
    File(&'a str, &'a [u8]),
    Text(&'a str),
}

fn multipart(parts: &[Part<'_>]) -> Vec<u8> {
    let mut body = Vec::new();
    for part in parts {
        body.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
        match part {
            Part::File(name, data) => {
                body.extend_from_slice(
                    format!(
                        "Content-Disposition: form-data; name=\"files\"; filename=\"{name}\"\r\n\
                         Content-Type: application/octet-stream\r\n\r\n"
                    )
                    .as_bytes(),
                );
                body.extend_from_slice(data);
            }
            Part::Text(text) => {
                body.extend_from_slice(b"Content-Disposition: form-data; name=\"text\"\r\n\r\n");
                body.extend_from_slice(text.as_bytes());
            }
        }
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

/// The test's end of a request body sent piece by piece.
type BodySender = futures::channel::mpsc::Sender<Result<Bytes, std::io::Error>>;

/// A request being handled by the tab's router.
type PendingResponse = tokio::task::JoinHandle<
    Result<onionhost_sdk::axum::response::Response, std::convert::Infallible>,
>;

struct Tab {
    tab: TestTab,
    dir: tempfile::TempDir,
}

impl Tab {
    fn new(extra: &str) -> Self {
        Self::in_dir(tempfile::tempdir().unwrap(), extra, Notices::default())
    }

    /// A tab on `dir`, whose notices go to `notices`.
    fn in_dir(dir: tempfile::TempDir, extra: &str, notices: Notices) -> Self {
        // The test machine's disk may be nearly full: only the free-space test sets a floor.
        let floor = if extra.contains("min_free_space") {
            ""
        } else {
            "min_free_space = 0"
        };
        let section = format!("dir = {:?}\n{floor}\n{extra}", dir.path().to_str().unwrap());
        let tab = TestTab::build_with_notices::<ReceiveMode>(&section, notices).unwrap();
        Self { tab, dir }
    }

    /// Starts an upload whose body the test sends piece by piece through the returned sender
    /// (which holds up to `capacity` pieces); the handle ends with the response.
    fn upload_stream(&self, capacity: usize) -> (BodySender, PendingResponse) {
        let (sender, receiver) = futures::channel::mpsc::channel(capacity);
        let request = Request::post("/upload")
            .header(
                header::CONTENT_TYPE,
                format!("multipart/form-data; boundary={BOUNDARY}"),
            )
            .body(Body::from_stream(receiver))
            .unwrap();
        let handler = tokio::spawn(self.tab.router.clone().oneshot(request));
        (sender, handler)
    }

    /// Posts `body` as a visitor of its own.
    async fn send(&self, body: Vec<u8>, json: bool) -> (StatusCode, String) {
        self.send_as(Visitor::unique(), body, json).await
    }

    async fn send_as(&self, visitor: Visitor, body: Vec<u8>, json: bool) -> (StatusCode, String) {
        let mut request = Request::post("/upload").extension(visitor).header(
            header::CONTENT_TYPE,
            format!("multipart/form-data; boundary={BOUNDARY}"),
        );
        if json {
            request = request.header(header::ACCEPT, "application/json");
        }
        let response = self
            .tab
            .router
            .clone()
            .oneshot(request.body(Body::from(body)).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    async fn get(&self, path: &str) -> (StatusCode, String) {
        let response = self
            .tab
            .router
            .clone()
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    /// Every upload folder, sorted.
    fn folders(&self) -> Vec<PathBuf> {
        let mut folders: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        folders.sort();
        folders
    }

    /// The only upload folder.
    fn folder(&self) -> PathBuf {
        let folders = self.folders();
        assert_eq!(folders.len(), 1, "{folders:?}");
        folders[0].clone()
    }

    fn assert_empty(&self) {
        assert_eq!(self.folders(), Vec::<PathBuf>::new());
    }
}

fn names_in(folder: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(folder)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn the_form_works_without_javascript_and_scripts_are_files() {
    let tab = Tab::new("");
    let (status, page) = tab.get("/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("action=\"/upload\""), "{page}");
    assert!(page.contains("enctype=\"multipart/form-data\""));
    assert!(page.contains("name=\"files\" multiple"));
    assert!(page.contains("name=\"text\""));
    assert!(!page.contains("<script>"), "no inline script");
    assert!(!page.contains("style="), "no inline style");
    let (status, js) = tab.get("/receive.js").await;
    assert_eq!(status, StatusCode::OK);
    assert!(js.contains("upload.addEventListener(\"progress\""));
    assert_eq!(
        tab.get(onionhost_sdk::page::STYLE_PATH).await.0,
        StatusCode::OK
    );
    assert_eq!(tab.get("/nope").await.0, StatusCode::NOT_FOUND);
}

/// Regression (issue 12): no dropping of files, one bar for all of them, and the form in a
/// card of its own look. The form is the sdk's look (a card, fields, the primary button);
/// the script lets files be dropped on it and shows a bar per file; the results it shows are
/// notices.
#[tokio::test]
async fn the_form_takes_dropped_files_and_shows_each_files_progress() {
    let tab = Tab::new("");
    let (_, page) = tab.get("/").await;
    for part in [
        "<section class=\"card\"><h2>Send files</h2>",
        "<div class=\"field dropzone\" id=\"drop\"><label for=\"files\">Files</label>",
        "<p id=\"drop-hint\" class=\"hint\" hidden>",
        "<ul id=\"chosen\" class=\"chosen\" hidden></ul>",
        "<ul id=\"file-progress\" class=\"file-progress\" hidden></ul>",
        "<div id=\"result\" role=\"status\" aria-live=\"polite\"></div>",
        "<button type=\"submit\" id=\"send\">Send</button>",
        "<footer class=\"site-footer\">",
    ] {
        assert!(page.contains(part), "no {part:?} in {page}");
    }
    let (_, script) = tab.get("/receive.js").await;
    for part in [
        "input.files = event.dataTransfer.files;",
        "document.getElementById(\"drop-hint\").hidden = false;",
        "showFiles(rows, e.loaded, e.total);",
        "result.className = isError ? \"note error\" : \"note success\";",
    ] {
        assert!(script.contains(part), "no {part:?} in the script");
    }
}

/// The sdk's shared files are the receive tab's too: no browser logs a `404` for its icon.
#[tokio::test]
async fn the_favicon_and_the_logo_are_served() {
    let tab = Tab::new("");
    for (path, asset) in [
        ("/favicon.ico", &onionhost_sdk::page::FAVICON),
        (onionhost_sdk::page::LOGO_PATH, &onionhost_sdk::page::LOGO),
    ] {
        let request = Request::get(path).body(Body::empty()).unwrap();
        let response = tab.tab.router.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body, asset.bytes(), "{path}");
    }
}

#[tokio::test]
async fn the_form_leaves_out_what_is_disabled() {
    let page = Tab::new("disable_text = true").get("/").await.1;
    assert!(!page.contains("name=\"text\""));
    let page = Tab::new("disable_files = true").get("/").await.1;
    assert!(!page.contains("name=\"files\""));
}

#[tokio::test]
async fn files_and_a_message_are_saved_byte_exact_in_a_private_folder() {
    let tab = Tab::new("");
    let binary: Vec<u8> = (0..=255u8).cycle().take(3 * 1024 * 1024 + 7).collect();
    let body = multipart(&[
        Part::File("a.bin", &binary),
        Part::File("b.txt", b"hello\r\n--not a boundary\r\n"),
        Part::File("empty.txt", b""),
        Part::Text("hi there"),
    ]);
    let (status, page) = tab.send(body, false).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("3 files received"), "{page}");
    // Regression (issue 12): the list was an unstyled bullet list; it is a success notice.
    assert!(
        page.contains("<div class=\"note success\" id=\"received\"><p>3 files received:</p>"),
        "{page}"
    );
    let folder = tab.folder();
    assert_eq!(mode(&folder), 0o700);
    assert_eq!(
        names_in(&folder),
        ["a.bin", "b.txt", "empty.txt", "message.txt"]
    );
    assert_eq!(std::fs::read(folder.join("a.bin")).unwrap(), binary);
    assert_eq!(
        std::fs::read(folder.join("b.txt")).unwrap(),
        b"hello\r\n--not a boundary\r\n"
    );
    assert_eq!(
        std::fs::read_to_string(folder.join("message.txt")).unwrap(),
        "hi there"
    );
    for name in names_in(&folder) {
        assert_eq!(mode(&folder.join(name)), 0o600);
    }
}

#[tokio::test]
async fn the_script_gets_json() {
    let tab = Tab::new("");
    let (status, body) = tab
        .send(
            multipart(&[Part::File("x.txt", b"abc"), Part::Text("m")]),
            true,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let value: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(value["ok"], true);
    assert_eq!(value["files"][0]["name"], "x.txt");
    assert_eq!(value["files"][0]["size"], 3);
    assert_eq!(value["message"], true);
}

/// Regression (issue 9): the page without JavaScript said "60 MiB" and the script's own
/// formatter "60.0 MiB" for the same size. Both now use the sdk's one format: the page
/// prints `ByteSize`, and the script formats with the sdk's `bytes.js`, loaded before it.
#[tokio::test]
async fn sizes_read_the_same_with_and_without_javascript() {
    let tab = Tab::new("");
    let sixty = vec![0u8; 60 * 1024 * 1024];
    let body = multipart(&[
        Part::File("big.bin", &sixty),
        Part::File("small.txt", b"abc"),
    ]);
    let (status, page) = tab.send(body, false).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("(60 MiB)"), "{page}");
    assert!(page.contains("(3 bytes)"), "{page}");
    let (status, form) = tab.get("/").await;
    assert_eq!(status, StatusCode::OK);
    let bytes_at = form.find("src=\"/bytes.js\"").expect("bytes.js is loaded");
    let script_at = form
        .find("src=\"/receive.js\"")
        .expect("receive.js is loaded");
    assert!(bytes_at < script_at, "bytes.js runs first: {form}");
    let (status, js) = tab.get("/bytes.js").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(js, onionhost_sdk::size::BYTES_JS);
    let (_, script) = tab.get("/receive.js").await;
    assert!(script.contains("const size = onionhostBytes;"), "{script}");
    assert!(!script.contains("toFixed"), "no second formatter: {script}");
}

#[tokio::test]
async fn empty_browser_parts_are_ignored_and_an_empty_form_is_refused() {
    let tab = Tab::new("");
    let (status, body) = tab
        .send(multipart(&[Part::File("", b""), Part::Text("")]), true)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("\"empty\""), "{body}");
    tab.assert_empty();
    let (status, _) = tab
        .send(
            multipart(&[Part::File("", b""), Part::Text("only text")]),
            false,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(names_in(&tab.folder()), ["message.txt"]);
}

#[tokio::test]
async fn hostile_names_are_cleaned_on_disk_and_escaped_in_the_page() {
    let tab = Tab::new("");
    let body = multipart(&[
        Part::File("../../x", b"1"),
        Part::File("..\\..\\y", b"2"),
        Part::File("/etc/passwd", b"3"),
        Part::File("<img src=x onerror=alert(1)>.html", b"4"),
        Part::File("..", b"5"),
        Part::File("Résumé 履歴書.pdf", b"6"),
    ]);
    let (status, page) = tab.send(body, false).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    // The one image is the sdk's logo, in the header.
    let without_logo = page.replacen(onionhost_sdk::page::LOGO_IMG, "", 1);
    assert!(!without_logo.contains("<img"), "{page}");
    assert!(page.contains("_img src=x onerror=alert(1)_.html"), "{page}");
    let folder = tab.folder();
    assert_eq!(
        names_in(&folder),
        [
            "Résumé 履歴書.pdf",
            "_img src=x onerror=alert(1)_.html",
            "file",
            "passwd",
            "x",
            "y"
        ]
    );
    // Nothing escaped the tab's folder.
    assert_eq!(tab.folders().len(), 1);
}

/// Regression: a raw ESC or BS in a file name (browsers escape only `"`, CR and LF) made the
/// multipart parser refuse the part's header, and the whole upload was a 400.
#[tokio::test]
async fn a_raw_esc_or_bs_in_a_file_name_is_cleaned_not_refused() {
    let tab = Tab::new("");
    let body = multipart(&[
        Part::File("a\u{1B}[31mred\u{8}.txt", b"1"),
        Part::File("nul\u{0}del\u{7F}", b"2"),
        Part::Text("a message with \u{1B} in it"),
    ]);
    let (status, page) = tab.send(body, true).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let folder = tab.folder();
    assert_eq!(
        names_in(&folder),
        ["a_[31mred_.txt", "message.txt", "nul_del_"]
    );
    // Only the headers are touched: what the visitor sent arrives as sent.
    assert_eq!(
        std::fs::read_to_string(folder.join("message.txt")).unwrap(),
        "a message with \u{1B} in it"
    );
}

#[tokio::test]
async fn the_same_name_twice_keeps_both() {
    let tab = Tab::new("");
    let body = multipart(&[
        Part::File("same.txt", b"first"),
        Part::File("same.txt", b"second"),
        Part::File("message.txt", b"a file"),
        Part::Text("a message"),
    ]);
    let (status, page) = tab.send(body, false).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let folder = tab.folder();
    assert_eq!(
        names_in(&folder),
        ["message (1).txt", "message.txt", "same (1).txt", "same.txt"]
    );
    assert_eq!(std::fs::read(folder.join("same.txt")).unwrap(), b"first");
    assert_eq!(
        std::fs::read(folder.join("same (1).txt")).unwrap(),
        b"second"
    );
    assert!(page.contains("same (1).txt"));
}

#[tokio::test]
async fn concurrent_uploads_get_their_own_folders() {
    let tab = Tab::new("");
    let uploads = (0..4).map(|i| {
        let content = format!("upload {i}");
        let body = multipart(&[Part::File("same.txt", content.as_bytes())]);
        tab.send(body, false)
    });
    for (status, _) in futures::future::join_all(uploads).await {
        assert_eq!(status, StatusCode::OK);
    }
    let mut contents: Vec<String> = tab
        .folders()
        .iter()
        .map(|f| std::fs::read_to_string(f.join("same.txt")).unwrap())
        .collect();
    contents.sort();
    assert_eq!(contents, ["upload 0", "upload 1", "upload 2", "upload 3"]);
}

async fn assert_refused(tab: &Tab, body: Vec<u8>, status: StatusCode, code: &str) {
    let (got, answer) = tab.send(body.clone(), true).await;
    assert_eq!(got, status, "{answer}");
    let value: serde_json::Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(value["ok"], false);
    assert_eq!(value["error"], code, "{answer}");
    assert_no_config_key(value["message"].as_str().unwrap());
    let (got, page) = tab.send(body, false).await;
    assert_eq!(got, status);
    assert!(
        page.contains(&format!("data-error=\"{code}\"")),
        "the page names the limit for scripts: {page}"
    );
    assert_no_config_key(&visible_text(&page));
    tab.assert_empty();
}

/// Regression (issue 12): refusals showed visitors config key names ("the limit is 1 MiB per
/// upload (max_upload_size)"). The visitor reads words; the key stays in the answer's code.
fn assert_no_config_key(text: &str) {
    let key = text
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .find(|word| word.contains('_'));
    assert_eq!(key, None, "a config key in what the visitor reads: {text}");
}

/// The text a browser shows of `page`: what is between tags, without the tags and their
/// attributes.
fn visible_text(page: &str) -> String {
    let mut text = String::new();
    let mut in_tag = false;
    for c in page.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                text.push(' ');
            }
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    text
}

#[tokio::test]
async fn every_limit_refuses_with_413_naming_it_and_leaves_nothing() {
    let tab = Tab::new("max_upload_size = 100");
    let body = multipart(&[Part::File("a", &[1; 60]), Part::File("b", &[2; 41])]);
    assert_refused(&tab, body, StatusCode::PAYLOAD_TOO_LARGE, "max_upload_size").await;
    let (status, _) = tab
        .send(
            multipart(&[Part::File("a", &[1; 60]), Part::File("b", &[2; 40])]),
            false,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "exactly the limit is fine");

    let tab = Tab::new("max_total_size = 100");
    let (status, _) = tab
        .send(multipart(&[Part::File("a", &[1; 70])]), false)
        .await;
    assert_eq!(status, StatusCode::OK);
    let before = tab.folders();
    let (status, body) = tab
        .send(multipart(&[Part::File("b", &[1; 31])]), true)
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(body.contains("max_total_size"), "{body}");
    assert_eq!(
        tab.folders(),
        before,
        "nothing of the refused upload is left"
    );
    // A refused upload gives its bytes back: what fits still fits.
    let (status, _) = tab
        .send(multipart(&[Part::File("c", &[1; 30])]), false)
        .await;
    assert_eq!(status, StatusCode::OK);

    let tab = Tab::new("min_free_space = \"1000 TiB\"");
    let body = multipart(&[Part::File("a", b"x")]);
    assert_refused(&tab, body, StatusCode::PAYLOAD_TOO_LARGE, "min_free_space").await;

    let tab = Tab::new("max_files_per_upload = 2");
    let body = multipart(&[
        Part::File("a", b"1"),
        Part::File("b", b"2"),
        Part::File("c", b"3"),
    ]);
    assert_refused(
        &tab,
        body,
        StatusCode::PAYLOAD_TOO_LARGE,
        "max_files_per_upload",
    )
    .await;

    let tab = Tab::new("max_text_size = 10");
    let body = multipart(&[Part::File("a", b"1"), Part::Text("eleven char")]);
    assert_refused(&tab, body, StatusCode::PAYLOAD_TOO_LARGE, "max_text_size").await;
}

/// Posts `body` announcing `announced` bytes in `Content-Length`.
async fn send_announcing(tab: &Tab, body: Vec<u8>, announced: u64) -> (StatusCode, String) {
    let request = Request::post("/upload")
        .header(
            header::CONTENT_TYPE,
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .header(header::ACCEPT, "application/json")
        .header(header::CONTENT_LENGTH, announced)
        .body(Body::from(body))
        .unwrap();
    let response = tab.tab.router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn an_upload_announced_too_large_is_refused_before_it_is_written() {
    // The most form overhead allowed: 1 MiB, plus 64 KiB for each of the 1 + 8 parts.
    let slack = 1024 * 1024 + 64 * 1024 * 9;
    let tab = Tab::new("max_upload_size = \"1 MiB\"\nmax_files_per_upload = 1");
    let body = multipart(&[Part::File("a", b"small")]);
    // What the body holds does not matter: an upload that says it is larger than the limit
    // can take is answered at once, before anything reaches the disk.
    let (status, answer) = send_announcing(&tab, body.clone(), 1024 * 1024 + slack + 1).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{answer}");
    assert!(answer.contains("\"max_upload_size\""), "{answer}");
    tab.assert_empty();
    // Up to the limit plus the overhead, the upload is read and judged by its data.
    let (status, answer) = send_announcing(&tab, body, 1024 * 1024 + slack).await;
    assert_eq!(status, StatusCode::OK, "{answer}");

    let tab = Tab::new("max_total_size = \"2 MiB\"\nmax_files_per_upload = 1");
    let body = multipart(&[Part::File("a", b"small")]);
    let (status, answer) = send_announcing(&tab, body, 2 * 1024 * 1024 + slack + 1).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{answer}");
    assert!(answer.contains("\"max_total_size\""), "{answer}");
    tab.assert_empty();
}

#[tokio::test]
async fn disabled_files_and_text_are_refused_by_the_server() {
    let tab = Tab::new("disable_files = true");
    let body = multipart(&[Part::File("a", b"1"), Part::Text("hi")]);
    assert_refused(&tab, body, StatusCode::FORBIDDEN, "files_disabled").await;
    let (status, _) = tab
        .send(multipart(&[Part::File("", b""), Part::Text("hi")]), false)
        .await;
    assert_eq!(status, StatusCode::OK, "an empty file input is not a file");

    let tab = Tab::new("disable_text = true");
    let body = multipart(&[Part::File("a", b"1"), Part::Text("hi")]);
    assert_refused(&tab, body, StatusCode::FORBIDDEN, "text_disabled").await;
    let (status, _) = tab
        .send(multipart(&[Part::File("a", b"1"), Part::Text("")]), false)
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "an empty text field is not a message"
    );
}

#[tokio::test]
async fn malformed_requests_are_refused() {
    let tab = Tab::new("");
    let response = tab
        .tab
        .router
        .clone()
        .oneshot(
            Request::post("/upload")
                .header(header::CONTENT_TYPE, "text/plain")
                .body(Body::from("hello"))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // Cut off in the middle of a part.
    let mut body = multipart(&[Part::File("a", &[1; 1000])]);
    body.truncate(300);
    let (status, _) = tab.send(body, false).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // An unknown field.
    let body = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"other\"\r\n\r\nx\r\n--{BOUNDARY}--\r\n"
    );
    let (status, _) = tab.send(body.into_bytes(), false).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    tab.assert_empty();
}

#[tokio::test]
async fn a_part_header_that_never_ends_is_refused_before_it_fills_memory() {
    let tab = Tab::new("");
    let (mut sender, handler) = tab.upload_stream(1);
    let head = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"a\"\r\nX-Pad: "
    );
    sender.send(Ok(Bytes::from(head))).await.unwrap();
    let mut sent = 0;
    while sent < 64 * 1024 * 1024 {
        if sender
            .send(Ok(Bytes::from(vec![b'a'; 64 * 1024])))
            .await
            .is_err()
        {
            break;
        }
        sent += 64 * 1024;
    }
    assert!(
        sent < 4 * 1024 * 1024,
        "the server kept reading {sent} bytes of header"
    );
    let response = handler.await.unwrap().unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    tab.assert_empty();
}

#[tokio::test]
async fn console_events_report_progress_and_the_folder_but_no_names() {
    let tab = Tab::new("");
    let (status, _) = tab
        .send(multipart(&[Part::File("secret-name.txt", b"abc")]), false)
        .await;
    assert_eq!(status, StatusCode::OK);
    let folder = tab.folder().display().to_string();
    let events = tab.tab.events();
    assert!(
        events.iter().any(|e| matches!(
            e,
            TabEvent::TransferStarted {
                direction: Direction::Upload,
                label: None,
                ..
            }
        )),
        "{events:?}"
    );
    assert!(
        events.iter().any(|e| matches!(
            e,
            TabEvent::TransferFinished { bytes: 3, outcome: TransferOutcome::Completed, saved_to: Some(s), .. } if *s == folder
        )),
        "{events:?}"
    );
    assert!(!format!("{events:?}").contains("secret-name"), "{events:?}");

    let tab = Tab::new("max_upload_size = 2");
    tab.send(multipart(&[Part::File("secret-name.txt", b"abc")]), false)
        .await;
    let events = format!("{:?}", tab.tab.events());
    assert!(
        events.contains("not saved: the upload went over max_upload_size"),
        "{events}"
    );
    assert!(!events.contains("secret-name"), "{events}");

    let tab = Tab::new("show_file_names_in_console = true");
    tab.send(multipart(&[Part::File("shown.txt", b"abc")]), false)
        .await;
    assert!(format!("{:?}", tab.tab.events()).contains("shown.txt"));
}

#[tokio::test]
async fn too_many_uploads_at_once_are_turned_away() {
    let tab = Tab::new("max_concurrent_uploads = 1");
    let (mut sender, first) = tab.upload_stream(4);
    let mut body = multipart(&[Part::File("slow", b"0123456789")]);
    // Cut inside the file's data, so that the upload has started writing.
    let rest = body.split_off(body.len() - 40);
    sender.send(Ok(Bytes::from(body))).await.unwrap();
    wait_until(|| tab.folders().len() == 1).await;
    let (status, _) = tab.send(multipart(&[Part::File("b", b"1")]), false).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    sender.send(Ok(Bytes::from(rest))).await.unwrap();
    drop(sender);
    assert_eq!(first.await.unwrap().unwrap().status(), StatusCode::OK);
    let (status, _) = tab.send(multipart(&[Part::File("c", b"1")]), false).await;
    assert_eq!(status, StatusCode::OK, "the slot is free again");
}

#[tokio::test]
async fn uploads_beyond_the_rate_are_refused_with_429() {
    let tab = Tab::new("max_uploads_per_minute = 2");
    for _ in 0..2 {
        let (status, _) = tab.send(multipart(&[Part::File("a", b"1")]), false).await;
        assert_eq!(status, StatusCode::OK);
    }
    let (status, body) = tab.send(multipart(&[Part::File("a", b"1")]), true).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(body.contains("rate_limited"), "{body}");
    assert_eq!(tab.folders().len(), 2);
}

/// Regression: the parser reads every chunk that is ready before handing any out, and a fast
/// sender made it hold more than the bound on part headers, so the upload was refused as
/// malformed.
#[tokio::test]
async fn a_body_that_arrives_all_at_once_in_small_chunks_is_accepted() {
    let tab = Tab::new("");
    let (mut sender, receiver) =
        futures::channel::mpsc::channel::<Result<Bytes, std::io::Error>>(1024);
    let head = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"fast\"\r\n\r\n"
    );
    sender.send(Ok(Bytes::from(head))).await.unwrap();
    let chunk = Bytes::from(vec![5u8; 16 * 1024]);
    for _ in 0..512 {
        sender.send(Ok(chunk.clone())).await.unwrap();
    }
    sender
        .send(Ok(Bytes::from(format!("\r\n--{BOUNDARY}--\r\n"))))
        .await
        .unwrap();
    drop(sender);
    let request = Request::post("/upload")
        .header(
            header::CONTENT_TYPE,
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(Body::from_stream(receiver))
        .unwrap();
    let response = tab.tab.router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let saved = std::fs::metadata(tab.folder().join("fast")).unwrap().len();
    assert_eq!(saved, 512 * 16 * 1024);
}

async fn wait_until(mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !condition() {
        assert!(Instant::now() < deadline, "condition not met in time");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn an_upload_dropped_half_way_leaves_nothing_and_frees_its_budget() {
    let tab = Tab::new("max_total_size = 2000");
    let (mut sender, handler) = tab.upload_stream(4);
    let mut body = multipart(&[
        Part::File("done", &[1; 500]),
        Part::File("half", &[2; 1000]),
    ]);
    body.truncate(1200);
    sender.send(Ok(Bytes::from(body))).await.unwrap();
    // Both the complete first file and the second one's temporary file exist...
    wait_until(|| {
        tab.folders()
            .first()
            .is_some_and(|f| std::fs::read_dir(f).unwrap().count() == 2)
    })
    .await;
    // ...until the connection goes away and hyper drops the handler.
    handler.abort();
    let _ = handler.await;
    wait_until(|| tab.folders().is_empty()).await;
    assert!(tab.tab.events().iter().any(|e| matches!(
        e,
        TabEvent::TransferFinished {
            outcome: TransferOutcome::Cancelled,
            ..
        }
    )));
    let (status, _) = tab
        .send(multipart(&[Part::File("all", &[3; 2000])]), false)
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the cancelled upload gave its bytes back"
    );
}

#[tokio::test]
async fn a_stalled_upload_is_abandoned() {
    let tab = Tab::new("upload_idle_timeout_seconds = 1");
    let (mut sender, handler) = tab.upload_stream(4);
    let mut body = multipart(&[Part::File("slow", &[1; 100])]);
    body.truncate(150);
    sender.send(Ok(Bytes::from(body))).await.unwrap();
    let response = tokio::time::timeout(Duration::from_secs(20), handler)
        .await
        .expect("the stalled upload was not abandoned")
        .unwrap()
        .unwrap();
    assert_eq!(response.status(), StatusCode::REQUEST_TIMEOUT);
    tab.assert_empty();
    drop(sender);
}

/// Regression (issue 9): the pages were built with `format!` and an `escape()` call at each
/// splice, so one forgotten call would have been an XSS. They are maud templates on the sdk's
/// page shell now, which escape every splice. Every page, with hostile text wherever a page
/// shows text it did not write itself: the title, and each received file's name.
#[tokio::test]
async fn hostile_titles_and_names_are_escaped_on_every_page() {
    const HOSTILE: &str = "<b id=\"xss\">'&";
    const ESCAPED: &str = "&lt;b id=&quot;xss&quot;&gt;'&amp;";
    let dir = tempfile::tempdir().unwrap();
    let config = ReceiveConfig {
        dir: Some(dir.path().to_owned()),
        min_free_space: onionhost_sdk::ByteSize(0),
        title: HOSTILE.to_owned(),
        ..ReceiveConfig::default()
    };
    let ctx = onionhost_sdk::testing::context(
        HOSTILE,
        onionhost_sdk::CancellationToken::new(),
        |_| {},
        |_| {},
    );
    let receive =
        std::sync::Arc::new(<ReceiveMode as onionhost_sdk::Mode>::build(config, ctx).unwrap());
    let hostile_file = crate::store::SavedFile {
        name: HOSTILE.to_owned(),
        bytes: 3,
        is_message: false,
    };
    let pages = [
        crate::page::index(State(std::sync::Arc::clone(&receive))).await,
        crate::page::not_found(State(std::sync::Arc::clone(&receive))).await,
        crate::page::received(&receive, false, &[hostile_file]),
        crate::page::refused(&receive, false, &crate::upload::UploadError::Empty),
        crate::page::page(
            &receive,
            StatusCode::OK,
            HOSTILE,
            maud::html! { p { (HOSTILE) } },
        ),
    ];
    for (index, response) in pages.into_iter().enumerate() {
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let page = String::from_utf8(body.to_vec()).unwrap();
        assert!(
            !page.contains("id=\"xss\""),
            "page {index} carries markup:\n{page}"
        );
        assert!(
            page.to_ascii_lowercase().starts_with("<!doctype html>"),
            "{page}"
        );
        // The title, escaped, on every page.
        assert!(page.contains(ESCAPED), "page {index}:\n{page}");
    }

    // Through a real upload: the sanitiser keeps `&`, so an entity in a file name must reach
    // the page escaped (as the text the visitor wrote), not read as markup.
    let tab = Tab::new("");
    let (status, page) = tab
        .send(multipart(&[Part::File("a&lt;script&gt;.txt", b"1")]), false)
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("a&amp;lt;script&amp;gt;.txt"), "{page}");
    assert_eq!(names_in(&tab.folder()), ["a&lt;script&gt;.txt"]);
}
