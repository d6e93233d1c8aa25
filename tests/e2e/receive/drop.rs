//! Issue 11's receive features through the real binary: the encrypted drop (decrypted with the
//! standard `age` tool, memory flat for an upload far larger than any buffer), webhook notices
//! (on loopback, and to an onion service over the local Tor test network), and their config
//! errors.

use std::io::Read as _;
use std::net::SocketAddr;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt as _;
use http_body_util::BodyExt as _;
use onionhost_tests::host::{DEADLINE, TestHost, page_text};
use onionhost_tests::testnet::{CTorOnionService, Testnet};
use reqwest::StatusCode;
use reqwest::header::CONTENT_TYPE;

use super::{BOUNDARY, Inbox, entries, eventually, form, mode, post};

/// An age identity made with the standard `age-keygen` tool.
struct AgeKey {
    _dir: tempfile::TempDir,
    identity: std::path::PathBuf,
    recipient: String,
}

fn age_keygen() -> AgeKey {
    let dir = tempfile::tempdir().expect("temp dir");
    let identity = dir.path().join("key.txt");
    let output = Command::new("age-keygen")
        .arg("-o")
        .arg(&identity)
        .output()
        .expect("`age-keygen` is needed (Debian package `age`; tests/run installs it)");
    assert!(output.status.success(), "age-keygen failed: {output:?}");
    let text = std::fs::read_to_string(&identity).expect("read the key");
    let recipient = text
        .lines()
        .find_map(|line| line.strip_prefix("# public key: "))
        .expect("age-keygen writes the public key")
        .to_owned();
    AgeKey {
        _dir: dir,
        identity,
        recipient,
    }
}

/// Decrypts `sealed` with the `age` tool into a zip, as the README says.
fn age_decrypt(key: &AgeKey, sealed: &std::path::Path, out: &std::path::Path) {
    let status = Command::new("age")
        .arg("--decrypt")
        .arg("--identity")
        .arg(&key.identity)
        .arg("--output")
        .arg(out)
        .arg(sealed)
        .status()
        .expect("the `age` tool is needed (Debian package `age`; tests/run installs it)");
    assert!(status.success(), "age --decrypt failed: {status}");
}

/// The big file's bytes at `offset`: a pattern no buffer could hide, with a marker in it.
fn big_block(offset: u64, len: usize) -> Vec<u8> {
    const BLOCK: &[u8] = b"PLAINTEXT-MARKER 0123456789abcdefghijklmnopqrstuvwxyz ";
    (0..len as u64)
        .map(|i| {
            let at = offset + i;
            BLOCK[(at % BLOCK.len() as u64) as usize] ^ ((at / 4099) as u8 & 0x20)
        })
        .collect()
}

/// The host's peak resident memory (VmHWM), in KiB.
fn peak_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM")
}

/// The upload's size: far beyond every buffer on its way (1 MiB writes, a queue of four
/// network chunks, age's 64 KiB chunks).
const BIG: u64 = 128 * 1024 * 1024;
/// The most the host may hold at its peak while it receives [`BIG`] bytes: about twice what
/// was measured (29 MiB for the debug build, binary included), far below [`BIG`].
const PEAK_LIMIT_KIB: u64 = 64 * 1024;

#[tokio::test]
async fn an_encrypted_drop_decrypts_with_age_holds_no_plaintext_and_stays_flat_in_memory() {
    let key = age_keygen();
    let inbox = Inbox::new();
    let host = TestHost::with_config(&format!(
        "[[tab]]\nname = \"drop\"\nmode = \"receive\"\n[tab.receive]\ndir = {:?}\n\
         min_free_space = 0\nencrypt_to = [{:?}]\n",
        inbox.path_str(),
        key.recipient
    ))
    .expect("spawn");
    let url = host.url("drop").expect("url");
    host.wait_for(r"\[drop\] Receiving .* each upload encrypted for 1 age recipient")
        .expect("the console says uploads are encrypted");
    // Peak memory from here on (writing 5 resets VmHWM).
    std::fs::write(format!("/proc/{}/clear_refs", host.pid()), "5").expect("reset VmHWM");

    // One big file streamed (never whole in the test's memory either), a small one, a message.
    let head = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"files\"; \
         filename=\"big film.bin\"\r\n\r\n"
    );
    let tail = form(
        &[("notes ü.txt", b"PLAINTEXT-MARKER notes")],
        Some("PLAINTEXT-MARKER hi"),
    );
    const CHUNK: usize = 256 * 1024;
    let chunks = (0..BIG / CHUNK as u64).map(|n| big_block(n * CHUNK as u64, CHUNK));
    let body = futures::stream::iter(
        std::iter::once(head.into_bytes())
            .chain(chunks)
            // The rest of the form starts with the boundary line that ends the big file.
            .chain(std::iter::once([b"\r\n".as_slice(), &tail].concat())),
    )
    .map(Ok::<_, std::io::Error>);
    let response = reqwest::Client::new()
        .post(format!("{url}upload"))
        .header(
            CONTENT_TYPE,
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(reqwest::Body::wrap_stream(body))
        .send()
        .await
        .expect("upload");
    assert_eq!(response.status(), StatusCode::OK);
    let page = response.text().await.expect("page");
    assert!(page.contains("2 files received"), "{page}");
    let peak = peak_kib(host.pid());
    eprintln!(
        "the host's peak memory while receiving {} MiB: {peak} KiB",
        BIG >> 20
    );
    assert!(
        peak < PEAK_LIMIT_KIB,
        "the host's peak memory was {peak} KiB while it received {} MiB",
        BIG >> 20
    );

    // One file, private, named by date and time, ciphertext only.
    let names = entries(&inbox.path());
    assert_eq!(names.len(), 1, "{names:?}");
    assert!(names[0].ends_with(".zip.age"), "{names:?}");
    let sealed = inbox.path().join(&names[0]);
    assert_eq!(mode(&sealed), 0o600);
    let bytes = std::fs::read(&sealed).expect("read");
    assert!(bytes.starts_with(b"age-encryption.org/v1\n"));
    let marker = regex::bytes::Regex::new("PLAINTEXT-MARKER|big film|notes").expect("regex");
    assert!(!marker.is_match(&bytes), "plaintext in the encrypted file");
    drop(bytes);

    // Decrypted with the standard tool: the files and the message, byte for byte, by name.
    let out = tempfile::tempdir().expect("temp dir");
    let zip_path = out.path().join("upload.zip");
    age_decrypt(&key, &sealed, &zip_path);
    let mut archive =
        zip::ZipArchive::new(std::fs::File::open(&zip_path).expect("zip")).expect("a zip");
    let names: Vec<String> = (0..archive.len())
        .map(|index| {
            let entry = archive.by_index(index).expect("an entry");
            entry.name().expect("a UTF-8 name").into_owned()
        })
        .collect();
    assert_eq!(names, ["big film.bin", "notes ü.txt", "message.txt"]);
    {
        let mut big = archive.by_name("big film.bin").expect("big");
        let mut offset = 0u64;
        let mut buffer = vec![0; 1024 * 1024];
        loop {
            let n = big.read(&mut buffer).expect("read big");
            if n == 0 {
                break;
            }
            assert!(
                buffer[..n] == big_block(offset, n)[..],
                "the big file differs at {offset}"
            );
            offset += n as u64;
        }
        assert_eq!(offset, BIG);
    }
    let mut read = |name: &str| {
        let mut data = String::new();
        archive
            .by_name(name)
            .expect(name)
            .read_to_string(&mut data)
            .expect("read");
        data
    };
    assert_eq!(read("notes ü.txt"), "PLAINTEXT-MARKER notes");
    assert_eq!(read("message.txt"), "PLAINTEXT-MARKER hi");
    let stopped = host.stop().expect("stop");
    let output = format!("{}{}", stopped.stdout, stopped.stderr);
    assert!(!output.contains("big film"), "{output}");
}

/// A tiny HTTP server on loopback that records every request it gets: the webhook's receiver.
struct HookServer {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<(String, String, String)>>>,
}

impl HookServer {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let seen: Arc<Mutex<Vec<(String, String, String)>>> = Arc::default();
        let record = Arc::clone(&seen);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let record = Arc::clone(&record);
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(
                        move |request: hyper::Request<hyper::body::Incoming>| {
                            let record = Arc::clone(&record);
                            async move {
                                let (parts, body) = request.into_parts();
                                let body = body.collect().await?.to_bytes();
                                record.lock().expect("lock").push((
                                    parts.method.to_string(),
                                    parts.uri.to_string(),
                                    String::from_utf8_lossy(&body).into_owned(),
                                ));
                                Ok::<_, hyper::Error>(hyper::Response::new(
                                    http_body_util::Full::new(hyper::body::Bytes::new()),
                                ))
                            }
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self { addr, seen }
    }

    fn seen(&self) -> Vec<(String, String, String)> {
        self.seen.lock().expect("lock").clone()
    }
}

#[tokio::test]
async fn a_loopback_webhook_gets_a_notice_after_each_complete_upload_and_the_log_no_url() {
    let hook = HookServer::start().await;
    let inbox = Inbox::new();
    let webhook = format!("http://127.0.0.1:{}/hook?token=s3cr3t", hook.addr.port());
    let host = TestHost::with_config(&format!(
        "[[tab]]\nname = \"drop\"\nmode = \"receive\"\n[tab.receive]\ndir = {:?}\n\
         min_free_space = 0\nmax_upload_size = 4096\nwebhook_url = {webhook:?}\n",
        inbox.path_str()
    ))
    .expect("spawn");
    let url = host.url("drop").expect("url");
    let (status, page) = post(
        &url,
        form(&[("a.txt", b"1"), ("b.txt", b"2")], Some("secret words")),
        false,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    eventually("the notice arrives", || !hook.seen().is_empty()).await;
    assert_eq!(
        hook.seen(),
        [(
            "POST".to_owned(),
            "/hook?token=s3cr3t".to_owned(),
            "2 files and a message submitted".to_owned()
        )]
    );
    // A refused upload sends nothing.
    let (status, _) = post(&url, form(&[("big", &[0; 8192])], None), false).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    let (status, _) = post(&url, form(&[], Some("again")), false).await;
    assert_eq!(status, StatusCode::OK);
    eventually("the second notice arrives", || hook.seen().len() == 2).await;
    assert_eq!(hook.seen()[1].2, "a message submitted");
    let stopped = host.stop().expect("stop");
    // The log (at debug, as the tests run it) never carries the URL; nothing carries names.
    assert!(!stopped.stderr.contains("s3cr3t"), "{}", stopped.stderr);
    let output = format!("{}{}", stopped.stdout, stopped.stderr);
    for secret in ["a.txt", "secret words"] {
        assert!(!output.contains(secret), "{secret}:\n{output}");
    }
}

#[tokio::test]
async fn with_local_only_a_webhook_off_this_machine_fails_the_tab_at_start() {
    let inbox = Inbox::new();
    let host = TestHost::with_config(&format!(
        "[[tab]]\nname = \"drop\"\nmode = \"receive\"\n[tab.receive]\ndir = {:?}\n\
         webhook_url = \"http://example.org/hook\"\n\n[[tab]]\nname = \"room\"\nmode = \"chat\"\n",
        inbox.path_str()
    ))
    .expect("spawn");
    host.wait_for(
        r"\[drop\] failed: .*webhook_url http://example.org/hook cannot be used: with --local-only .* loopback URL",
    )
    .expect("the tab fails at start, saying why");
    // The other tab runs.
    host.url("room").expect("the chat tab is served");
}

#[test]
fn bad_webhook_urls_and_recipients_are_config_errors_with_file_and_line() {
    let host = TestHost::with_config(
        "[[tab]]\nname = \"drop\"\nmode = \"receive\"\n[tab.receive]\n\
         webhook_url = \"https://example.org/hook\"\n\n[[tab]]\nname = \"drop2\"\nmode = \"receive\"\n\
         [tab.receive]\nencrypt_to = [\"age1notakey\"]\n",
    )
    .expect("spawn");
    let stopped = host.wait_exit().expect("exits");
    assert_eq!(stopped.status.code(), Some(2), "{}", stopped.stderr);
    assert!(
        stopped
            .stderr
            .contains("onionhost.toml:5: tab \"drop\", `receive.webhook_url`: uses https"),
        "{}",
        stopped.stderr
    );
    assert!(
        stopped
            .stderr
            .contains("onionhost.toml:11: tab \"drop2\", `receive.encrypt_to[0]`: is not an age X25519 recipient"),
        "{}",
        stopped.stderr
    );
}

/// POSTs a form to `onion` through the test network's C tor client; returns the status.
async fn post_through_tor(net: &Testnet, onion: &str, body: Vec<u8>) -> u16 {
    let stream = net
        .connect(onion, 80)
        .await
        .expect("reach the tab through tor");
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .expect("handshake");
    tokio::spawn(connection);
    let request = hyper::Request::post("/upload")
        .header(hyper::header::HOST, onion)
        .header(
            hyper::header::CONTENT_TYPE,
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(http_body_util::Full::new(hyper::body::Bytes::from(body)))
        .expect("request");
    let response = tokio::time::timeout(DEADLINE, sender.send_request(request))
        .await
        .expect("an answer in time")
        .expect("an answer");
    response.status().as_u16()
}

/// A webhook receiver that only Tor can reach: a [`HookServer`] on loopback behind a C tor
/// onion service of the test network, whose address is all the host is told.
pub(crate) struct OnionHook {
    server: HookServer,
    service: CTorOnionService,
}

impl OnionHook {
    pub(crate) async fn start(net: &'static Testnet) -> Self {
        let server = HookServer::start().await;
        let service = net
            .c_tor_onion_service(80, server.addr, &[])
            .await
            .expect("the receiver's onion service");
        Self { server, service }
    }

    /// The tab's `webhook_url`: `http://<onion>/notify`.
    pub(crate) fn url(&self) -> String {
        format!("http://{}/notify", self.service.onion_host())
    }
}

/// Uploads one file into the public receive tab at `onion` through the test network's C tor
/// client, then waits for the host's notice at `hook`: exactly one POST that says "1 file
/// submitted" and carries nothing of the upload (its name, size or contents), and no failed
/// notice on the console.
pub(crate) async fn upload_and_expect_notice(
    net: &Testnet,
    host: &TestHost,
    onion: &str,
    hook: &OnionHook,
) {
    let contents = b"PLAINTEXT-MARKER ".repeat(73);
    let size = contents.len().to_string();
    let status = post_through_tor(net, onion, form(&[("hidden-name.txt", &contents)], None)).await;
    assert_eq!(status, 200);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while hook.server.seen().is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no notice within 2 minutes; host output:\n{}",
            host.output()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let seen = hook.server.seen();
    assert_eq!(
        seen,
        [(
            "POST".to_owned(),
            "/notify".to_owned(),
            "1 file submitted".to_owned()
        )]
    );
    for secret in ["hidden-name", "PLAINTEXT", size.as_str()] {
        assert!(!seen[0].2.contains(secret), "the notice carries {secret}");
    }
    assert!(
        !host.output().contains("webhook notice to"),
        "{}",
        host.output()
    );
}

/// The webhook over Tor: the receiver is an onion service of the test network (a C tor one,
/// forwarding to a loopback server), and the host reaches it with its own Arti client.
#[tokio::test]
async fn an_onion_webhook_gets_its_notice_through_tor() {
    let net = Testnet::shared().await.expect("the test network");
    let hook = OnionHook::start(net).await;
    let inbox = Inbox::new();
    let (host, _scratch) = crate::onion::run_host(
        net,
        &format!(
            "[[tab]]\nname = \"drop\"\nmode = \"receive\"\npublic = true\n[tab.receive]\n\
             dir = {:?}\nmin_free_space = 0\nwebhook_url = {:?}\n",
            inbox.path_str(),
            hook.url()
        ),
    );
    let tab = crate::onion::onion_tab(&host, "drop", false);
    upload_and_expect_notice(net, &host, &tab.host, &hook).await;
    host.stop().expect("stop");
}

#[tokio::test]
async fn the_receive_command_takes_a_title() {
    let inbox = Inbox::new();
    let host = TestHost::spawn(&[
        "receive",
        &inbox.path_str(),
        "--title",
        "Tips <i>",
        "--local-only",
    ])
    .expect("spawn");
    let url = host.url("receive").expect("url");
    let page = page_text(&url).await;
    assert!(page.contains("<title>Tips &lt;i&gt;</title>"), "{page}");
    assert!(page.contains("<h1>Tips &lt;i&gt;</h1>"), "{page}");
}
