//! The writer thread: drains the queue in batches, commits each batch in
//! one transaction, keeps the in-memory summary in step with what is
//! committed, survives a full disk, and does the rollup and retention work
//! in small steps between batches.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use crate::Shared;
use crate::error::{HistoryError, is_full};
use crate::maintain::Maintenance;
use crate::queue::{Failure, Orders};
use crate::summary::{DAYS, HOURS, Tally};
use crate::types::{MAX_MESSAGE_BYTES, Point, Status, day_of, hour_of, micros, to_ms};

/// Most points in one transaction.
pub(crate) const BATCH: usize = 5_000;
/// How long a point may wait in the queue before its batch is written.
const LINGER: Duration = Duration::from_millis(250);
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Failed attempts allowed while stopping before the rest is given up, so
/// a full disk cannot hold shutdown forever.
const STOP_ATTEMPTS: u32 = 3;
/// Longest a maintenance step may hold the writer between two batches.
const STEP_BUDGET: Duration = Duration::from_millis(50);
/// How often the log is checkpointed (and so synced) even when SQLite's
/// own 1,000-page trigger has not fired: bounds what a power loss can take.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(30);
/// `max_page_count` meaning "no limit" (SQLite's own default).
const NO_PAGE_LIMIT: u32 = 4_294_967_294;

/// What the writer remembers of each connector between batches.
#[derive(Debug, Clone)]
struct Known {
    id: i64,
    reported: Option<Status>,
    last_at: i64,
    message: Option<u64>,
}

/// What a batch changed, applied to memory only once it is committed.
#[derive(Default)]
struct Staged {
    known: HashMap<Arc<str>, Known>,
    failures: Vec<(&'static str, i64)>,
    checks: Vec<(Arc<str>, i64, bool)>,
    statuses: Vec<(Arc<str>, Status, i64)>,
    duplicates: u64,
}

pub(crate) struct Writer {
    conn: Connection,
    shared: Arc<Shared>,
    known: HashMap<Arc<str>, Known>,
    failures: HashMap<Box<str>, i64>,
    maintenance: Maintenance,
}

impl Writer {
    /// Reads what the writer and the summary need to carry on where the
    /// last run stopped.
    pub fn load(
        conn: Connection,
        shared: Arc<Shared>,
        maintenance: Maintenance,
    ) -> Result<Writer, HistoryError> {
        let path = shared.path.clone();
        let e = |e| HistoryError::sqlite(&path, e);
        let mut writer = Writer {
            conn,
            shared,
            known: HashMap::new(),
            failures: HashMap::new(),
            maintenance,
        };
        writer.load_known().map_err(e)?;
        Ok(writer)
    }

    fn load_known(&mut self) -> rusqlite::Result<()> {
        let conn = &self.conn;
        let mut failures = conn.prepare("SELECT id, name FROM failure")?;
        for row in failures.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))? {
            let (id, name) = row?;
            self.failures.insert(name.into_boxed_str(), id);
        }
        let mut connectors = conn.prepare("SELECT id, name, reported, since FROM connector")?;
        let rows = connectors
            .query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<i64>>(2)?,
                    r.get::<_, Option<i64>>(3)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let mut last =
            conn.prepare("SELECT at FROM point WHERE connector = ?1 ORDER BY at DESC LIMIT 1")?;
        let mut message =
            conn.prepare("SELECT text FROM message WHERE connector = ?1 ORDER BY at DESC LIMIT 1")?;
        let mut hours = conn.prepare(
            "SELECT hour, healthy + degraded, healthy + degraded + unhealthy + unavailable + unknown
             FROM hourly WHERE connector = ?1 AND hour > ?2",
        )?;
        let mut days = conn
            .prepare("SELECT day, passing, total FROM daily WHERE connector = ?1 AND day > ?2")?;
        let mut summary = self.shared.summary_mut();
        for (id, name, reported, since) in rows {
            let name: Arc<str> = name.into();
            let last_at: Option<i64> = last.query_row([id], |r| r.get(0)).optional()?;
            let text: Option<String> = message.query_row([id], |r| r.get(0)).optional()?;
            let reported = reported.map(Status::from_code);
            let since_ms = since.unwrap_or(0);
            if let Some(status) = reported {
                summary.set_status(&name, status, since_ms);
            }
            if let Some(last_at) = last_at {
                let newest_hour = hour_of(last_at);
                for row in hours.query_map(params![id, newest_hour - HOURS as i64], tally_row)? {
                    let (hour, tally) = row?;
                    summary.add_hour(&name, hour, tally);
                }
                let newest_day = day_of(last_at);
                for row in days.query_map(params![id, newest_day - DAYS as i64], tally_row)? {
                    let (day, tally) = row?;
                    summary.add_day(&name, day, tally);
                }
            }
            self.known.insert(
                name,
                Known {
                    id,
                    reported,
                    last_at: last_at.unwrap_or(i64::MIN),
                    message: text.as_deref().map(hash_text),
                },
            );
        }
        Ok(())
    }

    /// The thread's body. Returns when stopped and the queue is written
    /// (or given up after repeated failures while stopping).
    pub fn run(mut self) {
        let shared = self.shared.clone();
        // Whatever happens here (even a panic), `flush` callers must not
        // wait for a writer that is gone.
        let _gone = Gone(&shared);
        let mut batch: Vec<(u64, Point)> = Vec::with_capacity(BATCH);
        let mut seen_flush = 0;
        let mut backoff: Option<Duration> = None;
        let mut failing: Option<bool> = None;
        let mut stop_failures = 0;
        let mut last_checkpoint = Instant::now();
        loop {
            let orders: Orders = shared.queue.take(&mut batch, LINGER, &mut seen_flush);
            if let Some(pages) = orders.max_pages {
                let pages = pages.unwrap_or(NO_PAGE_LIMIT);
                if let Err(e) = self.conn.pragma_update(None, "max_page_count", pages) {
                    tracing::warn!(path = %shared.path.display(), error = %e, "history: cannot set max_page_count");
                }
            }
            if !batch.is_empty() {
                let n = batch.len();
                match self.write(&batch) {
                    Ok(duplicates) => {
                        batch.clear();
                        // Logged before `flush` callers are woken, so the
                        // log reads in order.
                        if failing.take().is_some() {
                            tracing::info!(path = %shared.path.display(), "history: writing resumed");
                        }
                        shared.queue.committed(n, duplicates);
                        backoff = None;
                    }
                    Err(e) => {
                        let full = is_full(&e);
                        if failing != Some(full) {
                            tracing::warn!(
                                path = %shared.path.display(),
                                error = %e,
                                disk_full = full,
                                "history: cannot write checks; keeping them in memory and retrying"
                            );
                        }
                        failing = Some(full);
                        let message = HistoryError::sqlite(&shared.path, e).to_string();
                        shared.queue.failed(&mut batch, Failure { full, message });
                        // Maintenance waits for the disk too; say so rather
                        // than leave the caller waiting.
                        if let Some((ticket, _)) = orders.maintain {
                            shared.queue.maintained(
                                ticket,
                                Some("the queued checks could not be written first".to_owned()),
                            );
                        }
                        if orders.stop {
                            stop_failures += 1;
                            if stop_failures >= STOP_ATTEMPTS {
                                tracing::warn!(
                                    path = %shared.path.display(),
                                    lost = shared.queue.queued(),
                                    "history: giving up on the unwritten checks to stop"
                                );
                                break;
                            }
                        }
                        let pause = backoff.map_or(FIRST_BACKOFF, |b| (b * 2).min(MAX_BACKOFF));
                        backoff = Some(pause);
                        shared.queue.backoff(pause, seen_flush);
                        continue;
                    }
                }
            }
            if let Some((ticket, now_ms)) = orders.maintain {
                let result = self.maintenance.run_all(&mut self.conn, now_ms);
                shared
                    .queue
                    .maintained(ticket, result.err().map(|e| e.to_string()));
            } else if failing.is_none() && !orders.stop {
                let now_ms = to_ms(SystemTime::now());
                if let Err(e) = self.maintenance.step(&mut self.conn, now_ms, STEP_BUDGET) {
                    tracing::debug!(path = %shared.path.display(), error = %e, "history: maintenance step failed; retried later");
                }
                if last_checkpoint.elapsed() >= CHECKPOINT_EVERY {
                    last_checkpoint = Instant::now();
                    // PASSIVE never waits for readers; what it cannot copy
                    // yet is copied next time.
                    if let Err(e) = self.conn.execute_batch("PRAGMA wal_checkpoint(PASSIVE);") {
                        tracing::debug!(path = %shared.path.display(), error = %e, "history: checkpoint failed; retried later");
                    }
                }
            }
            if orders.stop && shared.queue.is_empty() {
                break;
            }
        }
        // Fold the log into the file so the next open starts small; a
        // failure here loses nothing.
        let _ = self.conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);");
    }

    /// One transaction for the whole batch. Returns how many points were
    /// duplicates of one already stored.
    fn write(&mut self, batch: &[(u64, Point)]) -> rusqlite::Result<u64> {
        let started = Instant::now();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut staged = Staged::default();
        let mut hours: HashMap<(i64, i64), [i64; 5]> = HashMap::new();
        let mut days: HashMap<(i64, i64), (i64, i64)> = HashMap::new();
        for (_, point) in batch {
            let mut known = match staged.known.remove(&*point.connector) {
                Some(k) => k,
                None => match self.known.get(&*point.connector) {
                    Some(k) => k.clone(),
                    None => {
                        tx.prepare_cached("INSERT INTO connector (name) VALUES (?1)")?
                            .execute([&*point.connector])?;
                        Known {
                            id: tx.last_insert_rowid(),
                            reported: None,
                            last_at: i64::MIN,
                            message: None,
                        }
                    }
                },
            };
            let mut at = to_ms(point.at);
            // Two checks ending in the same millisecond (a manual check next
            // to a scheduled one) would share a key; keep both, in order.
            if at <= known.last_at && known.last_at - at < 1_000 {
                at = known.last_at + 1;
            }
            let failure = match point.failure {
                None => 0,
                Some(name) => failure_id(&self.failures, &tx, name, &mut staged)?,
            };
            let code = point.status.code() + 5 * point.reported.code() + 25 * failure;
            let inserted = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO point (connector, at, code, latency) VALUES (?1, ?2, ?3, ?4)",
                )?
                .execute(params![known.id, at, code, micros(point.latency)])?;
            if inserted == 1 {
                let h = hours.entry((known.id, hour_of(at))).or_default();
                h[point.status.code() as usize] += 1;
                let d = days.entry((known.id, day_of(at))).or_default();
                d.0 += i64::from(point.status.passing());
                d.1 += 1;
                staged
                    .checks
                    .push((point.connector.clone(), at, point.status.passing()));
                known.last_at = known.last_at.max(at);
            } else {
                staged.duplicates += 1;
            }
            let mut message_now: Option<&str> = None;
            if let Some(text) = &point.message {
                let text = cut(text);
                let hash = hash_text(text);
                if known.message != Some(hash) {
                    tx.prepare_cached(
                        "INSERT OR REPLACE INTO message (connector, at, text) VALUES (?1, ?2, ?3)",
                    )?
                    .execute(params![known.id, at, text])?;
                    known.message = Some(hash);
                }
                message_now = Some(text);
            }
            if known.reported != Some(point.reported) {
                if let Some(previous) = known.reported {
                    let message = match message_now {
                        Some(m) => m.to_owned(),
                        None => tx
                            .prepare_cached(
                                "SELECT text FROM message WHERE connector = ?1 AND at <= ?2 ORDER BY at DESC LIMIT 1",
                            )?
                            .query_row(params![known.id, at], |r| r.get(0))
                            .optional()?
                            .unwrap_or_default(),
                    };
                    tx.prepare_cached(
                        "INSERT OR REPLACE INTO incident (at, connector, status, previous, message)
                         VALUES (?1, ?2, ?3, ?4, ?5)",
                    )?
                    .execute(params![
                        at,
                        known.id,
                        point.reported.code(),
                        previous.code(),
                        message
                    ])?;
                }
                tx.prepare_cached("UPDATE connector SET reported = ?2, since = ?3 WHERE id = ?1")?
                    .execute(params![known.id, point.reported.code(), at])?;
                known.reported = Some(point.reported);
                staged
                    .statuses
                    .push((point.connector.clone(), point.reported, at));
            }
            staged.known.insert(point.connector.clone(), known);
        }
        {
            let mut upsert_hour = tx.prepare_cached(
                "INSERT INTO hourly (connector, hour, healthy, degraded, unhealthy, unavailable, unknown)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (connector, hour) DO UPDATE SET
                   healthy = healthy + excluded.healthy,
                   degraded = degraded + excluded.degraded,
                   unhealthy = unhealthy + excluded.unhealthy,
                   unavailable = unavailable + excluded.unavailable,
                   unknown = unknown + excluded.unknown,
                   pending = 1",
            )?;
            for ((id, hour), c) in &hours {
                upsert_hour.execute(params![id, hour, c[0], c[1], c[2], c[3], c[4]])?;
            }
            let mut upsert_day = tx.prepare_cached(
                "INSERT INTO daily (connector, day, passing, total) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (connector, day) DO UPDATE SET
                   passing = passing + excluded.passing, total = total + excluded.total",
            )?;
            for ((id, day), (passing, total)) in &days {
                upsert_day.execute(params![id, day, passing, total])?;
            }
        }
        tx.commit()?;
        let duplicates = staged.duplicates;
        self.apply(staged);
        tracing::trace!(
            points = batch.len(),
            took_ms = started.elapsed().as_millis() as u64,
            "history: batch committed"
        );
        Ok(duplicates)
    }

    /// The batch is committed: what it changed becomes what the writer and
    /// the readers of the summary know.
    fn apply(&mut self, staged: Staged) {
        self.known.extend(staged.known);
        for (name, id) in staged.failures {
            self.failures.insert(name.into(), id);
        }
        let mut summary = self.shared.summary_mut();
        for (name, at, passing) in &staged.checks {
            summary.add_check(name, *at, *passing);
        }
        for (name, status, since) in &staged.statuses {
            summary.set_status(name, *status, *since);
        }
    }
}

fn failure_id(
    known: &HashMap<Box<str>, i64>,
    tx: &Connection,
    name: &'static str,
    staged: &mut Staged,
) -> rusqlite::Result<i64> {
    if let Some(&id) = known.get(name) {
        return Ok(id);
    }
    if let Some(&(_, id)) = staged.failures.iter().find(|(n, _)| *n == name) {
        return Ok(id);
    }
    tx.prepare_cached("INSERT INTO failure (name) VALUES (?1)")?
        .execute([name])?;
    let id = tx.last_insert_rowid();
    staged.failures.push((name, id));
    Ok(id)
}

/// Marks the writer gone when the thread ends, however it ends.
struct Gone<'a>(&'a Shared);

impl Drop for Gone<'_> {
    fn drop(&mut self) {
        self.0.queue.writer_gone();
    }
}

fn tally_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(i64, Tally)> {
    let count =
        |i| -> rusqlite::Result<u32> { Ok(u32::try_from(r.get::<_, i64>(i)?).unwrap_or(u32::MAX)) };
    Ok((
        r.get(0)?,
        Tally {
            passing: count(1)?,
            total: count(2)?,
        },
    ))
}

/// Only compared with the previous message of the same connector, so a
/// collision could at worst skip storing one change.
fn hash_text(text: &str) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut h);
    h.finish()
}

/// The message cut to [`MAX_MESSAGE_BYTES`] at a character boundary.
pub(crate) fn cut(text: &str) -> &str {
    if text.len() <= MAX_MESSAGE_BYTES {
        return text;
    }
    let mut end = MAX_MESSAGE_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}
