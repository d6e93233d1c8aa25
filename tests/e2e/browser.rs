//! The pages of every mode in a real browser (headless Chromium, see
//! `onionhost_tests::browser`): what visitors do with them, with JavaScript and without, on a
//! desktop and a phone. One browser serves every test of the run; each test has its own
//! pages in browser contexts of their own, so the tests run in parallel.

use std::path::{Path, PathBuf};

mod chat;
mod details;
mod nojs;
mod phone;
mod receive;
mod sweep;

/// The one upload folder the host made in `inbox`.
fn only_folder(inbox: &Path) -> PathBuf {
    let folders: Vec<PathBuf> = std::fs::read_dir(inbox)
        .expect("read the inbox")
        .map(|entry| entry.expect("an entry").path())
        .collect();
    assert_eq!(folders.len(), 1, "{folders:?}");
    folders[0].clone()
}

/// A file of `len` bytes that are not all alike, in `dir`.
fn file(dir: &Path, name: &str, len: usize) -> (PathBuf, Vec<u8>) {
    let bytes: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
    let path = dir.join(name);
    std::fs::write(&path, &bytes).expect("write the file to upload");
    (path, bytes)
}
