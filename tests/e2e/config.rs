//! Config errors: every bad config is refused with file, line and key, exit code 2, and
//! nothing is started.

use onionhost_tests::host::TestHost;

/// Runs the host on `config` and returns what it printed on stderr, asserting that it
/// refused to start.
fn refused(config: &str) -> String {
    let host = TestHost::with_config(config).expect("start onionhost");
    let stopped = host.wait_exit().expect("onionhost should exit by itself");
    assert_eq!(
        stopped.status.code(),
        Some(2),
        "exit status; stderr:\n{}",
        stopped.stderr
    );
    assert!(
        !stopped.stdout.contains("serving at"),
        "a tab was started despite the error:\n{}",
        stopped.stdout
    );
    stopped.stderr
}

#[test]
fn unknown_tab_key_names_file_line_and_key() {
    let err = refused(
        "[[tab]]\nname = \"a\"\nmode = \"chat\"\n\n[[tab]]\nname = \"b\"\nmode = \"chat\"\ncolour = \"red\"\n",
    );
    assert!(
        err.contains("onionhost.toml:8: unknown key `colour`"),
        "{err}"
    );
}

#[test]
fn wrong_type_names_file_line_and_key() {
    let err = refused("[[tab]]\nname = \"a\"\nmode = \"chat\"\nport = \"http\"\n");
    assert!(
        err.contains("onionhost.toml:4: `port`: invalid type"),
        "{err}"
    );
}

#[test]
fn duplicate_tab_names_are_refused() {
    let err = refused(
        "[[tab]]\nname = \"same\"\nmode = \"chat\"\n[[tab]]\nname = \"same\"\nmode = \"chat\"\n",
    );
    assert!(
        err.contains("onionhost.toml:5: two tabs are named \"same\""),
        "{err}"
    );
}

#[test]
fn unknown_key_in_a_mode_section_names_the_key() {
    let err = refused(
        "[[tab]]\nname = \"a\"\nmode = \"chat\"\n[tab.chat]\ntitle = \"ok\"\nshout = true\n",
    );
    assert!(err.contains("onionhost.toml:6:"), "{err}");
    assert!(err.contains("chat.shout"), "{err}");
}

#[test]
fn bad_value_in_a_mode_section_is_refused() {
    let err = refused("[[tab]]\nname = \"a\"\nmode = \"chat\"\n[tab.chat]\nmax_members = 0\n");
    assert!(err.contains("onionhost.toml:5:"), "{err}");
    assert!(err.contains("max_members"), "{err}");
}

#[test]
fn every_error_is_reported_at_once() {
    let err = refused(
        "[[tab]]\nname = \"bad name!\"\nmode = \"chat\"\n[[tab]]\nname = \"b\"\nmode = \"nope\"\n",
    );
    assert!(err.contains("onionhost.toml:2: tab name"), "{err}");
    assert!(
        err.contains("onionhost.toml:6: unknown mode \"nope\""),
        "{err}"
    );
}

#[test]
fn a_syntax_error_names_the_line() {
    let err = refused("[[tab]]\nname = \"a\"\nmode = chat\n");
    assert!(err.contains("onionhost.toml:3:"), "{err}");
}

#[test]
fn a_missing_config_file_is_refused() {
    let host = TestHost::spawn(&[
        "run",
        "--config",
        "/nonexistent/onionhost.toml",
        "--local-only",
    ])
    .expect("start onionhost");
    let stopped = host.wait_exit().expect("exit");
    assert_eq!(stopped.status.code(), Some(2));
    assert!(
        stopped.stderr.contains("cannot read the config file"),
        "{}",
        stopped.stderr
    );
}

/// `examples/onionhost.toml`, the config the README points to for every key, is valid.
#[test]
fn the_example_config_is_valid() {
    let example =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/onionhost.toml");
    let dir = tempfile::tempdir().expect("temp dir");
    // The share tab's paths are relative to the folder onionhost starts in.
    std::fs::write(dir.path().join("report.pdf"), b"%PDF-1.4").expect("write a file to share");
    std::fs::create_dir(dir.path().join("photos")).expect("make a folder to share");
    // And the website tab's folder.
    std::fs::create_dir(dir.path().join("site")).expect("make a site folder");
    std::fs::write(dir.path().join("site/index.html"), "<h1>site</h1>").expect("write a page");
    let check = |config: &std::path::Path| {
        let output = std::process::Command::new(onionhost_tests::host::onionhost_bin())
            .arg("check")
            .arg("--config")
            .arg(config)
            .current_dir(dir.path())
            .output()
            .expect("run onionhost check");
        assert!(
            output.status.success(),
            "{} is refused:\n{}",
            config.display(),
            String::from_utf8_lossy(&output.stderr)
        );
    };
    check(&example);
    // The commented `auto_start` is a fixed date, which will be in the past one day: it is
    // checked with a date ahead instead.
    let text = std::fs::read_to_string(&example).expect("read the example");
    let commented = "# auto_start = \"2026-12-24 18:00\"";
    assert!(text.contains(commented), "the example shows `auto_start`");
    let ahead = (chrono::Local::now() + std::time::Duration::from_secs(3600))
        .format("%Y-%m-%d %H:%M")
        .to_string();
    let with_start = dir.path().join("with-start.toml");
    std::fs::write(
        &with_start,
        text.replace(commented, &format!("auto_start = \"{ahead}\"")),
    )
    .expect("write");
    check(&with_start);

    // Its bridge keys are commented out (bridges are not the default); uncommented, they are
    // valid too (the obfs4 line's transport is found on PATH: tests/run installs obfs4proxy).
    let mut uncommented = 0;
    let bridged_text: String = text
        .lines()
        .map(|line| {
            match ["# bridges = ", "# use_bridges = ", "# transports = "]
                .iter()
                .find(|key| line.starts_with(*key))
            {
                Some(_) => {
                    uncommented += 1;
                    format!("{}\n", &line[2..])
                }
                None => format!("{line}\n"),
            }
        })
        .collect();
    assert_eq!(uncommented, 3, "the example lost a bridge key");
    let bridged = dir.path().join("bridged.toml");
    std::fs::write(&bridged, bridged_text).expect("write the bridged example");
    check(&bridged);

    // The receive keys it shows commented out (they need values of the user's own) are
    // valid too.
    let mut uncommented = 0;
    let receive_text: String = text
        .lines()
        .map(|line| match line.strip_prefix("# ") {
            Some(key) if key.starts_with("encrypt_to = ") || key.starts_with("webhook_url = ") => {
                uncommented += 1;
                format!("{key}\n")
            }
            _ => format!("{line}\n"),
        })
        .collect();
    assert_eq!(
        uncommented, 2,
        "the example shows encrypt_to and webhook_url"
    );
    let full = dir.path().join("full-receive.toml");
    std::fs::write(&full, receive_text).expect("write");
    check(&full);

    // The website tab's other `csp`: a policy of the site's own, instead of `csp = true`.
    let policy = "# csp = \"default-src 'self'; style-src 'self' 'unsafe-inline'\"";
    assert!(text.contains(policy), "the example shows a custom csp");
    assert!(
        text.contains("\ncsp = true\n"),
        "the example shows csp = true"
    );
    let with_policy = dir.path().join("website-policy.toml");
    std::fs::write(
        &with_policy,
        text.replace("\ncsp = true\n", "\n")
            .replace(policy, &policy[2..]),
    )
    .expect("write");
    check(&with_policy);
}

/// A bad bridge on the command line stops the host before it starts, naming the option.
#[test]
fn a_malformed_bridge_option_is_refused() {
    let host = TestHost::spawn(&["chat", "--bridge", "obfs4 192.0.2.1:443"]).expect("start");
    let stopped = host.wait_exit().expect("exit");
    assert_eq!(stopped.status.code(), Some(2));
    assert!(
        stopped
            .stderr
            .contains("error: --bridge #1: not a bridge line: "),
        "{}",
        stopped.stderr
    );
    assert!(stopped.stdout.is_empty(), "{}", stopped.stdout);
}

/// A bridge problem in a config file names the file, line and key, and says what to do.
#[test]
fn bridge_errors_in_a_config_name_file_line_and_key() {
    let err = refused(
        "[tor]\nuse_bridges = false\nbridges = [\"obfs4 192.0.2.1:443 316E643333645F6D79216558614D3931657A5F5F cert=abc iat-mode=0\"]\ntransports = [{ protocols = [\"obfs4\"], path = \"/nonexistent/lyrebird\" }]\n[[tab]]\nname = \"a\"\nmode = \"chat\"\n",
    );
    for expected in [
        "onionhost.toml:2: [tor] `use_bridges`: `use_bridges = false`, but `bridges` lists bridges",
        "onionhost.toml:4: [tor] `transports[0].path`: cannot use `/nonexistent/lyrebird`",
    ] {
        assert!(err.contains(expected), "{expected}\n{err}");
    }
}
