//! The share mode through the real host: listings, single files and the zip byte for byte,
//! Range pieces reassembled, If-Range, HEAD, 416, traversal and symlinks refused, hostile
//! names escaped, and stop after the first complete download (and only then).

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use onionhost_tests::host::{DEADLINE, TestHost};
use onionhost_tests::web::{client, get, header, links, raw_get};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Bytes that differ from file to file and from offset to offset.
fn content(seed: usize, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| u8::try_from((i * 31 + seed * 7 + i / 253) % 256).expect("a byte"))
        .collect()
}

fn write(root: &Path, rel: &str, data: &[u8]) -> PathBuf {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
    std::fs::write(&path, data).expect("write");
    path
}

/// A folder with nested folders, a non-ASCII name and a symlink pointing outside; a loose
/// file beside it; and a second loose file with the same name.
struct Sample {
    dir: tempfile::TempDir,
    paths: Vec<String>,
}

impl Sample {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path();
        write(root, "docs/report.pdf", &content(1, 700_000));
        write(root, "docs/nested/deeper/notes.txt", &content(2, 1234));
        write(root, "docs/ünïcödé 日本.txt", &content(3, 99));
        write(root, "docs/empty.txt", b"");
        write(
            root,
            "secret/passwords.txt",
            b"TOP SECRET outside the share",
        );
        std::os::unix::fs::symlink(
            root.join("secret/passwords.txt"),
            root.join("docs/link-out.txt"),
        )
        .expect("symlink");
        std::os::unix::fs::symlink(root.join("secret"), root.join("docs/link-dir"))
            .expect("symlink");
        write(root, "loose.txt", &content(4, 10));
        write(root, "other/loose.txt", &content(5, 20));
        let paths = ["docs", "loose.txt", "other/loose.txt"]
            .iter()
            .map(|p| root.join(p).to_str().expect("utf-8").to_owned())
            .collect();
        Self { dir, paths }
    }

    fn read(&self, rel: &str) -> Vec<u8> {
        std::fs::read(self.dir.path().join(rel)).expect("read")
    }

    /// What the zip must hold: name in the zip -> bytes.
    fn expected_zip(&self) -> BTreeMap<String, Vec<u8>> {
        BTreeMap::from([
            ("docs/report.pdf".to_owned(), self.read("docs/report.pdf")),
            (
                "docs/nested/deeper/notes.txt".into(),
                self.read("docs/nested/deeper/notes.txt"),
            ),
            (
                "docs/ünïcödé 日本.txt".into(),
                self.read("docs/ünïcödé 日本.txt"),
            ),
            ("docs/empty.txt".into(), Vec::new()),
            ("loose.txt".into(), self.read("loose.txt")),
            ("loose (2).txt".into(), self.read("other/loose.txt")),
        ])
    }

    /// Runs `onionhost share PATHS... EXTRA... --local-only`.
    fn host(&self, extra: &[&str]) -> (TestHost, String) {
        let mut args = vec!["share"];
        args.extend(self.paths.iter().map(String::as_str));
        args.extend(extra);
        args.push("--local-only");
        let host = TestHost::spawn(&args).expect("spawn");
        let url = host.url("share").expect("the share's URL");
        (host, url)
    }
}

/// Every file of a zip by name, and its folders. Reading each entry checks its CRC.
fn unzip(bytes: Vec<u8>) -> (BTreeMap<String, Vec<u8>>, Vec<String>) {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("a zip");
    let mut files = BTreeMap::new();
    let mut dirs = Vec::new();
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).expect("entry");
        let name = entry.name().expect("a UTF-8 name").into_owned();
        if entry.is_dir() {
            dirs.push(name);
        } else {
            let mut data = Vec::new();
            entry
                .read_to_end(&mut data)
                .expect("entry data (CRC checked)");
            files.insert(name, data);
        }
    }
    (files, dirs)
}

#[tokio::test]
async fn listing_files_and_zip_are_exact() {
    let sample = Sample::new();
    let (host, url) = sample.host(&["--keep-sharing"]);

    let page = get(&url, &[]).await.text().await.expect("page");
    let top = links(&page);
    for link in [
        "/files/docs/",
        "/files/loose.txt",
        "/files/loose%20%282%29.txt",
        "/download",
    ] {
        assert!(
            top.contains(&link.to_owned()),
            "{link} missing from {top:?}"
        );
    }
    assert!(page.contains("6 files"), "{page}");

    // Folders are browsable; the symlinks are not listed.
    let folder = get(&format!("{url}files/docs/"), &[])
        .await
        .text()
        .await
        .expect("folder page");
    let inner = links(&folder);
    assert!(
        inner.contains(&"/files/docs/nested/".to_owned()),
        "{inner:?}"
    );
    assert!(
        !folder.contains("link-out") && !folder.contains("link-dir"),
        "{folder}"
    );
    let unicode = inner
        .iter()
        .find(|l| l.starts_with("/files/docs/%C3%BC"))
        .expect("the Unicode file is linked");

    // Single files, byte for byte, with their names.
    let response = get(&format!("{url}{}", &unicode[1..]), &[]).await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "content-length"), "99");
    let disposition = header(&response, "content-disposition");
    assert!(
        disposition.starts_with("attachment; filename=\""),
        "{disposition}"
    );
    assert!(
        disposition
            .contains("filename*=UTF-8''%C3%BCn%C3%AFc%C3%B6d%C3%A9%20%E6%97%A5%E6%9C%AC.txt"),
        "{disposition}"
    );
    let body = response.bytes().await.expect("body");
    assert_eq!(body.as_ref(), sample.read("docs/ünïcödé 日本.txt"));
    for (link, rel) in [
        ("files/docs/report.pdf", "docs/report.pdf"),
        (
            "files/docs/nested/deeper/notes.txt",
            "docs/nested/deeper/notes.txt",
        ),
        ("files/loose%20%282%29.txt", "other/loose.txt"),
        ("files/docs/empty.txt", "docs/empty.txt"),
    ] {
        let response = get(&format!("{url}{link}"), &[]).await;
        assert_eq!(response.status(), 200, "{link}");
        let body = response.bytes().await.expect("body");
        assert_eq!(body.as_ref(), sample.read(rel), "{link}");
    }

    // The zip: every file, the folders, nothing from outside.
    let response = get(&format!("{url}download"), &[]).await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "content-type"), "application/zip");
    let length: usize = header(&response, "content-length").parse().expect("number");
    let bytes = response.bytes().await.expect("zip").to_vec();
    assert_eq!(bytes.len(), length);
    let (files, dirs) = unzip(bytes.clone());
    assert_eq!(files, sample.expected_zip());
    assert_eq!(dirs, ["docs/", "docs/nested/", "docs/nested/deeper/"]);
    assert!(!bytes.windows(10).any(|w| w == b"TOP SECRET"));

    // The same share gives the same zip, byte for byte.
    let again = get(&format!("{url}download"), &[])
        .await
        .bytes()
        .await
        .expect("zip");
    assert_eq!(again.as_ref(), bytes);

    let stopped = host.stop().expect("stop");
    assert!(stopped.status.success(), "{stopped:?}");
}

/// Downloads `path` in pieces of `piece` bytes with `If-Range`, and checks each answer.
async fn in_pieces(url: &str, path: &str, piece: u64) -> Vec<u8> {
    let head = client()
        .head(format!("{url}{path}"))
        .send()
        .await
        .expect("HEAD");
    assert_eq!(head.status(), 200);
    let len: u64 = header(&head, "content-length").parse().expect("length");
    assert_eq!(header(&head, "accept-ranges"), "bytes");
    let etag = header(&head, "etag");
    assert!(etag.starts_with('"'), "a strong ETag: {etag}");
    let mut out = Vec::new();
    let mut at = 0;
    while at < len {
        let last = (at + piece - 1).min(len - 1);
        let response = get(
            &format!("{url}{path}"),
            &[
                ("range", &format!("bytes={at}-{last}")),
                ("if-range", &etag),
            ],
        )
        .await;
        assert_eq!(response.status(), 206, "{path} {at}-{last}");
        assert_eq!(
            header(&response, "content-range"),
            format!("bytes {at}-{last}/{len}")
        );
        assert_eq!(
            header(&response, "content-length"),
            (last - at + 1).to_string()
        );
        assert_eq!(header(&response, "etag"), etag);
        out.extend_from_slice(&response.bytes().await.expect("piece"));
        at = last + 1;
    }
    out
}

#[tokio::test]
async fn range_pieces_reassemble_the_file_and_the_zip() {
    let sample = Sample::new();
    let (host, url) = sample.host(&[]);

    let file = in_pieces(&url, "files/docs/report.pdf", 65_537).await;
    assert_eq!(file, sample.read("docs/report.pdf"));
    // Pieces of the zip, each served from any offset: unzipped, they are the share.
    let zip = in_pieces(&url, "download", 100_003).await;
    let (files, _) = unzip(zip.clone());
    assert_eq!(files, sample.expected_zip());

    // A suffix range, and an open-ended one.
    let response = get(&format!("{url}download"), &[("range", "bytes=-22")]).await;
    assert_eq!(response.status(), 206);
    assert_eq!(
        response.bytes().await.expect("end").as_ref(),
        &zip[zip.len() - 22..]
    );
    let response = get(
        &format!("{url}files/docs/report.pdf"),
        &[("range", "bytes=699990-")],
    )
    .await;
    assert_eq!(response.status(), 206);
    assert_eq!(
        response.bytes().await.expect("tail").as_ref(),
        &sample.read("docs/report.pdf")[699_990..]
    );

    // A stale ETag in If-Range gets the whole file (200), never a piece of another version.
    let response = get(
        &format!("{url}files/docs/report.pdf"),
        &[("range", "bytes=0-9"), ("if-range", "\"stale\"")],
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "content-length"), "700000");
    // (That whole download stops the share, as asked: see the stop test. Wait for it.)
    assert_eq!(response.bytes().await.expect("all").len(), 700_000);
    host.wait_for(r"\[share\] stopping: the first download is complete")
        .expect("the whole download stops the share");
    let stopped = host.wait_exit().expect("exit");
    assert!(stopped.status.success(), "{stopped:?}");
}

#[tokio::test]
async fn head_416_and_multiple_ranges() {
    let sample = Sample::new();
    let (host, url) = sample.host(&["--keep-sharing"]);

    let head = client()
        .head(format!("{url}download"))
        .send()
        .await
        .expect("HEAD");
    assert_eq!(head.status(), 200);
    let zip_len: u64 = header(&head, "content-length").parse().expect("length");
    assert!(zip_len > 700_000);
    assert_eq!(head.bytes().await.expect("no body").len(), 0);

    let response = get(
        &format!("{url}files/docs/report.pdf"),
        &[("range", "bytes=700000-")],
    )
    .await;
    assert_eq!(response.status(), 416);
    assert_eq!(header(&response, "content-range"), "bytes */700000");
    let response = get(
        &format!("{url}download"),
        &[("range", &format!("bytes={zip_len}-"))],
    )
    .await;
    assert_eq!(response.status(), 416);
    assert_eq!(
        header(&response, "content-range"),
        format!("bytes */{zip_len}")
    );

    // Several ranges at once: the whole file, which RFC 9110 allows.
    let response = get(
        &format!("{url}files/loose.txt"),
        &[("range", "bytes=0-1,4-5")],
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.bytes().await.expect("body").as_ref(),
        sample.read("loose.txt")
    );

    // The console shows transfers without file names.
    let output = host.output();
    assert!(output.contains("download #"), "{output}");
    assert!(
        !output.contains("loose.txt") && !output.contains("report"),
        "{output}"
    );
    let stopped = host.stop().expect("stop");
    assert!(stopped.status.success(), "{stopped:?}");
}

#[tokio::test]
async fn traversal_and_symlinks_out_of_the_share_are_refused() {
    let sample = Sample::new();
    let (host, url) = sample.host(&["--keep-sharing"]);
    let secret = sample.dir.path().join("secret/passwords.txt");
    let secret = secret.to_str().expect("utf-8");
    for target in [
        "/files/../secret/passwords.txt",
        "/files/docs/../../secret/passwords.txt",
        "/files/%2e%2e/secret/passwords.txt",
        "/files/docs/%2E%2E/%2e%2e/secret/passwords.txt",
        "/files/docs%2f..%2f..%2fsecret%2fpasswords.txt",
        "/files/docs/..%2F..%2Fsecret%2Fpasswords.txt",
        "/files/docs/..%5c..%5csecret%5cpasswords.txt",
        "/files//etc/passwd",
        &format!("/files/{secret}"),
        "/files/docs/%00",
        "/files/docs/link-out.txt",
        "/files/docs/link-dir/passwords.txt",
        "/../secret/passwords.txt",
        "/files/docs/./report.pdf",
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
    let (status, answer) = raw_get(&url, "/files/loose.txt").await;
    assert_eq!(status, 200, "{answer}");
    let stopped = host.stop().expect("stop");
    assert!(stopped.status.success(), "{stopped:?}");
}

#[tokio::test]
async fn hostile_names_are_shown_as_text() {
    let dir = tempfile::tempdir().expect("temp dir");
    let names = [
        "<script>alert(1)<x>.txt",
        "\"quoted\" & 'single'.txt",
        "new\nline.txt",
        "invoice\u{202e}fdp.exe",
    ];
    for name in names {
        write(dir.path(), &format!("hostile/{name}"), name.as_bytes());
    }
    let path = dir.path().join("hostile");
    let host = TestHost::spawn(&[
        "share",
        path.to_str().expect("utf-8"),
        "--keep-sharing",
        "--local-only",
    ])
    .expect("spawn");
    let url = host.url("share").expect("url");
    let page = get(&format!("{url}files/hostile/"), &[])
        .await
        .text()
        .await
        .expect("page");
    assert!(!page.contains("<script>"), "{page}");
    assert!(
        page.contains("&lt;script&gt;alert(1)&lt;x&gt;.txt"),
        "{page}"
    );
    // The templates escape `'` nowhere: every attribute is double-quoted, so it is only text.
    assert!(
        page.contains("&quot;quoted&quot; &amp; 'single'.txt"),
        "{page}"
    );
    assert!(page.contains("new⟨U+000A⟩line.txt"), "{page}");
    assert!(page.contains("invoice⟨U+202E⟩fdp.exe"), "{page}");
    assert!(!page.contains('\u{202e}'), "{page}");
    // Each one downloads by its link, with a header-safe Content-Disposition.
    let linked: Vec<String> = links(&page)
        .into_iter()
        .filter(|l| l.starts_with("/files/hostile/") && l.len() > "/files/hostile/".len())
        .collect();
    assert_eq!(linked.len(), names.len(), "{linked:?}");
    for link in linked {
        let link = link.replace("&amp;", "&");
        let response = get(&format!("{url}{}", &link[1..]), &[]).await;
        assert_eq!(response.status(), 200, "{link}");
        let disposition = header(&response, "content-disposition");
        assert!(
            !disposition.contains('\n') && disposition.is_ascii(),
            "{disposition}"
        );
        let body = response.text().await.expect("body");
        assert!(names.contains(&body.as_str()), "{body}");
    }
    let stopped = host.stop().expect("stop");
    assert!(stopped.status.success(), "{stopped:?}");
}

#[tokio::test]
async fn only_a_whole_download_stops_the_share() {
    let dir = tempfile::tempdir().expect("temp dir");
    // Larger than every buffer between the file and the client, so that a download dropped
    // after its first bytes cannot have been sent whole.
    let big = write(dir.path(), "big.bin", &content(9, 64 << 20));
    let host =
        TestHost::spawn(&["share", big.to_str().expect("utf-8"), "--local-only"]).expect("spawn");
    let url = host.url("share").expect("url");

    // A piece, even a large one, does not stop it.
    let response = get(
        &format!("{url}files/big.bin"),
        &[("range", "bytes=0-1048575")],
    )
    .await;
    assert_eq!(response.status(), 206);
    assert_eq!(response.bytes().await.expect("piece").len(), 1 << 20);
    host.wait_for(r"download #1 finished")
        .expect("the piece is reported");

    // A download cut off after its first bytes does not stop it.
    let addr = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let mut stream = TcpStream::connect(&addr).await.expect("connect");
    stream
        .write_all(format!("GET /files/big.bin HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await
        .expect("send");
    let mut first = vec![0; 64 * 1024];
    stream.read_exact(&mut first).await.expect("first bytes");
    drop(stream);
    host.wait_for(r"download #2 cancelled")
        .expect("the cut-off download is reported");
    let page = get(&url, &[]).await;
    assert_eq!(
        page.status(),
        200,
        "still sharing after a cancelled download"
    );

    // The whole file does, once it is sent; the host then exits by itself, status 0.
    let response = get(&format!("{url}files/big.bin"), &[]).await;
    assert_eq!(response.status(), 200);
    let body = response.bytes().await.expect("whole file");
    assert_eq!(body.len(), 64 << 20);
    assert!(body.as_ref() == std::fs::read(&big).expect("read"));
    let stopped = host
        .wait_exit()
        .expect("the host exits after the first download");
    assert!(stopped.status.success(), "{stopped:?}");
    assert!(
        stopped
            .stdout
            .contains("[share] stopping: the first download is complete"),
        "{}",
        stopped.stdout
    );
    assert!(
        stopped.stdout.contains("download #3 finished"),
        "{}",
        stopped.stdout
    );
}

#[tokio::test]
async fn keep_sharing_serves_after_whole_downloads() {
    let sample = Sample::new();
    let (host, url) = sample.host(&["--keep-sharing"]);
    for _ in 0..3 {
        let response = get(&format!("{url}download"), &[]).await;
        assert_eq!(response.status(), 200);
        let (files, _) = unzip(response.bytes().await.expect("zip").to_vec());
        assert_eq!(files.len(), 6);
    }
    let response = get(&format!("{url}files/loose.txt"), &[]).await;
    assert_eq!(response.status(), 200);
    assert!(!host.output().contains("stopping:"), "{}", host.output());
    let stopped = host.stop().expect("stop");
    assert!(stopped.status.success(), "{stopped:?}");
}

#[tokio::test]
async fn a_missing_or_empty_paths_list_is_a_config_error() {
    let host = TestHost::with_config(
        "[[tab]]\nname = \"files\"\nmode = \"share\"\n[tab.share]\npaths = [\"/nonexistent/onionhost-e2e\"]\n",
    )
    .expect("spawn");
    let stopped = host.wait_exit().expect("exit");
    assert_eq!(stopped.status.code(), Some(2), "{stopped:?}");
    assert!(stopped.stderr.contains("paths"), "{}", stopped.stderr);
    assert!(
        stopped.stderr.contains("/nonexistent/onionhost-e2e"),
        "{}",
        stopped.stderr
    );

    let host =
        TestHost::with_config("[[tab]]\nname = \"files\"\nmode = \"share\"\n").expect("spawn");
    let stopped = host.wait_exit().expect("exit");
    assert_eq!(stopped.status.code(), Some(2), "{stopped:?}");
    assert!(stopped.stderr.contains("paths"), "{}", stopped.stderr);
}

#[tokio::test]
async fn the_zip_and_its_etag_survive_a_restart() {
    let sample = Sample::new();
    let mut seen = Vec::new();
    for _ in 0..2 {
        let (host, url) = sample.host(&["--keep-sharing"]);
        let response = get(&format!("{url}download"), &[]).await;
        let etag = header(&response, "etag");
        let bytes = response.bytes().await.expect("zip");
        seen.push((etag, bytes));
        let stopped = host.stop().expect("stop");
        assert!(stopped.status.success(), "{stopped:?}");
    }
    assert_eq!(seen[0].0, seen[1].0, "the same share has the same ETag");
    assert!(
        seen[0].1 == seen[1].1,
        "the same share gives the same bytes"
    );
}

/// Runs `onionhost ARGS` in `dir` as a user to whom file modes apply, and waits (up to the
/// deadline) for it to exit. Returns its exit code (`None`: still running at the deadline,
/// then killed) and what it printed.
///
/// The tests run as root, and root reads every file whatever its mode: a chmod 000 file
/// is readable to a host run as root, so the host is run as `nobody` (setpriv) instead,
/// which is what a user sharing their files as themselves meets. (Run as another user,
/// the test runs the host as that user: the modes then apply already.)
fn run_unprivileged(dir: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    use std::os::unix::fs::MetadataExt as _;
    let root = std::fs::metadata("/proc/self").expect("/proc/self").uid() == 0;
    let bin = onionhost_tests::host::onionhost_bin();
    let mut cmd = if root {
        let mut cmd = std::process::Command::new("setpriv");
        cmd.args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"])
            .arg(bin);
        cmd
    } else {
        std::process::Command::new(bin)
    };
    let mut child = cmd
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn onionhost");
    let deadline = std::time::Instant::now() + DEADLINE;
    let code = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status.code();
        }
        if std::time::Instant::now() >= deadline {
            child.kill().expect("kill the host this test started");
            break None;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let output = child.wait_with_output().expect("output");
    (
        code,
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Regression (issue 9): `onionhost share ok.txt secret.txt` with `secret.txt` unreadable by
/// the host's user started anyway (then `/files/secret.txt` gave 500 and the zip broke
/// mid-way). An unreadable file, folder, or file inside a shared folder now stops the host
/// before it serves anything: exit status 2 and a message naming the path.
#[tokio::test]
async fn an_unreadable_shared_path_stops_the_host_before_it_serves() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();
    let mode = |path: &Path, mode: u32| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    };
    mode(root, 0o755);
    mode(&write(root, "ok.txt", b"fine"), 0o644);
    mode(&write(root, "secret.txt", b"private"), 0o600);
    mode(&write(root, "locked/inside.txt", b"x"), 0o644);
    mode(&root.join("locked"), 0o700);
    mode(&write(root, "open/fine.txt", b"x"), 0o644);
    mode(&write(root, "open/deep/hidden.txt", b"x"), 0o600);
    mode(&root.join("open"), 0o755);
    mode(&root.join("open/deep"), 0o755);

    for (args, named) in [
        (&["ok.txt", "secret.txt"][..], "secret.txt"),
        (&["ok.txt", "locked"][..], "locked"),
        (&["open"][..], "open/deep/hidden.txt"),
    ] {
        let mut full = vec!["share"];
        full.extend(args);
        full.push("--local-only");
        let (code, stdout, stderr) = run_unprivileged(root, &full);
        assert_eq!(code, Some(2), "{args:?}\n{stdout}\n{stderr}");
        // Named as the user gave it (relative to the folder the host runs in).
        assert!(
            stderr.contains(&format!("cannot read {named}:")),
            "{args:?}: the message must name {named}\n{stderr}"
        );
        assert!(!stdout.contains("serving at"), "{args:?}: {stdout}");
    }

    // The same user may share what it can read: the refusals above are about readability,
    // not about running as another user. `check` walks the same paths and exits.
    let config = root.join("onionhost.toml");
    std::fs::write(
        &config,
        format!(
            "[[tab]]\nname = \"files\"\nmode = \"share\"\n[tab.share]\npaths = [{:?}, {:?}]\n",
            root.join("ok.txt").to_str().expect("utf-8"),
            root.join("open/fine.txt").to_str().expect("utf-8"),
        ),
    )
    .expect("config");
    mode(&config, 0o644);
    let (code, stdout, stderr) = run_unprivileged(
        root,
        &["check", "--config", config.to_str().expect("utf-8")],
    );
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
}

/// Regression (issue 9), through the real host: `If-None-Match` with the current ETag gets
/// `304` (it got `200`) and `If-Match` with a stale one `412` (it got `206`), on a file and
/// on the zip; and a file rewritten while it downloads cuts the download, which the console
/// calls failed (it said "cancelled", blaming the visitor).
#[tokio::test]
async fn preconditions_and_a_file_changed_mid_download() {
    let dir = tempfile::tempdir().expect("temp dir");
    // Larger than every buffer between the file and the client, so that most of it is read
    // after the rewrite.
    let big = write(dir.path(), "big.bin", &content(7, 64 << 20));
    // An old modification time, so that the rewrite moves it whatever the clock's tick.
    std::fs::File::options()
        .write(true)
        .open(&big)
        .expect("open")
        .set_modified(std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1 << 30))
        .expect("set mtime");
    let host = TestHost::spawn(&[
        "share",
        big.to_str().expect("utf-8"),
        "--keep-sharing",
        "--local-only",
    ])
    .expect("spawn");
    let url = host.url("share").expect("url");

    for path in ["files/big.bin", "download"] {
        let head = client()
            .head(format!("{url}{path}"))
            .send()
            .await
            .expect("HEAD");
        let etag = header(&head, "etag");
        let response = get(&format!("{url}{path}"), &[("if-none-match", &etag)]).await;
        assert_eq!(response.status(), 304, "{path}");
        assert_eq!(header(&response, "etag"), etag);
        assert!(response.bytes().await.expect("body").is_empty());
        let response = get(
            &format!("{url}{path}"),
            &[("if-match", "\"stale\""), ("range", "bytes=0-9")],
        )
        .await;
        assert_eq!(response.status(), 412, "{path}");
        let response = get(
            &format!("{url}{path}"),
            &[("if-match", &etag), ("range", "bytes=0-9")],
        )
        .await;
        assert_eq!(response.status(), 206, "{path}");
        assert_eq!(response.bytes().await.expect("piece").len(), 10);
    }

    let mut response = get(&format!("{url}files/big.bin"), &[]).await;
    assert_eq!(response.status(), 200);
    let first = response
        .chunk()
        .await
        .expect("first bytes")
        .expect("a chunk");
    assert!(!first.is_empty());
    {
        use std::io::Write as _;
        let mut file = std::fs::File::options()
            .write(true)
            .open(&big)
            .expect("open");
        file.write_all(&content(8, 64 << 20))
            .expect("rewrite in place");
    }
    let mut received = first.len();
    let cut = loop {
        match response.chunk().await {
            Ok(Some(chunk)) => received += chunk.len(),
            Ok(None) => break false,
            Err(_) => break true,
        }
    };
    assert!(
        cut && received < 64 << 20,
        "got {received} bytes, cut: {cut}"
    );
    host.wait_for(
        r"download #\d+ failed: .*a shared file changed, was deleted or could not be read",
    )
    .expect("the console says the download failed");
    host.wait_for(r"a shared file changed after sharing started, so it is no longer served")
        .expect("the console says the file is no longer served");
    assert!(!host.output().contains("cancelled"), "{}", host.output());
    // The file as it is now is not served under the old ETag.
    let response = get(&format!("{url}files/big.bin"), &[]).await;
    assert_eq!(response.status(), 410);
    let stopped = host.stop().expect("stop");
    assert!(stopped.status.success(), "{stopped:?}");
}
