//! The pages on a phone (390 CSS pixels wide): usable where a visitor holds them.

use onionhost_tests::browser::{Options, Page};
use onionhost_tests::chat_client::Member;
use onionhost_tests::host::TestHost;

/// Regression test for the chat's phone layout: with about 30 lines the message list grew past
/// the screen and pushed the message box below it (`.log { flex: 1 }` cancelled the phone
/// rule `height: 60vh`), and the list did not follow new lines.
#[tokio::test]
async fn after_50_messages_on_a_phone_the_message_box_and_the_newest_line_are_on_screen() {
    let host = TestHost::with_config(
        "[[tab]]\nname = \"chat\"\nmode = \"chat\"\n\
         [tab.chat.rate_limit]\nmessages_per_minute = 6000\nburst = 100\n",
    )
    .expect("start");
    let url = host.url("chat").expect("chat tab");
    let page = Page::open(Options::phone()).await.expect("open a page");
    page.goto(&url).await.expect("open the chat");
    page.wait_for_text("#log", "You are in the room as ")
        .await
        .expect("joined");

    let (mut ann, _) = Member::join(&url, "ann").await;
    for i in 1..=50 {
        ann.say(&format!("line {i} of a long afternoon")).await;
    }
    page.wait_for_text("#log", "line 50 of a long afternoon")
        .await
        .expect("all 50 lines");

    let on_screen = |selector: &str| {
        format!(
            "(() => {{ const r = document.querySelector({selector:?}).getBoundingClientRect(); \
             return r.top >= 0 && r.bottom <= window.innerHeight && r.left >= 0 \
             && r.right <= window.innerWidth; }})()"
        )
    };
    page.wait_until("the message box on screen", &on_screen("#text"))
        .await
        .expect("the message box is on screen");
    page.wait_until("the send button on screen", &on_screen("#send-button"))
        .await
        .expect("the send button is on screen");
    page.wait_until(
        "the newest line on screen",
        &on_screen("#log li:last-child"),
    )
    .await
    .expect("the newest line is on screen");
    // The list scrolls inside its box, and followed the lines to the newest: the page
    // itself stays as tall as the screen's share the room was given.
    let (scrolls, at_end): (bool, bool) = page
        .eval(
            "(() => { const log = document.querySelector('#log');              return [log.scrollHeight > log.clientHeight + 100,              log.scrollHeight - log.scrollTop - log.clientHeight < 2]; })()",
        )
        .await
        .expect("the list's scrolling");
    assert!(scrolls, "the list does not scroll: it grew instead");
    assert!(at_end, "the list did not follow the newest line");
    let sideways: bool = page
        .eval("document.documentElement.scrollWidth > window.innerWidth")
        .await
        .expect("widths");
    assert!(!sideways, "the page scrolls sideways on a phone");
    page.close().await;

    let stopped = host.stop().expect("stop");
    assert_eq!(stopped.status.code(), Some(0), "{}", stopped.stderr);
}
