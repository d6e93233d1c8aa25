//! Download bodies: bytes read on a thread of their own in 256 KiB chunks, handed to the response
//! through a small channel (so reading runs ahead of the network), and a [`Transfer`] that
//! counts what the visitor was sent and reports it to the console.
//!
//! A download counts as complete when the HTTP server took every byte of a `200` response
//! (the whole file or the whole zip). A `206` piece never counts, nor does a response whose
//! body was dropped early (the visitor went away, or the tab was forced to close). A
//! download the host could not finish (a shared file changed, was deleted or could not be
//! read) ends with an error, so the visitor's client sees a broken download rather than a
//! short or mixed file, and the console says it failed rather than blame the visitor.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use futures::Stream;
use onionhost_sdk::axum::body::Bytes;
use onionhost_sdk::{Direction, TabEvent, TransferOutcome};
use tokio::sync::{OwnedSemaphorePermit, mpsc};

use crate::Share;
use crate::source::SharedFile;
use crate::zip::Sink;

/// The size of each chunk read and sent.
pub(crate) const CHUNK: usize = 256 * 1024;
/// Chunks read ahead of what the network has taken.
const READ_AHEAD: usize = 4;
/// How often a transfer's progress is reported at most.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

type Chunks = mpsc::Receiver<io::Result<Bytes>>;

/// A [`Sink`] that cuts the bytes into chunks and sends them to the response body.
struct ChannelSink {
    buf: Vec<u8>,
    tx: mpsc::Sender<io::Result<Bytes>>,
}

impl ChannelSink {
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

impl Sink for ChannelSink {
    fn write(&mut self, mut bytes: &[u8]) -> io::Result<()> {
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

    fn is_abandoned(&self) -> bool {
        self.tx.is_closed()
    }

    fn copy_from(
        &mut self,
        file: &mut SharedFile,
        len: u64,
        mut crc: Option<&mut crc32fast::Hasher>,
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
            if let Some(hasher) = crc.as_mut() {
                hasher.update(&self.buf[before..]);
            }
            left -= want;
            if self.buf.len() >= CHUNK {
                self.flush()?;
            }
        }
        Ok(())
    }
}

/// Runs `produce` on a thread of its own; its bytes come out of the returned channel.
///
/// A thread per download, not tokio's blocking pool: a download holds its thread for as long
/// as the visitor takes (blocked while the channel is full), and a few slow visitors must
/// not starve the pool that every tab of the host shares.
fn spawn_producer(
    share: Arc<Share>,
    produce: impl FnOnce(&mut ChannelSink) -> io::Result<()> + Send + 'static,
) -> io::Result<Chunks> {
    let (tx, rx) = mpsc::channel(READ_AHEAD);
    std::thread::Builder::new()
        .name("share-download".into())
        .spawn(move || {
            let mut sink = ChannelSink {
                buf: Vec::with_capacity(CHUNK),
                tx,
            };
            if let Err(err) = produce(&mut sink).and_then(|()| sink.flush()) {
                tracing::debug!("a download ended early: {err}");
                share.report_gone(&err);
                // The response ends with an error, so the visitor sees a broken download
                // rather than a short file. (When the visitor is the one who left, nobody
                // receives it.)
                let _ = sink.tx.blocking_send(Err(err));
            }
        })?;
    Ok(rx)
}

/// Bytes `start..end` of an open file.
pub(crate) fn file_chunks(
    share: Arc<Share>,
    mut file: SharedFile,
    start: u64,
    end: u64,
) -> io::Result<Chunks> {
    spawn_producer(share, move |sink| {
        file.seek_to(start)?;
        sink.copy_from(&mut file, end - start, None)
    })
}

/// Bytes `start..end` of the share's zip.
pub(crate) fn zip_chunks(share: Arc<Share>, start: u64, end: u64) -> io::Result<Chunks> {
    let shared = Arc::clone(&share);
    spawn_producer(share, move |sink| {
        shared.zip.write_range(&shared.index, start, end, sink)
    })
}

/// One download in progress: the response body, counting and reporting what it sends.
pub(crate) struct Transfer {
    share: Arc<Share>,
    chunks: Chunks,
    id: u64,
    expected: u64,
    sent: u64,
    /// Whether this is a whole file or the whole zip (a `200`), which may stop the share.
    whole: bool,
    /// Whether the reading side ended it with an error (the host's failure, not the
    /// visitor's).
    failed: bool,
    last_progress: Instant,
    _permit: OwnedSemaphorePermit,
}

impl Transfer {
    /// Starts reporting a download of `expected` bytes read from `chunks`.
    pub(crate) fn start(
        share: Arc<Share>,
        chunks: Chunks,
        expected: u64,
        whole: bool,
        label: Option<String>,
        permit: OwnedSemaphorePermit,
    ) -> Self {
        let id = share.next_transfer.fetch_add(1, Ordering::Relaxed) + 1;
        share.ctx.report(TabEvent::TransferStarted {
            id,
            direction: Direction::Download,
            total_bytes: Some(expected),
            label,
        });
        Self {
            share,
            chunks,
            id,
            expected,
            sent: 0,
            whole,
            failed: false,
            last_progress: Instant::now(),
            _permit: permit,
        }
    }
}

impl Stream for Transfer {
    type Item = io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let item = ready!(self.chunks.poll_recv(cx));
        if let Some(Err(_)) = &item {
            self.failed = true;
        }
        if let Some(Ok(bytes)) = &item {
            self.sent += bytes.len() as u64;
            if self.last_progress.elapsed() >= PROGRESS_EVERY && self.sent < self.expected {
                self.last_progress = Instant::now();
                self.share.ctx.report(TabEvent::TransferProgress {
                    id: self.id,
                    bytes: self.sent,
                });
            }
        }
        Poll::Ready(item)
    }
}

impl Drop for Transfer {
    fn drop(&mut self) {
        let completed = self.sent == self.expected;
        self.share.ctx.report(TabEvent::TransferFinished {
            id: self.id,
            bytes: self.sent,
            outcome: if completed {
                TransferOutcome::Completed
            } else if self.failed {
                TransferOutcome::Failed
            } else {
                TransferOutcome::Cancelled
            },
            saved_to: None,
        });
        if completed && self.whole {
            self.share.whole_download_finished();
        }
    }
}
