//! What a page did that a test may assert on afterwards: console errors, Content Security
//! Policy violations and the URL of every request, gathered from the page's DevTools events
//! as they come.

use std::sync::{Arc, Mutex, PoisonError};

use anyhow::{Context, Result};
use chromiumoxide::cdp::browser_protocol::log::{EventEntryAdded, LogEntryLevel};
use chromiumoxide::cdp::browser_protocol::network::{
    EventRequestWillBeSent, EventWebSocketCreated,
};
use chromiumoxide::cdp::browser_protocol::page::AddScriptToEvaluateOnNewDocumentParams;
use chromiumoxide::cdp::js_protocol::runtime::{
    AddBindingParams, ConsoleApiCalledType, EventBindingCalled, EventConsoleApiCalled,
    EventExceptionThrown, RemoteObject,
};
use futures::{Stream, StreamExt};

/// The name of the function through which the page reports `securitypolicyviolation` events.
const CSP_BINDING: &str = "onionhostTestCspViolation";

/// Reports every CSP violation of each new document to [`CSP_BINDING`]. DevTools runs it
/// before the page's own scripts, outside the page's CSP; with JavaScript off it does not
/// run, and the violations are then known from the console alone.
const CSP_LISTENER: &str = r#"
document.addEventListener("securitypolicyviolation", (event) => {
  globalThis.onionhostTestCspViolation(
    event.effectiveDirective + " refused " + (event.blockedURI || "(inline)") +
    " in " + event.sourceFile + ":" + event.lineNumber);
}, true);
"#;

/// Everything gathered so far.
#[derive(Debug, Default)]
pub(super) struct Log {
    /// Errors on the console: the browser's own (a failed load, a refused resource) and the
    /// page's (`console.error`, uncaught exceptions).
    pub(super) console_errors: Vec<String>,
    /// CSP violations, from the `securitypolicyviolation` event and the browser's console.
    pub(super) csp_violations: Vec<String>,
    /// The URL of every request (documents, resources, fetches, WebSockets), in order.
    pub(super) requests: Vec<String>,
}

/// The gathered log of one page, shared with the tasks that fill it.
#[derive(Clone, Debug, Default)]
pub(super) struct Records(Arc<Mutex<Log>>);

impl Records {
    /// Subscribes to `page`'s events, on `runtime` (tasks there outlive a test's runtime and
    /// end with the page's event streams).
    pub(super) async fn attach(
        page: &chromiumoxide::Page,
        runtime: &tokio::runtime::Handle,
    ) -> Result<Self> {
        let records = Self::default();
        let listen = "listen to the page's events";
        records.drain(
            runtime,
            page.event_listener::<EventEntryAdded>()
                .await
                .context(listen)?,
            |log, event| {
                let entry = &event.entry;
                if is_csp(&entry.text) {
                    log.csp_violations.push(entry.text.clone());
                }
                if entry.level == LogEntryLevel::Error {
                    let url = entry.url.as_deref().unwrap_or("");
                    log.console_errors.push(format!("{} {url}", entry.text));
                }
            },
        );
        records.drain(
            runtime,
            page.event_listener::<EventConsoleApiCalled>()
                .await
                .context(listen)?,
            |log, event| {
                if matches!(
                    event.r#type,
                    ConsoleApiCalledType::Error | ConsoleApiCalledType::Assert
                ) {
                    let words: Vec<String> = event.args.iter().map(describe).collect();
                    log.console_errors
                        .push(format!("console.error: {}", words.join(" ")));
                }
            },
        );
        records.drain(
            runtime,
            page.event_listener::<EventExceptionThrown>()
                .await
                .context(listen)?,
            |log, event| {
                let details = &event.exception_details;
                let what = details
                    .exception
                    .as_ref()
                    .map_or_else(|| details.text.clone(), describe);
                log.console_errors.push(format!(
                    "uncaught {what} at {}:{}",
                    details.url.as_deref().unwrap_or("?"),
                    details.line_number
                ));
            },
        );
        records.drain(
            runtime,
            page.event_listener::<EventBindingCalled>()
                .await
                .context(listen)?,
            |log, event| {
                if event.name == CSP_BINDING {
                    log.csp_violations.push(event.payload.clone());
                }
            },
        );
        records.drain(
            runtime,
            page.event_listener::<EventRequestWillBeSent>()
                .await
                .context(listen)?,
            |log, event| log.requests.push(event.request.url.clone()),
        );
        records.drain(
            runtime,
            page.event_listener::<EventWebSocketCreated>()
                .await
                .context(listen)?,
            |log, event| log.requests.push(event.url.clone()),
        );
        page.execute(AddBindingParams::new(CSP_BINDING))
            .await
            .context("add the CSP binding")?;
        page.execute(AddScriptToEvaluateOnNewDocumentParams::new(CSP_LISTENER))
            .await
            .context("add the CSP listener")?;
        Ok(records)
    }

    /// Feeds each event of `events` to `record`, on `runtime`, until the stream ends.
    fn drain<E>(
        &self,
        runtime: &tokio::runtime::Handle,
        mut events: impl Stream<Item = Arc<E>> + Unpin + Send + 'static,
        record: impl Fn(&mut Log, &E) + Send + 'static,
    ) where
        E: Send + Sync + 'static,
    {
        let log = Arc::clone(&self.0);
        runtime.spawn(async move {
            while let Some(event) = events.next().await {
                record(
                    &mut log.lock().unwrap_or_else(PoisonError::into_inner),
                    &event,
                );
            }
        });
    }

    /// Empties the log.
    pub(super) fn clear(&self) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Log::default();
    }

    /// Reads the log.
    pub(super) fn read<T>(&self, read: impl FnOnce(&Log) -> T) -> T {
        read(&self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// Whether a console entry is the browser reporting a CSP violation ("Refused to load ...
/// because it violates the following Content Security Policy directive: ..."), whichever
/// source the browser files it under.
fn is_csp(text: &str) -> bool {
    text.contains("Content Security Policy")
}

/// A console argument as text: its value, or how DevTools describes it.
fn describe(object: &RemoteObject) -> String {
    match (&object.value, &object.description) {
        (Some(serde_json::Value::String(text)), _) => text.clone(),
        (Some(value), _) => value.to_string(),
        (None, Some(description)) => description.clone(),
        (None, None) => format!("{:?}", object.r#type),
    }
}
