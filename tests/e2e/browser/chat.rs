//! The chat in the browser: with JavaScript, visitors see each other's messages, names,
//! renames and leave notices, and who is here; without it, a visitor reads the streamed page
//! and posts, renames and leaves with its plain forms.

use onionhost_tests::browser::{Options, Page};
use onionhost_tests::chat_client::Member;
use onionhost_tests::host::TestHost;
use serde_json::json;

/// Opens the chat at `url` and waits until it has joined; returns the page and the random
/// name the room gave it.
async fn join(url: &str, options: Options) -> (Page, String) {
    let page = Page::open(options).await.expect("open a page");
    page.goto(url).await.expect("open the chat");
    page.wait_for_text("#log", "You are in the room as ")
        .await
        .expect("joined");
    let name: String = page
        .eval("document.querySelector('#name').value")
        .await
        .expect("the name field");
    assert!(!name.is_empty(), "no name in the name field");
    (page, name)
}

/// Renames the page's visitor to `name` through the rename form.
async fn rename(page: &Page, from: &str, name: &str) {
    page.fill("#name", name).await.expect("type a name");
    page.click("#rename-button").await.expect("rename");
    page.wait_for_text("#log", &format!("{from} is now {name}"))
        .await
        .expect("renamed");
}

/// Sends `text` from the page's message box with the Send button.
async fn say(page: &Page, text: &str) {
    page.fill("#text", text).await.expect("type a message");
    page.click("#send-button").await.expect("send");
}

/// The texts of the log's messages, as `from: text`.
async fn messages(page: &Page) -> Vec<String> {
    page.eval(
        "Array.from(document.querySelectorAll('#log .msg'), \
         (li) => li.querySelector('.from').textContent + ': ' + li.querySelector('.text').textContent)",
    )
    .await
    .expect("the log's messages")
}

#[tokio::test]
async fn two_visitors_see_each_others_messages_names_renames_and_leaving() {
    let host = TestHost::spawn(&["chat", "--local-only"]).expect("start");
    let url = host.url("chat").expect("chat tab");

    let (ann, first) = join(&url, Options::desktop()).await;
    rename(&ann, &first, "ann").await;
    let (bo, second) = join(&url, Options::phone()).await;
    ann.wait_for_text("#log", &format!("{second} joined"))
        .await
        .expect("ann sees bo arrive");
    rename(&bo, &second, "bo").await;
    ann.wait_for_text("#log", &format!("{second} is now bo"))
        .await
        .expect("ann sees bo's new name");
    ann.wait_for_text("#members", "bo").await.expect("bo is listed");
    assert_eq!(ann.text("#count").await.expect("count"), "2");
    assert_eq!(
        bo.texts("#members li").await.expect("bo's list"),
        ["ann", "bo (you)"]
    );

    say(&ann, "hello bo").await;
    bo.wait_for_text("#log .msg", "hello bo").await.expect("bo reads ann");
    say(&bo, "hi ann <b>!</b>").await;
    ann.wait_for_text("#log", "hi ann <b>!</b>")
        .await
        .expect("ann reads bo, as text");
    let said = ["ann: hello bo", "bo: hi ann <b>!</b>"];
    assert_eq!(messages(&ann).await, said);
    bo.wait_for_text("#log", "hi ann <b>!</b>").await.expect("bo's own line");
    assert_eq!(messages(&bo).await, said);
    // The sender's own lines are marked as theirs; nobody's text became markup.
    assert_eq!(
        ann.texts("#log .msg.mine .text").await.expect("mine"),
        ["hello bo"]
    );
    assert_eq!(ann.texts("#log b").await.expect("markup"), Vec::<String>::new());
    // The message box is emptied once a message is sent.
    assert_eq!(ann.eval::<String>("document.querySelector('#text').value").await.expect("box"), "");

    bo.close().await;
    ann.wait_for_text("#log", "bo left").await.expect("ann sees bo leave");
    ann.wait_until("one left here", "document.querySelector('#count').textContent === '1'")
        .await
        .expect("the count goes down");
    assert_eq!(ann.texts("#members li").await.expect("list"), ["ann (you)"]);
    assert_eq!(ann.csp_violations(), Vec::<String>::new());
    ann.close().await;

    let stopped = host.stop().expect("stop");
    assert_eq!(stopped.status.code(), Some(0), "{}", stopped.stderr);
}

#[tokio::test]
async fn a_visitor_without_javascript_reads_and_posts_renames_and_leaves() {
    let host = TestHost::spawn(&["chat", "--local-only"]).expect("start");
    let url = host.url("chat").expect("chat tab");
    let (mut ann, _) = Member::join(&url, "ann").await;

    let plain = Page::open(Options::phone().without_javascript())
        .await
        .expect("open a page");
    plain.goto(&url).await.expect("open the chat");
    // The live page's <noscript> offers the join form.
    plain.fill("#nojs-name", "plain").await.expect("type a name");
    plain
        .click("form[action='/nojs/join'] button")
        .await
        .expect("join");
    assert_eq!(ann.next().await, json!({"type": "joined", "name": "plain"}));
    plain
        .wait_for_text(".nojs-controls", "You are plain")
        .await
        .expect("the session's page");

    ann.say("hello plain").await;
    plain
        .wait_for_text(".log", "hello plain")
        .await
        .expect("the page streams ann's line");

    plain.fill("#text", "hi ann").await.expect("type a message");
    plain
        .click("form[action$='/send'] button")
        .await
        .expect("send");
    assert_eq!(
        ann.next().await,
        json!({"type": "message", "from": "plain", "text": "hi ann"})
    );
    // Back on the page (after the form's redirect), with both lines.
    plain
        .wait_for_text(".log", "hi ann")
        .await
        .expect("the page shows its own line");
    plain
        .wait_for_text(".log", "hello plain")
        .await
        .expect("and the earlier one");

    plain.fill("#name", "plainer").await.expect("type a name");
    plain
        .click("form[action$='/rename'] button")
        .await
        .expect("rename");
    assert_eq!(
        ann.next().await,
        json!({"type": "renamed", "from": "plain", "to": "plainer"})
    );
    plain
        .wait_for_text(".nojs-controls", "You are plainer")
        .await
        .expect("the page knows the new name");

    plain
        .click("form[action$='/leave'] button")
        .await
        .expect("leave");
    assert_eq!(ann.next().await, json!({"type": "left", "name": "plainer"}));
    assert_eq!(plain.csp_violations(), Vec::<String>::new());
    plain.close().await;

    let stopped = host.stop().expect("stop");
    assert_eq!(stopped.status.code(), Some(0), "{}", stopped.stderr);
}
