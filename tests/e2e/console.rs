//! The console through the real host, with stdout not a terminal (a pipe, as for a service):
//! the plain lines, and progress lines only for transfers that last, one per 10 s at most.

use std::time::{Duration, Instant};

use onionhost_tests::host::{DEADLINE, TestHost};
use onionhost_tests::web::get;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The console's interval between two progress lines of one transfer (`host/src/console.rs`).
const PROGRESS_EVERY: Duration = Duration::from_secs(10);

/// How fast the long download is read: slow enough that it lasts past [`PROGRESS_EVERY`].
const PACE: u64 = 2 << 20;

#[tokio::test]
async fn a_long_download_gets_progress_lines_at_a_bounded_rate_a_short_one_none() {
    let dir = tempfile::tempdir().expect("temp dir");
    // Past every buffer between the file and the client (a few MiB on loopback) when read at
    // `PACE` for `PROGRESS_EVERY`, so the download is still under way when its line is due.
    let size: usize = 48 << 20;
    let data: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
    let name = "a-name-the-console-must-not-show.bin";
    let path = dir.path().join(name);
    std::fs::write(&path, &data).expect("write");
    let small = dir.path().join("small.txt");
    std::fs::write(&small, b"small").expect("write");
    let host = TestHost::spawn(&[
        "share",
        path.to_str().expect("utf-8"),
        small.to_str().expect("utf-8"),
        "--keep-sharing",
        "--local-only",
    ])
    .expect("spawn");
    let url = host.url("share").expect("url");

    // A short download: its start and end lines, no progress.
    let response = get(&format!("{url}files/small.txt"), &[]).await;
    assert_eq!(response.bytes().await.expect("body").as_ref(), b"small");
    host.wait_for(r"\[share\] download #1 finished")
        .expect("the short download ends");

    // A long one, read at `PACE` until its first progress line is out.
    let addr = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let mut stream = TcpStream::connect(&addr).await.expect("connect");
    let sent = Instant::now();
    stream
        .write_all(
            format!("GET /files/{name} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await
        .expect("send");
    let progress = regex::Regex::new(
        r"\[share\] download #2: [0-9.]+ MiB of 48\.0 MiB \(\d+%\), [0-9.]+ [KM]iB/s",
    )
    .expect("regex");
    let mut received = 0_u64;
    let mut buf = vec![0; 64 << 10];
    let deadline = sent + DEADLINE;
    let first_line_after = loop {
        if progress.is_match(&host.output()) {
            break sent.elapsed();
        }
        assert!(
            Instant::now() < deadline,
            "no progress line:\n{}",
            host.output()
        );
        let n = stream.read(&mut buf).await.expect("read");
        assert!(n > 0, "the download ended before its progress line");
        received += n as u64;
        // Paced on purpose (not a wait for an event): the download must outlast the
        // console's interval, and loopback would carry it in a fraction of a second.
        let due = Duration::from_secs_f64(received as f64 / PACE as f64);
        if let Some(ahead) = due.checked_sub(sent.elapsed()) {
            tokio::time::sleep(ahead).await;
        }
    };
    assert!(
        first_line_after >= PROGRESS_EVERY,
        "the first progress line came after {first_line_after:?}"
    );

    // The rest at full speed: the end line comes, and no second progress line before it.
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).await.expect("the rest");
    let lasted = sent.elapsed();
    host.wait_for(r"\[share\] download #2 finished: 48\.0 MiB")
        .expect("the long download ends");
    let output = host.output();
    let lines: Vec<&str> = output
        .lines()
        .filter(|line| line.starts_with("[share] download #"))
        .collect();
    let bound = usize::try_from(lasted.as_secs() / PROGRESS_EVERY.as_secs()).expect("small");
    let shown = lines.iter().filter(|line| progress.is_match(line)).count();
    assert!(
        (1..=bound).contains(&shown),
        "{shown} progress lines in {lasted:?}: {lines:#?}"
    );
    assert!(
        !lines
            .iter()
            .any(|line| line.starts_with("[share] download #1:")),
        "a short download got a progress line: {lines:#?}"
    );
    let stopped = host.stop().expect("stop");
    assert!(stopped.status.success(), "{stopped:?}");
    assert!(
        !stopped.stdout.contains(name),
        "a file name on the console:\n{}",
        stopped.stdout
    );
}
