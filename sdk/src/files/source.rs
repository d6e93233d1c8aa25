//! Reading a served file: opened by the path recorded when the tab started ([`super::Tree`]),
//! and checked to be that same file, unchanged, when it is opened and again after every read.
//!
//! A file's ETag says "these bytes": a file rewritten in place while it is sent would give a
//! visitor old and new bytes under one ETag (and a resumed download spliced from two
//! versions), and a share's zip entry whose CRC was learnt from the old bytes. So every read is
//! followed by a look at the open file (`fstat`, no path lookup): if its size or
//! modification time moved, the bytes just read are not handed on and the response is cut.
//! A writer changes the modification time before it changes the bytes, so bytes read before
//! an unchanged look are bytes of the version that was served from the start. (A writer that
//! restores the old modification time afterwards can only be caught by a CRC; share's zip
//! checks the CRC it knows.)

use std::fs::{File, Metadata};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::sync::atomic::{AtomicBool, Ordering};

use super::tree::{Kind, Tree};

/// What a file was: its identity (device, inode), size and modification time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
}

impl Stamp {
    /// The stamp of a file's metadata.
    pub fn of(meta: &Metadata) -> Self {
        Self {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.len(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
        }
    }
}

/// Why a served file is no longer served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Gone {
    /// Its bytes, size or modification time changed, or another file took its place.
    #[error("changed after the tab started")]
    Changed,
    /// It was deleted (or renamed away).
    #[error("was deleted after the tab started")]
    Deleted,
    /// The host's user may no longer read it.
    #[error("can no longer be read")]
    Unreadable,
}

impl Gone {
    /// What happened, for the console: `started` says since when (`"sharing started"`).
    pub fn since(self, started: &str) -> String {
        match self {
            Self::Changed => format!("changed after {started}"),
            Self::Deleted => format!("was deleted after {started}"),
            Self::Unreadable => "can no longer be read".to_owned(),
        }
    }

    /// What a visitor is told, with the `410 Gone` this calls for.
    pub fn visitor_message(self) -> &'static str {
        match self {
            Self::Changed => {
                "This file changed after it was first served, so it is no longer served."
            }
            Self::Deleted => {
                "This file was deleted after it was first served, so it is no longer served."
            }
            Self::Unreadable => "This file can no longer be read, so it is no longer served.",
        }
    }
}

/// The payload of the `io::Error` for a file that is no longer served: which node and why.
#[derive(Debug, thiserror::Error)]
#[error("served file #{node} {why}")]
pub struct NoLongerServed {
    /// The file's node in the tree.
    pub node: usize,
    /// Why.
    pub why: Gone,
}

impl NoLongerServed {
    /// The error to return for `node`.
    pub fn error(node: usize, why: Gone) -> io::Error {
        io::Error::other(Self { node, why })
    }

    /// The payload, when `err` says a served file is no longer served.
    pub fn of(err: &io::Error) -> Option<&Self> {
        err.get_ref()?.downcast_ref()
    }
}

/// Which served files the console was told are no longer served, so that it is told once per
/// file however many visitors ask for it.
#[derive(Debug)]
pub struct GoneReports(Vec<AtomicBool>);

impl GoneReports {
    /// Nothing reported yet, for the nodes of `tree`.
    pub fn new(tree: &Tree) -> Self {
        Self(tree.nodes.iter().map(|_| AtomicBool::new(false)).collect())
    }

    /// Which file and why, when `err` says a served file is no longer served and this is the
    /// first time for that file; `None` otherwise.
    pub fn first<'e>(&self, err: &'e io::Error) -> Option<&'e NoLongerServed> {
        let gone = NoLongerServed::of(err)?;
        let reported = self.0.get(gone.node)?;
        (!reported.swap(true, Ordering::SeqCst)).then_some(gone)
    }
}

/// A served file open for reading.
#[derive(Debug)]
pub struct ServedFile {
    file: File,
    node: usize,
    stamp: Stamp,
}

impl ServedFile {
    /// Opens the file of `node`, checking that it is still the file the tab started with.
    pub fn open(tree: &Tree, node: usize) -> io::Result<Self> {
        let Kind::File(info) = &tree.nodes[node].kind else {
            return Err(io::Error::other("not a file"));
        };
        let file = File::open(&info.path).map_err(|err| match err.kind() {
            io::ErrorKind::NotFound => NoLongerServed::error(node, Gone::Deleted),
            io::ErrorKind::PermissionDenied => NoLongerServed::error(node, Gone::Unreadable),
            _ => err,
        })?;
        let opened = Self {
            file,
            node,
            stamp: info.stamp,
        };
        opened.check()?;
        Ok(opened)
    }

    /// Fails with [`Gone::Changed`] unless the open file is as it was when sharing started.
    pub fn check(&self) -> io::Result<()> {
        let meta = self.file.metadata()?;
        if meta.is_file() && Stamp::of(&meta) == self.stamp {
            Ok(())
        } else {
            Err(NoLongerServed::error(self.node, Gone::Changed))
        }
    }

    /// Moves to byte `pos` of the file.
    pub fn seek_to(&mut self, pos: u64) -> io::Result<()> {
        self.file.seek(SeekFrom::Start(pos)).map(drop)
    }

    /// Appends exactly `len` bytes, read from the current position, to `buf`; fails (and
    /// the bytes must not be used) when the file changed before they were all read.
    pub fn read_into(&mut self, buf: &mut Vec<u8>, len: u64) -> io::Result<()> {
        let n = (&mut self.file).take(len).read_to_end(buf)? as u64;
        if n < len {
            // Shorter than when the tab started: its size check below would say so too, but
            // only if the file is still short when it is looked at.
            return Err(NoLongerServed::error(self.node, Gone::Changed));
        }
        self.check()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::fs::OpenOptions;
    use std::io::Write as _;
    use std::time::{Duration, SystemTime};

    use super::*;

    fn shared(content: &[u8]) -> (tempfile::TempDir, std::path::PathBuf, Tree) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, content).unwrap();
        // An old modification time, so that a rewrite in the same clock tick still moves it.
        let old = SystemTime::UNIX_EPOCH + Duration::from_secs(1_600_000_000);
        File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(old)
            .unwrap();
        let index = Tree::of_items(std::slice::from_ref(&path)).unwrap();
        (dir, path, index)
    }

    fn why(err: &io::Error) -> Option<Gone> {
        NoLongerServed::of(err).map(|gone| gone.why)
    }

    #[test]
    fn a_changed_file_is_refused() {
        let (_dir, path, index) = shared(b"one");
        ServedFile::open(&index, 1).unwrap();
        std::fs::write(&path, "three").unwrap();
        assert_eq!(
            why(&ServedFile::open(&index, 1).unwrap_err()),
            Some(Gone::Changed)
        );
    }

    /// Regression (issue 9): a file deleted after the start gave 500; it is gone, like a
    /// changed one.
    #[test]
    fn a_deleted_file_is_gone_not_an_internal_error() {
        let (_dir, path, index) = shared(b"one");
        std::fs::remove_file(&path).unwrap();
        assert_eq!(
            why(&ServedFile::open(&index, 1).unwrap_err()),
            Some(Gone::Deleted)
        );
    }

    /// Regression (issue 9): a file rewritten in place, same size, while it was read, gave
    /// old and new bytes under the old ETag.
    #[test]
    fn a_file_rewritten_while_it_is_read_fails_the_next_read() {
        let (_dir, path, index) = shared(&[1; 1000]);
        let mut file = ServedFile::open(&index, 1).unwrap();
        let mut buf = Vec::new();
        file.read_into(&mut buf, 500).unwrap();
        let mut writer = OpenOptions::new().write(true).open(&path).unwrap();
        writer.write_all(&[2; 1000]).unwrap();
        drop(writer);
        let err = file.read_into(&mut buf, 500).unwrap_err();
        assert_eq!(why(&err), Some(Gone::Changed));
    }

    #[test]
    fn each_gone_file_is_reported_once() {
        let (_dir, path, index) = shared(b"one");
        let reports = GoneReports::new(&index);
        std::fs::remove_file(&path).unwrap();
        let err = ServedFile::open(&index, 1).unwrap_err();
        assert_eq!(
            reports.first(&err).map(|gone| gone.why),
            Some(Gone::Deleted)
        );
        assert!(reports.first(&err).is_none(), "reported twice");
        assert!(reports.first(&io::Error::other("unrelated")).is_none());
    }

    #[test]
    fn a_file_that_got_shorter_fails_the_read() {
        let (_dir, path, index) = shared(&[1; 1000]);
        let mut file = ServedFile::open(&index, 1).unwrap();
        let old = std::fs::metadata(&path).unwrap().modified().unwrap();
        let writer = OpenOptions::new().write(true).open(&path).unwrap();
        writer.set_len(10).unwrap();
        // Even with its old modification time back, the short read says it changed.
        writer.set_modified(old).unwrap();
        let mut buf = Vec::new();
        let err = file.read_into(&mut buf, 1000).unwrap_err();
        assert_eq!(why(&err), Some(Gone::Changed));
    }
}
