//! The chat's live page in the browser: visitors see each other's messages, names, renames
//! and leave notices, and who is here.

use onionhost_tests::browser::{Options, Page};
use onionhost_tests::host::TestHost;

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
    ann.wait_for_text("#members", "bo")
        .await
        .expect("bo is listed");
    assert_eq!(ann.text("#count").await.expect("count"), "2");
    assert_eq!(
        bo.texts("#members li").await.expect("bo's list"),
        ["ann", "bo (you)"]
    );

    say(&ann, "hello bo").await;
    bo.wait_for_text("#log .msg", "hello bo")
        .await
        .expect("bo reads ann");
    say(&bo, "hi ann <b>!</b>").await;
    ann.wait_for_text("#log", "hi ann <b>!</b>")
        .await
        .expect("ann reads bo, as text");
    let said = ["ann: hello bo", "bo: hi ann <b>!</b>"];
    assert_eq!(messages(&ann).await, said);
    bo.wait_for_text("#log", "hi ann <b>!</b>")
        .await
        .expect("bo's own line");
    assert_eq!(messages(&bo).await, said);
    // The sender's own lines are marked as theirs; nobody's text became markup.
    assert_eq!(
        ann.texts("#log .msg.mine .text").await.expect("mine"),
        ["hello bo"]
    );
    assert_eq!(
        ann.texts("#log b").await.expect("markup"),
        Vec::<String>::new()
    );
    // The message box is emptied once a message is sent.
    assert_eq!(
        ann.eval::<String>("document.querySelector('#text').value")
            .await
            .expect("box"),
        ""
    );

    bo.close().await;
    ann.wait_for_text("#log", "bo left")
        .await
        .expect("ann sees bo leave");
    ann.wait_until(
        "one left here",
        "document.querySelector('#count').textContent === '1'",
    )
    .await
    .expect("the count goes down");
    assert_eq!(ann.texts("#members li").await.expect("list"), ["ann (you)"]);
    assert_eq!(ann.csp_violations(), Vec::<String>::new());
    ann.close().await;

    let stopped = host.stop().expect("stop");
    assert_eq!(stopped.status.code(), Some(0), "{}", stopped.stderr);
}
