//! [`Page`]: one browser tab of a test, in an incognito browser context of its own, with the
//! helpers tests drive it with. Every wait polls the page until a deadline ([`WAIT`]) and,
//! when it gives up, saves a screenshot and says where; so does a page dropped while its test
//! panics.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use chromiumoxide::cdp::browser_protocol::browser::BrowserContextId;
use chromiumoxide::cdp::browser_protocol::dom::SetFileInputFilesParams;
use chromiumoxide::cdp::browser_protocol::emulation::{
    MediaFeature, SetDeviceMetricsOverrideParams, SetEmulatedMediaParams,
    SetScriptExecutionDisabledParams, SetTouchEmulationEnabledParams, SetUserAgentOverrideParams,
};
use chromiumoxide::cdp::browser_protocol::input::{
    DispatchDragEventParams, DispatchDragEventType, DispatchKeyEventParams, DispatchKeyEventType,
    DragData, DragDataItem, InsertTextParams,
};
use chromiumoxide::cdp::browser_protocol::network::{
    EmulateNetworkConditionsByRuleParams, NetworkConditions,
};
use chromiumoxide::cdp::browser_protocol::page::{
    AddScriptToEvaluateOnNewDocumentParams, CaptureScreenshotFormat, NavigateParams,
};
use chromiumoxide::cdp::browser_protocol::target::{
    CreateBrowserContextParams, CreateTargetParams,
};
use chromiumoxide::layout::Point;
use chromiumoxide::page::ScreenshotParams;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::audit::{Audit, FocusRing, audit_js, focus_js};
use super::records::Records;
use super::{Device, Options, Shared, WAIT, screenshot_dir, shared};

/// How often a wait looks at the page again.
const POLL: Duration = Duration::from_millis(50);

/// The user agent of the phone (Chrome on Android): pages see a phone, not a headless
/// desktop browser.
const PHONE_USER_AGENT: &str = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 \
                                (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36";

/// A browser tab of one test. Close it with [`Page::close`]; a page dropped unclosed is
/// closed in the background (and, if its test is panicking, photographed first).
pub struct Page {
    page: chromiumoxide::Page,
    context: BrowserContextId,
    records: Records,
    shared: &'static Shared,
    /// Who opened the page (the test's name), for screenshot file names.
    owner: String,
    closed: bool,
}

impl Page {
    /// Opens a blank page with `options`, in a new incognito browser context.
    pub async fn open(options: Options) -> Result<Self> {
        let shared = shared().await?;
        let context = shared
            .browser
            .create_browser_context(CreateBrowserContextParams::default())
            .await
            .context("create a browser context")?;
        let target = CreateTargetParams::builder()
            .url("about:blank")
            .browser_context_id(context.clone())
            .build()
            .map_err(|e| anyhow!("CreateTargetParams: {e}"))?;
        let page = shared
            .browser
            .new_page(target)
            .await
            .context("open a page")?;
        let records = Records::attach(&page, &shared.runtime).await?;
        let page = Self {
            page,
            context,
            records,
            shared,
            owner: std::thread::current()
                .name()
                .unwrap_or("a-test")
                .replace("::", "-"),
            closed: false,
        };
        page.emulate(options).await?;
        Ok(page)
    }

    async fn emulate(&self, options: Options) -> Result<()> {
        let (width, height, scale, mobile) = match options.device {
            Device::Desktop => (1280, 800, 1.0, false),
            Device::Phone => (390, 844, 3.0, true),
        };
        self.page
            .execute(SetDeviceMetricsOverrideParams::new(
                width, height, scale, mobile,
            ))
            .await
            .context("set the viewport")?;
        if options.device == Device::Phone {
            self.page
                .execute(
                    SetTouchEmulationEnabledParams::builder()
                        .enabled(true)
                        .max_touch_points(5)
                        .build()
                        .map_err(|e| anyhow!("SetTouchEmulationEnabledParams: {e}"))?,
                )
                .await
                .context("emulate touch")?;
            self.page
                .execute(SetUserAgentOverrideParams::new(PHONE_USER_AGENT))
                .await
                .context("set the phone's user agent")?;
        }
        let scheme = if options.dark { "dark" } else { "light" };
        self.page
            .execute(
                SetEmulatedMediaParams::builder()
                    .features(vec![MediaFeature::new("prefers-color-scheme", scheme)])
                    .build(),
            )
            .await
            .context("set the colour scheme")?;
        if !options.javascript {
            self.page
                .execute(SetScriptExecutionDisabledParams::new(true))
                .await
                .context("turn JavaScript off")?;
        }
        Ok(())
    }

    /// Goes to `url` and returns once the browser has the first bytes of the page (a page
    /// that keeps loading, like the chat's without JavaScript, never finishes): wait for
    /// what the test needs next.
    pub async fn goto(&self, url: &str) -> Result<()> {
        let navigated = tokio::time::timeout(WAIT, self.page.execute(NavigateParams::new(url)))
            .await
            .map_err(|_| anyhow!("no answer from {url} within {WAIT:?}"))?
            .with_context(|| format!("go to {url}"))?;
        if let Some(error) = &navigated.result.error_text {
            bail!("going to {url} failed: {error}");
        }
        Ok(())
    }

    /// Evaluates the JavaScript expression `js` in the page (DevTools runs it even with the
    /// page's JavaScript off) and returns its value.
    pub async fn eval<T: DeserializeOwned>(&self, js: &str) -> Result<T> {
        let value = tokio::time::timeout(WAIT, self.page.evaluate_expression(js))
            .await
            .map_err(|_| anyhow!("no answer to {js} within {WAIT:?}"))?
            .with_context(|| format!("evaluate {js}"))?
            .value()
            .cloned()
            .unwrap_or(Value::Null);
        serde_json::from_value(value).with_context(|| format!("the value of {js}"))
    }

    /// Evaluates `js` until its value is truthy and returns that value; gives up after
    /// [`WAIT`] with a screenshot, saying it waited for `what`.
    pub async fn wait_until(&self, what: &str, js: &str) -> Result<Value> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            // A page being replaced has no document for a moment: that is not an answer.
            let value = self.eval::<Value>(js).await.unwrap_or(Value::Null);
            if truthy(&value) {
                return Ok(value);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(self.failed(&format!("waited {WAIT:?} for {what}")).await);
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until an element matches `selector`.
    pub async fn wait_for(&self, selector: &str) -> Result<()> {
        self.wait_until(
            &format!("an element matching {selector}"),
            &format!("document.querySelector({}) !== null", quote(selector)),
        )
        .await
        .map(drop)
    }

    /// Waits until the text of the first element matching `selector` contains `needle`.
    pub async fn wait_for_text(&self, selector: &str, needle: &str) -> Result<()> {
        self.wait_until(
            &format!("{needle:?} in {selector}"),
            &format!(
                "(document.querySelector({})?.textContent ?? '').includes({})",
                quote(selector),
                quote(needle)
            ),
        )
        .await
        .map(drop)
    }

    /// The text of the first element matching `selector` (`textContent`: all of it, shown
    /// or not), once there is one.
    pub async fn text(&self, selector: &str) -> Result<String> {
        self.wait_for(selector).await?;
        self.eval(&format!(
            "document.querySelector({}).textContent",
            quote(selector)
        ))
        .await
    }

    /// The texts of every element matching `selector`, in document order.
    pub async fn texts(&self, selector: &str) -> Result<Vec<String>> {
        self.eval(&format!(
            "Array.from(document.querySelectorAll({}), (el) => el.textContent)",
            quote(selector)
        ))
        .await
    }

    /// Clicks the first element matching `selector` with the mouse, once there is one and it
    /// is enabled (scrolled into view first, as a visitor would).
    pub async fn click(&self, selector: &str) -> Result<()> {
        self.wait_until(
            &format!("an enabled element matching {selector}"),
            &format!(
                "(() => {{ const el = document.querySelector({}); return el !== null && !el.disabled; }})()",
                quote(selector)
            ),
        )
        .await?;
        // The element is scrolled into view and its centre found by evaluation, which works
        // with the page's JavaScript off (chromiumoxide's own `Element::click` calls
        // functions on the element, which then never answer), then clicked with the mouse.
        let centre: Vec<f64> = self
            .eval(&format!(
                "(() => {{ const el = document.querySelector({}); el.scrollIntoView({{block: 'center'}}); \
                 const r = el.getBoundingClientRect(); return [r.left + r.width / 2, r.top + r.height / 2]; }})()",
                quote(selector)
            ))
            .await?;
        let [x, y] = centre[..] else {
            bail!("no position for {selector}");
        };
        tokio::time::timeout(WAIT, self.page.click(Point::new(x, y)))
            .await
            .map_err(|_| anyhow!("clicking {selector} did not finish within {WAIT:?}"))?
            .with_context(|| format!("click {selector}"))?;
        Ok(())
    }

    /// Replaces the value of the field matching `selector` with `text`, typed in as one
    /// input (as a paste would), once the field is there and enabled.
    pub async fn fill(&self, selector: &str, text: &str) -> Result<()> {
        self.wait_until(
            &format!("an enabled field matching {selector}"),
            &format!(
                "(() => {{ const el = document.querySelector({}); if (el === null || el.disabled) return false; el.focus(); el.select(); return document.activeElement === el; }})()",
                quote(selector)
            ),
        )
        .await?;
        // Typing replaces the selection, as a paste would; nothing to type clears it.
        if text.is_empty() {
            self.eval::<Value>("document.execCommand('delete')").await?;
        } else {
            self.page
                .execute(InsertTextParams::new(text))
                .await
                .context("type")?;
        }
        Ok(())
    }

    /// Chooses `files` in the file input matching `selector`, as a visitor picking them in
    /// the file dialog would.
    pub async fn choose_files(&self, selector: &str, files: &[&Path]) -> Result<()> {
        self.wait_for(selector).await?;
        let element = tokio::time::timeout(WAIT, self.page.find_element(selector))
            .await
            .map_err(|_| anyhow!("finding {selector} did not finish within {WAIT:?}"))?
            .with_context(|| format!("find {selector}"))?;
        let files = files
            .iter()
            .map(|file| {
                file.to_str()
                    .map(str::to_owned)
                    .with_context(|| format!("a UTF-8 path: {}", file.display()))
            })
            .collect::<Result<Vec<_>>>()?;
        let mut params = SetFileInputFilesParams::new(files);
        params.backend_node_id = Some(element.backend_node_id);
        self.page
            .execute(params)
            .await
            .with_context(|| format!("choose files in {selector}"))?;
        Ok(())
    }

    /// Drags `files` from outside the browser over the centre of the element matching
    /// `selector` and drops them there, as a visitor dragging them from their file manager
    /// would (DevTools' drag events: `dragenter`, `dragover`, `drop`).
    pub async fn drop_files(&self, selector: &str, files: &[&Path]) -> Result<()> {
        self.wait_for(selector).await?;
        let centre: Vec<f64> = self
            .eval(&format!(
                "(() => {{ const el = document.querySelector({}); el.scrollIntoView({{block: 'center'}}); \
                 const r = el.getBoundingClientRect(); return [r.left + r.width / 2, r.top + r.height / 2]; }})()",
                quote(selector)
            ))
            .await?;
        let [x, y] = centre[..] else {
            bail!("no position for {selector}");
        };
        let files = files
            .iter()
            .map(|file| {
                file.to_str()
                    .map(str::to_owned)
                    .with_context(|| format!("a UTF-8 path: {}", file.display()))
            })
            .collect::<Result<Vec<_>>>()?;
        // Copy = 1. DevTools refuses drag data without items (the empty list is left out of
        // the message): the names as text too, as a file manager offers them.
        let names = DragDataItem::new("text/plain", files.join("\n"));
        let mut data = DragData::new(vec![names], 1);
        data.files = Some(files);
        for kind in [
            DispatchDragEventType::DragEnter,
            DispatchDragEventType::DragOver,
            DispatchDragEventType::Drop,
        ] {
            tokio::time::timeout(
                WAIT,
                self.page.execute(DispatchDragEventParams::new(
                    kind.clone(),
                    x,
                    y,
                    data.clone(),
                )),
            )
            .await
            .map_err(|_| anyhow!("the drag event {kind:?} did not finish within {WAIT:?}"))?
            .with_context(|| format!("drag files: {kind:?} on {selector}"))?;
        }
        Ok(())
    }

    /// Runs the JavaScript `js` in every document this page loads from now on, before the
    /// document's own scripts (and outside its Content-Security-Policy): a test's probe.
    pub async fn on_new_document(&self, js: &str) -> Result<()> {
        self.page
            .execute(AddScriptToEvaluateOnNewDocumentParams::new(js))
            .await
            .context("add a script for new documents")?;
        Ok(())
    }

    /// Slows what the page sends to `bytes_per_second` (DevTools' network throttling), so
    /// that a test can watch an upload in progress even over loopback.
    pub async fn throttle_uploads(&self, bytes_per_second: f64) -> Result<()> {
        // One rule for every request (an empty pattern); latency 0 and download -1: only
        // uploads are throttled.
        self.page
            .execute(EmulateNetworkConditionsByRuleParams::new(
                false,
                vec![NetworkConditions::new("", 0.0, -1.0, bytes_per_second)],
            ))
            .await
            .context("throttle uploads")?;
        Ok(())
    }

    /// The page's current URL.
    pub async fn url(&self) -> Result<String> {
        self.eval("location.href").await
    }

    /// Errors on the console so far: the browser's (a failed load, a refused resource) and
    /// the page's (`console.error`, uncaught exceptions).
    pub fn console_errors(&self) -> Vec<String> {
        self.records.read(|log| log.console_errors.clone())
    }

    /// Content Security Policy violations so far.
    pub fn csp_violations(&self) -> Vec<String> {
        self.records.read(|log| log.csp_violations.clone())
    }

    /// The URL of every request so far (documents, resources, fetches, WebSockets).
    pub fn requests(&self) -> Vec<String> {
        self.records.read(|log| log.requests.clone())
    }

    /// Asserts that the page logged no console error and no CSP violation, and requested
    /// nothing from another origin than `url`'s (`ws:` counts as `http:`'s origin).
    pub fn assert_clean(&self, url: &str) {
        let own = origin(url);
        let foreign: Vec<String> = self
            .requests()
            .into_iter()
            .filter(|request| !request.starts_with("data:") && request != "about:blank")
            .filter(|request| origin(request) != own)
            .collect();
        let errors = self.console_errors();
        let violations = self.csp_violations();
        assert!(
            errors.is_empty() && violations.is_empty() && foreign.is_empty(),
            "{url}:\nconsole errors: {errors:#?}\nCSP violations: {violations:#?}\n\
             requests to other origins: {foreign:#?}"
        );
    }

    /// Forgets what the page recorded so far (console errors, CSP violations, requests), so
    /// that the next checks are about what comes next (the next page visited in this tab).
    pub fn clear_records(&self) {
        self.records.clear();
    }

    /// Measures the page as it is shown now: sideways scrolling, labels, contrast (see
    /// [`Audit`]).
    pub async fn audit(&self) -> Result<Audit> {
        self.eval(&audit_js()).await.context("audit the page")
    }

    /// Presses Tab, as a keyboard user moving to the next control.
    pub async fn press_tab(&self) -> Result<()> {
        for kind in [DispatchKeyEventType::KeyDown, DispatchKeyEventType::KeyUp] {
            let event = DispatchKeyEventParams::builder()
                .r#type(kind)
                .key("Tab")
                .code("Tab")
                .windows_virtual_key_code(9)
                .native_virtual_key_code(9)
                .build()
                .map_err(|e| anyhow!("DispatchKeyEventParams: {e}"))?;
            tokio::time::timeout(WAIT, self.page.execute(event))
                .await
                .map_err(|_| anyhow!("pressing Tab did not finish within {WAIT:?}"))?
                .context("press Tab")?;
        }
        Ok(())
    }

    /// How the element with the keyboard focus shows it; `None` when no element has it.
    pub async fn focus_ring(&self) -> Result<Option<FocusRing>> {
        self.eval(&focus_js()).await.context("the focus ring")
    }

    /// Saves a screenshot of the whole page as `target/browser-screenshots/<test>-<label>.png`
    /// and returns its path.
    pub async fn screenshot(&self, label: &str) -> Result<PathBuf> {
        save_screenshot(&self.page, &self.owner, label).await
    }

    /// Closes the page and disposes of its browser context.
    pub async fn close(mut self) {
        self.closed = true;
        close(
            &self.shared.browser,
            self.page.clone(),
            self.context.clone(),
        )
        .await;
    }

    /// The error of a wait that gave up: what it waited for, where the page was, what it
    /// showed and logged, and where its screenshot is.
    async fn failed(&self, what: &str) -> anyhow::Error {
        let url = self
            .url()
            .await
            .unwrap_or_else(|e| format!("(no URL: {e:#})"));
        let text: String = self
            .eval("document.body?.innerText ?? ''")
            .await
            .unwrap_or_default();
        let screenshot = match self.screenshot("failed").await {
            Ok(path) => path.display().to_string(),
            Err(e) => format!("(no screenshot: {e:#})"),
        };
        anyhow!(
            "{what}\npage: {url}\nscreenshot: {screenshot}\nconsole errors: {:#?}\n--- page text\n{}",
            self.console_errors(),
            tail(&text, 3000)
        )
    }
}

impl Drop for Page {
    fn drop(&mut self) {
        if self.closed {
            return;
        }
        let shared: &'static Shared = self.shared;
        let browser = &shared.browser;
        let page = self.page.clone();
        let context = self.context.clone();
        if !std::thread::panicking() {
            shared
                .runtime
                .spawn(async move { close(browser, page, context).await });
            return;
        }
        // The test failed: keep a picture of what the page showed. The work runs on the
        // browser's runtime, since this thread's runtime may be what is unwinding.
        let owner = self.owner.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        shared.runtime.spawn(async move {
            let saved = save_screenshot(&page, &owner, "panicked").await;
            let _ = tx.send(saved);
            close(browser, page, context).await;
        });
        match rx.recv_timeout(WAIT) {
            Ok(Ok(path)) => eprintln!("browser screenshot: {}", path.display()),
            Ok(Err(e)) => eprintln!("no browser screenshot: {e:#}"),
            Err(_) => eprintln!("no browser screenshot within {WAIT:?}"),
        }
    }
}

async fn close(
    browser: &chromiumoxide::Browser,
    page: chromiumoxide::Page,
    context: BrowserContextId,
) {
    // Disposing of the context closes its pages too; closing first ends the event streams
    // at once. Either may fail when the browser is going away, which is no test's concern.
    let _ = tokio::time::timeout(WAIT, page.close()).await;
    let _ = tokio::time::timeout(WAIT, browser.dispose_browser_context(context)).await;
}

async fn save_screenshot(page: &chromiumoxide::Page, owner: &str, label: &str) -> Result<PathBuf> {
    static COUNT: AtomicUsize = AtomicUsize::new(0);
    let dir = screenshot_dir();
    std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    let n = COUNT.fetch_add(1, Ordering::Relaxed);
    let path = dir.join(format!("{owner}-{label}-{n}.png"));
    let png = tokio::time::timeout(
        WAIT,
        page.screenshot(
            ScreenshotParams::builder()
                .format(CaptureScreenshotFormat::Png)
                .full_page(true)
                .build(),
        ),
    )
    .await
    .map_err(|_| anyhow!("no screenshot within {WAIT:?}"))?
    .context("take a screenshot")?;
    std::fs::write(&path, png).with_context(|| format!("write {}", path.display()))?;
    Ok(path)
}

/// Whether JavaScript would call `value` true.
fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|n| n != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

/// `text` as a JavaScript string literal.
fn quote(text: &str) -> String {
    Value::String(text.to_owned()).to_string()
}

/// The origin of a URL (`scheme://host:port`), with `ws`/`wss` as `http`/`https`, since a
/// page's WebSocket to its own host and port is same-origin traffic.
fn origin(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let scheme = match scheme {
        "ws" => "http",
        "wss" => "https",
        other => other,
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    format!("{scheme}://{authority}")
}

/// The last `max` bytes of `text` (at a character boundary).
fn tail(text: &str, max: usize) -> &str {
    let mut start = text.len().saturating_sub(max);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

#[cfg(test)]
mod tests {
    use super::{origin, truthy};

    #[test]
    fn a_websocket_to_the_pages_host_and_port_is_same_origin() {
        assert_eq!(
            origin("http://127.0.0.1:8080/"),
            origin("ws://127.0.0.1:8080/ws")
        );
        assert_ne!(
            origin("http://127.0.0.1:8080/"),
            origin("http://127.0.0.1:8081/")
        );
        assert_ne!(
            origin("http://127.0.0.1:8080/"),
            origin("https://127.0.0.1:8080/")
        );
        assert_ne!(origin("http://a.onion/x"), origin("http://b.onion/x"));
    }

    #[test]
    fn truthiness_is_javascripts() {
        assert!(!truthy(&serde_json::json!(null)));
        assert!(!truthy(&serde_json::json!(0)));
        assert!(!truthy(&serde_json::json!("")));
        assert!(truthy(&serde_json::json!([])));
        assert!(truthy(&serde_json::json!("x")));
    }
}
