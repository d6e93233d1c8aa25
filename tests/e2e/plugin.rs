//! Plugins through the real host: modes built outside it (the pastebin example and a test mode,
//! each in its own workspace; the chat mode built as a plugin), loaded from their libraries and
//! served like built-in tabs, and libraries refused with a message that says how to fix them.

use std::path::Path;

use futures::{SinkExt as _, StreamExt as _};
use onionhost_tests::host::{DEADLINE, Stopped, TestHost};
use onionhost_tests::plugins;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Runs `onionhost run --local-only` on `config`, written to `dir/onionhost.toml`.
fn run(dir: tempfile::TempDir, config: &str) -> TestHost {
    let path = write_config(&dir, config);
    TestHost::spawn_in(dir, &["run", "--config", &path, "--local-only"], &[]).expect("start")
}

/// Runs `onionhost check` on `config` and waits for it to end.
fn check(config: &str) -> Stopped {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = write_config(&dir, config);
    TestHost::spawn_in(dir, &["check", "--config", &path], &[])
        .expect("start")
        .wait_exit()
        .expect("check ends")
}

fn write_config(dir: &tempfile::TempDir, config: &str) -> String {
    let path = dir.path().join("onionhost.toml");
    std::fs::write(&path, config).expect("write the config");
    path.to_str().expect("UTF-8 path").to_owned()
}

/// A TOML string for a path.
fn toml_path(path: &Path) -> String {
    toml_string(path.to_str().expect("UTF-8 path"))
}

fn toml_string(text: &str) -> String {
    format!("{:?}", text)
}

/// An HTTP client that shows redirects instead of following them.
fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

async fn get(url: &str) -> (u16, String) {
    let response = http().get(url).send().await.expect("GET");
    let status = response.status().as_u16();
    (status, response.text().await.expect("body"))
}

async fn ws_connect(url: &str) -> Ws {
    let url = url.replacen("http://", "ws://", 1);
    tokio_tungstenite::connect_async(url)
        .await
        .expect("WebSocket handshake")
        .0
}

/// The next text frame (pings skipped), within the deadline.
async fn next_text(ws: &mut Ws) -> String {
    loop {
        let frame = tokio::time::timeout(DEADLINE, ws.next())
            .await
            .expect("nothing received in time")
            .expect("the connection ended")
            .expect("a WebSocket error");
        match frame {
            Message::Text(text) => return text.as_str().to_owned(),
            Message::Ping(_) | Message::Pong(_) => {}
            other => panic!("expected a text frame, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn the_pastebin_plugin_serves_http_and_websocket_and_two_tabs_share_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    // A relative plugin path is relative to the config file's folder.
    std::fs::create_dir(dir.path().join("plugins")).expect("mkdir");
    std::fs::copy(plugins::pastebin(), dir.path().join("plugins/libpaste.so")).expect("copy");
    let host = run(
        dir,
        "[[tab]]\nname = \"one\"\nmode = \"pastebin\"\nplugin = \"plugins/libpaste.so\"\n\
         [tab.pastebin]\ntitle = \"First bin\"\n\n\
         [[tab]]\nname = \"two\"\nmode = \"pastebin\"\nplugin = \"plugins/libpaste.so\"\n",
    );
    let one = host.url("one").expect("tab one");
    let two = host.url("two").expect("tab two");
    // The plugin's events reach the host's console through its callbacks.
    host.wait_for(r"\[one\] pastebin ready").expect("notice");

    let (status, page) = get(&one).await;
    assert_eq!(status, 200);
    assert!(
        page.contains("First bin") && page.contains("<form"),
        "{page}"
    );
    let response = http()
        .post(format!("{one}paste"))
        .form(&[("text", "<i>hello from a plugin</i>"), ("keep", "60")])
        .send()
        .await
        .expect("POST /paste");
    assert_eq!(response.status(), 303);
    assert!(
        response.headers().contains_key("content-security-policy"),
        "the plugin's responses are hardened like a built-in mode's"
    );
    let location = response.headers()["location"].to_str().expect("ascii");
    let path = location.trim_start_matches('/').to_owned();
    let (status, page) = get(&format!("{one}{path}")).await;
    assert_eq!(status, 200);
    assert!(
        page.contains("&lt;i&gt;hello from a plugin&lt;/i&gt;"),
        "{page}"
    );
    // The other tab of the same plugin has its own store.
    assert_eq!(get(&format!("{two}{path}")).await.0, 404);
    let (_, page) = get(&two).await;
    assert!(!page.contains("First bin"), "{page}");

    let live = format!("{one}{path}/live");
    let mut first = ws_connect(&live).await;
    assert_eq!(next_text(&mut first).await, "1");
    let mut second = ws_connect(&live).await;
    assert_eq!(next_text(&mut second).await, "2");
    assert_eq!(next_text(&mut first).await, "2");
    second.close(None).await.expect("close");
    assert_eq!(next_text(&mut first).await, "1");

    let stopped = host.stop().expect("stop");
    assert_eq!(stopped.status.code(), Some(0), "{}", stopped.stderr);
}

#[tokio::test]
async fn libraries_that_are_not_plugins_for_this_host_are_refused_and_the_others_serve() {
    let dir = tempfile::tempdir().expect("temp dir");
    let sdk = env!("CARGO_PKG_VERSION");
    let lib = |name: &str, source: &str| {
        toml_path(&plugins::c_library(dir.path(), name, source).expect("a C library"))
    };
    let wrong_abi = lib("libwrong_abi.so", &plugins::c_header(2, sdk, true));
    let wrong_sdk = lib("libwrong_sdk.so", &plugins::c_header(1, "9.0.0", true));
    let aborts = lib("libaborts.so", &plugins::c_header(1, sdk, false));
    let no_header = lib("libplain.so", "int not_a_plugin(void) { return 0; }\n");
    let wrong_magic = lib(
        "libmagic.so",
        "const char onionhost_plugin_header[256] = \"NOT A PLUGIN HEADER\";\n",
    );
    let config = format!(
        "[[tab]]\nname = \"ok\"\nmode = \"pastebin\"\nplugin = {pastebin}\n\n\
         [[tab]]\nname = \"abi\"\nmode = \"fake\"\nplugin = {wrong_abi}\n\n\
         [[tab]]\nname = \"sdk\"\nmode = \"fake\"\nplugin = {wrong_sdk}\n\n\
         [[tab]]\nname = \"abort\"\nmode = \"fake\"\nplugin = {aborts}\n\n\
         [[tab]]\nname = \"plain\"\nmode = \"fake\"\nplugin = {no_header}\n\n\
         [[tab]]\nname = \"magic\"\nmode = \"fake\"\nplugin = {wrong_magic}\n\n\
         [[tab]]\nname = \"gone\"\nmode = \"fake\"\nplugin = \"nowhere/libgone.so\"\n",
        pastebin = toml_path(plugins::pastebin()),
    );
    let expected = [
        r"\[abi\] failed: cannot load the plugin \S+libwrong_abi\.so: it was built for another plugin ABI: expected ABI version 1 \(onionhost-sdk [^)]+\), found ABI version 2 .*rebuild the plugin",
        r"\[sdk\] failed: cannot load the plugin \S+: it was built with an incompatible sdk: expected onionhost-sdk \S+ or a compatible version \([^)]+\), found onionhost-sdk 9\.0\.0; rebuild",
        r#"\[abort\] failed: cannot load the plugin \S+: it was built with `panic = "abort"`.*rebuild it with the default `panic = "unwind"`"#,
        r"\[plain\] failed: cannot load the plugin \S+: it is not an onionhost plugin: it has no `onionhost_plugin_header` symbol",
        r"\[magic\] failed: cannot load the plugin \S+: it is not an onionhost plugin: its `onionhost_plugin_header` does not start with the plugin magic bytes",
        r"\[gone\] failed: cannot load the plugin \S+nowhere/libgone\.so: the file does not exist: build the plugin",
    ];

    let host = run(dir, &config);
    let ok = host.url("ok").expect("the good tab starts");
    for pattern in expected {
        host.wait_for(pattern)
            .expect("refused with a clear message");
    }
    assert_eq!(get(&ok).await.0, 200);
    let checked = check(&config);
    let stopped = host.stop().expect("stop");
    assert_eq!(stopped.status.code(), Some(0), "{}", stopped.stderr);

    // `onionhost check` reports every one of them, and fails.
    assert_eq!(checked.status.code(), Some(2), "{}", checked.stderr);
    for pattern in expected {
        let pattern = pattern
            .split_once("] failed: ")
            .map_or(pattern, |(_, rest)| rest);
        let re = regex::Regex::new(pattern).expect("pattern");
        assert!(
            re.is_match(&checked.stderr),
            "/{pattern}/ in:\n{}",
            checked.stderr
        );
    }
}

#[tokio::test]
async fn a_missing_plugin_alone_ends_the_host_with_a_failure() {
    let dir = tempfile::tempdir().expect("temp dir");
    let host = run(
        dir,
        "[[tab]]\nname = \"gone\"\nmode = \"pastebin\"\nplugin = \"plugins/libnothing.so\"\n",
    );
    let stopped = host.wait_exit().expect("the host ends by itself");
    assert_eq!(stopped.status.code(), Some(1), "{}", stopped.stderr);
    assert!(
        stopped
            .stdout
            .contains("[gone] failed: cannot load the plugin ")
            && stopped
                .stdout
                .contains("plugins/libnothing.so: the file does not exist"),
        "{}",
        stopped.stdout
    );
}

#[tokio::test]
async fn a_panic_in_a_plugin_handler_is_contained_and_one_in_build_fails_only_its_tab() {
    let panicky = toml_path(plugins::panicky());
    let config = format!(
        "[[tab]]\nname = \"p\"\nmode = \"panicky\"\nplugin = {panicky}\n\n\
         [[tab]]\nname = \"q\"\nmode = \"panicky\"\nplugin = {panicky}\n\n\
         [[tab]]\nname = \"broken\"\nmode = \"panicky\"\nplugin = {panicky}\n\
         [tab.panicky]\npanic_in_build = true\n\n\
         [[tab]]\nname = \"paste\"\nmode = \"pastebin\"\nplugin = {pastebin}\n",
        pastebin = toml_path(plugins::pastebin()),
    );
    let host = run(tempfile::tempdir().expect("temp dir"), &config);
    let p = host.url("p").expect("tab p");
    let q = host.url("q").expect("tab q");
    let paste = host.url("paste").expect("tab paste");
    host.wait_for(
        r"\[broken\] failed: cannot start the panicky mode: the mode panicked while starting: panicky was asked to panic while starting",
    )
    .expect("the panic in build fails that tab");

    assert_eq!(get(&p).await, (200, "hits 1".to_owned()));
    let (status, body) = get(&format!("{p}panic")).await;
    assert_eq!(status, 500, "{body}");
    assert_eq!(
        body, "Internal error\n",
        "the panic's message stays on the host"
    );
    // The tab, its state, the other tab of the plugin and other plugins keep serving.
    assert_eq!(get(&p).await, (200, "hits 2".to_owned()));
    assert_eq!(get(&q).await, (200, "hits 1".to_owned()));
    assert_eq!(get(&paste).await.0, 200);
    // Timers, spawned and blocking tasks and file I/O work in the plugin's own runtime.
    assert_eq!(
        get(&format!("{p}tokio")).await,
        (200, "tokio 42 true".to_owned())
    );
    // A plugin's tab may ask to be stopped; the others go on.
    assert_eq!(get(&format!("{q}stop")).await, (200, "stopping".to_owned()));
    host.wait_for(r"\[q\] stopping: asked to stop over HTTP")
        .expect("stop request");
    host.wait_for(r"\[q\] stopped").expect("q stops");
    assert_eq!(get(&p).await, (200, "hits 3".to_owned()));

    let stopped = host.stop().expect("stop");
    assert_eq!(stopped.status.code(), Some(0), "{}", stopped.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn on_shutdown_a_plugin_finishes_requests_in_flight_and_hanging_ones_are_closed() {
    let config = format!(
        "[[tab]]\nname = \"p\"\nmode = \"panicky\"\nplugin = {}\n",
        toml_path(plugins::panicky())
    );
    let host = run(tempfile::tempdir().expect("temp dir"), &config);
    let p = host.url("p").expect("tab p");
    let slow = tokio::spawn(get_owned(format!("{p}slow")));
    let hang = tokio::spawn(http().get(format!("{p}hang")).send());
    host.wait_for(r"\[p\] slow request started")
        .expect("slow request in flight");
    host.wait_for(r"\[p\] hanging request started")
        .expect("hanging request in flight");

    let stopped = tokio::task::spawn_blocking(move || host.stop())
        .await
        .expect("join")
        .expect("the host exits after its grace period");
    assert_eq!(stopped.status.code(), Some(0), "{}", stopped.stderr);
    // The request in flight got its whole answer; the hanging one was cut off.
    assert_eq!(slow.await.expect("join"), (200, "slow done".to_owned()));
    assert!(
        hang.await.expect("join").is_err(),
        "the hanging request was closed"
    );
}

async fn get_owned(url: String) -> (u16, String) {
    get(&url).await
}

#[tokio::test]
async fn a_plugin_section_is_checked_when_the_config_is_read_with_file_and_line() {
    let pastebin = toml_path(plugins::pastebin());
    let bad = format!(
        "[[tab]]\nname = \"paste\"\nmode = \"pastebin\"\nplugin = {pastebin}\n\n\
         [tab.pastebin]\ntitle = \"ok\"\nmax_paste_bytes = 0\n"
    );
    let checked = check(&bad);
    assert_eq!(checked.status.code(), Some(2), "{}", checked.stderr);
    assert!(
        checked.stderr.contains(
            "onionhost.toml:8: tab \"paste\", `pastebin.max_paste_bytes`: use a size from 1 to"
        ),
        "{}",
        checked.stderr
    );
    // `run` refuses it the same way, before anything starts.
    let dir = tempfile::tempdir().expect("temp dir");
    let stopped = run(dir, &bad).wait_exit().expect("run ends");
    assert_eq!(stopped.status.code(), Some(2), "{}", stopped.stderr);
    assert!(!stopped.stdout.contains("serving at"), "{}", stopped.stdout);

    let unknown = bad.replace("max_paste_bytes = 0", "colour = \"blue\"");
    let checked = check(&unknown);
    assert_eq!(checked.status.code(), Some(2), "{}", checked.stderr);
    assert!(
        checked
            .stderr
            .contains("onionhost.toml:8: tab \"paste\", `pastebin.colour`: unknown field `colour`"),
        "{}",
        checked.stderr
    );

    let good = bad.replace("max_paste_bytes = 0", "max_paste_bytes = 100");
    let checked = check(&good);
    assert_eq!(checked.status.code(), Some(0), "{}", checked.stderr);
    assert!(checked.stderr.contains("config is valid: 1 tab(s)"));
}

/// Two members join the chat at `url`, talk, and one leaves; returns what the first saw.
async fn chat_conversation(url: &str) -> Vec<Value> {
    async fn send(ws: &mut Ws, value: Value) {
        ws.send(Message::text(value.to_string()))
            .await
            .expect("send");
    }
    async fn next(ws: &mut Ws) -> Value {
        serde_json::from_str(&next_text(ws).await).expect("JSON")
    }
    let ws_url = format!("{url}ws");
    let mut ann = ws_connect(&ws_url).await;
    send(&mut ann, json!({"type": "join", "name": "ann"})).await;
    let mut welcome = next(&mut ann).await;
    // The resume token is random: check it is there, compare the rest.
    let resume = welcome
        .as_object_mut()
        .and_then(|fields| fields.remove("resume"));
    assert!(
        resume.is_some_and(|token| token.as_str().is_some_and(|t| !t.is_empty())),
        "{welcome}"
    );
    let mut seen = vec![welcome];
    let mut bo = ws_connect(&ws_url).await;
    send(&mut bo, json!({"type": "join", "name": "bo"})).await;
    assert_eq!(next(&mut bo).await["members"], json!(["ann", "bo"]));
    seen.push(next(&mut ann).await);
    send(&mut bo, json!({"type": "send", "text": "<b>hi</b> ann"})).await;
    seen.push(next(&mut ann).await);
    assert_eq!(
        next(&mut bo).await,
        seen[2],
        "the sender sees its message too"
    );
    drop(bo);
    seen.push(next(&mut ann).await);
    seen
}

#[tokio::test]
async fn the_chat_mode_loaded_from_its_library_behaves_as_the_built_in_one() {
    let config = format!(
        "[[tab]]\nname = \"builtin\"\nmode = \"chat\"\n\n\
         [[tab]]\nname = \"plugin\"\nmode = \"chat\"\nplugin = {chat}\n",
        chat = toml_path(plugins::chat()),
    );
    let host = run(tempfile::tempdir().expect("temp dir"), &config);
    let builtin = host.url("builtin").expect("built-in tab");
    let plugin = host.url("plugin").expect("plugin tab");

    let (status, page) = get(&plugin).await;
    assert_eq!(status, 200);
    assert_eq!(page, get(&builtin).await.1, "the same page");
    let from_plugin = chat_conversation(&plugin).await;
    assert_eq!(from_plugin[0]["type"], "welcome", "{from_plugin:?}");
    assert_eq!(from_plugin[1], json!({"type": "joined", "name": "bo"}));
    assert_eq!(
        from_plugin[2],
        json!({"type": "message", "from": "bo", "text": "<b>hi</b> ann"})
    );
    assert_eq!(from_plugin[3], json!({"type": "left", "name": "bo"}));
    assert_eq!(from_plugin, chat_conversation(&builtin).await);
    // The plugin's events reach the console like the built-in mode's.
    host.wait_for(r"\[plugin\] someone joined").expect("event");
    host.wait_for(r"\[builtin\] someone joined").expect("event");

    let stopped = host.stop().expect("stop");
    assert_eq!(stopped.status.code(), Some(0), "{}", stopped.stderr);
}
