//! The bounded queue between the check path and the writer thread, and
//! the bookkeeping `flush`, `stats` and the test hooks wait on.
//!
//! One mutex guards it; the check path holds it only to push one point
//! (and drop the oldest when full), the writer only to move a batch out or
//! back. Every point gets a sequence number so `flush` can wait for exactly
//! the points recorded before it.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

use crate::types::Point;

/// Why the last write failed, kept to answer `flush` and `stats`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure {
    pub full: bool,
    pub message: String,
}

#[derive(Debug, Default)]
pub(crate) struct State {
    items: VecDeque<(u64, Point)>,
    next_seq: u64,
    /// Every point numbered below this is committed or was dropped.
    done_seq: u64,
    in_flight: usize,
    pub dropped: u64,
    pub written: u64,
    pub write_errors: u64,
    pub last_error: Option<Failure>,
    /// Write attempts begun so far, and the number of the last one that
    /// failed: a `flush` reports only a failure of an attempt begun after
    /// it was called, not one already under way with an older state.
    attempts: u64,
    failed_attempt: u64,
    flush_requests: u64,
    stop: bool,
    pub writer_gone: bool,
    max_pages: Option<Option<u32>>,
    maintain: Option<(u64, i64)>,
    maintain_requests: u64,
    maintain_done: u64,
    maintain_error: Option<String>,
}

/// What the writer is asked to do besides writing the batch it took.
#[derive(Debug, Default)]
pub(crate) struct Orders {
    pub stop: bool,
    pub max_pages: Option<Option<u32>>,
    /// Run all rollup and retention work now, as of this time (ms).
    pub maintain: Option<(u64, i64)>,
}

pub(crate) struct Queue {
    state: Mutex<State>,
    writer_wake: Condvar,
    done: Condvar,
    cap: usize,
    batch: usize,
}

impl Queue {
    pub fn new(cap: usize, batch: usize) -> Queue {
        let cap = cap.max(1);
        Queue {
            state: Mutex::new(State {
                // Enough for a few seconds at full rate up front; it grows to
                // the bound only when the writer falls behind.
                items: VecDeque::with_capacity(cap.min(16_384)),
                ..State::default()
            }),
            writer_wake: Condvar::new(),
            done: Condvar::new(),
            cap,
            batch: batch.max(1),
        }
    }

    /// A poisoned lock only means another thread panicked while holding
    /// it; the counters stay usable, so carry on rather than spread the
    /// panic to the check path.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The check path: push, dropping the oldest queued point when full.
    pub fn push(&self, point: Point) {
        let mut s = self.lock();
        if s.stop {
            s.dropped += 1;
            drop(s);
            return;
        }
        let evicted = if s.items.len() >= self.cap {
            s.dropped += 1;
            s.items.pop_front()
        } else {
            None
        };
        let seq = s.next_seq;
        s.next_seq += 1;
        s.items.push_back((seq, point));
        let wake = s.items.len() == self.batch;
        drop(s);
        // The evicted point's strings are freed outside the lock.
        drop(evicted);
        if wake {
            self.writer_wake.notify_one();
        }
    }

    /// The writer: wait until a batch is due (full, `linger` passed, a
    /// flush, a stop or a test order), then move up to one batch into
    /// `batch`.
    pub fn take(&self, batch: &mut Vec<(u64, Point)>, linger: Duration, seen: &mut u64) -> Orders {
        let mut s = self.lock();
        let due = |s: &State| {
            s.items.len() >= self.batch
                || s.flush_requests != *seen
                || s.stop
                || s.max_pages.is_some()
                || s.maintain.is_some()
        };
        if !due(&s) {
            s = self
                .writer_wake
                .wait_timeout_while(s, linger, |s| !due(s))
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        let n = s.items.len().min(self.batch);
        batch.extend(s.items.drain(..n));
        s.in_flight = batch.len();
        if !batch.is_empty() {
            s.attempts += 1;
        }
        let orders = Orders {
            stop: s.stop,
            max_pages: s.max_pages.take(),
            maintain: s.maintain.take(),
        };
        *seen = s.flush_requests;
        orders
    }

    /// Sleeps up to `pause` unless a flush or stop arrives.
    pub fn backoff(&self, pause: Duration, seen: u64) {
        let s = self.lock();
        let _unused = self
            .writer_wake
            .wait_timeout_while(s, pause, |s| s.flush_requests == seen && !s.stop)
            .unwrap_or_else(|p| p.into_inner());
    }

    /// The batch is in the file; `duplicates` of its points were not
    /// stored because their connector already had a point at that time.
    pub fn committed(&self, n: usize, duplicates: u64) {
        let mut s = self.lock();
        s.in_flight = 0;
        s.written += (n as u64).saturating_sub(duplicates);
        s.dropped += duplicates;
        s.done_seq = s.items.front().map_or(s.next_seq, |(seq, _)| *seq);
        s.last_error = None;
        drop(s);
        self.done.notify_all();
    }

    /// The batch could not be written: put it back in front of newer
    /// points, dropping its oldest if that would pass the bound.
    pub fn failed(&self, batch: &mut Vec<(u64, Point)>, failure: Failure) {
        let mut s = self.lock();
        s.in_flight = 0;
        s.write_errors += 1;
        s.failed_attempt = s.attempts;
        s.last_error = Some(failure);
        let room = self.cap.saturating_sub(s.items.len());
        let excess = batch.len().saturating_sub(room);
        s.dropped += excess as u64;
        for item in batch.drain(excess..).rev() {
            s.items.push_front(item);
        }
        drop(s);
        batch.clear();
        self.done.notify_all();
    }

    /// `flush`: wait until every point numbered below the current next one
    /// is done. `Err` carries the failure of a write attempt begun after
    /// the call, or `None` when the writer stopped with points unwritten.
    pub fn flush(&self) -> Result<(), Option<Failure>> {
        let mut s = self.lock();
        let target = s.next_seq;
        let begun = s.attempts;
        if s.done_seq >= target {
            return Ok(());
        }
        s.flush_requests += 1;
        self.writer_wake.notify_one();
        loop {
            if s.done_seq >= target {
                return Ok(());
            }
            if s.failed_attempt > begun {
                return Err(s.last_error.clone());
            }
            if s.writer_gone {
                return Err(None);
            }
            s = self.done.wait(s).unwrap_or_else(|p| p.into_inner());
        }
    }

    pub fn stop(&self) {
        self.lock().stop = true;
        self.writer_wake.notify_one();
    }

    pub fn writer_gone(&self) {
        let mut s = self.lock();
        s.writer_gone = true;
        s.in_flight = 0;
        drop(s);
        self.done.notify_all();
    }

    pub fn queued(&self) -> u64 {
        let s = self.lock();
        (s.items.len() + s.in_flight) as u64
    }

    pub fn is_empty(&self) -> bool {
        self.lock().items.is_empty()
    }

    pub fn set_max_pages(&self, pages: Option<u32>) {
        self.lock().max_pages = Some(pages);
        self.writer_wake.notify_one();
    }

    /// Asks the writer to run all rollup and retention work as of `now_ms`
    /// and waits for it.
    pub fn maintain(&self, now_ms: i64) -> Result<(), Option<String>> {
        let mut s = self.lock();
        s.maintain_requests += 1;
        let ticket = s.maintain_requests;
        s.maintain = Some((ticket, now_ms));
        self.writer_wake.notify_one();
        loop {
            if s.maintain_done >= ticket {
                return match s.maintain_error.clone() {
                    Some(e) => Err(Some(e)),
                    None => Ok(()),
                };
            }
            if s.writer_gone {
                return Err(None);
            }
            s = self.done.wait(s).unwrap_or_else(|p| p.into_inner());
        }
    }

    pub fn maintained(&self, ticket: u64, error: Option<String>) {
        let mut s = self.lock();
        s.maintain_done = ticket;
        s.maintain_error = error;
        drop(s);
        self.done.notify_all();
    }
}
