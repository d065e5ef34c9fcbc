//! The queries, on their own connections: in WAL mode a reader sees the
//! last commit and never waits for the writer.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};

use crate::error::HistoryError;
use crate::latency::{Figures, Histogram, exact};
use crate::schema::open_reader;
use crate::types::{
    Incident, Rollup, Status, StatusCounts, StoredPoint, day_of, from_micros, from_ms, hour_of,
    hour_start_ms, percent,
};

/// Idle reader connections kept for the next query.
const IDLE_READERS: usize = 4;

pub(crate) struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl Readers {
    pub fn new(path: PathBuf) -> Readers {
        Readers {
            path,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// Runs `f` on an idle reader, or a new one when all are busy.
    pub fn with<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, HistoryError> {
        let idle = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let conn = match idle {
            Some(c) => c,
            None => open_reader(&self.path)?,
        };
        let result = f(&conn);
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < IDLE_READERS {
            idle.push(conn);
        }
        result.map_err(|e| HistoryError::sqlite(&self.path, e))
    }
}

fn connector_id(conn: &Connection, name: &str) -> rusqlite::Result<Option<i64>> {
    conn.prepare_cached("SELECT id FROM connector WHERE name = ?1")?
        .query_row([name], |r| r.get(0))
        .optional()
}

/// Raw points of one connector in `since..until` (ms), oldest first.
pub(crate) fn points(
    conn: &Connection,
    name: &str,
    since: i64,
    until: i64,
    limit: usize,
) -> rusqlite::Result<Vec<StoredPoint>> {
    let Some(id) = connector_id(conn, name)? else {
        return Ok(Vec::new());
    };
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows: Vec<(i64, i64, i64)> = conn
        .prepare_cached(
            "SELECT at, code, latency FROM point WHERE connector = ?1 AND at >= ?2 AND at < ?3
             ORDER BY at LIMIT ?4",
        )?
        .query_map(params![id, since, until, limit], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    let (Some(first), Some(last)) = (rows.first(), rows.last()) else {
        return Ok(Vec::new());
    };
    let failures: HashMap<i64, String> = conn
        .prepare_cached("SELECT id, name FROM failure")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    // The message in force at the first point, and every change up to the
    // last one.
    let messages: Vec<(i64, String)> = conn
        .prepare_cached(
            "SELECT at, text FROM message WHERE connector = ?1
               AND at >= COALESCE((SELECT max(at) FROM message WHERE connector = ?1 AND at <= ?2), ?2)
               AND at <= ?3
             ORDER BY at",
        )?
        .query_map(params![id, first.0, last.0], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut next_message = messages.iter().peekable();
    let mut message = "";
    let mut out = Vec::with_capacity(rows.len());
    for (at, code, latency) in rows {
        while let Some((m_at, text)) = next_message.peek() {
            if *m_at > at {
                break;
            }
            message = text;
            next_message.next();
        }
        out.push(StoredPoint {
            at: from_ms(at),
            status: Status::from_code(code % 5),
            reported: Status::from_code((code / 5) % 5),
            latency: from_micros(latency),
            failure: match code / 25 {
                0 => None,
                id => Some(
                    failures
                        .get(&id)
                        .cloned()
                        .unwrap_or_else(|| "unknown".to_owned()),
                ),
            },
            message: message.to_owned(),
        });
    }
    Ok(out)
}

/// One hour's share of a bucket.
struct Hour {
    counts: StatusCounts,
    exact: Option<Figures>,
    hist: Option<Histogram>,
}

/// Buckets of `step_hours` hours over `since..until` (ms).
pub(crate) fn rollups(
    conn: &Connection,
    name: &str,
    since: i64,
    until: i64,
    step_hours: i64,
) -> rusqlite::Result<Vec<Rollup>> {
    let Some(id) = connector_id(conn, name)? else {
        return Ok(Vec::new());
    };
    let first_hour = hour_of(since).div_euclid(step_hours) * step_hours;
    let last_hour = hour_of(until - 1);
    let mut select = conn.prepare_cached(
        "SELECT hour, healthy, degraded, unhealthy, unavailable, unknown, pending, p50, p95, max, hist
         FROM hourly WHERE connector = ?1 AND hour >= ?2 AND hour <= ?3 ORDER BY hour",
    )?;
    #[allow(clippy::type_complexity)]
    let rows: Vec<(
        i64,
        StatusCounts,
        bool,
        Option<i64>,
        Option<i64>,
        Option<i64>,
        Option<Vec<u8>>,
    )> = select
        .query_map(params![id, first_hour, last_hour], |r| {
            let n = |i| -> rusqlite::Result<u64> {
                Ok(u64::try_from(r.get::<_, i64>(i)?).unwrap_or(0))
            };
            Ok((
                r.get(0)?,
                StatusCounts {
                    healthy: n(1)?,
                    degraded: n(2)?,
                    unhealthy: n(3)?,
                    unavailable: n(4)?,
                    unknown: n(5)?,
                },
                r.get::<_, i64>(6)? != 0,
                r.get(7)?,
                r.get(8)?,
                r.get(9)?,
                r.get(10)?,
            ))
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut buckets: Vec<(i64, Vec<Hour>)> = Vec::new();
    for (hour, counts, pending, p50, p95, max, hist) in rows {
        let (exact, hist) = if pending {
            raw_figures(conn, id, hour)?
        } else {
            let exact = match (p50, p95, max) {
                (Some(p50), Some(p95), Some(max)) => Some(Figures { p50, p95, max }),
                _ => None,
            };
            (exact, hist.as_deref().and_then(Histogram::decode))
        };
        let bucket = hour.div_euclid(step_hours);
        let h = Hour {
            counts,
            exact,
            hist,
        };
        match buckets.last_mut() {
            Some((b, hours)) if *b == bucket => hours.push(h),
            _ => buckets.push((bucket, vec![h])),
        }
    }
    Ok(buckets
        .into_iter()
        .map(|(bucket, hours)| merge(bucket, step_hours, &hours))
        .collect())
}

/// Latency figures of an hour not rolled up yet, from its raw points.
fn raw_figures(
    conn: &Connection,
    id: i64,
    hour: i64,
) -> rusqlite::Result<(Option<Figures>, Option<Histogram>)> {
    let mut latencies: Vec<i64> = conn
        .prepare_cached("SELECT latency FROM point WHERE connector = ?1 AND at >= ?2 AND at < ?3")?
        .query_map(
            params![id, hour_start_ms(hour), hour_start_ms(hour + 1)],
            |r| r.get(0),
        )?
        .collect::<rusqlite::Result<_>>()?;
    let mut hist = Histogram::default();
    for &l in &latencies {
        hist.add(l);
    }
    Ok((exact(&mut latencies), Some(hist)))
}

fn merge(bucket: i64, step_hours: i64, hours: &[Hour]) -> Rollup {
    let mut counts = StatusCounts::default();
    for h in hours {
        counts.merge(&h.counts);
    }
    let with_figures: Vec<&Hour> = hours.iter().filter(|h| h.exact.is_some()).collect();
    let max = with_figures
        .iter()
        .filter_map(|h| h.exact)
        .map(|f| f.max)
        .max();
    let (p50, p95) = match with_figures.as_slice() {
        [one] => (one.exact.map(|f| f.p50), one.exact.map(|f| f.p95)),
        _ => {
            let mut hist = Histogram::default();
            for h in &with_figures {
                if let Some(part) = &h.hist {
                    hist.merge(part);
                }
            }
            // The middle of a bucket can lie above the largest value in it.
            let clamp = |v: Option<i64>| v.map(|v| max.map_or(v, |m| v.min(m)));
            (clamp(hist.percentile(50)), clamp(hist.percentile(95)))
        }
    };
    let step_ms = hour_start_ms(step_hours);
    Rollup {
        start: from_ms(bucket.saturating_mul(step_ms)),
        step: Duration::from_millis(u64::try_from(step_ms).unwrap_or(0)),
        counts,
        p50: p50.map(from_micros),
        p95: p95.map(from_micros),
        max: max.map(from_micros),
    }
}

/// Uptime per UTC day from the `daily` table, for bars longer than the
/// in-memory summary holds.
pub(crate) fn daily(
    conn: &Connection,
    name: Option<&str>,
    days: u32,
    now_ms: i64,
) -> rusqlite::Result<HashMap<String, Vec<Option<f64>>>> {
    let today = day_of(now_ms);
    let first = today - i64::from(days) + 1;
    let mut out: HashMap<String, Vec<Option<f64>>> = HashMap::new();
    let mut select = conn.prepare_cached(
        "SELECT c.name, d.day, d.passing, d.total FROM daily d JOIN connector c ON c.id = d.connector
         WHERE (?1 IS NULL OR c.name = ?1) AND d.day >= ?2 AND d.day <= ?3",
    )?;
    let rows = select.query_map(params![name, first, today], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, i64>(2)?,
            r.get::<_, i64>(3)?,
        ))
    })?;
    for row in rows {
        let (name, day, passing, total) = row?;
        let bar = out.entry(name).or_insert_with(|| vec![None; days as usize]);
        if let Some(slot) = usize::try_from(day - first)
            .ok()
            .and_then(|i| bar.get_mut(i))
        {
            *slot = percent(
                u64::try_from(passing).unwrap_or(0),
                u64::try_from(total).unwrap_or(0),
            );
        }
    }
    Ok(out)
}

/// Changes of reported status at or after `since` (ms), newest first.
pub(crate) fn incidents(
    conn: &Connection,
    since: i64,
    limit: usize,
) -> rusqlite::Result<Vec<Incident>> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    conn.prepare_cached(
        "SELECT c.name, i.status, i.previous, i.message, i.at
         FROM incident i JOIN connector c ON c.id = i.connector
         WHERE i.at >= ?1 ORDER BY i.at DESC, i.connector LIMIT ?2",
    )?
    .query_map(params![since, limit], |r| {
        Ok(Incident {
            connector: r.get(0)?,
            status: Status::from_code(r.get(1)?),
            previous: Status::from_code(r.get(2)?),
            message: r.get(3)?,
            at: from_ms(r.get(4)?),
        })
    })?
    .collect()
}
