//! The receive mode through the real host: uploads saved byte-exact in private folders, names
//! cleaned, every limit refused with 413 and nothing left behind, a cut-off upload removed,
//! and the form working without JavaScript.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use onionhost_tests::host::{DEADLINE, TestHost, page_text};
use reqwest::StatusCode;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use serde_json::Value;
use tokio::io::AsyncWriteExt;

pub(crate) mod drop;
mod refusals;

const BOUNDARY: &str = "e2e-receive-boundary-7MA4YWxkTrZu0gW";

/// A multipart body written by hand, as a browser writes it (raw UTF-8 file names), so that
/// hostile names reach the server exactly as given.
fn form(files: &[(&str, &[u8])], text: Option<&str>) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, data) in files {
        body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"files\"; \
                 filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(data);
        body.extend_from_slice(b"\r\n");
    }
    if let Some(text) = text {
        body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"text\"\r\n\r\n{text}\r\n"
            )
            .as_bytes(),
        );
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

/// Posts a hand-written form; `json` asks for the script's JSON answer.
async fn post(url: &str, body: Vec<u8>, json: bool) -> (StatusCode, String) {
    let mut request = reqwest::Client::new()
        .post(format!("{url}upload"))
        .header(
            CONTENT_TYPE,
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(body);
    if json {
        request = request.header(ACCEPT, "application/json");
    }
    let response = request.send().await.expect("the upload request failed");
    let status = response.status();
    (status, response.text().await.expect("an answer"))
}

/// A folder for uploads inside a private temporary folder, so that a name escaping it would
/// show up beside it.
struct Inbox {
    root: tempfile::TempDir,
}

impl Inbox {
    fn new() -> Self {
        Self {
            root: tempfile::tempdir().expect("temp dir"),
        }
    }

    fn path(&self) -> PathBuf {
        self.root.path().join("inbox")
    }

    fn path_str(&self) -> String {
        self.path().to_str().expect("utf-8 path").to_owned()
    }

    /// The upload folders, sorted; checks that nothing else appeared beside the inbox.
    fn folders(&self) -> Vec<PathBuf> {
        assert_eq!(
            entries(self.root.path()),
            ["inbox"],
            "nothing beside the inbox"
        );
        let mut folders: Vec<PathBuf> = entries(&self.path())
            .into_iter()
            .map(|name| self.path().join(name))
            .collect();
        folders.sort();
        folders
    }

    fn only_folder(&self) -> PathBuf {
        let folders = self.folders();
        assert_eq!(folders.len(), 1, "{folders:?}");
        folders[0].clone()
    }

    /// A config with one receive tab named `inbox` and `keys` in its section.
    fn config(&self, keys: &str) -> String {
        format!(
            "[[tab]]\nname = \"inbox\"\nmode = \"receive\"\n[tab.receive]\ndir = {:?}\n\
             min_free_space = 0\n{keys}\n",
            self.path_str()
        )
    }
}

/// Names in a folder, sorted.
fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|err| panic!("read {}: {err}", dir.display()))
        .map(|e| e.expect("entry").file_name().into_string().expect("utf-8"))
        .collect();
    names.sort();
    names
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o777
}

/// Polls `condition` until it holds, failing after the deadline.
async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !condition() {
        assert!(Instant::now() < deadline, "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn the_cli_receives_files_byte_exact_in_private_folders() {
    let inbox = Inbox::new();
    let host = TestHost::spawn(&["receive", &inbox.path_str(), "--local-only"]).expect("spawn");
    let url = host.url("receive").expect("url");
    assert_eq!(
        mode(&inbox.path()),
        0o700,
        "the missing folder is created private"
    );

    let big: Vec<u8> = (0..5 * 1024 * 1024u32)
        .map(|i| (i * 7 % 251) as u8)
        .collect();
    let form = reqwest::multipart::Form::new()
        .part(
            "files",
            reqwest::multipart::Part::bytes(big.clone()).file_name("big.bin"),
        )
        .part(
            "files",
            reqwest::multipart::Part::bytes(b"\r\n--not-the-boundary\r\n".to_vec())
                .file_name("tricky.txt"),
        )
        .part(
            "files",
            reqwest::multipart::Part::bytes(Vec::new()).file_name("empty"),
        )
        .text("text", "Hello from a visitor.\nSecond line.");
    let response = reqwest::Client::new()
        .post(format!("{url}upload"))
        .multipart(form)
        .send()
        .await
        .expect("upload");
    assert_eq!(response.status(), StatusCode::OK);
    let page = response.text().await.expect("page");
    assert!(page.contains("3 files received"), "{page}");
    assert!(page.contains("big.bin") && page.contains("Your message was received"));

    let folder = inbox.only_folder();
    assert_eq!(mode(&folder), 0o700);
    assert_eq!(
        entries(&folder),
        ["big.bin", "empty", "message.txt", "tricky.txt"]
    );
    assert!(
        std::fs::read(folder.join("big.bin")).expect("big") == big,
        "big.bin differs"
    );
    assert_eq!(
        std::fs::read(folder.join("tricky.txt")).expect("tricky"),
        b"\r\n--not-the-boundary\r\n"
    );
    assert_eq!(std::fs::read(folder.join("empty")).expect("empty"), b"");
    assert_eq!(
        std::fs::read_to_string(folder.join("message.txt")).expect("message"),
        "Hello from a visitor.\nSecond line."
    );
    for name in entries(&folder) {
        assert_eq!(mode(&folder.join(&name)), 0o600, "{name}");
    }
    // The console says where the upload went, and never what it was called.
    let folder_name = folder.file_name().expect("name").to_str().expect("utf-8");
    host.wait_for(&format!(
        r"\[receive\] upload #\d+ finished: .*saved in .*{}",
        regex_escape(folder_name)
    ))
    .expect("console line");
    let stopped = host.stop().expect("stop");
    let output = format!("{}{}", stopped.stdout, stopped.stderr);
    for secret in ["big.bin", "tricky.txt", "Hello from a visitor"] {
        assert!(
            !output.contains(secret),
            "{secret} in the output:\n{output}"
        );
    }
}

fn regex_escape(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_string()
            } else {
                format!("\\x{{{:x}}}", c as u32)
            }
        })
        .collect()
}

#[tokio::test]
async fn the_form_works_without_javascript() {
    let inbox = Inbox::new();
    let host = TestHost::with_config(&inbox.config("")).expect("spawn");
    let url = host.url("inbox").expect("url");
    let response = reqwest::get(&url).await.expect("GET /");
    assert_eq!(response.status(), StatusCode::OK);
    let csp = response
        .headers()
        .get("content-security-policy")
        .expect("CSP")
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(csp.contains("default-src 'self'"), "{csp}");
    let page = response.text().await.expect("page");
    for needle in [
        "<form id=\"upload-form\" method=\"post\" action=\"/upload\" enctype=\"multipart/form-data\">",
        "type=\"file\" name=\"files\" multiple",
        "name=\"text\"",
        "<script src=\"/receive.js\" defer></script>",
    ] {
        assert!(page.contains(needle), "{needle} missing from\n{page}");
    }
    assert!(
        !page.contains("<script>") && !page.contains("style="),
        "inline code"
    );
    let js = reqwest::get(format!("{url}receive.js")).await.expect("js");
    assert_eq!(js.status(), StatusCode::OK);
    assert!(
        js.headers()[CONTENT_TYPE]
            .to_str()
            .expect("ascii")
            .starts_with("text/javascript")
    );
    assert!(js.text().await.expect("js").contains("XMLHttpRequest"));

    // What a browser without JavaScript sends: a plain form post, answered with a page.
    let (status, page) = post(&url, form(&[("a.txt", b"A")], Some("note")), false).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.to_ascii_lowercase().starts_with("<!doctype html>"),
        "{page}"
    );
    assert!(
        page.contains("1 file received") && page.contains("a.txt"),
        "{page}"
    );
    // The script's request gets JSON.
    let (status, body) = post(&url, form(&[("b.txt", b"B")], None), true).await;
    assert_eq!(status, StatusCode::OK);
    let value: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(value["ok"], true);
    assert_eq!(value["files"][0]["name"], "b.txt");
    assert_eq!(inbox.folders().len(), 2);
}

#[tokio::test]
async fn hostile_duplicate_and_unicode_names_are_kept_safely() {
    let inbox = Inbox::new();
    let host = TestHost::with_config(&inbox.config("")).expect("spawn");
    let url = host.url("inbox").expect("url");
    let files: &[(&str, &[u8])] = &[
        ("../../x", b"1"),
        ("..\\..\\win", b"2"),
        ("/etc/passwd", b"3"),
        ("<img src=x onerror=alert(1)>.html", b"4"),
        ("..", b"5"),
        ("Résumé 履歴書 🎉.pdf", b"6"),
        ("same.txt", b"first"),
        ("same.txt", b"second"),
        ("invoice\u{202E}fdp.exe", b"7"),
        // Raw ESC and BS, as browsers send them (issue 9: the upload was a 400).
        ("esc\u{1B}[1m\u{8}.txt", b"8"),
        // Windows reserves COM¹ like COM1 (issue 9: it was saved unchanged).
        ("COM\u{B9}.txt", b"9"),
    ];
    let (status, page) = post(&url, form(files, None), false).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    // The page's one image is the logo in its header (`<img class="logo"`).
    assert!(!page.contains("<img src"), "unescaped name in\n{page}");
    assert!(page.contains("_img src=x onerror=alert(1)_.html"), "{page}");
    assert!(page.contains("Résumé 履歴書 🎉.pdf"), "{page}");
    let folder = inbox.only_folder();
    assert_eq!(
        entries(&folder),
        [
            "Résumé 履歴書 🎉.pdf",
            "_COM\u{B9}.txt",
            "_img src=x onerror=alert(1)_.html",
            "esc_[1m_.txt",
            "file",
            "invoice_fdp.exe",
            "passwd",
            "same (1).txt",
            "same.txt",
            "win",
            "x",
        ]
    );
    assert_eq!(
        std::fs::read(folder.join("same.txt")).expect("first"),
        b"first"
    );
    assert_eq!(
        std::fs::read(folder.join("same (1).txt")).expect("second"),
        b"second"
    );

    // Concurrent uploads of the same name are all kept.
    let uploads = (0..4).map(|i| {
        let content = format!("upload {i}");
        let url = url.clone();
        async move { post(&url, form(&[("same.txt", content.as_bytes())], None), false).await }
    });
    for (status, page) in futures::future::join_all(uploads).await {
        assert_eq!(status, StatusCode::OK, "{page}");
    }
    let mut kept: Vec<String> = inbox
        .folders()
        .iter()
        .filter(|f| **f != folder)
        .map(|f| std::fs::read_to_string(f.join("same.txt")).expect("same.txt"))
        .collect();
    kept.sort();
    assert_eq!(kept, ["upload 0", "upload 1", "upload 2", "upload 3"]);
}

/// Checks a refusal: status, the JSON code, the page naming the limit, nothing on disk.
async fn assert_refused(url: &str, inbox: &Inbox, body: Vec<u8>, status: StatusCode, code: &str) {
    let before = inbox.folders();
    let (got, answer) = post(url, body.clone(), true).await;
    assert_eq!(got, status, "{answer}");
    let value: Value = serde_json::from_str(&answer).expect("JSON");
    assert_eq!(value["ok"], false, "{answer}");
    assert_eq!(value["error"], code, "{answer}");
    let (got, page) = post(url, body, false).await;
    assert_eq!(got, status, "{page}");
    assert!(
        page.contains(code),
        "the page does not name {code}:\n{page}"
    );
    assert_eq!(inbox.folders(), before, "a refused upload left something");
    for folder in &before {
        assert!(
            entries(folder).iter().all(|name| !name.starts_with('.')),
            "a temporary file is left in {}",
            folder.display()
        );
    }
}

#[tokio::test]
async fn every_limit_is_refused_with_413_and_leaves_nothing() {
    let inbox = Inbox::new();
    let host = TestHost::with_config(&inbox.config(
        "max_upload_size = \"1 MiB\"\nmax_total_size = \"1.5 MiB\"\n\
         max_files_per_upload = 2\nmax_text_size = 10",
    ))
    .expect("spawn");
    let url = host.url("inbox").expect("url");
    let mib = 1024 * 1024;

    // Several MiB over the limit: the server reads the rest and answers, the client sees it.
    let over = vec![0u8; 5 * mib];
    assert_refused(
        &url,
        &inbox,
        form(&[("big", &over)], None),
        StatusCode::PAYLOAD_TOO_LARGE,
        "max_upload_size",
    )
    .await;
    let half = vec![1u8; mib / 2 + 1];
    assert_refused(
        &url,
        &inbox,
        form(&[("a", &half), ("b", &half)], None),
        StatusCode::PAYLOAD_TOO_LARGE,
        "max_upload_size",
    )
    .await;
    assert_refused(
        &url,
        &inbox,
        form(&[("a", b"1"), ("b", b"2"), ("c", b"3")], None),
        StatusCode::PAYLOAD_TOO_LARGE,
        "max_files_per_upload",
    )
    .await;
    assert_refused(
        &url,
        &inbox,
        form(&[], Some("eleven char")),
        StatusCode::PAYLOAD_TOO_LARGE,
        "max_text_size",
    )
    .await;

    // The tab's budget: 1 MiB fits, then only what is left of 1.5 MiB.
    let (status, _) = post(&url, form(&[("one", &vec![2u8; mib])], None), false).await;
    assert_eq!(status, StatusCode::OK);
    assert_refused(
        &url,
        &inbox,
        form(&[("more", &vec![3u8; mib / 2 + 1])], None),
        StatusCode::PAYLOAD_TOO_LARGE,
        "max_total_size",
    )
    .await;
    let (status, _) = post(&url, form(&[("rest", &vec![4u8; mib / 2])], None), false).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "refused uploads gave their bytes back"
    );

    // Free disk space: no disk has a thousand TiB free.
    let inbox = Inbox::new();
    let config = inbox
        .config("")
        .replace("min_free_space = 0", "min_free_space = \"1000 TiB\"");
    let host = TestHost::with_config(&config).expect("spawn");
    let url = host.url("inbox").expect("url");
    assert_refused(
        &url,
        &inbox,
        form(&[("a", b"1")], None),
        StatusCode::PAYLOAD_TOO_LARGE,
        "min_free_space",
    )
    .await;
}

#[tokio::test]
async fn disabled_files_and_text_are_enforced_by_the_server() {
    let files_off = Inbox::new();
    let text_off = Inbox::new();
    let config = format!(
        "{}{}",
        files_off.config("disable_files = true"),
        text_off
            .config("disable_text = true")
            .replace("name = \"inbox\"", "name = \"files-only\"")
    );
    let host = TestHost::with_config(&config).expect("spawn");
    let url = host.url("inbox").expect("url");
    let page = page_text(&url).await;
    assert!(!page.contains("name=\"files\""), "{page}");
    assert_refused(
        &url,
        &files_off,
        form(&[("a", b"1")], Some("hi")),
        StatusCode::FORBIDDEN,
        "files_disabled",
    )
    .await;
    let (status, _) = post(&url, form(&[("", b"")], Some("just text")), false).await;
    assert_eq!(status, StatusCode::OK, "an empty file input is not a file");

    let url = host.url("files-only").expect("url");
    let page = page_text(&url).await;
    assert!(!page.contains("name=\"text\""), "{page}");
    assert_refused(
        &url,
        &text_off,
        form(&[("a", b"1")], Some("hi")),
        StatusCode::FORBIDDEN,
        "text_disabled",
    )
    .await;
    let (status, _) = post(&url, form(&[("a", b"1")], Some("")), false).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "an empty message field is not a message"
    );
}

#[tokio::test]
async fn an_upload_cut_off_half_way_leaves_nothing() {
    let inbox = Inbox::new();
    let host = TestHost::with_config(&inbox.config("")).expect("spawn");
    let url = host.url("inbox").expect("url");
    let addr = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let body = form(
        &[
            ("complete.bin", &[1u8; 100_000]),
            ("cut.bin", &vec![2u8; 4 * 1024 * 1024]),
        ],
        None,
    );
    let mut stream = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    let head = format!(
        "POST /upload HTTP/1.1\r\nHost: {addr}\r\nContent-Type: multipart/form-data; \
         boundary={BOUNDARY}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.expect("head");
    stream
        .write_all(&body[..body.len() / 2])
        .await
        .expect("half the body");
    stream.flush().await.expect("flush");
    // The first file is complete and the second is being written under a temporary name...
    eventually("both files on disk", || {
        inbox
            .folders()
            .first()
            .is_some_and(|folder| entries(folder).len() == 2)
    })
    .await;
    let folder = inbox.only_folder();
    assert!(
        entries(&folder)
            .iter()
            .all(|name| name.starts_with(".receiving-")),
        "files keep temporary names until the upload completes: {:?}",
        entries(&folder)
    );
    // ...and when the visitor goes away, all of it goes.
    drop(stream);
    eventually("the cut-off upload removed", || inbox.folders().is_empty()).await;
    host.wait_for(r"\[inbox\] upload #\d+ cancelled")
        .expect("console line");
}
