//! The website mode as a whole, in memory: its router built by the sdk's `TestTab`, hardened
//! as the host serves it, driven with `oneshot`.

#![allow(clippy::unwrap_used)]

use std::path::Path;

use http_body_util::BodyExt as _;
use onionhost_sdk::axum::body::Body;
use onionhost_sdk::axum::http::{Request, StatusCode, header};
use onionhost_sdk::http::CONTENT_SECURITY_POLICY;
use onionhost_sdk::testing::TestTab;
use tower::ServiceExt as _;

use crate::WebsiteMode;

struct Answer {
    status: StatusCode,
    headers: onionhost_sdk::axum::http::HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn text(&self) -> String {
        String::from_utf8(self.body.clone()).unwrap()
    }

    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("no {name}"))
            .to_str()
            .unwrap()
    }
}

fn write(root: &Path, rel: &str, data: &str) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, data).unwrap();
}

/// A site with an `index.html`, a folder without one, a folder with one, and links of every
/// kind pointing in and out.
fn site() -> (tempfile::TempDir, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "index.html", "<h1>home</h1>");
    write(root, "style.css", "h1 { color: red }");
    write(root, "app.js", "console.log(1)");
    write(root, "data.bin", "0123456789");
    write(root, ".well-known/security.txt", "hidden but served");
    write(root, "docs/a.txt", "aaa");
    write(root, "docs/<b>&.txt", "escaped");
    write(root, "blog/index.html", "<p>blog</p>");
    write(outside.path(), "secret.txt", "TOP SECRET");
    let link = |to: &Path, name: &str| std::os::unix::fs::symlink(to, root.join(name)).unwrap();
    link(&root.join("style.css"), "in.css");
    link(&outside.path().join("secret.txt"), "out.txt");
    link(&root.join("in.css"), "chain.css");
    link(&root.join("docs"), "docs-link");
    link(outside.path(), "outside-dir");
    (dir, outside)
}

fn tab(dir: &Path, extra: &str) -> TestTab {
    TestTab::build::<WebsiteMode>(&format!("dir = {:?}\n{extra}", dir.to_str().unwrap())).unwrap()
}

async fn request(tab: &TestTab, method: &str, uri: &str, headers: &[(&str, &str)]) -> Answer {
    let mut builder = Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let response = tab
        .router
        .clone()
        .oneshot(builder.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    Answer {
        status,
        headers,
        body,
    }
}

async fn get(tab: &TestTab, uri: &str) -> Answer {
    request(tab, "GET", uri, &[]).await
}

#[tokio::test]
async fn the_index_is_served_at_the_root_and_in_folders() {
    let (dir, _outside) = site();
    let tab = tab(dir.path(), "");
    let home = get(&tab, "/").await;
    assert_eq!(home.status, StatusCode::OK);
    assert_eq!(home.text(), "<h1>home</h1>");
    assert_eq!(home.header("content-type"), "text/html; charset=utf-8");
    assert!(home.headers.get(header::CONTENT_DISPOSITION).is_none());
    assert_eq!(get(&tab, "/index.html").await.text(), "<h1>home</h1>");
    assert_eq!(get(&tab, "/blog/").await.text(), "<p>blog</p>");
    // A folder without its slash is sent to it, so that relative links work.
    let bare = get(&tab, "/blog").await;
    assert_eq!(bare.status, StatusCode::MOVED_PERMANENTLY);
    assert_eq!(bare.header("location"), "/blog/");
    // A file with a slash is no folder.
    assert_eq!(
        get(&tab, "/index.html/").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn a_folder_without_an_index_is_listed_with_names_as_text() {
    let (dir, _outside) = site();
    std::fs::remove_file(dir.path().join("index.html")).unwrap();
    let tab = tab(dir.path(), "title = \"My <site>\"");
    let root = get(&tab, "/").await;
    assert_eq!(root.status, StatusCode::OK);
    let page = root.text();
    for link in [
        "href=\"/docs/\"",
        "href=\"/blog/\"",
        "href=\"/style.css\"",
        "href=\"/.well-known/\"",
    ] {
        assert!(page.contains(link), "{link} missing: {page}");
    }
    assert!(page.contains("My &lt;site&gt;"), "{page}");
    assert!(page.contains(onionhost_sdk::page::STYLE_PATH), "{page}");
    let docs = get(&tab, "/docs/").await.text();
    assert!(docs.contains("&lt;b&gt;&amp;.txt"), "{docs}");
    assert!(!docs.contains("<b>&"), "{docs}");
    assert!(docs.contains("href=\"/docs/%3Cb%3E%26.txt\""), "{docs}");
    assert_eq!(get(&tab, "/docs/%3Cb%3E%26.txt").await.text(), "escaped");
    // The sdk's style sheet, which no file of the site can hide.
    let style = get(&tab, onionhost_sdk::page::STYLE_PATH).await;
    assert_eq!(style.status, StatusCode::OK);
    assert_eq!(style.header("content-type"), "text/css; charset=utf-8");
    assert_eq!(
        get(&tab, "/onionhost/style.css").await.status,
        StatusCode::NOT_FOUND
    );
}

/// A site without a `favicon.ico` gets the sdk's icon (no `404` in every visitor's console);
/// a site with its own serves that, and the sdk's logo never hides a file of the site.
#[tokio::test]
async fn the_sites_own_favicon_wins_over_the_sdks() {
    let (dir, _outside) = site();
    let plain = tab(dir.path(), "");
    let icon = get(&plain, "/favicon.ico").await;
    assert_eq!(icon.status, StatusCode::OK);
    assert_eq!(icon.header("content-type"), "image/x-icon");
    assert_eq!(icon.body, onionhost_sdk::page::FAVICON.bytes());
    assert_eq!(
        get(&plain, onionhost_sdk::page::LOGO_PATH).await.body,
        onionhost_sdk::page::LOGO.bytes()
    );
    write(dir.path(), "favicon.ico", "the site's own icon");
    write(dir.path(), "onionhost/logo.svg", "the site's own logo");
    let own = tab(dir.path(), "");
    assert_eq!(
        get(&own, "/favicon.ico").await.text(),
        "the site's own icon"
    );
    assert_eq!(
        get(&own, "/onionhost/logo.svg").await.text(),
        "the site's own logo"
    );
    assert_eq!(
        get(&own, onionhost_sdk::page::LOGO_PATH).await.body,
        onionhost_sdk::page::LOGO.bytes()
    );
}

#[tokio::test]
async fn links_of_every_kind_are_neither_listed_nor_served() {
    let (dir, _outside) = site();
    std::fs::remove_file(dir.path().join("index.html")).unwrap();
    let tab = tab(dir.path(), "");
    let page = get(&tab, "/").await.text();
    for name in ["in.css", "out.txt", "chain.css", "docs-link", "outside-dir"] {
        assert!(!page.contains(name), "{name} is listed: {page}");
        let answer = get(&tab, &format!("/{name}")).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{name}");
        assert!(!answer.text().contains("TOP SECRET"));
    }
    for path in ["/docs-link/a.txt", "/outside-dir/secret.txt", "/docs-link/"] {
        assert_eq!(
            get(&tab, path).await.status,
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
    let notices = format!("{:?}", tab.events());
    assert!(notices.contains("5 symbolic link(s)"), "{notices}");
}

#[tokio::test]
async fn traversal_is_refused() {
    let (dir, _outside) = site();
    let tab = tab(dir.path(), "");
    for path in [
        "/../secret.txt",
        "/docs/../index.html",
        "/%2e%2e/secret.txt",
        "/docs/%2E%2E/index.html",
        "/docs%2fa.txt",
        "/docs%5ca.txt",
        "//etc/passwd",
        "/a%00b",
        "/%zz",
    ] {
        let answer = get(&tab, path).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{path}");
        assert!(!answer.text().contains("TOP SECRET"), "{path}");
    }
}

#[tokio::test]
async fn files_have_their_types_and_hidden_files_are_served() {
    let (dir, _outside) = site();
    let tab = tab(dir.path(), "");
    for (path, content_type) in [
        ("/style.css", "text/css; charset=utf-8"),
        ("/data.bin", "application/octet-stream"),
        ("/docs/a.txt", "text/plain; charset=utf-8"),
    ] {
        let answer = get(&tab, path).await;
        assert_eq!(answer.status, StatusCode::OK, "{path}");
        assert_eq!(answer.header("content-type"), content_type, "{path}");
    }
    let js = get(&tab, "/app.js").await;
    assert!(
        js.header("content-type").contains("javascript"),
        "{}",
        js.header("content-type")
    );
    assert!(js.header("content-type").ends_with("charset=utf-8"));
    assert_eq!(
        get(&tab, "/.well-known/security.txt").await.text(),
        "hidden but served"
    );
    let post = request(&tab, "POST", "/index.html", &[]).await;
    assert_eq!(post.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(post.header("allow"), "GET, HEAD");
}

#[tokio::test]
async fn range_etag_and_head_work_like_share() {
    let (dir, _outside) = site();
    let tab = tab(dir.path(), "");
    let head = request(&tab, "HEAD", "/data.bin", &[]).await;
    assert_eq!(head.status, StatusCode::OK);
    assert_eq!(head.header("content-length"), "10");
    assert_eq!(head.header("accept-ranges"), "bytes");
    assert!(head.body.is_empty());
    let etag = head.header("etag").to_owned();
    assert!(etag.starts_with("\"file-"), "{etag}");
    let piece = request(&tab, "GET", "/data.bin", &[("range", "bytes=2-4")]).await;
    assert_eq!(piece.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(piece.header("content-range"), "bytes 2-4/10");
    assert_eq!(piece.body, b"234");
    let tail = request(
        &tab,
        "GET",
        "/data.bin",
        &[("range", "bytes=-3"), ("if-range", &etag)],
    )
    .await;
    assert_eq!(tail.body, b"789");
    let stale = request(
        &tab,
        "GET",
        "/data.bin",
        &[("range", "bytes=0-1"), ("if-range", "\"old\"")],
    )
    .await;
    assert_eq!(stale.status, StatusCode::OK);
    assert_eq!(stale.body, b"0123456789");
    let cached = request(&tab, "GET", "/data.bin", &[("if-none-match", &etag)]).await;
    assert_eq!(cached.status, StatusCode::NOT_MODIFIED);
    assert!(cached.body.is_empty());
    let past = request(&tab, "GET", "/data.bin", &[("range", "bytes=10-")]).await;
    assert_eq!(past.status, StatusCode::RANGE_NOT_SATISFIABLE);
    let failed = request(&tab, "GET", "/data.bin", &[("if-match", "\"old\"")]).await;
    assert_eq!(failed.status, StatusCode::PRECONDITION_FAILED);
    // The index served at `/` is the same file, with the same ETag.
    let index = get(&tab, "/index.html").await;
    assert_eq!(get(&tab, "/").await.header("etag"), index.header("etag"));
}

#[tokio::test]
async fn a_file_changed_after_the_start_is_refused() {
    let (dir, _outside) = site();
    let tab = tab(dir.path(), "show_file_names_in_console = true");
    assert_eq!(get(&tab, "/docs/a.txt").await.text(), "aaa");
    let path = dir.path().join("docs/a.txt");
    std::fs::write(&path, "changed!").unwrap();
    let answer = get(&tab, "/docs/a.txt").await;
    assert_eq!(answer.status, StatusCode::GONE);
    assert!(!answer.text().contains("changed!"));
    // Deleted: gone too. The console hears once per file.
    std::fs::remove_file(dir.path().join("style.css")).unwrap();
    assert_eq!(get(&tab, "/style.css").await.status, StatusCode::GONE);
    assert_eq!(get(&tab, "/docs/a.txt").await.status, StatusCode::GONE);
    let events = format!("{:?}", tab.events());
    assert_eq!(
        events
            .matches("docs/a.txt changed after the site started")
            .count(),
        1,
        "{events}"
    );
    assert!(
        events.contains("style.css was deleted after the site started"),
        "{events}"
    );
    // A file added after the start is not served.
    write(dir.path(), "new.html", "new");
    assert_eq!(get(&tab, "/new.html").await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_policy_is_the_strict_default_the_sites_own_or_none() {
    let (dir, _outside) = site();
    let strict = tab(dir.path(), "");
    for path in ["/", "/style.css", "/nope", "/docs/"] {
        let answer = get(&strict, path).await;
        assert_eq!(
            answer.header("content-security-policy"),
            CONTENT_SECURITY_POLICY,
            "{path}"
        );
    }
    let own = tab(dir.path(), "csp = \"default-src 'self' 'unsafe-inline'\"");
    let answer = get(&own, "/").await;
    assert_eq!(
        answer.header("content-security-policy"),
        "default-src 'self' 'unsafe-inline'"
    );
    assert_eq!(answer.header("x-frame-options"), "DENY");
    assert!(format!("{:?}", own.events()).contains("the site's own Content-Security-Policy"));
    let off = tab(dir.path(), "csp = false");
    let answer = get(&off, "/").await;
    assert!(answer.headers.get("content-security-policy").is_none());
    // Every other protection stays.
    assert_eq!(answer.header("x-content-type-options"), "nosniff");
    assert_eq!(answer.header("referrer-policy"), "no-referrer");
    let events = format!("{:?}", off.events());
    assert!(events.contains("warning: csp = false"), "{events}");
    assert!(!format!("{:?}", strict.events()).contains("Content-Security-Policy"));
}

/// Issue 12: a strict site policy (`default-src 'none'`) blocked the sdk's style sheet on
/// the folder listings, which the host generates: those pages (and the host's error pages)
/// carry the strict default, and the site's own files exactly the site's policy, or none.
#[tokio::test]
async fn the_hosts_own_pages_keep_the_strict_default_under_the_sites_policy() {
    let (dir, _outside) = site();
    let strict_site = "default-src 'none'; img-src 'self'";
    for (config, own) in [
        (format!("csp = \"{strict_site}\""), Some(strict_site)),
        ("csp = false".to_owned(), None),
    ] {
        let tab = tab(dir.path(), &config);
        for path in ["/", "/style.css"] {
            let answer = get(&tab, path).await;
            assert_eq!(answer.status, StatusCode::OK, "{path}");
            let policies: Vec<_> = answer
                .headers
                .get_all("content-security-policy")
                .iter()
                .collect();
            match own {
                Some(own) => assert_eq!(policies, [own], "{config}: {path}"),
                None => assert!(policies.is_empty(), "{config}: {path}: {policies:?}"),
            }
        }
        for (path, status) in [("/docs/", StatusCode::OK), ("/nope", StatusCode::NOT_FOUND)] {
            let answer = get(&tab, path).await;
            assert_eq!(answer.status, status, "{path}");
            let policies: Vec<_> = answer
                .headers
                .get_all("content-security-policy")
                .iter()
                .collect();
            assert_eq!(policies, [CONTENT_SECURITY_POLICY], "{config}: {path}");
            assert!(
                answer.text().contains(onionhost_sdk::page::STYLE_PATH),
                "{path}"
            );
        }
    }
}

#[tokio::test]
async fn the_console_says_whether_the_root_is_an_index_or_a_listing() {
    let (dir, _outside) = site();
    let with = tab(dir.path(), "");
    assert!(format!("{:?}", with.events()).contains("/ shows index.html"));
    std::fs::remove_file(dir.path().join("index.html")).unwrap();
    let without = tab(dir.path(), "");
    assert!(format!("{:?}", without.events()).contains("no index.html, so / lists the folder"));
}

/// A page comes back with its first bytes already read, so that the server writes the head
/// and a small page together (over Tor: one cell, not a cell for the head and one for the
/// body).
#[tokio::test]
async fn a_page_comes_with_its_first_bytes_ready() {
    use futures::FutureExt as _;
    let (dir, _outside) = site();
    let tab = tab(dir.path(), "");
    let response = tab
        .router
        .clone()
        .oneshot(Request::builder().uri("/").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    let first = body
        .frame()
        .now_or_never()
        .expect("the first bytes are ready with the head")
        .unwrap()
        .unwrap();
    assert_eq!(first.into_data().unwrap(), "<h1>home</h1>");
}
