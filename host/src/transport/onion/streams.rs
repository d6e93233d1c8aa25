//! A tab's rendezvous requests and streams, turned into connections, and how they end.
//!
//! Each accepted rendezvous request is one visitor circuit: its streams are one visitor
//! ([`Visitor`]). When the tab stops, no rendezvous request is accepted any more (one being
//! completed is abandoned), and new streams on open circuits are refused; the circuits stay
//! open while a connection on them is open, and [`LINGER`] after the last one closed, so that
//! the end of a response still queued on a circuit reaches the visitor.
//!
//! The Arti types are behind two small traits so that the logic can be tested without Tor.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::{FutureExt as _, Stream, StreamExt as _};
use onionhost_sdk::Visitor;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tor_cell::relaycell::msg::{Connected, End, EndReason};
use tor_hsservice::{RendRequest, StreamRequest};
use tor_proto::stream::IncomingStreamRequest;

use super::gather::Gather;
use crate::transport::{Connection, Io};

/// The only port a tab answers on: plain HTTP, as onion services need no TLS.
pub(crate) const HTTP_PORT: u16 = 80;

/// How long a stopped tab's rendezvous circuits stay open after its last connection closed,
/// for the data still queued on them.
pub(crate) const LINGER: Duration = Duration::from_secs(5);

/// A visitor's request to complete a rendezvous (Arti's [`RendRequest`]).
pub(crate) trait Rendezvous: Send + 'static {
    /// The circuit's stream requests.
    type Streams: Stream<Item = Self::Stream> + Send + Unpin + 'static;
    /// One stream request.
    type Stream: PendingStream;
    /// Completes the rendezvous; `None` if it failed.
    fn accept(self) -> BoxFuture<'static, Option<Self::Streams>>;
}

/// A visitor's request to open a stream on its circuit (Arti's [`StreamRequest`]).
pub(crate) trait PendingStream: Send + 'static {
    /// Whether it asks for the tab's port.
    fn is_wanted(&self) -> bool;
    /// Accepts it; `None` if that failed.
    fn accept(self) -> BoxFuture<'static, Option<Box<dyn Io>>>;
    /// Ends it without a stream.
    fn refuse(self) -> BoxFuture<'static, ()>;
}

impl Rendezvous for RendRequest {
    type Streams = Pin<Box<dyn Stream<Item = StreamRequest> + Send>>;
    type Stream = StreamRequest;

    fn accept(self) -> BoxFuture<'static, Option<Self::Streams>> {
        async move {
            match RendRequest::accept(self).await {
                Ok(streams) => Some(Box::pin(streams) as Self::Streams),
                Err(err) => {
                    // Arti's errors may name relays: debug only.
                    tracing::debug!("completing a rendezvous failed: {err}");
                    None
                }
            }
        }
        .boxed()
    }
}

impl PendingStream for StreamRequest {
    fn is_wanted(&self) -> bool {
        matches!(self.request(), IncomingStreamRequest::Begin(begin) if begin.port() == HTTP_PORT)
    }

    fn accept(self) -> BoxFuture<'static, Option<Box<dyn Io>>> {
        async move {
            match StreamRequest::accept(self, Connected::new_empty()).await {
                // One read takes every cell already there (see `gather`), not one cell.
                Ok(stream) => Some(Box::new(Gather::new(stream)) as Box<dyn Io>),
                Err(err) => {
                    tracing::debug!("accepting a stream failed: {err}");
                    None
                }
            }
        }
        .boxed()
    }

    /// Ends the stream the way other onion service implementations do (`DONE`), so this says
    /// nothing about which software runs here.
    fn refuse(self) -> BoxFuture<'static, ()> {
        async move {
            if let Err(err) = self.reject(End::new_with_reason(EndReason::DONE)).await {
                tracing::debug!("rejecting a stream failed: {err}");
            }
        }
        .boxed()
    }
}

/// Hands the tab's visitors over as connections until `stop` (or until the tab stops taking
/// them), then lets the circuits end as the module says. `cut` ends everything at once.
/// Returns when every circuit of the tab is closed.
/// `service` is what publishes the tab (Arti's running onion service): it is dropped as soon as
/// the tab stops, so that the service's introduction points go away.
pub(crate) async fn serve<R: Rendezvous>(
    service: impl Send + 'static,
    requests: impl Stream<Item = R> + Send + 'static,
    sender: mpsc::Sender<Connection>,
    stop: CancellationToken,
    cut: CancellationToken,
) {
    let open = Open::default();
    let circuits = TaskTracker::new();
    // Cancelled when the circuits of a stopped tab may close.
    let done = CancellationToken::new();
    let mut requests = Box::pin(requests);
    loop {
        let request = tokio::select! {
            biased;
            () = stop.cancelled() => break,
            () = sender.closed() => break,
            request = requests.next() => match request {
                Some(request) => request,
                None => break,
            },
        };
        circuits.spawn(circuit(
            request,
            Visitor::unique(),
            sender.clone(),
            open.clone(),
            stop.clone(),
            done.clone(),
        ));
    }
    // Whatever ended the loop, the tab takes no one new.
    stop.cancel();
    drop(sender);
    // Rendezvous requests not yet taken are dropped unanswered, and no more come.
    drop(requests);
    drop(service);
    tokio::select! {
        () = open.idle_for(LINGER) => {}
        () = cut.cancelled() => {}
    }
    done.cancel();
    circuits.close();
    circuits.wait().await;
}

/// Serves one visitor circuit: completes its rendezvous, then hands over its streams, all as
/// `visitor`.
async fn circuit<R: Rendezvous>(
    request: R,
    visitor: Visitor,
    sender: mpsc::Sender<Connection>,
    open: Open,
    stop: CancellationToken,
    done: CancellationToken,
) {
    // A tab that stops while a rendezvous is being completed abandons it.
    let streams = tokio::select! {
        () = stop.cancelled() => return,
        streams = request.accept() => streams,
    };
    let Some(mut streams) = streams else { return };
    let accepting = TaskTracker::new();
    loop {
        let request = tokio::select! {
            biased;
            () = stop.cancelled() => break,
            request = streams.next() => match request {
                Some(request) => request,
                // The visitor closed the circuit.
                None => return,
            },
        };
        // Accepting waits for the visitor's circuit; one slow stream must not hold up others.
        accepting.spawn(accept(request, visitor, sender.clone(), open.clone()));
    }
    drop(sender);
    // The stream requests hold the circuit open, queue and all: a circuit closes as soon as
    // nothing refers to it. New streams are refused until the tab is done.
    let refuse = async {
        while let Some(request) = streams.next().await {
            request.refuse().await;
        }
    };
    tokio::select! {
        () = refuse => {}
        () = done.cancelled() => {}
    }
}

/// Accepts a request for the tab's port as a connection from `visitor`; ends any other.
async fn accept<S: PendingStream>(
    request: S,
    visitor: Visitor,
    sender: mpsc::Sender<Connection>,
    open: Open,
) {
    if !request.is_wanted() {
        request.refuse().await;
        return;
    }
    if let Some(stream) = request.accept().await {
        let stream = Tracked::new(stream, open);
        // The tab is gone if this fails; the stream is dropped and closed.
        let _ = sender.send(Connection::new(stream, visitor)).await;
    }
}

/// A tab's open connections, and when the last one closed (initially: when it started).
#[derive(Clone)]
struct Open(Arc<watch::Sender<(usize, Instant)>>);

impl Default for Open {
    fn default() -> Self {
        Self(Arc::new(watch::Sender::new((0, Instant::now()))))
    }
}

impl Open {
    /// Returns once no connection has been open for `linger`.
    async fn idle_for(&self, linger: Duration) {
        let mut changes = self.0.subscribe();
        loop {
            let (count, last_closed) = *changes.borrow_and_update();
            if count == 0 {
                let since = last_closed.elapsed();
                if since >= linger {
                    return;
                }
                tokio::select! {
                    () = tokio::time::sleep(linger - since) => {}
                    _ = changes.changed() => {}
                }
            } else if changes.changed().await.is_err() {
                return;
            }
        }
    }
}

/// A visitor's stream, counted among the tab's open connections until it is dropped.
struct Tracked {
    stream: Box<dyn Io>,
    open: Open,
    cells: Cells,
}

impl Tracked {
    fn new(stream: Box<dyn Io>, open: Open) -> Self {
        open.0.send_modify(|(count, _)| *count += 1);
        Self {
            stream,
            open,
            cells: Cells::default(),
        }
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.open.0.send_modify(|(count, last_closed)| {
            *count -= 1;
            *last_closed = Instant::now();
        });
        let c = &self.cells;
        if c.bytes > 0 {
            // Counts only: what went out, never what it was or to whom.
            tracing::debug!(
                "stream closed: {} bytes in {} writes and {} flushes, {} full RELAY_DATA cells, \
                 {} partly filled",
                c.bytes,
                c.writes,
                c.flushes,
                c.full,
                c.partial + u64::from(c.pending > 0)
            );
        }
    }
}

/// Room for data in one RELAY_DATA cell (tor-cell's `Data::MAXLEN`, the relay cell format
/// Arti 0.47 speaks).
const CELL_DATA: usize = 498;

/// How a stream's writes became RELAY_DATA cells. Arti's `DataStream` packs written bytes into
/// a one-cell buffer, sends it as a cell once full, and sends what it holds, however little,
/// at each flush: this follows the same rule on what it accepted.
#[derive(Default)]
struct Cells {
    bytes: u64,
    writes: u64,
    flushes: u64,
    full: u64,
    partial: u64,
    pending: usize,
}

impl Cells {
    fn wrote(&mut self, n: usize) {
        self.writes += 1;
        self.bytes += n as u64;
        self.pending += n;
        while self.pending >= CELL_DATA {
            self.pending -= CELL_DATA;
            self.full += 1;
        }
    }

    fn flushed(&mut self) {
        self.flushes += 1;
        if self.pending > 0 {
            self.pending = 0;
            self.partial += 1;
        }
    }
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.stream).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = poll {
            self.cells.wrote(n);
        }
        poll
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let poll = Pin::new(&mut self.stream).poll_flush(cx);
        if let Poll::Ready(Ok(())) = poll {
            self.cells.flushed();
        }
        poll
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let poll = Pin::new(&mut self.stream).poll_shutdown(cx);
        if let Poll::Ready(Ok(())) = poll {
            self.cells.flushed();
        }
        poll
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::atomic::{AtomicUsize, Ordering};

    use futures::channel::mpsc as fmpsc;

    use super::*;

    /// How many rendezvous and streams the fakes accepted and refused.
    #[derive(Default)]
    struct Counts {
        rendezvous: AtomicUsize,
        refused: AtomicUsize,
    }

    /// A fake rendezvous whose streams the test sends.
    struct FakeRendezvous {
        streams: fmpsc::UnboundedReceiver<FakeStream>,
        counts: Arc<Counts>,
    }

    struct FakeStream(Arc<Counts>);

    impl Rendezvous for FakeRendezvous {
        type Streams = fmpsc::UnboundedReceiver<FakeStream>;
        type Stream = FakeStream;
        fn accept(self) -> BoxFuture<'static, Option<Self::Streams>> {
            self.counts.rendezvous.fetch_add(1, Ordering::SeqCst);
            futures::future::ready(Some(self.streams)).boxed()
        }
    }

    impl PendingStream for FakeStream {
        fn is_wanted(&self) -> bool {
            true
        }
        fn accept(self) -> BoxFuture<'static, Option<Box<dyn Io>>> {
            let (ours, _theirs) = tokio::io::duplex(64);
            futures::future::ready(Some(Box::new(ours) as Box<dyn Io>)).boxed()
        }
        fn refuse(self) -> BoxFuture<'static, ()> {
            self.0.refused.fetch_add(1, Ordering::SeqCst);
            futures::future::ready(()).boxed()
        }
    }

    struct Fixture {
        rendezvous: fmpsc::UnboundedSender<FakeRendezvous>,
        connections: mpsc::Receiver<Connection>,
        counts: Arc<Counts>,
        stop: CancellationToken,
        served: tokio::task::JoinHandle<()>,
    }

    fn start() -> Fixture {
        let (rendezvous, requests) = fmpsc::unbounded();
        let (sender, connections) = mpsc::channel(8);
        let stop = CancellationToken::new();
        let served = tokio::spawn(serve(
            (),
            requests,
            sender,
            stop.clone(),
            CancellationToken::new(),
        ));
        Fixture {
            rendezvous,
            connections,
            counts: Arc::default(),
            stop,
            served,
        }
    }

    impl Fixture {
        /// A new visitor circuit; send its streams on the returned sender.
        fn circuit(&self) -> fmpsc::UnboundedSender<FakeStream> {
            let (streams, receiver) = fmpsc::unbounded();
            // A stopped tab no longer takes rendezvous requests at all: sending may fail.
            let _ = self.rendezvous.unbounded_send(FakeRendezvous {
                streams: receiver,
                counts: Arc::clone(&self.counts),
            });
            streams
        }

        fn stream(&self) -> FakeStream {
            FakeStream(Arc::clone(&self.counts))
        }
    }

    #[tokio::test]
    async fn the_streams_of_one_circuit_are_one_visitor() {
        let mut fx = start();
        let first = fx.circuit();
        let second = fx.circuit();
        first.unbounded_send(fx.stream()).unwrap();
        let a = fx.connections.recv().await.unwrap();
        first.unbounded_send(fx.stream()).unwrap();
        let b = fx.connections.recv().await.unwrap();
        second.unbounded_send(fx.stream()).unwrap();
        let c = fx.connections.recv().await.unwrap();
        assert_eq!(a.visitor(), b.visitor());
        assert_ne!(a.visitor(), c.visitor());
    }

    /// Regression: for about 5 s after a tab stopped, a new visitor still completed a
    /// rendezvous (and then got an empty reply), which told anyone with the address that the
    /// service was still up. A stopped tab accepts no rendezvous request.
    #[tokio::test]
    async fn a_stopped_tab_completes_no_rendezvous_and_refuses_new_streams() {
        let mut fx = start();
        let open = fx.circuit();
        open.unbounded_send(fx.stream()).unwrap();
        let connection = fx.connections.recv().await.unwrap();
        assert_eq!(fx.counts.rendezvous.load(Ordering::SeqCst), 1);
        fx.stop.cancel();
        // The serving loop sees the stop before anything else it is given.
        tokio::task::yield_now().await;
        let _late = fx.circuit();
        // A new stream on the circuit that is still open is refused, not accepted.
        open.unbounded_send(fx.stream()).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while fx.counts.refused.load(Ordering::SeqCst) == 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "the new stream was never refused"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(
            fx.counts.rendezvous.load(Ordering::SeqCst),
            1,
            "a rendezvous was completed after the stop"
        );
        assert!(fx.connections.recv().await.is_none(), "no new connection");
        // The circuit stays open while its connection is, and the serving ends after it.
        assert!(!fx.served.is_finished());
        drop(connection);
        // Then it lingers, in paused time: the wait is over at once.
        tokio::time::pause();
        let lingered = tokio::time::Instant::now();
        tokio::time::timeout(LINGER * 4, fx.served)
            .await
            .unwrap()
            .unwrap();
        assert!(lingered.elapsed() >= LINGER);
    }
}
