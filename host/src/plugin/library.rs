//! Opening a plugin's shared library and checking its header before anything else is touched.
//!
//! With `tab.rs`, the only place where the host runs `unsafe` code: here `dlopen` and reading
//! the header static. A library is never unloaded: its code may run (its runtime's threads, its
//! callbacks) until the process ends, and `dlclose` would unmap it under them.

use std::ffi::c_void;
use std::mem::ManuallyDrop;
use std::os::raw::c_int;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, anyhow, bail};
use libloading::os::unix::{Library, RTLD_LOCAL, RTLD_NOW};
use onionhost_sdk::SDK_VERSION;
use onionhost_sdk::plugin::abi::{
    ABI_VERSION, Bytes, ErrorSink, HEADER_SYMBOL, HeaderPrefix, MAGIC, PluginHeader, TabArgs,
    text_field,
};

/// The entry points of a loaded plugin, checked to be present.
#[derive(Clone, Copy)]
pub(crate) struct Functions {
    pub(crate) check_config: unsafe extern "C" fn(Bytes, ErrorSink) -> c_int,
    pub(crate) create_tab: unsafe extern "C" fn(*const TabArgs) -> *mut c_void,
    pub(crate) serve_connection: unsafe extern "C" fn(*mut c_void, c_int) -> c_int,
    pub(crate) stop_tab: unsafe extern "C" fn(*mut c_void),
    pub(crate) force_close_tab: unsafe extern "C" fn(*mut c_void),
    pub(crate) release_tab: unsafe extern "C" fn(*mut c_void),
}

/// A plugin library, loaded for good, whose header matched this host.
pub(crate) struct Plugin {
    /// Where it was loaded from (canonical).
    pub(crate) path: PathBuf,
    /// Its mode's name.
    pub(crate) mode: String,
    /// Its entry points.
    pub(crate) functions: Functions,
}

/// Loads the library at `path` (which must exist) and checks that it is a plugin for this host.
pub(crate) fn open(path: &Path) -> anyhow::Result<Plugin> {
    let path = std::fs::canonicalize(path).map_err(|err| {
        if err.kind() == std::io::ErrorKind::NotFound {
            anyhow!(
                "the file does not exist: build the plugin (`cargo build --release` in its crate) \
                 and check the tab's `plugin` path (a relative path is relative to the config \
                 file's folder)"
            )
        } else {
            anyhow!(err).context("cannot find the file")
        }
    })?;
    // SAFETY: loading a library runs its initialisers. The user named this library in their
    // config: that is the decision to trust its code, as with any program they run. RTLD_NOW
    // makes a missing symbol fail here rather than later; RTLD_LOCAL keeps its symbols out of
    // the way of other libraries.
    let library = unsafe { Library::open(Some(&path), RTLD_NOW | RTLD_LOCAL) }
        .context("cannot load it as a shared library")?;
    // Never unload (see the module's doc), not even a library refused below: its initialisers
    // have run and may have started threads, which `dlclose` would unmap the code of.
    let library = ManuallyDrop::new(library);
    let symbol = format!("{HEADER_SYMBOL}\0");
    // SAFETY: we only take the symbol's address here; what it points to is checked below.
    let prefix: *const HeaderPrefix =
        match unsafe { library.get::<*const HeaderPrefix>(symbol.as_bytes()) } {
            Ok(symbol) => *symbol,
            Err(_) => bail!(
                "it is not an onionhost plugin: it has no `{HEADER_SYMBOL}` symbol (a plugin is a \
             cdylib that calls `onionhost_sdk::export_mode!(YourMode)`)"
            ),
        };
    if prefix.is_null() {
        bail!("it is not an onionhost plugin: its `{HEADER_SYMBOL}` is null");
    }
    // SAFETY: the symbol lives in a library that is never unloaded. Every plugin, of any ABI
    // version, starts its header with the frozen `HeaderPrefix`, which starts with the magic:
    // read that first, so that a library merely exporting the same name (as something else) is
    // refused after reading 8 bytes. The reads are unaligned-safe.
    let magic = unsafe { prefix.cast::<[u8; 8]>().read_unaligned() };
    if magic != MAGIC {
        bail!(
            "it is not an onionhost plugin: its `{HEADER_SYMBOL}` does not start with the plugin \
             magic bytes"
        );
    }
    // SAFETY: as above; the magic says the whole frozen prefix is there.
    let found = unsafe { prefix.read_unaligned() };
    check_prefix(&found)?;
    // SAFETY: the prefix says this is a plugin of our ABI version whose header is at least as
    // large as ours, so the whole `PluginHeader` is there, with the layout we expect. Its
    // function pointers are `Option`s: a null one reads as `None`, which is refused.
    let header = unsafe { prefix.cast::<PluginHeader>().read_unaligned() };
    let functions = check_header(&header)?;
    Ok(Plugin {
        path,
        mode: text_field(&found.mode_name).unwrap_or_default().to_owned(),
        functions,
    })
}

/// Checks the frozen part of a header: magic, ABI version, size, names.
fn check_prefix(prefix: &HeaderPrefix) -> anyhow::Result<()> {
    if prefix.magic != MAGIC {
        bail!(
            "it is not an onionhost plugin: its `{HEADER_SYMBOL}` does not start with the plugin \
             magic bytes"
        );
    }
    let sdk = text_field(&prefix.sdk_version).unwrap_or("(unreadable)");
    if prefix.abi_version != ABI_VERSION {
        bail!(
            "it was built for another plugin ABI: expected ABI version {ABI_VERSION} \
             (onionhost-sdk {SDK_VERSION}), found ABI version {} (onionhost-sdk {sdk}); rebuild \
             the plugin against onionhost-sdk {SDK_VERSION}, or run it with an onionhost that \
             speaks plugin ABI version {}",
            prefix.abi_version,
            prefix.abi_version
        );
    }
    let size = usize::try_from(prefix.header_size).unwrap_or(0);
    if size < size_of::<PluginHeader>() {
        bail!(
            "its plugin header is damaged: expected at least {} bytes, found {size}; rebuild \
             the plugin against onionhost-sdk {SDK_VERSION}",
            size_of::<PluginHeader>()
        );
    }
    if !sdk_compatible(sdk, SDK_VERSION) {
        bail!(
            "it was built with an incompatible sdk: expected onionhost-sdk {SDK_VERSION} or a \
             compatible version ({}), found onionhost-sdk {sdk}; rebuild the plugin against \
             onionhost-sdk {SDK_VERSION}",
            compatible_range(SDK_VERSION)
        );
    }
    match text_field(&prefix.mode_name) {
        Some(name) if !name.is_empty() => Ok(()),
        _ => bail!("its plugin header has no readable mode name; rebuild the plugin"),
    }
}

/// Whether a plugin built with sdk `theirs` may run in a host built with sdk `ours`.
///
/// The ABI version covers the header's layout and calls; the sdk version covers what travels
/// through them as JSON or TOML (events, errors, config sections). Cargo's rule for compatible
/// versions decides: the same major version, and for 0.x the same minor version.
fn sdk_compatible(theirs: &str, ours: &str) -> bool {
    match (major_minor(theirs), major_minor(ours)) {
        (Some((0, their_minor)), Some((0, our_minor))) => their_minor == our_minor,
        (Some((their_major, _)), Some((our_major, _))) => their_major == our_major,
        _ => false,
    }
}

fn major_minor(version: &str) -> Option<(u64, u64)> {
    let mut parts = version.split(['.', '-', '+']);
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// The compatible versions of `ours`, for messages ("0.1.x").
fn compatible_range(ours: &str) -> String {
    match major_minor(ours) {
        Some((0, minor)) => format!("0.{minor}.x"),
        Some((major, _)) => format!("{major}.x"),
        None => ours.to_owned(),
    }
}

/// Checks the ABI-specific part of a header and takes its entry points.
fn check_header(header: &PluginHeader) -> anyhow::Result<Functions> {
    if header.panic_unwind != 1 {
        bail!(
            "it was built with `panic = \"abort\"`, so a panic in one of its handlers would end \
             the whole host: rebuild it with the default `panic = \"unwind\"`"
        );
    }
    let missing = || anyhow!("its plugin header lacks an entry point; rebuild the plugin");
    Ok(Functions {
        check_config: header.check_config.ok_or_else(missing)?,
        create_tab: header.create_tab.ok_or_else(missing)?,
        serve_connection: header.serve_connection.ok_or_else(missing)?,
        stop_tab: header.stop_tab.ok_or_else(missing)?,
        force_close_tab: header.force_close_tab.ok_or_else(missing)?,
        release_tab: header.release_tab.ok_or_else(missing)?,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use onionhost_sdk::plugin::abi::make_text_field;

    use super::*;

    fn prefix() -> HeaderPrefix {
        HeaderPrefix {
            magic: MAGIC,
            abi_version: ABI_VERSION,
            header_size: u32::try_from(size_of::<PluginHeader>()).unwrap(),
            sdk_version: make_text_field(SDK_VERSION),
            mode_name: make_text_field("pastebin"),
        }
    }

    #[test]
    fn a_current_prefix_passes() {
        check_prefix(&prefix()).unwrap();
    }

    #[test]
    fn another_abi_is_refused_with_expected_found_and_fix() {
        let mut other = prefix();
        other.abi_version = 7;
        other.sdk_version = make_text_field("9.9.9");
        let err = check_prefix(&other).unwrap_err().to_string();
        assert!(err.contains("expected ABI version 1"), "{err}");
        assert!(
            err.contains("found ABI version 7 (onionhost-sdk 9.9.9)"),
            "{err}"
        );
        assert!(
            err.contains(&format!(
                "rebuild the plugin against onionhost-sdk {SDK_VERSION}"
            )),
            "{err}"
        );
    }

    #[test]
    fn an_incompatible_sdk_is_refused_with_expected_found_and_fix() {
        let mut other = prefix();
        other.sdk_version = make_text_field("9.9.9");
        let err = check_prefix(&other).unwrap_err().to_string();
        assert!(
            err.contains(&format!("expected onionhost-sdk {SDK_VERSION}")),
            "{err}"
        );
        assert!(err.contains("found onionhost-sdk 9.9.9"), "{err}");
        assert!(err.contains("rebuild the plugin"), "{err}");
    }

    #[test]
    fn sdk_versions_follow_cargo_compatibility() {
        assert!(sdk_compatible("0.1.0", "0.1.7"));
        assert!(sdk_compatible("0.1.9-rc.1", "0.1.0"));
        assert!(!sdk_compatible("0.2.0", "0.1.0"));
        assert!(sdk_compatible("1.4.0", "1.0.2"));
        assert!(!sdk_compatible("2.0.0", "1.0.0"));
        assert!(!sdk_compatible("garbage", "0.1.0"));
        assert_eq!(compatible_range("0.1.0"), "0.1.x");
        assert_eq!(compatible_range("1.2.3"), "1.x");
    }

    #[test]
    fn wrong_magic_is_refused() {
        let mut other = prefix();
        other.magic = *b"NOTAPLUG";
        let err = check_prefix(&other).unwrap_err().to_string();
        assert!(err.contains("not an onionhost plugin"), "{err}");
    }

    #[test]
    fn a_short_header_is_refused() {
        let mut other = prefix();
        other.header_size = 16;
        let err = check_prefix(&other).unwrap_err().to_string();
        assert!(err.contains("damaged"), "{err}");
    }

    #[test]
    fn missing_entry_points_and_abort_builds_are_refused() {
        let header = PluginHeader {
            prefix: prefix(),
            panic_unwind: 1,
            reserved: [0; 7],
            check_config: None,
            create_tab: None,
            serve_connection: None,
            stop_tab: None,
            force_close_tab: None,
            release_tab: None,
        };
        let err = check_header(&header).err().unwrap().to_string();
        assert!(err.contains("lacks an entry point"), "{err}");
        let aborting = PluginHeader {
            panic_unwind: 0,
            ..header
        };
        let err = check_header(&aborting).err().unwrap().to_string();
        assert!(err.contains("panic = \"abort\""), "{err}");
    }

    #[test]
    fn a_missing_file_says_how_to_fix_it() {
        let err = open(Path::new("/nonexistent/libnothing.so"))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("does not exist"), "{err}");
    }
}
