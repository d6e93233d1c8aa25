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
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock};

use axum::Router;
use tokio::runtime::Runtime;
use tokio_util::sync::CancellationToken;

use super::abi::{
    ABI_VERSION, Bytes, CreateError, ErrorSink, HeaderPrefix, HostCallbacks, MAGIC, PluginHeader,
    TabArgs, make_text_field,
};
use crate::host::{DynMode, ModeFactory as _};
use crate::{ConfigError, Mode, ModeError, SDK_VERSION, TabContext, TabEvent, Visitor};

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
        check_config: Some(check_config::<M> as unsafe extern "C" fn(Bytes, ErrorSink) -> c_int),
        create_tab: Some(create_tab::<M> as unsafe extern "C" fn(*const TabArgs) -> *mut c_void),
        serve_connection: Some(
            serve_connection as unsafe extern "C" fn(*mut c_void, c_int) -> c_int,
        ),
        stop_tab: Some(stop_tab as unsafe extern "C" fn(*mut c_void)),
        force_close_tab: Some(force_close_tab as unsafe extern "C" fn(*mut c_void)),
        release_tab: Some(release_tab as unsafe extern "C" fn(*mut c_void)),
    }
}

/// Runs `f`, turning a panic into `fallback`: nothing may unwind out of an `extern "C"`
/// function into the host (it would abort the process, or worse with another std).
fn contained<T>(fallback: T, f: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(value) => value,
        Err(payload) => {
            // The payload's own `Drop` could panic again, outside any catch: leak it instead.
            std::mem::forget(payload);
            fallback
        }
    }
}

/// The plugin's own runtime, shared by every tab of this library and never dropped: it lives
/// in a static of a library the host never unloads, so its threads run until the process ends.
fn runtime() -> Result<&'static Runtime, std::io::Error> {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    static STARTING: Mutex<()> = Mutex::new(());
    if let Some(runtime) = RUNTIME.get() {
        return Ok(runtime);
    }
    // One runtime only, even when two first tabs are built at once: a second one would have to
    // be dropped, which tokio refuses on some threads.
    let _starting = STARTING.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(runtime) = RUNTIME.get() {
        return Ok(runtime);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("onionhost-plugin")
        .build()?;
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

/// Writes `error` to the host's sink.
///
/// # Safety
/// `sink` must be valid for the current call (ABI contract).
unsafe fn report_error(sink: ErrorSink, error: &CreateError) {
    if let Ok(json) = serde_json::to_vec(error) {
        // SAFETY: guaranteed by the caller; the bytes are valid for the call.
        unsafe { (sink.write)(sink.user_data, json.as_ptr(), json.len()) };
    }
}

/// `check_config` of mode `M`.
unsafe extern "C" fn check_config<M: Mode>(config_toml: Bytes, error: ErrorSink) -> c_int {
    contained(-1, || {
        // SAFETY: the host's buffer is valid for this call (ABI contract).
        let config = unsafe { text(config_toml) };
        let checked = catch_unwind(AssertUnwindSafe(|| {
            parse_section(&config)
                .and_then(|section| DynMode::<M>::new().check(section).map_err(config_error))
        }));
        let problem = match checked {
            Ok(Ok(())) => return 0,
            Ok(Err(problem)) => problem,
            Err(panic) => {
                let message = format!(
                    "the mode panicked while checking its config: {}",
                    panic_message(&*panic)
                );
                std::mem::forget(panic);
                CreateError::Build { message }
            }
        };
        // SAFETY: the sink is valid for this call (ABI contract).
        unsafe { report_error(error, &problem) };
        1
    })
}

/// `create_tab` of mode `M`.
unsafe extern "C" fn create_tab<M: Mode>(args: *const TabArgs) -> *mut c_void {
    contained(std::ptr::null_mut(), || {
        // SAFETY: the host passes a valid `TabArgs` that outlives this call, or null (ABI
        // contract).
        let Some(args) = (unsafe { args.as_ref() }) else {
            return std::ptr::null_mut();
        };
        // Made before anything can fail, so that every failure path can cut it off: a task the
        // failed build spawned may still hold the context, and must not reach the host's
        // callbacks once `create_tab` has returned null.
        let slot = Arc::new(CallbackSlot(RwLock::new(Some(args.callbacks))));
        let stopping = CancellationToken::new();
        let built = catch_unwind(AssertUnwindSafe(|| {
            // SAFETY: the host's buffers are valid for this call (ABI contract).
            let (name, config) = unsafe { (text(args.tab_name), text(args.config_toml)) };
            build_tab::<M>(&name, &config, Arc::clone(&slot), stopping.clone())
        }));
        let error = match built {
            Ok(Ok(tab)) => return Box::into_raw(Box::new(tab)).cast(),
            Ok(Err(error)) => error,
            Err(panic) => {
                let message = format!(
                    "the mode panicked while starting: {}",
                    panic_message(&*panic)
                );
                std::mem::forget(panic);
                CreateError::Build { message }
            }
        };
        // Cut the callbacks off first, then tell the tasks the failed build spawned to stop.
        slot.clear();
        stopping.cancel();
        // SAFETY: the sink is valid for this call (ABI contract).
        unsafe { report_error(args.error, &error) };
        std::ptr::null_mut()
    })
}

/// Parses the TOML text the host passed as a section.
fn parse_section(config: &str) -> Result<toml::Value, CreateError> {
    toml::from_str::<toml::Table>(config)
        .map(toml::Value::Table)
        .map_err(|err| CreateError::Config {
            key: Vec::new(),
            message: err.message().to_owned(),
        })
}

fn config_error(err: ConfigError) -> CreateError {
    CreateError::Config {
        key: err.key,
        message: err.message,
    }
}

/// Parses the section, builds the instance (and its hardened router) inside the plugin's
/// runtime.
fn build_tab<M: Mode>(
    name: &str,
    config: &str,
    slot: Arc<CallbackSlot>,
    stopping: CancellationToken,
) -> Result<Tab, CreateError> {
    let section = parse_section(config)?;
    let runtime = runtime().map_err(|err| CreateError::Build {
        message: format!("cannot start the plugin's async runtime: {err}"),
    })?;
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
        DynMode::<M>::new().build(section, ctx)
    };
    match built {
        Ok(router) => Ok(Tab {
            // Hardened by `DynMode::build`, with the mode's Content-Security-Policy.
            router,
            stopping,
            force_close: CancellationToken::new(),
            callbacks: slot,
        }),
        Err(ModeError::Config(err)) => Err(config_error(err)),
        Err(ModeError::Build(err)) => Err(CreateError::Build {
            message: error_chain(&err),
        }),
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
    // call (ABI contract); from here on dropping `socket` closes it, on every path.
    let socket = unsafe { std::os::unix::net::UnixStream::from_raw_fd(fd) };
    contained(-1, move || {
        // SAFETY: the host passes a live handle (ABI contract).
        let Some(tab) = (unsafe { tab(handle) }) else {
            return -1;
        };
        let spawned = (|| -> std::io::Result<()> {
            socket.set_nonblocking(true)?;
            let runtime = runtime()?;
            let router = tab.router.clone();
            let stopping = tab.stopping.clone();
            let force_close = tab.force_close.clone();
            runtime.spawn(async move {
                match tokio::net::UnixStream::from_std(socket) {
                    Ok(io) => {
                        // The C ABI v1 passes no circuit: each connection is its own visitor.
                        let visitor = Visitor::unique();
                        crate::http::serve_connection(io, router, visitor, stopping, force_close)
                            .await;
                    }
                    Err(err) => tracing::debug!("cannot serve a connection from the host: {err}"),
                }
            });
            Ok(())
        })();
        if spawned.is_ok() { 0 } else { -1 }
    })
}

unsafe extern "C" fn stop_tab(handle: *mut c_void) {
    contained((), || {
        // SAFETY: the host passes a live handle (ABI contract).
        if let Some(tab) = unsafe { tab(handle) } {
            tab.stopping.cancel();
        }
    });
}

unsafe extern "C" fn force_close_tab(handle: *mut c_void) {
    contained((), || {
        // SAFETY: the host passes a live handle (ABI contract).
        if let Some(tab) = unsafe { tab(handle) } {
            tab.stopping.cancel();
            tab.force_close.cancel();
        }
    });
}

unsafe extern "C" fn release_tab(handle: *mut c_void) {
    if handle.is_null() {
        return;
    }
    // SAFETY: the handle came from `Box::into_raw` in `create_tab` and the host releases it
    // once, after its last use (ABI contract).
    let tab = unsafe { Box::from_raw(handle.cast::<Tab>()) };
    contained((), move || {
        // Waits for callbacks in flight on other threads; none reaches the host afterwards,
        // not even from tasks that react to the stop below.
        tab.callbacks.clear();
        tab.stopping.cancel();
        tab.force_close.cancel();
        // The instance's `Drop` may touch tokio (abort a task): run it in our runtime. Its
        // connections still in flight hold clones of the router and end on `force_close`.
        let _entered = runtime().ok().map(Runtime::enter);
        drop(tab);
    });
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    use std::io::{Read as _, Write as _};
    use std::os::fd::IntoRawFd as _;
    use std::sync::Mutex;
    use std::time::Duration;

    use axum::routing::get;
    use serde::Deserialize;

    use crate::BuildError;

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct EchoConfig {
        #[serde(default)]
        fail: bool,
        #[serde(default)]
        panic: bool,
    }

    impl crate::ModeConfig for EchoConfig {}

    /// Answers `/` with its tab's name, `/panic` with a panic; may fail or panic when built,
    /// after spawning a task that reports an event late.
    struct Echo(String);

    impl Mode for Echo {
        const NAME: &'static str = "echo";
        type Config = EchoConfig;
        fn build(config: EchoConfig, ctx: TabContext) -> Result<Self, BuildError> {
            let late = ctx.clone();
            tokio::spawn(async move {
                late.shutdown().await;
                late.report(TabEvent::Notice {
                    message: "late".into(),
                });
                LATE_DONE.lock().unwrap().push(late.tab_name().to_owned());
            });
            assert!(!config.panic, "asked to panic");
            if config.fail {
                return Err(BuildError::Other("asked to fail".into()));
            }
            ctx.report(TabEvent::Notice {
                message: "built".into(),
            });
            Ok(Self(ctx.tab_name().to_owned()))
        }
        fn router(self: Arc<Self>) -> Router {
            let name = self.0.clone();
            Router::new()
                .route("/", get(move || async move { name }))
                .route("/panic", get(panics))
        }
    }

    /// The tabs whose late task has tried to report after its tab stopped.
    static LATE_DONE: Mutex<Vec<String>> = Mutex::new(Vec::new());

    /// Waits until the late task of `tab` has run.
    fn wait_late(tab: &str) {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while !LATE_DONE.lock().unwrap().iter().any(|done| done == tab) {
            assert!(
                std::time::Instant::now() < deadline,
                "{tab}'s task never ran"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    async fn panics() -> &'static str {
        panic!("handler panic")
    }

    /// What the host side of a test saw.
    #[derive(Default)]
    struct Seen {
        events: Mutex<Vec<String>>,
        error: Mutex<Vec<u8>>,
    }

    unsafe extern "C" fn on_event(user_data: *mut c_void, ptr: *const u8, len: usize) {
        // SAFETY: the test passes a live `Seen` and valid bytes.
        let (seen, bytes) = unsafe {
            (
                &*user_data.cast::<Seen>(),
                std::slice::from_raw_parts(ptr, len),
            )
        };
        let event = String::from_utf8_lossy(bytes).into_owned();
        seen.events.lock().unwrap().push(event);
    }

    unsafe extern "C" fn on_error(user_data: *mut c_void, ptr: *const u8, len: usize) {
        // SAFETY: as above.
        let (seen, bytes) = unsafe {
            (
                &*user_data.cast::<Seen>(),
                std::slice::from_raw_parts(ptr, len),
            )
        };
        seen.error.lock().unwrap().extend_from_slice(bytes);
    }

    fn create(header: &PluginHeader, name: &str, config: &str, seen: &Seen) -> *mut c_void {
        let user_data = std::ptr::from_ref(seen).cast_mut().cast();
        let args = TabArgs {
            tab_name: Bytes::new(name.as_bytes()),
            config_toml: Bytes::new(config.as_bytes()),
            callbacks: HostCallbacks {
                user_data,
                on_event,
                on_stop_request: on_event,
            },
            error: ErrorSink {
                user_data,
                write: on_error,
            },
        };
        // SAFETY: `args` and `seen` outlive the call.
        unsafe { header.create_tab.unwrap()(&raw const args) }
    }

    fn get_over(header: &PluginHeader, tab: *mut c_void, path: &str) -> String {
        let (mut ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
        // SAFETY: a live handle; the descriptor's ownership moves to the plugin.
        let status = unsafe { header.serve_connection.unwrap()(tab, theirs.into_raw_fd()) };
        assert_eq!(status, 0);
        ours.set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        write!(
            ours,
            "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut response = String::new();
        ours.read_to_string(&mut response).unwrap();
        response
    }

    #[test]
    fn a_tab_serves_contains_panics_and_reports_through_callbacks() {
        let header = header::<Echo>(true);
        let seen = Seen::default();
        let tab = create(&header, "one", "", &seen);
        assert!(!tab.is_null(), "{:?}", seen.error.lock().unwrap());
        let ok = get_over(&header, tab, "/");
        assert!(
            ok.starts_with("HTTP/1.1 200") && ok.ends_with("one"),
            "{ok}"
        );
        assert!(ok.contains("content-security-policy"), "hardened: {ok}");
        let panicked = get_over(&header, tab, "/panic");
        assert!(panicked.starts_with("HTTP/1.1 500"), "{panicked}");
        assert!(get_over(&header, tab, "/").ends_with("one"));
        assert!(
            seen.events.lock().unwrap()[0].contains("built"),
            "events arrive as JSON"
        );
        // SAFETY: the handle is live and not used afterwards.
        unsafe { header.release_tab.unwrap()(tab) };
        // After release, the late task's event never reaches the (soon freed) host side.
        wait_late("one");
        assert!(
            !seen
                .events
                .lock()
                .unwrap()
                .iter()
                .any(|e| e.contains("late"))
        );
    }

    #[test]
    fn a_failed_or_panicking_build_reports_why_and_never_calls_back_later() {
        let header = header::<Echo>(true);
        for (name, config, expected) in [
            (
                "fails",
                "fail = true",
                r#"{"kind":"build","message":"asked to fail"}"#,
            ),
            (
                "panics",
                "panic = true",
                "the mode panicked while starting: asked to panic",
            ),
        ] {
            let seen = Seen::default();
            assert!(create(&header, name, config, &seen).is_null());
            let error = String::from_utf8(seen.error.lock().unwrap().clone()).unwrap();
            assert!(error.contains(expected), "{config}: {error}");
            // The spawned task outlives the failed build; the host must not hear from it.
            wait_late(name);
            assert!(
                seen.events.lock().unwrap().is_empty(),
                "{config}: {:?}",
                seen.events.lock().unwrap()
            );
        }
    }

    #[test]
    fn an_unknown_key_is_a_config_error() {
        let seen = Seen::default();
        assert!(create(&header::<Echo>(true), "x", "colour = 1", &seen).is_null());
        let error: CreateError = serde_json::from_slice(&seen.error.lock().unwrap()).unwrap();
        assert!(matches!(error, CreateError::Config { .. }), "{error:?}");
    }

    #[test]
    fn check_config_names_the_key_without_building() {
        let header = header::<Echo>(true);
        let check = header.check_config.unwrap();
        let seen = Seen::default();
        let sink = ErrorSink {
            user_data: std::ptr::from_ref(&seen).cast_mut().cast(),
            write: on_error,
        };
        // SAFETY: the buffers and the sink outlive the calls.
        unsafe {
            assert_eq!(check(Bytes::new(b"fail = true"), sink), 0);
            assert_ne!(check(Bytes::new(b"fail = 3"), sink), 0);
        }
        let error: CreateError = serde_json::from_slice(&seen.error.lock().unwrap()).unwrap();
        assert!(
            matches!(&error, CreateError::Config { key, .. } if key == &["fail"]),
            "{error:?}"
        );
    }

    #[test]
    fn error_chains_name_every_cause() {
        let err = crate::BuildError::io(
            "open the paste store",
            std::io::Error::new(std::io::ErrorKind::PermissionDenied, "denied"),
        );
        assert_eq!(error_chain(&err), "could not open the paste store: denied");
    }
}
