//! Download bodies: the sdk's file bodies ([`onionhost_sdk::files::spawn_body`]: read on a
//! thread of their own, bytes out only once checked), the zip written into them, and a
//! [`Transfer`] that counts what the visitor was sent and reports it to the console.
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
use onionhost_sdk::files::{BodyWriter, Chunks, ServedFile};
use onionhost_sdk::{Direction, TabEvent, TransferOutcome};
use tokio::sync::OwnedSemaphorePermit;

use crate::Share;
use crate::zip::Sink;

/// How often a transfer's progress is reported at most.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);
/// The name of the threads that read downloads.
const THREAD: &str = "share-download";

impl Sink for BodyWriter {
    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        BodyWriter::write(self, bytes)
    }

    fn is_abandoned(&self) -> bool {
        BodyWriter::is_abandoned(self)
    }

    fn copy_from(
        &mut self,
        file: &mut ServedFile,
        len: u64,
        crc: Option<&mut crc32fast::Hasher>,
    ) -> io::Result<()> {
        match crc {
            Some(hasher) => {
                BodyWriter::copy_from(self, file, len, &mut |bytes| hasher.update(bytes))
            }
            None => BodyWriter::copy_from(self, file, len, &mut |_| {}),
        }
    }
}

/// Bytes `start..end` of an open file.
pub(crate) fn file_chunks(
    share: Arc<Share>,
    file: ServedFile,
    start: u64,
    end: u64,
) -> io::Result<Chunks> {
    onionhost_sdk::files::file_body(THREAD, file, start, end, move |err| {
        share.report_gone(err);
    })
}

/// Bytes `start..end` of the share's zip.
pub(crate) fn zip_chunks(share: Arc<Share>, start: u64, end: u64) -> io::Result<Chunks> {
    let shared = Arc::clone(&share);
    onionhost_sdk::files::spawn_body(
        THREAD,
        move |writer| shared.zip.write_range(&shared.index, start, end, writer),
        move |err| share.report_gone(err),
    )
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
        let item = ready!(Pin::new(&mut self.chunks).poll_next(cx));
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
