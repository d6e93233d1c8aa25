//! Bridges over the local Tor test network: a host given only the network's obfs4 bridge line
//! publishes a tab that the network's C tor client reaches, while nftables refuses its
//! connections to every relay and authority; the same filter keeps a host without bridges
//! from connecting at all, and says so.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use onionhost_tests::firewall::{Firewall, test_uid};
use onionhost_tests::host::TestHost;
use onionhost_tests::testnet::Testnet;

/// A folder a host running as `uid` can use: the returned temporary folder (readable by all,
/// where the host starts) holds `home`, owned by `uid`, with `tmp` and `data` inside.
fn user_dir(uid: u32) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
        .expect("chmod the host's folder");
    let home = dir.path().join("home");
    for sub in ["", "tmp", "data"] {
        let path = home.join(sub);
        std::fs::create_dir_all(&path).expect("create the host's home");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700)).expect("chmod");
        give(&path, uid);
    }
    (dir, home)
}

/// Makes `uid` own `path`.
fn give(path: &Path, uid: u32) {
    std::os::unix::fs::chown(path, Some(uid), Some(uid)).expect("chown");
}

/// Writes `text` to `home/name`, owned by `uid`; its path as text.
fn write_for(uid: u32, home: &Path, name: &str, text: &str) -> String {
    let path = home.join(name);
    std::fs::write(&path, text).expect("write a file for the host");
    give(&path, uid);
    path.to_str().expect("utf-8").to_owned()
}

fn env_of(home: &Path) -> Vec<(&'static str, String)> {
    let path = |sub: &str| home.join(sub).to_str().expect("utf-8").to_owned();
    vec![
        ("HOME", path("")),
        ("TMPDIR", path("tmp")),
        ("XDG_DATA_HOME", path("data")),
    ]
}

fn spawn(dir: tempfile::TempDir, home: &Path, args: &[&str], uid: u32) -> TestHost {
    let env = env_of(home);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    TestHost::spawn_as(dir, args, &env, uid).expect("start onionhost as the test user")
}

/// The host's whole way into Tor is the bridge's obfs4 port: every port of the network's
/// relays, authorities and client, and the bridge's own OR port, refuse its connections;
/// it still publishes a tab that the network's client reaches, it never even tried another
/// port, and it did connect to the obfs4 port. Without bridges, the same filter stops the
/// host from connecting, and the console says so and suggests bridges.
#[tokio::test]
async fn a_host_behind_a_firewall_publishes_through_an_obfs4_bridge_only() {
    let started = std::time::Instant::now();
    let net = Testnet::shared().await.expect("local Tor network");
    let bridge = net
        .obfs4_bridge()
        .await
        .expect("the network's obfs4 bridge");
    eprintln!("obfs4 bridge started in {:?}", bridge.started_in());
    let mut refused = net.ports().to_vec();
    refused.push(bridge.or_port());
    let network = std::fs::read_to_string(net.network_file()).expect("read the network file");

    // The host that has no bridge: it must fail to connect, or the filter proves nothing.
    let direct_uid = test_uid();
    let direct_wall =
        Firewall::new(direct_uid, &refused, &[bridge.obfs4_port()]).expect("firewall");
    let (dir, home) = user_dir(direct_uid);
    let config = write_for(
        direct_uid,
        &home,
        "onionhost.toml",
        &format!(
            "[[tab]]\nname = \"direct\"\nmode = \"chat\"\npublic = true\n{}bootstrap_timeout = \"35s\"\n",
            net.tor_section()
        ),
    );
    let direct = spawn(dir, &home, &["run", "--config", &config], direct_uid);

    let bridged_uid = test_uid();
    let bridged_wall =
        Firewall::new(bridged_uid, &refused, &[bridge.obfs4_port()]).expect("firewall");
    let (dir, home) = user_dir(bridged_uid);
    let network = write_for(bridged_uid, &home, "network.toml", &network);
    let host = spawn(
        dir,
        &home,
        &[
            "chat",
            "--public",
            "--tor-network",
            &network,
            "--bridge",
            bridge.line(),
        ],
        bridged_uid,
    );

    let caps = host
        .wait_for(r"\[chat\] serving at http://([a-z2-7]{56}\.onion)/\n")
        .expect("the bridged host publishes its tab");
    let onion = caps[1].clone();
    eprintln!(
        "the bridged host published its tab after {:?}",
        started.elapsed()
    );
    let (status, body) = net
        .get(&format!("http://{onion}/"))
        .await
        .expect("the network's client reaches the tab");
    assert_eq!(status, 200);
    assert!(
        String::from_utf8_lossy(&body).contains("onionhost chat"),
        "not the chat page"
    );
    let output = host.output();
    assert!(
        output.contains(
            "[tor] bootstrapping: 100%, connected to the Tor network through 1 bridge (obfs4)"
        ),
        "{output}"
    );
    assert_eq!(
        bridged_wall.refused().expect("counter"),
        0,
        "the bridged host tried to reach a relay or authority directly:\n{output}"
    );
    assert!(
        bridged_wall.watched().expect("counter") > 0,
        "the bridged host never connected to the obfs4 port"
    );
    host.stop().expect("stop the bridged host");
    eprintln!(
        "the bridged host's tab was reached after {:?}",
        started.elapsed()
    );

    let stopped = direct
        .wait_exit()
        .expect("the host without bridges gives up");
    assert!(!stopped.status.success(), "{}", stopped.stderr);
    // Arti itself calls a network blocked only after a minute of failures; the console says
    // at 30 s that it is stuck, and suggests bridges, and so does the final error.
    assert!(
        stopped.stdout.contains(
            "[tor] still connecting after 30s, at 0%; if this network blocks Tor, connect through bridges: `--bridge LINE`, or `bridges` in `[tor]`"
        ),
        "{}",
        stopped.stdout
    );
    let error = stopped
        .stderr
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("no error line:\n{}", stopped.stderr));
    assert!(
        error.contains("could not connect to the Tor network within 35s")
            && error.contains("connect through bridges: `--bridge LINE`"),
        "{error}"
    );
    assert!(
        direct_wall.refused().expect("counter") > 0,
        "the filter refused nothing: it does not bite"
    );
    assert_eq!(direct_wall.watched().expect("counter"), 0);
}

/// With bridges that cannot work, bootstrap fails in a way that names the bridges, in one
/// line, and never falls back to the relays: a bridge whose port is closed, and a transport
/// binary that exits at once.
#[tokio::test]
async fn failing_bridges_are_named_in_one_line() {
    let net = Testnet::shared().await.expect("local Tor network");
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let line = format!(
        "obfs4 127.0.0.1:{closed} 316E643333645F6D79216558614D3931657A5F5F cert=YXJlIGZyZXF1ZW50bHkgZnVsbCBvZiBsaXR0bGUgbWVzc2FnZXMgeW91IGNhbiBmaW5kLg iat-mode=0"
    );
    let config = |extra: &str| {
        format!(
            "[[tab]]\nname = \"a\"\nmode = \"chat\"\npublic = true\n{}bootstrap_timeout = \"35s\"\nbridges = [\"{line}\"]\n{extra}",
            net.tor_section()
        )
    };
    let run = |text: String| {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("onionhost.toml");
        std::fs::write(&path, text).expect("write the config");
        let path = path.to_str().expect("utf-8").to_owned();
        TestHost::spawn_in(dir, &["run", "--config", &path], &[]).expect("start a host")
    };
    let down = run(config(""));
    let broken = run(config(
        "transports = [{ protocols = [\"obfs4\"], path = \"/bin/false\" }]\n",
    ));
    for (what, host) in [
        ("a closed bridge port", down),
        ("a transport that exits", broken),
    ] {
        let stopped = host.wait_exit().expect("the host gives up");
        assert!(!stopped.status.success(), "{what}: {}", stopped.stderr);
        assert!(
            !stopped.stdout.contains("serving at"),
            "{what}: {}",
            stopped.stdout
        );
        let tor_lines: Vec<&str> = stopped
            .stdout
            .lines()
            .filter(|l| l.starts_with("[tor] ") && !l.starts_with("[tor] bootstrapping"))
            .collect();
        eprintln!(
            "{what}:\n{}\n{}",
            tor_lines.join("\n"),
            stopped
                .stderr
                .lines()
                .filter(|l| !l.contains("DEBUG"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        assert!(
            tor_lines
                .iter()
                .any(|l| l.contains("through 1 bridge (obfs4)")
                    && l.contains("the bridges may be down")),
            "{what}: {}",
            stopped.stdout
        );
        // A transport that fails is named in one line of its own (Arti retries it, the
        // console shows it once); a bridge that is down is not a transport failure.
        let transport_lines = tor_lines
            .iter()
            .filter(|l| l.starts_with("[tor] a pluggable transport failed: "))
            .count();
        let expected = usize::from(what == "a transport that exits");
        assert_eq!(transport_lines, expected, "{what}: {}", stopped.stdout);
    }
}
