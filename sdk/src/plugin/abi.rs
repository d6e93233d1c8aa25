//! The plugin ABI: the `#[repr(C)]` types a plugin library and the host share, version 1.
//!
//! Only plain data crosses this boundary: integers, byte buffers, fixed-size text fields and C
//! function pointers. No Rust type with a layout chosen by the compiler (no `String`, `Box`,
//! trait object, future or axum type) ever does, so a plugin built by another compatible
//! compiler, from another `Cargo.lock`, with its own copies of tokio and axum, is safe to load.
//!
//! # Compatibility
//!
//! [`HeaderPrefix`] is frozen for every ABI version: a host of any version can read it to tell
//! which ABI and sdk a library was built for, and refuse a mismatch before it touches anything
//! else. Everything after the prefix belongs to [`ABI_VERSION`]; any change to it, to the
//! types below or to the meaning of a call bumps [`ABI_VERSION`].

use std::ffi::c_void;
use std::os::raw::c_int;

/// The name of the one symbol a plugin exports: a static [`PluginHeader`].
pub const HEADER_SYMBOL: &str = "onionhost_plugin_header";

/// The first bytes of every plugin header, whatever its ABI version.
pub const MAGIC: [u8; 8] = *b"OHPLUGIN";

/// The version of this ABI. The host loads only plugins built for exactly this version.
pub const ABI_VERSION: u32 = 1;

/// The size of [`HeaderPrefix::sdk_version`].
pub const SDK_VERSION_LEN: usize = 32;

/// The size of [`HeaderPrefix::mode_name`]; a mode's name is at most one byte shorter.
pub const MODE_NAME_LEN: usize = 64;

/// The start of every plugin header; its layout never changes.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct HeaderPrefix {
    /// Always [`MAGIC`].
    pub magic: [u8; 8],
    /// The ABI version the plugin was built for ([`ABI_VERSION`] of its sdk).
    pub abi_version: u32,
    /// `size_of::<PluginHeader>()` in the plugin, so that the host never reads past its end.
    pub header_size: u32,
    /// The plugin's sdk version (UTF-8, padded with NUL bytes).
    pub sdk_version: [u8; SDK_VERSION_LEN],
    /// The plugin's mode name, [`crate::Mode::NAME`] (UTF-8, padded with NUL bytes).
    pub mode_name: [u8; MODE_NAME_LEN],
}

/// The header a plugin exports under [`HEADER_SYMBOL`]: who it is, and its entry points.
///
/// The function pointers are `Option`s so that a host reading a damaged header finds a null
/// pointer, not undefined behaviour; the export macro always fills them.
///
/// # Contract
///
/// - Every entry point may be called from any host thread, and never unwinds: the plugin
///   catches its panics (a panic in a handler becomes a 500, one while building a tab becomes a
///   [`CreateError::Build`]).
/// - A tab handle is valid from `create_tab` until `release_tab`; the host calls nothing with
///   it after that. Tabs are independent: two handles of one library share no state but the
///   plugin's runtime.
/// - The plugin never calls a host callback from inside an entry point except
///   [`ErrorSink::write`] (during `check_config`/`create_tab`) and the [`HostCallbacks`] of a tab
///   while that tab is built; callbacks never call back into the plugin.
/// - The library is never unloaded: its runtime's threads run until the process exits.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct PluginHeader {
    /// Identifies the library as a plugin, and for which ABI and sdk.
    pub prefix: HeaderPrefix,
    /// 1 when the plugin was built with `panic = "unwind"`, so that it can contain its panics.
    /// A plugin built with `panic = "abort"` would take the host down on its first panic; the
    /// host refuses it.
    pub panic_unwind: u8,
    /// Padding, always zero.
    pub reserved: [u8; 7],
    /// Parses and validates a config section (`[tab.<NAME>]` as a TOML document) without
    /// building anything, so that `onionhost check` can report a plugin's config errors with
    /// their file and line. Returns 0 when the section is valid; otherwise writes why to
    /// `error` and returns non-zero. Needs no runtime and starts none.
    pub check_config: Option<unsafe extern "C" fn(config_toml: Bytes, error: ErrorSink) -> c_int>,
    /// Builds one tab. Returns its handle, or null after reporting why to
    /// [`TabArgs::error`].
    pub create_tab: Option<unsafe extern "C" fn(args: *const TabArgs) -> *mut c_void>,
    /// Serves one visitor connection on `fd`, one end of a connected stream socket; the plugin
    /// owns the descriptor from this call on, whatever the result. Returns 0 when the
    /// connection is being served, non-zero when the tab cannot serve (the plugin has closed
    /// the descriptor).
    pub serve_connection: Option<unsafe extern "C" fn(tab: *mut c_void, fd: c_int) -> c_int>,
    /// Asks the tab to stop gracefully: its shutdown signal fires, requests in flight finish,
    /// no new request is read. Idempotent.
    pub stop_tab: Option<unsafe extern "C" fn(tab: *mut c_void)>,
    /// Closes every connection of the tab at once. Idempotent.
    pub force_close_tab: Option<unsafe extern "C" fn(tab: *mut c_void)>,
    /// Stops the tab, drops its instance and frees the handle. After it returns the plugin
    /// never calls the tab's callbacks again, and the handle must not be used.
    pub release_tab: Option<unsafe extern "C" fn(tab: *mut c_void)>,
}

/// A borrowed byte buffer: valid for the duration of the call it is passed to.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct Bytes {
    /// The first byte; may dangle when `len` is 0.
    pub ptr: *const u8,
    /// The number of bytes.
    pub len: usize,
}

impl Bytes {
    /// Borrows `bytes` for a call.
    pub fn new(bytes: &[u8]) -> Self {
        Self {
            ptr: bytes.as_ptr(),
            len: bytes.len(),
        }
    }
}

/// A callback that receives bytes: `(user_data, ptr, len)`.
pub type BytesFn = unsafe extern "C" fn(user_data: *mut c_void, ptr: *const u8, len: usize);

/// How a tab talks to the host. The host keeps `user_data` valid, and the functions callable
/// from any thread at any time, until `release_tab` returns (or `create_tab` failed).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct HostCallbacks {
    /// Passed back to every callback.
    pub user_data: *mut c_void,
    /// A [`crate::TabEvent`] as JSON.
    pub on_event: BytesFn,
    /// The tab asks to be stopped; the bytes are the reason (UTF-8).
    pub on_stop_request: BytesFn,
}

/// Where `check_config` or `create_tab` writes why it failed, once, as a [`CreateError`] in
/// JSON. Valid only during the call.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct ErrorSink {
    /// Passed back to `write`.
    pub user_data: *mut c_void,
    /// Receives the JSON text.
    pub write: BytesFn,
}

/// What `create_tab` needs to build a tab.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct TabArgs {
    /// The tab's name (UTF-8).
    pub tab_name: Bytes,
    /// The mode's config section, `[tab.<NAME>]`, as a TOML document (UTF-8).
    pub config_toml: Bytes,
    /// The tab's way back to the host.
    pub callbacks: HostCallbacks,
    /// Where a failure is explained.
    pub error: ErrorSink,
}

/// Why `check_config` or `create_tab` failed, as the JSON written to an [`ErrorSink`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CreateError {
    /// The config section is wrong; `key` is the path of the offending key inside it.
    Config {
        /// The key's path, empty for the whole section.
        key: Vec<String>,
        /// What is wrong, and how to fix it.
        message: String,
    },
    /// The tab could not be built (including a panic in [`crate::Mode::build`]).
    Build {
        /// What went wrong, with its causes.
        message: String,
    },
}

/// Reads a NUL-padded text field of a header; `None` when it is not UTF-8.
pub fn text_field(field: &[u8]) -> Option<&str> {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    std::str::from_utf8(&field[..end]).ok()
}

/// Makes a NUL-padded text field at compile time; fails the build when `text` does not fit.
pub const fn make_text_field<const N: usize>(text: &str) -> [u8; N] {
    let bytes = text.as_bytes();
    assert!(
        bytes.len() < N,
        "a plugin header text field (mode name or sdk version) is too long"
    );
    let mut field = [0u8; N];
    let mut i = 0;
    while i < bytes.len() {
        field[i] = bytes[i];
        i += 1;
    }
    field
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_fields_round_trip() {
        let field: [u8; 8] = make_text_field("chat");
        assert_eq!(text_field(&field), Some("chat"));
        assert_eq!(text_field(&[0xff, 0]), None);
        assert_eq!(text_field(b"full"), Some("full"));
    }

    #[test]
    fn prefix_layout_is_frozen() {
        // The prefix is read by hosts of every ABI version: its layout must never change.
        assert_eq!(std::mem::size_of::<HeaderPrefix>(), 8 + 4 + 4 + 32 + 64);
        assert_eq!(std::mem::offset_of!(HeaderPrefix, abi_version), 8);
        assert_eq!(std::mem::offset_of!(HeaderPrefix, header_size), 12);
        assert_eq!(std::mem::offset_of!(HeaderPrefix, sdk_version), 16);
        assert_eq!(std::mem::offset_of!(HeaderPrefix, mode_name), 48);
    }

    #[test]
    #[cfg(target_pointer_width = "64")]
    fn the_version_1_header_layout_is_pinned() {
        // Changing any of this is a new ABI: bump ABI_VERSION (and the C header of the tests).
        assert_eq!(ABI_VERSION, 1);
        assert_eq!(std::mem::size_of::<PluginHeader>(), 112 + 8 + 6 * 8);
        assert_eq!(std::mem::offset_of!(PluginHeader, panic_unwind), 112);
        assert_eq!(std::mem::offset_of!(PluginHeader, check_config), 120);
        assert_eq!(std::mem::offset_of!(PluginHeader, create_tab), 128);
        assert_eq!(std::mem::offset_of!(PluginHeader, serve_connection), 136);
        assert_eq!(std::mem::offset_of!(PluginHeader, stop_tab), 144);
        assert_eq!(std::mem::offset_of!(PluginHeader, force_close_tab), 152);
        assert_eq!(std::mem::offset_of!(PluginHeader, release_tab), 160);
        assert_eq!(std::mem::size_of::<TabArgs>(), 16 + 16 + 24 + 16);
    }

    #[test]
    fn create_errors_are_tagged_json() {
        let err = CreateError::Config {
            key: vec!["limits".into(), "max".into()],
            message: "too big".into(),
        };
        let json = serde_json::to_string(&err).unwrap_or_default();
        assert_eq!(
            json,
            r#"{"kind":"config","key":["limits","max"],"message":"too big"}"#
        );
    }
}
