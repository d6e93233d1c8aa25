//! The HTML of the pages without JavaScript. Every visitor's text goes through
//! [`escape`], so it is shown as text, never read as markup.

use std::fmt::Write;
use std::sync::Arc;

use crate::html::escape;
use crate::page::page_head;
use crate::protocol::ServerMessage;
use crate::room::RoomEvent;

/// `GET /nojs`: the form to join without JavaScript.
pub(crate) fn join_page(title: &str, present: usize) -> String {
    let head = page_head(title);
    format!(
        "{head}<section class=\"nojs-join\">\n\
         <p>{present} here now. This version works without JavaScript: its page keeps loading \
         and shows new messages as they are said; plain forms send yours.</p>\n\
         <form method=\"post\" action=\"/nojs/join\">\n\
         <label for=\"name\">Name (leave empty for a random one)</label>\n\
         <input id=\"name\" name=\"name\" maxlength=\"64\" autocomplete=\"off\">\n\
         <button type=\"submit\">Join the chat</button>\n</form>\n</section>\n</body>\n</html>\n"
    )
}

/// What the chat page of a session needs to know.
pub(crate) struct StreamPage<'a> {
    pub(crate) title: &'a str,
    pub(crate) token: &'a str,
    pub(crate) name: &'a str,
    pub(crate) members: &'a [String],
    pub(crate) leave_after_seconds: u64,
    pub(crate) max_message_bytes: usize,
}

/// The first part of a session's chat page: the forms, who is here, and the list that the
/// page then keeps appending lines to (shown newest first, see `chat.css`).
pub(crate) fn stream_head(page: &StreamPage<'_>, lines: &[Arc<RoomEvent>]) -> String {
    let head = page_head(page.title);
    let token = escape(page.token);
    let name = escape(page.name);
    let count = page.members.len();
    let members = page
        .members
        .iter()
        .map(|m| format!("<bdi>{}</bdi>", escape(m)))
        .collect::<Vec<_>>()
        .join(", ");
    let leave = page.leave_after_seconds;
    let max = page.max_message_bytes;
    let mut out = format!(
        "{head}<section class=\"nojs-controls\">\n\
         <p>You are <strong><bdi>{name}</bdi></strong>. Here when this page loaded ({count}): \
         {members}. <a href=\"/nojs/{token}\">Reload</a></p>\n\
         <form method=\"post\" action=\"/nojs/{token}/send\">\n\
         <label for=\"text\" class=\"visually-hidden\">Message</label>\n\
         <textarea id=\"text\" name=\"text\" rows=\"2\" maxlength=\"{max}\" required autofocus \
         placeholder=\"Say something\"></textarea>\n\
         <button type=\"submit\">Send</button>\n</form>\n\
         <form method=\"post\" action=\"/nojs/{token}/rename\">\n\
         <label for=\"name\" class=\"visually-hidden\">Your name</label>\n\
         <input id=\"name\" name=\"name\" value=\"{name}\" maxlength=\"64\" required \
         autocomplete=\"off\">\n<button type=\"submit\">Rename</button>\n</form>\n\
         <form method=\"post\" action=\"/nojs/{token}/leave\">\n\
         <button type=\"submit\">Leave</button>\n</form>\n</section>\n\
         <p class=\"hint\">Newest first. New lines appear at the top as they are said, while \
         this page keeps loading. Keep this address to yourself: it is your seat in the room. \
         Closing the page takes you out of the room after {leave} seconds.</p>\n\
         <ol class=\"log nojs-log\">\n"
    );
    out.push_str(&render_replay(lines));
    out
}

/// The most HTML of earlier lines a page starts with. Each page holds its start in memory
/// until the visitor has read it, and up to `max_members` sessions may each stream a few
/// pages: without a bound, slow readers of a room full of long, heavily escaped messages
/// (`<` is four bytes of HTML) would hold over a megabyte each.
pub(crate) const REPLAY_BYTES: usize = 64 * 1024;

/// The newest of `lines` that fit in [`REPLAY_BYTES`] (the newest one always), oldest first,
/// after a note saying how many older ones are not shown again.
fn render_replay(lines: &[Arc<RoomEvent>]) -> String {
    let mut shown = Vec::new();
    let mut total = 0;
    for event in lines.iter().rev() {
        let line = render_lines(std::slice::from_ref(event));
        if !shown.is_empty() && total + line.len() > REPLAY_BYTES {
            break;
        }
        total += line.len();
        shown.push(line);
    }
    let mut out = String::with_capacity(total + 128);
    let left_out = lines.len() - shown.len();
    if left_out > 0 {
        // Writing to a String cannot fail.
        let _ = writeln!(
            out,
            "<li class=\"notice\"><span class=\"text\">{left_out} earlier line(s) are not \
             shown again.</span></li>"
        );
    }
    for line in shown.iter().rev() {
        out.push_str(line);
    }
    out
}

/// Lines for the list, oldest first.
pub(crate) fn render_lines(lines: &[Arc<RoomEvent>]) -> String {
    let mut out = String::new();
    for event in lines {
        // Writing to a String cannot fail.
        let _ = match &event.message {
            ServerMessage::Message { from, text } => writeln!(
                out,
                "<li class=\"msg\"><span class=\"from\">{}</span> \
                 <span class=\"text\" dir=\"auto\">{}</span></li>",
                escape(from),
                escape(text)
            ),
            ServerMessage::Joined { name } => notice(&mut out, "notice", name, " joined"),
            ServerMessage::Left { name } => notice(&mut out, "notice", name, " left"),
            ServerMessage::Renamed { from, to } => {
                let from = format!("<bdi>{}</bdi>", escape(from));
                let to = format!("<bdi>{}</bdi>", escape(to));
                writeln!(
                    out,
                    "<li class=\"notice\"><span class=\"text\">{from} is now {to}</span></li>"
                )
            }
            ServerMessage::Error { message, .. } => notice(&mut out, "error", message, ""),
            ServerMessage::Welcome { .. } => Ok(()),
        };
    }
    out
}

fn notice(out: &mut String, class: &str, text: &str, tail: &str) -> std::fmt::Result {
    writeln!(
        out,
        "<li class=\"{class}\"><span class=\"text\"><bdi>{}</bdi>{tail}</span></li>",
        escape(text)
    )
}

/// The end of a session's page: a last line (shown at the top) and the closing tags.
pub(crate) fn stream_end(message: &str) -> String {
    format!(
        "<li class=\"notice\"><span class=\"text\">{}</span> \
         <a href=\"/nojs\">Join again</a></li>\n</ol>\n</body>\n</html>\n",
        escape(message)
    )
}

/// Sent while nothing happens, so that an idle page over Tor is not cut off and a page
/// that went away is noticed. White space between list items shows nothing.
pub(crate) const KEEPALIVE: &str = "\n";
