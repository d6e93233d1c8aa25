//! The chat without JavaScript (Tor Browser "Safest"): plain forms, and a page that keeps
//! loading, streaming each new line as a chunk of HTML until the visitor leaves.
//!
//! `frame-ancestors 'none'` rules out frames, so the forms and the stream share one page. A
//! form post answers `303 See Other` back to the page, which loads again with the lines the
//! member has been shown since joining (kept in memory, in the session) and streams on. The
//! session is named by an unguessable token in the URL: no cookie is needed.

mod render;
mod session;

use std::convert::Infallible;
use std::sync::Arc;

use onionhost_sdk::CancellationToken;
use onionhost_sdk::axum::Form;
use onionhost_sdk::axum::body::Body;
use onionhost_sdk::axum::extract::rejection::FormRejection;
use onionhost_sdk::axum::extract::{Path, State};
use onionhost_sdk::axum::http::{StatusCode, Uri, header};
use onionhost_sdk::axum::response::{IntoResponse, Redirect, Response};
use onionhost_sdk::http::Visitor;
use serde::Deserialize;
use tokio::sync::watch;
use tokio::time::{Instant, Interval, MissedTickBehavior};

pub(crate) use session::Sessions;

use crate::Chat;
use crate::message::MessageError;
use crate::page::message_page;
use crate::room::{ActionError, JoinRequest};
use session::{Attached, Session};

#[derive(Deserialize)]
pub(crate) struct JoinForm {
    #[serde(default)]
    name: String,
}

#[derive(Deserialize)]
pub(crate) struct SendForm {
    text: String,
}

#[derive(Deserialize)]
pub(crate) struct RenameForm {
    name: String,
}

/// `GET /nojs`: the join form; `GET /nojs?left`, where leaving leads, says so above it.
pub(crate) async fn join_page(State(chat): State<Arc<Chat>>, uri: Uri) -> Response {
    let present = chat.room.present();
    let left = uri.query() == Some(LEFT_QUERY);
    render::join_page(&chat.config.title, present, left).into_response()
}

/// The query of the join page that says the visitor has just left.
const LEFT_QUERY: &str = "left";

/// `POST /nojs/join`: enters the room and sends the visitor to the session's page.
pub(crate) async fn join(
    State(chat): State<Arc<Chat>>,
    visitor: Visitor,
    form: Result<Form<JoinForm>, FormRejection>,
) -> Response {
    let form = match form {
        Ok(Form(form)) => form,
        Err(rejection) => return form_refused(&chat, &rejection, "/nojs"),
    };
    // A join costs the visitor a token, as on the WebSocket: joining again and again from
    // one circuit is bounded however many sessions it opens.
    if chat.visitors.check(&visitor).is_err() {
        return refused(&chat, &ActionError::RateLimited, "/nojs");
    }
    let name = Some(form.name).filter(|name| !name.trim().is_empty());
    let request = JoinRequest {
        name,
        resume: None,
        resumable: false,
    };
    match chat.room.join(request) {
        Ok(joined) => {
            let session = Session::start(&chat, joined);
            Redirect::to(&format!("/nojs/{}", session.token)).into_response()
        }
        Err(err) => refused(&chat, &err, "/nojs"),
    }
}

/// `GET /nojs/{token}`: the session's page, streamed until the member leaves or the tab
/// stops.
pub(crate) async fn stream(State(chat): State<Arc<Chat>>, Path(token): Path<String>) -> Response {
    let Some(session) = chat.sessions.get(&token) else {
        return not_in_room(&chat);
    };
    let Some(attached) = session.attach() else {
        return message_page(
            &chat.config.title,
            StatusCode::TOO_MANY_REQUESTS,
            "This chat is already open in too many tabs; close one and reload.",
            &format!("/nojs/{token}"),
            "Reload",
        );
    };
    // Subscribe before reading the log, so that no line falls between the two.
    let log = session.watch_log();
    let (lines, next) = session.lines_since(0);
    let Some(name) = session.name() else {
        return not_in_room(&chat);
    };
    let (present, members) = chat.room.members();
    let page = render::stream_page(
        &render::StreamPage {
            title: &chat.config.title,
            token: &session.token,
            name: &name,
            present,
            members: &members,
            leave_after_seconds: chat.config.nojs_leave_after_seconds,
            max_message_bytes: chat.config.max_message_bytes,
        },
        &lines,
    );
    let keepalive = chat.config.keepalive();
    let mut ticks = tokio::time::interval_at(Instant::now() + keepalive, keepalive);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let feed = Feed {
        chat: Arc::clone(&chat),
        session,
        _attached: attached,
        shutdown: chat.ctx.shutdown_token(),
        log,
        next,
        ticks,
        tail: page.tail,
        state: FeedState::Head(page.head),
    };
    let body = Body::from_stream(futures::stream::unfold(feed, Feed::step));
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            // Asks proxies (none on an onion service, but perhaps in development) to pass
            // each chunk on at once rather than buffer the page.
            (header::HeaderName::from_static("x-accel-buffering"), "no"),
        ],
        body,
    )
        .into_response()
}

/// `POST /nojs/{token}/send`.
pub(crate) async fn send(
    State(chat): State<Arc<Chat>>,
    visitor: Visitor,
    Path(token): Path<String>,
    form: Result<Form<SendForm>, FormRejection>,
) -> Response {
    act(&chat, visitor, &token, form, |membership, form| {
        membership.say(&form.text)
    })
}

/// `POST /nojs/{token}/rename`.
pub(crate) async fn rename(
    State(chat): State<Arc<Chat>>,
    visitor: Visitor,
    Path(token): Path<String>,
    form: Result<Form<RenameForm>, FormRejection>,
) -> Response {
    act(&chat, visitor, &token, form, |membership, form| {
        membership.rename(&form.name)
    })
}

/// `POST /nojs/{token}/leave`: leaves at once (the departure is announced) and goes to the
/// join page, which says so.
pub(crate) async fn leave(State(chat): State<Arc<Chat>>, Path(token): Path<String>) -> Response {
    if let Some(session) = chat.sessions.get(&token) {
        chat.sessions.end(&session);
    }
    Redirect::to(&format!("/nojs?{LEFT_QUERY}")).into_response()
}

/// Does what a form asks as the session's member, within the session's and the visitor's
/// rate limits, then sends the visitor back to the page.
fn act<F>(
    chat: &Chat,
    visitor: Visitor,
    token: &str,
    form: Result<Form<F>, FormRejection>,
    action: impl FnOnce(&crate::room::Membership, F) -> Result<(), ActionError>,
) -> Response {
    let Some(session) = chat.sessions.get(token) else {
        return not_in_room(chat);
    };
    let back = format!("/nojs/{token}");
    let form = match form {
        Ok(Form(form)) => form,
        Err(rejection) => return form_refused(chat, &rejection, &back),
    };
    if chat.visitors.check(&visitor).is_err() {
        return refused(chat, &ActionError::RateLimited, &back);
    }
    match session.act(|membership| action(membership, form)) {
        Ok(()) => Redirect::to(&back).into_response(),
        Err(err) => refused(chat, &err, &back),
    }
}

fn not_in_room(chat: &Chat) -> Response {
    message_page(
        &chat.config.title,
        StatusCode::NOT_FOUND,
        "You are not in the chat (you left, or your page was closed for too long). Join first.",
        "/nojs",
        "Join the chat",
    )
}

/// An action refused: the reason, to this visitor only, and the way back.
fn refused(chat: &Chat, err: &ActionError, back: &str) -> Response {
    let status = match err {
        ActionError::RoomFull | ActionError::Busy => StatusCode::SERVICE_UNAVAILABLE,
        ActionError::NameTaken(_) | ActionError::NameLooksAlike { .. } => StatusCode::CONFLICT,
        ActionError::Message(MessageError::TooLong { .. }) => StatusCode::PAYLOAD_TOO_LARGE,
        ActionError::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        ActionError::Gone => StatusCode::GONE,
        ActionError::Name(_)
        | ActionError::Message(_)
        | ActionError::NotJoined
        | ActionError::AlreadyJoined
        | ActionError::BadRequest(_) => StatusCode::BAD_REQUEST,
    };
    message_page(
        &chat.config.title,
        status,
        &err.to_string(),
        back,
        "Back to the chat",
    )
}

fn form_refused(chat: &Chat, rejection: &FormRejection, back: &str) -> Response {
    let (status, message) = if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "That was too long: a message can be at most {} bytes.",
                chat.config.max_message_bytes
            ),
        )
    } else {
        (
            StatusCode::BAD_REQUEST,
            "That form could not be read; go back and try again.".to_owned(),
        )
    };
    message_page(
        &chat.config.title,
        status,
        &message,
        back,
        "Back to the chat",
    )
}

enum FeedState {
    Head(String),
    Live,
    Done,
}

/// The streamed body of a session's page.
struct Feed {
    chat: Arc<Chat>,
    session: Arc<Session>,
    _attached: Attached,
    shutdown: CancellationToken,
    log: watch::Receiver<u64>,
    /// The number of the next line to send.
    next: u64,
    ticks: Interval,
    /// What closes the page, after its last line.
    tail: String,
    state: FeedState,
}

impl Feed {
    async fn step(mut self) -> Option<(Result<String, Infallible>, Self)> {
        let chunk = match std::mem::replace(&mut self.state, FeedState::Live) {
            FeedState::Head(head) => head,
            FeedState::Live => self.live().await,
            FeedState::Done => return None,
        };
        Some((Ok(chunk), self))
    }

    /// Waits for the next chunk: new lines, a keepalive, or the end of the page.
    async fn live(&mut self) -> String {
        loop {
            tokio::select! {
                biased;
                () = self.shutdown.cancelled() => {
                    self.state = FeedState::Done;
                    return render::stream_end(render::STOPPED, &self.tail);
                }
                () = self.session.ended.cancelled() => {
                    self.state = FeedState::Done;
                    return render::stream_end("You have left the chat.", &self.tail);
                }
                changed = self.log.changed() => {
                    if changed.is_err() {
                        self.state = FeedState::Done;
                        return render::stream_end("You have left the chat.", &self.tail);
                    }
                    let (lines, next) = self.session.lines_since(self.next);
                    self.next = next;
                    if !lines.is_empty() {
                        let mut chunk = render::render_lines(&lines);
                        // Who is here changed: a new list, which replaces the last one.
                        if render::changes_presence(&lines) {
                            let (present, members) = self.chat.room.members();
                            chunk.push_str(&render::roster(present, &members).0);
                        }
                        return chunk;
                    }
                }
                _ = self.ticks.tick() => return render::KEEPALIVE.to_owned(),
            }
        }
    }
}

#[cfg(test)]
mod tests;
