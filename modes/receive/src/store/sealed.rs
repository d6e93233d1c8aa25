//! The encrypted drop (`encrypt_to`): each upload becomes one file, `<date and time>.zip.age`,
//! an age file (X25519 recipients) whose plaintext is a zip of the upload's files and its
//! message under their names. Nothing of the upload touches the disk in plaintext: its bytes
//! are encrypted on their way from the visitor to the file, and even the temporary file that
//! holds them until the upload is complete is ciphertext.
//!
//! Why a zip inside: an age file is one stream, and an upload is several named files, so the
//! names must travel inside the encrypted payload. A tar would need each file's size before
//! its data, which a streamed upload does not know; a zip written as a stream puts each
//! entry's sizes and CRC after its data (a data descriptor, Zip64 so that any size fits) and
//! the directory of names at the end, so it is written front to back with nothing buffered.
//! Entries are stored, not compressed, like share's zip. `age -d` then `unzip` (or any zip
//! tool) gives the files back with their names.
//!
//! The zip writer and age's encryptor are blocking `Write`rs, so they run on a blocking thread
//! fed through a channel of at most [`QUEUE`] network chunks: memory stays flat whatever the
//! upload's size (the queue, age's 64 KiB chunk, one write buffer).

use std::collections::HashSet;
use std::io::{self, BufWriter, Write as _};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::NaiveDateTime;
use onionhost_sdk::axum::body::Bytes;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use zip::write::SimpleFileOptions;

use super::{Committed, MAX_NAME_TRIES, SavedFile, WRITE_BUFFER, folder_name};
use crate::names;

/// What a sealed upload's file name ends with.
pub(crate) const SEALED_SUFFIX: &str = ".zip.age";

/// Network chunks waiting for the encrypting thread, at most.
const QUEUE: usize = 4;

/// What the encrypting thread is asked to do.
enum Command {
    /// Start the next entry of the zip, under this name.
    Start(String),
    /// Append to the current entry.
    Data(Bytes),
    /// Close the zip and the age stream, flush and sync the file.
    Finish,
}

/// The encrypting thread of a started upload.
struct Writer {
    temp: PathBuf,
    time: NaiveDateTime,
    commands: mpsc::Sender<Command>,
    thread: Option<JoinHandle<io::Result<()>>>,
}

/// One encrypted upload in progress. Until [`SealedUpload::commit`], dropping it removes its
/// temporary file (ciphertext, never complete).
pub(crate) struct SealedUpload {
    dir: PathBuf,
    recipients: Arc<[age::x25519::Recipient]>,
    writer: Option<Writer>,
    /// Names taken in the archive, so that two files of one name both survive.
    taken: HashSet<String>,
    saved: Vec<SavedFile>,
    /// Whether an entry is open (data may be appended).
    writing: bool,
    committed: bool,
}

impl SealedUpload {
    /// An upload into a new encrypted file under `dir`, made when the first file starts.
    pub(crate) fn new(dir: PathBuf, recipients: Arc<[age::x25519::Recipient]>) -> Self {
        Self {
            dir,
            recipients,
            writer: None,
            taken: HashSet::new(),
            saved: Vec::new(),
            writing: false,
            committed: false,
        }
    }

    /// Whether an entry is open.
    pub(crate) fn is_writing(&self) -> bool {
        self.writing
    }

    /// Closes the entry being written (the zip closes it when the next one starts).
    pub(crate) fn finish_current(&mut self) {
        self.writing = false;
    }

    /// Whether anything was started.
    pub(crate) fn started(&self) -> bool {
        self.writer.is_some()
    }

    /// Starts an entry that will be named `name` (numbered if the archive has it already).
    pub(crate) async fn start(&mut self, name: String, is_message: bool) -> io::Result<()> {
        if self.writer.is_none() {
            self.writer = Some(self.open().await?);
        }
        let mut unique = name.clone();
        let mut n = 0;
        while !self.taken.insert(unique.clone()) {
            n += 1;
            if n >= MAX_NAME_TRIES {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    "no free name for a file",
                ));
            }
            unique = names::numbered(&name, n);
        }
        self.send(Command::Start(unique.clone())).await?;
        self.saved.push(SavedFile {
            name: unique,
            bytes: 0,
            is_message,
        });
        self.writing = true;
        Ok(())
    }

    /// Appends to the entry being written.
    pub(crate) async fn write(&mut self, data: &Bytes) -> io::Result<()> {
        let Some(current) = self.saved.last_mut().filter(|_| self.writing) else {
            return Err(io::Error::other("no file is being written"));
        };
        current.bytes += data.len() as u64;
        self.send(Command::Data(data.clone())).await
    }

    /// Completes the archive and the encryption and syncs the file: every byte on disk.
    pub(crate) async fn complete(&mut self) -> io::Result<()> {
        let Some(writer) = self.writer.as_ref() else {
            return Ok(());
        };
        if writer.thread.is_none() {
            // Completed already (or failed, which `send` reported).
            return Ok(());
        }
        self.writing = false;
        self.send(Command::Finish).await?;
        if let Some(thread) = self.writer.as_mut().and_then(|writer| writer.thread.take()) {
            thread.await.map_err(io::Error::other)??;
        }
        Ok(())
    }

    /// Gives the completed file its final name, `<date and time>.zip.age` (numbered when
    /// taken; claimed with `O_EXCL`, so nothing existing is replaced).
    pub(crate) async fn commit(mut self) -> io::Result<Committed> {
        self.complete().await?;
        let Some(writer) = self.writer.as_ref() else {
            self.committed = true;
            return Ok(Committed::default());
        };
        let (temp, time, dir) = (writer.temp.clone(), writer.time, self.dir.clone());
        let (path, disk_bytes) = tokio::task::spawn_blocking(move || {
            let path = claim_and_rename(&dir, &temp, time)?;
            std::fs::File::open(&dir)?.sync_all()?;
            let bytes = std::fs::metadata(&path)?.len();
            Ok::<_, io::Error>((path, bytes))
        })
        .await
        .map_err(io::Error::other)??;
        self.committed = true;
        Ok(Committed {
            saved: std::mem::take(&mut self.saved),
            location: Some(path),
            disk_bytes,
        })
    }

    /// Creates the temporary file and starts the encrypting thread.
    async fn open(&self) -> io::Result<Writer> {
        let time = chrono::Local::now().naive_local();
        let dir = self.dir.clone();
        let (temp, file) = tokio::task::spawn_blocking(move || create_temp(&dir))
            .await
            .map_err(io::Error::other)??;
        let (commands, queue) = mpsc::channel(QUEUE);
        let recipients = Arc::clone(&self.recipients);
        let thread = tokio::task::spawn_blocking(move || encrypt(file, &recipients, queue));
        Ok(Writer {
            temp,
            time,
            commands,
            thread: Some(thread),
        })
    }

    /// Hands `command` to the thread; if the thread has stopped, its error.
    async fn send(&mut self, command: Command) -> io::Result<()> {
        let Some(writer) = self.writer.as_mut() else {
            return Err(io::Error::other("the upload has not started"));
        };
        if writer.commands.send(command).await.is_ok() {
            return Ok(());
        }
        match writer.thread.take() {
            Some(thread) => match thread.await.map_err(io::Error::other)? {
                Err(err) => Err(err),
                Ok(()) => Err(io::Error::other("the encrypting thread ended early")),
            },
            None => Err(io::Error::other("the encrypting thread ended early")),
        }
    }
}

impl Drop for SealedUpload {
    fn drop(&mut self) {
        if self.committed {
            return;
        }
        if let Some(writer) = self.writer.take() {
            // Closing the queue ends the thread without finishing the archive; the file it
            // may still write to is unlinked here and freed when it lets go.
            drop(writer.commands);
            let _ = std::fs::remove_file(&writer.temp);
        }
    }
}

/// A new hidden file (0600) under `dir` for an upload being received.
fn create_temp(dir: &Path) -> io::Result<(PathBuf, std::fs::File)> {
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos());
    for n in 0..MAX_NAME_TRIES {
        let temp = dir.join(format!(".receiving-{stamp}-{n}.part"));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)
        {
            Ok(file) => return Ok((temp, file)),
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {}
            Err(err) => return Err(err),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        "no free temporary name",
    ))
}

/// The encrypting thread: zip entries into age into the file, until [`Command::Finish`].
/// A queue closed before that means the upload was abandoned: nothing is finished.
fn encrypt(
    file: std::fs::File,
    recipients: &[age::x25519::Recipient],
    mut queue: mpsc::Receiver<Command>,
) -> io::Result<()> {
    let encryptor = age::Encryptor::with_recipients(
        recipients
            .iter()
            .map(|recipient| recipient as &dyn age::Recipient),
    )
    .map_err(io::Error::other)?;
    let sealed = encryptor.wrap_output(BufWriter::with_capacity(WRITE_BUFFER, file))?;
    let mut zip = zip::ZipWriter::new_stream(sealed);
    // Zip64 on every entry: its size is not known when it starts. No times: the entry says
    // nothing the file's own modification time does not.
    let options = SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .large_file(true)
        .unix_permissions(0o600);
    while let Some(command) = queue.blocking_recv() {
        match command {
            Command::Start(name) => zip.start_file(name, options).map_err(io::Error::other)?,
            Command::Data(data) => zip.write_all(&data)?,
            Command::Finish => {
                let sealed = zip.finish().map_err(io::Error::other)?.into_inner();
                let file = sealed
                    .finish()?
                    .into_inner()
                    .map_err(io::IntoInnerError::into_error)?;
                return file.sync_all();
            }
        }
    }
    Err(io::Error::other("the upload was abandoned"))
}

/// Claims `<date and time>.zip.age` (or a numbered one) under `dir` and moves `temp` there.
fn claim_and_rename(dir: &Path, temp: &Path, time: NaiveDateTime) -> io::Result<PathBuf> {
    for n in 1..=MAX_NAME_TRIES {
        let target = dir.join(format!("{}{SEALED_SUFFIX}", folder_name(time, n)));
        if super::move_to_unclaimed(temp, &target)? {
            return Ok(target);
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        "too many uploads completed in the same second",
    ))
}
