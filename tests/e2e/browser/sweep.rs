//! Every page of every mode in the browser, in each setting a visitor's browser may have
//! (JavaScript on and off, a phone and a desktop, light and dark): none logs a console error
//! or a Content Security Policy violation, none loads anything from another origin than its
//! tab's, none scrolls sideways, every form field has a label, and text and controls meet
//! WCAG AA contrast.
//!
//! One host serves a tab of every mode; each of the eight settings is one browser tab that
//! walks through every page (the settings run at the same time), so the sweep costs one host
//! and eight pages, not one per page.

use std::path::Path;
use std::time::Duration;

use onionhost_tests::browser::{Device, Options, Page, WAIT};
use onionhost_tests::host::TestHost;
use onionhost_tests::plugins;

/// The browser's own console line for a response with an error status (a 404 page, a
/// refused upload): expected where the test asks for that status, a finding anywhere else.
const STATUS_LINE: &str = "Failed to load resource: the server responded with a status of";

/// Whether the sdk's style sheet has loaded and applies (a sheet refused by the page's
/// Content-Security-Policy is never in `document.styleSheets`).
const SDK_STYLE_LOADED: &str = "Array.from(document.styleSheets).some((sheet) => \
     sheet.href !== null && sheet.href.endsWith('/onionhost%2Fstyle.css') && sheet.cssRules.length > 0)";

fn write(root: &Path, rel: &str, data: &str) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
    std::fs::write(&path, data).expect("write");
}

/// One host with a tab of every mode: chat, share (several items, and one file alone),
/// receive, website (a folder with an `index.html` and one without), the pastebin plugin.
fn every_mode(dir: &Path) -> TestHost {
    write(dir, "shared/report.txt", "a report");
    write(dir, "shared/photos/one.txt", "a photo, say");
    write(
        dir,
        "shared/photos/a file with a rather long name that could push a phone's page sideways.txt",
        "x",
    );
    write(dir, "alone/notes.txt", "one file alone");
    write(
        dir,
        "site/index.html",
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>A site</title><link rel=\"stylesheet\" href=\"style.css\"></head>\
         <body><h1>Welcome</h1><img src=\"logo.svg\" alt=\"logo\"><script src=\"app.js\"></script>\
         </body></html>",
    );
    write(dir, "site/style.css", "h1 { color: #4b2a80 }");
    write(dir, "site/app.js", "document.title = 'A site, scripted';");
    write(
        dir,
        "site/logo.svg",
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"10\" height=\"10\"><rect width=\"10\" height=\"10\"/></svg>",
    );
    write(dir, "site/notes/a.txt", "a note");
    write(dir, "site/notes/b.txt", "another note");
    let path = |rel: &str| format!("{:?}", dir.join(rel).to_str().expect("UTF-8 path"));
    let config = format!(
        "[[tab]]\nname = \"chat\"\nmode = \"chat\"\n\
         [tab.chat.join_limit]\njoins_per_minute = 600\nburst = 100\n\n\
         [[tab]]\nname = \"share\"\nmode = \"share\"\n[tab.share]\npaths = [{}, {}]\n\n\
         [[tab]]\nname = \"single\"\nmode = \"share\"\n[tab.share]\npaths = [{}]\n\n\
         [[tab]]\nname = \"receive\"\nmode = \"receive\"\n[tab.receive]\ndir = {}\n\
         min_free_space = 0\nmax_uploads_per_minute = 600\n\n\
         [[tab]]\nname = \"website\"\nmode = \"website\"\n[tab.website]\ndir = {}\n\n\
         [[tab]]\nname = \"strict\"\nmode = \"website\"\n[tab.website]\ndir = {}\n\
         csp = \"default-src 'none'\"\n\n\
         [[tab]]\nname = \"paste\"\nmode = \"pastebin\"\nplugin = {:?}\n",
        path("shared/report.txt"),
        path("shared/photos"),
        path("alone/notes.txt"),
        path("inbox"),
        path("site"),
        path("site"),
        plugins::pastebin().to_str().expect("UTF-8 path"),
    );
    TestHost::with_config(&config).expect("start")
}

/// Every setting: JavaScript on and off, phone and desktop, light and dark.
fn settings() -> Vec<Options> {
    let mut all = Vec::new();
    for javascript in [true, false] {
        for device in [Device::Phone, Device::Desktop] {
            for dark in [false, true] {
                all.push(Options {
                    device,
                    javascript,
                    dark,
                });
            }
        }
    }
    all
}

/// The tabs' addresses.
struct Tabs {
    chat: String,
    share: String,
    single: String,
    receive: String,
    website: String,
    strict: String,
    paste: String,
}

/// One setting's walk through the pages, in one browser tab, gathering what it finds.
struct Walk {
    page: Page,
    options: Options,
    problems: Vec<String>,
    pages: usize,
}

impl Walk {
    /// Goes to `path` of the tab at `tab` and waits until it has loaded.
    async fn visit(&mut self, tab: &str, path: &str) {
        let target = format!("{tab}{}", path.trim_start_matches('/'));
        // A page the browser cannot show (it shows its own error page instead, as for an
        // error status with an empty body) is a finding; the walk goes on.
        if let Err(err) = self.page.goto(&target).await {
            self.problems
                .push(format!("{target} ({:?}): {err:#}", self.options));
            return;
        }
        self.page
            .wait_until(
                &format!("{target} loaded"),
                &format!("location.href === {target:?} && document.readyState === 'complete'"),
            )
            .await
            .expect("loaded");
    }

    /// Checks the page shown now (`what`), of the tab at `tab`; `refused` ends the URL of
    /// the one response the test expects to have an error status (the page itself for a
    /// 404 page, or a refused upload), if any. Then forgets the page's records.
    /// Checks that the page has an element for each of `selectors` (the stable ids and forms
    /// that scripts and tests rely on).
    async fn expect_present(&mut self, what: &str, selectors: &[&str]) {
        let list = serde_json::to_string(selectors).expect("JSON");
        let missing: Vec<String> = self
            .page
            .eval(&format!(
                "{list}.filter((selector) => document.querySelector(selector) === null)"
            ))
            .await
            .expect("look for the selectors");
        if !missing.is_empty() {
            self.problems.push(format!(
                "{what} ({:?}): nothing matches {missing:?}",
                self.options
            ));
        }
    }

    /// Moves through the page's first controls with Tab, as a keyboard user: each one shows
    /// a focus ring that is seen (solid, 2 px or more, 3:1 against what is around it).
    async fn check_focus(&mut self, what: &str) {
        let setting = format!("{:?}", self.options);
        let mut reached = 0;
        for _ in 0..6 {
            self.page.press_tab().await.expect("press Tab");
            match self.page.focus_ring().await.expect("the focus ring") {
                Some(ring) => {
                    reached += 1;
                    if !ring.is_visible() {
                        self.problems.push(format!(
                            "{what} ({setting}): no visible focus ring: {ring:?}"
                        ));
                    }
                }
                None => break,
            }
        }
        if reached == 0 {
            self.problems
                .push(format!("{what} ({setting}): Tab reaches no control"));
        }
    }

    async fn check(&mut self, what: &str, tab: &str, refused: Option<&str>) {
        self.check_page(what, tab, refused, true).await;
    }

    /// [`Walk::check`] for a page of the site's own (its `index.html`): it need not load the
    /// sdk's style sheet.
    async fn check_site_file(&mut self, what: &str, tab: &str) {
        self.check_page(what, tab, None, false).await;
    }

    async fn check_page(&mut self, what: &str, tab: &str, refused: Option<&str>, ours: bool) {
        self.pages += 1;
        let setting = format!("{:?}", self.options);
        // The browser logs an expected error status as it sees it: wait for that line, so
        // that it is not taken for the next page's.
        if let Some(refused) = refused {
            let deadline = tokio::time::Instant::now() + WAIT;
            while !self
                .page
                .console_errors()
                .iter()
                .any(|e| e.contains(STATUS_LINE) && e.trim_end().ends_with(refused))
            {
                if tokio::time::Instant::now() >= deadline {
                    self.problems.push(format!(
                        "{what} ({setting}): no error status logged for {refused}"
                    ));
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        let errors: Vec<String> = self
            .page
            .console_errors()
            .into_iter()
            .filter(|e| {
                !(e.contains(STATUS_LINE) && refused.is_some_and(|r| e.trim_end().ends_with(r)))
            })
            .collect();
        for error in errors {
            self.problems
                .push(format!("{what} ({setting}): console error: {error}"));
        }
        for violation in self.page.csp_violations() {
            self.problems
                .push(format!("{what} ({setting}): CSP violation: {violation}"));
        }
        let own = origin(tab);
        for request in self.page.requests() {
            if !request.starts_with("data:") && request != "about:blank" && origin(&request) != own
            {
                self.problems.push(format!(
                    "{what} ({setting}): request to another origin: {request}"
                ));
            }
        }
        // A page reached through a form (or one that keeps loading) may be read before its
        // style sheets have arrived: wait for the sdk's, then measure.
        if ours
            && self
                .page
                .wait_until("the sdk's style sheet", SDK_STYLE_LOADED)
                .await
                .is_err()
        {
            self.problems.push(format!(
                "{what} ({setting}): the sdk's style sheet is not applied"
            ));
        }
        let audit = self.page.audit().await.expect("audit");
        if audit.dark != self.options.dark {
            self.problems.push(format!(
                "{what} ({setting}): the page saw dark = {}",
                audit.dark
            ));
        }
        let expected_width = match self.options.device {
            Device::Phone => 390.0,
            Device::Desktop => 1280.0,
        };
        if audit.viewport_width != expected_width {
            self.problems.push(format!(
                "{what} ({setting}): a viewport {} px wide",
                audit.viewport_width
            ));
        }
        for problem in audit.problems() {
            self.problems.push(format!("{what} ({setting}): {problem}"));
        }
        self.page.clear_records();
    }
}

/// The origin of a URL, with `ws` as `http` (a page's WebSocket to its own tab).
fn origin(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let scheme = if scheme == "ws" { "http" } else { scheme };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    format!("{scheme}://{authority}")
}

/// The chat: the live page (joined, after a line was said) or, without JavaScript, its join
/// form; the page without JavaScript (join form, session page after a line, the page after
/// leaving); a 404.
async fn chat(walk: &mut Walk, tab: &str) {
    walk.visit(tab, "/").await;
    let page = &walk.page;
    if walk.options.javascript {
        page.wait_for_text("#log", "You are in the room as ")
            .await
            .expect("joined");
        page.fill("#text", "hello from the sweep")
            .await
            .expect("type");
        page.click("#send-button").await.expect("send");
        page.wait_for_text("#log .msg", "hello from the sweep")
            .await
            .expect("the line");
        walk.expect_present(
            "the chat's live page",
            &[
                "#log",
                "#name",
                "#rename-button",
                "#text",
                "#send-button",
                "#members",
                "#count",
            ],
        )
        .await;
        walk.check("the chat's live page", tab, None).await;
        walk.check_focus("the chat's live page").await;
    } else {
        page.wait_for("#nojs-name").await.expect("the join form");
        walk.expect_present(
            "the chat's page without JavaScript",
            &["form[method=post][action='/nojs/join'] #nojs-name"],
        )
        .await;
        walk.check("the chat's page without JavaScript", tab, None)
            .await;
    }

    walk.visit(tab, "/nojs").await;
    walk.check("the chat's join page without JavaScript", tab, None)
        .await;
    let page = &walk.page;
    page.fill("#name", "").await.expect("no name: a random one");
    page.click("form[action='/nojs/join'] button")
        .await
        .expect("join");
    page.wait_for_text(".nojs-controls", "You are ")
        .await
        .expect("the session's page");
    page.fill("#text", "hello without scripts")
        .await
        .expect("type");
    // The form's answer redirects to a new copy of the page; the old one streams the line
    // too, so the wait is for the line on a document that is not the old one.
    page.eval::<bool>("window.onionhostSweepOld = true")
        .await
        .expect("mark the page");
    page.click("form[action$='/send'] button")
        .await
        .expect("send");
    page.wait_until(
        "the line on the page the form's answer led to",
        "window.onionhostSweepOld !== true && document.querySelector('.log') !== null \
         && document.querySelector('.log').textContent.includes('hello without scripts')",
    )
    .await
    .expect("the line");
    walk.expect_present(
        "the chat's session page without JavaScript",
        &[
            ".nojs-controls form[method=post][action$='/send'] #text",
            ".nojs-controls form[method=post][action$='/rename'] #name",
            ".nojs-controls form[method=post][action$='/leave'] button",
        ],
    )
    .await;
    walk.check("the chat's session page without JavaScript", tab, None)
        .await;
    walk.check_focus("the chat's session page without JavaScript")
        .await;
    let page = &walk.page;
    page.click("form[action$='/leave'] button")
        .await
        .expect("leave");
    page.wait_for("#left")
        .await
        .expect("the page after leaving");
    walk.check("the chat's page after leaving", tab, None).await;

    walk.visit(tab, "/nothing-here").await;
    walk.check("the chat's 404 page", tab, Some("/nothing-here"))
        .await;
}

/// The share: its listing, a folder's, a share of one file, 404s.
async fn share(walk: &mut Walk, tab: &str, single: &str) {
    walk.visit(tab, "/").await;
    walk.check("the share's listing", tab, None).await;
    walk.check_focus("the share's listing").await;
    walk.visit(tab, "/files/photos/").await;
    walk.check("a shared folder's listing", tab, None).await;
    walk.visit(tab, "/files/nothing-here").await;
    walk.check("the share's 404 page", tab, Some("/files/nothing-here"))
        .await;
    walk.visit(single, "/").await;
    walk.check("a share of one file", single, None).await;
    walk.visit(single, "/nothing-here").await;
    walk.check("the single share's 404 page", single, Some("/nothing-here"))
        .await;
}

/// The receive form, its answer to a message, its answer to an empty upload (refused),
/// and a 404.
async fn receive(walk: &mut Walk, tab: &str) {
    walk.visit(tab, "/").await;
    walk.expect_present(
        "the receive form",
        &[
            "#files",
            "#text",
            "#send",
            "#progress",
            "#bar",
            "#progress-text",
            "#result",
        ],
    )
    .await;
    walk.check("the receive form", tab, None).await;
    walk.check_focus("the receive form").await;
    let javascript = walk.options.javascript;
    let page = &walk.page;
    page.fill("#text", "hello").await.expect("type");
    page.click("#send").await.expect("send");
    if javascript {
        page.wait_for_text("#result", "Your message was received")
            .await
            .expect("the answer");
    } else {
        page.wait_until(
            "the answer page",
            "location.pathname === '/upload' && document.readyState === 'complete' \
             && document.querySelector('#received') !== null",
        )
        .await
        .expect("the answer page");
    }
    walk.check("the receive answer", tab, None).await;

    walk.visit(tab, "/").await;
    walk.clear_then_refuse().await;
    walk.check("the receive refusal", tab, Some("/upload"))
        .await;

    walk.visit(tab, "/nothing-here").await;
    walk.check("the receive 404 page", tab, Some("/nothing-here"))
        .await;
}

impl Walk {
    /// Sends the receive form empty: refused ("choose at least one file or write a
    /// message"), as a notice on the page with JavaScript, as a page of its own without.
    async fn clear_then_refuse(&self) {
        self.page.click("#send").await.expect("send nothing");
        if self.options.javascript {
            self.page
                .wait_for(".note.error#result")
                .await
                .expect("the refusal");
        } else {
            self.page
                .wait_until(
                    "the refusal page",
                    "location.pathname === '/upload' && document.readyState === 'complete' \
                     && document.querySelector('.note.error') !== null",
                )
                .await
                .expect("the refusal page");
        }
    }
}

/// The website: a folder's `index.html` (the site's own page, style sheet, script, image),
/// a folder's listing, a 404.
async fn website(walk: &mut Walk, tab: &str) {
    walk.visit(tab, "/").await;
    walk.check_site_file("the website's index.html", tab).await;
    walk.visit(tab, "/notes/").await;
    walk.check("the website's folder listing", tab, None).await;
    walk.visit(tab, "/nothing-here").await;
    walk.check("the website's 404 page", tab, Some("/nothing-here"))
        .await;
}

/// A website with a strict policy of its own (`default-src 'none'`): its own page gets
/// exactly that policy (its style sheet and script are refused), while the folder listing
/// and the 404 page, which the host generates, keep the strict default and their style.
async fn strict_website(walk: &mut Walk, tab: &str) {
    walk.visit(tab, "/").await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while walk.page.csp_violations().len() < 2 {
        if tokio::time::Instant::now() >= deadline {
            walk.problems.push(format!(
                "the strict site's own page ({:?}): the site's policy refused nothing: {:?}",
                walk.options,
                walk.page.csp_violations()
            ));
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    walk.page.clear_records();
    walk.visit(tab, "/notes/").await;
    walk.check("the strict website's folder listing", tab, None)
        .await;
    walk.visit(tab, "/nothing-here").await;
    walk.check("the strict website's 404 page", tab, Some("/nothing-here"))
        .await;
}

/// The pastebin plugin: the form, a paste (with its live viewer count when scripts run), a
/// paste to burn and its reading, 404s.
async fn pastebin(walk: &mut Walk, tab: &str) {
    walk.visit(tab, "/").await;
    walk.check("the pastebin's form", tab, None).await;
    walk.check_focus("the pastebin's form").await;
    let page = &walk.page;
    page.fill("#text", "a paste").await.expect("type");
    page.click("form[action='/paste'] button")
        .await
        .expect("paste");
    page.wait_for("#paste").await.expect("the paste's page");
    if walk.options.javascript {
        page.wait_for_text("#viewers", "viewing")
            .await
            .expect("the live count");
    }
    walk.check("a paste", tab, None).await;

    walk.visit(tab, "/").await;
    let page = &walk.page;
    page.fill("#text", "a secret").await.expect("type");
    page.click("input[name=burn]")
        .await
        .expect("burn after reading");
    page.click("form[action='/paste'] button")
        .await
        .expect("paste");
    page.wait_for_text("form[action$='/read'] button", "Read and destroy")
        .await
        .expect("the burn page");
    walk.check("a paste to burn", tab, None).await;
    let page = &walk.page;
    page.click("form[action$='/read'] button")
        .await
        .expect("read");
    page.wait_for_text("#paste", "a secret")
        .await
        .expect("the burned paste");
    walk.check("a burned paste", tab, None).await;

    walk.visit(tab, "/p/nothing-here").await;
    walk.check("a missing paste", tab, Some("/p/nothing-here"))
        .await;
    walk.visit(tab, "/nothing-here").await;
    walk.check("the pastebin's 404 page", tab, Some("/nothing-here"))
        .await;
}

async fn walk(tabs: &Tabs, options: Options) -> (Vec<String>, usize) {
    let page = Page::open(options).await.expect("open a page");
    let mut walk = Walk {
        page,
        options,
        problems: Vec::new(),
        pages: 0,
    };
    chat(&mut walk, &tabs.chat).await;
    share(&mut walk, &tabs.share, &tabs.single).await;
    receive(&mut walk, &tabs.receive).await;
    website(&mut walk, &tabs.website).await;
    strict_website(&mut walk, &tabs.strict).await;
    pastebin(&mut walk, &tabs.paste).await;
    let Walk {
        page,
        problems,
        pages,
        ..
    } = walk;
    page.close().await;
    (problems, pages)
}

#[tokio::test]
async fn every_page_of_every_mode_is_clean_fits_a_phone_and_meets_aa_contrast() {
    let dir = tempfile::tempdir().expect("temp dir");
    let host = every_mode(dir.path());
    let url = |tab: &str| host.url(tab).expect("the tab's URL");
    let tabs = Tabs {
        chat: url("chat"),
        share: url("share"),
        single: url("single"),
        receive: url("receive"),
        website: url("website"),
        strict: url("strict"),
        paste: url("paste"),
    };
    let walks = settings().into_iter().map(|options| walk(&tabs, options));
    let results = futures::future::join_all(walks).await;
    let pages: usize = results.iter().map(|(_, pages)| pages).sum();
    let problems: Vec<String> = results.into_iter().flat_map(|(p, _)| p).collect();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // 8 settings × 25 pages each (the chat's live page or its page without JavaScript).
    assert_eq!(pages, 8 * 25);

    let stopped = host.stop().expect("stop");
    assert_eq!(stopped.status.code(), Some(0), "{}", stopped.stderr);
}
