//! Host work a guest call waits for, polled beside the call rather than on
//! the guest's fiber stack.
//!
//! wasmtime polls an async import's future on the store's fiber stack and
//! keeps that stack for the store's next call, so whatever the future
//! touched there stays resident for as long as the instance lives. hyper and
//! reqwest poll deep: an HTTP request made on the fiber left ~32 KiB resident
//! in every instance that ever checked. Spawning the request as a task of its
//! own avoids that, but a second task per request makes tokio hand work back
//! and forth between worker threads (three context switches per check
//! instead of one, about 2.5× the CPU of the check; measured with
//! sandport-bench).
//!
//! So an import hands its work to [`Offstack::run`] and awaits the answer,
//! and [`Offstack::drive`], wrapped around every guest call, polls that work
//! on the caller's own stack, in the caller's task.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use futures::FutureExt;

type Work = Pin<Box<dyn Future<Output = ()> + Send>>;

/// One store's slot for host work. Cheap to clone; clones share the slot.
#[derive(Clone, Default)]
pub struct Offstack(Arc<Mutex<Slot>>);

#[derive(Default)]
struct Slot {
    work: Option<Work>,
    /// Set until the work is first polled: its wakers are not registered yet.
    fresh: bool,
}

impl Offstack {
    fn slot(&self) -> std::sync::MutexGuard<'_, Slot> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `work` beside the current guest call and resolves to its output;
    /// `None` if the work was dropped first (the call is being dropped).
    ///
    /// The call must await the returned future right away: while the work
    /// runs, [`Offstack::drive`] does not poll the call at all. One piece
    /// of work runs at a time (a store makes one call at a time, and the
    /// call waits for its import).
    pub fn run<T: Send + 'static>(
        &self,
        work: impl Future<Output = T> + Send + 'static,
    ) -> impl Future<Output = Option<T>> + Send + 'static {
        let answer: Arc<Mutex<Option<T>>> = Arc::default();
        let filled = answer.clone();
        // A combinator rather than an `async` block: the block would hold
        // `work` twice (as captured, and as awaited), doubling the box a
        // request allocates and copies (3.2 instead of 1.6 KB for an HTTP
        // exchange).
        let work = work.map(move |value| {
            *filled.lock().unwrap_or_else(PoisonError::into_inner) = Some(value);
        });
        let mut slot = self.slot();
        slot.work = Some(Box::pin(work));
        slot.fresh = true;
        // No waker: `drive` polls the call right after the work completes.
        // A wake from the work's side would be a wake of the running task,
        // which tokio answers by queueing the task behind others and waking
        // another worker thread to steal it: the very ping-pong this module
        // exists to avoid.
        std::future::poll_fn(move |_| {
            if let Some(value) = answer.lock().unwrap_or_else(PoisonError::into_inner).take() {
                return Poll::Ready(Some(value));
            }
            if Arc::strong_count(&answer) == 1 {
                // The work was dropped unfinished.
                return Poll::Ready(None);
            }
            Poll::Pending
        })
    }

    /// Polls `call`, and the work its imports hand to [`Offstack::run`], to
    /// completion. Dropping the returned future drops both.
    pub async fn drive<F: Future>(&self, call: F) -> F::Output {
        struct ClearOnDrop<'a>(&'a Offstack);
        impl Drop for ClearOnDrop<'_> {
            fn drop(&mut self) {
                let work = self.0.slot().work.take();
                drop(work);
            }
        }
        let _clear = ClearOnDrop(self);
        let mut call = std::pin::pin!(call);
        std::future::poll_fn(|cx| self.poll(cx, call.as_mut())).await
    }

    fn poll<F: Future>(&self, cx: &mut Context<'_>, mut call: Pin<&mut F>) -> Poll<F::Output> {
        loop {
            if self.poll_work(cx).is_pending() {
                // The call is waiting for this work; the work's wakers
                // bring this task back.
                return Poll::Pending;
            }
            if let Poll::Ready(output) = call.as_mut().poll(cx) {
                return Poll::Ready(output);
            }
            // Work handed over during that poll has not been polled yet.
            if !self.slot().fresh {
                return Poll::Pending;
            }
        }
    }

    /// Polls the work, if any: pending while it runs.
    fn poll_work(&self, cx: &mut Context<'_>) -> Poll<()> {
        // Polled outside the lock: the work may take as long as it likes.
        let taken = {
            let mut slot = self.slot();
            slot.fresh = false;
            slot.work.take()
        };
        let Some(mut work) = taken else {
            return Poll::Ready(());
        };
        let poll = work.as_mut().poll(cx);
        if poll.is_pending() {
            // The call cannot have handed over more work meanwhile: it was
            // not polled.
            self.slot().work.get_or_insert(work);
        }
        poll
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn work_handed_over_by_the_call_runs_and_answers_it() {
        let offstack = Offstack::default();
        let inner = offstack.clone();
        let answer = offstack
            .drive(async move {
                let first = inner
                    .run(async {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                        20
                    })
                    .await;
                let second = inner.run(async { 22 }).await;
                first.zip(second).map(|(a, b)| a + b)
            })
            .await;
        assert_eq!(answer, Some(42));
    }

    #[tokio::test]
    async fn dropping_the_call_drops_its_work() {
        let offstack = Offstack::default();
        let inner = offstack.clone();
        let (tx, mut dropped) = tokio::sync::mpsc::channel::<()>(1);
        let call = offstack.drive(async move {
            inner
                .run(async move {
                    let _held_until_dropped = tx;
                    std::future::pending::<()>().await;
                })
                .await
        });
        let timed_out = tokio::time::timeout(Duration::from_millis(20), call).await;
        assert!(timed_out.is_err(), "the work never finishes");
        // The sender lived in the work: its channel closes once it is dropped.
        assert_eq!(dropped.recv().await, None);
        assert!(offstack.slot().work.is_none());
    }
}
