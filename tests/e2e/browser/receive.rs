//! The receive form in the browser: an upload through the page's own form, with JavaScript
//! (the script sends it and shows its progress, then what was received).

use onionhost_tests::browser::{Options, Page};
use onionhost_tests::host::TestHost;

use super::{file, only_folder};

#[tokio::test]
async fn an_upload_through_the_page_with_javascript_shows_its_progress() {
    let dir = tempfile::tempdir().expect("temp dir");
    let inbox = dir.path().join("inbox");
    let host = TestHost::spawn(&["receive", inbox.to_str().expect("UTF-8"), "--local-only"])
        .expect("start");
    let url = host.url("receive").expect("receive tab");
    // 2 MiB at 1 MB/s: the upload takes about two seconds, long enough to be seen.
    let (path, bytes) = file(dir.path(), "photo.bin", 2 * 1024 * 1024);

    let page = Page::open(Options::desktop()).await.expect("open a page");
    page.goto(&url).await.expect("open the form");
    page.choose_files("#files", &[&path])
        .await
        .expect("choose the file");
    page.fill("#text", "for you").await.expect("type a message");
    page.throttle_uploads(1_000_000.0).await.expect("throttle");
    page.click("#send").await.expect("send");
    // The script's progress bar shows part of the upload sent, with the sizes.
    page.wait_until(
        "the upload in progress",
        "(() => { const bar = document.querySelector('#bar'); \
         return !document.querySelector('#progress').hidden && bar.value > 0 && bar.value < 100 \
         && document.querySelector('#progress-text').textContent.includes(' of '); })()",
    )
    .await
    .expect("progress shown");
    page.wait_for_text("#result", "photo.bin")
        .await
        .expect("the page says what was received");
    page.wait_for_text("#result", "Your message was received")
        .await
        .expect("and the message");
    assert_eq!(
        page.url().await.expect("URL"),
        url,
        "the script sent it: the page stayed"
    );
    assert!(
        page.requests().iter().any(|r| r.ends_with("/upload")),
        "{:?}",
        page.requests()
    );
    assert_eq!(page.csp_violations(), Vec::<String>::new());
    page.close().await;

    let folder = only_folder(&inbox);
    assert!(
        std::fs::read(folder.join("photo.bin")).expect("the saved file") == bytes,
        "the saved file differs"
    );
    assert_eq!(
        std::fs::read_to_string(folder.join("message.txt")).expect("the saved message"),
        "for you"
    );
    let stopped = host.stop().expect("stop");
    assert_eq!(stopped.status.code(), Some(0), "{}", stopped.stderr);
}
