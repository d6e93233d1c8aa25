//! Tests of the WebSocket protocol over a real loopback socket.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;

use futures::{SinkExt, StreamExt};
use onionhost_sdk::TabEvent;
use onionhost_sdk::testing::TestTab;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::test_support::{DEADLINE, tab};

struct Client {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

async fn serve(section: &str) -> (TestTab, SocketAddr) {
    let tab = tab(section);
    let addr = tab.serve_on_loopback().await.unwrap();
    (tab, addr)
}

async fn connect(addr: SocketAddr) -> Client {
    let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
        .await
        .unwrap();
    Client { ws }
}

/// Connects and joins as `name`; returns the client and its `welcome`.
async fn join(addr: SocketAddr, name: &str) -> (Client, Value) {
    let mut client = connect(addr).await;
    client.send(json!({"type": "join", "name": name})).await;
    let welcome = client.next().await;
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    (client, welcome)
}

impl Client {
    async fn send(&mut self, value: Value) {
        self.ws
            .send(Message::text(value.to_string()))
            .await
            .unwrap();
    }

    /// The next frame of any kind, within the deadline.
    async fn frame(&mut self) -> Option<Message> {
        tokio::time::timeout(DEADLINE, self.ws.next())
            .await
            .expect("nothing received in time")
            .map(|frame| frame.unwrap())
    }

    /// The next JSON message; pings and pongs are skipped.
    async fn next(&mut self) -> Value {
        loop {
            match self.frame().await {
                Some(Message::Text(text)) => return serde_json::from_str(text.as_str()).unwrap(),
                Some(Message::Ping(_) | Message::Pong(_)) => {}
                other => panic!("expected a JSON message, got {other:?}"),
            }
        }
    }

    /// The next JSON message, which must be an error with `code`.
    async fn error(&mut self, code: &str) -> String {
        let msg = self.next().await;
        assert_eq!(msg["type"], "error", "{msg}");
        assert_eq!(msg["code"], code, "{msg}");
        msg["message"].as_str().unwrap().to_owned()
    }

    /// Reads until the server closes; returns its close frame.
    async fn closed(&mut self) -> Option<CloseFrame> {
        loop {
            match tokio::time::timeout(DEADLINE, self.ws.next())
                .await
                .expect("the server did not close in time")
            {
                Some(Ok(Message::Close(frame))) => return frame,
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return None,
            }
        }
    }
}

fn joined(name: &str) -> Value {
    json!({"type": "joined", "name": name})
}

fn message(from: &str, text: &str) -> Value {
    json!({"type": "message", "from": from, "text": text})
}

#[tokio::test]
async fn members_see_joins_messages_renames_and_leaves_in_order() {
    let (_tab, addr) = serve("").await;
    let (mut ann, welcome) = join(addr, "ann").await;
    assert_eq!(welcome["you"], "ann");
    assert_eq!(welcome["members"], json!(["ann"]));
    assert_eq!(welcome["max_message_bytes"], 4096);
    assert_eq!(welcome["resume"].as_str().unwrap().len(), 32);
    let (mut bo, welcome) = join(addr, "bo").await;
    assert_eq!(welcome["members"], json!(["ann", "bo"]));
    assert_eq!(ann.next().await, joined("bo"));

    for (from, text) in [("ann", "one"), ("bo", "two"), ("ann", "three")] {
        let sender = if from == "ann" { &mut ann } else { &mut bo };
        sender.send(json!({"type": "send", "text": text})).await;
        // Both see it, the sender too, before the next line is sent.
        assert_eq!(ann.next().await, message(from, text));
        assert_eq!(bo.next().await, message(from, text));
    }

    bo.send(json!({"type": "rename", "name": "Bob"})).await;
    let renamed = json!({"type": "renamed", "from": "bo", "to": "Bob"});
    assert_eq!(ann.next().await, renamed);
    assert_eq!(bo.next().await, renamed);

    bo.send(json!({"type": "leave"})).await;
    let frame = bo.closed().await.unwrap();
    assert_eq!(u16::from(frame.code), 1000);
    assert_eq!(ann.next().await, json!({"type": "left", "name": "Bob"}));
}

#[tokio::test]
async fn every_member_sees_the_same_order() {
    let (_tab, addr) = serve("[rate_limit]\nburst = 50").await;
    let (mut ann, _) = join(addr, "ann").await;
    let (mut bo, _) = join(addr, "bo").await;
    let (mut cy, _) = join(addr, "cy").await;
    assert_eq!(ann.next().await, joined("bo"));
    assert_eq!(ann.next().await, joined("cy"));
    assert_eq!(bo.next().await, joined("cy"));
    let senders = async {
        for i in 0..20 {
            ann.send(json!({"type": "send", "text": format!("a{i}")}))
                .await;
            bo.send(json!({"type": "send", "text": format!("b{i}")}))
                .await;
        }
    };
    senders.await;
    let mut seen = Vec::new();
    for client in [&mut ann, &mut bo, &mut cy] {
        let mut lines = Vec::new();
        for _ in 0..40 {
            lines.push(client.next().await);
        }
        seen.push(lines);
    }
    assert_eq!(seen[0], seen[1]);
    assert_eq!(seen[1], seen[2]);
    // Each sender's own lines keep their order.
    let from_ann: Vec<_> = seen[0].iter().filter(|m| m["from"] == "ann").collect();
    for (i, m) in from_ann.iter().enumerate() {
        assert_eq!(m["text"], format!("a{i}"));
    }
}

#[tokio::test]
async fn a_connection_must_join_before_it_can_act() {
    let (_tab, addr) = serve("").await;
    let (mut ann, _) = join(addr, "ann").await;
    let mut stranger = connect(addr).await;
    stranger
        .send(json!({"type": "send", "text": "sneaky"}))
        .await;
    stranger.error("not_joined").await;
    stranger.send(json!({"type": "rename", "name": "x"})).await;
    stranger.error("not_joined").await;
    stranger.send(json!({"type": "leave"})).await;
    stranger.error("not_joined").await;
    // The connection carries on and may still join.
    stranger.send(json!({"type": "join", "name": "late"})).await;
    assert_eq!(stranger.next().await["you"], "late");
    stranger
        .send(json!({"type": "join", "name": "again"}))
        .await;
    stranger.error("already_joined").await;
    // Ann saw nothing of the refused requests: the join is the first thing she sees.
    assert_eq!(ann.next().await, joined("late"));
}

#[tokio::test]
async fn requests_cannot_name_a_sender_or_a_victim() {
    let (_tab, addr) = serve("").await;
    let (mut ann, _) = join(addr, "ann").await;
    let (mut mallory, _) = join(addr, "mallory").await;
    assert_eq!(ann.next().await, joined("mallory"));
    for forged in [
        json!({"type": "send", "text": "I am ann", "from": "ann"}),
        json!({"type": "leave", "name": "ann"}),
        json!({"type": "rename", "name": "x", "from": "ann"}),
        json!({"type": "message", "from": "ann", "text": "hi"}),
        json!({"type": "left", "name": "ann"}),
    ] {
        mallory.send(forged).await;
        mallory.error("bad_request").await;
    }
    mallory.send(json!({"type": "rename", "name": "ANN"})).await;
    assert!(mallory.error("name_taken").await.contains("taken"));
    mallory
        .send(json!({"type": "send", "text": "honest"}))
        .await;
    // Ann's next event is Mallory's honest message under Mallory's own name.
    assert_eq!(ann.next().await, message("mallory", "honest"));
}

#[tokio::test]
async fn malformed_requests_get_an_error_and_the_connection_carries_on() {
    let (_tab, addr) = serve("").await;
    let (mut ann, _) = join(addr, "ann").await;
    ann.ws.send(Message::text("not json")).await.unwrap();
    ann.error("bad_request").await;
    ann.ws.send(Message::binary(vec![1, 2, 3])).await.unwrap();
    ann.error("bad_request").await;
    ann.send(json!({"type": "send", "text": "fine"})).await;
    assert_eq!(ann.next().await, message("ann", "fine"));
}

#[tokio::test]
async fn messages_over_the_size_limit_are_refused() {
    let (_tab, addr) = serve("max_message_bytes = 10").await;
    let (mut ann, _) = join(addr, "ann").await;
    ann.send(json!({"type": "send", "text": "12345678901"}))
        .await;
    assert!(
        ann.error("message_invalid")
            .await
            .contains("at most 10 bytes")
    );
    ann.send(json!({"type": "send", "text": "1234567890"}))
        .await;
    assert_eq!(ann.next().await, message("ann", "1234567890"));
}

#[tokio::test]
async fn frames_over_the_protocol_limit_close_the_connection_and_the_room_carries_on() {
    let (_tab, addr) = serve("max_message_bytes = 10").await;
    let (mut ann, _) = join(addr, "ann").await;
    let (mut big, _) = join(addr, "big").await;
    assert_eq!(ann.next().await, joined("big"));
    // 6 * 10 + 1024 bytes is the most a request may take.
    let huge = json!({"type": "send", "text": "x".repeat(2000)}).to_string();
    let _ = big.ws.send(Message::text(huge)).await;
    big.closed().await;
    assert_eq!(ann.next().await, json!({"type": "left", "name": "big"}));
    ann.send(json!({"type": "send", "text": "still on"})).await;
    assert_eq!(ann.next().await, message("ann", "still on"));
}

#[tokio::test]
async fn each_connection_is_rate_limited() {
    let (_tab, addr) = serve("[rate_limit]\nburst = 3\nmessages_per_minute = 1").await;
    let (mut ann, _) = join(addr, "ann").await;
    let (mut bo, _) = join(addr, "bo").await;
    assert_eq!(ann.next().await, joined("bo"));
    // The join took one token of three.
    ann.send(json!({"type": "send", "text": "1"})).await;
    ann.send(json!({"type": "send", "text": "2"})).await;
    ann.send(json!({"type": "send", "text": "3"})).await;
    assert_eq!(ann.next().await, message("ann", "1"));
    assert_eq!(ann.next().await, message("ann", "2"));
    assert!(ann.error("rate_limited").await.contains("too fast"));
    // Another connection has its own bucket.
    bo.send(json!({"type": "send", "text": "mine"})).await;
    assert_eq!(ann.next().await, message("bo", "mine"));
}

#[tokio::test]
async fn binary_frames_count_against_the_rate_limit_too() {
    let (_tab, addr) = serve("[rate_limit]\nburst = 2\nmessages_per_minute = 1").await;
    let mut client = connect(addr).await;
    for _ in 0..2 {
        client
            .ws
            .send(Message::binary(vec![0u8; 16]))
            .await
            .unwrap();
        client.error("bad_request").await;
    }
    // The bucket is empty: the join is refused like any other frame, and the page is told
    // to come back later rather than wait for the join timeout.
    client.send(json!({"type": "join"})).await;
    client.error("rate_limited").await;
    assert_eq!(u16::from(client.closed().await.unwrap().code), 4004);
}

#[tokio::test]
async fn the_room_refuses_members_beyond_its_limit() {
    let (_tab, addr) = serve("max_members = 2").await;
    let (_ann, _) = join(addr, "ann").await;
    let (bo, _) = join(addr, "bo").await;
    let mut third = connect(addr).await;
    third.send(json!({"type": "join"})).await;
    third.error("room_full").await;
    assert_eq!(u16::from(third.closed().await.unwrap().code), 4003);
    drop(bo);
    // Bo's seat frees once the server notices; poll with a deadline.
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let mut again = connect(addr).await;
        again.send(json!({"type": "join"})).await;
        if again.next().await["type"] == "welcome" {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "bo's seat never freed"
        );
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn an_invalid_name_on_join_gives_a_random_name_and_an_error() {
    let (_tab, addr) = serve("").await;
    let (_ann, _) = join(addr, "Ann").await;
    let mut other = connect(addr).await;
    other.send(json!({"type": "join", "name": "aNN"})).await;
    let welcome = other.next().await;
    assert_ne!(welcome["you"].as_str().unwrap().to_lowercase(), "ann");
    other.error("name_taken").await;
    let mut hidden = connect(addr).await;
    hidden
        .send(json!({"type": "join", "name": "a\u{200B}b"}))
        .await;
    assert_ne!(hidden.next().await["you"], "a\u{200B}b");
    assert!(hidden.error("name_invalid").await.contains("invisible"));
}

#[tokio::test]
async fn idle_connections_are_pinged() {
    let (_tab, addr) = serve("keepalive_seconds = 1").await;
    let (mut ann, _) = join(addr, "ann").await;
    for _ in 0..2 {
        match ann.frame().await {
            Some(Message::Ping(_)) => {}
            other => panic!("expected a ping, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_reconnect_with_the_resume_token_keeps_the_name_silently() {
    let (_tab, addr) = serve("").await;
    let (mut ann, _) = join(addr, "ann").await;
    let (mut old, welcome) = join(addr, "bo").await;
    assert_eq!(ann.next().await, joined("bo"));
    let resume = welcome["resume"].as_str().unwrap().to_owned();

    // A stranger with the name but not the token gets another name.
    let mut thief = connect(addr).await;
    thief
        .send(json!({"type": "join", "name": "bo", "resume": "0".repeat(32)}))
        .await;
    let stolen = thief.next().await;
    assert_ne!(stolen["you"], "bo");
    assert_eq!(ann.next().await, joined(stolen["you"].as_str().unwrap()));

    let mut new = connect(addr).await;
    new.send(json!({"type": "join", "name": "bo", "resume": resume}))
        .await;
    let welcome = new.next().await;
    assert_eq!(welcome["you"], "bo");
    assert_eq!(welcome["resume"], resume.as_str());
    assert_eq!(u16::from(old.closed().await.unwrap().code), 4001);
    new.send(json!({"type": "send", "text": "back"})).await;
    // Ann sees neither a departure nor a join of bo, only the message.
    assert_eq!(ann.next().await, message("bo", "back"));
}

#[tokio::test]
async fn sockets_close_when_the_tab_stops() {
    let (tab, addr) = serve("").await;
    let (mut ann, _) = join(addr, "ann").await;
    let mut unjoined = connect(addr).await;
    tab.shutdown.cancel();
    assert_eq!(u16::from(ann.closed().await.unwrap().code), 1001);
    assert_eq!(u16::from(unjoined.closed().await.unwrap().code), 1001);
}

#[tokio::test]
async fn cross_site_handshakes_are_refused() {
    let (_tab, addr) = serve("").await;
    let mut request = format!("ws://{addr}/ws").into_client_request().unwrap();
    request
        .headers_mut()
        .insert("origin", "http://evil.example".parse().unwrap());
    match tokio_tungstenite::connect_async(request).await {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 403),
        other => panic!("expected a refusal, got {:?}", other.map(|_| ())),
    }
    let mut request = format!("ws://{addr}/ws").into_client_request().unwrap();
    request
        .headers_mut()
        .insert("origin", format!("http://{addr}").parse().unwrap());
    tokio_tungstenite::connect_async(request).await.unwrap();
}

#[tokio::test]
async fn the_host_hears_how_many_are_present_and_never_a_name() {
    let (tab, addr) = serve("").await;
    let (mut ann, _) = join(addr, "ann-secret").await;
    let (bo, _) = join(addr, "bo-secret").await;
    assert_eq!(ann.next().await, joined("bo-secret"));
    drop(bo);
    assert_eq!(ann.next().await["type"], "left");
    let expected = [
        TabEvent::VisitorJoined { present: 1 },
        TabEvent::VisitorJoined { present: 2 },
        TabEvent::VisitorLeft { present: 1 },
    ];
    // The host hears of the departure just after the room does; poll with a deadline.
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while tab.events().len() < expected.len() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert_eq!(tab.events(), expected);
}

/// Regression (issue 9, look-alike names): "аlice" with a Cyrillic а joined next to "alice"
/// as a second person; the join now gets a random name and says why, and so does a rename.
#[tokio::test]
async fn a_look_alike_name_is_refused_on_join_and_rename() {
    let (_tab, addr) = serve("").await;
    let (mut alice, _) = join(addr, "alice").await;
    let (mut fake, welcome) = join(addr, "\u{430}lice").await;
    assert_ne!(welcome["you"], "\u{430}lice", "{welcome}");
    let why = fake.error("name_taken").await;
    assert!(
        why.contains("looks too much like \u{201C}alice\u{201D}"),
        "{why}"
    );
    assert_eq!(alice.next().await, joined(welcome["you"].as_str().unwrap()));
    fake.send(json!({"type": "rename", "name": "ALIC\u{415}"}))
        .await;
    assert!(
        fake.error("name_taken")
            .await
            .contains("looks too much like")
    );
}

/// Regression (issue 9, room-wide floods): each reconnect joined anew and was announced,
/// without any limit on the room's side. Beyond the room's join limit a page is refused and
/// closed with 4004 (its page retries later), and nobody hears of it.
#[tokio::test]
async fn joins_beyond_the_rooms_join_limit_are_refused() {
    let (_tab, addr) = serve("[join_limit]\nburst = 3\njoins_per_minute = 1").await;
    let (mut ann, _) = join(addr, "ann").await;
    for name in ["bo", "cy"] {
        let (mut member, _) = join(addr, name).await;
        assert_eq!(ann.next().await, joined(name));
        member.send(json!({"type": "leave"})).await;
        member.closed().await;
        assert_eq!(ann.next().await, json!({"type": "left", "name": name}));
    }
    let mut late = connect(addr).await;
    late.send(json!({"type": "join", "name": "dee"})).await;
    late.error("room_busy").await;
    assert_eq!(u16::from(late.closed().await.unwrap().code), 4004);
    ann.send(json!({"type": "send", "text": "still here"}))
        .await;
    assert_eq!(
        ann.next().await,
        message("ann", "still here"),
        "no join or leave of dee"
    );
}
