//! Plugin libraries for the end-to-end tests, each built once per test process: the pastebin
//! example and the `panicky` test mode (each its own Cargo workspace, built with its own
//! `Cargo.lock`, like any plugin built outside the host), the chat mode built as a plugin, and
//! small C libraries that are not (or not quite) plugins.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

use anyhow::{Context as _, Result, bail};

/// The root of the onionhost source tree.
pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
}

/// Runs `command` (a cargo build), one at a time: the machine running the tests also runs other
/// tests' hosts, and two nested builds at once would starve them.
fn run_build(mut command: Command, what: &str) {
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let _turn = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let status = command
        .status()
        .unwrap_or_else(|err| panic!("could not run cargo to build {what}: {err}"));
    assert!(status.success(), "building {what} failed");
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

/// The file name of a shared library on this platform (`libNAME.so`).
fn library_name(crate_name: &str) -> String {
    format!(
        "{}{}{}",
        std::env::consts::DLL_PREFIX,
        crate_name.replace('-', "_"),
        std::env::consts::DLL_SUFFIX
    )
}

/// Builds the crate of `manifest` (its own workspace, `--locked`) into `target_dir`; returns
/// the path of its library.
fn build_separately(manifest: &Path, target_dir: &Path, crate_name: &str) -> PathBuf {
    let mut command = cargo();
    command
        .args(["build", "--quiet", "--locked", "--manifest-path"])
        .arg(manifest)
        .arg("--target-dir")
        .arg(target_dir);
    run_build(command, &format!("the plugin {}", manifest.display()));
    let library = target_dir.join("debug").join(library_name(crate_name));
    assert!(library.is_file(), "cargo built no {}", library.display());
    library
}

/// `examples/pastebin`, built in its own workspace into `examples/pastebin/target`.
pub fn pastebin() -> &'static Path {
    static LIB: OnceLock<PathBuf> = OnceLock::new();
    LIB.get_or_init(|| {
        let dir = repo_root().join("examples/pastebin");
        build_separately(
            &dir.join("Cargo.toml"),
            &dir.join("target"),
            "onionhost-pastebin",
        )
    })
}

/// `tests/plugins/panicky`, built in its own workspace into `target/plugins`.
pub fn panicky() -> &'static Path {
    static LIB: OnceLock<PathBuf> = OnceLock::new();
    LIB.get_or_init(|| {
        build_separately(
            &repo_root().join("tests/plugins/panicky/Cargo.toml"),
            &repo_root().join("target/plugins"),
            "onionhost-test-panicky",
        )
    })
}

/// The chat mode built as a plugin, from this workspace:
/// `cargo rustc -p onionhost-chat --features plugin --crate-type cdylib`, in the profile of the
/// tests.
pub fn chat() -> &'static Path {
    static LIB: OnceLock<PathBuf> = OnceLock::new();
    LIB.get_or_init(|| {
        // Into the target directory (and profile) of this test binary, wherever that is:
        // target/<profile>/deps/e2e-HASH -> target/<profile>.
        let exe = std::env::current_exe().expect("no path for the test binary");
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("test binary outside target/");
        let mut command = cargo();
        command
            .args([
                "rustc",
                "--quiet",
                "-p",
                "onionhost-chat",
                "--features",
                "plugin",
                "--crate-type",
                "cdylib",
            ])
            .current_dir(repo_root());
        if profile_dir
            .file_name()
            .is_some_and(|name| name == "release")
        {
            command.arg("--release");
        }
        run_build(command, "the chat plugin");
        let library = profile_dir.join(library_name("onionhost-chat"));
        assert!(library.is_file(), "cargo built no {}", library.display());
        library
    })
}

/// A plugin header in C, laid out as `onionhost_sdk::plugin::abi::PluginHeader` of ABI 1
/// (frozen prefix, then the version-1 part), with the given fields and no entry points.
pub fn c_header(abi_version: u32, sdk_version: &str, panic_unwind: bool) -> String {
    format!(
        r#"#include <stdint.h>
struct prefix {{ char magic[8]; uint32_t abi_version; uint32_t header_size; char sdk_version[32]; char mode_name[64]; }};
struct header {{ struct prefix prefix; uint8_t panic_unwind; uint8_t reserved[7]; void *entry_points[6]; }};
__attribute__((visibility("default"))) const struct header onionhost_plugin_header = {{
  {{ {{'O','H','P','L','U','G','I','N'}}, {abi_version}, sizeof(struct header), "{sdk_version}", "fake" }},
  {panic}, {{0}}, {{0}}
}};
"#,
        panic = u8::from(panic_unwind),
    )
}

/// Compiles `source` (C) into the shared library `dir/name` with the system's C compiler.
pub fn c_library(dir: &Path, name: &str, source: &str) -> Result<PathBuf> {
    let c_file = dir.join(format!("{name}.c"));
    std::fs::write(&c_file, source).context("write the C source")?;
    let library = dir.join(name);
    let compiler = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let status = Command::new(&compiler)
        .args(["-shared", "-fPIC", "-o"])
        .arg(&library)
        .arg(&c_file)
        .status()
        .with_context(|| {
            format!(
                "cannot run the C compiler `{compiler}` to build a test library: install one \
                 (Debian: `apt-get install gcc`) or set CC"
            )
        })?;
    if !status.success() {
        bail!("`{compiler}` failed to build {}", library.display());
    }
    Ok(library)
}
