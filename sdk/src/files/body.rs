//! Response bodies read from served files: bytes read on a thread of their own in 256 KiB
//! chunks, handed to the response through a small channel (so reading runs ahead of the
//! network), and only once [`ServedFile::read_into`] has vouched for them.
//!
//! A body the host could not finish (a served file changed, was deleted or could not be read)
//! ends with an error, so the visitor's client sees a broken download rather than a short or
//! mixed file.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Bytes;
use futures::Stream;
use tokio::sync::mpsc;

use super::source::ServedFile;

/// The size of each chunk read and sent.
pub const CHUNK: usize = 256 * 1024;
/// Chunks read ahead of what the network has taken.
const READ_AHEAD: usize = 4;

/// The chunks of a body as they are read: a [`Stream`] for `Body::from_stream`. It ends with
/// an error when the reading side failed; dropping it tells the reading side to stop.
#[derive(Debug)]
pub struct Chunks {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    /// What [`Chunks::first_read`] received: the first item (`None`: the body was empty).
    first: Option<Option<io::Result<Bytes>>>,
}

impl Chunks {
    /// Waits until the first chunk has been read (or the body has ended), and keeps it for
    /// the first poll.
    ///
    /// A handler returns `chunks.first_read().await` so that the server has the head and the
    /// first bytes at once: it writes them together. Given a body that is not ready yet, it
    /// writes the head alone, and over Tor a small file then leaves as two cells, not one.
    pub async fn first_read(mut self) -> Self {
        if self.first.is_none() {
            self.first = Some(self.rx.recv().await);
        }
        self
    }
}

impl Stream for Chunks {
    type Item = io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match self.first.take() {
            Some(first) => Poll::Ready(first),
            None => self.rx.poll_recv(cx),
        }
    }
}

/// Where a body's producer puts its bytes: it cuts them into chunks for the response.
#[derive(Debug)]
pub struct BodyWriter {
    buf: Vec<u8>,
    tx: mpsc::Sender<io::Result<Bytes>>,
}

impl BodyWriter {
    /// Takes the next bytes of the body (bytes the producer made itself, such as share's zip
    /// headers; a file's bytes go through [`BodyWriter::copy_from`]).
    pub fn write(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            let n = (CHUNK - self.buf.len()).min(bytes.len());
            self.buf.extend_from_slice(&bytes[..n]);
            bytes = &bytes[n..];
            if self.buf.len() >= CHUNK {
                self.flush()?;
            }
        }
        Ok(())
    }

    /// Whether nobody waits for the bytes any more (the visitor went away).
    pub fn is_abandoned(&self) -> bool {
        self.tx.is_closed()
    }

    /// Copies exactly `len` bytes of `file`, from its current position, into the body,
    /// showing them to `seen` on the way (share computes CRCs so). Bytes go
    /// in only once [`ServedFile::read_into`] has vouched for them: what a failed read added
    /// is dropped, never sent.
    pub fn copy_from(
        &mut self,
        file: &mut ServedFile,
        len: u64,
        seen: &mut dyn FnMut(&[u8]),
    ) -> io::Result<()> {
        let mut left = len;
        while left > 0 {
            let want = ((CHUNK - self.buf.len()) as u64).min(left);
            let before = self.buf.len();
            if let Err(err) = file.read_into(&mut self.buf, want) {
                // What this read added may be bytes of another version: never sent.
                self.buf.truncate(before);
                return Err(err);
            }
            seen(&self.buf[before..]);
            left -= want;
            if self.buf.len() >= CHUNK {
                self.flush()?;
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        self.tx
            .blocking_send(Ok(Bytes::from(chunk)))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the visitor went away"))
    }
}

/// Runs `produce` on a thread of its own (named `thread_name`); its bytes come out of the
/// returned [`Chunks`]. When it fails, `failed` sees the error first (to tell the console
/// that a file is no longer served), then the body ends with it.
///
/// A thread per body, not tokio's blocking pool: a body holds its thread for as long as the
/// visitor takes (blocked while the channel is full), and a few slow visitors must not starve
/// the pool that every tab of the host shares. Callers bound how many run at once.
pub fn spawn_body(
    thread_name: &str,
    produce: impl FnOnce(&mut BodyWriter) -> io::Result<()> + Send + 'static,
    failed: impl FnOnce(&io::Error) + Send + 'static,
) -> io::Result<Chunks> {
    let (tx, rx) = mpsc::channel(READ_AHEAD);
    std::thread::Builder::new()
        .name(thread_name.to_owned())
        .spawn(move || {
            let mut writer = BodyWriter {
                buf: Vec::with_capacity(CHUNK),
                tx,
            };
            if let Err(err) = produce(&mut writer).and_then(|()| writer.flush()) {
                tracing::debug!("a response body ended early: {err}");
                failed(&err);
                // The response ends with an error, so the visitor sees a broken download
                // rather than a short file. (When the visitor is the one who left, nobody
                // receives it.)
                let _ = writer.tx.blocking_send(Err(err));
            }
        })?;
    Ok(Chunks { rx, first: None })
}

/// Bytes `start..end` of an open file, as [`spawn_body`] sends them.
pub fn file_body(
    thread_name: &str,
    mut file: ServedFile,
    start: u64,
    end: u64,
    failed: impl FnOnce(&io::Error) + Send + 'static,
) -> io::Result<Chunks> {
    spawn_body(
        thread_name,
        move |writer| {
            file.seek_to(start)?;
            writer.copy_from(&mut file, end - start, &mut |_| {})
        },
        failed,
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::io::Write as _;

    use futures::{FutureExt as _, StreamExt as _};

    use super::*;
    use crate::files::{NoLongerServed, Tree};

    fn served(content: &[u8]) -> (tempfile::TempDir, std::path::PathBuf, Tree) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, content).unwrap();
        let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_600_000_000);
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(old)
            .unwrap();
        let tree = Tree::of_items(std::slice::from_ref(&path)).unwrap();
        (dir, path, tree)
    }

    #[tokio::test]
    async fn a_range_of_a_file_comes_out_exactly() {
        let content: Vec<u8> = (0..CHUNK * 2 + 7).map(|i| (i % 251) as u8).collect();
        let (_dir, _path, tree) = served(&content);
        let file = ServedFile::open(&tree, 1).unwrap();
        let mut chunks = file_body("test", file, 5, content.len() as u64 - 1, |_| {}).unwrap();
        let mut got = Vec::new();
        while let Some(chunk) = chunks.next().await {
            got.extend_from_slice(&chunk.unwrap());
        }
        assert_eq!(got, content[5..content.len() - 1]);
    }

    /// Once `first_read` returns, the first chunk is there without waiting, and the rest
    /// follows; an empty body ends at once.
    #[tokio::test]
    async fn first_read_has_the_first_chunk_ready() {
        let content: Vec<u8> = (0..CHUNK + 10).map(|i| (i % 251) as u8).collect();
        let (_dir, _path, tree) = served(&content);
        let file = ServedFile::open(&tree, 1).unwrap();
        let len = content.len() as u64;
        let mut chunks = file_body("test", file, 0, len, |_| {})
            .unwrap()
            .first_read()
            .await;
        let first = chunks
            .next()
            .now_or_never()
            .expect("ready")
            .unwrap()
            .unwrap();
        assert_eq!(first[..], content[..CHUNK]);
        let rest = chunks.next().await.unwrap().unwrap();
        assert_eq!(rest[..], content[CHUNK..]);
        assert!(chunks.next().await.is_none());

        let file = ServedFile::open(&tree, 1).unwrap();
        let mut empty = file_body("test", file, 3, 3, |_| {})
            .unwrap()
            .first_read()
            .await;
        assert!(empty.next().now_or_never().expect("ready").is_none());
    }

    /// A file rewritten while it is sent ends the body with an error, after the bytes read
    /// before the change, and `failed` hears of it.
    #[tokio::test]
    async fn a_file_rewritten_mid_body_ends_it_with_an_error() {
        let content = vec![1u8; CHUNK * 8];
        let (_dir, path, tree) = served(&content);
        let file = ServedFile::open(&tree, 1).unwrap();
        let (told_tx, told_rx) = std::sync::mpsc::channel();
        let mut chunks = file_body("test", file, 0, content.len() as u64, move |err| {
            told_tx
                .send(NoLongerServed::of(err).map(|gone| gone.why))
                .unwrap();
        })
        .unwrap();
        // The first chunk is out; the rest waits for the channel (read-ahead is bounded).
        let first = chunks.next().await.unwrap().unwrap();
        assert_eq!(first.len(), CHUNK);
        let mut writer = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        writer.write_all(&[2; 16]).unwrap();
        drop(writer);
        let mut sent = first.len();
        let mut ended_with_error = false;
        while let Some(chunk) = chunks.next().await {
            match chunk {
                Ok(bytes) => {
                    assert!(
                        bytes.iter().all(|&b| b == 1),
                        "a byte of the new version went out"
                    );
                    sent += bytes.len();
                }
                Err(_) => ended_with_error = true,
            }
        }
        assert!(ended_with_error);
        assert!(sent < content.len());
        assert_eq!(told_rx.recv().unwrap(), Some(crate::files::Gone::Changed));
    }
}
