//! Check history: every health-check result kept in an embedded SQLite file
//! in the data directory, with hourly rollups, uptime, daily bars and
//! incidents.
//!
//! The check path hands each result to [`History::record`], which only
//! queues it (bounded; the oldest are dropped when full). One writer thread
//! (`history-writer`) commits the queue in batches (every 250 ms or 5,000
//! points), keeps an in-memory summary for [`History::uptime_all`] and
//! [`History::daily_all`], rolls up completed hours and deletes what has
//! expired, in small steps between batches. Queries run on their own
//! connections and never wait for the writer.
//!
//! Layout:
//! - `types`: the values that cross the boundary ([`Point`], [`Rollup`], ...).
//! - `error`: [`HistoryError`].
//! - `schema`: opening the file, refusing a damaged or foreign one, the
//!   schema (`schema.sql`) and connection settings.
//! - `queue`: the bounded queue between `record` and the writer, and what
//!   `flush` waits on.
//! - `writer`: the writer thread and one batch's transaction.
//! - `maintain`: rollups of completed hours and retention, step by step.
//! - `summary`: the in-memory uptime and daily tallies.
//! - `latency`: percentiles and the per-hour histogram.
//! - `read`: the queries.
//!
//! # Durability
//!
//! WAL with `synchronous = NORMAL`: a process crash (even `kill -9`) loses
//! nothing that was committed, that is, nothing recorded before a `flush`
//! returned, and otherwise only the points still queued (up to ~250 ms of
//! them). A power loss or OS crash can also lose the commits since the log
//! was last synced, which happens at each checkpoint: every 30 s, or
//! sooner when the log reaches 1,000 pages (~4 MB). So at most about the
//! last 30 s of checks; the file itself stays consistent.
//!
//! # Schema
//!
//! One file, schema version 1 (`PRAGMA user_version`), application id
//! `SPHS`. Times are milliseconds since the Unix epoch, latencies
//! microseconds.
//!
//! | table | key | holds |
//! |---|---|---|
//! | `connector` | `id` | connector ids interned to integers; reported status in force and since when |
//! | `failure` | `id` | host-side failure kinds (`deadline`, `trap`, ...) interned |
//! | `point` | `(connector, at)` WITHOUT ROWID | one row per check: `code` = status + 5 × reported + 25 × failure, `latency` |
//! | `message` | rowid, unique `(connector, at)` | one row per change of message, at most 1024 bytes (a rowid table, so such a row fits in its page: in a WITHOUT ROWID table it would spill to an overflow page) |
//! | `hourly` | `(connector, hour)` WITHOUT ROWID | checks per status (current with every batch), p50/p95/max and a histogram once the hour is rolled up |
//! | `daily` | `(connector, day)` WITHOUT ROWID | passing and total checks per UTC day |
//! | `incident` | rowid, unique `(at, connector)` | changes of reported status with the message in force |
//!
//! A raw row is about 20-25 bytes on disk (a connector checked every 10 s
//! writes 8,640 a day); retention deletes raw rows and messages after
//! `raw_retention` and the rest after `rollup_retention`.
//!
//! One [`History`] per file: two writers on the same file would contend
//! for its write lock.
#![forbid(unsafe_code)]

mod error;
mod latency;
mod maintain;
mod queue;
mod read;
mod schema;
mod summary;
mod tallies;
mod types;
mod writer;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

pub use error::HistoryError;
pub use tallies::{Passed, Tallies};
pub use types::{
    HistoryOptions, HistoryStats, Incident, MAX_MESSAGE_BYTES, Point, Rollup, Status, StatusCounts,
    StoredPoint, Uptime,
};

use maintain::Maintenance;
use queue::{Failure, Queue};
use read::Readers;
use summary::{DAYS, Summary};
use types::to_ms;
use writer::{BATCH, Writer};

/// The longest daily bar answered.
const MAX_DAYS: u32 = 3_660;

/// What the handle, the writer thread and the readers share.
pub(crate) struct Shared {
    pub path: PathBuf,
    pub queue: Queue,
    summary: RwLock<Summary>,
}

impl Shared {
    fn summary(&self) -> RwLockReadGuard<'_, Summary> {
        self.summary.read().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn summary_mut(&self) -> RwLockWriteGuard<'_, Summary> {
        self.summary.write().unwrap_or_else(|p| p.into_inner())
    }
}

/// The check history of one node. Cheap to clone; every clone shares the
/// one writer thread, which stops when the last clone is dropped or on
/// [`History::close`].
#[derive(Clone)]
pub struct History {
    inner: Arc<Inner>,
}

struct Inner {
    shared: Arc<Shared>,
    readers: Readers,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        stop(&self.shared, &self.writer);
    }
}

fn stop(shared: &Shared, writer: &Mutex<Option<JoinHandle<()>>>) {
    shared.queue.stop();
    let handle = writer.lock().unwrap_or_else(|p| p.into_inner()).take();
    if let Some(handle) = handle
        && handle.join().is_err()
    {
        tracing::warn!(path = %shared.path.display(), "history: the writer thread panicked");
    }
}

impl History {
    /// Opens the history at `options.path`, creating the file and its
    /// directory if missing, and starts the writer thread.
    ///
    /// A file that is not a SQLite database, fails `PRAGMA quick_check`
    /// (which reads the whole file once), belongs to another application
    /// or has a schema from a newer build gives [`HistoryError::Damaged`]
    /// and is left exactly as it was; one that cannot be read gives
    /// [`HistoryError::Io`]. Opening reads the summary of every connector
    /// (about a second for 10,000), so call it on a blocking thread.
    pub fn open(options: HistoryOptions) -> Result<History, HistoryError> {
        let HistoryOptions {
            path,
            raw_retention,
            rollup_retention,
            queue,
        } = options;
        let conn = schema::open_writer(&path)?;
        let shared = Arc::new(Shared {
            path: path.clone(),
            queue: Queue::new(queue, BATCH),
            summary: RwLock::new(Summary::default()),
        });
        let writer = Writer::load(
            conn,
            shared.clone(),
            Maintenance::new(raw_retention, rollup_retention),
        )?;
        let handle = std::thread::Builder::new()
            .name("history-writer".to_owned())
            .spawn(move || writer.run())
            .map_err(|source| HistoryError::Io {
                path: path.clone(),
                source,
            })?;
        Ok(History {
            inner: Arc::new(Inner {
                shared,
                readers: Readers::new(path),
                writer: Mutex::new(Some(handle)),
            }),
        })
    }

    /// Queues one check. Never blocks on I/O and allocates nothing but the
    /// point's queue slot; when the queue is full the oldest queued point
    /// is dropped and counted in [`HistoryStats::dropped`]. After
    /// [`close`](History::close) the point is dropped and counted.
    pub fn record(&self, point: Point) {
        self.inner.shared.queue.push(point);
    }

    /// Blocks until every point recorded before the call is committed (or
    /// was dropped for overflow, and counted). `Err` when a write attempt
    /// begun after the call failed ([`HistoryError::Full`] for a full disk; the points
    /// stay queued and are retried) or the writer has stopped with points
    /// unwritten ([`HistoryError::Closed`]).
    pub fn flush(&self) -> Result<(), HistoryError> {
        let path = &self.inner.shared.path;
        self.inner
            .shared
            .queue
            .flush()
            .map_err(|failure| match failure {
                None => HistoryError::Closed,
                Some(Failure { full: true, .. }) => HistoryError::Full { path: path.clone() },
                Some(Failure { message, .. }) => HistoryError::Write {
                    path: path.clone(),
                    reason: message,
                },
            })
    }

    /// Writes what is queued, stops the writer thread and waits for it.
    /// Idempotent. Queries keep working on the file afterwards.
    pub fn close(&self) {
        stop(&self.inner.shared, &self.inner.writer);
    }

    /// Raw checks of connector `id` with `since <= at < until`, oldest
    /// first, at most `limit`. Empty for an unknown connector.
    pub fn points(
        &self,
        id: &str,
        since: SystemTime,
        until: SystemTime,
        limit: usize,
    ) -> Result<Vec<StoredPoint>, HistoryError> {
        let (since, until) = range(since, until)?;
        self.inner
            .readers
            .with(|c| read::points(c, id, since, until, limit))
    }

    /// Buckets of `step` (a whole number of hours) over `since..until`,
    /// aligned to multiples of `step` since the Unix epoch (so `since` is
    /// rounded down to a bucket start), oldest first. Buckets without
    /// checks are left out. Built from the hourly rollups, and from the raw
    /// points for hours not rolled up yet; see [`Rollup`] for how exact
    /// the percentiles are.
    pub fn rollups(
        &self,
        id: &str,
        since: SystemTime,
        until: SystemTime,
        step: Duration,
    ) -> Result<Vec<Rollup>, HistoryError> {
        let (since, until) = range(since, until)?;
        let hours = step.as_secs() / 3600;
        if hours == 0 || step != Duration::from_secs(hours * 3600) {
            return Err(HistoryError::BadRange(format!(
                "the rollup step must be a whole number of hours (1h, 2h, 24h, ...), not {step:?}"
            )));
        }
        let hours = i64::try_from(hours)
            .map_err(|_| HistoryError::BadRange(format!("the rollup step {step:?} is too long")))?;
        if since == until {
            return Ok(Vec::new());
        }
        self.inner
            .readers
            .with(|c| read::rollups(c, id, since, until, hours))
    }

    /// Uptime of connector `id` as of `now` (see [`Uptime`] for the
    /// windows), from the in-memory summary. All `None` for an unknown
    /// connector.
    pub fn uptime(&self, id: &str, now: SystemTime) -> Result<Uptime, HistoryError> {
        Ok(self.inner.shared.summary().uptime(id, to_ms(now)))
    }

    /// Uptime of every connector with a check in the last 92 days, from
    /// the in-memory summary (a few milliseconds for 10,000 connectors).
    pub fn uptime_all(&self, now: SystemTime) -> Result<HashMap<String, Uptime>, HistoryError> {
        Ok(self.inner.shared.summary().uptime_all(to_ms(now)))
    }

    /// Connector `id`'s uptime as counts, with `days` daily tallies (at
    /// most 92), for adding to what other nodes recorded of it.
    pub fn tallies(&self, id: &str, days: u32, now: SystemTime) -> Result<Tallies, HistoryError> {
        check_summary_days(days)?;
        Ok(self.inner.shared.summary().tallies(id, days, to_ms(now)))
    }

    /// [`tallies`](History::tallies) of every connector with a check in the
    /// last 92 days.
    pub fn tallies_all(
        &self,
        days: u32,
        now: SystemTime,
    ) -> Result<HashMap<String, Tallies>, HistoryError> {
        check_summary_days(days)?;
        Ok(self.inner.shared.summary().tallies_all(days, to_ms(now)))
    }

    /// Uptime percent of connector `id` per UTC day, `days` entries ending
    /// with the day `now` is in, oldest first; `None` for a day without
    /// checks. Up to 92 days come from memory, longer bars from the file.
    pub fn daily(
        &self,
        id: &str,
        days: u32,
        now: SystemTime,
    ) -> Result<Vec<Option<f64>>, HistoryError> {
        check_days(days)?;
        let now = to_ms(now);
        if days as usize <= DAYS {
            return Ok(self.inner.shared.summary().daily(id, days, now));
        }
        let mut all = self
            .inner
            .readers
            .with(|c| read::daily(c, Some(id), days, now))?;
        Ok(all.remove(id).unwrap_or_else(|| vec![None; days as usize]))
    }

    /// [`daily`](History::daily) for every connector with a check in the
    /// last 92 days (for longer bars: with a check in the bar).
    pub fn daily_all(
        &self,
        days: u32,
        now: SystemTime,
    ) -> Result<HashMap<String, Vec<Option<f64>>>, HistoryError> {
        check_days(days)?;
        let now = to_ms(now);
        if days as usize <= DAYS {
            return Ok(self.inner.shared.summary().daily_all(days, now));
        }
        self.inner.readers.with(|c| read::daily(c, None, days, now))
    }

    /// Changes of reported status at or after `since`, newest first, of
    /// every connector, at most `limit`. A connector's first check is not
    /// an incident.
    pub fn incidents(
        &self,
        since: SystemTime,
        limit: usize,
    ) -> Result<Vec<Incident>, HistoryError> {
        let since = to_ms(since);
        self.inner
            .readers
            .with(|c| read::incidents(c, since, limit))
    }

    /// Counters for metrics: queued, dropped, written, failed writes, the
    /// last error and the file's size. Cheap (two `stat` calls).
    pub fn stats(&self) -> HistoryStats {
        let shared = &self.inner.shared;
        let (dropped, written, write_errors, last_error) = {
            let s = shared.queue.lock();
            (
                s.dropped,
                s.written,
                s.write_errors,
                s.last_error.as_ref().map(|f| f.message.clone()),
            )
        };
        let size = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
        let mut wal = shared.path.clone().into_os_string();
        wal.push("-wal");
        HistoryStats {
            queued: shared.queue.queued(),
            dropped,
            written,
            write_errors,
            last_error,
            file_bytes: size(&shared.path) + size(Path::new(&wal)),
        }
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.shared.path
    }

    /// Caps the writer's file at `pages` pages (`None` lifts the cap), so
    /// tests can make SQLite answer SQLITE_FULL without filling a disk.
    /// Takes effect before the next batch.
    #[doc(hidden)]
    pub fn set_max_pages_for_test(&self, pages: Option<u32>) {
        self.inner.shared.queue.set_max_pages(pages);
    }

    /// Runs every pending rollup and a whole retention walk as of `now`
    /// on the writer thread, and waits for it. For tests and tools; the
    /// writer does the same work by itself in small steps.
    #[doc(hidden)]
    pub fn maintain_now_for_test(&self, now: SystemTime) -> Result<(), HistoryError> {
        let path = &self.inner.shared.path;
        self.inner
            .shared
            .queue
            .maintain(to_ms(now))
            .map_err(|e| match e {
                None => HistoryError::Closed,
                Some(reason) => HistoryError::Write {
                    path: path.clone(),
                    reason,
                },
            })
    }
}

fn range(since: SystemTime, until: SystemTime) -> Result<(i64, i64), HistoryError> {
    let (since, until) = (to_ms(since), to_ms(until));
    if since > until {
        return Err(HistoryError::BadRange(
            "`since` is after `until`; give the older time first".to_owned(),
        ));
    }
    Ok((since, until))
}

fn check_days(days: u32) -> Result<(), HistoryError> {
    if days > MAX_DAYS {
        return Err(HistoryError::BadRange(format!(
            "a daily bar covers at most {MAX_DAYS} days, not {days}"
        )));
    }
    Ok(())
}

fn check_summary_days(days: u32) -> Result<(), HistoryError> {
    if days as usize > DAYS {
        return Err(HistoryError::BadRange(format!(
            "daily tallies cover at most {DAYS} days, not {days}"
        )));
    }
    Ok(())
}

impl std::fmt::Debug for History {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("History")
            .field("path", &self.inner.shared.path)
            .finish_non_exhaustive()
    }
}
