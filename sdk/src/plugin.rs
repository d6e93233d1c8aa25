//! Modes as plugins: a mode built outside the host, loaded from a shared library at run time.
//!
//! A mode author writes the same `impl Mode` as a built-in mode, builds a `cdylib`, and adds
//! one line at the crate root:
//!
//! ```text
//! onionhost_sdk::export_mode!(MyMode);
//! ```
//!
//! # Why a C ABI
//!
//! A plugin and the host each carry their own copies of std, tokio and axum: they may come from
//! other versions, another `Cargo.lock`, another compiler. Rust objects (a `Router`, a future,
//! a `Box<dyn Mode>`) therefore never cross between them: tokio calls in the plugin's handlers
//! would find no runtime, and a panic would unwind through two copies of std and abort the host.
//! Instead the plugin exports one `#[repr(C)]` header ([`abi::PluginHeader`]) of plain data and
//! C functions, runs its own tokio runtime, and serves each visitor connection the host passes it
//! as a socket file descriptor. Events and stop requests come back as bytes through a table of C
//! callbacks. The host reads the header's magic, ABI version and sdk version before anything
//! else and refuses a mismatch.

pub mod abi;
// The only module of the sdk with `unsafe`: the C side of the plugin boundary.
#[doc(hidden)]
#[allow(unsafe_code)]
pub mod export;

/// Exports the mode `$mode` from a `cdylib` so that the onionhost host can load it as a plugin.
///
/// Use it once, at the root of a crate built with `crate-type = ["cdylib"]`, and keep the
/// default `panic = "unwind"` (the host refuses a plugin built with `panic = "abort"`, which
/// could not contain its panics). The tab's config section is passed to the plugin as TOML and
/// parsed into [`Mode::Config`](crate::Mode::Config) exactly as for a built-in mode, both when
/// the host reads its config (so that errors name their file and line) and when the tab starts.
/// The guide is `docs/writing-a-mode.md` in the onionhost repository.
#[macro_export]
macro_rules! export_mode {
    ($mode:ty) => {
        /// The onionhost plugin header: which plugin ABI this library speaks, and its entry
        /// points.
        #[allow(unsafe_code, non_upper_case_globals)]
        #[unsafe(no_mangle)]
        pub static onionhost_plugin_header: $crate::plugin::abi::PluginHeader =
            $crate::plugin::export::header::<$mode>(cfg!(panic = "unwind"));
    };
}
