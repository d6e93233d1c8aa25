//! The one-tab commands (`chat`, `share`, `receive`): their arguments become typed mode
//! configs, so any path the shell can pass arrives as it is, or is refused with a clear error.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt as _;
use std::process::{Command, Stdio};

use onionhost_tests::host::{TestHost, onionhost_bin, page_text};

/// A name with everything that would break a path written into TOML text by hand: quotes,
/// backslashes (a TOML escape), a newline, a `]` and a `#`.
const AWKWARD: &str = "a \"quoted\" \\back\\slash\\n #x] \nline.txt";

#[tokio::test]
async fn share_serves_a_path_with_quotes_backslashes_and_a_newline() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join(AWKWARD);
    std::fs::write(&path, b"awkward bytes").expect("write");
    let host = TestHost::spawn(&[
        "share",
        path.to_str().expect("utf-8"),
        "--keep-sharing",
        "--local-only",
    ])
    .expect("spawn");
    let url = host.url("share").expect("the share tab's address");
    let response = reqwest::get(format!("{url}download")).await.expect("GET");
    assert_eq!(response.status(), 200);
    let zip = response.bytes().await.expect("zip");
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip)).expect("a zip");
    assert_eq!(archive.len(), 1, "one file shared");
    let mut entry = archive.by_index(0).expect("the entry");
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut entry, &mut bytes).expect("read the entry");
    assert_eq!(bytes, b"awkward bytes", "the file itself was shared");
    let stopped = host.stop().expect("stop");
    assert!(stopped.status.success(), "{stopped:?}");
}

#[tokio::test]
async fn receive_saves_into_a_folder_with_quotes_backslashes_and_a_newline() {
    let dir = tempfile::tempdir().expect("temp dir");
    let inbox = dir.path().join(AWKWARD);
    let host = TestHost::spawn(&["receive", inbox.to_str().expect("utf-8"), "--local-only"])
        .expect("spawn");
    host.url("receive").expect("the receive tab's address");
    assert!(
        inbox.is_dir(),
        "the folder named on the command line is the one created: {:?}",
        std::fs::read_dir(dir.path())
            .map(|entries| entries.flatten().map(|e| e.file_name()).collect::<Vec<_>>())
    );
    let stopped = host.stop().expect("stop");
    assert!(stopped.status.success(), "{stopped:?}");
}

#[test]
fn a_path_that_is_not_utf8_is_refused_naming_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let name = OsStr::from_bytes(b"not-utf8-\xff.txt");
    let path = dir.path().join(name);
    std::fs::write(&path, b"x").expect("write");
    for args in [
        vec![OsStr::new("share"), path.as_os_str()],
        vec![OsStr::new("receive"), path.as_os_str()],
    ] {
        let output = Command::new(onionhost_bin())
            .args(&args)
            .arg("--local-only")
            .stdin(Stdio::null())
            .output()
            .expect("run onionhost");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains("not-utf8-") && stderr.contains("not valid UTF-8"),
            "the error names the path and why: {stderr}"
        );
        assert!(output.stdout.is_empty(), "nothing started: {output:?}");
    }
}

#[tokio::test]
async fn qr_codes_go_to_the_console_only_and_title_names_the_page() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("notes.txt");
    std::fs::write(&file, b"notes").expect("write");
    let host = TestHost::spawn(&[
        "share",
        file.to_str().expect("utf-8"),
        "--qr",
        "--title",
        "Hand-out <b>",
        "--local-only",
    ])
    .expect("spawn");
    let url = host.url("share").expect("address");
    host.wait_for(r"\[share\] address as a QR code:\n[█▀▄ ]+\n")
        .expect("the address as a QR code");
    let page = page_text(&url).await;
    assert!(
        page.contains("<title>Hand-out &lt;b&gt;</title>"),
        "--title sets the page's title, escaped: {page}"
    );
    let stopped = host.stop().expect("stop");
    assert!(stopped.status.success(), "{stopped:?}");
    assert!(
        !stopped.stderr.contains('█') && !stopped.stderr.contains('▀'),
        "a QR code on the log:\n{}",
        stopped.stderr
    );
}
