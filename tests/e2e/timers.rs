//! Tab timers (`auto_start`, `auto_stop`, `--auto-start-timer`, `--auto-stop-timer`): a tab
//! is unreachable before its start and reachable after; at its stop a share finishes the
//! download in flight and refuses new visitors, chat members are told; bad timers are config
//! errors with file and line. Short timers and polling with a deadline, no sleeps.

use std::time::{Duration, Instant};

use futures::StreamExt as _;
use onionhost_tests::chat_client::Member;
use onionhost_tests::host::{DEADLINE, TestHost, page_text};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

/// The port of an `http://127.0.0.1:PORT/` URL.
fn port_of(url: &str) -> u16 {
    url.trim_start_matches("http://127.0.0.1:")
        .trim_end_matches('/')
        .parse()
        .expect("a loopback URL")
}

#[tokio::test]
async fn a_tab_is_unreachable_before_its_auto_start_and_reachable_after() {
    let host =
        TestHost::spawn(&["chat", "--local-only", "--auto-start-timer", "2"]).expect("spawn");
    let caps = host
        .wait_for(r"\[chat\] not serving yet: reachable from (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) at (http://127\.0\.0\.1:\d+/)")
        .expect("the address is printed before the start");
    let port = port_of(&caps[2]);
    assert!(
        TcpStream::connect(("127.0.0.1", port)).await.is_err(),
        "nothing listens before the start"
    );
    assert!(!host.output().contains("serving at"), "{}", host.output());
    // From the start on, the same address answers.
    let deadline = Instant::now() + DEADLINE;
    let stream = loop {
        if let Ok(stream) = TcpStream::connect(("127.0.0.1", port)).await {
            break stream;
        }
        assert!(
            Instant::now() < deadline,
            "never reachable:\n{}",
            host.output()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    drop(stream);
    let url = host.url("chat").expect("serving at the announced address");
    assert_eq!(port_of(&url), port);
    let response = reqwest::get(&url).await.expect("GET /");
    assert_eq!(response.status(), 200);
    let stopped = host.stop().expect("stop");
    assert!(stopped.status.success(), "{stopped:?}");
}

#[tokio::test]
async fn auto_stop_lets_the_download_in_flight_finish_then_stops_the_share() {
    let dir = tempfile::tempdir().expect("temp dir");
    let big = dir.path().join("big.bin");
    // Far more than the loopback socket buffers hold, so the download is in flight as long as
    // this test does not read.
    let content: Vec<u8> = (0..48_000_000u32).map(|i| (i % 253) as u8).collect();
    std::fs::write(&big, &content).expect("write");
    let host = TestHost::spawn(&[
        "share",
        big.to_str().expect("utf-8"),
        "--keep-sharing",
        "--auto-stop-timer",
        "3",
        "--local-only",
    ])
    .expect("spawn");
    let url = host.url("share").expect("address");
    let port = port_of(&url);
    let mut download = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    download
        .write_all(b"GET /files/big.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .expect("request");
    let mut received = vec![0u8; 64 * 1024];
    download
        .read_exact(&mut received)
        .await
        .expect("the download starts");
    assert!(
        !host.output().contains("stopping:"),
        "the timer ran out before the download started (a slow machine?):\n{}",
        host.output()
    );
    host.wait_for(r"\[share\] stopping: its auto-stop timer ran out \(3s\)")
        .expect("the console says why the tab stops");
    // New visitors are refused (from the moment the tab's task sees the stop, just after
    // that line), while the download goes on.
    let deadline = Instant::now() + DEADLINE;
    while TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
        assert!(
            Instant::now() < deadline,
            "a stopping share still takes new connections"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        !host.output().contains("[share] stopped"),
        "{}",
        host.output()
    );
    download.read_to_end(&mut received).await.expect("the rest");
    let split = received
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head");
    assert!(received.starts_with(b"HTTP/1.1 200"));
    assert!(
        received[split + 4..] == content[..],
        "the download was cut: {} of {} bytes",
        received.len() - split - 4,
        content.len()
    );
    host.wait_for(r"\[share\] stopped")
        .expect("then the tab stops");
    let stopped = host.wait_exit().expect("the host ends with its only tab");
    assert!(stopped.status.success(), "{stopped:?}");
}

#[tokio::test]
async fn chat_members_are_told_when_auto_stop_closes_the_room() {
    let host = TestHost::spawn(&[
        "chat",
        "--local-only",
        "--auto-stop-timer",
        "2",
        "--title",
        "Short-lived",
    ])
    .expect("spawn");
    let url = host.url("chat").expect("address");
    let page = page_text(&url).await;
    assert!(
        page.contains("<title>Short-lived</title>"),
        "--title sets the page's title"
    );
    let (mut member, _) = Member::join(&url, "alice").await;
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let close = loop {
        let frame = tokio::time::timeout_at(deadline, member.ws.next())
            .await
            .expect("no close frame in time")
            .expect("the connection ended without a close frame")
            .expect("a WebSocket error");
        if let Message::Close(frame) = frame {
            break frame.expect("a close frame with a reason");
        }
    };
    assert_eq!(close.reason.as_str(), "The chat has stopped.");
    host.wait_for(r"\[chat\] stopping: its auto-stop timer ran out \(2s\)")
        .expect("the console says why");
    let stopped = host.wait_exit().expect("the host ends with its only tab");
    assert!(stopped.status.success(), "{stopped:?}");
}

/// Runs the host on `config` and returns its stderr, asserting it refused to start.
fn refused(config: &str) -> String {
    let host = TestHost::with_config(config).expect("start onionhost");
    let stopped = host.wait_exit().expect("onionhost should exit by itself");
    assert_eq!(stopped.status.code(), Some(2), "{}", stopped.stderr);
    assert!(!stopped.stdout.contains("serving"), "{}", stopped.stdout);
    stopped.stderr
}

/// A local time `ahead` from now, as a config writes it.
fn local_time_in(ahead: Duration) -> String {
    let at = chrono::Local::now() + ahead;
    at.format("%Y-%m-%d %H:%M").to_string()
}

#[test]
fn bad_timers_are_config_errors_with_their_line() {
    let err =
        refused("[[tab]]\nname = \"a\"\nmode = \"chat\"\nauto_start = \"2020-01-01 10:00\"\n");
    assert!(
        err.contains("onionhost.toml:4: `auto_start`: \"2020-01-01 10:00\" is in the past"),
        "{err}"
    );
    let err = refused(&format!(
        "[[tab]]\nname = \"a\"\nmode = \"chat\"\nauto_start = \"{}\"\nauto_stop = \"{}\"\n",
        local_time_in(Duration::from_secs(2 * 3600)),
        local_time_in(Duration::from_secs(3600)),
    ));
    assert!(
        err.contains("onionhost.toml:5: `auto_stop`") && err.contains("is not after `auto_start`"),
        "{err}"
    );
    let err = refused("[[tab]]\nname = \"a\"\nmode = \"chat\"\nauto_stop = \"soonish\"\n");
    assert!(
        err.contains("onionhost.toml:4: `auto_stop`: \"soonish\" is neither a time nor a delay"),
        "{err}"
    );
    let host = TestHost::spawn(&["chat", "--local-only", "--auto-stop-timer", "0"]).expect("spawn");
    let stopped = host.wait_exit().expect("exit");
    assert_eq!(stopped.status.code(), Some(2), "{}", stopped.stderr);
    assert!(
        stopped.stderr.contains("--auto-stop-timer"),
        "{}",
        stopped.stderr
    );
}

#[tokio::test]
async fn auto_stop_lets_the_upload_in_flight_finish_and_refuses_new_ones() {
    let dir = tempfile::tempdir().expect("temp dir");
    let inbox = dir.path().join("inbox");
    let host = TestHost::spawn(&[
        "receive",
        inbox.to_str().expect("utf-8"),
        "--auto-stop-timer",
        "2",
        "--local-only",
    ])
    .expect("spawn");
    let port = port_of(&host.url("receive").expect("address"));
    let boundary = "timers-e2e-boundary";
    let data: Vec<u8> = (0..200_000u32).map(|i| (i % 241) as u8).collect();
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"late.bin\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(&data);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let mut upload = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    upload
        .write_all(
            format!(
                "POST /upload HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
                 Content-Type: multipart/form-data; boundary={boundary}\r\n\
                 Content-Length: {}\r\n\r\n",
                body.len()
            )
            .as_bytes(),
        )
        .await
        .expect("head");
    let half = body.len() / 2;
    upload.write_all(&body[..half]).await.expect("first half");
    host.wait_for(r"\[receive\] stopping: its auto-stop timer ran out \(2s\)")
        .expect("the console says why the tab stops");
    let deadline = Instant::now() + DEADLINE;
    while TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
        assert!(
            Instant::now() < deadline,
            "a stopping receive still takes new uploads"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    upload.write_all(&body[half..]).await.expect("second half");
    let mut answer = Vec::new();
    upload.read_to_end(&mut answer).await.expect("the answer");
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.starts_with("HTTP/1.1 200") || answer.starts_with("HTTP/1.1 303"),
        "the upload in flight is taken: {answer}"
    );
    let stopped = host.wait_exit().expect("the host ends with its only tab");
    assert!(stopped.status.success(), "{stopped:?}");
    let saved: Vec<_> = std::fs::read_dir(&inbox)
        .expect("the inbox")
        .flatten()
        .map(|upload| upload.path().join("late.bin"))
        .collect();
    assert_eq!(saved.len(), 1, "one upload");
    assert!(
        std::fs::read(&saved[0]).expect("the file") == data,
        "saved whole"
    );
}
