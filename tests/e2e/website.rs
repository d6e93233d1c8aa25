//! The website mode through the real host, as OnionShare's website tests check theirs: the
//! index served, a listing when there is none, nested folders, the CSP default, custom and
//! off (the header checked), symbolic links of every kind absent and 404, traversal refused,
//! Range and ETag, and a file changed after the start refused.

use std::path::Path;

use onionhost_tests::host::TestHost;
use onionhost_tests::web::{client, get, header, links, raw_get};

fn write(root: &Path, rel: &str, data: &str) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
    std::fs::write(&path, data).expect("write");
}

/// A site: an index, a nested folder with its own index, one without, a hidden file, and
/// symbolic links of every kind (to a file inside, to a file outside, a chain, to a folder
/// inside and outside). `secret/` beside the site holds what must never be served.
struct Site {
    dir: tempfile::TempDir,
}

impl Site {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().join("site");
        write(
            &root,
            "index.html",
            "<!doctype html><h1>Welcome</h1><script src=\"app.js\"></script>",
        );
        write(&root, "app.js", "document.title = 'ok';");
        write(&root, "style.css", "h1 { color: purple }");
        write(&root, "logo.png", "\u{89}PNG not really");
        write(&root, ".hidden.txt", "a hidden file");
        write(&root, "blog/index.html", "<p>the blog</p>");
        write(&root, "blog/2026/post.html", "<p>a post</p>");
        write(&root, "files/report.txt", &"0123456789".repeat(1000));
        write(
            dir.path(),
            "secret/passwords.txt",
            "TOP SECRET outside the site",
        );
        let link = |to: &Path, name: &str| {
            std::os::unix::fs::symlink(to, root.join(name)).expect("symlink");
        };
        link(&root.join("style.css"), "files/in.css");
        link(&dir.path().join("secret/passwords.txt"), "files/out.txt");
        link(&root.join("files/in.css"), "files/chain.css");
        link(&root.join("blog"), "files/blog-link");
        link(&dir.path().join("secret"), "files/secret-link");
        Self { dir }
    }

    fn root(&self) -> std::path::PathBuf {
        self.dir.path().join("site")
    }

    fn root_str(&self) -> String {
        self.root().to_str().expect("utf-8").to_owned()
    }

    /// Runs `onionhost website <site> EXTRA... --local-only`.
    fn host(&self, extra: &[&str]) -> (TestHost, String) {
        let root = self.root_str();
        let mut args = vec!["website", root.as_str()];
        args.extend(extra);
        args.push("--local-only");
        let host = TestHost::spawn(&args).expect("spawn");
        let url = host.url("website").expect("the website's URL");
        (host, url)
    }
}

async fn text(url: &str) -> (u16, String) {
    let response = get(url, &[]).await;
    let status = response.status().as_u16();
    (status, response.text().await.expect("body"))
}

#[tokio::test]
async fn the_index_nested_folders_and_listings() {
    let site = Site::new();
    let (host, url) = site.host(&["--title", "My site"]);
    host.wait_for(r"\[website\] serving a website of 8 file\(s\), .* / shows index\.html")
        .expect("the console says what is served");
    host.wait_for(
        r"\[website\] 5 symbolic link\(s\) or special file\(s\) in the folder are not served",
    )
    .expect("the console counts what is left out");

    let home = get(&url, &[]).await;
    assert_eq!(home.status(), 200);
    assert_eq!(header(&home, "content-type"), "text/html; charset=utf-8");
    assert!(home.headers().get("content-disposition").is_none());
    assert!(
        home.text()
            .await
            .expect("home")
            .contains("<h1>Welcome</h1>")
    );
    assert_eq!(
        text(&format!("{url}blog/")).await,
        (200, "<p>the blog</p>".into())
    );
    assert_eq!(
        text(&format!("{url}blog/2026/post.html")).await,
        (200, "<p>a post</p>".into())
    );
    // A folder without its slash is redirected to it (the client follows).
    let bare = client()
        .get(format!("{url}blog"))
        .send()
        .await
        .expect("request");
    assert_eq!(bare.url().path(), "/blog/");
    assert_eq!(bare.text().await.expect("blog"), "<p>the blog</p>");

    // Folders without an index are listed, in the share mode's look, under the title.
    let (status, listing) = text(&format!("{url}blog/2026/")).await;
    assert_eq!(status, 200);
    assert!(
        links(&listing).contains(&"/blog/2026/post.html".to_owned()),
        "{listing}"
    );
    assert!(listing.contains("<title>My site</title>"), "{listing}");
    let style = links(&listing)
        .into_iter()
        .find(|l| l.ends_with(".css"))
        .expect("the listing's style sheet");
    let css = get(&format!("{url}{}", &style[1..]), &[]).await;
    assert_eq!(css.status(), 200);
    assert_eq!(header(&css, "content-type"), "text/css; charset=utf-8");

    // Types from the extension; hidden files served like the others (as share does).
    for (path, content_type) in [
        ("app.js", "javascript"),
        ("style.css", "text/css; charset=utf-8"),
        ("logo.png", "image/png"),
        ("files/report.txt", "text/plain; charset=utf-8"),
        (".hidden.txt", "text/plain; charset=utf-8"),
    ] {
        let response = get(&format!("{url}{path}"), &[]).await;
        assert_eq!(response.status(), 200, "{path}");
        let got = header(&response, "content-type");
        assert!(got.contains(content_type), "{path}: {got}");
    }
    let stopped = host.stop().expect("stop");
    assert!(stopped.status.success(), "{stopped:?}");
}

#[tokio::test]
async fn links_are_absent_and_traversal_is_refused() {
    let site = Site::new();
    let (host, url) = site.host(&[]);
    let (status, listing) = text(&format!("{url}files/")).await;
    assert_eq!(status, 200);
    assert_eq!(
        links(&listing)
            .into_iter()
            .filter(|l| l.starts_with("/files/"))
            .collect::<Vec<_>>(),
        ["/files/", "/files/report.txt"],
        "only the real file is listed: {listing}"
    );
    for name in ["in.css", "out.txt", "chain.css", "blog-link", "secret-link"] {
        assert!(!listing.contains(name), "{name} is listed");
        for path in [format!("/files/{name}"), format!("/files/{name}/")] {
            let (status, answer) = raw_get(&url, &path).await;
            assert_eq!(status, 404, "{path}: {answer}");
        }
    }
    let secret = site.dir.path().join("secret/passwords.txt");
    for target in [
        "/files/blog-link/index.html",
        "/files/secret-link/passwords.txt",
        "/../secret/passwords.txt",
        "/files/../../secret/passwords.txt",
        "/%2e%2e/secret/passwords.txt",
        "/files/%2E%2E/%2e%2e/secret/passwords.txt",
        "/files%2f..%2f..%2fsecret%2fpasswords.txt",
        "/..%5csecret%5cpasswords.txt",
        "//etc/passwd",
        &format!("/{}", secret.to_str().expect("utf-8")),
        "/index.html%00",
    ] {
        let (status, answer) = raw_get(&url, target).await;
        assert!(
            status == 400 || status == 404,
            "{target} gave {status}: {answer}"
        );
        assert!(!answer.contains("TOP SECRET"), "{target}: {answer}");
        assert!(!answer.contains("root:"), "{target}: {answer}");
    }
    // The raw client does reach real files, so the refusals above are not a client quirk.
    let (status, answer) = raw_get(&url, "/files/report.txt").await;
    assert_eq!(status, 200, "{answer}");
    let stopped = host.stop().expect("stop");
    assert!(stopped.status.success(), "{stopped:?}");
}

#[tokio::test]
async fn a_listing_when_there_is_no_index() {
    let site = Site::new();
    std::fs::remove_file(site.root().join("index.html")).expect("remove the index");
    let (host, url) = site.host(&[]);
    host.wait_for(r"\[website\] .*no index\.html, so / lists the folder")
        .expect("the console says so");
    let (status, listing) = text(&url).await;
    assert_eq!(status, 200);
    let found = links(&listing);
    for link in ["/blog/", "/files/", "/app.js", "/.hidden.txt"] {
        assert!(
            found.contains(&link.to_owned()),
            "{link} missing: {found:?}"
        );
    }
    assert!(
        listing.contains("<title>onionhost website</title>"),
        "{listing}"
    );
    let stopped = host.stop().expect("stop");
    assert!(stopped.status.success(), "{stopped:?}");
}

/// The Content-Security-Policy of tab `tab`'s own files (a page and a script), the same on
/// both; `None` when it sends none. The pages the host generates there (a listing, a 404)
/// carry the strict default whatever the tab's policy (issue 12: a strict site policy
/// refused their style sheet).
async fn policy(host: &TestHost, tab: &str) -> Option<String> {
    let url = host.url(tab).expect("url");
    let mut policies = Vec::new();
    for path in ["", "app.js", "files/", "nope"] {
        let response = get(&format!("{url}{path}"), &[]).await;
        assert_eq!(header(&response, "x-frame-options"), "DENY", "{tab} {path}");
        let policy = response
            .headers()
            .get("content-security-policy")
            .map(|v| v.to_str().expect("ASCII").to_owned());
        if path == "files/" || path == "nope" {
            assert_eq!(
                policy.as_deref(),
                Some(STRICT),
                "the host's page {path} of {tab}"
            );
        } else {
            policies.push(policy);
        }
    }
    policies.dedup();
    assert_eq!(
        policies.len(),
        1,
        "one policy for every file of {tab}: {policies:?}"
    );
    policies.remove(0)
}

/// The host's strict default Content-Security-Policy.
const STRICT: &str =
    "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'self'";

/// Three tabs of one config: the strict default, a policy of the site's own, and none.
#[tokio::test]
async fn csp_default_custom_and_off_per_tab() {
    let site = Site::new();
    let root = site.root_str();
    let host = TestHost::with_config(&format!(
        "[[tab]]\nname = \"strict\"\nmode = \"website\"\n[tab.website]\ndir = {root:?}\n\n\
         [[tab]]\nname = \"own\"\nmode = \"website\"\n[tab.website]\ndir = {root:?}\n\
         csp = \"default-src 'self' 'unsafe-inline'; img-src *\"\n\n\
         [[tab]]\nname = \"open\"\nmode = \"website\"\n[tab.website]\ndir = {root:?}\ncsp = false\n"
    ))
    .expect("spawn");
    assert_eq!(policy(&host, "strict").await.as_deref(), Some(STRICT));
    assert_eq!(
        policy(&host, "own").await.as_deref(),
        Some("default-src 'self' 'unsafe-inline'; img-src *")
    );
    assert_eq!(policy(&host, "open").await, None);
    host.wait_for(r"\[open\] warning: csp = false")
        .expect("a warning for the tab without a policy");
    let output = host.output();
    assert!(!output.contains("[strict] warning"), "{output}");
    assert!(!output.contains("[own] warning"), "{output}");
    let stopped = host.stop().expect("stop");
    assert!(stopped.status.success(), "{stopped:?}");
}

#[tokio::test]
async fn the_one_tab_command_takes_csp_or_no_csp_but_not_both() {
    let site = Site::new();
    let (host, url) = site.host(&["--csp", "default-src 'none'"]);
    assert_eq!(
        header(&get(&url, &[]).await, "content-security-policy"),
        "default-src 'none'"
    );
    host.stop().expect("stop");
    let (host, url) = site.host(&["--no-csp"]);
    assert!(
        get(&url, &[])
            .await
            .headers()
            .get("content-security-policy")
            .is_none()
    );
    host.wait_for(r"\[website\] warning: csp = false")
        .expect("the warning");
    host.stop().expect("stop");

    let both = TestHost::spawn(&[
        "website",
        &site.root_str(),
        "--csp",
        "x",
        "--no-csp",
        "--local-only",
    ])
    .expect("spawn");
    let stopped = both.wait_exit().expect("exit");
    assert_eq!(stopped.status.code(), Some(2), "{stopped:?}");
    assert!(
        stopped
            .stderr
            .contains("'--csp <POLICY>' cannot be used with '--no-csp'"),
        "{stopped:?}"
    );
    let bad = TestHost::spawn(&["website", &site.root_str(), "--csp", "a\nb", "--local-only"])
        .expect("spawn");
    let stopped = bad.wait_exit().expect("exit");
    assert_eq!(stopped.status.code(), Some(2), "{stopped:?}");
    assert!(
        stopped.stderr.contains("`csp`: the policy holds U+000A"),
        "{stopped:?}"
    );
    assert!(!stopped.stdout.contains("serving at"), "{stopped:?}");
}

#[tokio::test]
async fn range_and_etag_like_share() {
    let site = Site::new();
    let (host, url) = site.host(&[]);
    let file = format!("{url}files/report.txt");
    let head = client().head(&file).send().await.expect("HEAD");
    assert_eq!(head.status(), 200);
    assert_eq!(header(&head, "content-length"), "10000");
    assert_eq!(header(&head, "accept-ranges"), "bytes");
    let etag = header(&head, "etag");
    assert!(etag.starts_with('"'), "a strong ETag: {etag}");
    let piece = get(&file, &[("range", "bytes=9990-"), ("if-range", &etag)]).await;
    assert_eq!(piece.status(), 206);
    assert_eq!(header(&piece, "content-range"), "bytes 9990-9999/10000");
    assert_eq!(piece.text().await.expect("piece"), "0123456789");
    let cached = get(&file, &[("if-none-match", &etag)]).await;
    assert_eq!(cached.status(), 304);
    assert_eq!(header(&cached, "etag"), etag);
    let other = get(&file, &[("if-none-match", "\"other\"")]).await;
    assert_eq!(other.status(), 200);
    assert_eq!(other.bytes().await.expect("whole").len(), 10_000);
    assert_eq!(get(&file, &[("range", "bytes=10000-")]).await.status(), 416);
    // Many whole downloads: the tab keeps serving (no stop after a download).
    for _ in 0..3 {
        assert_eq!(get(&file, &[]).await.status(), 200);
    }
    let stopped = host.stop().expect("stop");
    assert!(stopped.status.success(), "{stopped:?}");
}

#[tokio::test]
async fn a_file_changed_after_the_start_is_refused() {
    let site = Site::new();
    let (host, url) = site.host(&[]);
    let page = format!("{url}blog/2026/post.html");
    assert_eq!(text(&page).await, (200, "<p>a post</p>".into()));
    std::fs::write(
        site.root().join("blog/2026/post.html"),
        "<p>a new version</p>",
    )
    .expect("rewrite");
    let (status, body) = text(&page).await;
    assert_eq!(status, 410, "{body}");
    assert!(!body.contains("new version"), "{body}");
    host.wait_for(
        r"\[website\] a file of the site changed after the site started, so it is no longer served",
    )
    .expect("the console says so, without the name");
    assert!(!host.output().contains("post.html"), "{}", host.output());
    // A file added after the start is not served.
    write(&site.root(), "added.html", "new");
    assert_eq!(text(&format!("{url}added.html")).await.0, 404);
    let stopped = host.stop().expect("stop");
    assert!(stopped.status.success(), "{stopped:?}");
}

#[test]
fn config_errors_name_file_line_and_key() {
    let site = Site::new();
    let root = site.root_str();
    let host = TestHost::with_config(&format!(
        "[[tab]]\nname = \"a\"\nmode = \"website\"\n[tab.website]\ndir = {root:?}\ncsp = 3\n\n\
         [[tab]]\nname = \"b\"\nmode = \"website\"\n[tab.website]\ndir = {root:?}\ncsp = \"a\\u0007b\"\n\n\
         [[tab]]\nname = \"c\"\nmode = \"website\"\n[tab.website]\ndir = \"/nonexistent/site\"\n\n\
         [[tab]]\nname = \"d\"\nmode = \"website\"\n"
    ))
    .expect("spawn");
    let stopped = host.wait_exit().expect("exit");
    assert_eq!(stopped.status.code(), Some(2), "{stopped:?}");
    let err = &stopped.stderr;
    for expected in [
        "onionhost.toml:6: tab \"a\", `website.csp`: invalid type: integer `3`",
        "onionhost.toml:13: tab \"b\", `website.csp`: the policy holds U+0007",
        "onionhost.toml:19: tab \"c\", `website.dir`: cannot read /nonexistent/site",
        "onionhost.toml:21: tab \"d\", `website.dir`: name the folder to serve",
    ] {
        assert!(err.contains(expected), "{expected}\n{err}");
    }
    assert!(!stopped.stdout.contains("serving at"), "{stopped:?}");
}

/// `onionhost check` prints the warning the tab prints when it starts with `csp = false`, and
/// nothing for the default policy.
#[test]
fn check_warns_about_csp_false() {
    let site = Site::new();
    let check = |csp: &str| {
        let config = site.dir.path().join("onionhost.toml");
        let text = format!(
            "[[tab]]\nname = \"site\"\nmode = \"website\"\n[tab.website]\ndir = {:?}\n{csp}\n",
            site.root_str()
        );
        std::fs::write(&config, text).expect("write the config");
        let output = std::process::Command::new(onionhost_tests::host::onionhost_bin())
            .arg("check")
            .arg("--config")
            .arg(&config)
            .output()
            .expect("run onionhost check");
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(output.status.success(), "{stderr}");
        stderr
    };
    let off = check("csp = false");
    assert!(
        off.contains("tab \"site\": warning: csp = false (--no-csp): pages are served without a Content-Security-Policy"),
        "{off}"
    );
    let default = check("");
    assert!(!default.contains("warning"), "{default}");
}
