//! The HTML of the pages without JavaScript, as maud templates: every visitor's text is
//! escaped by the template, so it is shown as text, never read as markup.

use std::time::Duration;

use onionhost_sdk::maud::{Markup, PreEscaped, html};

use super::session::Line;
use crate::page::{join_form, shell};
use crate::protocol::ServerMessage;

/// The most names a list of who is here shows (then "and N more"): each change in the room
/// streams a new list to every page, so its size is bounded.
pub(crate) const ROSTER_NAMES: usize = 50;

/// `GET /nojs` (`left`: `GET /nojs?left`, where leaving leads): the form to join without
/// JavaScript.
pub(crate) fn join_page(title: &str, present: usize, left: bool) -> Markup {
    shell(
        title,
        html! {
            @if left {
                p.note.success #left role="status" {
                    "You left the chat. Join again below, under the same name or another."
                }
            }
            section.card.nojs-join {
                p {
                    (present) " here now. This version works without JavaScript: its page \
                     keeps loading and shows new messages as they are said; plain forms send \
                     yours."
                }
                (join_form("name"))
            }
        },
    )
}

/// What the chat page of a session needs to know.
pub(crate) struct StreamPage<'a> {
    pub(crate) title: &'a str,
    pub(crate) token: &'a str,
    pub(crate) name: &'a str,
    /// How many are present.
    pub(crate) present: usize,
    /// The first of them, sorted (`room::LISTED_MEMBERS`).
    pub(crate) members: &'a [String],
    pub(crate) leave_after_seconds: u64,
    pub(crate) max_message_bytes: usize,
}

/// Who is here: `present` in all, `members` the first of them by name. The page streams a
/// new one after each change; the style sheet shows only the newest, at the top of the list
/// (where `:has()` is not supported, the older ones stay below it).
pub(crate) fn roster(present: usize, members: &[String]) -> Markup {
    let shown = &members[..members.len().min(ROSTER_NAMES)];
    html! {
        li.roster {
            span.text {
                strong { "Here now (" (present) "): " }
                @for (i, member) in shown.iter().enumerate() {
                    @if i > 0 { ", " }
                    bdi { (member) }
                }
                @if present > shown.len() {
                    " and " (present - shown.len()) " more"
                }
            }
        }
        "\n"
    }
}

/// A session's chat page, cut where the stream goes on.
pub(crate) struct StreamParts {
    /// The forms, who is here, and the list that the page then keeps appending lines to
    /// (shown newest first, see `chat.css`).
    pub(crate) head: String,
    /// What closes the page after the list's last line.
    pub(crate) tail: String,
}

/// Where the page is cut: the end of its list. Visitors' text cannot make this tag (the
/// template escapes every `<` in it), so the page's last one is the list's.
const LOG_END: &str = "</ol>";

/// The session's page, one template, cut at the end of its list of lines.
pub(crate) fn stream_page(page: &StreamPage<'_>, lines: &[Line]) -> StreamParts {
    let token = page.token;
    let whole = shell(
        page.title,
        html! {
            section.nojs-controls {
                p {
                    "You are " strong { bdi { (page.name) } } ". "
                    a href={ "/nojs/" (token) } { "Reload" }
                }
                form.send method="post" action={ "/nojs/" (token) "/send" } {
                    label for="text" .visually-hidden { "Message" }
                    textarea #text name="text" rows="2" maxlength=(page.max_message_bytes)
                        required autofocus placeholder="Say something" {}
                    button type="submit" { "Send" }
                }
                div.nojs-more {
                    form.rename method="post" action={ "/nojs/" (token) "/rename" } {
                        label for="name" .visually-hidden { "Your name" }
                        input #name name="name" value=(page.name) maxlength="64" required
                            autocomplete="off";
                        button.secondary type="submit" { "Rename" }
                    }
                    form method="post" action={ "/nojs/" (token) "/leave" } {
                        button.secondary type="submit" { "Leave" }
                    }
                }
            }
            p.hint {
                "Newest first. New lines appear at the top as they are said, while this page \
                 keeps loading; times count from when you joined (minutes:seconds). Keep this \
                 address to yourself: it is your seat in the room. Closing the page takes you \
                 out of the room after "
                (page.leave_after_seconds) " seconds."
            }
            ol.log.nojs-log {
                (render_replay(lines))
                (roster(page.present, page.members))
            }
        },
    )
    .into_string();
    let cut = whole.rfind(LOG_END).unwrap_or(whole.len());
    let (head, tail) = whole.split_at(cut);
    StreamParts {
        head: head.to_owned(),
        tail: tail.to_owned(),
    }
}

/// The most HTML of earlier lines a page starts with. Each page holds its start in memory
/// until the visitor has read it, and up to `max_members` sessions may each stream a few
/// pages: without a bound, slow readers of a room full of long, heavily escaped messages
/// (`<` is four bytes of HTML) would hold over a megabyte each.
pub(crate) const REPLAY_BYTES: usize = 64 * 1024;

/// The newest of `lines` that fit in [`REPLAY_BYTES`] (the newest one always), oldest first,
/// after a note saying how many older ones are not shown again.
fn render_replay(lines: &[Line]) -> Markup {
    let mut shown = Vec::new();
    let mut total = 0;
    for event in lines.iter().rev() {
        let line = render_line(event);
        if !shown.is_empty() && total + line.0.len() > REPLAY_BYTES {
            break;
        }
        total += line.0.len();
        shown.push(line);
    }
    let left_out = lines.len() - shown.len();
    html! {
        @if left_out > 0 {
            li.notice {
                span.text { (left_out) " earlier line(s) are not shown again." }
            }
            "\n"
        }
        @for line in shown.iter().rev() { (line) }
    }
}

/// Lines for the list, oldest first.
pub(crate) fn render_lines(lines: &[Line]) -> String {
    let mut out = String::new();
    for event in lines {
        out.push_str(&render_line(event).0);
    }
    out
}

/// Whether `lines` change who is here (so the page needs a new [`roster`]).
pub(crate) fn changes_presence(lines: &[Line]) -> bool {
    lines.iter().any(|line| {
        matches!(
            line.event.message,
            ServerMessage::Joined { .. }
                | ServerMessage::Left { .. }
                | ServerMessage::Renamed { .. }
                | ServerMessage::Presence { .. }
        )
    })
}

/// A line's time: minutes and seconds since the member joined (`+3:07`, `+1:02:09`).
fn since_join(elapsed: Duration) -> String {
    let seconds = elapsed.as_secs();
    let (hours, minutes, seconds) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    if hours > 0 {
        format!("+{hours}:{minutes:02}:{seconds:02}")
    } else {
        format!("+{minutes}:{seconds:02}")
    }
}

/// One line of the list, and a line break after it (the stream's chunks stay readable).
fn render_line(line: &Line) -> Markup {
    let when = html! { time { (since_join(line.since_join)) } " " };
    let line = match &line.event.message {
        ServerMessage::Message { from, text } => html! {
            li.msg { (when) span.from { (from) } " " span.text dir="auto" { (text) } }
        },
        ServerMessage::Joined { name } => notice(&when, "notice", name, " joined"),
        ServerMessage::Left { name } => notice(&when, "notice", name, " left"),
        ServerMessage::Renamed { from, to } => html! {
            li.notice { (when) span.text { bdi { (from) } " is now " bdi { (to) } } }
        },
        ServerMessage::Presence {
            joined,
            left,
            more,
            present,
            ..
        } => html! {
            li.notice { (when) span.text { (presence_text(joined, left, *more, *present)) } }
        },
        ServerMessage::Error { message, .. } => notice(&when, "error", message, ""),
        ServerMessage::Welcome { .. } => return PreEscaped(String::new()),
    };
    html! { (line) "\n" }
}

/// One line for the arrivals and departures of a tick: `ann, bo joined · cy left · 40 more
/// came or went · 212 here`, like the live page's.
fn presence_text(joined: &[String], left: &[String], more: usize, present: usize) -> Markup {
    let names = |names: &[String]| {
        html! {
            @for (i, name) in names.iter().enumerate() {
                @if i > 0 { ", " }
                bdi { (name) }
            }
        }
    };
    html! {
        @if !joined.is_empty() { (names(joined)) " joined · " }
        @if !left.is_empty() { (names(left)) " left · " }
        @if more > 0 { (more) " more came or went · " }
        (present) " here"
    }
}

fn notice(when: &Markup, class: &str, text: &str, tail: &str) -> Markup {
    html! {
        li class=(class) { (when) span.text { bdi { (text) } (tail) } }
    }
}

/// What the last line says when the tab stops.
pub(crate) const STOPPED: &str = "The chat has stopped: whoever runs it closed it. Reload this \
                                  page later to see whether it is back.";

/// The end of a session's page: a last line (shown at the top), then the page's `tail`.
pub(crate) fn stream_end(message: &str, tail: &str) -> String {
    let line = html! {
        li.notice { span.text { (message) } " " a href="/nojs" { "Join again" } }
        "\n"
    };
    let mut out = line.into_string();
    out.push_str(tail);
    out
}

/// Sent while nothing happens, so that an idle page over Tor is not cut off and a page
/// that went away is noticed. White space between list items shows nothing.
pub(crate) const KEEPALIVE: &str = "\n";
