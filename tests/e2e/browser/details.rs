//! The rough edges issue 12 saw in the browser, each checked where a visitor sees it: the
//! chat's notices when its connection drops, comes back or the chat stops, the list of who is
//! here while disconnected, the Enter hint on phones, the hanging indent of wrapped lines;
//! the chat without JavaScript (times, who is here as it changes, Leave unlike Send, the page
//! after leaving); the receive form's dropped files, per-file progress and sizes; a large
//! share's note.

use std::path::Path;

use onionhost_tests::browser::{Options, Page};
use onionhost_tests::chat_client::Member;
use onionhost_tests::host::TestHost;
use serde_json::json;

use super::file;

/// Keeps every WebSocket the page opens in `onionhostTestSockets`, so that a test can cut
/// one as a lost connection would (a close code of the 3000s, not one the server sends).
const SOCKET_PROBE: &str = "(() => { const Native = WebSocket; window.onionhostTestSockets = []; \
     window.WebSocket = class extends Native { constructor(...args) { super(...args); \
     window.onionhostTestSockets.push(this); } }; })()";

/// Whether the element matching `selector` is shown (JavaScript for `Page::eval`).
fn shown(selector: &str) -> String {
    format!("document.querySelector({selector:?}).checkVisibility()")
}

#[tokio::test]
async fn the_live_chat_says_when_it_drops_comes_back_and_stops() {
    let host = TestHost::spawn(&["chat", "--local-only"]).expect("start");
    let url = host.url("chat").expect("chat tab");
    let phone = Page::open(Options::phone()).await.expect("open a page");
    phone.on_new_document(SOCKET_PROBE).await.expect("probe");
    phone.goto(&url).await.expect("open the chat");
    phone
        .wait_for_text("#log", "You are in the room as ")
        .await
        .expect("joined");
    let desktop = Page::open(Options::desktop()).await.expect("open a page");
    desktop.goto(&url).await.expect("open the chat");
    desktop
        .wait_for_text("#log", "You are in the room as ")
        .await
        .expect("joined");

    // On a touch screen Enter makes a new line: the hint that Enter sends is not shown there.
    assert!(
        !phone
            .eval::<bool>(&shown("#enter-hint"))
            .await
            .expect("hint"),
        "the Enter hint shows on a phone"
    );
    assert!(
        desktop
            .eval::<bool>(&shown("#enter-hint"))
            .await
            .expect("hint"),
        "the Enter hint is missing on a desktop"
    );

    // A long line wraps on the phone with a hanging indent: its later lines start to the
    // right of where the first one (its time) starts.
    let long = "a long line that wraps on a phone ".repeat(8);
    desktop.fill("#text", &long).await.expect("type");
    desktop.click("#send-button").await.expect("send");
    phone
        .wait_for_text("#log .msg", long.trim())
        .await
        .expect("the long line");
    let lines: Vec<f64> = phone
        .eval(
            "(() => { const li = Array.from(document.querySelectorAll('#log .msg')).at(-1); \
             const range = document.createRange(); range.selectNodeContents(li); \
             const rects = Array.from(range.getClientRects()).filter((r) => r.width > 0); \
             const firstBottom = Math.min(...rects.map((r) => r.bottom)); \
             const first = rects.filter((r) => r.top < firstBottom - 2); \
             const later = rects.filter((r) => r.top >= firstBottom - 2); \
             return [Math.min(...first.map((r) => r.left)), Math.min(...later.map((r) => r.left)), \
             li.querySelector('.text').getClientRects().length]; })()",
        )
        .await
        .expect("the line's boxes");
    let [first, later, count] = lines[..] else {
        panic!("{lines:?}");
    };
    assert!(count >= 3.0, "the line did not wrap: {lines:?}");
    assert!(
        later >= first + 16.0,
        "no hanging indent: later lines start at {later}, the first at {first}"
    );

    // A lost connection: a notice that says so, the list of who is here marked as possibly
    // out of date, the message box off; then back, with a line saying lines were missed.
    phone
        .eval::<serde_json::Value>("window.onionhostTestSockets.at(-1).close(3000)")
        .await
        .expect("cut the connection");
    phone
        .wait_until(
            "the disconnected notice and the stale list",
            "document.querySelector('#status').textContent.includes('Disconnected') \
             && document.querySelector('#status').classList.contains('error') \
             && document.querySelector('#people-stale').checkVisibility() \
             && document.querySelector('#people').classList.contains('stale') \
             && document.querySelector('#text').disabled",
        )
        .await
        .expect("disconnected");
    phone
        .wait_until(
            "the reconnect",
            "Array.from(document.querySelectorAll('#log .notice')).at(-1).textContent\
             .includes('you may have missed some') \
             && !document.querySelector('#people-stale').checkVisibility() \
             && document.querySelector('#status').hidden && !document.querySelector('#text').disabled",
        )
        .await
        .expect("reconnected");
    assert_eq!(phone.text("#count").await.expect("count"), "2");

    // The chat stops: an error notice that says what to do, with a button that reloads.
    desktop.close().await;
    let stopped = host.stop().expect("stop");
    assert_eq!(stopped.status.code(), Some(0), "{}", stopped.stderr);
    phone
        .wait_until(
            "the stopped notice",
            "document.querySelector('#status').textContent.includes('The chat has stopped') \
             && document.querySelector('#status').textContent.includes('Reload') \
             && document.querySelector('#status.note.error button') !== null \
             && document.querySelector('#people-stale').checkVisibility()",
        )
        .await
        .expect("stopped");
    assert_eq!(phone.csp_violations(), Vec::<String>::new());
    phone.close().await;
}

#[tokio::test]
async fn without_javascript_lines_have_times_the_list_follows_and_leaving_says_so() {
    let host = TestHost::spawn(&["chat", "--local-only"]).expect("start");
    let url = host.url("chat").expect("chat tab");
    let (mut ann, _) = Member::join(&url, "ann").await;
    let plain = Page::open(Options::phone().without_javascript())
        .await
        .expect("open a page");
    plain
        .goto(&format!("{url}nojs"))
        .await
        .expect("the join page");
    plain.fill("#name", "plain").await.expect("type a name");
    plain
        .click("form[action='/nojs/join'] button")
        .await
        .expect("join");
    assert_eq!(ann.next().await, json!({"type": "joined", "name": "plain"}));
    plain
        .wait_for_text(".nojs-controls", "You are plain")
        .await
        .expect("the session's page");

    // Each line has its time (since the visitor joined), as the live page's lines do.
    ann.say("hello plain").await;
    plain
        .wait_for_text(".log", "hello plain")
        .await
        .expect("ann's line");
    let time: String = plain
        .eval(
            "Array.from(document.querySelectorAll('.log li.msg')).at(-1).querySelector('time').textContent",
        )
        .await
        .expect("the line's time");
    assert!(
        regex::Regex::new(r"^\+\d+:\d\d$")
            .expect("regex")
            .is_match(&time),
        "{time:?}"
    );

    // Who is here follows the room: one list shown, the newest.
    let (_bo, _) = Member::join(&url, "bo").await;
    plain
        .wait_until(
            "bo in the list shown",
            "(() => { const shown = Array.from(document.querySelectorAll('.nojs-log .roster'))\
             .filter((li) => li.checkVisibility()); return shown.length === 1 \
             && shown[0].textContent.includes('(3)') && shown[0].textContent.includes('bo'); })()",
        )
        .await
        .expect("the list follows");

    // Leave is not the primary action: it does not look like Send.
    let (send, leave): (String, String) = plain
        .eval(
            "[getComputedStyle(document.querySelector(\"form[action$='/send'] button\")).backgroundColor, \
             getComputedStyle(document.querySelector(\"form[action$='/leave'] button\")).backgroundColor]",
        )
        .await
        .expect("the buttons' colours");
    assert_ne!(send, leave, "Leave looks like Send");

    plain
        .click("form[action$='/leave'] button")
        .await
        .expect("leave");
    plain
        .wait_for_text("#left", "You left the chat")
        .await
        .expect("the page after leaving says so");
    // Its footer does not link to the page it is on.
    let links: Vec<String> = plain
        .eval("Array.from(document.querySelectorAll('.site-footer a'), (a) => a.getAttribute('href'))")
        .await
        .expect("the footer's links");
    assert!(
        !links.iter().any(|href| href.starts_with("/nojs")),
        "{links:?}"
    );
    plain.close().await;

    let stopped = host.stop().expect("stop");
    assert_eq!(stopped.status.code(), Some(0), "{}", stopped.stderr);
}

/// The size part of a line about a file, `(293 KiB)`.
fn size_of(line: &str) -> &str {
    let start = line.rfind('(').unwrap_or(0);
    &line[start..]
}

#[tokio::test]
async fn dropped_files_each_show_their_progress_and_sizes_read_as_without_javascript() {
    let dir = tempfile::tempdir().expect("temp dir");
    let inbox = dir.path().join("inbox");
    let host = TestHost::spawn(&["receive", inbox.to_str().expect("UTF-8"), "--local-only"])
        .expect("start");
    let url = host.url("receive").expect("receive tab");
    let (small, _) = file(dir.path(), "small.bin", 300_000);
    let (large, _) = file(dir.path(), "large.bin", 1_200_000);
    let files: [&Path; 2] = [&small, &large];

    let page = Page::open(Options::desktop()).await.expect("open a page");
    page.goto(&url).await.expect("open the form");
    page.wait_until("the drop hint", &shown("#drop-hint"))
        .await
        .expect("the script offers dropping");
    page.drop_files("#drop", &files).await.expect("drop");
    page.wait_until(
        "the dropped files listed",
        "document.querySelectorAll('#chosen li').length === 2 \
         && document.querySelector('#files').files.length === 2",
    )
    .await
    .expect("the dropped files are chosen");
    let chosen = page.texts("#chosen li").await.expect("chosen");
    assert!(chosen[0].starts_with("small.bin ("), "{chosen:?}");

    // 1.5 MB at 400 kB/s: about four seconds, the first file done after one.
    page.throttle_uploads(400_000.0).await.expect("throttle");
    page.click("#send").await.expect("send");
    page.wait_until(
        "one bar per file, the first file sent while the second is not",
        "(() => { const rows = document.querySelectorAll('#file-progress li'); \
         if (!document.querySelector('#file-progress').checkVisibility() || rows.length !== 2) return false; \
         const bars = Array.from(rows, (li) => li.querySelector('progress').value); \
         return bars[0] === 100 && rows[0].textContent.includes('sent') \
         && bars[1] > 0 && bars[1] < 100 && rows[1].textContent.includes(' of '); })()",
    )
    .await
    .expect("per-file progress");
    page.wait_for_text("#result", "Received large.bin")
        .await
        .expect("the answer");
    let with_js = page.texts("#result li").await.expect("the answer's lines");
    page.close().await;

    let plain = Page::open(Options::phone().without_javascript())
        .await
        .expect("open a page");
    plain.goto(&url).await.expect("open the form");
    // On a phone the form's card keeps a margin from the screen's edges.
    let (left, right, width): (f64, f64, f64) = plain
        .eval(
            "(() => { const r = document.querySelector('.card').getBoundingClientRect(); \
             return [r.left, r.right, window.innerWidth]; })()",
        )
        .await
        .expect("the card's edges");
    assert!(
        left >= 8.0 && right <= width - 8.0,
        "{left}..{right} of {width}"
    );
    plain
        .choose_files("#files", &files)
        .await
        .expect("choose the files");
    plain.click("#send").await.expect("send");
    plain
        .wait_for("#received .files li")
        .await
        .expect("the answer page");
    let without_js = plain
        .texts("#received .files li")
        .await
        .expect("the answer's lines");
    plain.close().await;

    assert_eq!(with_js.len(), 2, "{with_js:?}");
    assert_eq!(without_js.len(), 2, "{without_js:?}");
    for (js, plain) in with_js.iter().zip(&without_js) {
        assert_eq!(size_of(js), size_of(plain), "{with_js:?} / {without_js:?}");
    }
    assert_eq!(size_of(&with_js[0]), "(293 KiB)", "{with_js:?}");
    let stopped = host.stop().expect("stop");
    assert_eq!(stopped.status.code(), Some(0), "{}", stopped.stderr);
}

#[tokio::test]
async fn a_large_share_says_what_its_size_means_and_how_to_resume() {
    let dir = tempfile::tempdir().expect("temp dir");
    let big = dir.path().join("disk.img");
    // Sparse: 3 GiB that take no room (the share reads nothing until someone downloads).
    std::fs::File::create(&big)
        .and_then(|f| f.set_len(3 << 30))
        .expect("a sparse file");
    let host =
        TestHost::spawn(&["share", big.to_str().expect("UTF-8"), "--local-only"]).expect("start");
    let url = host.url("share").expect("share tab");
    let page = Page::open(Options::phone()).await.expect("open a page");
    page.goto(&url).await.expect("open the share");
    page.wait_until("the large-share note", &shown("#large-share"))
        .await
        .expect("the note is shown");
    let note = page.text("#large-share").await.expect("the note");
    assert!(note.contains(" GiB)") && note.contains("Resume"), "{note}");
    let audit = page.audit().await.expect("audit");
    assert_eq!(audit.problems(), Vec::<String>::new());
    page.assert_clean(&url);
    page.close().await;
    let stopped = host.stop().expect("stop");
    assert_eq!(stopped.status.code(), Some(0), "{}", stopped.stderr);
}
