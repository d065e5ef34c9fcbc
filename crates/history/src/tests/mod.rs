//! Tests of the whole store through the public API, on files in temporary
//! directories. Times are fixed (June 2025), never the clock.

mod queries;
mod store;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::{History, HistoryOptions, Point, Status};

/// 2025-06-15 00:00:00 UTC, the start of a UTC day.
const DAY0: u64 = 1_749_945_600;
const HOUR: u64 = 3_600;
const DAY: u64 = 86_400;

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

fn at_ms(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

fn point(id: &str, when: SystemTime, status: Status, latency_ms: u64) -> Point {
    Point {
        connector: Arc::from(id),
        at: when,
        status,
        reported: status,
        latency: Duration::from_millis(latency_ms),
        failure: None,
        message: None,
    }
}

/// Retention long enough that the writer's own walk (run against the
/// clock) never touches the fixed 2025 times of a test.
fn options(dir: &Path) -> HistoryOptions {
    HistoryOptions {
        raw_retention: Duration::from_secs(100 * 365 * DAY),
        rollup_retention: Duration::from_secs(100 * 365 * DAY),
        ..HistoryOptions::new(dir.join("data").join("history.db"))
    }
}

fn open(dir: &Path) -> History {
    History::open(options(dir)).unwrap()
}

/// Rows of `table`, read on a connection of the test's own.
fn count(history: &History, table: &str) -> i64 {
    let conn = rusqlite::Connection::open(history.path()).unwrap();
    conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
        .unwrap()
}

/// The whole of a small file the test made itself.
#[allow(
    clippy::disallowed_methods,
    reason = "a file the test wrote, of a known small size"
)]
fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap()
}
