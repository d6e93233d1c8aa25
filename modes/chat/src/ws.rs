//! `GET /ws`: the live page's WebSocket. One task per connection reads the page's requests,
//! writes the room's events, and pings so that an idle connection over Tor stays open.

use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use futures::{SinkExt as _, StreamExt as _};
use onionhost_sdk::CancellationToken;
use onionhost_sdk::axum::extract::State;
use onionhost_sdk::axum::extract::ws::{
    CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade,
};
use onionhost_sdk::axum::http::StatusCode;
use onionhost_sdk::axum::response::Response;
use onionhost_sdk::http::{Visitor, plain_error};
use tokio::sync::broadcast;
use tokio::time::{Instant, MissedTickBehavior};

use crate::Chat;
use crate::protocol::{ClientRequest, ServerMessage, parse_request};
use crate::room::{ActionError, JoinRequest, Joined, Membership, RoomEvent};

mod gate;

use gate::Gate;

/// A connection must join within this time, so that idle sockets cannot pile up.
const JOIN_TIMEOUT: Duration = Duration::from_secs(30);

/// A connection whose peer has not answered for this many keepalive periods is dead.
const MISSED_PINGS: u32 = 3;

/// How long one frame may take to be written before the peer counts as gone.
const SEND_TIMEOUT: Duration = Duration::from_secs(30);

/// The most bytes waiting to be written on one connection (beyond the frame being sent).
const WRITE_BUFFER: usize = 256 * 1024;

/// Bytes gathered before a write, and read at once: small, because a room holds thousands of
/// connections and the library's default (128 KiB each way) would cost that much per member.
/// A page sends little, and a larger frame still arrives whole (the buffer grows to it); 4 KiB
/// rather than 8 took 10,000 members from 205 MiB to 145 (BENCHMARKS.md).
const IO_BUFFER: usize = 4 * 1024;

/// The most queued room events written with one flush: in a burst (a join storm, a busy
/// room) a member's events leave in one write instead of one write each.
const EVENT_BATCH: usize = 64;

/// Close codes of the protocol (4000-4999 are for applications).
mod close {
    /// Normal closure: the member left.
    pub(super) const LEFT: u16 = 1000;
    /// Going away: the tab is stopping.
    pub(super) const STOPPING: u16 = 1001;
    /// The member fell too far behind the room; the page should reconnect.
    pub(super) const TOO_SLOW: u16 = 4000;
    /// A newer connection with the resume token took the member over; do not reconnect.
    pub(super) const REPLACED: u16 = 4001;
    /// The connection did not join in time.
    pub(super) const JOIN_TIMEOUT: u16 = 4002;
    /// The room is full; the page may try again later.
    pub(super) const ROOM_FULL: u16 = 4003;
    /// Too many joins (the room's or this visitor's limit); the page may try again later.
    pub(super) const BUSY: u16 = 4004;
}

/// Upgrades to a WebSocket, with the room's size limits on every frame and message. A
/// handshake from another site never gets here: the sdk's `harden` refuses it.
pub(crate) async fn upgrade(
    State(chat): State<Arc<Chat>>,
    visitor: Visitor,
    ws: WebSocketUpgrade,
) -> Response {
    let Ok(permit) = Arc::clone(&chat.connections).try_acquire_owned() else {
        return plain_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "Too many connections; try again later.",
        );
    };
    let max = chat.config.max_frame_bytes();
    let guard = chat.ctx.task_guard();
    ws.max_message_size(max)
        .max_frame_size(max)
        .read_buffer_size(IO_BUFFER)
        .write_buffer_size(IO_BUFFER)
        .max_write_buffer_size(WRITE_BUFFER + max)
        .on_upgrade(move |socket| async move {
            Connection::new(chat, socket, visitor).run().await;
            drop(permit);
            drop(guard);
        })
}

/// What woke the connection's loop.
enum Step {
    Stopping,
    Replaced,
    JoinTimeout,
    Ping,
    Event(Result<Arc<RoomEvent>, broadcast::error::RecvError>),
    Frame(Option<Result<Message, onionhost_sdk::axum::Error>>),
}

/// What to do after a step.
enum Next {
    Continue,
    Close(u16, &'static str),
    Drop,
}

struct Connection {
    chat: Arc<Chat>,
    socket: WebSocket,
    /// The socket's reads, polled only once it woke: every room event wakes the loop.
    reads: Gate,
    /// The tokens and timers the loop waits on, polled only once one of them woke.
    waits: Gate,
    /// Whose rate limit this connection's requests cost: every connection of one visitor
    /// (one Tor circuit) shares it, so a reconnect gets no fresh burst.
    visitor: Visitor,
    membership: Option<Membership>,
    events: Option<broadcast::Receiver<Arc<RoomEvent>>>,
    /// Resolves when a newer connection takes the member over; never before the join.
    replaced: Cancelled,
    last_heard: Instant,
}

/// A token's cancellation, waited on across the loop's turns: the loop's gate polls it only
/// once it woke, so it must stay the future that registered with the token (one made anew on
/// every turn would also register and leave again, under the token's lock, for each event).
type Cancelled = Pin<Box<dyn Future<Output = ()> + Send>>;

fn cancelled(token: CancellationToken) -> Cancelled {
    Box::pin(token.cancelled_owned())
}

impl Connection {
    fn new(chat: Arc<Chat>, socket: WebSocket, visitor: Visitor) -> Self {
        Self {
            chat,
            socket,
            reads: Gate::new(),
            waits: Gate::new(),
            visitor,
            membership: None,
            events: None,
            replaced: Box::pin(std::future::pending()),
            last_heard: Instant::now(),
        }
    }

    async fn run(mut self) {
        let mut stopping = cancelled(self.chat.ctx.shutdown_token());
        let keepalive = self.chat.config.keepalive();
        let mut ping = tokio::time::interval_at(Instant::now() + keepalive, keepalive);
        ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let join_deadline = tokio::time::sleep(JOIN_TIMEOUT);
        tokio::pin!(join_deadline);
        loop {
            // Room events first: a busy room wakes every connection for each event. The
            // socket, the tokens and the timers are polled only once they have woken (see
            // `gate`), so an event costs the connection its write and little else. The others
            // wait at most for the events already queued, since the room's are finite.
            let step = {
                let mut event = pin!(next_event(&mut self.events));
                poll_fn(|cx| {
                    if let Poll::Ready(event) = event.as_mut().poll(cx) {
                        return Poll::Ready(Step::Event(event));
                    }
                    if let Poll::Ready(frame) =
                        self.reads.poll(cx, |cx| self.socket.poll_next_unpin(cx))
                    {
                        return Poll::Ready(Step::Frame(frame));
                    }
                    self.waits.poll(cx, |cx| {
                        if stopping.as_mut().poll(cx).is_ready() {
                            Poll::Ready(Step::Stopping)
                        } else if self.replaced.as_mut().poll(cx).is_ready() {
                            Poll::Ready(Step::Replaced)
                        } else if self.membership.is_none()
                            && join_deadline.as_mut().poll(cx).is_ready()
                        {
                            Poll::Ready(Step::JoinTimeout)
                        } else if ping.poll_tick(cx).is_ready() {
                            Poll::Ready(Step::Ping)
                        } else {
                            Poll::Pending
                        }
                    })
                })
                .await
            };
            let next = match step {
                Step::Stopping => Next::Close(close::STOPPING, "The chat has stopped."),
                Step::Replaced => Next::Close(
                    close::REPLACED,
                    "This chat was opened again in another tab or window.",
                ),
                Step::JoinTimeout => Next::Close(close::JOIN_TIMEOUT, "No join in time."),
                Step::Ping => {
                    if self.last_heard.elapsed() > keepalive * MISSED_PINGS {
                        Next::Drop
                    } else {
                        self.send(Message::Ping(Default::default())).await
                    }
                }
                Step::Event(Ok(event)) => self.send_events(&event).await,
                Step::Event(Err(broadcast::error::RecvError::Lagged(_))) => {
                    Next::Close(close::TOO_SLOW, "You fell behind the room; reconnecting.")
                }
                Step::Event(Err(broadcast::error::RecvError::Closed)) => {
                    Next::Close(close::STOPPING, "The chat has stopped.")
                }
                Step::Frame(frame) => {
                    self.last_heard = Instant::now();
                    self.frame(frame).await
                }
            };
            match next {
                Next::Continue => {}
                Next::Close(code, reason) => {
                    let frame = CloseFrame {
                        code,
                        reason: Utf8Bytes::from_static(reason),
                    };
                    let _ = self.send(Message::Close(Some(frame))).await;
                    break;
                }
                Next::Drop => break,
            }
        }
        // Leaving before the socket goes lets everyone else see the departure at once.
        drop(self.membership.take());
    }

    /// Handles one frame from the page.
    async fn frame(&mut self, frame: Option<Result<Message, onionhost_sdk::axum::Error>>) -> Next {
        let text = match frame {
            Some(Ok(Message::Text(text))) => Some(text),
            Some(Ok(Message::Binary(_))) => None,
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => return Next::Continue,
            // A close, an error (a frame over the size limit among them), or the end.
            Some(Ok(Message::Close(_)) | Err(_)) | None => return Next::Drop,
        };
        // Every frame that gets an answer costs a token, the ones refused included, so that
        // no kind of frame makes the server write without limit.
        if self.chat.visitors.check(&self.visitor).is_err() {
            if let Next::Drop = self.reply(&ActionError::RateLimited.to_message()).await {
                return Next::Drop;
            }
            // A page reconnecting too often: it retries with backoff rather than wait for
            // the join timeout.
            return match self.membership {
                Some(_) => Next::Continue,
                None => Next::Close(close::BUSY, "Too many joins; try again later."),
            };
        }
        let Some(text) = text else {
            let err = ActionError::BadRequest("requests are JSON text frames".into());
            return self.reply(&err.to_message()).await;
        };
        let request = match parse_request(text.as_str()) {
            Ok(request) => request,
            Err(reason) => {
                return self
                    .reply(&ActionError::BadRequest(reason).to_message())
                    .await;
            }
        };
        let result = match (request, &self.membership) {
            (ClientRequest::Join { name, resume }, None) => return self.join(name, resume).await,
            (ClientRequest::Join { .. }, Some(_)) => Err(ActionError::AlreadyJoined),
            (ClientRequest::Leave {}, Some(_)) => {
                return Next::Close(close::LEFT, "You left the chat.");
            }
            (ClientRequest::Send { text }, Some(membership)) => membership.say(&text),
            (ClientRequest::Rename { name }, Some(membership)) => membership.rename(&name),
            (_, None) => Err(ActionError::NotJoined),
        };
        match result {
            Ok(()) => Next::Continue,
            Err(err) => self.reply(&err.to_message()).await,
        }
    }

    async fn join(&mut self, name: Option<String>, resume: Option<String>) -> Next {
        let request = JoinRequest {
            name,
            resume,
            resumable: true,
        };
        let joined = match self.chat.room.join(request) {
            Ok(joined) => joined,
            Err(err) => {
                let _ = self.reply(&err.to_message()).await;
                return match err {
                    ActionError::Busy => {
                        Next::Close(close::BUSY, "Too many joins; try again later.")
                    }
                    _ => Next::Close(close::ROOM_FULL, "The room is full."),
                };
            }
        };
        let Joined {
            membership,
            events,
            name,
            present,
            members,
            resume,
            name_refused,
        } = joined;
        self.replaced = cancelled(membership.replaced());
        // A new future, not polled yet: it has no waker to wake the gate with.
        self.waits.open();
        self.membership = Some(membership);
        self.events = Some(events);
        let welcome = ServerMessage::Welcome {
            you: name,
            resume: resume.unwrap_or_default(),
            present,
            members,
            title: self.chat.config.title.clone(),
            max_message_bytes: self.chat.config.max_message_bytes,
        };
        if let Next::Drop = self.reply(&welcome).await {
            return Next::Drop;
        }
        match name_refused {
            Some(err) => self.reply(&err.to_message()).await,
            None => Next::Continue,
        }
    }

    async fn reply(&mut self, message: &ServerMessage) -> Next {
        self.send(Message::Text(Utf8Bytes::from(message.to_json())))
            .await
    }

    /// Writes `first` and the events already queued behind it (up to [`EVENT_BATCH`]), then
    /// flushes once.
    async fn send_events(&mut self, first: &RoomEvent) -> Next {
        let socket = &mut self.socket;
        let events = self.events.as_mut();
        let write = async move {
            socket.feed(Message::Text(first.json.clone())).await?;
            if let Some(events) = events {
                for _ in 1..EVENT_BATCH {
                    match events.try_recv() {
                        Ok(event) => socket.feed(Message::Text(event.json.clone())).await?,
                        Err(broadcast::error::TryRecvError::Lagged(_)) => {
                            socket.flush().await?;
                            return Ok(false);
                        }
                        Err(_) => break,
                    }
                }
            }
            socket.flush().await.map(|()| true)
        };
        match tokio::time::timeout(SEND_TIMEOUT, write).await {
            Ok(Ok(true)) => Next::Continue,
            Ok(Ok(false)) => {
                Next::Close(close::TOO_SLOW, "You fell behind the room; reconnecting.")
            }
            Ok(Err(_)) | Err(_) => Next::Drop,
        }
    }

    /// Writes a frame; a peer that cannot take it in time is dropped.
    async fn send(&mut self, message: Message) -> Next {
        match tokio::time::timeout(SEND_TIMEOUT, self.socket.send(message)).await {
            Ok(Ok(())) => Next::Continue,
            Ok(Err(_)) | Err(_) => Next::Drop,
        }
    }
}

/// The next room event, or never before the join.
async fn next_event(
    events: &mut Option<broadcast::Receiver<Arc<RoomEvent>>>,
) -> Result<Arc<RoomEvent>, broadcast::error::RecvError> {
    match events {
        Some(events) => events.recv().await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests;
