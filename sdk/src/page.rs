//! Pages from templates that escape by default, in one shell every mode shares, and the static
//! files (style sheets, scripts) those pages load.
//!
//! Write pages with [`maud::html!`]: every `(splice)` is escaped, so text a visitor sent
//! cannot become markup even when nobody remembers to escape it. Only [`maud::PreEscaped`]
//! puts raw markup in a page; a mode should never give it anything a visitor chose.
//!
//! `html!` expands to `extern crate maud`, so a crate that writes templates lists `maud` among
//! its own dependencies, at the sdk's version (`maud = "0.27"`; a built-in mode:
//! `maud.workspace = true`); `onionhost_sdk::maud` is the sdk's copy, for its types.
//!
//! ```
//! use onionhost_sdk::maud::html;
//! use onionhost_sdk::page::Shell;
//!
//! let name = "<script>alert(1)</script>";
//! let page = Shell::new("My tab")
//!     .stylesheet("/my.css")
//!     .render(html! { p { "Hello, " (name) } });
//! assert!(page.0.contains("Hello, &lt;script&gt;"));
//! ```
//!
//! A page is served by returning its [`Markup`] (with a status if it is not
//! 200): its content type is `text/html; charset=utf-8`. [`Asset`] serves a mode's CSS and
//! JavaScript, with an ETag so that a browser that kept a copy gets `304 Not Modified`.
//!
//! Every tab also serves the sdk's shared files ([`serve_shared`]: the one style sheet at
//! [`STYLE_PATH`], the logo at [`LOGO_PATH`], the favicon at `/favicon.ico` unless the mode
//! has its own), without the mode doing anything; every [`Shell`] links the first two.
//!
//! # The look
//!
//! [`STYLE`] is onionhost's one look (colours with a dark scheme that follows the system,
//! system fonts, spacing, WCAG AA contrast). A page uses it by its classes, so that a mode
//! needs a style sheet of its own only for what no other mode has (the chat's room):
//! - the shell's own parts: `.site-header` (with `.logo`), `.site-main` (`.wide` for a page
//!   that needs the room: [`Shell::main_class`]), `.site-footer` (the privacy line);
//! - `button` and `a.button`, filled: the primary action; `.secondary` for the others;
//! - `.field` around a `label` and its input (the label above), `.hint` under it, `.actions`
//!   for a row of buttons, `.check` for a checkbox's label;
//! - `.note` (info), `.note.success`, `.note.error`: notices;
//! - `.card`: a panel of its own (a form); `table`, with `.size` for sizes;
//! - `.muted`, `.hint`, `.visually-hidden` (read by screen readers only).

mod asset;
mod shared;
mod style;

use maud::{DOCTYPE, Markup, html};

pub use asset::Asset;
pub use shared::{FAVICON, FAVICON_PATH, LOGO, LOGO_PATH, SHARED_PREFIX, serve_shared};
pub use style::{STYLE, STYLE_PATH};

/// The frame of a page: doctype, `<head>` (charset, viewport, title, the logo as its icon,
/// the sdk's style sheet then the mode's, scripts, optional extra head), then `<body>`: a
/// `<header class="site-header">` with the logo and the title as `<h1>`, the mode's content
/// in `<main class="site-main">`, and an optional `<footer class="site-footer">`.
///
/// Built with its methods, then [`render`](Self::render)ed around a page's content:
///
/// ```
/// use onionhost_sdk::maud::html;
/// use onionhost_sdk::page::Shell;
///
/// let page = Shell::new("Chat")
///     .stylesheet("/chat.css")
///     .script("/chat.js")
///     .header_class("top")
///     .footer(html! { p { "Nothing said here is stored." } })
///     .render(html! { p { "Hello" } });
/// assert!(page.0.starts_with("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"));
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct Shell<'a> {
    title: &'a str,
    stylesheets: Vec<&'a str>,
    scripts: Vec<&'a str>,
    head: Option<Markup>,
    body_class: Option<&'a str>,
    header: bool,
    header_class: Option<&'a str>,
    header_extra: Option<Markup>,
    before_main: Option<Markup>,
    main_id: Option<&'a str>,
    main_class: Option<&'a str>,
    main_hidden: bool,
    footer_class: Option<&'a str>,
    footer: Option<Markup>,
}

impl<'a> Shell<'a> {
    /// A shell for a page titled `title` (the `<title>` and the header's `<h1>`; escaped).
    pub fn new(title: &'a str) -> Self {
        Self {
            title,
            stylesheets: Vec::new(),
            scripts: Vec::new(),
            head: None,
            body_class: None,
            header: true,
            header_class: None,
            header_extra: None,
            before_main: None,
            main_id: None,
            main_class: None,
            main_hidden: false,
            footer_class: None,
            footer: None,
        }
    }

    /// Links the style sheet at `href` after the sdk's (a path of the tab, such as one an
    /// [`Asset`] serves: the CSP allows no inline style and no foreign one).
    pub fn stylesheet(mut self, href: &'a str) -> Self {
        self.stylesheets.push(href);
        self
    }

    /// Loads the script at `src` with `defer` (the CSP allows no inline script).
    pub fn script(mut self, src: &'a str) -> Self {
        self.scripts.push(src);
        self
    }

    /// More markup at the end of `<head>`.
    pub fn head(mut self, head: Markup) -> Self {
        self.head = Some(head);
        self
    }

    /// A class on `<body>`.
    pub fn body_class(mut self, class: &'a str) -> Self {
        self.body_class = Some(class);
        self
    }

    /// Leaves out the `<header>`, for a page that places its own heading (in its `<main>`).
    pub fn without_header(mut self) -> Self {
        self.header = false;
        self
    }

    /// A class on `<header>`, after `site-header`.
    pub fn header_class(mut self, class: &'a str) -> Self {
        self.header_class = Some(class);
        self
    }

    /// More markup in `<header>`, after the `<h1>` (a status line, say).
    pub fn header_extra(mut self, extra: Markup) -> Self {
        self.header_extra = Some(extra);
        self
    }

    /// Markup between `<header>` and `<main>` (a `<noscript>` notice, say).
    pub fn before_main(mut self, markup: Markup) -> Self {
        self.before_main = Some(markup);
        self
    }

    /// An `id` on `<main>`.
    pub fn main_id(mut self, id: &'a str) -> Self {
        self.main_id = Some(id);
        self
    }

    /// A class on `<main>`, after `site-main` (`wide` for a wider column).
    pub fn main_class(mut self, class: &'a str) -> Self {
        self.main_class = Some(class);
        self
    }

    /// Renders `<main>` with `hidden`, for a page whose script shows it once it runs.
    pub fn main_hidden(mut self) -> Self {
        self.main_hidden = true;
        self
    }

    /// A `<footer>` after `<main>`, holding `footer`.
    pub fn footer(mut self, footer: Markup) -> Self {
        self.footer = Some(footer);
        self
    }

    /// A class on `<footer>`, after `site-footer`.
    pub fn footer_class(mut self, class: &'a str) -> Self {
        self.footer_class = Some(class);
        self
    }

    /// The whole page, with `main` as the content of `<main>`.
    pub fn render(&self, main: Markup) -> Markup {
        html! {
            (DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    title { (self.title) }
                    link rel="icon" href=(LOGO_PATH) type="image/svg+xml";
                    link rel="stylesheet" href=(STYLE_PATH);
                    @for href in &self.stylesheets {
                        link rel="stylesheet" href=(href);
                    }
                    @for src in &self.scripts {
                        script src=(src) defer {}
                    }
                    @if let Some(head) = &self.head { (head) }
                }
                body class=[self.body_class] {
                    @if self.header {
                        header class={ "site-header" (classes(self.header_class)) } {
                            img.logo src=(LOGO_PATH) alt="" width="28" height="28";
                            h1 { (self.title) }
                            @if let Some(extra) = &self.header_extra { (extra) }
                        }
                    }
                    @if let Some(markup) = &self.before_main { (markup) }
                    main id=[self.main_id] class={ "site-main" (classes(self.main_class)) }
                        hidden[self.main_hidden] {
                        (main)
                    }
                    @if let Some(footer) = &self.footer {
                        footer class={ "site-footer" (classes(self.footer_class)) } { (footer) }
                    }
                }
            }
        }
    }
}

/// The header's logo as every [`Shell`] renders it (decorative: empty `alt`), for tests that
/// check a page holds no `<img` of a visitor's.
pub const LOGO_IMG: &str =
    "<img class=\"logo\" src=\"/onionhost%2Flogo.svg\" alt=\"\" width=\"28\" height=\"28\">";

/// A mode's classes after the shell's own, space first.
fn classes(extra: Option<&str>) -> String {
    extra.map(|class| format!(" {class}")).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use maud::PreEscaped;

    /// Escaping by construction: a title or text with markup in it reaches the page as text,
    /// in `<title>`, in the header and in the content, with no `escape()` call anywhere.
    #[test]
    fn a_hostile_title_and_text_are_escaped() {
        let hostile = "<script>alert(\"x\")</script>&'";
        let page = Shell::new(hostile)
            .render(html! { p title=(hostile) { (hostile) } })
            .into_string();
        assert!(!page.contains("<script>"), "{page}");
        assert_eq!(
            page.matches("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;")
                .count(),
            4,
            "{page}"
        );
    }

    #[test]
    fn the_shell_has_every_part_in_order() {
        let page = Shell::new("Tab")
            .stylesheet("/a.css")
            .stylesheet("/b.css")
            .script("/a.js")
            .head(html! { meta name="robots" content="noindex"; })
            .body_class("nojs")
            .header_class("top")
            .header_extra(html! { p #status {} })
            .before_main(html! { noscript { "no js" } })
            .main_id("app")
            .main_class("app")
            .main_hidden()
            .footer_class("foot")
            .footer(html! { p { "bye" } })
            .render(PreEscaped("<p>body</p>".to_owned()))
            .into_string();
        assert_eq!(
            page,
            "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <title>Tab</title>\
             <link rel=\"icon\" href=\"/onionhost%2Flogo.svg\" type=\"image/svg+xml\">\
             <link rel=\"stylesheet\" href=\"/onionhost%2Fstyle.css\">\
             <link rel=\"stylesheet\" href=\"/a.css\">\
             <link rel=\"stylesheet\" href=\"/b.css\"><script src=\"/a.js\" defer></script>\
             <meta name=\"robots\" content=\"noindex\"></head><body class=\"nojs\">\
             <header class=\"site-header top\">\
             <img class=\"logo\" src=\"/onionhost%2Flogo.svg\" alt=\"\" width=\"28\" height=\"28\">\
             <h1>Tab</h1><p id=\"status\"></p></header>\
             <noscript>no js</noscript>\
             <main id=\"app\" class=\"site-main app\" hidden><p>body</p></main>\
             <footer class=\"site-footer foot\"><p>bye</p></footer></body></html>"
        );
    }

    #[test]
    fn the_logo_is_rendered_as_logo_img_says() {
        let page = Shell::new("Tab").render(html! {}).into_string();
        assert_eq!(page.matches(LOGO_IMG).count(), 1, "{page}");
    }

    #[test]
    fn optional_parts_are_left_out() {
        let page = Shell::new("Tab")
            .without_header()
            .render(html! { h1 { "Own heading" } })
            .into_string();
        assert!(
            page.ends_with(
                "<body><main class=\"site-main\"><h1>Own heading</h1></main></body></html>"
            ),
            "{page}"
        );
        assert!(!page.contains("<header") && !page.contains("<footer"));
    }
}
