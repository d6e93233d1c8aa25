//! The plugin side of the ABI: the C functions [`crate::export_mode!`] puts in a library.
//!
//! A plugin runs its own tokio runtime, created the first time a tab is built, with its own
//! copies of tokio, hyper and axum. The host hands it each visitor connection as a socket file
//! descriptor; the plugin serves it with [`crate::http::harden`] and
//! [`crate::http::serve_connection`] inside that runtime, so the tab gets the same hardening
//! and panic containment as a built-in mode. Every exported function catches panics: nothing
//! ever unwinds into the host.

use std::ffi::c_void;
use std::os::fd::FromRawFd as _;
use std::os::raw::c_int;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, OnceLock, PoisonError, RwLock};

use axum::Router;
use tokio::runtime::Runtime;
use tokio_util::sync::CancellationToken;

use super::abi::{
    ABI_VERSION, Bytes, CreateError, HeaderPrefix, HostCallbacks, MAGIC, PluginHeader, TabArgs,
    make_text_field,
};
use crate::{DynMode, Mode, ModeError, ModeFactory as _, SDK_VERSION, TabContext, TabEvent};

/// The header of a plugin exporting mode `M`; `panic_unwind` is `cfg!(panic = "unwind")` in the
/// plugin crate.
pub const fn header<M: Mode>(panic_unwind: bool) -> PluginHeader {
    PluginHeader {
        prefix: HeaderPrefix {
            magic: MAGIC,
            abi_version: ABI_VERSION,
            header_size: size_of::<PluginHeader>() as u32,
            sdk_version: make_text_field(SDK_VERSION),
            mode_name: make_text_field(M::NAME),
        },
        panic_unwind: panic_unwind as u8,
        reserved: [0; 7],
        create_tab: Some(create_tab::<M> as unsafe extern "C" fn(*const TabArgs) -> *mut c_void),
        serve_connection: Some(
            serve_connection as unsafe extern "C" fn(*mut c_void, c_int) -> c_int,
        ),
        stop_tab: Some(stop_tab as unsafe extern "C" fn(*mut c_void)),
        force_close_tab: Some(force_close_tab as unsafe extern "C" fn(*mut c_void)),
        release_tab: Some(release_tab as unsafe extern "C" fn(*mut c_void)),
    }
}

/// The plugin's own runtime, shared by every tab of this library.
fn runtime() -> Result<&'static Runtime, std::io::Error> {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    if let Some(runtime) = RUNTIME.get() {
        return Ok(runtime);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("onionhost-plugin")
        .build()?;
    // Two first tabs built at once may both get here; the loser's runtime is simply dropped.
    Ok(RUNTIME.get_or_init(|| runtime))
}

/// The host's callbacks of one tab; emptied when the tab is released, so that no callback
/// reaches the host after it may have freed their data.
struct CallbackSlot(RwLock<Option<HostCallbacks>>);

// SAFETY: the ABI requires the host to keep `user_data` valid and the callbacks callable from
// any thread until `release_tab` returns; `clear` (called before that) makes later calls no-ops.
unsafe impl Send for CallbackSlot {}
// SAFETY: as above; the slot itself is only read and written under its lock.
unsafe impl Sync for CallbackSlot {}

impl CallbackSlot {
    fn call(&self, pick: impl Fn(&HostCallbacks) -> super::abi::BytesFn, bytes: &[u8]) {
        let guard = self.0.read().unwrap_or_else(PoisonError::into_inner);
        if let Some(callbacks) = guard.as_ref() {
            // SAFETY: the slot is still filled, so the host's data is alive (see `Send` above);
            // the bytes are valid for the call.
            unsafe { pick(callbacks)(callbacks.user_data, bytes.as_ptr(), bytes.len()) };
        }
    }

    fn event(&self, event: &TabEvent) {
        if let Ok(json) = serde_json::to_vec(event) {
            self.call(|callbacks| callbacks.on_event, &json);
        }
    }

    fn stop(&self, reason: &str) {
        self.call(|callbacks| callbacks.on_stop_request, reason.as_bytes());
    }

    fn clear(&self) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = None;
    }
}

/// One tab of this plugin, behind the handle the host holds.
struct Tab {
    router: Router,
    stopping: CancellationToken,
    force_close: CancellationToken,
    callbacks: Arc<CallbackSlot>,
}

/// Reads a borrowed buffer of the host as text.
///
/// # Safety
/// `bytes` must point to `len` readable bytes (or have `len` 0).
unsafe fn text(bytes: Bytes) -> String {
    if bytes.len == 0 || bytes.ptr.is_null() {
        return String::new();
    }
    // SAFETY: guaranteed by the caller.
    let slice = unsafe { std::slice::from_raw_parts(bytes.ptr, bytes.len) };
    String::from_utf8_lossy(slice).into_owned()
}

/// `create_tab` of mode `M`.
unsafe extern "C" fn create_tab<M: Mode>(args: *const TabArgs) -> *mut c_void {
    if args.is_null() {
        return std::ptr::null_mut();
    }
    // SAFETY: the host passes a valid `TabArgs` that outlives this call (ABI contract).
    let args = unsafe { &*args };
    let built = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: the host's buffers are valid for this call (ABI contract).
        let (name, config) = unsafe { (text(args.tab_name), text(args.config_toml)) };
        build_tab::<M>(&name, &config, args.callbacks)
    }));
    let error = match built {
        Ok(Ok(tab)) => return Box::into_raw(Box::new(tab)).cast(),
        Ok(Err(error)) => error,
        Err(panic) => CreateError::Build {
            message: format!(
                "the mode panicked while starting: {}",
                panic_message(&*panic)
            ),
        },
    };
    if let Ok(json) = serde_json::to_vec(&error) {
        // SAFETY: the sink is valid for this call (ABI contract).
        unsafe { (args.error.write)(args.error.user_data, json.as_ptr(), json.len()) };
    }
    std::ptr::null_mut()
}

/// Parses the section, builds the instance inside the plugin's runtime, hardens its router.
fn build_tab<M: Mode>(
    name: &str,
    config: &str,
    callbacks: HostCallbacks,
) -> Result<Tab, CreateError> {
    let section = toml::from_str::<toml::Table>(config).map_err(|err| CreateError::Config {
        key: Vec::new(),
        message: err.message().to_owned(),
    })?;
    let runtime = runtime().map_err(|err| CreateError::Build {
        message: format!("cannot start the plugin's async runtime: {err}"),
    })?;
    let slot = Arc::new(CallbackSlot(RwLock::new(Some(callbacks))));
    let stopping = CancellationToken::new();
    let ctx = {
        let events = Arc::clone(&slot);
        let stops = Arc::clone(&slot);
        TabContext::new(
            name,
            stopping.clone(),
            move |event| events.event(&event),
            move |reason| stops.stop(&reason),
        )
    };
    // `Mode::build` and `router` may spawn tasks or start timers: they run in our runtime.
    let built = {
        let _entered = runtime.enter();
        DynMode::<M>::new().build(toml::Value::Table(section), ctx)
    };
    match built {
        Ok(router) => Ok(Tab {
            router: crate::http::harden(router),
            stopping,
            force_close: CancellationToken::new(),
            callbacks: slot,
        }),
        Err(err) => {
            // A task the failed build spawned may still hold the context: cut it off.
            stopping.cancel();
            slot.clear();
            Err(match err {
                ModeError::Config(err) => CreateError::Config {
                    key: err.key,
                    message: err.message,
                },
                ModeError::Build(err) => CreateError::Build {
                    message: error_chain(&err),
                },
            })
        }
    }
}

/// `err` and its sources, as one line.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_owned())
}

/// Borrows the tab behind a handle.
///
/// # Safety
/// `tab` must come from `create_tab` and not be released yet.
unsafe fn tab<'a>(tab: *mut c_void) -> Option<&'a Tab> {
    // SAFETY: guaranteed by the caller; a null handle is refused.
    unsafe { tab.cast::<Tab>().as_ref() }
}

unsafe extern "C" fn serve_connection(handle: *mut c_void, fd: c_int) -> c_int {
    if fd < 0 {
        return -1;
    }
    // SAFETY: the host transfers ownership of `fd`, an open connected stream socket, with this
    // call (ABI contract); from here on dropping `socket` closes it.
    let socket = unsafe { std::os::unix::net::UnixStream::from_raw_fd(fd) };
    // SAFETY: the host passes a live handle (ABI contract).
    let Some(tab) = (unsafe { tab(handle) }) else {
        return -1;
    };
    let spawned = catch_unwind(AssertUnwindSafe(|| -> std::io::Result<()> {
        socket.set_nonblocking(true)?;
        let runtime = runtime()?;
        let router = tab.router.clone();
        let stopping = tab.stopping.clone();
        let force_close = tab.force_close.clone();
        runtime.spawn(async move {
            match tokio::net::UnixStream::from_std(socket) {
                Ok(io) => crate::http::serve_connection(io, router, stopping, force_close).await,
                Err(err) => tracing::debug!("cannot serve a connection from the host: {err}"),
            }
        });
        Ok(())
    }));
    match spawned {
        Ok(Ok(())) => 0,
        _ => -1,
    }
}

unsafe extern "C" fn stop_tab(handle: *mut c_void) {
    // SAFETY: the host passes a live handle (ABI contract).
    if let Some(tab) = unsafe { tab(handle) } {
        tab.stopping.cancel();
    }
}

unsafe extern "C" fn force_close_tab(handle: *mut c_void) {
    // SAFETY: the host passes a live handle (ABI contract).
    if let Some(tab) = unsafe { tab(handle) } {
        tab.stopping.cancel();
        tab.force_close.cancel();
    }
}

unsafe extern "C" fn release_tab(handle: *mut c_void) {
    if handle.is_null() {
        return;
    }
    // SAFETY: the handle came from `Box::into_raw` in `create_tab` and the host releases it
    // once, after its last use (ABI contract).
    let tab = unsafe { Box::from_raw(handle.cast::<Tab>()) };
    let _ = catch_unwind(AssertUnwindSafe(move || {
        tab.stopping.cancel();
        tab.force_close.cancel();
        tab.callbacks.clear();
        // The instance's `Drop` may touch tokio (abort a task): run it in our runtime.
        let _entered = runtime().ok().map(Runtime::enter);
        drop(tab);
    }));
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn error_chains_name_every_cause() {
        let err = crate::BuildError::io(
            "open the paste store",
            std::io::Error::new(std::io::ErrorKind::PermissionDenied, "denied"),
        );
        assert_eq!(error_chain(&err), "could not open the paste store: denied");
    }
}
