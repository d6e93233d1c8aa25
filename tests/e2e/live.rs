//! The live view through a pseudo-terminal, against the real binary (`--local-only`): what
//! it shows, its keys, and the terminal given back on every way out.

use onionhost_tests::host::page_text;
use onionhost_tests::pty::PtyHost;
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;

const CTRL_C: &[u8] = b"\x03";

fn spawn(args: &[&str]) -> PtyHost {
    let dir = tempfile::tempdir().expect("temp dir");
    PtyHost::spawn_in(dir, args, &[]).expect("spawn in a pseudo-terminal")
}

#[tokio::test]
async fn the_view_shows_the_console_and_ctrl_c_stops_and_gives_the_terminal_back() {
    let mut host = spawn(&["chat", "--local-only"]);
    let caps = host
        .wait_for_screen(r"\[chat\] serving at (http://127\.0\.0\.1:\d+/)")
        .expect("the tab's line in the view");
    // The tab serves; the log (`RUST_LOG=debug`) goes to the view's pane, not to stderr, so
    // the screen keeps its frame: the title on the first row, the keys on the last.
    assert!(page_text(&caps[1]).await.contains("<html"));
    let screen = host.screen();
    let rows: Vec<&str> = screen.lines().collect();
    assert!(rows[0].starts_with("onionhost"), "{screen}");
    assert!(
        rows.last().is_some_and(|row| row.starts_with("q quit")),
        "{screen}"
    );
    assert!(
        screen.contains("DEBUG onionhost::console::live: the live view has the terminal"),
        "the log is in the pane: {screen}"
    );

    host.type_keys(CTRL_C).expect("Ctrl-C");
    let stopped = host.wait_exit().expect("the host exits at Ctrl-C");
    assert!(stopped.status.success(), "{stopped:?}");
    assert!(
        stopped.restored,
        "the terminal is not restored: {stopped:?}"
    );
    // Back on the ordinary screen: how the run ended.
    assert!(stopped.screen.contains("[chat] stopped"), "{stopped:?}");
}

#[tokio::test]
async fn q_quits_and_an_error_gives_the_terminal_back_too() {
    let mut host = spawn(&["chat", "--local-only"]);
    host.wait_for_screen(r"\[chat\] serving at")
        .expect("the tab serves");
    host.type_keys(b"q").expect("q");
    let stopped = host.wait_exit().expect("the host exits at q");
    assert!(stopped.status.success(), "{stopped:?}");
    assert!(stopped.restored, "{stopped:?}");

    // Every tab failed (its port is taken): the host exits with an error, on a usable
    // terminal, and the reason is on the ordinary screen.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port().to_string();
    let host = spawn(&["chat", "--local-only", "--port", &port]);
    let stopped = host.wait_exit().expect("the host exits");
    assert!(!stopped.status.success(), "{stopped:?}");
    assert!(stopped.restored, "{stopped:?}");
    assert!(
        stopped
            .screen
            .contains(&format!("[chat] failed: cannot listen on 127.0.0.1:{port}")),
        "{stopped:?}"
    );
}

#[tokio::test]
async fn quitting_asks_first_while_a_download_is_in_flight() {
    let dir = tempfile::tempdir().expect("temp dir");
    let big = dir.path().join("big.bin");
    // Larger than the buffers between the file and a client that reads nothing.
    std::fs::write(&big, vec![7_u8; 64 << 20]).expect("write");
    let mut host = spawn(&[
        "share",
        big.to_str().expect("utf-8"),
        "--local-only",
        "--keep-sharing",
    ]);
    let caps = host
        .wait_for_screen(r"\[share\] serving at http://(127\.0\.0\.1:\d+)/")
        .expect("the tab serves");
    let addr = caps[1].clone();
    let mut stream = TcpStream::connect(&addr).await.expect("connect");
    stream
        .write_all(format!("GET /files/big.bin HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await
        .expect("send");
    host.wait_for_screen(r"download #1 started")
        .expect("the download is under way");

    host.type_keys(b"q").expect("q");
    host.wait_for_screen(r"1 transfer\(s\) in flight")
        .expect("quitting asks first");
    host.type_keys(b"n").expect("n");
    host.wait_until("the question gone", |screen| !screen.contains("in flight."))
        .expect("n keeps running");
    // Still serving.
    let url = format!("http://{addr}/");
    assert_eq!(reqwest::get(&url).await.expect("get").status(), 200);

    host.type_keys(b"q").expect("q");
    host.wait_for_screen(r"1 transfer\(s\) in flight")
        .expect("quitting asks again");
    host.type_keys(b"y").expect("y");
    let stopped = host
        .wait_exit()
        .expect("the host quits, cutting the download");
    assert!(stopped.status.success(), "{stopped:?}");
    assert!(stopped.restored, "{stopped:?}");
    drop(stream);
}
