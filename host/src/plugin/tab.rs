//! One tab of a plugin, seen from the host: its handle, the calls into the plugin, and the
//! C callbacks through which the plugin reports events and asks to stop.
//!
//! With `library.rs`, the only place where the host runs `unsafe` code. Every call passes
//! plain data only; every callback catches its panics so that none unwinds into the plugin.

use std::ffi::c_void;
use std::os::fd::{IntoRawFd as _, OwnedFd};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::ptr::NonNull;

use onionhost_sdk::plugin::abi::{Bytes, CreateError, ErrorSink, HostCallbacks, TabArgs};
use onionhost_sdk::{BuildError, ConfigError, ModeError, TabContext, TabEvent};

use super::library::Functions;

/// The most bytes of an event, a create error or a stop reason the host takes from a plugin.
const MAX_MESSAGE: usize = 64 * 1024;

/// What the plugin's callbacks reach: the tab's context on the host.
struct HostSide {
    ctx: TabContext,
}

/// A tab built by a plugin. Dropping it releases the tab in the plugin.
pub(crate) struct PluginTab {
    functions: Functions,
    handle: NonNull<c_void>,
    /// Leaked for the plugin's callbacks; freed in `Drop` after `release_tab` returned.
    host: NonNull<HostSide>,
}

// SAFETY: the ABI requires the plugin's functions to be callable from any thread, on a live
// handle; the handle is used only through them, and `host` only by the callbacks (which only
// read it, and `TabContext` is `Sync`) until `Drop` frees it.
unsafe impl Send for PluginTab {}
// SAFETY: as above: every method takes `&self` and calls thread-safe plugin functions.
unsafe impl Sync for PluginTab {}

impl PluginTab {
    /// Asks the plugin to build a tab from `config_toml` (the tab's section as TOML text).
    pub(crate) fn create(
        functions: Functions,
        config_toml: &str,
        ctx: TabContext,
    ) -> Result<Self, ModeError> {
        let tab_name = ctx.tab_name().to_owned();
        let host = NonNull::from(Box::leak(Box::new(HostSide { ctx })));
        let mut error = Vec::new();
        let args = TabArgs {
            tab_name: Bytes::new(tab_name.as_bytes()),
            config_toml: Bytes::new(config_toml.as_bytes()),
            callbacks: HostCallbacks {
                user_data: host.as_ptr().cast(),
                on_event,
                on_stop_request,
            },
            error: ErrorSink {
                user_data: (&raw mut error).cast(),
                write: on_error,
            },
        };
        // SAFETY: `args` and the buffers it borrows outlive the call; `host` stays valid until
        // `release_tab` returns (in `Drop`), or is freed below if the plugin failed, in which
        // case the plugin no longer uses it (ABI contract).
        let handle = unsafe { (functions.create_tab)(&raw const args) };
        match NonNull::new(handle) {
            Some(handle) => Ok(Self {
                functions,
                handle,
                host,
            }),
            None => {
                // SAFETY: `host` came from `Box::leak` above and the failed plugin dropped
                // every reference to it.
                drop(unsafe { Box::from_raw(host.as_ptr()) });
                Err(create_error(&error))
            }
        }
    }

    /// Hands a connection to the plugin; the plugin owns `socket` from here on.
    pub(crate) fn serve(&self, socket: OwnedFd) -> Result<(), ()> {
        // SAFETY: the handle is live (released only in `Drop`); the descriptor's ownership
        // moves to the plugin, which closes it whatever the result.
        let status = unsafe {
            (self.functions.serve_connection)(self.handle.as_ptr(), socket.into_raw_fd())
        };
        if status == 0 { Ok(()) } else { Err(()) }
    }

    /// Asks the tab to stop gracefully.
    pub(crate) fn stop(&self) {
        // SAFETY: the handle is live (released only in `Drop`).
        unsafe { (self.functions.stop_tab)(self.handle.as_ptr()) };
    }

    /// Closes every connection of the tab at once.
    pub(crate) fn force_close(&self) {
        // SAFETY: the handle is live (released only in `Drop`).
        unsafe { (self.functions.force_close_tab)(self.handle.as_ptr()) };
    }
}

impl Drop for PluginTab {
    fn drop(&mut self) {
        // SAFETY: this is the handle's last use. After `release_tab` returns the plugin never
        // calls our callbacks again, so `host` (from `Box::leak` in `create`) can be freed.
        unsafe {
            (self.functions.release_tab)(self.handle.as_ptr());
            drop(Box::from_raw(self.host.as_ptr()));
        }
    }
}

/// Asks the plugin to parse and validate `config_toml` (a tab's section as TOML text) without
/// building anything.
pub(crate) fn check_config(functions: Functions, config_toml: &str) -> Result<(), ModeError> {
    let mut error = Vec::new();
    let sink = ErrorSink {
        user_data: (&raw mut error).cast(),
        write: on_error,
    };
    // SAFETY: the buffer and the sink (and the `Vec` it points to) outlive the call; the plugin
    // writes to the sink only during it (ABI contract).
    let status = unsafe { (functions.check_config)(Bytes::new(config_toml.as_bytes()), sink) };
    if status == 0 {
        Ok(())
    } else {
        Err(create_error(&error))
    }
}

/// Turns what a plugin wrote to the error sink into the host's error types.
fn create_error(json: &[u8]) -> ModeError {
    match serde_json::from_slice::<CreateError>(json) {
        Ok(CreateError::Config { key, message }) => ConfigError { key, message }.into(),
        Ok(CreateError::Build { message }) => BuildError::Other(message).into(),
        Err(_) => BuildError::Other("the plugin failed to start and did not say why".into()).into(),
    }
}

/// Reads a buffer the plugin passed to a callback.
///
/// # Safety
/// `ptr` must point to `len` readable bytes (or `len` be 0) for the duration of the call.
unsafe fn borrowed<'a>(ptr: *const u8, len: usize) -> &'a [u8] {
    if ptr.is_null() || len == 0 {
        return &[];
    }
    // SAFETY: guaranteed by the caller.
    unsafe { std::slice::from_raw_parts(ptr, len) }
}

unsafe extern "C" fn on_event(user_data: *mut c_void, ptr: *const u8, len: usize) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `user_data` is this tab's `HostSide`, alive until `release_tab` returns; the
        // bytes are valid for the call (ABI contract).
        let (host, json) = unsafe { (&*user_data.cast::<HostSide>(), borrowed(ptr, len)) };
        if json.len() > MAX_MESSAGE {
            tracing::debug!("a plugin reported an event too large to read");
            return;
        }
        match serde_json::from_slice::<TabEvent>(json) {
            Ok(event) => host.ctx.report(event),
            // A newer plugin may report events this host does not know yet.
            Err(err) => tracing::debug!("a plugin reported an event this host cannot read: {err}"),
        }
    }));
}

unsafe extern "C" fn on_stop_request(user_data: *mut c_void, ptr: *const u8, len: usize) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: as in `on_event`.
        let (host, reason) = unsafe { (&*user_data.cast::<HostSide>(), borrowed(ptr, len)) };
        let reason = &reason[..reason.len().min(MAX_MESSAGE)];
        host.ctx
            .request_stop(String::from_utf8_lossy(reason).into_owned());
    }));
}

unsafe extern "C" fn on_error(user_data: *mut c_void, ptr: *const u8, len: usize) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `user_data` is the `Vec` on the stack of `create` or `check_config`, valid
        // during the plugin call, the only time the plugin may call this; the bytes are valid
        // for the call.
        let (error, bytes) = unsafe { (&mut *user_data.cast::<Vec<u8>>(), borrowed(ptr, len)) };
        error.clear();
        error.extend_from_slice(&bytes[..bytes.len().min(MAX_MESSAGE)]);
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_errors_keep_the_key_path() {
        let err = create_error(br#"{"kind":"config","key":["max_bytes"],"message":"too big"}"#);
        assert_eq!(err.to_string(), "`max_bytes`: too big");
        let err = create_error(br#"{"kind":"build","message":"no"}"#);
        assert_eq!(err.to_string(), "no");
        let err = create_error(b"garbage");
        assert!(err.to_string().contains("did not say why"));
    }
}
