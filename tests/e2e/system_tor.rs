//! `backend = "system"` over the local Tor test network: a C tor of the network, with a
//! control socket and cookie authentication, publishes the host's private chat and share tabs
//! (ADD_ONION); the network's other C tor client reaches them with their keys and is refused
//! without; a tab that stops is removed from tor (DEL_ONION) while the other stays; and when
//! tor goes away, the tabs it published fail, loudly. A system tor that runs as another user
//! (as Debian's tor service does) cannot reach the host's private folder: its tabs listen on
//! 127.0.0.1 ports, said on the console, and are still reached through it; and a receive
//! tab's webhook notice goes out through its SOCKS port to a receiver that only Tor reaches;
//! a tab added at run time (`onionhost tabs add`) is published by that tor and stopped.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use onionhost_tests::host::TestHost;
use onionhost_tests::testnet::{SystemTor, Testnet};
use serde_json::json;

use crate::onion::{
    assert_needs_key, chat_through_tor, join_through_tor, onion_tab, scratch_dirs, scratch_env,
};

/// Starts a host with `backend = "system"` on the tor control port or socket `control` and
/// the `[[tab]]` sections `tabs`; its TMPDIR, XDG_DATA_HOME and HOME are in the returned
/// scratch folder, and XDG_RUNTIME_DIR is unset (so the tabs' sockets would be in TMPDIR).
fn run_on_system_tor(control: &str, tabs: &str) -> (TestHost, PathBuf) {
    run_on_system_tor_with(control, tabs, None)
}

/// [`run_on_system_tor`], with the host's control socket in `runtime` (XDG_RUNTIME_DIR) if
/// given.
fn run_on_system_tor_with(
    control: &str,
    tabs: &str,
    runtime: Option<&std::path::Path>,
) -> (TestHost, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("onionhost.toml");
    std::fs::write(
        &config,
        format!("[tor]\nbackend = \"system\"\ncontrol = {control:?}\n\n{tabs}"),
    )
    .expect("write the config");
    let scratch = scratch_dirs(dir.path());
    let mut env = scratch_env(&scratch);
    let runtime_dir = runtime.map_or_else(String::new, |r| r.to_str().expect("utf-8").to_owned());
    env.push(("XDG_RUNTIME_DIR", runtime_dir));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let config = config.to_str().expect("utf-8").to_owned();
    // No control socket unless asked for: these tests count the host's Unix sockets and
    // private folders, which are the system backend's alone only without it.
    let mut args = vec!["run", "--config", &config];
    if runtime.is_none() {
        args.insert(1, "--no-control");
    }
    let host = TestHost::spawn_in(dir, &args, &env).expect("start");
    (host, scratch)
}

/// How long tor may take to forget a stopped tab's service.
const REMOVAL_DEADLINE: Duration = Duration::from_secs(30);

/// Polls until `tor` hosts `onion` (`want`) or not, with a deadline.
async fn wait_hosted(tor: &SystemTor, onion: &str, want: bool) {
    let deadline = Instant::now() + REMOVAL_DEADLINE;
    loop {
        if tor.hosts(onion).await.expect("ask the system tor") == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the system tor {} {onion} after {REMOVAL_DEADLINE:?}; its log:\n{}",
            if want { "does not host" } else { "still hosts" },
            tor.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn the_system_tor_publishes_private_tabs_removes_a_stopped_one_and_its_loss_fails_the_rest() {
    let net = Testnet::shared().await.expect("local Tor network");
    let mut tor = net.system_tor().await.expect("the system tor");
    let files = tempfile::tempdir().expect("temp dir");
    let shared: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let shared_path = files.path().join("notes.bin");
    std::fs::write(&shared_path, &shared).expect("write the shared file");
    let (host, scratch) = run_on_system_tor(
        tor.control_socket().to_str().expect("utf-8"),
        &format!(
            "[[tab]]\nname = \"room\"\nmode = \"chat\"\n\n\
             [[tab]]\nname = \"files\"\nmode = \"share\"\n[tab.share]\npaths = [{:?}]\n",
            shared_path.to_str().expect("utf-8"),
        ),
    );

    let room = onion_tab(&host, "room", true);
    let share = onion_tab(&host, "files", true);
    let output = host.output();
    assert!(
        output.contains("[tor] using the system's tor through its control socket")
            && output.contains("(SAFECOOKIE authentication)"),
        "{output}"
    );
    assert!(
        !output.contains("127.0.0.1 port instead"),
        "tor runs as this user here: the tabs are served on Unix sockets\n{output}"
    );
    assert!(
        !output.contains("bootstrapping:"),
        "Arti is not started\n{output}"
    );
    assert!(tor.hosts(&room.host).await.expect("ask tor"));
    assert!(tor.hosts(&share.host).await.expect("ask tor"));

    // Private: the address alone is not enough, for either tab.
    assert_needs_key(net, &room.host).await;
    assert_needs_key(net, &share.host).await;

    // With its key, the chat works over WebSockets through tor.
    let members = chat_through_tor(net, &room, "through the system tor").await;

    // The share tab's one download comes through byte for byte; then the tab stops itself
    // (stop after the first download), and its onion service goes from tor.
    net.authorize(&share.host, share.key.as_deref().expect("key"))
        .await
        .expect("authorize");
    let (status, body) = net
        .get(&format!("http://{}/files/notes.bin", share.host))
        .await
        .expect("download through tor");
    assert_eq!(status, 200);
    assert!(body == shared, "the download differs from the shared file");
    host.wait_for(r"\[files\] stopped\n")
        .expect("the share tab stops after its download");
    wait_hosted(&tor, &share.host, false).await;
    assert!(
        tor.hosts(&room.host).await.expect("ask tor"),
        "the other tab's service stays"
    );
    let (_carl, welcome) = join_through_tor(net, &room.host, "carl").await;
    assert_eq!(welcome["members"], json!(["ann", "bo", "carl"]));

    // Tor goes away: the tab it published fails, on the console.
    tor.kill();
    host.wait_for(r"\[tor\] lost the control connection to the system's tor")
        .expect("the host says it lost tor");
    host.wait_for(r"\[room\] the system's tor lost its control connection")
        .expect("the tab says why");
    host.wait_for(r"\[room\] failed: ")
        .expect("the tab is failed");
    drop(members);
    net.deauthorize(&room.host).await.expect("deauthorize");
    net.deauthorize(&share.host).await.expect("deauthorize");
    let stopped = host.wait_exit().expect("the host exits once no tab runs");
    for key in [&room.key, &share.key].into_iter().flatten() {
        assert!(
            !stopped.stderr.contains(key.as_str()),
            "a key reached the logs"
        );
    }
    for sub in ["data", "home"] {
        assert!(
            crate::onion::files_under(&scratch.join(sub)).is_empty(),
            "ephemeral tabs keep nothing in {sub}"
        );
    }
}

/// The console line of a host whose system tor runs as another user.
const ANOTHER_USER: &str = "[tor] the system's tor runs as another user, so tor cannot open a Unix socket in onionhost's private folder: each tab listens on a 127.0.0.1 port instead";

#[tokio::test]
async fn a_system_tor_of_another_user_gets_127_0_0_1_tabs_said_on_the_console_and_reached_through_it()
 {
    let net = Testnet::shared().await.expect("local Tor network");
    let tor = net
        .system_tor_of_another_user()
        .await
        .expect("the system tor of another user");
    let files = tempfile::tempdir().expect("temp dir");
    std::fs::write(files.path().join("notes.txt"), "through a port").expect("write");
    let (host, scratch) = run_on_system_tor(
        &tor.control_port().to_string(),
        &format!(
            "[[tab]]\nname = \"files\"\nmode = \"share\"\n[tab.share]\npaths = [{:?}]\n\
             stop_after_first_download = false\n",
            files.path().join("notes.txt").to_str().expect("utf-8"),
        ),
    );
    let share = onion_tab(&host, "files", true);
    let output = host.output();
    assert!(
        output.contains("[tor] using the system's tor through its control port"),
        "{output}"
    );
    assert!(output.contains(ANOTHER_USER), "{output}");
    assert!(tor.hosts(&share.host).await.expect("ask tor"));

    // No Unix socket: the host listens on none, its private socket folder is gone, and the
    // tab answers on the 127.0.0.1 port it listens on.
    let listening = host.listening().expect("the host's sockets");
    assert!(listening.unix.is_empty(), "{listening:?}");
    let leftovers: Vec<_> = std::fs::read_dir(scratch.join("tmp"))
        .expect("read TMPDIR")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("onionhost-"))
        .map(|e| e.path())
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let [port] = listening.tcp[..] else {
        panic!("one TCP listener for the one tab: {listening:?}");
    };
    assert!(port.ip().is_loopback(), "{port}");
    let direct = reqwest::get(format!("http://{port}/files/notes.txt"))
        .await
        .expect("the tab's port answers");
    assert_eq!(direct.status(), 200);

    // Through the test network, with the key, as a visitor.
    net.authorize(&share.host, share.key.as_deref().expect("key"))
        .await
        .expect("authorize");
    let (status, body) = net
        .get(&format!("http://{}/files/notes.txt", share.host))
        .await
        .expect("download through tor");
    assert_eq!(status, 200);
    assert_eq!(body, b"through a port");
    net.deauthorize(&share.host).await.expect("deauthorize");
    let stopped = host.stop().expect("stop");
    assert!(
        !stopped.stderr.contains(share.key.as_deref().expect("key")),
        "a key reached the logs"
    );
}

/// With the system tor, a receive tab's notice goes out through that tor's SOCKS port: the
/// receiver is only reachable as an onion service, and the host starts no Arti of its own.
#[tokio::test]
async fn a_receive_tab_on_the_system_tor_sends_its_webhook_notice_through_its_socks_port() {
    let net = Testnet::shared().await.expect("local Tor network");
    let tor = net
        .system_tor_of_another_user()
        .await
        .expect("the system tor of another user");
    let hook = crate::receive::drop::OnionHook::start(net).await;
    let inbox = tempfile::tempdir().expect("temp dir");
    let (host, _scratch) = run_on_system_tor(
        &tor.control_port().to_string(),
        &format!(
            "[[tab]]\nname = \"drop\"\nmode = \"receive\"\npublic = true\n[tab.receive]\n\
             dir = {:?}\nmin_free_space = 0\nwebhook_url = {:?}\n",
            inbox.path().to_str().expect("utf-8"),
            hook.url()
        ),
    );
    let tab = onion_tab(&host, "drop", false);
    crate::receive::drop::upload_and_expect_notice(net, &host, &tab.host, &hook).await;
    let output = host.output();
    assert!(
        !output.contains("bootstrapping:"),
        "Arti is not started\n{output}"
    );
    host.stop().expect("stop");
}

/// Tabs at run time on the system's tor: `onionhost tabs add` gets a tab published by that tor
/// (ADD_ONION) and served through it while the config's tab goes on; `tabs stop` removes it
/// from tor (DEL_ONION).
#[tokio::test]
async fn a_tab_added_at_run_time_is_published_by_the_system_tor_and_stopped() {
    use std::os::unix::fs::PermissionsExt as _;
    let net = Testnet::shared().await.expect("local Tor network");
    let tor = net.system_tor().await.expect("the system tor");
    let runtime = tempfile::tempdir().expect("temp dir");
    std::fs::set_permissions(runtime.path(), std::fs::Permissions::from_mode(0o700))
        .expect("chmod");
    let (host, _scratch) = run_on_system_tor_with(
        tor.control_socket().to_str().expect("utf-8"),
        "[[tab]]\nname = \"room\"\nmode = \"chat\"\npublic = true\n",
        Some(runtime.path()),
    );
    let room = onion_tab(&host, "room", false);
    let files = tempfile::tempdir().expect("temp dir");
    let shared = files.path().join("notes.txt");
    std::fs::write(&shared, "through the system tor").expect("write");
    let rt = runtime.path().to_owned();
    let tabs = move |args: Vec<String>| {
        let rt = rt.clone();
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(onionhost_tests::host::onionhost_bin())
                .arg("tabs")
                .args(args)
                .env("XDG_RUNTIME_DIR", rt)
                .output()
                .expect("run onionhost tabs")
        })
    };
    let shared = shared.to_str().expect("utf-8");
    let add = [
        "add",
        "--mode",
        "share",
        "--name",
        "files",
        "--public",
        "--keep-sharing",
        shared,
    ];
    // It waits until the tab serves: published by the system tor.
    let added = tabs(add.map(str::to_owned).to_vec())
        .await
        .expect("tabs add");
    let said = String::from_utf8_lossy(&added.stdout).into_owned();
    assert!(
        added.status.success(),
        "{said}{}\n{}",
        String::from_utf8_lossy(&added.stderr),
        host.output()
    );
    let share = onion_tab(&host, "files", false);
    assert!(
        said.contains(&format!("address: http://{}/", share.host)),
        "{said}"
    );
    assert!(tor.hosts(&share.host).await.expect("ask tor"));
    let (status, body) = net
        .get(&format!("http://{}/files/notes.txt", share.host))
        .await
        .expect("download through tor");
    assert_eq!(
        (status, body.as_slice()),
        (200, b"through the system tor".as_slice())
    );

    let stopped = tabs(vec!["stop".into(), "files".into()])
        .await
        .expect("tabs stop");
    assert!(stopped.status.success(), "{stopped:?}");
    assert_eq!(
        String::from_utf8_lossy(&stopped.stdout),
        "files: stopped: asked with `onionhost tabs stop`\n"
    );
    wait_hosted(&tor, &share.host, false).await;
    assert!(
        tor.hosts(&room.host).await.expect("ask tor"),
        "the config's tab stays"
    );
    host.stop().expect("stop");
}
