//! Futures polled only when they can have made progress: after they woke their task, or
//! after they gave something (more may be buffered behind it).
//!
//! A busy room wakes every connection for each event, and the connection's loop then polls
//! everything else it waits on before it waits again. For the WebSocket that poll costs more
//! than it looks: the library registers the waker with both of its proxies and clears its
//! 4 KiB read buffer before it asks the socket, which has nothing; the tokens take their lock,
//! the timers look at the clock (perf of 10,000 members while paced: `set_waker` 3.6%,
//! `memset` 3.5%, `CancellationToken::is_cancelled` 4.3%, `Sleep::poll` 1.0% of the server's
//! time). A [`Gate`] hands what it guards a waker of its own, which notes the wake before it
//! wakes the task, and answers `Pending` itself while nothing behind it has woken.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Waker};

use futures::task::{ArcWake, AtomicWaker};

/// What the guarded futures' waker shares with the gate.
#[derive(Debug)]
struct Signal {
    /// Whether to poll what the gate guards: it woke, or gave something, or was never polled.
    ready: AtomicBool,
    /// The task that waits on the gate.
    task: AtomicWaker,
}

impl ArcWake for Signal {
    fn wake_by_ref(signal: &Arc<Self>) {
        signal.ready.store(true, Ordering::Release);
        signal.task.wake();
    }
}

/// Polls what it guards only when that can have made progress; see the module.
pub(super) struct Gate {
    signal: Arc<Signal>,
    /// Handed to what the gate guards instead of the task's: it sets `ready`, then wakes the
    /// task.
    waker: Waker,
}

impl Gate {
    pub(super) fn new() -> Self {
        let signal = Arc::new(Signal {
            ready: AtomicBool::new(true),
            task: AtomicWaker::new(),
        });
        let waker = futures::task::waker(Arc::clone(&signal));
        Self { signal, waker }
    }

    /// `poll` with the gate's waker, or `Pending` without calling it when nothing it polls
    /// has woken since it last answered `Pending`. Whatever `poll` polls must be polled
    /// through this gate only.
    pub(super) fn poll<T>(
        &self,
        cx: &mut Context<'_>,
        poll: impl FnOnce(&mut Context<'_>) -> Poll<T>,
    ) -> Poll<T> {
        self.signal.task.register(cx.waker());
        // Cleared before the poll: a wake while it runs sets it again, for the next turn.
        if !self.signal.ready.swap(false, Ordering::AcqRel) {
            return Poll::Pending;
        }
        let result = poll(&mut Context::from_waker(&self.waker));
        if result.is_ready() {
            // Another item may already be buffered, with no wake to come for it.
            self.open();
        }
        result
    }

    /// Lets the next `poll` through: for a future that is new and has not been polled yet.
    pub(super) fn open(&self) {
        self.signal.ready.store(true, Ordering::Release);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::VecDeque;
    use std::future::poll_fn;
    use std::pin::Pin;
    use std::sync::Mutex;

    use futures::{Stream, StreamExt as _};

    use super::*;

    /// A stream that counts its polls, gives what was pushed, and wakes on a push.
    #[derive(Default)]
    struct Probe {
        shared: Arc<Mutex<ProbeState>>,
    }

    #[derive(Default)]
    struct ProbeState {
        items: VecDeque<u32>,
        polls: usize,
        waker: Option<Waker>,
    }

    impl Probe {
        fn push(&self, item: u32) {
            let mut state = self.shared.lock().unwrap();
            state.items.push_back(item);
            if let Some(waker) = state.waker.take() {
                waker.wake();
            }
        }

        fn polls(&self) -> usize {
            self.shared.lock().unwrap().polls
        }
    }

    impl Stream for Probe {
        type Item = u32;

        fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<u32>> {
            let mut state = self.shared.lock().unwrap();
            state.polls += 1;
            match state.items.pop_front() {
                Some(item) => Poll::Ready(Some(item)),
                None => {
                    state.waker = Some(cx.waker().clone());
                    Poll::Pending
                }
            }
        }
    }

    fn poll_once(gate: &Gate, probe: &mut Probe) -> Poll<Option<u32>> {
        let waker = futures::task::noop_waker();
        gate.poll(&mut Context::from_waker(&waker), |cx| {
            probe.poll_next_unpin(cx)
        })
    }

    #[test]
    fn a_stream_that_has_not_woken_is_not_polled_again() {
        let gate = Gate::new();
        let mut probe = Probe::default();
        assert_eq!(poll_once(&gate, &mut probe), Poll::Pending);
        for _ in 0..10 {
            assert_eq!(poll_once(&gate, &mut probe), Poll::Pending);
        }
        assert_eq!(probe.polls(), 1);
    }

    #[test]
    fn a_wake_lets_the_next_poll_through_and_buffered_items_all_come() {
        let gate = Gate::new();
        let mut probe = Probe::default();
        assert_eq!(poll_once(&gate, &mut probe), Poll::Pending);
        probe.push(1);
        probe.push(2);
        // The second item came with no wake of its own: it is still given.
        assert_eq!(poll_once(&gate, &mut probe), Poll::Ready(Some(1)));
        assert_eq!(poll_once(&gate, &mut probe), Poll::Ready(Some(2)));
        assert_eq!(poll_once(&gate, &mut probe), Poll::Pending);
        assert_eq!(poll_once(&gate, &mut probe), Poll::Pending);
        assert_eq!(probe.polls(), 4);
    }

    #[test]
    fn an_opened_gate_polls_once_more() {
        let gate = Gate::new();
        let mut probe = Probe::default();
        assert_eq!(poll_once(&gate, &mut probe), Poll::Pending);
        gate.open();
        assert_eq!(poll_once(&gate, &mut probe), Poll::Pending);
        assert_eq!(poll_once(&gate, &mut probe), Poll::Pending);
        assert_eq!(probe.polls(), 2);
    }

    #[tokio::test]
    async fn the_task_is_woken_when_the_stream_is() {
        let gate = Gate::new();
        let mut probe = Probe::default();
        let pusher = Probe {
            shared: Arc::clone(&probe.shared),
        };
        let task = tokio::spawn(async move {
            let first = poll_fn(|cx| gate.poll(cx, |cx| probe.poll_next_unpin(cx))).await;
            let second = poll_fn(|cx| gate.poll(cx, |cx| probe.poll_next_unpin(cx))).await;
            (first, second)
        });
        tokio::task::yield_now().await;
        pusher.push(7);
        tokio::task::yield_now().await;
        pusher.push(8);
        let got = tokio::time::timeout(std::time::Duration::from_secs(10), task)
            .await
            .expect("the gated task was never woken")
            .unwrap();
        assert_eq!(got, (Some(7), Some(8)));
    }
}
