//! The host as a whole: tabs side by side, security headers, clean stop on a signal.

use onionhost_tests::chat_client::Member;
use onionhost_tests::host::TestHost;

const TWO_CHATS: &str = r#"
[[tab]]
name = "first"
mode = "chat"

[[tab]]
name = "second"
mode = "chat"
[tab.chat]
title = "Second room"
"#;

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let host = TestHost::with_config(TWO_CHATS).expect("start");
    let url = host.url("first").expect("first tab");
    for path in ["", "does-not-exist"] {
        let response = reqwest::get(format!("{url}{path}")).await.expect("GET");
        let headers = response.headers();
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned()
        };
        assert_eq!(
            header("content-security-policy"),
            "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'self'"
        );
        assert_eq!(header("x-frame-options"), "DENY");
        assert_eq!(header("x-content-type-options"), "nosniff");
        assert_eq!(header("referrer-policy"), "no-referrer");
        assert!(
            headers.get("server").is_none(),
            "a Server header gives the software away"
        );
    }
    let stopped = host.stop().expect("stop");
    assert_eq!(stopped.status.code(), Some(0), "{}", stopped.stderr);
}

#[tokio::test]
async fn two_tabs_of_one_mode_serve_side_by_side_and_stop_on_sigterm() {
    let host = TestHost::with_config(TWO_CHATS).expect("start");
    let first = host.url("first").expect("first tab");
    let second = host.url("second").expect("second tab");
    assert_ne!(first, second);
    let page = reqwest::get(&second)
        .await
        .expect("GET")
        .text()
        .await
        .expect("body");
    assert!(
        page.contains("Second room"),
        "the second tab has its own config"
    );
    let page = reqwest::get(&first)
        .await
        .expect("GET")
        .text()
        .await
        .expect("body");
    assert!(
        !page.contains("Second room"),
        "the first tab does not share it"
    );
    let stopped = host.stop().expect("stop");
    assert_eq!(stopped.status.code(), Some(0), "{}", stopped.stderr);
    assert!(
        stopped.stdout.contains("[first] stopped") && stopped.stdout.contains("[second] stopped")
    );
}

#[tokio::test]
async fn one_command_starts_one_chat_tab() {
    let host = TestHost::spawn(&["chat", "--local-only"]).expect("start");
    let url = host.url("chat").expect("chat tab");
    let response = reqwest::get(&url).await.expect("GET");
    assert_eq!(response.status(), 200);
    host.stop().expect("stop");
}

/// Regression: a more specific `RUST_LOG` directive (`tungstenite::protocol=trace`) lifted the
/// cap on the libraries that see visitors' bytes, and every join name and message reached
/// stderr. Colour codes went to stderr even when it was not a terminal.
#[tokio::test]
async fn no_rust_log_directive_lifts_the_cap_on_visitor_bytes() {
    let name = "capname7f3a";
    let message = "cap message marker 7f3a";
    let dir = tempfile::tempdir().expect("temp dir");
    let host = TestHost::spawn_in(
        dir,
        &["chat", "--local-only"],
        &[
            (
                "RUST_LOG",
                "trace,tungstenite::protocol=trace,tokio_tungstenite::compat=trace,\
                 hyper::proto::h1=trace,axum::serve=trace,onionhost_sdk::http=trace",
            ),
            // Unset: colour must follow whether stderr is a terminal, not only NO_COLOR.
            ("NO_COLOR", ""),
        ],
    )
    .expect("start");
    let url = host.url("chat").expect("chat tab");
    let (mut member, _) = Member::join(&url, name).await;
    member.say(message).await;
    let echoed = member.next().await;
    assert_eq!(echoed["text"], message, "{echoed}");
    drop(member);
    let stopped = host.stop().expect("stop");
    assert_eq!(stopped.status.code(), Some(0), "{}", stopped.stderr);
    assert!(
        stopped.stderr.contains("TRACE"),
        "trace was asked for and should show: {}",
        stopped.stderr
    );
    for secret in [name, message] {
        assert!(
            !stopped.stderr.contains(secret),
            "{secret:?} reached the log:\n{}",
            stopped.stderr
        );
    }
    assert!(
        !stopped.stderr.contains('\u{1b}'),
        "colour codes on a stderr that is not a terminal"
    );
}
