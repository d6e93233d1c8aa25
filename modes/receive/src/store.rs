//! The disk side of an upload: its folder, files written under temporary names, the tab's
//! byte budget, free space, and the guard that removes everything when an upload does not
//! complete (error, refusal, the visitor going away, or the handler being dropped).

use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::NaiveDateTime;
use onionhost_sdk::axum::body::Bytes;
use tokio::io::{AsyncWriteExt, BufWriter};

use crate::names;

mod existing;
mod sealed;

pub(crate) use existing::bytes_already_received;
pub(crate) use sealed::{SEALED_SUFFIX, SealedUpload};

/// Large writes: one system call per MiB rather than per network chunk.
const WRITE_BUFFER: usize = 1024 * 1024;

/// How many numbered alternatives are tried for one folder or file name.
const MAX_NAME_TRIES: u32 = 10_000;

/// The bytes a tab has accepted, against its `max_total_size`.
#[derive(Debug)]
pub(crate) struct Budget {
    limit: u64,
    used: AtomicU64,
}

impl Budget {
    /// A budget of `limit` bytes, of which `used` are taken already (by earlier runs).
    pub(crate) fn new(limit: u64, used: u64) -> Self {
        Self {
            limit,
            used: AtomicU64::new(used),
        }
    }

    /// Counts `n` bytes more, over the budget or not: what an upload kept takes on disk
    /// beyond the bytes it reserved (an encrypted file's header and archive overhead).
    pub(crate) fn add(&self, n: u64) {
        let _ = self
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                Some(used.saturating_add(n))
            });
    }

    /// Takes `n` bytes from the budget, or returns false when that would go over it.
    pub(crate) fn try_reserve(&self, n: u64) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(n).filter(|total| *total <= self.limit)
            })
            .is_ok()
    }

    /// Bytes that may still be accepted.
    pub(crate) fn left(&self) -> u64 {
        self.limit.saturating_sub(self.used.load(Ordering::Acquire))
    }

    /// Gives back bytes of an upload that did not complete.
    pub(crate) fn release(&self, n: u64) {
        self.used.fetch_sub(n, Ordering::AcqRel);
    }

    #[cfg(test)]
    pub(crate) fn used(&self) -> u64 {
        self.used.load(Ordering::Acquire)
    }
}

/// Free bytes for unprivileged users on the file system holding `path`.
pub(crate) fn free_space(path: &Path) -> io::Result<u64> {
    let stat = nix::sys::statvfs::statvfs(path).map_err(io::Error::from)?;
    #[allow(clippy::useless_conversion)]
    let free = u64::from(stat.blocks_available()).saturating_mul(u64::from(stat.fragment_size()));
    Ok(free)
}

/// The name of an upload's folder: its date and time, then `-2`, `-3`... when uploads start
/// in the same second.
pub(crate) fn folder_name(time: NaiveDateTime, n: u32) -> String {
    let base = time.format("%Y-%m-%dT%H-%M-%S").to_string();
    if n <= 1 { base } else { format!("{base}-{n}") }
}

/// Creates a new folder (mode 0700) for one upload under `dir`. Each attempt is one atomic
/// `mkdir`, so two uploads never get the same folder.
pub(crate) fn create_upload_folder(dir: &Path, time: NaiveDateTime) -> io::Result<PathBuf> {
    for n in 1..=MAX_NAME_TRIES {
        let path = dir.join(folder_name(time, n));
        match std::fs::DirBuilder::new().mode(0o700).create(&path) {
            Ok(()) => return Ok(path),
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {}
            Err(err) => return Err(err),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        "too many uploads started in the same second",
    ))
}

/// A file of the upload, written under a temporary hidden name until the upload completes.
#[derive(Debug)]
pub(crate) struct PendingFile {
    temp: PathBuf,
    /// The name it should get (already sanitized).
    pub(crate) name: String,
    pub(crate) bytes: u64,
}

/// A file or message as saved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SavedFile {
    pub(crate) name: String,
    pub(crate) bytes: u64,
    pub(crate) is_message: bool,
}

/// What a kept upload left on disk.
#[derive(Debug, Default)]
pub(crate) struct Committed {
    /// Its files and message, under the names they were saved as.
    pub(crate) saved: Vec<SavedFile>,
    /// Its folder, or its encrypted file.
    pub(crate) location: Option<PathBuf>,
    /// What it takes on disk (its bytes, or its encrypted file's length).
    pub(crate) disk_bytes: u64,
}

/// One upload being written: as plain files in a folder of its own, or as one encrypted file
/// (`encrypt_to`). Until `commit`, dropping it removes everything it wrote.
pub(crate) enum UploadFiles {
    /// Files as they are, in the upload's folder.
    Plain(PlainFiles),
    /// One age file for the recipients.
    Sealed(SealedUpload),
}

impl UploadFiles {
    /// An upload into `dir`, encrypted for `recipients` when there are any.
    pub(crate) fn new(dir: PathBuf, recipients: Option<Arc<[age::x25519::Recipient]>>) -> Self {
        match recipients {
            Some(recipients) => Self::Sealed(SealedUpload::new(dir, recipients)),
            None => Self::Plain(PlainFiles::new(dir)),
        }
    }

    /// Whether the upload has written anything (made its folder or file).
    pub(crate) fn started(&self) -> bool {
        match self {
            Self::Plain(files) => files.folder().is_some(),
            Self::Sealed(sealed) => sealed.started(),
        }
    }

    /// Starts a file that will be named `name`; `is_message` marks the text message.
    pub(crate) async fn start(&mut self, name: String, is_message: bool) -> io::Result<()> {
        match self {
            Self::Plain(files) => files.start(name, is_message).await,
            Self::Sealed(sealed) => sealed.start(name, is_message).await,
        }
    }

    /// Whether a file is being written.
    pub(crate) fn is_writing(&self) -> bool {
        match self {
            Self::Plain(files) => files.is_writing(),
            Self::Sealed(sealed) => sealed.is_writing(),
        }
    }

    /// Appends to the file being written.
    pub(crate) async fn write(&mut self, data: &Bytes) -> io::Result<()> {
        match self {
            Self::Plain(files) => files.write(data).await,
            Self::Sealed(sealed) => sealed.write(data).await,
        }
    }

    /// Completes the file being written.
    pub(crate) async fn finish_current(&mut self) -> io::Result<()> {
        match self {
            Self::Plain(files) => files.finish_current().await,
            Self::Sealed(sealed) => {
                sealed.finish_current();
                Ok(())
            }
        }
    }

    /// Puts every byte on disk (the last file flushed and synced; an encrypted upload's
    /// archive and encryption completed), before the upload is given its names.
    pub(crate) async fn complete(&mut self) -> io::Result<()> {
        match self {
            Self::Plain(files) => files.finish_current().await,
            Self::Sealed(sealed) => sealed.complete().await,
        }
    }

    /// Keeps the upload: every file under its final name, everything on disk.
    pub(crate) async fn commit(self) -> io::Result<Committed> {
        match self {
            Self::Plain(files) => {
                let location = files.folder().map(Path::to_path_buf);
                let saved = files.commit().await?;
                let disk_bytes = saved.iter().map(|file| file.bytes).sum();
                Ok(Committed {
                    saved,
                    location,
                    disk_bytes,
                })
            }
            Self::Sealed(sealed) => sealed.commit().await,
        }
    }
}

/// One upload's plain files on disk. Until [`PlainFiles::commit`], dropping it removes every
/// file it wrote and its folder.
#[derive(Debug)]
pub(crate) struct PlainFiles {
    dir: PathBuf,
    folder: Option<PathBuf>,
    pending: Vec<(PendingFile, bool)>,
    current: Option<(BufWriter<tokio::fs::File>, PendingFile, bool)>,
    committed: bool,
}

impl PlainFiles {
    /// An upload into a new folder under `dir`; the folder is made when the first file starts.
    pub(crate) fn new(dir: PathBuf) -> Self {
        Self {
            dir,
            folder: None,
            pending: Vec::new(),
            current: None,
            committed: false,
        }
    }

    /// The upload's folder, once made.
    pub(crate) fn folder(&self) -> Option<&Path> {
        self.folder.as_deref()
    }

    /// Starts a file that will be named `name`; `is_message` marks the text message.
    pub(crate) async fn start(&mut self, name: String, is_message: bool) -> io::Result<()> {
        self.finish_current().await?;
        let folder = match &self.folder {
            Some(folder) => folder.clone(),
            None => {
                let dir = self.dir.clone();
                let now = chrono::Local::now().naive_local();
                let folder = tokio::task::spawn_blocking(move || create_upload_folder(&dir, now))
                    .await
                    .map_err(io::Error::other)??;
                self.folder = Some(folder.clone());
                folder
            }
        };
        // A hidden name no sanitized name can take (those never start with a dot).
        let temp = folder.join(format!(".receiving-{}.part", self.pending.len()));
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)
            .await?;
        self.current = Some((
            BufWriter::with_capacity(WRITE_BUFFER, file),
            PendingFile {
                temp,
                name,
                bytes: 0,
            },
            is_message,
        ));
        Ok(())
    }

    /// Whether a file is being written.
    pub(crate) fn is_writing(&self) -> bool {
        self.current.is_some()
    }

    /// Appends to the file being written.
    pub(crate) async fn write(&mut self, data: &[u8]) -> io::Result<()> {
        let Some((writer, pending, _)) = &mut self.current else {
            return Err(io::Error::other("no file is being written"));
        };
        writer.write_all(data).await?;
        pending.bytes += data.len() as u64;
        Ok(())
    }

    /// Completes the file being written: every byte flushed and on disk.
    pub(crate) async fn finish_current(&mut self) -> io::Result<()> {
        let Some((mut writer, pending, is_message)) = self.current.take() else {
            return Ok(());
        };
        // Keep the temporary name known to the guard while flushing, whatever happens.
        self.pending.push((
            PendingFile {
                temp: pending.temp.clone(),
                name: pending.name.clone(),
                bytes: pending.bytes,
            },
            is_message,
        ));
        writer.flush().await?;
        let file = writer.into_inner();
        file.sync_all().await?;
        Ok(())
    }

    /// Gives every file its final name and keeps the upload. Names are claimed with
    /// `create_new` (`O_EXCL`), so nothing that exists is ever replaced: a taken name gets a
    /// number, `name (1).ext`.
    pub(crate) async fn commit(mut self) -> io::Result<Vec<SavedFile>> {
        self.finish_current().await?;
        let Some(folder) = self.folder.clone() else {
            self.committed = true;
            return Ok(Vec::new());
        };
        let pending = std::mem::take(&mut self.pending);
        // If anything fails from here on, the guard still removes every temporary file and
        // every final name claimed so far.
        let result = tokio::task::spawn_blocking(move || {
            let mut saved = Vec::new();
            let mut claimed = Vec::new();
            let mut result = Ok(());
            for (file, is_message) in &pending {
                match claim_and_rename(&folder, file) {
                    Ok(name) => {
                        claimed.push(folder.join(&name));
                        saved.push(SavedFile {
                            name,
                            bytes: file.bytes,
                            is_message: *is_message,
                        });
                    }
                    Err(err) => {
                        result = Err(err);
                        break;
                    }
                }
            }
            if result.is_ok() {
                result = std::fs::File::open(&folder).and_then(|dir| dir.sync_all());
            }
            match result {
                Ok(()) => Ok(saved),
                Err(err) => {
                    for path in claimed {
                        let _ = std::fs::remove_file(path);
                    }
                    for (file, _) in &pending {
                        let _ = std::fs::remove_file(&file.temp);
                    }
                    let _ = std::fs::remove_dir(&folder);
                    Err(err)
                }
            }
        })
        .await
        .map_err(io::Error::other)?;
        // Either way nothing is left for the guard to do.
        self.committed = true;
        result
    }
}

/// Claims a free name for `file` in `folder` and moves it there; returns the name.
fn claim_and_rename(folder: &Path, file: &PendingFile) -> io::Result<String> {
    let names = (0..MAX_NAME_TRIES).map(|n| {
        if n == 0 {
            file.name.clone()
        } else {
            names::numbered(&file.name, n)
        }
    });
    for name in names {
        if move_to_unclaimed(&file.temp, &folder.join(&name))? {
            return Ok(name);
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        "no free name for a file",
    ))
}

/// Moves `temp` to `target` unless `target` exists: `Ok(false)` when the name is taken.
///
/// The name is first claimed with an empty `create_new` file (0600), so two uploads finishing
/// at once can never replace each other's file; the rename then replaces only that claim.
fn move_to_unclaimed(temp: &Path, target: &Path) -> io::Result<bool> {
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(target)
    {
        Ok(_) => {
            if let Err(err) = std::fs::rename(temp, target) {
                let _ = std::fs::remove_file(target);
                return Err(err);
            }
            Ok(true)
        }
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(err) => Err(err),
    }
}

impl Drop for PlainFiles {
    fn drop(&mut self) {
        if self.committed {
            return;
        }
        if let Some((_, pending, _)) = self.current.take() {
            let _ = std::fs::remove_file(&pending.temp);
        }
        for (pending, _) in self.pending.drain(..) {
            let _ = std::fs::remove_file(&pending.temp);
        }
        if let Some(folder) = self.folder.take() {
            // Only ever removes the folder if it is empty.
            let _ = std::fs::remove_dir(folder);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::os::unix::fs::PermissionsExt;

    use chrono::NaiveDate;

    use super::*;

    fn time() -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2026, 11, 27)
            .unwrap()
            .and_hms_opt(15, 42, 7)
            .unwrap()
    }

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn folders_are_named_by_date_and_time_and_numbered_in_the_same_second() {
        assert_eq!(folder_name(time(), 1), "2026-11-27T15-42-07");
        assert_eq!(folder_name(time(), 2), "2026-11-27T15-42-07-2");
        let dir = tempfile::tempdir().unwrap();
        let first = create_upload_folder(dir.path(), time()).unwrap();
        let second = create_upload_folder(dir.path(), time()).unwrap();
        assert_eq!(first.file_name().unwrap(), "2026-11-27T15-42-07");
        assert_eq!(second.file_name().unwrap(), "2026-11-27T15-42-07-2");
        assert_eq!(mode(&first), 0o700);
    }

    #[test]
    fn concurrent_folders_are_distinct() {
        let dir = tempfile::tempdir().unwrap();
        let folders: Vec<PathBuf> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| s.spawn(|| create_upload_folder(dir.path(), time()).unwrap()))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let mut unique = folders.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 8);
    }

    #[test]
    fn the_budget_refuses_what_goes_over_and_takes_back_releases() {
        let budget = Budget::new(10, 0);
        assert!(budget.try_reserve(6));
        assert!(!budget.try_reserve(5));
        assert!(budget.try_reserve(4));
        assert!(!budget.try_reserve(1));
        budget.release(4);
        assert_eq!(budget.used(), 6);
        assert!(budget.try_reserve(4));
        assert!(!budget.try_reserve(u64::MAX));
    }

    #[test]
    fn free_space_is_known() {
        let dir = tempfile::tempdir().unwrap();
        assert!(free_space(dir.path()).unwrap() > 0);
    }

    #[tokio::test]
    async fn a_committed_upload_keeps_its_files_under_their_names() {
        let dir = tempfile::tempdir().unwrap();
        let mut files = PlainFiles::new(dir.path().to_path_buf());
        for (name, data) in [("a.txt", "one"), ("a.txt", "two"), ("message.txt", "hi")] {
            files
                .start(name.to_owned(), name == "message.txt")
                .await
                .unwrap();
            files.write(data.as_bytes()).await.unwrap();
        }
        let folder = files.folder().unwrap().to_path_buf();
        let saved = files.commit().await.unwrap();
        let names: Vec<&str> = saved.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["a.txt", "a (1).txt", "message.txt"]);
        assert!(saved[2].is_message);
        assert_eq!(
            std::fs::read_to_string(folder.join("a.txt")).unwrap(),
            "one"
        );
        assert_eq!(
            std::fs::read_to_string(folder.join("a (1).txt")).unwrap(),
            "two"
        );
        assert_eq!(mode(&folder.join("a.txt")), 0o600);
        assert_eq!(mode(&folder), 0o700);
        assert_eq!(std::fs::read_dir(&folder).unwrap().count(), 3);
    }

    #[tokio::test]
    async fn a_dropped_upload_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut files = PlainFiles::new(dir.path().to_path_buf());
        files.start("a".to_owned(), false).await.unwrap();
        files.write(b"complete").await.unwrap();
        files.start("b".to_owned(), false).await.unwrap();
        files.write(&[7; 3 * WRITE_BUFFER]).await.unwrap();
        drop(files);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
