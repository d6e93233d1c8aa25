//! The request body on its way to the multipart parser: counted, handed over in bounded
//! bursts, and, after a refusal, the rest of it read and thrown away when it is small.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::{Stream, StreamExt};
use multer::{Field, Multipart};
use onionhost_sdk::CancellationToken;
use onionhost_sdk::axum::body::{Body, BodyDataStream, Bytes};
use tokio::time::timeout;

/// Bytes of a request that are not part data (boundaries and part headers) allowed before the
/// request is refused, plus [`OVERHEAD_PER_PART`] per part: a part header that never ends
/// must not make the parser buffer the request.
pub(super) const OVERHEAD_BASE: u64 = 1024 * 1024;
pub(super) const OVERHEAD_PER_PART: u64 = 64 * 1024;

/// After a refusal, the rest of a request is read and thrown away in the background, up to
/// this much and this long, so that the visitor's browser is still listening when the answer
/// comes (a socket closed with unread bytes is reset, and the reset can destroy the answer on
/// its way: the client sees a broken connection instead of the 413). A request with more than
/// this left is not read: its connection is closed right after the answer, so that a refused
/// upload costs the host nothing more. Either way the upload's slot is free as soon as it is
/// refused. 8 MiB is about what a fast Tor circuit delivers in [`DRAIN_TIME`].
pub(super) const DRAIN_MAX: u64 = 8 * 1024 * 1024;
const DRAIN_TIME: Duration = Duration::from_secs(10);

/// The most the parser may pull from the connection in one go: it reads whatever is ready
/// before it looks at it, so without this bound it could buffer a whole socket's worth.
const BURST: u64 = 256 * 1024;

/// Counts a request's bytes: those pulled from the connection, and those handed out as part
/// data. The difference is what the parser buffers, which must stay small.
#[derive(Debug, Default)]
pub(super) struct Meter {
    pub(super) pulled: AtomicU64,
    pub(super) delivered: AtomicU64,
    pub(super) parts: AtomicU64,
    draining: AtomicBool,
}

/// The request body, counted in [`Meter`], handed to the parser in bursts of at most
/// [`BURST`] bytes.
pub(super) struct Metered {
    inner: BodyDataStream,
    meter: Arc<Meter>,
    burst: u64,
}

pub(super) fn metered(body: Body, meter: Arc<Meter>) -> Metered {
    Metered {
        inner: body.into_data_stream(),
        meter,
        burst: 0,
    }
}

impl Stream for Metered {
    type Item = Result<Bytes, io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.burst >= BURST {
            // Let the parser hand out what it has before it reads more; it is polled again
            // at once.
            self.burst = 0;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        let bytes = match Pin::new(&mut self.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(bytes))) => bytes,
            Poll::Ready(Some(Err(err))) => return Poll::Ready(Some(Err(io::Error::other(err)))),
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Pending => {
                self.burst = 0;
                return Poll::Pending;
            }
        };
        let len = bytes.len() as u64;
        self.burst += len;
        let meter = &self.meter;
        // What the parser holds when it asks for more: at most a burst of data not yet handed
        // out, plus boundaries and part headers. Far more means a header that never ends.
        let pulled_before = meter.pulled.fetch_add(len, Ordering::Relaxed);
        if !meter.draining.load(Ordering::Relaxed) {
            let held = pulled_before.saturating_sub(meter.delivered.load(Ordering::Relaxed));
            let allowed = OVERHEAD_BASE
                + OVERHEAD_PER_PART.saturating_mul(meter.parts.load(Ordering::Relaxed));
            if held > allowed {
                return Poll::Ready(Some(Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "the form's part headers are too large",
                ))));
            }
        }
        Poll::Ready(Some(Ok(bytes)))
    }
}

/// The unread rest of a refused request, to be read and thrown away after the answer.
pub(super) enum Rest {
    /// A body nothing has read yet.
    Body(Body),
    /// A form read part-way.
    Form(Box<FormRest>),
}

/// What is left of a form read part-way.
pub(super) struct FormRest {
    pub(super) multipart: Multipart<'static>,
    /// The part being read, if any, which comes first.
    pub(super) field: Option<Field<'static>>,
    pub(super) meter: Arc<Meter>,
}

impl Rest {
    /// Reads and throws away the rest (at most [`DRAIN_MAX`] bytes, for at most
    /// [`DRAIN_TIME`], and not past the tab's stop). Dropping the body then lets hyper close
    /// the connection, which the answer said it would.
    pub(super) async fn drain(self, stopping: CancellationToken) {
        let read_all = async {
            match self {
                Rest::Body(body) => {
                    let mut read = 0u64;
                    let mut data = body.into_data_stream();
                    while let Some(Ok(chunk)) = data.next().await {
                        read += chunk.len() as u64;
                        if read > DRAIN_MAX {
                            return;
                        }
                    }
                }
                Rest::Form(form) => {
                    let FormRest {
                        mut multipart,
                        mut field,
                        meter,
                    } = *form;
                    meter.draining.store(true, Ordering::Relaxed);
                    let start = meter.pulled.load(Ordering::Relaxed);
                    let over =
                        || meter.pulled.load(Ordering::Relaxed).saturating_sub(start) > DRAIN_MAX;
                    loop {
                        // Each part is dropped before the next is asked for, as the parser
                        // requires.
                        if let Some(mut part) = field.take() {
                            while let Ok(Some(_)) = part.chunk().await {
                                if over() {
                                    return;
                                }
                            }
                        }
                        match multipart.next_field().await {
                            Ok(Some(next)) => field = Some(next),
                            _ => return,
                        }
                    }
                }
            }
        };
        tokio::select! {
            _ = timeout(DRAIN_TIME, read_all) => {}
            () = stopping.cancelled() => {}
        }
    }
}
