//! The pages without JavaScript in the browser: the chat's streamed page and plain forms, and
//! the receive form posting itself.

use onionhost_tests::browser::{Options, Page};
use onionhost_tests::chat_client::Member;
use onionhost_tests::host::TestHost;
use serde_json::json;

use super::{file, only_folder};

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
    plain
        .fill("#nojs-name", "plain")
        .await
        .expect("type a name");
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
    assert_eq!(
        ann.next().await,
        json!({"type": "message", "from": "ann", "text": "hello plain"})
    );
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

#[tokio::test]
async fn an_upload_through_the_page_without_javascript_posts_the_plain_form() {
    let dir = tempfile::tempdir().expect("temp dir");
    let inbox = dir.path().join("inbox");
    let host = TestHost::spawn(&["receive", inbox.to_str().expect("UTF-8"), "--local-only"])
        .expect("start");
    let url = host.url("receive").expect("receive tab");
    let (first, first_bytes) = file(dir.path(), "notes.txt", 10_000);
    let (second, second_bytes) = file(dir.path(), "scan.pdf", 300_000);

    let page = Page::open(Options::phone().without_javascript())
        .await
        .expect("open a page");
    page.goto(&url).await.expect("open the form");
    page.choose_files("#files", &[&first, &second])
        .await
        .expect("choose the files");
    page.click("#send").await.expect("send");
    // The form posted itself: the answer is a page of its own, naming both files.
    page.wait_until(
        "the answer page",
        "location.pathname === '/upload' && document.readyState === 'complete'",
    )
    .await
    .expect("the answer page");
    let text: String = page.eval("document.body.innerText").await.expect("text");
    assert!(
        text.contains("notes.txt") && text.contains("scan.pdf"),
        "{text}"
    );
    assert_eq!(page.csp_violations(), Vec::<String>::new());
    page.close().await;

    let folder = only_folder(&inbox);
    assert!(std::fs::read(folder.join("notes.txt")).expect("saved") == first_bytes);
    assert!(std::fs::read(folder.join("scan.pdf")).expect("saved") == second_bytes);
    let stopped = host.stop().expect("stop");
    assert_eq!(stopped.status.code(), Some(0), "{}", stopped.stderr);
}
