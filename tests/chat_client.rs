//! A chat member over a WebSocket, as the end-to-end tests drive one: on loopback, or over any
//! byte stream (a stream through tor).

use futures::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::host::DEADLINE;

/// One member of a chat tab.
pub struct Member<S> {
    /// The WebSocket, for tests that read its frames themselves (the close frame, say).
    pub ws: WebSocketStream<S>,
}

impl Member<MaybeTlsStream<TcpStream>> {
    /// Connects to the tab at `url` (`http://127.0.0.1:PORT/`) and joins as `name`; returns
    /// the member and its `welcome`.
    pub async fn join(url: &str, name: &str) -> (Self, Value) {
        let ws_url = format!("{}ws", url.replacen("http://", "ws://", 1));
        let (ws, _) = tokio_tungstenite::connect_async(ws_url)
            .await
            .expect("WebSocket handshake");
        Self::join_on(ws, name).await
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Member<S> {
    /// Joins as `name` on an open WebSocket; returns the member and its `welcome`.
    pub async fn join_on(ws: WebSocketStream<S>, name: &str) -> (Self, Value) {
        let mut member = Self { ws };
        member.send(json!({"type": "join", "name": name})).await;
        let welcome = member.next().await;
        assert_eq!(welcome["type"], "welcome", "{welcome}");
        (member, welcome)
    }

    /// Sends one request.
    pub async fn send(&mut self, request: Value) {
        self.ws
            .send(Message::text(request.to_string()))
            .await
            .expect("send");
    }

    /// Says `text` to the room.
    pub async fn say(&mut self, text: &str) {
        self.send(json!({"type": "send", "text": text})).await;
    }

    /// The next JSON message (pings skipped), within the deadline.
    pub async fn next(&mut self) -> Value {
        loop {
            let frame = tokio::time::timeout(DEADLINE, self.ws.next())
                .await
                .expect("nothing received in time")
                .expect("the connection ended")
                .expect("a WebSocket error");
            match frame {
                Message::Text(text) => return serde_json::from_str(text.as_str()).expect("JSON"),
                Message::Ping(_) | Message::Pong(_) => {}
                other => panic!("expected a JSON message, got {other:?}"),
            }
        }
    }
}
