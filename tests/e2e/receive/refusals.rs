//! How the receive mode refuses uploads without letting anyone hold the tab, through the
//! real host: answers before the body, refused uploads' slots freed at once, the minimum
//! upload rate, cross-site posts.

use std::path::PathBuf;
use std::time::Duration;

use onionhost_tests::host::{DEADLINE, TestHost};
use reqwest::StatusCode;
use tokio::io::AsyncWriteExt;

use super::{BOUNDARY, Inbox, eventually, form, post};

/// The host and port of a tab's URL, for raw connections.
fn address(url: &str) -> String {
    url.trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned()
}

/// Reads from `stream` until `done` holds for what arrived, or the connection ends.
async fn read_until(
    stream: &mut tokio::net::TcpStream,
    mut done: impl FnMut(&[u8]) -> bool,
) -> Vec<u8> {
    use tokio::io::AsyncReadExt;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    tokio::time::timeout(DEADLINE, async {
        while !done(&got) {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .expect("the server neither answered nor closed in time");
    got
}

/// Regression (issue 9): an over-limit upload sent with `Expect: 100-continue` got
/// `100 Continue`, and its 413 only after the server had drained the body for 30 s. Now the
/// 413 comes before the body, and the connection closes without waiting for it.
#[tokio::test]
async fn expect_100_continue_over_the_limit_gets_413_before_the_body() {
    let inbox = Inbox::new();
    let host = TestHost::with_config(&inbox.config("max_upload_size = \"1 MiB\"")).expect("spawn");
    let addr = address(&host.url("inbox").expect("url"));
    let mut stream = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    let head = format!(
        "POST /upload HTTP/1.1\r\nHost: {addr}\r\nContent-Type: multipart/form-data; \
         boundary={BOUNDARY}\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\
         Accept: application/json\r\n\r\n",
        1024 * 1024 * 1024
    );
    stream.write_all(head.as_bytes()).await.expect("head");
    // Sending no body at all: the whole answer, then the end of the connection.
    let answer = read_until(&mut stream, |_| false).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.starts_with("HTTP/1.1 413"),
        "the first thing back is not the 413:\n{answer}"
    );
    assert!(!answer.contains("100 Continue"), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("connection: close"),
        "{answer}"
    );
    assert!(answer.contains("\"max_upload_size\""), "{answer}");
    assert_eq!(inbox.folders(), Vec::<PathBuf>::new());
}

/// Regression (issue 9): four connections that each sent one byte just inside
/// `upload_idle_timeout_seconds` held every default upload slot indefinitely, and everyone
/// else got 503. Now an upload slower than `min_upload_rate` (after the grace period) is cut
/// off and its slot freed.
#[tokio::test]
async fn trickling_uploads_cannot_hold_every_slot() {
    let inbox = Inbox::new();
    let host = TestHost::with_config(&inbox.config(
        "upload_idle_timeout_seconds = 3\nmin_upload_rate = \"1 KiB\"\n\
         upload_rate_grace_seconds = 1",
    ))
    .expect("spawn");
    let url = host.url("inbox").expect("url");
    let addr = address(&url);
    let mut trickles = Vec::new();
    for i in 0..4 {
        let mut stream = tokio::net::TcpStream::connect(&addr)
            .await
            .expect("connect");
        let head = format!(
            "POST /upload HTTP/1.1\r\nHost: {addr}\r\nContent-Type: multipart/form-data; \
             boundary={BOUNDARY}\r\nTransfer-Encoding: chunked\r\n\
             Accept: application/json\r\n\r\n"
        );
        let part = format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"files\"; \
             filename=\"slow{i}\"\r\n\r\n"
        );
        stream.write_all(head.as_bytes()).await.expect("head");
        stream
            .write_all(format!("{:x}\r\n{part}\r\n", part.len()).as_bytes())
            .await
            .expect("part head");
        trickles.push(tokio::spawn(async move {
            use tokio::io::AsyncReadExt;
            // One byte a second, inside the idle timeout, until the server answers.
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            let mut got = vec![0u8; 4096];
            let n = loop {
                tokio::select! {
                    _ = tick.tick() => {
                        if stream.write_all(b"1\r\nx\r\n").await.is_err() {
                            break 0;
                        }
                    }
                    read = stream.read(&mut got) => break read.unwrap_or(0),
                }
            };
            got.truncate(n);
            got.extend(read_until(&mut stream, |_| false).await);
            got
        }));
    }
    eventually("four uploads in progress", || inbox.folders().len() == 4).await;
    let (status, body) = post(&url, form(&[("a.txt", b"A")], None), true).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    // The trickles are cut off, and the next visitor gets a slot.
    for trickle in trickles {
        let answer = trickle.await.expect("trickle");
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        assert!(answer.contains("\"min_upload_rate\""), "{answer}");
    }
    let (status, body) = post(&url, form(&[("a.txt", b"A")], None), true).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(inbox.folders().len(), 1, "the cut-off uploads left nothing");
}

/// Regression (issue 9): a refused upload kept its slot for up to 30 s while the server
/// drained its body. Now the slot is free at once, and a body with much left is not read:
/// the connection is closed right after the answer.
#[tokio::test]
async fn a_refused_upload_frees_its_slot_at_once_and_is_not_drained() {
    let inbox = Inbox::new();
    let host = TestHost::with_config(
        &inbox.config("max_upload_size = \"1 MiB\"\nmax_concurrent_uploads = 1"),
    )
    .expect("spawn");
    let url = host.url("inbox").expect("url");
    let addr = address(&url);
    let mut stream = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    // 60 MiB announced (within the limit plus the form overhead allowed for 1000 files), so
    // the server reads until the data goes over 1 MiB.
    let head = format!(
        "POST /upload HTTP/1.1\r\nHost: {addr}\r\nContent-Type: multipart/form-data; \
         boundary={BOUNDARY}\r\nContent-Length: {}\r\nAccept: application/json\r\n\r\n\
         --{BOUNDARY}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"big\"\r\n\r\n",
        60 * 1024 * 1024
    );
    stream.write_all(head.as_bytes()).await.expect("head");
    let chunk = vec![7u8; 64 * 1024];
    let mut sent = 0;
    let ended = tokio::time::timeout(Duration::from_secs(20), async {
        use tokio::io::AsyncReadExt;
        let (mut reader, mut writer) = stream.split();
        let mut answer = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            tokio::select! {
                written = writer.write_all(&chunk) => {
                    if written.is_err() {
                        break;
                    }
                    sent += chunk.len();
                }
                read = reader.read(&mut buf) => match read {
                    Ok(0) | Err(_) => break,
                    Ok(n) => answer.extend_from_slice(&buf[..n]),
                },
            }
        }
        answer
    })
    .await;
    let answer = ended.expect("the server kept reading the refused upload");
    assert!(
        sent < 16 * 1024 * 1024,
        "the server read {sent} bytes of a refused upload"
    );
    // The answer itself may be lost to the reset of a connection closed mid-upload; if it
    // arrived, it is the 413.
    if !answer.is_empty() {
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    }
    let (status, body) = post(&url, form(&[("a.txt", b"A")], None), true).await;
    assert_eq!(status, StatusCode::OK, "the slot is free again: {body}");
    drop(stream);
}

/// Posts a one-file form with `headers` added.
async fn post_with(url: &str, headers: &[(&str, &str)]) -> (StatusCode, String) {
    let mut request = reqwest::Client::new()
        .post(format!("{url}upload"))
        .header(
            reqwest::header::CONTENT_TYPE,
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(form(&[("a.txt", b"A")], None));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("the upload request failed");
    let status = response.status();
    (status, response.text().await.expect("an answer"))
}

/// Regression (issue 9): `POST /upload` with `Origin: http://evil.example` saved the file, so
/// a page that knew a private tab's address could upload through a key holder's browser.
/// Cross-site posts are refused with 403 and leave nothing; same-origin posts and posts
/// without `Origin` (curl) still work.
#[tokio::test]
async fn a_cross_site_post_is_refused_and_saves_nothing() {
    let inbox = Inbox::new();
    let host = TestHost::with_config(&inbox.config("")).expect("spawn");
    let url = host.url("inbox").expect("url");
    let origin = url.trim_end_matches('/').to_owned();
    for headers in [
        &[("Origin", "http://evil.example")][..],
        &[("Origin", "null")],
        &[("Sec-Fetch-Site", "cross-site")],
        &[
            ("Origin", "http://evil.example"),
            ("Sec-Fetch-Site", "cross-site"),
        ],
    ] {
        let (status, body) = post_with(&url, headers).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{headers:?}: {body}");
        assert_eq!(
            inbox.folders(),
            Vec::<PathBuf>::new(),
            "{headers:?} saved a file"
        );
    }
    let (status, body) = post_with(
        &url,
        &[
            ("Origin", origin.as_str()),
            ("Sec-Fetch-Site", "same-origin"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "same origin: {body}");
    let (status, body) = post_with(&url, &[]).await;
    assert_eq!(status, StatusCode::OK, "no Origin: {body}");
    assert_eq!(inbox.folders().len(), 2);
}
