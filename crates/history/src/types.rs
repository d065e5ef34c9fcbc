//! The values that cross the crate's boundary: what the runtime hands over
//! ([`Point`]), what the queries answer, and the options and counters.
//!
//! These are the crate's own small types so that it builds without any
//! other Sandport crate; the integrator converts at the boundary.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// A health status, as a check reports it or as the service reports it
/// after flap control.
///
/// The numbers behind the variants (`Healthy` = 0 ... `Unknown` = 4) are
/// stored in the file: they must never be reordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// The target answered and is fine.
    Healthy,
    /// The target answered but is not fully well (still passing).
    Degraded,
    /// The target answered that it is not working.
    Unhealthy,
    /// The target could not be reached or the check did not finish.
    Unavailable,
    /// The check could not tell.
    Unknown,
}

impl Status {
    /// Every status, in stored order.
    pub const ALL: [Status; 5] = [
        Status::Healthy,
        Status::Degraded,
        Status::Unhealthy,
        Status::Unavailable,
        Status::Unknown,
    ];

    /// The lowercase name the APIs use: `"healthy"`, `"degraded"`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Healthy => "healthy",
            Status::Degraded => "degraded",
            Status::Unhealthy => "unhealthy",
            Status::Unavailable => "unavailable",
            Status::Unknown => "unknown",
        }
    }

    /// Whether a check with this status counts as up: `Healthy` or
    /// `Degraded`. Uptime percentages count these.
    pub fn passing(self) -> bool {
        matches!(self, Status::Healthy | Status::Degraded)
    }

    pub(crate) fn code(self) -> i64 {
        match self {
            Status::Healthy => 0,
            Status::Degraded => 1,
            Status::Unhealthy => 2,
            Status::Unavailable => 3,
            Status::Unknown => 4,
        }
    }

    /// A number read back from the file; anything unexpected reads as
    /// `Unknown` rather than failing the whole query.
    pub(crate) fn from_code(code: i64) -> Status {
        match code {
            0 => Status::Healthy,
            1 => Status::Degraded,
            2 => Status::Unhealthy,
            3 => Status::Unavailable,
            _ => Status::Unknown,
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One finished check, as the runtime hands it to [`History::record`](crate::History::record).
#[derive(Debug, Clone)]
pub struct Point {
    /// The connector's id.
    pub connector: Arc<str>,
    /// When the check ended.
    pub at: SystemTime,
    /// The check's own (raw) result. Uptime and rollups count this.
    pub status: Status,
    /// The status the service reports after flap control; incidents are
    /// the changes of this one.
    pub reported: Status,
    /// How long the check took.
    pub latency: Duration,
    /// Why the check failed on the host's side (`"deadline"`, `"trap"`,
    /// ...); `None` when the target itself answered.
    pub failure: Option<&'static str>,
    /// `Some` only when the message or the status changed since this
    /// connector's previous check; `None` means "same message as before".
    /// Stored once per change, cut to [`MAX_MESSAGE_BYTES`].
    pub message: Option<String>,
}

/// The longest message kept, in bytes; a longer one is cut at a character
/// boundary so a guest cannot make each stored change large.
pub const MAX_MESSAGE_BYTES: usize = 1024;

/// Where the history lives and how long it is kept.
#[derive(Debug, Clone)]
pub struct HistoryOptions {
    /// The SQLite file; its directory is created if missing.
    pub path: PathBuf,
    /// How long each single check is kept (default 7 days).
    pub raw_retention: Duration,
    /// How long hourly rollups, daily tallies and incidents are kept
    /// (default 90 days).
    pub rollup_retention: Duration,
    /// Points held in memory before the oldest are dropped (default
    /// 200,000). The writer holds at most one more batch on top.
    pub queue: usize,
}

impl HistoryOptions {
    /// The defaults for a file at `path`.
    pub fn new(path: impl Into<PathBuf>) -> HistoryOptions {
        HistoryOptions {
            path: path.into(),
            raw_retention: Duration::from_secs(7 * 86_400),
            rollup_retention: Duration::from_secs(90 * 86_400),
            queue: 200_000,
        }
    }
}

/// One stored check, as [`History::points`](crate::History::points) answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPoint {
    /// When the check ended, to the millisecond.
    pub at: SystemTime,
    /// The check's own result.
    pub status: Status,
    /// The status reported after flap control.
    pub reported: Status,
    /// To the microsecond.
    pub latency: Duration,
    /// Why the check failed on the host's side, if it did.
    pub failure: Option<String>,
    /// The message in force at that point (the last one recorded at or
    /// before it); empty when none was ever recorded.
    pub message: String,
}

/// Checks per status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatusCounts {
    /// Checks that were `Healthy`.
    pub healthy: u64,
    /// Checks that were `Degraded`.
    pub degraded: u64,
    /// Checks that were `Unhealthy`.
    pub unhealthy: u64,
    /// Checks that were `Unavailable`.
    pub unavailable: u64,
    /// Checks that were `Unknown`.
    pub unknown: u64,
}

impl StatusCounts {
    /// Every check counted.
    pub fn total(&self) -> u64 {
        self.healthy + self.degraded + self.unhealthy + self.unavailable + self.unknown
    }

    /// Checks that were `Healthy` or `Degraded`.
    pub fn passing(&self) -> u64 {
        self.healthy + self.degraded
    }

    pub(crate) fn merge(&mut self, other: &StatusCounts) {
        self.healthy += other.healthy;
        self.degraded += other.degraded;
        self.unhealthy += other.unhealthy;
        self.unavailable += other.unavailable;
        self.unknown += other.unknown;
    }
}

/// The checks of one connector in one time bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rollup {
    /// The bucket's start (a multiple of `step` since the Unix epoch, so
    /// 24 h buckets are UTC days).
    pub start: SystemTime,
    /// The bucket's length.
    pub step: Duration,
    /// By raw status.
    pub counts: StatusCounts,
    /// Latency percentiles (nearest rank) and maximum over every check in
    /// the bucket; `None` when the bucket had no checks with a latency.
    /// Exact for a bucket holding one hour of checks; for a bucket merged
    /// from several hours, read from a log-scale histogram (8 sub-buckets
    /// per power of two), so within about 6 % of the exact value. `max` is
    /// always exact.
    pub p50: Option<Duration>,
    /// See `p50`.
    pub p95: Option<Duration>,
    /// The slowest check; always exact.
    pub max: Option<Duration>,
}

/// Uptime of one connector: the share of its checks that were passing.
///
/// The windows are whole UTC periods ending with the one `now` is in:
/// `day` is the current hour so far plus the 23 before it; `week` the
/// current UTC day so far plus the 6 before it; `month` the current UTC
/// day plus the 29 before it. Checks in later hours (for `day`) or days
/// (for `week` and `month`) than the one `now` is in are not counted.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Uptime {
    /// Percent (0-100); `None` when there were no checks in the window.
    pub day: Option<f64>,
    /// Percent passing over the `week` window.
    pub week: Option<f64>,
    /// Percent passing over the `month` window.
    pub month: Option<f64>,
    /// When the current reported status began: the first check with it
    /// after a different one, or the first check ever recorded.
    pub since: Option<SystemTime>,
    /// The last reported status.
    pub status: Option<Status>,
}

/// A change of a connector's reported status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incident {
    /// The connector's id.
    pub connector: String,
    /// The reported status it changed to.
    pub status: Status,
    /// The reported status before.
    pub previous: Status,
    /// The message in force at the change.
    pub message: String,
    /// When the first check with the new status ended.
    pub at: SystemTime,
}

/// Counters for metrics and the admin API.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistoryStats {
    /// Points recorded but not committed yet (queued or being written).
    pub queued: u64,
    /// Points dropped: the oldest when the queue was full, a point recorded
    /// after `close`, or one whose connector already had a point at that
    /// millisecond.
    pub dropped: u64,
    /// Points committed.
    pub written: u64,
    /// Batches whose commit failed (each is retried).
    pub write_errors: u64,
    /// The error of the last failed write; `None` once a write succeeds
    /// again.
    pub last_error: Option<String>,
    /// Bytes of the database file plus its write-ahead log.
    pub file_bytes: u64,
}

const MS_PER_HOUR: i64 = 3_600_000;
const MS_PER_DAY: i64 = 86_400_000;

/// Milliseconds since the Unix epoch; times before it count as the epoch.
pub(crate) fn to_ms(t: SystemTime) -> i64 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(_) => 0,
    }
}

pub(crate) fn from_ms(ms: i64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

pub(crate) fn hour_of(ms: i64) -> i64 {
    ms.div_euclid(MS_PER_HOUR)
}

pub(crate) fn day_of(ms: i64) -> i64 {
    ms.div_euclid(MS_PER_DAY)
}

pub(crate) fn hour_start_ms(hour: i64) -> i64 {
    hour.saturating_mul(MS_PER_HOUR)
}

pub(crate) fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

pub(crate) fn from_micros(us: i64) -> Duration {
    Duration::from_micros(u64::try_from(us).unwrap_or(0))
}

/// `passing / total` as a percentage.
pub(crate) fn percent(passing: u64, total: u64) -> Option<f64> {
    (total > 0).then(|| passing as f64 * 100.0 / total as f64)
}
