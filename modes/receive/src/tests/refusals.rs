//! Router tests of how uploads are refused without holding the tab: answers before the body,
//! slots freed at once, the rest of a refused body read only when small, the minimum rate.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;

use futures::channel::mpsc;
use onionhost_sdk::axum::response::Response;

use super::*;

type Sender = mpsc::Sender<Result<Bytes, std::io::Error>>;

/// Starts an upload whose body is sent through the returned sender.
fn streaming(
    tab: &Tab,
    content_length: Option<u64>,
) -> (Sender, tokio::task::JoinHandle<Response>) {
    streaming_as(tab, Visitor::unique(), content_length)
}

/// [`streaming`], from `visitor`.
fn streaming_as(
    tab: &Tab,
    visitor: Visitor,
    content_length: Option<u64>,
) -> (Sender, tokio::task::JoinHandle<Response>) {
    let (sender, receiver) = mpsc::channel(1);
    let mut request = Request::post("/upload")
        .extension(visitor)
        .header(
            header::CONTENT_TYPE,
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .header(header::ACCEPT, "application/json");
    if let Some(length) = content_length {
        request = request.header(header::CONTENT_LENGTH, length);
    }
    let request = request.body(Body::from_stream(receiver)).unwrap();
    let router = tab.tab.router.clone();
    let handler = tokio::spawn(async move { router.oneshot(request).await.unwrap() });
    (sender, handler)
}

/// The start of a form with one file part, up to its data.
fn file_head(name: &str) -> Bytes {
    Bytes::from(format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{name}\"\r\n\r\n"
    ))
}

/// The answer of a handler, which must come before the deadline.
async fn answer(handler: tokio::task::JoinHandle<Response>) -> (StatusCode, Response) {
    let response = tokio::time::timeout(Duration::from_secs(10), handler)
        .await
        .expect("no answer in time")
        .unwrap();
    (response.status(), response)
}

async fn error_code(response: Response) -> String {
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let value: serde_json::Value = serde_json::from_slice(&body).unwrap();
    value["error"].as_str().unwrap().to_owned()
}

/// Regression: an over-limit upload sent with `Expect: 100-continue` got `100 Continue` (the
/// server read its body to drain it) and the 413 only after a 30 s drain. hyper sends
/// `100 Continue` when the body is first polled: the refusal must come without polling it,
/// and close the connection.
#[tokio::test]
async fn expect_100_continue_over_the_limit_is_refused_before_the_body() {
    let tab = Tab::new("max_upload_size = \"1 MiB\"\nmax_files_per_upload = 1");
    let polled = Arc::new(AtomicBool::new(false));
    let body = {
        let polled = Arc::clone(&polled);
        futures::stream::poll_fn(move |_| {
            polled.store(true, Ordering::SeqCst);
            Poll::<Option<Result<Bytes, std::io::Error>>>::Ready(None)
        })
    };
    let request = Request::post("/upload")
        .header(
            header::CONTENT_TYPE,
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .header(header::EXPECT, "100-continue")
        .header(header::CONTENT_LENGTH, 100 * 1024 * 1024)
        .header(header::ACCEPT, "application/json")
        .body(Body::from_stream(body))
        .unwrap();
    let response = tab.tab.router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(response.headers()[header::CONNECTION], "close");
    assert_eq!(error_code(response).await, "max_upload_size");
    assert!(
        !polled.load(Ordering::SeqCst),
        "the body was polled, so hyper would have sent 100 Continue"
    );
    tab.assert_empty();
}

/// Regression: a refused upload kept its slot while the rest of its body was drained (up to
/// 30 s), so with the default four slots four refused uploads turned everyone away.
#[tokio::test]
async fn a_refused_upload_frees_its_slot_and_is_answered_at_once() {
    let tab = Tab::new("max_concurrent_uploads = 1\nmax_upload_size = 100");
    // No length announced: the rest may be small, so it is read in the background.
    let (mut sender, handler) = streaming(&tab, None);
    sender.send(Ok(file_head("big"))).await.unwrap();
    sender.send(Ok(Bytes::from(vec![1; 200]))).await.unwrap();
    // The body is still open, and the answer comes anyway.
    let (status, response) = answer(handler).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(response.headers()[header::CONNECTION], "close");
    assert_eq!(error_code(response).await, "max_upload_size");
    // The slot is free while the rest is still being read.
    let (status, page) = tab.send(multipart(&[Part::File("b", b"1")]), true).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    for _ in 0..8 {
        sender
            .send(Ok(Bytes::from(vec![2; 1024])))
            .await
            .expect("a small rest is read, so that the browser hears the answer");
    }
}

/// A refused upload with more left than is worth reading is not read any further: its body
/// is dropped, and hyper closes the connection after the answer.
#[tokio::test]
async fn a_refused_upload_with_much_left_is_closed_not_drained() {
    let tab = Tab::new("max_upload_size = \"1 MiB\"");
    // Announced within the limit plus the form overhead (1 MiB, and 64 KiB for each of the
    // 1000 + 8 parts), so read until it goes over, with about 59 MiB left then.
    let announced = 60 * 1024 * 1024;
    let (mut sender, handler) = streaming(&tab, Some(announced));
    sender.send(Ok(file_head("big"))).await.unwrap();
    let chunk = Bytes::from(vec![1; 64 * 1024]);
    let mut sent = 0;
    while sender.send(Ok(chunk.clone())).await.is_ok() {
        sent += chunk.len();
        assert!(sent < 4 * 1024 * 1024, "the server kept reading");
    }
    let (status, response) = answer(handler).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(response.headers()[header::CONNECTION], "close");
    tab.assert_empty();
}

/// A refusal decided from the head alone, for a client that does not wait for
/// `100 Continue`: answered at once, and a small body read after the answer so that the
/// client still hears it.
#[tokio::test]
async fn a_refusal_before_the_body_reads_a_small_body_after_the_answer() {
    let tab = Tab::new("max_upload_size = 1000\nmax_files_per_upload = 1");
    let (mut sender, handler) = streaming(&tab, Some(4 * 1024 * 1024));
    let (status, response) = answer(handler).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(response.headers()[header::CONNECTION], "close");
    for _ in 0..8 {
        sender
            .send(Ok(Bytes::from(vec![2; 64 * 1024])))
            .await
            .expect("the body is read after the answer");
    }
    tab.assert_empty();
}

/// Regression: four connections that each sent a byte just inside
/// `upload_idle_timeout_seconds` held every upload slot for ever, and everyone else got 503.
#[tokio::test]
async fn a_trickle_below_the_minimum_rate_loses_its_slot() {
    let tab = Tab::new(
        "max_concurrent_uploads = 1\nupload_idle_timeout_seconds = 60\n\
         min_upload_rate = \"1 KiB\"\nupload_rate_grace_seconds = 1",
    );
    let (mut sender, handler) = streaming(&tab, None);
    sender.send(Ok(file_head("slow"))).await.unwrap();
    wait_until(|| tab.folders().len() == 1).await;
    let (status, _) = tab.send(multipart(&[Part::File("b", b"1")]), true).await;
    assert_eq!(
        status,
        StatusCode::SERVICE_UNAVAILABLE,
        "the trickle holds the slot"
    );
    // One byte every 100 ms: far inside the idle timeout, far below 1 KiB a second.
    let trickle = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        loop {
            tick.tick().await;
            if sender.send(Ok(Bytes::from_static(b"x"))).await.is_err() {
                return;
            }
        }
    });
    let (status, response) = answer(handler).await;
    assert_eq!(status, StatusCode::REQUEST_TIMEOUT);
    assert_eq!(error_code(response).await, "min_upload_rate");
    tab.assert_empty();
    let (status, page) = tab.send(multipart(&[Part::File("b", b"1")]), true).await;
    assert_eq!(status, StatusCode::OK, "the slot is free again: {page}");
    trickle.abort();
}

#[tokio::test]
async fn an_upload_at_the_minimum_rate_is_kept() {
    let tab = Tab::new("min_upload_rate = 1000\nupload_rate_grace_seconds = 1");
    let (mut sender, handler) = streaming(&tab, None);
    sender.send(Ok(file_head("steady"))).await.unwrap();
    // 200 bytes every 100 ms for 2.5 s: twice the minimum, past the grace period.
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    for _ in 0..25 {
        tick.tick().await;
        sender.send(Ok(Bytes::from(vec![3; 200]))).await.unwrap();
    }
    sender
        .send(Ok(Bytes::from(format!("\r\n--{BOUNDARY}--\r\n"))))
        .await
        .unwrap();
    drop(sender);
    let (status, _) = answer(handler).await;
    assert_eq!(status, StatusCode::OK);
    let saved = std::fs::metadata(tab.folder().join("steady"))
        .unwrap()
        .len();
    assert_eq!(saved, 25 * 200);
}

/// Over Tor each visitor has a circuit of their own: one of them may hold at most
/// `max_concurrent_uploads_per_visitor` of the slots, and the others stay open to everyone.
#[tokio::test]
async fn one_visitor_cannot_take_every_slot() {
    let tab = Tab::new("max_concurrent_uploads = 4\nmax_concurrent_uploads_per_visitor = 2");
    let greedy = Visitor::unique();
    let mut held = Vec::new();
    for i in 0..2 {
        let (mut sender, handler) = streaming_as(&tab, greedy, None);
        sender
            .send(Ok(file_head(&format!("held{i}"))))
            .await
            .unwrap();
        sender.send(Ok(Bytes::from_static(b"x"))).await.unwrap();
        held.push((sender, handler));
    }
    wait_until(|| tab.folders().len() == 2).await;
    let (status, body) = tab
        .send_as(greedy, multipart(&[Part::File("third", b"3")]), true)
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(
        body.contains("\"max_concurrent_uploads_per_visitor\""),
        "{body}"
    );
    let (status, body) = tab
        .send(multipart(&[Part::File("other", b"o")]), true)
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "another visitor still gets a slot: {body}"
    );
    // The greedy visitor's uploads finish, and it may upload again.
    for (mut sender, handler) in held {
        sender
            .send(Ok(Bytes::from(format!("\r\n--{BOUNDARY}--\r\n"))))
            .await
            .unwrap();
        drop(sender);
        assert_eq!(answer(handler).await.0, StatusCode::OK);
    }
    let (status, body) = tab
        .send_as(greedy, multipart(&[Part::File("again", b"a")]), true)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}
