//! Tabs as onion services over the local Tor test network: the host's embedded Arti publishes
//! them, the network's C tor client visits them (HTTP and WebSocket), with and without client
//! authorization; persistent tabs keep their address; ephemeral tabs leave no key on disk.

use std::path::{Path, PathBuf};
use std::time::Duration;

use data_encoding::BASE32_NOPAD;
use onionhost_tests::chat_client::Member;
use onionhost_tests::host::TestHost;
use onionhost_tests::testnet::{SocksError, Testnet};
use serde_json::{Value, json};
use tokio::net::TcpStream;

/// What a host printed about one of its onion service tabs.
pub(crate) struct Tab {
    /// `<56 base32>.onion`.
    pub(crate) host: String,
    /// The client key it printed, for a private tab.
    pub(crate) key: Option<String>,
}

/// Waits until `tab` prints its onion address (and, if `private`, its client key lines).
pub(crate) fn onion_tab(host: &TestHost, tab: &str, private: bool) -> Tab {
    let name = regex::escape(tab);
    let caps = host
        .wait_for(&format!(
            r"\[{name}\] serving at http://([a-z2-7]{{56}}\.onion)/\n"
        ))
        .expect("the tab's onion address");
    let onion = caps[1].clone();
    if !private {
        return Tab {
            host: onion,
            key: None,
        };
    }
    let caps = host
        .wait_for(&format!(
            r"\[{name}\] private key \(give it to each visitor; Tor Browser asks for it\): ([A-Z2-7]{{52}})\n"
        ))
        .expect("the tab's private key");
    let key = caps[1].clone();
    let label = onion.trim_end_matches(".onion");
    host.wait_for(&format!(
        r"\[{name}\] C tor ClientOnionAuthDir line: {label}:descriptor:x25519:{key}\n"
    ))
    .expect("the C tor line");
    Tab {
        host: onion,
        key: Some(key),
    }
}

/// Starts `onionhost run` on the local Tor network with `tabs` as the config's tabs; Arti's
/// temporary files and any data folder go under the host's own test folder, to be inspected.
pub(crate) fn run_host(net: &Testnet, tabs: &str) -> (TestHost, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("onionhost.toml");
    std::fs::write(&config, format!("{tabs}\n{}", net.tor_section())).expect("write config");
    let scratch = scratch_dirs(dir.path());
    let config = config.to_str().expect("utf-8").to_owned();
    let env = scratch_env(&scratch);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let host = TestHost::spawn_in(dir, &["run", "--config", &config], &env).expect("start");
    (host, scratch)
}

/// `<dir>/scratch` with `tmp`, `data` and `home` inside: where the host's TMPDIR,
/// XDG_DATA_HOME and HOME point, so that the test sees everything it writes outside its
/// config folder.
pub(crate) fn scratch_dirs(dir: &Path) -> PathBuf {
    let scratch = dir.join("scratch");
    for sub in ["tmp", "data", "home"] {
        std::fs::create_dir_all(scratch.join(sub)).expect("scratch dirs");
    }
    scratch
}

pub(crate) fn scratch_env(scratch: &Path) -> Vec<(&'static str, String)> {
    let path = |sub: &str| scratch.join(sub).to_str().expect("utf-8").to_owned();
    vec![
        ("TMPDIR", path("tmp")),
        ("XDG_DATA_HOME", path("data")),
        ("HOME", path("home")),
    ]
}

/// Every file under `dir`, recursively.
pub(crate) fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files
}

/// The byte strings that give a private tab away: its address (text and raw public key) and
/// its client key (text and raw), in every case they could be written in.
fn secrets_of(tab: &Tab) -> Vec<Vec<u8>> {
    let label = tab.host.trim_end_matches(".onion");
    let raw_address = BASE32_NOPAD
        .decode(label.to_ascii_uppercase().as_bytes())
        .expect("base32 address");
    let mut secrets = vec![
        label.as_bytes().to_vec(),
        label.to_ascii_uppercase().into_bytes(),
        raw_address[..32].to_vec(),
    ];
    if let Some(key) = &tab.key {
        secrets.push(key.as_bytes().to_vec());
        secrets.push(key.to_ascii_lowercase().into_bytes());
        secrets.push(BASE32_NOPAD.decode(key.as_bytes()).expect("base32 key"));
    }
    secrets
}

/// Panics if any file under `dir` contains any of `secrets`.
fn assert_no_secret_under(dir: &Path, secrets: &[Vec<u8>]) -> usize {
    let files = files_under(dir);
    for file in &files {
        let Ok(bytes) = std::fs::read(file) else {
            continue;
        };
        for secret in secrets {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_slice()),
                "{} holds key material of an ephemeral tab",
                file.display()
            );
        }
    }
    files.len()
}

/// Asserts that the C tor client, without a key, is refused by a private tab.
pub(crate) async fn assert_needs_key(net: &Testnet, onion: &str) {
    let err = net
        .connect(onion, 80)
        .await
        .expect_err("a private tab must not be reachable without its key");
    let refusal = err
        .downcast_ref::<SocksError>()
        .unwrap_or_else(|| panic!("not a SOCKS refusal: {err:#}"));
    assert_eq!(
        refusal.code,
        SocksError::HS_MISSING_CLIENT_AUTH,
        "{refusal}"
    );
}

/// With `room`'s key, "ann" and "bo" join it through tor over WebSockets, and a message
/// `text` from ann reaches both. Both stay in the room while the caller holds them.
pub(crate) async fn chat_through_tor(
    net: &Testnet,
    room: &Tab,
    text: &str,
) -> [Member<TcpStream>; 2] {
    net.authorize(&room.host, room.key.as_deref().expect("key"))
        .await
        .expect("authorize");
    let (mut ann, _) = join_through_tor(net, &room.host, "ann").await;
    let (mut bo, welcome) = join_through_tor(net, &room.host, "bo").await;
    assert_eq!(welcome["members"], json!(["ann", "bo"]));
    assert_eq!(ann.next().await, json!({"type": "joined", "name": "bo"}));
    ann.send(json!({"type": "send", "text": text})).await;
    let expected = json!({"type": "message", "from": "ann", "text": text});
    assert_eq!(ann.next().await, expected);
    assert_eq!(bo.next().await, expected);
    [ann, bo]
}

/// Joins the chat tab at `onion` as `name` through tor.
pub(crate) async fn join_through_tor(
    net: &Testnet,
    onion: &str,
    name: &str,
) -> (Member<TcpStream>, Value) {
    let stream = net.connect(onion, 80).await.expect("connect through tor");
    let (ws, _) = tokio_tungstenite::client_async(format!("ws://{onion}/ws"), stream)
        .await
        .expect("WebSocket handshake through tor");
    Member::join_on(ws, name).await
}

#[tokio::test]
async fn chat_and_share_tabs_are_private_ephemeral_onion_services() {
    let net = Testnet::shared().await.expect("local Tor network");
    let files = tempfile::tempdir().expect("temp dir");
    let shared: Vec<u8> = (0..300_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let shared_path = files.path().join("report.bin");
    std::fs::write(&shared_path, &shared).expect("write the shared file");
    let tabs = format!(
        "[[tab]]\nname = \"room\"\nmode = \"chat\"\n\n\
         [[tab]]\nname = \"files\"\nmode = \"share\"\n\
         [tab.share]\npaths = [{:?}]\nstop_after_first_download = false\n",
        shared_path.to_str().expect("utf-8")
    );
    let started = std::time::Instant::now();
    let (host, scratch) = run_host(net, &tabs);
    let room = onion_tab(&host, "room", true);
    let share = onion_tab(&host, "files", true);
    eprintln!(
        "both onion services reachable after {:?}",
        started.elapsed()
    );
    assert_ne!(room.host, share.host, "each tab has its own address");
    assert_ne!(room.key, share.key, "each tab has its own client key");
    let output = host.output();
    assert!(output.contains("[tor] bootstrapping: 100%"), "{output}");

    // Private: the address alone is not enough.
    assert_needs_key(net, &room.host).await;
    assert_needs_key(net, &share.host).await;

    // With its key, the shared file comes through tor byte for byte.
    net.authorize(&share.host, share.key.as_deref().expect("key"))
        .await
        .expect("authorize");
    let (status, body) = net
        .get(&format!("http://{}/files/report.bin", share.host))
        .await
        .expect("download through tor");
    assert_eq!(status, 200);
    assert!(body == shared, "the download differs from the shared file");
    // One tab's key opens that tab only.
    assert_needs_key(net, &room.host).await;

    // Chat over WebSockets through tor.
    let members = chat_through_tor(net, &room, "hello over tor").await;

    // Ephemeral: nothing under the host's temporary or data folders gives either tab away.
    let mut secrets = secrets_of(&room);
    secrets.extend(secrets_of(&share));
    let arti_dirs: Vec<PathBuf> = std::fs::read_dir(scratch.join("tmp"))
        .expect("read TMPDIR")
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("onionhost-tor-"))
        })
        .collect();
    assert_eq!(
        arti_dirs.len(),
        1,
        "one private folder for Arti: {arti_dirs:?}"
    );
    let scanned = assert_no_secret_under(&scratch, &secrets);
    assert!(
        scanned > 0,
        "Arti wrote no state at all: the scan proves nothing"
    );
    for sub in ["data", "home"] {
        assert!(
            files_under(&scratch.join(sub)).is_empty(),
            "ephemeral tabs keep nothing in {sub}: {:?}",
            files_under(&scratch.join(sub))
        );
    }
    drop(members);
    net.deauthorize(&room.host).await.expect("deauthorize");
    net.deauthorize(&share.host).await.expect("deauthorize");

    let stopped = host.stop().expect("stop");
    assert!(stopped.status.success(), "{}", stopped.stderr);
    // Keys go to the console only, never to the logs (here at debug level).
    for key in [&room.key, &share.key].into_iter().flatten() {
        assert!(
            !stopped.stderr.contains(key.as_str()),
            "a key reached the logs"
        );
    }
    assert!(
        !arti_dirs[0].exists(),
        "Arti's temporary folder is removed on exit"
    );
    assert_no_secret_under(&scratch, &secrets);
    eprintln!("whole test: {:?}", started.elapsed());
}

#[tokio::test]
async fn a_public_tab_needs_no_key() {
    let net = Testnet::shared().await.expect("local Tor network");
    let dir = tempfile::tempdir().expect("temp dir");
    let scratch = scratch_dirs(dir.path());
    let env = scratch_env(&scratch);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let network = net.network_file().to_str().expect("utf-8").to_owned();
    let host = TestHost::spawn_in(dir, &["chat", "--public", "--tor-network", &network], &env)
        .expect("start");
    let tab = onion_tab(&host, "chat", false);
    let (status, body) = net
        .get(&format!("http://{}/", tab.host))
        .await
        .expect("GET / through tor without a key");
    assert_eq!(status, 200);
    assert!(
        String::from_utf8_lossy(&body).contains("<noscript>"),
        "the chat page"
    );
    let stopped = host.stop().expect("stop");
    assert!(stopped.status.success(), "{}", stopped.stderr);
    assert!(
        !stopped.stdout.contains("private key"),
        "a public tab prints no key:\n{}",
        stopped.stdout
    );
}

#[tokio::test]
async fn a_stopped_tab_takes_its_onion_service_down_and_the_others_stay() {
    let net = Testnet::shared().await.expect("local Tor network");
    let dir = tempfile::tempdir().expect("temp dir");
    let shared = dir.path().join("once.txt");
    // Big enough that its last cells are still on their way when the tab stops. Regression
    // test: the tab's rendezvous circuits used to close with the end of the response still
    // queued on them, cutting this download short.
    let content: Vec<u8> = (0..400_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&shared, &content).expect("write");
    let config = dir.path().join("onionhost.toml");
    std::fs::write(
        &config,
        format!(
            "[[tab]]\nname = \"stays\"\nmode = \"chat\"\npublic = true\n\n\
             [[tab]]\nname = \"once\"\nmode = \"share\"\npublic = true\n\
             [tab.share]\npaths = [{:?}]\n",
            shared.to_str().expect("utf-8")
        ),
    )
    .expect("write config");
    let config = config.to_str().expect("utf-8").to_owned();
    let network = net.network_file().to_str().expect("utf-8").to_owned();
    let host = TestHost::spawn_in(
        dir,
        &["run", "--config", &config, "--tor-network", &network],
        // Unset: no colour must come from stderr not being a terminal alone.
        &[("NO_COLOR", "")],
    )
    .expect("start");
    let stays = onion_tab(&host, "stays", false);
    let once = onion_tab(&host, "once", false);
    let (status, body) = net
        .get(&format!("http://{}/files/once.txt", once.host))
        .await
        .expect("download through tor");
    assert_eq!(status, 200);
    assert!(
        body == content,
        "the download was cut or changed: {} bytes",
        body.len()
    );
    host.wait_for(r"\[once\] stopped\n")
        .expect("the share tab stops after its first download");

    // Its onion service is gone: no introduction, no rendezvous, for as long as we try.
    let gone = net
        .connect_within(&once.host, 80, Duration::from_secs(20))
        .await;
    assert!(gone.is_err(), "a stopped tab is still reachable");
    // The other tab is untouched.
    let (status, _) = net
        .get(&format!("http://{}/", stays.host))
        .await
        .expect("the other tab through tor");
    assert_eq!(status, 200);
    let stopped = host.stop().expect("stop");
    assert!(stopped.status.success(), "{}", stopped.stderr);
    assert_quiet(&stopped.stderr);
}

/// Regression test, "rendezvous after stop": for about 5 s after SIGTERM a new visitor still
/// completed a rendezvous with a stopping tab (and got an empty reply), so anyone with a public
/// tab's address could tell it was still up. Now the tab's onion service goes down at the first
/// SIGTERM: a new visitor (its own circuits, so a new introduction and rendezvous) gets no
/// stream at all, while a download that was already under way runs to its end.
///
/// It fails on the old behaviour: the probe starts as soon as the host says it is stopping,
/// well inside those 5 s, and the host is certainly still up for all of it (the download,
/// held back by this test, completes only afterwards), so an onion service that still
/// completed rendezvous would give the probe a stream.
#[tokio::test]
async fn after_sigterm_no_new_visitor_gets_in_while_an_open_download_finishes() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    let net = Testnet::shared().await.expect("local Tor network");
    let files = tempfile::tempdir().expect("temp dir");
    let big = files.path().join("big.bin");
    // Far more than tor's stream window and the sockets' buffers hold, so the host cannot
    // finish sending it while this test does not read.
    let content: Vec<u8> = (0..6_000_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&big, &content).expect("write");
    let (host, _scratch) = run_host(
        net,
        &format!(
            "[[tab]]\nname = \"slow\"\nmode = \"share\"\npublic = true\n\
             [tab.share]\npaths = [{:?}]\nstop_after_first_download = false\n",
            big.to_str().expect("utf-8")
        ),
    );
    let tab = onion_tab(&host, "slow", false);

    let mut download = net
        .connect_isolated(&tab.host, 80, Some("download"), Duration::from_secs(120))
        .await
        .expect("the download's stream through tor");
    download
        .write_all(
            format!(
                "GET /files/big.bin HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
                tab.host
            )
            .as_bytes(),
        )
        .await
        .expect("send the request");
    let mut received = vec![0u8; 64 * 1024];
    download
        .read_exact(&mut received)
        .await
        .expect("the download starts");

    host.terminate().expect("SIGTERM");
    host.wait_for("stopping every tab")
        .expect("the host says it is stopping");
    let probe = net
        .connect_isolated(&tab.host, 80, Some("newcomer"), Duration::from_secs(15))
        .await;
    assert!(
        probe.is_err(),
        "a new visitor got a stream from a tab stopped by SIGTERM"
    );

    let rest = std::time::Instant::now();
    download
        .read_to_end(&mut received)
        .await
        .expect("the rest of the download");
    let rest = rest.elapsed();
    let stopped = host.wait_exit().expect("exit");
    let split = received
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head");
    let head = String::from_utf8_lossy(&received[..split]);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        received[split + 4..] == content[..],
        "the open download was cut or changed: {} of {} bytes (the rest took {rest:?}); host:\n{}\n{}",
        received.len() - split - 4,
        content.len(),
        stopped.stdout,
        stopped
            .stderr
            .lines()
            .filter(|l| !l.contains("tor_") && !l.contains("arti_"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(stopped.status.success(), "{}", stopped.stderr);
    assert_quiet(&stopped.stderr);
}

/// `auto_start`: the address is printed at once, but no onion service is published before
/// the start (keys first, publication later): a visitor finds no descriptor until then, and
/// the same address serves after.
#[tokio::test]
async fn a_tab_with_auto_start_publishes_nothing_before_its_start() {
    let net = Testnet::shared().await.expect("local Tor network");
    let (host, _scratch) = run_host(
        net,
        "[[tab]]\nname = \"later\"\nmode = \"chat\"\npublic = true\nauto_start = \"45s\"\n",
    );
    let caps = host
        .wait_for(r"\[later\] not serving yet: reachable from [0-9: -]+ at http://([a-z2-7]{56}\.onion)/\n")
        .expect("the address is printed before the start");
    let onion = caps[1].clone();
    let probing = std::time::Instant::now();
    let early = net
        .connect_within(&onion, 80, Duration::from_secs(15))
        .await;
    assert!(
        !host.output().contains("[later] publishing"),
        "the probe outlasted the start; the test proves nothing:\n{}",
        host.output()
    );
    let refusal = early.expect_err("reachable before its start");
    assert!(probing.elapsed() >= Duration::from_secs(10), "{refusal:#}");
    // The start comes some 30 s after the probe: wait for it first, so that the wait for the
    // address counts from the start, as in every other onion test (a loaded CI machine took
    // more than the 60 s `wait_for` gives, counted from the probe's end, for both).
    host.wait_for(r"\[later\] publishing the onion service\n")
        .expect("the tab starts at its auto_start");
    let tab = onion_tab(&host, "later", false);
    assert_eq!(tab.host, onion, "the announced address is the one served");
    let (status, _) = net
        .get(&format!("http://{onion}/"))
        .await
        .expect("reachable after its start");
    assert_eq!(status, 200);
    let stopped = host.stop().expect("stop");
    assert!(stopped.status.success(), "{}", stopped.stderr);
    assert_quiet(&stopped.stderr);
}

/// Regressions: a clean stop of a host with onion tabs printed one panic per tab (from Arti's
/// proof-of-work task, as the runtime went down under it); stderr carried colour codes though
/// it was not a terminal; Arti printed some 20 WARN lines on a healthy network. Arti's lines
/// are debug lines now (the tests run at `RUST_LOG=debug`, so they are shown, marked so).
fn assert_quiet(stderr: &str) {
    assert!(!stderr.contains("panicked"), "a panic on stderr:\n{stderr}");
    assert!(
        !stderr.contains('\u{1b}'),
        "colour codes on stderr:\n{stderr}"
    );
    let arti_warning = regex::Regex::new(r"(WARN|ERROR) (tor_|arti_)").expect("regex");
    assert!(
        !arti_warning.is_match(stderr),
        "Arti warned on stderr:\n{stderr}"
    );
}

#[tokio::test]
async fn a_visitor_listed_in_authorized_clients_gets_in_with_their_own_key() {
    let net = Testnet::shared().await.expect("local Tor network");
    let secret: [u8; 32] = rand::random();
    let public = x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from(secret));
    let tabs = format!(
        "[[tab]]\nname = \"guest\"\nmode = \"chat\"\nauthorized_clients = [\"descriptor:x25519:{}\"]\n",
        BASE32_NOPAD.encode(public.as_bytes())
    );
    let (host, _scratch) = run_host(net, &tabs);
    let tab = onion_tab(&host, "guest", true);
    assert_ne!(
        tab.key.as_deref(),
        Some(BASE32_NOPAD.encode(&secret).as_str())
    );
    net.authorize(&tab.host, &BASE32_NOPAD.encode(&secret))
        .await
        .expect("authorize with the visitor's own key");
    let (status, _) = net
        .get(&format!("http://{}/", tab.host))
        .await
        .expect("GET / through tor with the visitor's own key");
    assert_eq!(status, 200);
    net.deauthorize(&tab.host).await.expect("deauthorize");
    let stopped = host.stop().expect("stop");
    assert!(stopped.status.success(), "{}", stopped.stderr);
}

#[tokio::test]
async fn a_persistent_tab_keeps_its_address_and_key_across_restarts() {
    let net = Testnet::shared().await.expect("local Tor network");
    let keep = tempfile::tempdir().expect("temp dir");
    let keys_dir = keep.path().join("keys");
    let tabs = "[[tab]]\nname = \"desk\"\nmode = \"chat\"\npersistent = true\n";
    let section = net.tor_section().replacen(
        "[tor]\n",
        &format!(
            "[tor]\nkeys_dir = {:?}\n",
            keys_dir.to_str().expect("utf-8")
        ),
        1,
    );
    let first = start_with_section(tabs, &section);
    let before = onion_tab(&first, "desk", true);
    let stopped = first.stop().expect("stop");
    assert!(stopped.status.success(), "{}", stopped.stderr);

    use std::os::unix::fs::PermissionsExt as _;
    let mode = |p: &Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
    let tab_dir = keys_dir.join("desk");
    assert_eq!(mode(&tab_dir), 0o700);
    for file in files_under(&tab_dir) {
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }

    let second = start_with_section(tabs, &section);
    let after = onion_tab(&second, "desk", true);
    assert_eq!(after.host, before.host, "same address after a restart");
    assert_eq!(after.key, before.key, "same client key after a restart");
    net.authorize(&after.host, after.key.as_deref().expect("key"))
        .await
        .expect("authorize");
    let (status, _) = net
        .get(&format!("http://{}/", after.host))
        .await
        .expect("GET / through tor after the restart");
    assert_eq!(status, 200);
    net.deauthorize(&after.host).await.expect("deauthorize");
    let stopped = second.stop().expect("stop");
    assert!(stopped.status.success(), "{}", stopped.stderr);
}

/// Starts `onionhost run` with `tabs` and the given `[tor]` section.
fn start_with_section(tabs: &str, section: &str) -> TestHost {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("onionhost.toml");
    std::fs::write(&config, format!("{tabs}\n{section}")).expect("write config");
    let config = config.to_str().expect("utf-8").to_owned();
    TestHost::spawn_in(dir, &["run", "--config", &config], &[]).expect("start")
}

/// Starts a host whose Tor network is an authority on a port where nothing listens, so Arti
/// can never bootstrap; returns the host and its scratch folder (its TMPDIR is `tmp` there).
fn host_on_a_dead_network(bootstrap_timeout: &str) -> (TestHost, PathBuf) {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let section = format!(
        "[tor]\nbootstrap_timeout = \"{bootstrap_timeout}\"\n\
         authorities = [ {{ v3ident = \"{id}\", address = \"127.0.0.1:{port}\" }} ]\n\
         fallbacks = [ {{ rsa_identity = \"{id}\", ed_identity = \"{ed}\", orport = \"127.0.0.1:{port}\" }} ]\n",
        id = "AB".repeat(20),
        ed = data_encoding::BASE64_NOPAD.encode(&[1u8; 32]),
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let scratch = scratch_dirs(dir.path());
    let config = dir.path().join("onionhost.toml");
    std::fs::write(
        &config,
        format!("[[tab]]\nname = \"a\"\nmode = \"chat\"\n\n{section}"),
    )
    .expect("write config");
    let config = config.to_str().expect("utf-8").to_owned();
    let env = scratch_env(&scratch);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let host = TestHost::spawn_in(dir, &["run", "--config", &config], &env).expect("start");
    (host, scratch)
}

#[tokio::test]
async fn an_unreachable_tor_network_is_a_clear_error_in_time() {
    let started = std::time::Instant::now();
    let (host, scratch) = host_on_a_dead_network("3s");
    let stopped = host.wait_exit().expect("the host gives up on its own");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "gave up after {:?}",
        started.elapsed()
    );
    assert!(!stopped.status.success());
    assert!(
        stopped
            .stderr
            .contains("could not connect to the Tor network within 3s"),
        "{}",
        stopped.stderr
    );
    assert!(
        !stopped.stdout.contains("serving at"),
        "nothing is served without Tor: {}",
        stopped.stdout
    );
    assert!(
        files_under(&scratch.join("tmp")).is_empty(),
        "Arti's temporary folder is removed after a failed start"
    );
}

#[tokio::test]
async fn sigterm_while_connecting_to_tor_stops_the_host_and_cleans_up() {
    let (host, scratch) = host_on_a_dead_network("10 min");
    host.wait_for(r"\[tor\] connecting to the Tor network")
        .expect("connecting");
    assert!(
        !files_under(&scratch.join("tmp")).is_empty(),
        "Arti has started writing its state"
    );
    let started = std::time::Instant::now();
    let stopped = host.stop().expect("stops");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "took {:?}",
        started.elapsed()
    );
    assert!(stopped.status.success(), "{}", stopped.stderr);
    assert!(
        files_under(&scratch.join("tmp")).is_empty(),
        "Arti's temporary folder is removed after SIGTERM"
    );
}

#[tokio::test]
async fn an_unknown_tor_key_is_a_config_error_with_its_line() {
    let host = TestHost::with_config(
        "[[tab]]\nname = \"a\"\nmode = \"chat\"\n\n[tor]\nsocks_port = 9050\n",
    )
    .expect("start");
    let stopped = host.wait_exit().expect("exits");
    assert_eq!(stopped.status.code(), Some(2), "{}", stopped.stderr);
    assert!(
        stopped
            .stderr
            .contains("onionhost.toml:6: [tor] `socks_port`: unknown field"),
        "{}",
        stopped.stderr
    );
}
