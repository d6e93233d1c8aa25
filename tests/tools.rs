//! Finding the programs the tests drive (tor, curl, nft, chromium, ...): on `PATH` or where
//! Debian installs them, or an error that names the Debian package to install.

use std::path::PathBuf;

use anyhow::{Context, Result};

/// Finds `name` on `PATH` or where Debian installs it (`/usr/sbin` is not on every `PATH`).
/// The error says that `purpose` (such as "the local Tor test network") needs it and how to
/// install Debian's `package`, which has it.
pub fn find_tool(name: &str, package: &str, purpose: &str) -> Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(
            [
                "/usr/sbin",
                "/usr/bin",
                "/sbin",
                "/usr/local/sbin",
                "/usr/local/bin",
            ]
            .map(PathBuf::from),
        )
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .with_context(|| {
            format!(
                "{purpose} needs `{name}`: install Debian's {package} package: \
                 apt-get install -y {package}"
            )
        })
}

#[cfg(test)]
mod tests {
    use super::find_tool;

    #[test]
    fn a_missing_tool_says_who_needs_it_and_how_to_install_it() {
        let err = find_tool(
            "onionhost-no-such-tool",
            "tor",
            "the local Tor test network",
        )
        .expect_err("found a tool that is not there");
        let message = format!("{err:#}");
        assert!(
            message.contains("the local Tor test network needs `onionhost-no-such-tool`"),
            "{message}"
        );
        assert!(message.contains("apt-get install -y tor"), "{message}");
    }

    #[test]
    fn a_tool_is_found_on_the_path() {
        let sh = find_tool("sh", "dash", "this test").expect("sh is on every machine");
        assert!(sh.is_file(), "{}", sh.display());
    }
}
