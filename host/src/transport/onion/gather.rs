//! An onion stream whose reads take every cell's data already there, not one cell's.
//!
//! Arti's `DataStream` hands out at most one RELAY_DATA cell (498 bytes) per read, however
//! large the buffer and however many cells are queued. Served as it is, an upload of 100 MiB
//! reaches hyper as ~210,000 reads, each one a body frame sent from the connection's task to
//! the handler's, through the multipart parser and into the mode: that per-frame work, not the
//! circuit, limited uploads through Tor. [`Gather`] keeps reading while the stream has data
//! ready and the caller's buffer has room, so one read carries what arrived together (hyper
//! reads at most its read buffer, 32 KiB here). It never waits for more: the first read that
//! would wait ends the gathering, and what was gathered is returned.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// What a read found after it had gathered data, to be returned by the next read.
#[derive(Debug)]
enum Deferred {
    /// The stream ended; every later read says so too.
    End,
    /// The stream failed.
    Error(io::Error),
}

/// A stream whose reads gather all the data that is ready; see the module. Writes go straight
/// through.
#[derive(Debug)]
pub(crate) struct Gather<T> {
    inner: T,
    deferred: Option<Deferred>,
}

impl<T> Gather<T> {
    pub(crate) fn new(inner: T) -> Self {
        Self {
            inner,
            deferred: None,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Gather<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.deferred.take() {
            Some(Deferred::End) => {
                self.deferred = Some(Deferred::End);
                return Poll::Ready(Ok(()));
            }
            Some(Deferred::Error(err)) => return Poll::Ready(Err(err)),
            None => {}
        }
        let start = buf.filled().len();
        // Bounded: every round but the last adds at least one byte to `buf`.
        while buf.remaining() > 0 {
            let before = buf.filled().len();
            let gathered = before > start;
            match Pin::new(&mut self.inner).poll_read(cx, buf) {
                Poll::Ready(Ok(())) if buf.filled().len() > before => {}
                Poll::Ready(Ok(())) => {
                    // The end: Arti's stream answers reads after its end with an error, so
                    // the end is remembered here.
                    self.deferred = Some(Deferred::End);
                    return Poll::Ready(Ok(()));
                }
                Poll::Ready(Err(err)) if gathered => {
                    self.deferred = Some(Deferred::Error(err));
                    return Poll::Ready(Ok(()));
                }
                Poll::Ready(Err(err)) => return Poll::Ready(Err(err)),
                // The stream will wake the task when more comes; what is here goes now.
                Poll::Pending if gathered => return Poll::Ready(Ok(())),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Gather<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use futures::task::noop_waker;

    use super::*;

    /// A stream like Arti's: each read gives at most one queued "cell"; `None` in the queue
    /// is a read that would wait; after the cells, the end, then errors for later reads.
    struct Cells {
        queue: VecDeque<Option<Vec<u8>>>,
        ended: bool,
        fail: bool,
    }

    impl Cells {
        fn new(queue: impl IntoIterator<Item = Option<&'static [u8]>>) -> Self {
            Self {
                queue: queue.into_iter().map(|c| c.map(<[u8]>::to_vec)).collect(),
                ended: false,
                fail: false,
            }
        }
    }

    impl AsyncRead for Cells {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            match self.queue.pop_front() {
                Some(Some(cell)) => {
                    let n = cell.len().min(buf.remaining());
                    buf.put_slice(&cell[..n]);
                    if n < cell.len() {
                        self.queue.push_front(Some(cell[n..].to_vec()));
                    }
                    Poll::Ready(Ok(()))
                }
                Some(None) => Poll::Pending,
                None if self.fail => Poll::Ready(Err(io::Error::other("circuit closed"))),
                None if self.ended => {
                    Poll::Ready(Err(io::Error::from(io::ErrorKind::NotConnected)))
                }
                None => {
                    self.ended = true;
                    Poll::Ready(Ok(()))
                }
            }
        }
    }

    /// One read into a buffer of `size`: what it gave, or `None` if it would wait.
    fn read(stream: &mut Gather<Cells>, size: usize) -> Option<io::Result<Vec<u8>>> {
        let waker = noop_waker();
        let mut cx = Context::from_waker(&waker);
        let mut space = vec![0; size];
        let mut buf = ReadBuf::new(&mut space);
        match Pin::new(stream).poll_read(&mut cx, &mut buf) {
            Poll::Ready(Ok(())) => Some(Ok(buf.filled().to_vec())),
            Poll::Ready(Err(err)) => Some(Err(err)),
            Poll::Pending => None,
        }
    }

    fn data(result: Option<io::Result<Vec<u8>>>) -> Vec<u8> {
        result.expect("ready").expect("no error")
    }

    #[test]
    fn one_read_takes_every_cell_that_is_ready_and_stops_before_waiting() {
        let mut stream = Gather::new(Cells::new([
            Some(&b"abc"[..]),
            Some(b"def"),
            Some(b"g"),
            None,
            Some(b"hi"),
        ]));
        assert_eq!(data(read(&mut stream, 100)), b"abcdefg");
        assert_eq!(data(read(&mut stream, 100)), b"hi");
    }

    #[test]
    fn a_read_never_overfills_the_buffer() {
        let mut stream = Gather::new(Cells::new([Some(&b"abcd"[..]), Some(b"efgh")]));
        assert_eq!(data(read(&mut stream, 6)), b"abcdef");
        assert_eq!(data(read(&mut stream, 6)), b"gh");
    }

    #[test]
    fn a_read_with_nothing_ready_waits() {
        let mut stream = Gather::new(Cells::new([None, Some(&b"a"[..])]));
        assert!(read(&mut stream, 10).is_none());
        assert_eq!(data(read(&mut stream, 10)), b"a");
    }

    /// Arti's stream fails reads after its end; gathering must not turn a clean end into
    /// that error.
    #[test]
    fn the_end_found_while_gathering_is_an_end_for_every_later_read() {
        let mut stream = Gather::new(Cells::new([Some(&b"last"[..])]));
        assert_eq!(data(read(&mut stream, 10)), b"last");
        assert_eq!(data(read(&mut stream, 10)), b"");
        assert_eq!(data(read(&mut stream, 10)), b"");
    }

    #[test]
    fn an_error_found_while_gathering_comes_after_the_data() {
        let mut cells = Cells::new([Some(&b"part"[..])]);
        cells.fail = true;
        let mut stream = Gather::new(cells);
        assert_eq!(data(read(&mut stream, 10)), b"part");
        let err = read(&mut stream, 10)
            .expect("ready")
            .expect_err("the error");
        assert_eq!(err.to_string(), "circuit closed");
    }
}
