//! The writer's background work between batches: latency figures of the
//! hours that are over (the rollups), and retention. Each step is one short
//! transaction bounded in rows and time, so a batch of checks never waits
//! long behind it, and no DELETE ever touches more than a few thousand rows.

use std::time::{Duration, Instant};

use rusqlite::{Connection, TransactionBehavior, params};

use crate::latency::{Histogram, exact};
use crate::types::{day_of, hour_of, hour_start_ms};

/// An hour is rolled up this long after it ended, so the checks that ended
/// in it and were still in the queue are in. A later one marks it pending
/// again and it is redone.
const GRACE_MS: i64 = 120_000;
/// Hours rolled up per step at most.
const ROLLUP_ROWS: usize = 200;
/// Rows one DELETE removes at most, and roughly per step.
const DELETE_ROWS: i64 = 2_000;
/// How often retention walks every connector.
const RETENTION_EVERY: Duration = Duration::from_secs(600);
/// How long to wait before looking again when no hour was waiting.
const ROLLUP_IDLE: Duration = Duration::from_secs(1);

pub(crate) struct Maintenance {
    raw_retention_ms: i64,
    rollup_retention_ms: i64,
    next_rollup: Instant,
    next_pass: Instant,
    pass: Option<Pass>,
}

/// A retention walk in progress: connectors up to `cursor` are done.
struct Pass {
    cursor: i64,
}

impl Maintenance {
    pub fn new(raw_retention: Duration, rollup_retention: Duration) -> Maintenance {
        let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        let now = Instant::now();
        Maintenance {
            raw_retention_ms: ms(raw_retention),
            rollup_retention_ms: ms(rollup_retention),
            next_rollup: now,
            // The first walk right after start catches up on what expired
            // while the service was down.
            next_pass: now,
            pass: None,
        }
    }

    /// One bounded step of whatever is due.
    pub fn step(
        &mut self,
        conn: &mut Connection,
        now_ms: i64,
        budget: Duration,
    ) -> rusqlite::Result<()> {
        let deadline = Instant::now() + budget;
        if Instant::now() >= self.next_rollup {
            let done = rollup_step(conn, now_ms, deadline)?;
            if done == 0 {
                self.next_rollup = Instant::now() + ROLLUP_IDLE;
            }
            if Instant::now() >= deadline {
                return Ok(());
            }
        }
        if self.pass.is_none() && Instant::now() >= self.next_pass {
            self.pass = Some(Pass { cursor: 0 });
            self.next_pass = Instant::now() + RETENTION_EVERY;
        }
        if let Some(cursor) = self.pass.as_ref().map(|p| p.cursor) {
            let next = self.retention_step(conn, cursor, now_ms, deadline)?;
            self.pass = next.map(|cursor| Pass { cursor });
        }
        Ok(())
    }

    /// All rollup and retention work as of `now_ms`, to the end (tests and
    /// tools; the service relies on `step`).
    pub fn run_all(&mut self, conn: &mut Connection, now_ms: i64) -> rusqlite::Result<()> {
        let far = Instant::now() + Duration::from_secs(3600);
        while rollup_step(conn, now_ms, far)? > 0 {}
        let mut cursor = 0;
        while let Some(next) = self.retention_step(conn, cursor, now_ms, far)? {
            cursor = next;
        }
        self.pass = None;
        Ok(())
    }

    /// Deletes expired rows connector by connector from `cursor` on.
    /// Returns the new cursor, or `None` when the walk is over.
    fn retention_step(
        &self,
        conn: &mut Connection,
        mut cursor: i64,
        now_ms: i64,
        deadline: Instant,
    ) -> rusqlite::Result<Option<i64>> {
        let raw_cutoff = now_ms.saturating_sub(self.raw_retention_ms);
        let rollup_cutoff = now_ms.saturating_sub(self.rollup_retention_ms);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut deleted = 0;
        let result = loop {
            if deleted >= DELETE_ROWS || Instant::now() >= deadline {
                break Some(cursor);
            }
            let next: Option<i64> = tx
                .prepare_cached("SELECT id FROM connector WHERE id > ?1 ORDER BY id LIMIT 1")?
                .query_map([cursor], |r| r.get(0))?
                .next()
                .transpose()?;
            let Some(id) = next else {
                let n = tx
                    .prepare_cached(
                        "DELETE FROM incident WHERE at < MIN(?1, COALESCE(
                           (SELECT at FROM incident ORDER BY at LIMIT 1 OFFSET ?2), ?1))",
                    )?
                    .execute(params![rollup_cutoff, DELETE_ROWS])?;
                if n as i64 >= DELETE_ROWS {
                    deleted += n as i64;
                    continue;
                }
                break None;
            };
            let points = tx
                .prepare_cached(
                    "DELETE FROM point WHERE connector = ?1 AND at < MIN(?2, COALESCE(
                       (SELECT at FROM point WHERE connector = ?1 ORDER BY at LIMIT 1 OFFSET ?3), ?2))",
                )?
                .execute(params![id, raw_cutoff, DELETE_ROWS])? as i64;
            // The message in force at the cutoff stays: the oldest points
            // kept still show it.
            let messages = tx
                .prepare_cached(
                    "DELETE FROM message WHERE connector = ?1 AND at < MIN(
                       (SELECT COALESCE(max(at), -1) FROM message WHERE connector = ?1 AND at <= ?2),
                       COALESCE((SELECT at FROM message WHERE connector = ?1 ORDER BY at LIMIT 1 OFFSET ?3), ?2))",
                )?
                .execute(params![id, raw_cutoff, DELETE_ROWS])? as i64;
            let hours = tx
                .prepare_cached("DELETE FROM hourly WHERE connector = ?1 AND hour < ?2")?
                .execute(params![id, hour_of(rollup_cutoff)])? as i64;
            let days = tx
                .prepare_cached("DELETE FROM daily WHERE connector = ?1 AND day < ?2")?
                .execute(params![id, day_of(rollup_cutoff)])? as i64;
            deleted += points + messages + hours + days;
            if points < DELETE_ROWS && messages < DELETE_ROWS {
                cursor = id;
            }
        };
        tx.commit()?;
        Ok(result)
    }
}

/// Computes the latency figures of up to [`ROLLUP_ROWS`] hours that are
/// over and pending. Returns how many it did.
fn rollup_step(conn: &mut Connection, now_ms: i64, deadline: Instant) -> rusqlite::Result<usize> {
    let before_hour = hour_of(now_ms.saturating_sub(GRACE_MS));
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let due: Vec<(i64, i64)> = tx
        .prepare_cached(
            "SELECT connector, hour FROM hourly WHERE pending = 1 AND hour < ?1
             ORDER BY hour, connector LIMIT ?2",
        )?
        .query_map(params![before_hour, ROLLUP_ROWS as i64], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut done = 0;
    let mut latencies = Vec::new();
    for (connector, hour) in due {
        // At least one per step, so a slow disk cannot stall rollups.
        if done > 0 && Instant::now() >= deadline {
            break;
        }
        latencies.clear();
        let mut select = tx.prepare_cached(
            "SELECT latency FROM point WHERE connector = ?1 AND at >= ?2 AND at < ?3",
        )?;
        let rows = select.query_map(
            params![connector, hour_start_ms(hour), hour_start_ms(hour + 1)],
            |r| r.get::<_, i64>(0),
        )?;
        for row in rows {
            latencies.push(row?);
        }
        let mut hist = Histogram::default();
        for &l in &latencies {
            hist.add(l);
        }
        let figures = exact(&mut latencies);
        tx.prepare_cached(
            "UPDATE hourly SET pending = 0, p50 = ?3, p95 = ?4, max = ?5, hist = ?6
             WHERE connector = ?1 AND hour = ?2",
        )?
        .execute(params![
            connector,
            hour,
            figures.map(|f| f.p50),
            figures.map(|f| f.p95),
            figures.map(|f| f.max),
            hist.encode(),
        ])?;
        done += 1;
    }
    tx.commit()?;
    Ok(done)
}
