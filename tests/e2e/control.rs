//! The control socket and `onionhost tabs`, against the real binary: each host gets its own
//! `XDG_RUNTIME_DIR`, so that the tests find only their own hosts.

use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::Path;
use std::process::{Command, Output};

use onionhost_tests::host::{TestHost, onionhost_bin, page_text};

/// `onionhost tabs ARGS` with `runtime` as XDG_RUNTIME_DIR.
fn tabs(runtime: &Path, args: &[&str]) -> Output {
    Command::new(onionhost_bin())
        .arg("tabs")
        .args(args)
        .env("XDG_RUNTIME_DIR", runtime)
        .output()
        .expect("run onionhost tabs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A runtime folder of the test's, 0700 as a real one is.
fn runtime_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).expect("chmod");
    dir
}

/// The control socket of `host`, whose XDG_RUNTIME_DIR is `runtime`.
fn socket_of(runtime: &Path, host: &TestHost) -> std::path::PathBuf {
    runtime
        .join("onionhost")
        .join(format!("{}.sock", host.pid()))
}

/// A connection to the control socket at `socket` (reads time out after 30 s), and a line
/// reader on it.
fn connect_to(
    socket: &Path,
) -> (
    std::os::unix::net::UnixStream,
    std::io::BufReader<std::os::unix::net::UnixStream>,
) {
    let stream = std::os::unix::net::UnixStream::connect(socket).expect("connect");
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .expect("timeout");
    let reader = std::io::BufReader::new(stream.try_clone().expect("clone"));
    (stream, reader)
}

/// A host of one chat tab (`chat`) with `runtime` as XDG_RUNTIME_DIR.
fn chat_host(runtime: &Path) -> TestHost {
    let dir = tempfile::tempdir().expect("temp dir");
    TestHost::spawn_in(
        dir,
        &["chat", "--local-only"],
        &[("XDG_RUNTIME_DIR", runtime.to_str().expect("utf-8"))],
    )
    .expect("start")
}

#[tokio::test]
async fn tabs_are_added_listed_shown_and_stopped_while_the_others_serve() {
    let runtime = runtime_dir();
    let rt = runtime.path();
    let host = chat_host(rt);
    let chat = host.url("chat").expect("chat serves");

    // The folder and the socket are the user's only.
    let folder = rt.join("onionhost");
    let meta = std::fs::symlink_metadata(&folder).expect("the control folder");
    assert_eq!(meta.mode() & 0o777, 0o700);
    let socket = folder.join(format!("{}.sock", host.pid()));
    let meta = std::fs::symlink_metadata(&socket).expect("the control socket");
    assert_eq!(meta.mode() & 0o777, 0o600);

    let shared = host.dir.path().join("shared.txt");
    std::fs::write(&shared, "shared bytes").expect("write");
    let added = tabs(
        rt,
        &[
            "add",
            "--mode",
            "share",
            "--name",
            "files",
            "--keep-sharing",
            shared.to_str().expect("utf-8"),
        ],
    );
    assert!(added.status.success(), "{}", stderr(&added));
    assert!(
        stdout(&added).starts_with("files: serving\naddress: http://127.0.0.1:"),
        "{}",
        stdout(&added)
    );
    let files = host.url("files").expect("files serves");
    assert!(
        page_text(&format!("{files}files/shared.txt"))
            .await
            .contains("shared bytes")
    );

    // A bad tab is refused with the [[tab]] messages, and nothing else is touched.
    let bad = tabs(
        rt,
        &[
            "add",
            "--mode",
            "share",
            "--name",
            "no good",
            "--port",
            "0",
            "/nonexistent",
        ],
    );
    assert_eq!(bad.status.code(), Some(2), "{}", stderr(&bad));
    assert!(
        stderr(&bad).contains("tab name \"no good\" is not allowed"),
        "{}",
        stderr(&bad)
    );
    assert!(
        stderr(&bad).contains("port 0 is not allowed"),
        "{}",
        stderr(&bad)
    );
    let taken = tabs(rt, &["add", "--mode", "chat", "--name", "chat"]);
    assert_eq!(taken.status.code(), Some(2));
    assert!(
        stderr(&taken).contains("a tab named \"chat\" is running already"),
        "{}",
        stderr(&taken)
    );

    // A tab that fails to start (its port is taken) fails alone.
    let port = files
        .trim_end_matches('/')
        .rsplit(':')
        .next()
        .expect("port")
        .to_owned();
    let failing = tabs(
        rt,
        &["add", "--mode", "chat", "--name", "clash", "--port", &port],
    );
    assert_eq!(failing.status.code(), Some(1), "{}", stdout(&failing));
    assert!(
        stderr(&failing).contains("tab \"clash\" failed: cannot listen on 127.0.0.1:"),
        "{}",
        stderr(&failing)
    );
    assert!(page_text(&chat).await.contains("<html"));
    assert!(
        page_text(&format!("{files}files/shared.txt"))
            .await
            .contains("shared bytes")
    );

    let list = tabs(rt, &["list"]);
    let text = stdout(&list);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert!(lines[0].starts_with("NAME"), "{text}");
    assert!(
        lines[1].starts_with("chat ") && lines[1].contains("serving") && lines[1].ends_with(&chat),
        "{text}"
    );
    assert!(
        lines[2].starts_with("files ")
            && lines[2].contains(" share ")
            && lines[2].ends_with(&files),
        "{text}"
    );
    assert!(
        lines[3].starts_with("clash ") && lines[3].contains("failed: cannot listen"),
        "{text}"
    );
    let json = tabs(rt, &["list", "--json"]);
    let objects: Vec<serde_json::Value> = stdout(&json)
        .lines()
        .map(|line| serde_json::from_str(line).expect("one JSON object a line"))
        .collect();
    assert_eq!(objects.len(), 3);
    assert_eq!(objects[1]["name"], "files");
    assert_eq!(objects[1]["state"], "serving");
    assert_eq!(objects[1]["added"], true);
    assert_eq!(objects[1]["address"], files.as_str());

    let show = tabs(rt, &["show", "files", "--qr"]);
    assert!(show.status.success());
    assert!(
        stdout(&show).contains(&format!("address: {files}\naddress as a QR code:\n")),
        "{}",
        stdout(&show)
    );

    // A reader that has gone (`| head -1`) ends the command quietly, with success: the pipe
    // is closed before the command starts, so its first line already meets it.
    for args in [
        &["show", "files", "--qr"][..],
        &["list"],
        &["list", "--json"],
    ] {
        let (reader, writer) = std::io::pipe().expect("pipe");
        drop(reader);
        let closed = Command::new(onionhost_bin())
            .arg("tabs")
            .args(args)
            .env("XDG_RUNTIME_DIR", rt)
            .stdout(writer)
            .output()
            .expect("run onionhost tabs");
        assert!(closed.status.success(), "{args:?}: {}", stderr(&closed));
        assert_eq!(stderr(&closed), "", "{args:?}");
    }

    let stop = tabs(rt, &["stop", "files"]);
    assert!(stop.status.success(), "{}", stderr(&stop));
    assert_eq!(
        stdout(&stop),
        "files: stopped: asked with `onionhost tabs stop`\n"
    );
    host.wait_for(r"\[files\] stopped")
        .expect("the console says so");
    assert!(page_text(&chat).await.contains("<html"));
    let again = tabs(rt, &["stop", "files"]);
    assert!(!again.status.success());
    assert!(
        stderr(&again).contains("no tab named \"files\" is running; the running tabs are \"chat\""),
        "{}",
        stderr(&again)
    );

    // The config is untouched (there is none), and the socket goes with the host.
    host.stop().expect("stops");
    assert!(!socket.exists(), "the control socket is removed on exit");
}

/// `tabs add --set KEY=VALUE` reaches every key a `[[tab]]` of the mode takes, the mode's own
/// settings (nested ones too) and the tab's, and a bad one is refused with the config's own
/// message while nothing else is touched.
#[tokio::test]
async fn tabs_add_sets_any_key_of_the_tab_as_the_config_does() {
    let runtime = runtime_dir();
    let rt = runtime.path();
    // A host with a config file, which tabs added at run time never change.
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("onionhost.toml");
    let config_text = "# the user's own file\n[[tab]]\nname = \"chat\"\nmode = \"chat\"\n";
    std::fs::write(&config, config_text).expect("write the config");
    let config_arg = config.to_str().expect("utf-8").to_owned();
    let host = TestHost::spawn_in(
        dir,
        &["run", "--local-only", "--config", &config_arg],
        &[("XDG_RUNTIME_DIR", rt.to_str().expect("utf-8"))],
    )
    .expect("start");
    let chat = host.url("chat").expect("chat serves");
    let drop_dir = host.dir.path().join("drop");

    let receive = tabs(
        rt,
        &[
            "add",
            "--mode",
            "receive",
            "--name",
            "drop",
            drop_dir.to_str().expect("utf-8"),
            "--set",
            "receive.max_upload_size=3 MiB",
            "--set",
            "receive.max_files_per_upload=7",
            "--set",
            "receive.disable_text=true",
            "--set",
            "proof_of_work=false",
        ],
    );
    assert!(receive.status.success(), "{}", stderr(&receive));
    let drop_url = host.url("drop").expect("drop serves");
    let page = page_text(&drop_url).await;
    assert!(
        page.contains("at most 7 files and 3 MiB per upload"),
        "{page}"
    );
    assert!(!page.contains("<textarea"), "disable_text: {page}");
    assert!(drop_dir.is_dir(), "the folder for uploads is made");

    let room = tabs(
        rt,
        &[
            "add",
            "--mode",
            "chat",
            "--name",
            "room",
            "--set",
            "chat.title=Our room",
            "--set",
            "chat.rate_limit.messages_per_minute=30",
        ],
    );
    assert!(room.status.success(), "{}", stderr(&room));
    let room_url = host.url("room").expect("room serves");
    let page = page_text(&room_url).await;
    assert!(page.contains("<title>Our room"), "{page}");

    // Refused, each with the config's own message, before anything starts.
    let refusals: [(&[&str], &str); 5] = [
        (
            &["--set", "colour=red"],
            "unknown key `colour` in a `chat` tab: the tab's keys are name, mode,",
        ),
        (
            &["--set", "chat.rate_limit.colour=1"],
            "tab \"bad\", `chat.rate_limit.colour`: unknown field `colour`",
        ),
        (
            &["--set", "chat.max_members=many"],
            "tab \"bad\", `chat.max_members`: invalid type: string \"many\"",
        ),
        (
            &["--set", "intro_rate_per_second=0"],
            "`intro_rate_per_second` must be 1 to 100000",
        ),
        (
            &["--set", "authorized_clients=[\"nope\"]"],
            "`authorized_clients[0]` is not an x25519 public key",
        ),
    ];
    for (settings, message) in refusals {
        let mut args = vec!["add", "--mode", "chat", "--name", "bad"];
        args.extend(settings);
        let refused = tabs(rt, &args);
        assert_eq!(
            refused.status.code(),
            Some(2),
            "{settings:?}: {}",
            stderr(&refused)
        );
        assert!(
            stderr(&refused).contains(message),
            "{settings:?}: {}",
            stderr(&refused)
        );
    }
    let twice = tabs(
        rt,
        &[
            "add",
            "--mode",
            "chat",
            "--name",
            "bad",
            "--title",
            "A",
            "--set",
            "chat.title=B",
        ],
    );
    assert_eq!(twice.status.code(), Some(2));
    assert!(
        stderr(&twice).contains("`chat.title` is set twice"),
        "{}",
        stderr(&twice)
    );
    let no_key = tabs(
        rt,
        &["add", "--mode", "chat", "--name", "bad", "--set", "title"],
    );
    assert_eq!(no_key.status.code(), Some(2));
    assert!(
        stderr(&no_key).contains("write KEY=VALUE"),
        "{}",
        stderr(&no_key)
    );

    // Nothing else was touched: the same three tabs serve, and no `bad` tab was made.
    let list = tabs(rt, &["list", "--json"]);
    let names: Vec<String> = stdout(&list)
        .lines()
        .map(|line| {
            let tab: serde_json::Value = serde_json::from_str(line).expect("JSON");
            assert_eq!(tab["state"], "serving", "{tab}");
            tab["name"].as_str().expect("a name").to_owned()
        })
        .collect();
    assert_eq!(names, ["chat", "drop", "room"]);
    assert!(page_text(&chat).await.contains("<html"));
    assert!(page_text(&drop_url).await.contains("at most 7 files"));
    assert_eq!(
        std::fs::read_to_string(&config).expect("the config"),
        config_text,
        "the config file is never changed"
    );
    host.stop().expect("stops");
}

/// `--set` reaches a plugin mode's keys as it does a built-in mode's: the plugin checks them,
/// with its own messages.
#[tokio::test]
async fn tabs_add_sets_a_plugin_modes_keys() {
    let runtime = runtime_dir();
    let rt = runtime.path();
    let host = chat_host(rt);
    host.url("chat").expect("chat serves");
    let plugin = onionhost_tests::plugins::pastebin()
        .to_str()
        .expect("utf-8");
    let add = |name: &str, settings: &[&str]| {
        let mut args = vec![
            "add", "--mode", "pastebin", "--plugin", plugin, "--name", name,
        ];
        for setting in settings {
            args.extend(["--set", setting]);
        }
        tabs(rt, &args)
    };
    let added = add(
        "paste",
        &[
            "pastebin.title=Our pastes",
            "pastebin.max_paste_bytes=1 KiB",
        ],
    );
    assert!(added.status.success(), "{}", stderr(&added));
    let page = page_text(&host.url("paste").expect("paste serves")).await;
    assert!(page.contains("<title>Our pastes"), "{page}");
    assert!(page.contains("maxlength=\"1024\""), "{page}");

    let refused = add("bad", &["pastebin.max_paste_bytes=2 MiB"]);
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("tab \"bad\", `pastebin.max_paste_bytes`:"),
        "{}",
        stderr(&refused)
    );
    let unknown = add("bad", &["pastebin.colour=red"]);
    assert_eq!(unknown.status.code(), Some(2), "{}", stderr(&unknown));
    assert!(
        stderr(&unknown).contains("`pastebin.colour`: unknown field `colour`"),
        "{}",
        stderr(&unknown)
    );
    let list = tabs(rt, &["list", "--json"]);
    assert_eq!(stdout(&list).lines().count(), 2, "{}", stdout(&list));
    host.stop().expect("stops");
}

/// The config's tabs are listed while Tor connects, not only once it has: here it never does
/// (the one bridge's port is closed), and `tabs list` shows them starting, and why.
#[test]
fn the_config_tabs_are_listed_while_tor_connects() {
    let runtime = runtime_dir();
    let rt = runtime.path();
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("onionhost.toml");
    std::fs::write(
        &config,
        format!(
            "[[tab]]\nname = \"room\"\nmode = \"chat\"\n\n[[tab]]\nname = \"site\"\nmode = \"chat\"\npublic = true\n\n\
             [tor]\nbridges = [\"127.0.0.1:{closed} 316E643333645F6D79216558614D3931657A5F5F\"]\n"
        ),
    )
    .expect("write the config");
    let config = config.to_str().expect("utf-8").to_owned();
    let host = TestHost::spawn_in(
        dir,
        &["run", "--config", &config],
        &[("XDG_RUNTIME_DIR", rt.to_str().expect("utf-8"))],
    )
    .expect("start");
    // The control socket opens before the host connects to Tor.
    let deadline = std::time::Instant::now() + onionhost_tests::host::DEADLINE;
    let list = loop {
        let list = tabs(rt, &["list", "--json"]);
        if list.status.success() {
            break list;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no answer: {}\n{}",
            stderr(&list),
            host.output()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let rows: Vec<serde_json::Value> = stdout(&list)
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect();
    assert_eq!(rows.len(), 2, "{}", stdout(&list));
    for (row, (name, private)) in rows.iter().zip([("room", true), ("site", false)]) {
        assert_eq!(row["name"], name, "{row}");
        assert_eq!(row["mode"], "chat", "{row}");
        assert_eq!(row["state"], "starting", "{row}");
        assert_eq!(row["why"], "connecting to Tor", "{row}");
        assert_eq!(row["private"], private, "{row}");
        assert_eq!(row["address"], serde_json::Value::Null, "{row}");
    }
    let stopped = host.stop().expect("stops");
    assert!(stopped.status.success(), "{}", stopped.stderr);
}

#[test]
fn with_no_host_or_several_the_command_says_so() {
    let runtime = runtime_dir();
    let rt = runtime.path();
    let none = tabs(rt, &["list"]);
    assert_eq!(none.status.code(), Some(1));
    assert!(
        stderr(&none).contains("no onionhost is running for this user"),
        "{}",
        stderr(&none)
    );
    // A tab's bad arguments are a usage error, said before any host is looked for.
    let usage = tabs(rt, &["add", "--mode", "receive", "--name", "r", "/a", "/b"]);
    assert_eq!(usage.status.code(), Some(2));
    assert_eq!(stderr(&usage), "error: a receive tab takes one folder\n");

    let one = chat_host(rt);
    let two = chat_host(rt);
    one.url("chat").expect("serves");
    two.url("chat").expect("serves");
    let several = tabs(rt, &["list"]);
    assert_eq!(several.status.code(), Some(1));
    let why = stderr(&several);
    assert!(
        why.contains("several onionhost hosts are running; choose one with --control PATH"),
        "{why}"
    );
    for host in [&one, &two] {
        assert!(why.contains(&format!("{}.sock", host.pid())), "{why}");
    }
    let path = rt.join("onionhost").join(format!("{}.sock", two.pid()));
    let picked = tabs(
        rt,
        &["--control", path.to_str().expect("utf-8"), "list", "--json"],
    );
    assert!(picked.status.success(), "{}", stderr(&picked));
    assert!(stdout(&picked).contains(r#""name":"chat""#));
}

#[test]
fn a_control_folder_that_is_not_private_is_refused() {
    let runtime = runtime_dir();
    let folder = runtime.path().join("onionhost");
    std::fs::create_dir(&folder).expect("mkdir");
    std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let host = chat_host(runtime.path());
    let stopped = host.wait_exit().expect("the host refuses to start");
    assert_eq!(stopped.status.code(), Some(1));
    assert!(
        stopped
            .stderr
            .contains("is not a private folder of this user"),
        "{}",
        stopped.stderr
    );
    assert!(
        stopped.stderr.contains("with mode 755"),
        "{}",
        stopped.stderr
    );
}

/// Another user cannot use the socket even where the file would let them (SO_PEERCRED).
#[test]
fn another_user_is_refused() {
    assert!(
        nix::unistd::getuid().is_root(),
        "this test runs as root, to connect as another user (nobody)"
    );
    let open = tempfile::tempdir().expect("temp dir");
    std::fs::set_permissions(open.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let socket = open.path().join("control.sock");
    let dir = tempfile::tempdir().expect("temp dir");
    let host = TestHost::spawn_in(
        dir,
        &[
            "chat",
            "--local-only",
            "--control",
            socket.to_str().expect("utf-8"),
        ],
        &[],
    )
    .expect("start");
    host.url("chat").expect("serves");
    assert_eq!(
        std::fs::metadata(&socket).expect("socket").mode() & 0o777,
        0o600
    );
    // As if the user had opened the file to everyone.
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o666)).expect("chmod");
    use std::os::unix::process::CommandExt as _;
    let nobody = 65534;
    let output = Command::new(onionhost_bin())
        .args(["tabs", "--control", socket.to_str().expect("utf-8"), "list"])
        .uid(nobody)
        .gid(nobody)
        .output()
        .expect("run as nobody");
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains(
            "the host refused: this control socket is for the user who runs the host only"
        ),
        "{}",
        stderr(&output)
    );
    let mine = Command::new(onionhost_bin())
        .args(["tabs", "--control", socket.to_str().expect("utf-8"), "list"])
        .output()
        .expect("run");
    assert!(mine.status.success(), "{}", stderr(&mine));
}

/// The socket's bounds: at most 8 connections at once (the 9th is told why and closed), and a
/// request line longer than 256 KiB is refused and its connection closed, while the host and
/// the other connections keep working.
#[test]
fn the_socket_bounds_connections_and_line_length() {
    use std::io::{BufRead as _, BufReader, Write as _};
    use std::os::unix::net::UnixStream;
    let runtime = runtime_dir();
    let host = chat_host(runtime.path());
    host.url("chat").expect("chat serves");
    let socket = socket_of(runtime.path(), &host);
    let connect = || connect_to(&socket);
    let line = |reader: &mut BufReader<UnixStream>| {
        let mut line = String::new();
        reader.read_line(&mut line).expect("read a line");
        line
    };
    // Linux reports a peer that closed with unread data as a reset rather than an end.
    let closed = |reader: &mut BufReader<UnixStream>| {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) => true,
            Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
            Ok(_) => false,
        }
    };
    let mut open = Vec::new();
    for _ in 0..8 {
        let (stream, mut reader) = connect();
        let hello = line(&mut reader);
        assert!(hello.starts_with("{\"onionhost\":1"), "{hello}");
        open.push((stream, reader));
    }
    let (_ninth, mut reader) = connect();
    let refused = line(&mut reader);
    assert!(refused.contains("\"ok\":false"), "{refused}");
    assert!(
        refused.contains("too many control connections"),
        "{refused}"
    );
    assert!(closed(&mut reader), "the ninth is closed");

    // A line over 256 KiB: refused, and that connection closed.
    let (stream, reader) = &mut open[0];
    let long = format!(
        "{{\"request\":\"show\",\"name\":\"{}\"}}\n",
        "a".repeat(256 * 1024)
    );
    // The host may close before reading it all.
    let _ = stream.write_all(long.as_bytes());
    let refused = line(reader);
    assert!(refused.contains("longer than 262144 bytes"), "{refused}");
    assert!(closed(reader), "closed after a too-long line");
    open.remove(0);

    // The others still answer, and a new connection fits in the freed slot.
    let (stream, reader) = &mut open[0];
    stream.write_all(b"{\"request\":\"list\"}\n").expect("send");
    let listed = line(reader);
    assert!(listed.contains("\"ok\":true"), "{listed}");
    assert!(listed.contains("\"chat\""), "{listed}");
    // The freed slot is given back as that connection's task ends: poll with a deadline.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (_new, mut reader) = connect();
        let first = line(&mut reader);
        if first.starts_with("{\"onionhost\":1") {
            break;
        }
        assert!(first.contains("too many control connections"), "{first}");
        assert!(
            std::time::Instant::now() < deadline,
            "the slot was not freed"
        );
        std::thread::yield_now();
    }
    host.url("chat").expect("chat still serves");
}

/// The request rate: a connection may send a burst of 60 requests, then one every 100 ms (600
/// a minute). A request past that is answered with the documented refusal, in its turn, and the
/// connection stays open; other connections have their own limit; once the limiter has
/// refilled, the same connection is answered again. Regression: requests sent before the
/// previous answer (pipelined, as here) used to close the connection, because the watch for a
/// client going away took the next request line for its going.
#[test]
fn requests_past_the_burst_are_refused_and_answered_again_later() {
    use std::io::{BufRead as _, BufReader, Write as _};
    use std::os::unix::net::UnixStream;
    use std::time::{Duration, Instant};
    const BURST: usize = 60;
    const SENT: usize = 100;
    let runtime = runtime_dir();
    let host = chat_host(runtime.path());
    host.url("chat").expect("chat serves");
    let socket = socket_of(runtime.path(), &host);
    let connect = || {
        let (stream, mut reader) = connect_to(&socket);
        let mut hello = String::new();
        reader.read_line(&mut hello).expect("the hello");
        assert!(hello.starts_with("{\"onionhost\":1"), "{hello}");
        (stream, reader)
    };
    let answer = |reader: &mut BufReader<UnixStream>| -> serde_json::Value {
        let mut line = String::new();
        reader.read_line(&mut line).expect("read an answer");
        serde_json::from_str(&line).unwrap_or_else(|err| panic!("{err}: {line:?}"))
    };
    let refused = |answer: &serde_json::Value| {
        answer["ok"] == false && answer["error"] == "too many requests: try again in 1 s"
    };

    // Every request of the burst at once, in one write: each gets its answer, in order.
    let (mut stream, mut reader) = connect();
    let started = Instant::now();
    stream
        .write_all("{\"request\":\"list\"}\n".repeat(SENT).as_bytes())
        .expect("send");
    let answers: Vec<serde_json::Value> = (0..SENT).map(|_| answer(&mut reader)).collect();
    let elapsed = started.elapsed();
    for (i, answer) in answers[..BURST].iter().enumerate() {
        assert_eq!(answer["ok"], true, "request {i} of the burst: {answer}");
        assert_eq!(answer["tabs"][0]["name"], "chat", "request {i}: {answer}");
    }
    // Past the burst, only what refilled meanwhile (one each 100 ms) is answered.
    let served = answers[BURST..].iter().filter(|a| a["ok"] == true).count();
    let refilled = usize::try_from(elapsed.as_millis() / 100).unwrap_or(usize::MAX) + 1;
    assert!(
        served <= refilled,
        "{served} answered past the burst in {elapsed:?}"
    );
    for (i, answer) in answers[BURST..].iter().enumerate() {
        assert!(
            answer["ok"] == true || refused(answer),
            "request {}: {answer}",
            BURST + i
        );
    }
    assert!(
        refused(&answers[BURST]) || elapsed >= Duration::from_millis(100),
        "the first past the burst: {}",
        answers[BURST]
    );
    assert!(served < SENT - BURST, "none was refused in {elapsed:?}");

    // Another connection has a limit of its own, and the command works.
    let (mut other, mut other_reader) = connect();
    other
        .write_all(b"{\"request\":\"show\",\"name\":\"chat\"}\n")
        .expect("send");
    let shown = answer(&mut other_reader);
    assert_eq!(shown["ok"], true, "{shown}");
    let list = tabs(runtime.path(), &["list"]);
    assert!(list.status.success(), "{}", stderr(&list));

    // The limited connection is answered again once the limiter has refilled.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        stream
            .write_all(b"{\"request\":\"list\"}\n")
            .expect("the connection is still open");
        let again = answer(&mut reader);
        if again["ok"] == true {
            break;
        }
        assert!(refused(&again), "{again}");
        assert!(Instant::now() < deadline, "still refused after 10 s");
        // A refused request takes nothing from the limiter; poll at a tenth of its refill.
        std::thread::sleep(Duration::from_millis(10));
    }
    host.url("chat").expect("chat still serves");
}

/// A share tab added to a host on the local Tor network is published and serves through Tor.
#[tokio::test]
async fn a_tab_added_at_run_time_serves_through_tor() {
    use crate::onion::{onion_tab, scratch_dirs, scratch_env};
    let net = onionhost_tests::testnet::Testnet::shared()
        .await
        .expect("local Tor network");
    let runtime = runtime_dir();
    let dir = tempfile::tempdir().expect("temp dir");
    let scratch = scratch_dirs(dir.path());
    let shared = dir.path().join("shared.txt");
    std::fs::write(&shared, "bytes through tor").expect("write");
    let mut env = scratch_env(&scratch);
    env.push((
        "XDG_RUNTIME_DIR",
        runtime.path().to_str().expect("utf-8").to_owned(),
    ));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let network = net.network_file().to_str().expect("utf-8").to_owned();
    let host = TestHost::spawn_in(dir, &["chat", "--public", "--tor-network", &network], &env)
        .expect("start");
    onion_tab(&host, "chat", false);
    let rt = runtime.path().to_owned();
    let shared = shared.to_str().expect("utf-8").to_owned();
    // `tabs add` waits until the tab serves, which takes its publication through Tor.
    let added = tokio::task::spawn_blocking(move || {
        tabs(
            &rt,
            &[
                "add",
                "--mode",
                "share",
                "--name",
                "files",
                "--keep-sharing",
                &shared,
            ],
        )
    })
    .await
    .expect("tabs add");
    assert!(
        added.status.success(),
        "{}\n{}",
        stderr(&added),
        host.output()
    );
    let text = stdout(&added);
    let address = text
        .lines()
        .find_map(|l| l.strip_prefix("address: "))
        .unwrap_or_else(|| panic!("no address: {text}"))
        .to_owned();
    assert!(address.ends_with(".onion/"), "{address}");
    // A private tab (the default): `tabs show` gives its client key, the one the console
    // printed, and with it a visitor gets in.
    assert!(
        text.contains("a private tab: `onionhost tabs show files` shows its client key"),
        "{text}"
    );
    let printed = onion_tab(&host, "files", true);
    let onion = address.trim_start_matches("http://").trim_end_matches('/');
    assert_eq!(printed.host, onion);
    let shown = tabs(runtime.path(), &["show", "files"]);
    assert!(shown.status.success(), "{}", stderr(&shown));
    let shown = stdout(&shown);
    let key = shown
        .lines()
        .find_map(|l| {
            l.strip_prefix("private key (give it to each visitor; Tor Browser asks for it): ")
        })
        .unwrap_or_else(|| panic!("no key: {shown}"));
    assert_eq!(Some(key), printed.key.as_deref(), "{shown}");
    assert!(shown.contains(&format!("address: {address}")), "{shown}");
    net.authorize(onion, key).await.expect("authorize");
    let (status, body) = net
        .get(&format!("{address}files/shared.txt"))
        .await
        .expect("GET through tor");
    assert_eq!(status, 200);
    assert_eq!(body, b"bytes through tor");
    let list = tabs(runtime.path(), &["list", "--json"]);
    assert!(
        stdout(&list).contains(&format!(r#""address":"{address}""#)),
        "{}",
        stdout(&list)
    );
    host.stop().expect("stop");
}
