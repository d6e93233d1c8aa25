//! The share's pages: the sdk's listing ([`onionhost_sdk::files::Listing`]: every name
//! escaped and shown as text) with "Download all" above the list of shared items.

use onionhost_sdk::ByteSize;
use onionhost_sdk::files::{Listing, Tree, name};
use onionhost_sdk::maud::html;

/// The privacy line under every page.
const FOOTER: &str = "Shared through a Tor onion service with onionhost, which keeps no log \
                      of who downloads what.";

/// How the share's listings look and link.
fn look(title: &str) -> Listing<'_> {
    Listing {
        title,
        footer: FOOTER,
        base: "/files",
        home: "/",
        home_label: "All shared files",
    }
}

/// From this size on, the page says what a download this large means over Tor.
pub(crate) const LARGE_SHARE: u64 = 1 << 30;

/// The listing of folder `dir` (0 is the list of shared items, with "download all", and for
/// a large share a note on its size and on resuming).
pub(crate) fn listing(
    title: &str,
    index: &Tree,
    dir: usize,
    zip_name: &str,
    zip_len: u64,
    page_number: usize,
) -> String {
    let all = html! {
        p.all {
            a.button href="/download" { "Download all" }
            " "
            span.hint { (name(zip_name)) " (" (ByteSize(zip_len)) "), a zip of everything below" }
        }
        @if zip_len >= LARGE_SHARE {
            p.note #large-share {
                "This is a large download (" (ByteSize(zip_len)) "): over Tor it can take \
                 hours. If it stops, use Retry or Resume in your browser's list of downloads: \
                 it goes on from where it stopped, as long as this share is up. Single files \
                 below can be downloaded one by one instead."
            }
        }
    };
    look(title)
        .page(index, dir, page_number, Some(all))
        .into_string()
}

/// A short page with a sentence and a link home, for errors.
pub(crate) fn message(title: &str, text: &str) -> String {
    look(title).message(text).into_string()
}
