//! The pages: the list of shared items and each folder's listing, as maud templates on the
//! sdk's page shell, so that every value is escaped unless a template says otherwise (none
//! does). Every name is shown as text: disguising characters (controls, bidi overrides,
//! invisible characters; `onionhost_sdk::text`) shown as `⟨U+XXXX⟩` so that a name cannot
//! disguise itself (`txt.exe` reversed to look like `exe.txt`), and each name isolated with
//! `<bdi>`.

use onionhost_sdk::ByteSize;
use onionhost_sdk::maud::{Markup, html};
use onionhost_sdk::page::Shell;

use crate::index::{Index, Kind, node_url, percent_encode};

/// A file name as HTML: its disguising characters shown by code point, isolated in `<bdi>`.
pub(crate) fn name(text: &str) -> Markup {
    html! { bdi { (onionhost_sdk::text::show(text)) } }
}

fn files(count: u64) -> String {
    if count == 1 {
        "1 file".to_owned()
    } else {
        format!("{count} files")
    }
}

/// The most names one listing page shows.
pub(crate) const PAGE_SIZE: usize = 1000;

/// The listing of folder `dir` (0 is the list of shared items, with "download all").
pub(crate) fn listing(
    title: &str,
    index: &Index,
    dir: usize,
    zip_name: &str,
    zip_len: u64,
    page_number: usize,
) -> String {
    let node = &index.nodes[dir];
    let Kind::Dir {
        children,
        total_size,
        files: count,
    } = &node.kind
    else {
        return shell(title, html! {});
    };
    // A page holds at most PAGE_SIZE names, so that no request builds a huge page.
    let pages = children.len().div_ceil(PAGE_SIZE).max(1);
    let page_number = page_number.clamp(1, pages);
    let shown = if children.is_empty() {
        &children[..]
    } else {
        &children[(page_number - 1) * PAGE_SIZE..children.len().min(page_number * PAGE_SIZE)]
    };
    let here = if dir == 0 {
        "/".to_owned()
    } else {
        node_url(node)
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
            p.all {
                a.button href="/download" { "Download all" }
                " "
                span.hint { (name(zip_name)) " (" (ByteSize(zip_len)) "), a zip of everything below" }
            }
        } @else {
            nav.crumbs {
                a href="/" { "All shared files" }
                @for (at, segment) in crumbs(&node.rel) {
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
                        @let child = &index.nodes[child];
                        @match &child.kind {
                            Kind::File(file) => tr.file {
                                td { a href=(node_url(child)) { (name(&child.name)) } }
                                td.size { (ByteSize(file.size)) }
                            },
                            Kind::Dir { total_size, files: n, .. } => tr.dir {
                                td { a href=(node_url(child)) { (name(&child.name)) "/" } }
                                td.size { (files(*n)) ", " (ByteSize(*total_size)) }
                            },
                        }
                    }
                }
            }
            (pager)
        }
    };
    shell(title, body)
}

/// The links of a folder's breadcrumbs: each ancestor's URL (without its trailing `/`) and name.
fn crumbs(rel: &str) -> impl Iterator<Item = (String, &str)> {
    let mut at = String::from("/files");
    rel.split('/').map(move |segment| {
        at.push('/');
        at.push_str(&percent_encode(segment));
        (at.clone(), segment)
    })
}

/// The page number asked for in a query string (`page=N`), 1 when there is none.
pub(crate) fn page_number(query: Option<&str>) -> usize {
    query
        .into_iter()
        .flat_map(|q| q.split('&'))
        .find_map(|pair| pair.strip_prefix("page="))
        .and_then(|n| n.parse().ok())
        .unwrap_or(1)
}

/// A short page with a sentence and a link home, for errors.
pub(crate) fn message(title: &str, text: &str) -> String {
    shell(
        title,
        html! {
            p.message { (text) }
            p { a href="/" { "All shared files" } }
        },
    )
}

/// The path the pages load their style sheet from.
pub(crate) const STYLESHEET: &str = "/share.css";

/// Every share page: the sdk's shell with the share's style sheet around `main`.
fn shell(title: &str, main: Markup) -> String {
    Shell::new(title)
        .stylesheet(STYLESHEET)
        .render(main)
        .into_string()
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
}
