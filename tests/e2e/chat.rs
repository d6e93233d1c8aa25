//! The chat mode through the real host: WebSocket members, a member without JavaScript, two
//! rooms side by side, and no trace of what was said once the host has stopped.

use std::path::Path;
use std::time::Duration;

use futures::StreamExt;
use onionhost_tests::chat_client::Member;
use onionhost_tests::host::{DEADLINE, TestHost};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::{self, Message, client::IntoClientRequest};

fn joined(name: &str) -> Value {
    json!({"type": "joined", "name": name})
}

fn message(from: &str, text: &str) -> Value {
    json!({"type": "message", "from": from, "text": text})
}

/// An HTTP client that shows redirects instead of following them.
fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// Joins without JavaScript; returns the session's page URL.
async fn join_without_js(client: &reqwest::Client, url: &str, name: &str) -> String {
    let response = client
        .post(format!("{url}nojs/join"))
        .form(&[("name", name)])
        .send()
        .await
        .expect("POST /nojs/join");
    assert_eq!(response.status(), 303);
    let location = response.headers()["location"].to_str().expect("ascii");
    assert!(location.starts_with("/nojs/"), "{location}");
    format!("{}{}", url.trim_end_matches('/'), location)
}

/// A streamed page read as it comes.
struct Page {
    response: reqwest::Response,
    text: String,
    pos: usize,
}

impl Page {
    async fn open(client: &reqwest::Client, url: &str) -> Self {
        let response = client.get(url).send().await.expect("GET the page");
        assert_eq!(response.status(), 200);
        Self {
            response,
            text: String::new(),
            pos: 0,
        }
    }

    /// Reads until `needle` appears after the previous match.
    async fn read_until(&mut self, needle: &str) {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        while !self.text[self.pos..].contains(needle) {
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk())
                .await
                .unwrap_or_else(|_| panic!("no {needle:?} in time:\n{}", self.text))
                .expect("reading the page")
                .unwrap_or_else(|| panic!("the page ended without {needle:?}:\n{}", self.text));
            self.text
                .push_str(std::str::from_utf8(&chunk).expect("UTF-8"));
        }
        let at = self.text[self.pos..].find(needle).unwrap_or_default();
        self.pos += at + needle.len();
    }
}

#[tokio::test]
async fn websocket_members_see_joins_renames_messages_and_leaves_in_order() {
    let host = TestHost::spawn(&["chat", "--local-only"]).expect("start");
    let url = host.url("chat").expect("chat tab");
    let page = reqwest::get(&url).await.expect("GET /");
    assert_eq!(page.status(), 200);
    let page = page.text().await.expect("page");
    assert!(page.contains("/chat.js") && page.contains("<noscript>"));

    let (mut ann, welcome) = Member::join(&url, "ann").await;
    assert_eq!(welcome["members"], json!(["ann"]));
    let (mut bo, welcome) = Member::join(&url, "bo").await;
    assert_eq!(welcome["members"], json!(["ann", "bo"]));
    assert_eq!(ann.next().await, joined("bo"));
    let (mut cy, welcome) = Member::join(&url, "cy").await;
    assert_eq!(welcome["members"], json!(["ann", "bo", "cy"]));
    assert_eq!(ann.next().await, joined("cy"));
    assert_eq!(bo.next().await, joined("cy"));

    for (from, text) in [
        ("ann", "hello"),
        ("bo", "hi ann"),
        ("cy", "hey all"),
        ("ann", "bye"),
    ] {
        let sender = match from {
            "ann" => &mut ann,
            "bo" => &mut bo,
            _ => &mut cy,
        };
        sender.say(text).await;
        for member in [&mut ann, &mut bo, &mut cy] {
            assert_eq!(member.next().await, message(from, text));
        }
    }

    bo.send(json!({"type": "rename", "name": "Bob"})).await;
    let renamed = json!({"type": "renamed", "from": "bo", "to": "Bob"});
    for member in [&mut ann, &mut bo, &mut cy] {
        assert_eq!(member.next().await, renamed);
    }
    cy.send(json!({"type": "rename", "name": "BOB"})).await;
    assert_eq!(cy.next().await["code"], "name_taken");

    drop(bo);
    let left = json!({"type": "left", "name": "Bob"});
    assert_eq!(ann.next().await, left);
    assert_eq!(cy.next().await, left);
    cy.say("after bob").await;
    assert_eq!(ann.next().await, message("cy", "after bob"));

    let stopped = host.stop().expect("stop");
    assert_eq!(stopped.status.code(), Some(0), "{}", stopped.stderr);
}

#[tokio::test]
async fn a_member_without_javascript_reads_the_stream_and_posts() {
    let host = TestHost::spawn(&["chat", "--local-only"]).expect("start");
    let url = host.url("chat").expect("chat tab");
    let client = http();
    let (mut ann, _) = Member::join(&url, "ann").await;

    let session = join_without_js(&client, &url, "plain").await;
    assert_eq!(ann.next().await, joined("plain"));
    let mut page = Page::open(&client, &session).await;
    page.read_until("You are <strong><bdi>plain</bdi></strong>")
        .await;
    page.read_until("<ol class=\"log nojs-log\">").await;

    ann.say("<b>to the plain page</b>").await;
    page.read_until("&lt;b&gt;to the plain page&lt;/b&gt;")
        .await;

    let response = client
        .post(format!("{session}/send"))
        .form(&[("text", "from a page without scripts")])
        .send()
        .await
        .expect("POST send");
    assert_eq!(response.status(), 303);
    assert_eq!(ann.next().await, message("ann", "<b>to the plain page</b>"));
    assert_eq!(
        ann.next().await,
        message("plain", "from a page without scripts")
    );
    page.read_until("from a page without scripts").await;

    let response = client
        .post(format!("{session}/rename"))
        .form(&[("name", "Plain Jane")])
        .send()
        .await
        .expect("POST rename");
    assert_eq!(response.status(), 303);
    assert_eq!(
        ann.next().await,
        json!({"type": "renamed", "from": "plain", "to": "Plain Jane"})
    );

    let response = client
        .post(format!("{session}/leave"))
        .send()
        .await
        .expect("POST leave");
    assert_eq!(response.status(), 303);
    assert_eq!(
        ann.next().await,
        json!({"type": "left", "name": "Plain Jane"})
    );
    page.read_until("You have left the chat.").await;

    let stopped = host.stop().expect("stop");
    assert_eq!(stopped.status.code(), Some(0), "{}", stopped.stderr);
}

#[tokio::test]
async fn two_chat_tabs_never_see_each_others_messages() {
    let host = TestHost::with_config(
        "[[tab]]\nname = \"east\"\nmode = \"chat\"\n\n[[tab]]\nname = \"west\"\nmode = \"chat\"\n",
    )
    .expect("start");
    let east = host.url("east").expect("east tab");
    let west = host.url("west").expect("west tab");
    let (mut e1, _) = Member::join(&east, "same-name").await;
    // The same name is free in the other room: the rooms share nothing.
    let (mut w1, welcome) = Member::join(&west, "same-name").await;
    assert_eq!(welcome["you"], "same-name");
    assert_eq!(welcome["members"], json!(["same-name"]));
    let (mut e2, _) = Member::join(&east, "east-two").await;
    assert_eq!(e1.next().await, joined("east-two"));

    e1.say("only for the east").await;
    w1.say("only for the west").await;
    assert_eq!(e1.next().await, message("same-name", "only for the east"));
    assert_eq!(e2.next().await, message("same-name", "only for the east"));
    // West's first event is its own line: nothing from the east came before it.
    assert_eq!(w1.next().await, message("same-name", "only for the west"));
    e2.say("east again").await;
    assert_eq!(e1.next().await, message("east-two", "east again"));
    w1.say("west again").await;
    assert_eq!(w1.next().await, message("same-name", "west again"));

    let stopped = host.stop().expect("stop");
    assert_eq!(stopped.status.code(), Some(0), "{}", stopped.stderr);
}

#[tokio::test]
async fn websockets_and_pages_end_when_the_host_stops() {
    let host = TestHost::spawn(&["chat", "--local-only"]).expect("start");
    let url = host.url("chat").expect("chat tab");
    let (mut ann, _) = Member::join(&url, "ann").await;
    let client = http();
    let session = join_without_js(&client, &url, "plain").await;
    let mut page = Page::open(&client, &session).await;
    page.read_until("<ol class=\"log nojs-log\">").await;
    assert_eq!(ann.next().await, joined("plain"));

    let stopped = host.stop().expect("stop");
    assert_eq!(stopped.status.code(), Some(0), "{}", stopped.stderr);
    page.read_until("The chat has stopped: ").await;
    let close = tokio::time::timeout(DEADLINE, async {
        loop {
            match ann.ws.next().await {
                Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return None,
            }
        }
    })
    .await
    .expect("the socket did not close");
    assert_eq!(close, Some(1001));
}

/// Every file under `dir` whose contents (or name) contain one of `markers`.
fn files_with_markers(dir: &Path, markers: &[String], found: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = path.to_string_lossy().into_owned();
        if markers.iter().any(|m| name.contains(m.as_str())) {
            found.push(name.clone());
        }
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            files_with_markers(&path, markers, found);
        } else if kind.is_file() {
            let bytes = std::fs::read(&path).unwrap_or_default();
            let text = String::from_utf8_lossy(&bytes);
            for marker in markers {
                if text.contains(marker.as_str()) {
                    found.push(format!("{name} contains {marker}"));
                }
            }
        }
    }
}

#[tokio::test]
async fn the_chat_leaves_no_trace() {
    // Markers unique to this run, as usernames and as messages.
    let nonce = format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_nanos()
    );
    let nonce = &nonce[nonce.len().saturating_sub(12)..];
    let ws_name = format!("wsname{nonce}");
    let ws_rename = format!("wsrenamed{nonce}");
    let plain_name = format!("plainname{nonce}");
    let plain_rename = format!("plainrenamed{nonce}");
    let ws_message = format!("ws message marker {nonce}");
    let plain_message = format!("plain message marker {nonce}");
    let bad_message = format!("refused marker {nonce}\u{1B}");
    let markers = vec![
        ws_name.clone(),
        ws_rename.clone(),
        plain_name.clone(),
        plain_rename.clone(),
        ws_message.clone(),
        plain_message.clone(),
        format!("refused marker {nonce}"),
    ];

    // The host runs in a directory of its own inside `outer`, with its temporary files and
    // home there too, so that everything it could write is scanned afterwards.
    let outer = tempfile::tempdir().expect("temp dir");
    let mut dir = tempfile::Builder::new()
        .prefix("host")
        .tempdir_in(outer.path())
        .expect("host dir");
    dir.disable_cleanup(true);
    for sub in ["tmp", "home"] {
        std::fs::create_dir(outer.path().join(sub)).expect("mkdir");
    }
    let config = outer.path().join("onionhost.toml");
    std::fs::write(&config, "[[tab]]\nname = \"chat\"\nmode = \"chat\"\n").expect("config");
    let tmp = outer.path().join("tmp");
    let home = outer.path().join("home");
    let host = TestHost::spawn_in(
        dir,
        &[
            "run",
            "--config",
            config.to_str().expect("utf-8"),
            "--local-only",
        ],
        &[
            ("TMPDIR", tmp.to_str().expect("utf-8")),
            ("HOME", home.to_str().expect("utf-8")),
            ("RUST_BACKTRACE", "1"),
            // The most verbose logging there is: not even trace may carry a message or name.
            ("RUST_LOG", "trace"),
        ],
    )
    .expect("start");
    let url = host.url("chat").expect("chat tab");

    let (mut ws, _) = Member::join(&url, &ws_name).await;
    let client = http();
    let session = join_without_js(&client, &url, &plain_name).await;
    assert_eq!(ws.next().await, joined(&plain_name));
    let mut page = Page::open(&client, &session).await;
    ws.say(&ws_message).await;
    assert_eq!(ws.next().await, message(&ws_name, &ws_message));
    page.read_until(&ws_message).await;
    client
        .post(format!("{session}/send"))
        .form(&[("text", plain_message.as_str())])
        .send()
        .await
        .expect("POST send");
    assert_eq!(ws.next().await, message(&plain_name, &plain_message));
    // Refused input must not be logged either.
    ws.say(&bad_message).await;
    assert_eq!(ws.next().await["code"], "message_invalid");
    ws.send(json!({"type": "rename", "name": ws_rename})).await;
    assert_eq!(ws.next().await["to"], ws_rename.as_str());
    client
        .post(format!("{session}/rename"))
        .form(&[("name", plain_rename.as_str())])
        .send()
        .await
        .expect("POST rename");
    assert_eq!(ws.next().await["to"], plain_rename.as_str());
    client
        .post(format!("{session}/leave"))
        .send()
        .await
        .expect("POST leave");
    assert_eq!(ws.next().await["type"], "left");
    drop(page);
    drop(ws);

    // Let the host see the WebSocket go (its departure is reported by count), then stop it.
    host.wait_for(r"(?i)left|present: 0|0 present")
        .expect("the host reports departures");
    let stopped = host.stop().expect("stop");
    assert_eq!(stopped.status.code(), Some(0), "{}", stopped.stderr);

    let output = format!("{}\n{}", stopped.stdout, stopped.stderr);
    assert!(
        output.contains("serving at"),
        "the host printed nothing, so this test would prove nothing:\n{output}"
    );
    for marker in &markers {
        assert!(
            !output.contains(marker.as_str()),
            "the host printed {marker:?}:\n{output}"
        );
    }
    let mut found = Vec::new();
    files_with_markers(outer.path(), &markers, &mut found);
    assert!(found.is_empty(), "traces on disk: {found:?}");
    // A last check that the scan sees the files it should: the config is there.
    assert!(config.exists());
    tokio::time::sleep(Duration::ZERO).await;
}

/// Regression (issue 9, cross-site posts): `POST /nojs/join` with `Origin: http://evil.example`
/// made a member join, so a page elsewhere could act in a private tab through the browser of
/// someone who has its address. Every state-changing route of the chat, and the WebSocket
/// handshake, refuse a cross-site request (the sdk's `harden` does it for every mode);
/// same-origin requests and requests without `Origin` (curl) still work.
#[tokio::test]
async fn cross_site_requests_are_refused_and_same_site_ones_work() {
    let host = TestHost::spawn(&["chat", "--local-only"]).expect("start");
    let url = host.url("chat").expect("chat tab");
    let own_origin = url.trim_end_matches('/').to_owned();
    let client = http();
    let (mut ann, _) = Member::join(&url, "ann").await;
    let cross_site = [
        ("origin", "http://evil.example"),
        ("origin", "null"),
        ("sec-fetch-site", "cross-site"),
    ];

    for (name, value) in cross_site {
        let response = client
            .post(format!("{url}nojs/join"))
            .header(name, value)
            .form(&[("name", "lured")])
            .send()
            .await
            .expect("POST /nojs/join");
        assert_eq!(response.status(), 403, "{name}: {value}");
    }
    let response = client
        .post(format!("{url}nojs/join"))
        .header("origin", &own_origin)
        .header("sec-fetch-site", "same-origin")
        .form(&[("name", "plain")])
        .send()
        .await
        .expect("POST /nojs/join");
    assert_eq!(response.status(), 303);
    let location = response.headers()["location"].to_str().expect("ascii");
    let session = format!("{own_origin}{location}");
    // Ann's first event is this join: none of the cross-site ones happened.
    assert_eq!(ann.next().await, joined("plain"));

    for (route, field) in [("send", "text"), ("rename", "name"), ("leave", "x")] {
        for (name, value) in cross_site {
            let response = client
                .post(format!("{session}/{route}"))
                .header(name, value)
                .form(&[(field, "lured")])
                .send()
                .await
                .expect("POST a no-JS form");
            assert_eq!(response.status(), 403, "{route} with {name}: {value}");
        }
    }
    let response = client
        .post(format!("{session}/send"))
        .header("origin", &own_origin)
        .form(&[("text", "same origin")])
        .send()
        .await
        .expect("POST send");
    assert_eq!(response.status(), 303);
    let response = client
        .post(format!("{session}/send"))
        .form(&[("text", "no origin")])
        .send()
        .await
        .expect("POST send");
    assert_eq!(response.status(), 303);
    // Nothing cross-site was said, renamed or left before these.
    assert_eq!(ann.next().await, message("plain", "same origin"));
    assert_eq!(ann.next().await, message("plain", "no origin"));

    let ws_url = format!("{}ws", url.replacen("http://", "ws://", 1));
    let handshake = |header: Option<(&'static str, &str)>| {
        let mut request = ws_url.as_str().into_client_request().expect("request");
        if let Some((name, value)) = header {
            request
                .headers_mut()
                .insert(name, value.parse().expect("header value"));
        }
        tokio_tungstenite::connect_async(request)
    };
    for (name, value) in cross_site {
        match handshake(Some((name, value))).await {
            Err(tungstenite::Error::Http(response)) => {
                assert_eq!(response.status(), 403, "/ws with {name}: {value}");
            }
            other => panic!("/ws with {name}: {value} was not refused: {other:?}"),
        }
    }
    let (ws, _) = handshake(Some(("origin", own_origin.as_str())))
        .await
        .expect("a same-origin WebSocket");
    let (_same, _) = Member::join_on(ws, "same").await;
    assert_eq!(ann.next().await, joined("same"));

    let stopped = host.stop().expect("stop");
    assert_eq!(stopped.status.code(), Some(0), "{}", stopped.stderr);
}
