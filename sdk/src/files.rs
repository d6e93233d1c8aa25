//! Serving files from disk to visitors, safely: the toolkit the share and website modes are
//! built on, for any mode that serves files.
//!
//! - [`Tree`] (`tree.rs`): what is served, walked once when the tab is built; the only place
//!   a request path is resolved against, segment by segment (never joined to a path on
//!   disk). Symbolic links inside are neither followed nor listed.
//! - [`ServedFile`] (`source.rs`): a file opened by the path recorded in the tree and checked
//!   to be the same, unchanged file when opened and after every read; [`Gone`] says why one
//!   is no longer served (`410`), and [`GoneReports`] tells the console so once per file.
//! - [`file_body`] and [`spawn_body`] (`body.rs`): a response body read on a thread of its
//!   own, whose bytes go out only once the check after their read passed.
//! - [`range`] and [`conditional`]: `Range`/`If-Range` and `If-Match`/`If-None-Match`
//!   (RFC 9110); [`head_response`], [`preconditions`] and [`file_etag`] (`respond.rs`): the
//!   answers they call for.
//! - [`Listing`] (`listing.rs`): the listing of a folder and the message pages, in one look
//!   (the sdk's one style sheet, [`crate::page::STYLE`]).

mod body;
pub mod conditional;
mod listing;
pub mod range;
mod respond;
mod source;
mod tree;

pub use body::{BodyWriter, CHUNK, Chunks, file_body, spawn_body};
pub use listing::{Listing, PAGE_SIZE, name, page_number};
pub use range::Decision;
pub use respond::{Fnv, bounds, file_etag, head_response, preconditions};
pub use source::{Gone, GoneReports, NoLongerServed, ServedFile, Stamp};
pub use tree::{
    FileInfo, Kind, Lookup, MAX_DEPTH, MAX_NODES, MAX_PATH_BYTES, Node, Tree, TreeError, node_url,
};
