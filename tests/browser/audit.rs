//! [`Audit`]: what a page looks like to a visitor that a test can check without pixels:
//! whether it scrolls sideways, whether every form field has a label, and whether its text
//! and controls meet WCAG AA contrast, all computed in the page from `getComputedStyle`.

use serde::Deserialize;

/// What [`crate::browser::Page::audit`] found on the page as it is shown now.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Audit {
    /// The document's width (`scrollWidth`), in CSS pixels.
    pub scroll_width: f64,
    /// The viewport's width (`innerWidth`).
    pub viewport_width: f64,
    /// Whether the page sees `prefers-color-scheme: dark`.
    pub dark: bool,
    /// Form fields (`input`, `textarea`, `select`) without a label: no `<label>`, no
    /// `aria-label`, no `aria-labelledby` naming text.
    pub unlabelled: Vec<String>,
    /// Text below WCAG AA contrast against what is behind it (4.5:1, 3:1 for large text),
    /// placeholders included: each as `element "text": ratio (colour on background)`.
    pub low_contrast_text: Vec<String>,
    /// Buttons and fields whose edge (border or fill) is below 3:1 against what is around
    /// them (WCAG 1.4.11).
    pub low_contrast_controls: Vec<String>,
    /// How many text elements and controls were measured (a page that measures nothing
    /// proves nothing).
    pub measured: usize,
}

impl Audit {
    /// Whether the page scrolls sideways.
    pub fn scrolls_sideways(&self) -> bool {
        self.scroll_width > self.viewport_width
    }

    /// Every finding as a line, none when the page passes.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.scrolls_sideways() {
            problems.push(format!(
                "scrolls sideways: {} px wide in a {} px viewport",
                self.scroll_width, self.viewport_width
            ));
        }
        for field in &self.unlabelled {
            problems.push(format!("no label: {field}"));
        }
        for text in &self.low_contrast_text {
            problems.push(format!("text contrast below AA: {text}"));
        }
        for control in &self.low_contrast_controls {
            problems.push(format!("control contrast below 3:1: {control}"));
        }
        if self.measured == 0 {
            problems.push("nothing on the page was measured".to_owned());
        }
        problems
    }
}

/// The page's side of [`Audit`]: one expression, run by DevTools (with the page's scripts
/// off too), returning the fields of `Audit`.
/// The colour helpers of [`audit_js`] and [`focus_js`]: `dark`, `parse`, `over`, `behind`
/// (what is painted behind an element), `opacity`, `lum`, `ratio` (WCAG contrast), `css`,
/// `name`, `shown`, `large`.
const HELPERS_JS: &str = r##"
  const dark = matchMedia("(prefers-color-scheme: dark)").matches;
  const parse = (text) => {
    const m = text.match(/-?[\d.]+/g);
    if (!m || m.length < 3) return null;
    const [r, g, b, a] = m.map(Number);
    return { r, g, b, a: a === undefined ? 1 : a };
  };
  const over = (top, bottom) => ({
    r: top.r * top.a + bottom.r * (1 - top.a),
    g: top.g * top.a + bottom.g * (1 - top.a),
    b: top.b * top.a + bottom.b * (1 - top.a),
    a: 1,
  });
  // The browser's canvas when no element paints an opaque background: dark only where the
  // page allows a dark scheme (`color-scheme`) and the system prefers it.
  const darkCanvas = dark && getComputedStyle(document.documentElement).colorScheme.includes("dark");
  const canvas = darkCanvas ? { r: 18, g: 18, b: 18, a: 1 } : { r: 255, g: 255, b: 255, a: 1 };
  // What is painted behind an element: its and its ancestors' backgrounds, composited.
  const behind = (el) => {
    const layers = [];
    for (let e = el; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c && c.a > 0) {
        layers.push(c);
        if (c.a >= 1) break;
      }
    }
    let bg = canvas;
    for (const layer of layers.reverse()) bg = over(layer, bg);
    return bg;
  };
  const opacity = (el) => {
    let o = 1;
    for (let e = el; e; e = e.parentElement) o *= Number(getComputedStyle(e).opacity);
    return o;
  };
  const lum = (c) => {
    const ch = (v) => {
      v /= 255;
      return v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
    };
    return 0.2126 * ch(c.r) + 0.7152 * ch(c.g) + 0.0722 * ch(c.b);
  };
  const ratio = (a, b) => {
    const [x, y] = [lum(a), lum(b)];
    return (Math.max(x, y) + 0.05) / (Math.min(x, y) + 0.05);
  };
  const css = (c) => "rgb(" + [c.r, c.g, c.b].map(Math.round).join(", ") + ")";
  const name = (el) => {
    let s = el.tagName.toLowerCase();
    if (el.id) s += "#" + el.id;
    if (el.classList.length) s += "." + Array.from(el.classList).join(".");
    return s;
  };
  const shown = (el) =>
    el.checkVisibility({ checkOpacity: true, checkVisibilityCSS: true }) &&
    el.getClientRects().length > 0;
  const large = (style) => {
    const size = parseFloat(style.fontSize);
    return size >= 24 || (size >= 18.66 && Number(style.fontWeight) >= 700);
  };

"##;

/// What [`Audit`] measures, after [`HELPERS_JS`].
const AUDIT_BODY_JS: &str = r##"
  const lowText = [];
  const lowControls = [];
  let measured = 0;
  const textCheck = (el, style, fgText, label) => {
    const bg = behind(el);
    const fg0 = parse(fgText);
    if (!fg0) return;
    const fg = over({ ...fg0, a: fg0.a * opacity(el) }, bg);
    const r = ratio(fg, bg);
    const need = large(style) ? 3 : 4.5;
    measured += 1;
    if (r < need) {
      lowText.push(name(el) + " " + JSON.stringify(label.slice(0, 40)) + ": " + r.toFixed(2) +
        " (" + css(fg) + " on " + css(bg) + ")");
    }
  };

  const seen = new Set();
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    if (!/\S/.test(node.data)) continue;
    const el = node.parentElement;
    if (!el || seen.has(el)) continue;
    seen.add(el);
    // Disabled controls are exempt from contrast (WCAG 1.4.3); a select's options are
    // drawn by the browser.
    if (el.closest("script, style, option, :disabled") || !shown(el)) continue;
    textCheck(el, getComputedStyle(el), getComputedStyle(el).color, node.data.trim());
  }
  for (const el of document.querySelectorAll("input[placeholder], textarea[placeholder]")) {
    if (el.value !== "" || el.disabled || !shown(el) || !el.placeholder) continue;
    textCheck(el, getComputedStyle(el), getComputedStyle(el, "::placeholder").color,
      "placeholder: " + el.placeholder);
  }

  const controls = "button, a.button, input:not([type=hidden]):not([type=checkbox])" +
    ":not([type=radio]):not([type=file]), textarea, select";
  for (const el of document.querySelectorAll(controls)) {
    if (el.disabled || !shown(el)) continue;
    const style = getComputedStyle(el);
    const around = behind(el.parentElement);
    const fill = over(behind(el), around);
    let best = ratio(fill, around);
    const border = parse(style.borderTopColor);
    if (border && parseFloat(style.borderTopWidth) > 0) {
      best = Math.max(best, ratio(over(border, around), around));
    }
    measured += 1;
    if (best < 3) {
      lowControls.push(name(el) + ": " + best.toFixed(2) + " (edge on " + css(around) + ")");
    }
  }

  const unlabelled = [];
  const fields = "input:not([type=hidden]):not([type=submit]):not([type=button])" +
    ":not([type=reset]):not([type=image]), textarea, select";
  for (const el of document.querySelectorAll(fields)) {
    const labelled = Array.from(el.labels || []).some((l) => l.textContent.trim() !== "");
    const aria = (el.getAttribute("aria-label") || "").trim() !== "";
    const by = (el.getAttribute("aria-labelledby") || "").split(/\s+/).some((id) => {
      const target = id && document.getElementById(id);
      return target && target.textContent.trim() !== "";
    });
    if (!labelled && !aria && !by) unlabelled.push(name(el));
  }

  return {
    scrollWidth: document.documentElement.scrollWidth,
    viewportWidth: window.innerWidth,
    dark,
    unlabelled,
    lowContrastText: lowText.slice(0, 20),
    lowContrastControls: lowControls.slice(0, 20),
    measured,
  };
"##;

/// The page's side of [`Audit`]: one expression, run by DevTools (with the page's scripts
/// off too), returning the fields of `Audit`.
pub(super) fn audit_js() -> String {
    format!("(() => {{{HELPERS_JS}{AUDIT_BODY_JS}}})()")
}

/// How the element with the keyboard focus shows it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FocusRing {
    /// The element (`tag#id.class`).
    pub element: String,
    /// Whether it matches `:focus-visible`.
    pub visible: bool,
    /// Its outline's style (`solid`, `none`...).
    pub style: String,
    /// Its outline's width, in CSS pixels.
    pub width: f64,
    /// The outline's contrast against what is around the element.
    pub contrast: f64,
}

impl FocusRing {
    /// Whether the ring is there and seen: a solid outline at least 2 px wide, at least 3:1
    /// against its surroundings (WCAG 2.4.7 and 1.4.11).
    pub fn is_visible(&self) -> bool {
        self.visible && self.style != "none" && self.width >= 2.0 && self.contrast >= 3.0
    }
}

/// The page's side of [`FocusRing`]: `null` when nothing but the page has the focus.
pub(super) fn focus_js() -> String {
    format!(
        "(() => {{{HELPERS_JS}
  const el = document.activeElement;
  if (!el || el === document.body || el === document.documentElement) return null;
  const style = getComputedStyle(el);
  const around = behind(el.parentElement || el);
  const ring = parse(style.outlineColor) || around;
  return {{
    element: name(el),
    visible: el.matches(':focus-visible'),
    style: style.outlineStyle,
    width: parseFloat(style.outlineWidth) || 0,
    contrast: ratio(over(ring, around), around),
  }};
}})()"
    )
}
