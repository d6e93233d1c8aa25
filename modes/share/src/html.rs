//! The pages: the list of shared items and each folder's listing. Every name is shown as
//! text: markup escaped, disguising characters (the sdk's one list: controls, bidi
//! overrides, invisible characters) shown as `⟨U+XXXX⟩` so that a name cannot disguise
//! itself (`txt.exe` reversed to look like `exe.txt`), and each name isolated with `<bdi>`.

use std::fmt::Write as _;

use crate::index::{Index, Kind, node_url};

/// `text` made safe between tags and inside quoted attributes.
pub(crate) use onionhost_sdk::html::escape;

/// A file name as HTML text.
pub(crate) fn name(text: &str) -> String {
    format!("<bdi>{}</bdi>", escape(&onionhost_sdk::text::show(text)))
}

/// A size as every page and the console show it (`1.5 KiB`, `12 bytes`): the sdk's one format.
pub(crate) fn size(bytes: u64) -> String {
    onionhost_sdk::ByteSize(bytes).to_string()
}

fn files(count: u64) -> String {
    if count == 1 {
        "1 file".to_owned()
    } else {
        format!("{count} files")
    }
}

fn head(title: &str) -> String {
    let title = escape(title);
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title}</title>\n<link rel=\"stylesheet\" href=\"/share.css\">\n</head>\n\
         <body>\n<header><h1>{title}</h1></header>\n<main>\n"
    )
}

/// The most names one listing page shows.
pub(crate) const PAGE_SIZE: usize = 1000;

const FOOT: &str = "</main>\n</body>\n</html>\n";

/// The listing of folder `dir` (0 is the list of shared items, with "download all").
pub(crate) fn listing(
    title: &str,
    index: &Index,
    dir: usize,
    zip_name: &str,
    zip_len: u64,
    page_number: usize,
) -> String {
    let mut page = head(title);
    let node = &index.nodes[dir];
    let Kind::Dir {
        children,
        total_size,
        files: count,
    } = &node.kind
    else {
        return page + FOOT;
    };
    if dir == 0 {
        let _ = write!(
            page,
            "<p class=\"summary\">{}, {} in all.</p>\n\
             <p class=\"all\"><a class=\"button\" href=\"/download\">Download all</a> \
             <span class=\"hint\">{} ({}), a zip of everything below</span></p>\n",
            files(*count),
            size(*total_size),
            name(zip_name),
            size(zip_len),
        );
    } else {
        page.push_str("<nav class=\"crumbs\"><a href=\"/\">All shared files</a>");
        let mut at = String::from("/files");
        for segment in node.rel.split('/') {
            at.push('/');
            at.push_str(&crate::index::percent_encode(segment));
            let _ = write!(
                page,
                " / <a href=\"{}/\">{}</a>",
                escape(&at),
                name(segment)
            );
        }
        let _ = write!(
            page,
            "</nav>\n<p class=\"summary\">{}, {} in this folder.</p>\n",
            files(*count),
            size(*total_size)
        );
    }
    if children.is_empty() {
        page.push_str("<p class=\"empty\">This folder is empty.</p>\n");
        return page + FOOT;
    }
    // A page holds at most PAGE_SIZE names, so that no request builds a huge page.
    let pages = children.len().div_ceil(PAGE_SIZE);
    let page_number = page_number.clamp(1, pages);
    let shown =
        &children[(page_number - 1) * PAGE_SIZE..children.len().min(page_number * PAGE_SIZE)];
    let pager = if pages > 1 {
        let here = if dir == 0 {
            "/".to_owned()
        } else {
            escape(&node_url(node))
        };
        let mut nav = format!("<nav class=\"pages\">Page {page_number} of {pages}");
        if page_number > 1 {
            let _ = write!(
                nav,
                " <a href=\"{here}?page={}\">Previous</a>",
                page_number - 1
            );
        }
        if page_number < pages {
            let _ = write!(nav, " <a href=\"{here}?page={}\">Next</a>", page_number + 1);
        }
        nav + "</nav>\n"
    } else {
        String::new()
    };
    page.push_str(&pager);
    page.push_str(
        "<table>\n<thead><tr><th>Name</th><th class=\"size\">Size</th></tr></thead>\n<tbody>\n",
    );
    for &child in shown {
        let child = &index.nodes[child];
        let url = escape(&node_url(child));
        let (class, detail) = match &child.kind {
            Kind::File(file) => ("file", size(file.size)),
            Kind::Dir {
                total_size,
                files: n,
                ..
            } => ("dir", format!("{}, {}", files(*n), size(*total_size))),
        };
        let slash = if class == "dir" { "/" } else { "" };
        let _ = writeln!(
            page,
            "<tr class=\"{class}\"><td><a href=\"{url}\">{}{slash}</a></td>\
             <td class=\"size\">{detail}</td></tr>",
            name(&child.name)
        );
    }
    page.push_str("</tbody>\n</table>\n");
    page.push_str(&pager);
    page + FOOT
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
    format!(
        "{}<p class=\"message\">{}</p>\n<p><a href=\"/\">All shared files</a></p>\n{FOOT}",
        head(title),
        escape(text)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_names_are_text() {
        assert_eq!(
            name("<img src=x onerror=alert(1)>\"'&"),
            "<bdi>&lt;img src=x onerror=alert(1)&gt;&quot;&#39;&amp;</bdi>"
        );
        assert_eq!(
            name("a\u{202e}txt.exe\nb"),
            "<bdi>a⟨U+202E⟩txt.exe⟨U+000A⟩b</bdi>"
        );
        assert_eq!(name("ünï 日本"), "<bdi>ünï 日本</bdi>");
        // The sdk's list: zero-width and look-alike spaces too.
        assert_eq!(name("a\u{200b}b\u{a0}c"), "<bdi>a⟨U+200B⟩b⟨U+00A0⟩c</bdi>");
    }

    #[test]
    fn sizes_read_well() {
        assert_eq!(size(0), "0 bytes");
        assert_eq!(size(1), "1 byte");
        assert_eq!(size(1536), "1.5 KiB");
        assert_eq!(size(5 * 1024 * 1024 * 1024), "5 GiB");
        assert_eq!(size(60 * 1024 * 1024), "60 MiB");
    }
}
