//! Every mode's pages in the browser, with JavaScript and without, on a phone and a desktop,
//! light and dark: none logs a console error or a Content Security Policy violation, and
//! none loads anything from another origin than its tab's.

use std::path::Path;

use onionhost_tests::browser::{Options, Page};
use onionhost_tests::host::TestHost;
use onionhost_tests::plugins;

fn write(root: &Path, rel: &str, data: &str) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
    std::fs::write(&path, data).expect("write");
}

/// One host with a tab of every mode (chat, share, receive, website, the pastebin plugin).
fn every_mode(dir: &Path) -> TestHost {
    write(dir, "shared/report.txt", "a report");
    write(dir, "shared/photos/one.txt", "a photo, say");
    write(
        dir,
        "site/index.html",
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>A site</title><link rel=\"stylesheet\" href=\"style.css\"></head>\
         <body><h1>Welcome</h1><img src=\"logo.svg\" alt=\"logo\"><script src=\"app.js\"></script>\
         </body></html>",
    );
    write(dir, "site/style.css", "h1 { color: purple }");
    write(dir, "site/app.js", "document.title = 'A site, scripted';");
    write(
        dir,
        "site/logo.svg",
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"10\" height=\"10\"><rect width=\"10\" height=\"10\"/></svg>",
    );
    write(dir, "site/notes/a.txt", "a note");
    let path = |rel: &str| format!("{:?}", dir.join(rel).to_str().expect("UTF-8 path"));
    let config = format!(
        "[[tab]]\nname = \"chat\"\nmode = \"chat\"\n\n\
         [[tab]]\nname = \"share\"\nmode = \"share\"\n[tab.share]\npaths = [{}, {}]\n\n\
         [[tab]]\nname = \"receive\"\nmode = \"receive\"\n[tab.receive]\ndir = {}\nmin_free_space = 0\n\n\
         [[tab]]\nname = \"website\"\nmode = \"website\"\n[tab.website]\ndir = {}\n\n\
         [[tab]]\nname = \"paste\"\nmode = \"pastebin\"\nplugin = {:?}\n",
        path("shared/report.txt"),
        path("shared/photos"),
        path("inbox"),
        path("site"),
        plugins::pastebin().to_str().expect("UTF-8 path"),
    );
    TestHost::with_config(&config).expect("start")
}

/// Visits `paths` of the tab at `url` in one page with `options`, each until it has loaded,
/// and asserts the page stayed clean.
async fn visit(url: &str, paths: &[&str], options: Options) {
    let page = Page::open(options).await.expect("open a page");
    for path in paths {
        let target = format!("{url}{}", path.trim_start_matches('/'));
        page.goto(&target).await.expect("go to the page");
        page.wait_until(
            &format!("{target} loaded"),
            "document.readyState === 'complete'",
        )
        .await
        .expect("loaded");
    }
    page.assert_clean(url);
    page.close().await;
}

/// Each setting a visitor's browser may have: JavaScript on and off, phone and desktop, light
/// and dark.
fn settings() -> [Options; 4] {
    [
        Options::desktop(),
        Options::desktop().without_javascript().dark(),
        Options::phone().dark(),
        Options::phone().without_javascript(),
    ]
}

#[tokio::test]
async fn no_page_of_any_mode_logs_an_error_or_a_csp_violation_or_loads_another_origin() {
    let dir = tempfile::tempdir().expect("temp dir");
    let host = every_mode(dir.path());
    let tabs = [
        ("chat", &["/nojs", "/nothing-here"][..]),
        ("share", &["/", "/files/photos/", "/nothing-here"]),
        ("receive", &["/", "/nothing-here"]),
        ("website", &["/", "/notes/", "/nothing-here"]),
        ("paste", &["/", "/nothing-here"]),
    ];
    let mut visits = Vec::new();
    for (tab, paths) in tabs {
        let url = host.url(tab).expect("the tab's URL");
        for options in settings() {
            let url = url.clone();
            visits.push(async move { visit(&url, paths, options).await });
        }
    }
    futures::future::join_all(visits).await;

    // The chat's live page (it keeps a WebSocket open, so it is checked once joined), and
    // its page without JavaScript, which keeps loading.
    let chat = host.url("chat").expect("chat");
    for options in settings() {
        let page = Page::open(options).await.expect("open a page");
        page.goto(&chat).await.expect("open the chat");
        if options.javascript {
            page.wait_for_text("#log", "You are in the room as ")
                .await
                .expect("joined");
        } else {
            page.click("form[action='/nojs/join'] button")
                .await
                .expect("join");
            page.wait_for_text(".nojs-controls", "You are ")
                .await
                .expect("the session's page");
        }
        page.assert_clean(&chat);
        page.close().await;
    }

    // Receive's answers: with JavaScript the script shows it on the form's page, without it
    // the form's post is answered with a page.
    let receive = host.url("receive").expect("receive");
    for options in settings() {
        let page = Page::open(options).await.expect("open a page");
        page.goto(&receive).await.expect("open the form");
        page.fill("#text", "hello").await.expect("type");
        page.click("#send").await.expect("send");
        if options.javascript {
            page.wait_for_text("#result", "received")
                .await
                .expect("the answer");
        } else {
            page.wait_until(
                "the answer page",
                "location.pathname === '/upload' && document.readyState === 'complete'",
            )
            .await
            .expect("the answer page");
        }
        page.assert_clean(&receive);
        page.close().await;
    }

    let stopped = host.stop().expect("stop");
    assert_eq!(stopped.status.code(), Some(0), "{}", stopped.stderr);
}
