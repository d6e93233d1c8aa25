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
    // The screen is polled, not read once: the last whole frame may predate what is awaited.
    assert!(page_text(&caps[1]).await.contains("<html"));
    host.wait_until("the frame, with the log in the pane", |screen| {
        let rows: Vec<&str> = screen.lines().collect();
        rows.first().is_some_and(|row| row.starts_with("onionhost"))
            && rows.last().is_some_and(|row| row.starts_with("q quit"))
            && screen.contains("DEBUG onionhost::console::live: the live view has the terminal")
    })
    .expect("the frame");

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

    // Every tab failed (its port is taken): the view stays, with the failed row (the user
    // could open another tab); at q the host exits with an error, on a usable terminal, and
    // the reason is on the ordinary screen.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port().to_string();
    let mut host = spawn(&["chat", "--local-only", "--port", &port]);
    host.wait_for_screen(&format!(
        r"> chat +chat +failed: cannot listen on 127\.0\.0\.1:{port}"
    ))
    .expect("the failed row");
    host.wait_for_screen(r"no tab is running; the host stays open")
        .expect("the host stays open with the view");
    host.wait_for_screen(r"^onionhost · no tab running \(n opens one\)")
        .expect("the title says so");
    host.type_keys(b"q").expect("q");
    let stopped = host.wait_exit().expect("the host exits at q");
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
    // The tab's row, and under it the download's bar with bytes of total and its rate.
    // The row counts the visitors with a connection open (one: the download's).
    host.wait_for_screen(r"> share +share +serving +127\.0\.0\.1:\d+ +public +1 visitor\b")
        .expect("the tab's row");
    host.wait_for_screen(
        r"↓ download #1  \[[█░]{24}\] [\d.]+ (?:B|KiB|MiB) / 64\.0 MiB  [\d.]+ (?:B|KiB|MiB)/s",
    )
    .expect("the download's bar and rate");

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

const TWO_CHATS: &str = r#"
[[tab]]
name = "first"
mode = "chat"

[[tab]]
name = "second"
mode = "chat"
"#;

/// `onionhost run` of `config` with `--local-only`, in a pseudo-terminal.
fn spawn_config(config: &str) -> PtyHost {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("onionhost.toml");
    std::fs::write(&path, config).expect("write config");
    let path = path.to_str().expect("utf-8").to_owned();
    PtyHost::spawn_in(dir, &["run", "--config", &path, "--local-only"], &[])
        .expect("spawn in a pseudo-terminal")
}

#[tokio::test]
async fn a_selected_tab_is_shown_in_full_with_a_qr_code_and_stopped_while_the_other_serves() {
    let mut host = spawn_config(TWO_CHATS);
    let caps = host
        .wait_for_screen(
            r"> chat +first +serving +(127\.0\.0\.1:\d+) +public[^\n]*\n│  chat +second +serving +(127\.0\.0\.1:\d+) +public",
        )
        .expect("one row per tab, the first selected");
    let (first, second) = (
        format!("http://{}/", caps[1]),
        format!("http://{}/", caps[2]),
    );
    assert!(page_text(&second).await.contains("<html"));

    // j selects the next row; Enter shows it in full; r adds the QR code; Esc closes.
    host.type_keys(b"j").expect("j");
    host.wait_for_screen(r"> chat +second +serving")
        .expect("the second row selected");
    host.type_keys(b"\r").expect("Enter");
    let shown = host
        .wait_for_screen(&format!(
            r"address: {}[^\n]*\n[^\n]*public: visitors need no client key",
            regex::escape(&second)
        ))
        .expect("the show view")[0]
        .clone();
    assert!(!shown.contains("QR code:"), "no QR code until asked");
    host.type_keys(b"r").expect("r");
    // Polled: the frame that draws the code may not have come yet.
    host.wait_until("the address as a QR code", |screen| {
        screen.contains("address as a QR code:") && qr_rows(screen) >= 10
    })
    .expect("the QR code");
    host.type_keys(b"\x1b").expect("Esc");
    host.wait_until("the show view closed", |screen| {
        !screen.contains("address as a QR code:")
    })
    .expect("Esc closes");

    // s asks first; n keeps the tab; s then y stops it gracefully.
    host.type_keys(b"s").expect("s");
    host.wait_for_screen(r#"Stop tab "second"\?"#)
        .expect("stop asks first");
    host.type_keys(b"n").expect("n");
    host.wait_until("the question gone", |screen| !screen.contains("Stop tab"))
        .expect("n keeps it");
    assert!(page_text(&second).await.contains("<html"));
    host.type_keys(b"s").expect("s");
    host.wait_for_screen(r#"Stop tab "second"\?"#)
        .expect("stop asks first");
    host.type_keys(b"y").expect("y");
    host.wait_for_screen(r"> chat +second +stopped")
        .expect("the row shows it stopped");
    assert!(
        reqwest::get(&second).await.is_err(),
        "the stopped tab still serves"
    );
    assert!(
        page_text(&first).await.contains("<html"),
        "the other serves"
    );

    host.type_keys(b"q").expect("q");
    let stopped = host.wait_exit().expect("the host exits at q");
    assert!(stopped.status.success(), "{stopped:?}");
    assert!(stopped.restored, "{stopped:?}");
}

/// How many rows of `screen` show a line of a QR code.
fn qr_rows(screen: &str) -> usize {
    screen
        .lines()
        .filter(|row| row.matches(['█', '▀', '▄']).count() >= 20)
        .count()
}

const RIGHT: &[u8] = b"\x1b[C";
const ESC: &[u8] = b"\x1b";

#[tokio::test]
async fn a_tab_opened_from_the_keyboard_serves_and_a_bad_one_shows_the_config_s_error() {
    let mut host = spawn(&["chat", "--local-only"]);
    let caps = host
        .wait_for_screen(r"> chat +chat +serving +(127\.0\.0\.1:\d+)")
        .expect("the chat tab's row");
    let chat = format!("http://{}/", caps[1]);
    let notes = host.dir.path().join("notes.txt");
    std::fs::write(&notes, b"notes").expect("write");

    // A share of a file that does not exist: the form shows the config's message (as
    // `onionhost tabs add` would print it), and nothing else changes.
    host.type_keys(b"n").expect("n");
    host.wait_for_screen(r"> mode +< chat >").expect("the form");
    host.type_keys(RIGHT).expect("right");
    host.type_keys(RIGHT).expect("right");
    host.wait_for_screen(r"> mode +< share >")
        .expect("the mode changes");
    host.type_keys(b"\tfiles\t/no/such/file.txt\r")
        .expect("the fields");
    host.wait_for_screen(r"cannot share /no/such/file\.txt")
        .expect("the config's error in the form");
    assert!(page_text(&chat).await.contains("<html"), "chat serves on");
    host.type_keys(ESC).expect("Esc");
    host.wait_until("the form closed", |screen| !screen.contains("New tab"))
        .expect("Esc closes the form");
    assert!(
        !host.screen().contains(" files "),
        "no row for a refused tab:\n{}",
        host.screen()
    );

    // The same tab with a file that exists starts, and serves.
    host.type_keys(b"n").expect("n");
    host.wait_for_screen(r"> mode +< chat >")
        .expect("a new form");
    host.type_keys(RIGHT).expect("right");
    host.type_keys(RIGHT).expect("right");
    let path = notes.to_str().expect("utf-8");
    host.type_keys(format!("\tfiles\t{path}\r").as_bytes())
        .expect("the fields");
    let caps = host
        .wait_for_screen(r"> share +files +serving +(127\.0\.0\.1:\d+) +public")
        .expect("the new tab's row, selected");
    host.wait_until("the form closed", |screen| !screen.contains("New tab"))
        .expect("the form closes once the tab starts");
    let files = format!("http://{}/", caps[1]);
    assert!(
        page_text(&files).await.contains("notes.txt"),
        "the share serves its file"
    );
    assert!(page_text(&chat).await.contains("<html"), "chat serves on");

    host.type_keys(b"q").expect("q");
    let stopped = host.wait_exit().expect("the host exits at q");
    assert!(stopped.status.success(), "{stopped:?}");
    assert!(stopped.restored, "{stopped:?}");
}

#[tokio::test]
async fn show_gives_a_private_tab_s_key_and_its_qr_code_only_when_asked_through_tor() {
    use crate::onion::{scratch_dirs, scratch_env};
    // Only an onion service tab is private (a `--local-only` one never is): the local Tor
    // test network publishes it.
    let net = onionhost_tests::testnet::Testnet::shared()
        .await
        .expect("local Tor network");
    let dir = tempfile::tempdir().expect("temp dir");
    let scratch = scratch_dirs(dir.path());
    // A runtime folder of the test's own, so that `onionhost tabs show` finds this host.
    let runtime = scratch.join("run");
    std::fs::create_dir(&runtime).expect("runtime dir");
    std::fs::set_permissions(
        &runtime,
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .expect("chmod");
    let runtime = runtime.to_str().expect("utf-8").to_owned();
    let mut env = scratch_env(&scratch);
    env.push(("XDG_RUNTIME_DIR", runtime.clone()));
    // Arti's debug lines would scroll the console's key lines out of the pane.
    env.push(("RUST_LOG", "info".to_owned()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let network = net.network_file().to_str().expect("utf-8").to_owned();
    let mut host = PtyHost::spawn_in(dir, &["chat", "--tor-network", &network], &env)
        .expect("spawn in a pseudo-terminal");
    let caps = host
        .wait_for_screen(r"> chat +chat +serving +([a-z2-7]{8})…([a-z2-7]{6})\.onion +private")
        .expect("the private tab's row, its address shortened");
    let (start, end) = (caps[1].clone(), caps[2].clone());
    // The key, as `onionhost tabs show` gives it.
    let show = std::process::Command::new(onionhost_tests::host::onionhost_bin())
        .args(["tabs", "show", "chat"])
        .env("XDG_RUNTIME_DIR", &runtime)
        .output()
        .expect("onionhost tabs show");
    let show = String::from_utf8_lossy(&show.stdout).into_owned();
    let key = regex::Regex::new(
        r"private key \(give it to each visitor; Tor Browser asks for it\): ([A-Z2-7]{52})",
    )
    .expect("pattern")
    .captures(&show)
    .unwrap_or_else(|| panic!("no key from tabs show: {show}"))[1]
        .to_owned();
    // The console's key lines are in the pane with the key hidden: it is nowhere on the
    // screen until asked.
    host.wait_for_screen(
        r"private key \(give it to each visitor; Tor Browser asks for it\): \(hidden here",
    )
    .expect("the console's key line, the key hidden");
    assert!(!host.screen().contains(&key), "{}", host.screen());

    host.type_keys(b"\r").expect("Enter");
    let caps = host
        .wait_for_screen(r"address: (http://([a-z2-7]{56})\.onion/)")
        .expect("the full address");
    assert!(
        caps[2].starts_with(&start) && caps[2].ends_with(&end),
        "{caps:?}"
    );
    let shown = host
        .wait_for_screen(r"client key: hidden \(k shows it\)")
        .expect("the key hidden")[0]
        .clone();
    assert!(!shown.contains(&format!("client key: {key}")), "{shown}");
    // r: the address's QR code; r again: none, the key being hidden.
    host.type_keys(b"r").expect("r");
    host.wait_until("the address's QR code", |screen| {
        screen.contains("address as a QR code:") && qr_rows(screen) >= 10
    })
    .expect("the address's QR code");
    host.type_keys(b"r").expect("r");
    host.wait_until("no QR code", |screen| {
        !screen.contains("QR code:") && qr_rows(screen) == 0
    })
    .expect("no key's QR code while the key is hidden");

    // k shows the key; r then r: the key's QR code; k hides both.
    host.type_keys(b"k").expect("k");
    host.wait_for_screen(&format!("client key: {key}"))
        .expect("the key, once asked");
    host.type_keys(b"rr").expect("r r");
    host.wait_until("the key's QR code", |screen| {
        screen.contains("client key as a QR code:") && qr_rows(screen) >= 10
    })
    .expect("the key's QR code");
    host.type_keys(b"k").expect("k");
    host.wait_until("the key and its code hidden", |screen| {
        screen.contains("client key: hidden") && !screen.contains("QR code:")
    })
    .expect("k hides the key and its code");
    host.type_keys(b"\x1b").expect("Esc");
    host.wait_until("the show view closed", |screen| {
        !screen.contains("client key:")
    })
    .expect("Esc closes");

    host.type_keys(CTRL_C).expect("Ctrl-C");
    let stopped = host.wait_exit().expect("the host exits at Ctrl-C");
    assert!(stopped.status.success(), "{stopped:?}");
    assert!(stopped.restored, "{stopped:?}");
}

/// `text` as a terminal sends it when it is pasted with bracketed paste on.
fn pasted(text: &str) -> Vec<u8> {
    format!("\x1b[200~{text}\x1b[201~").into_bytes()
}

#[tokio::test]
async fn a_paste_is_never_keys_it_goes_into_the_form_s_field_as_text() {
    let mut host = spawn(&["chat", "--local-only"]);
    let caps = host
        .wait_for_screen(r"> chat +chat +serving +(127\.0\.0\.1:\d+)")
        .expect("the chat tab's row");
    let chat = format!("http://{}/", caps[1]);
    host.wait_until("the title says serving", |screen| {
        screen
            .lines()
            .next()
            .is_some_and(|row| row.starts_with("onionhost · serving"))
    })
    .expect("the title");

    // On the rows, "s" "y" would stop the tab and "q" quit: pasted, they do nothing. The
    // form opened next (keys are taken in order) shows the paste was taken first.
    host.type_keys(&pasted("sy\rq")).expect("paste");
    host.type_keys(b"n").expect("n");
    host.wait_for_screen(r"> mode +< chat >").expect("the form");
    let screen = host.screen();
    assert!(!screen.contains("Stop tab"), "{screen}");
    assert!(
        regex::Regex::new(r"chat +chat +serving")
            .expect("pattern")
            .is_match(&screen),
        "{screen}"
    );
    assert!(page_text(&chat).await.contains("<html"), "chat serves on");

    // In the paths field, a pasted line break is a space, not Enter: the form is not sent.
    host.type_keys(b"\t\t").expect("Tab Tab");
    host.wait_for_screen(r"> paths").expect("the paths field");
    host.type_keys(&pasted("a.txt\rb.txt sy\r")).expect("paste");
    host.wait_for_screen(r"> paths +a\.txt b\.txt sy  ")
        .expect("the paste in the field");
    let screen = host.screen();
    assert!(!screen.contains("opening the tab"), "{screen}");
    assert!(screen.contains("Enter open · Esc cancel"), "{screen}");
    host.type_keys(ESC).expect("Esc");
    host.wait_until("the form closed", |screen| !screen.contains("New tab"))
        .expect("Esc closes the form");

    host.type_keys(b"q").expect("q");
    let stopped = host.wait_exit().expect("the host exits at q");
    assert!(stopped.status.success(), "{stopped:?}");
    assert!(
        stopped.restored,
        "the terminal is not restored (bracketed paste?): {stopped:?}"
    );
}

#[tokio::test]
async fn a_qr_code_is_shown_whole_on_80x24_or_the_view_says_the_terminal_is_too_small() {
    // `http://127.0.0.1:PORT/` is a version 2 code: 25 modules and a quiet zone of 4 on
    // each side, 33 in all, two to a row: 17 rows, plus its title.
    // A row of it: the quiet zone (`████`) on its edges, or its last half row.
    let code_row = regex::Regex::new(r"████[█▀▄ ]{25}████|▀{33}").expect("pattern");
    for (rows, cols, whole) in [(24, 80, true), (16, 60, false)] {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut host = PtyHost::spawn_sized(dir, &["chat", "--local-only"], &[], rows, cols)
            .expect("spawn in a pseudo-terminal");
        host.wait_for_screen(r"> chat +chat +serving")
            .expect("the chat tab's row");
        host.type_keys(b"\r").expect("Enter");
        host.wait_for_screen(r"address: http://127\.0\.0\.1:\d+/")
            .expect("the show view");
        host.type_keys(b"r").expect("r");
        if whole {
            host.wait_until("the whole QR code under its title", |screen| {
                screen.contains("address as a QR code:")
                    && screen.lines().filter(|row| code_row.is_match(row)).count() == 17
            })
            .expect("the QR code, whole");
        } else {
            host.wait_for_screen(r"terminal too small for the QR code \(needs 33x18\)")
                .expect("the view says the terminal is too small");
            assert_eq!(qr_rows(&host.screen()), 0, "{}", host.screen());
        }
        host.type_keys(ESC).expect("Esc");
        host.wait_until("the show view closed", |screen| !screen.contains("QR code"))
            .expect("Esc closes");
        host.type_keys(b"q").expect("q");
        let stopped = host.wait_exit().expect("the host exits at q");
        assert!(stopped.status.success(), "{stopped:?}");
        assert!(stopped.restored, "{stopped:?}");
    }
}
