//! The look of a folder's listing (share's pages, a website's folders without an
//! `index.html`) and of the short message pages around it, as maud templates on the sdk's
//! page shell (styled by the sdk's one style sheet): every value is escaped unless a template says otherwise (none does).
//!
//! Every name is shown as text: disguising characters (controls, bidi overrides, invisible
//! characters; [`crate::text`]) shown as `⟨U+XXXX⟩` so that a name cannot disguise itself
//! (`txt.exe` reversed to look like `exe.txt`), and each name isolated with `<bdi>`. A page
//! holds at most [`PAGE_SIZE`] names, so that no request builds a huge page.

use maud::{Markup, html};

use super::tree::{Kind, Tree, node_url};
use crate::ByteSize;
use crate::http::percent_encode_segment;
use crate::page::Shell;

/// The most names one listing page shows.
pub const PAGE_SIZE: usize = 1000;

/// A file name as HTML: its disguising characters shown by code point, isolated in `<bdi>`.
pub fn name(text: &str) -> Markup {
    html! { bdi { (crate::text::show(text)) } }
}

fn files(count: u64) -> String {
    if count == 1 {
        "1 file".to_owned()
    } else {
        format!("{count} files")
    }
}

/// The page number asked for in a query string (`page=N`), 1 when there is none.
pub fn page_number(query: Option<&str>) -> usize {
    query
        .into_iter()
        .flat_map(|q| q.split('&'))
        .find_map(|pair| pair.strip_prefix("page="))
        .and_then(|n| n.parse().ok())
        .unwrap_or(1)
}

/// How a mode's listings look and link.
#[derive(Debug, Clone, Copy)]
pub struct Listing<'a> {
    /// The pages' title (the `<title>` and the header).
    pub title: &'a str,
    /// The privacy line of the pages' footer.
    pub footer: &'a str,
    /// The URL prefix of the tree's nodes ([`node_url`]): share's `/files`, a website's `""`.
    pub base: &'a str,
    /// The root folder's URL (share: `/`, where its list of items is).
    pub home: &'a str,
    /// The first breadcrumb's text, and the link home on message pages.
    pub home_label: &'a str,
}

impl Listing<'_> {
    /// The listing of folder `dir` of `tree`, page `page_number` (clamped to the pages there
    /// are). The root's page shows the totals and then `top` (share: "Download all"); a
    /// folder's page shows its breadcrumbs and its totals.
    pub fn page(&self, tree: &Tree, dir: usize, page_number: usize, top: Option<Markup>) -> Markup {
        let node = &tree.nodes[dir];
        let Kind::Dir {
            children,
            total_size,
            files: count,
        } = &node.kind
        else {
            return self.shell(html! {});
        };
        let pages = children.len().div_ceil(PAGE_SIZE).max(1);
        let page_number = page_number.clamp(1, pages);
        let shown = if children.is_empty() {
            &children[..]
        } else {
            &children[(page_number - 1) * PAGE_SIZE..children.len().min(page_number * PAGE_SIZE)]
        };
        let here = if dir == 0 {
            self.home.to_owned()
        } else {
            node_url(self.base, node)
        };
        let pager = html! {
            @if pages > 1 {
                nav.pages {
                    "Page " (page_number) " of " (pages)
                    @if page_number > 1 {
                        " " a href={ (here) "?page=" (page_number - 1) } { "Previous" }
                    }
                    @if page_number < pages {
                        " " a href={ (here) "?page=" (page_number + 1) } { "Next" }
                    }
                }
            }
        };
        let body = html! {
            @if dir == 0 {
                p.summary { (files(*count)) ", " (ByteSize(*total_size)) " in all." }
                @if let Some(top) = top { (top) }
            } @else {
                nav.crumbs {
                    a href=(self.home) { (self.home_label) }
                    @for (at, segment) in crumbs(self.base, &node.rel) {
                        " / " a href={ (at) "/" } { (name(segment)) }
                    }
                }
                p.summary { (files(*count)) ", " (ByteSize(*total_size)) " in this folder." }
            }
            @if children.is_empty() {
                p.empty { "This folder is empty." }
            } @else {
                (pager)
                table {
                    thead { tr { th { "Name" } th.size { "Size" } } }
                    tbody {
                        @for &child in shown {
                            @let child = &tree.nodes[child];
                            @match &child.kind {
                                Kind::File(file) => tr.file {
                                    td { a href=(node_url(self.base, child)) { (name(&child.name)) } }
                                    td.size { (ByteSize(file.size)) }
                                },
                                Kind::Dir { total_size, files: n, .. } => tr.dir {
                                    td { a href=(node_url(self.base, child)) { (name(&child.name)) "/" } }
                                    td.size { (files(*n)) ", " (ByteSize(*total_size)) }
                                },
                            }
                        }
                    }
                }
                (pager)
            }
        };
        self.shell(body)
    }

    /// A short page with a sentence and a link home, for errors.
    pub fn message(&self, text: &str) -> Markup {
        self.shell(html! {
            p.message { (text) }
            p { a href=(self.home) { (self.home_label) } }
        })
    }

    /// Every listing page: the sdk's shell (its style sheet styles listings) around `main`.
    fn shell(&self, main: Markup) -> Markup {
        Shell::new(self.title)
            .footer(html! { p { (self.footer) } })
            .render(main)
    }
}

/// The links of a folder's breadcrumbs: each ancestor's URL (without its trailing `/`) and name.
fn crumbs<'a>(base: &str, rel: &'a str) -> impl Iterator<Item = (String, &'a str)> {
    let mut at = String::from(base);
    rel.split('/').map(move |segment| {
        at.push('/');
        at.push_str(&percent_encode_segment(segment));
        (at.clone(), segment)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(text: &str) -> String {
        name(text).into_string()
    }

    #[test]
    fn hostile_names_are_text() {
        assert_eq!(
            shown("<img src=x onerror=alert(1)>\"'&"),
            "<bdi>&lt;img src=x onerror=alert(1)&gt;&quot;'&amp;</bdi>"
        );
        assert_eq!(
            shown("a\u{202e}txt.exe\nb"),
            "<bdi>a⟨U+202E⟩txt.exe⟨U+000A⟩b</bdi>"
        );
        assert_eq!(shown("ünï 日本"), "<bdi>ünï 日本</bdi>");
        // The sdk's list: zero-width and look-alike spaces too.
        assert_eq!(shown("a\u{200b}b\u{a0}c"), "<bdi>a⟨U+200B⟩b⟨U+00A0⟩c</bdi>");
    }

    #[test]
    fn page_numbers_default_to_the_first() {
        assert_eq!(page_number(None), 1);
        assert_eq!(page_number(Some("page=3")), 3);
        assert_eq!(page_number(Some("a=b&page=2")), 2);
        assert_eq!(page_number(Some("page=x")), 1);
    }
}
