//! A writer killed with SIGKILL right after `flush` returned loses none of
//! the points it flushed. The test binary re-runs itself as the writer.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sandport_history::{History, HistoryOptions, Point, Status};

/// Set (to the file's path) only in the child process.
const CHILD_ENV: &str = "SANDPORT_HISTORY_CRASH_CHILD";
const FLUSHED: u64 = 20_000;
const CONNECTORS: u64 = 10;
/// 2025-06-15 00:00:00 UTC.
const START_MS: u64 = 1_749_945_600_000;

fn point(i: u64) -> Point {
    Point {
        connector: Arc::from(format!("c{}", i % CONNECTORS)),
        at: UNIX_EPOCH + Duration::from_millis(START_MS + i * 10),
        status: if i.is_multiple_of(7) {
            Status::Unhealthy
        } else {
            Status::Healthy
        },
        reported: Status::Healthy,
        latency: Duration::from_micros(i),
        failure: None,
        message: i.is_multiple_of(1000).then(|| format!("message {i}")),
    }
}

/// Retention long enough that the fixed 2025 times of the test are kept.
fn options(path: std::path::PathBuf) -> HistoryOptions {
    HistoryOptions {
        raw_retention: Duration::from_secs(100 * 365 * 86_400),
        rollup_retention: Duration::from_secs(100 * 365 * 86_400),
        ..HistoryOptions::new(path)
    }
}

/// The child: records, flushes, says so, then keeps recording without
/// flushing until it is killed.
#[test]
fn crash_child() {
    let Some(path) = std::env::var_os(CHILD_ENV) else {
        return; // an ordinary test run: nothing to do
    };
    let history = History::open(options(path.into())).unwrap();
    for i in 0..FLUSHED {
        history.record(point(i));
    }
    history.flush().unwrap();
    let mut out = std::io::stdout();
    writeln!(out, "flushed").unwrap();
    out.flush().unwrap();
    for i in FLUSHED.. {
        history.record(point(i));
        if i.is_multiple_of(100) {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

#[test]
fn a_killed_writer_loses_nothing_it_flushed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.db");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (said, heard) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // The harness prints "test crash_child ... " on the same line.
        let flushed = BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .any(|line| line.trim_end().ends_with("flushed"));
        let _ = said.send(flushed);
    });
    // Bounded, so a child that never flushes fails the test instead of
    // hanging it.
    let flushed = heard
        .recv_timeout(Duration::from_secs(120))
        .unwrap_or(false);
    // Let it write (and commit) some more before the kill lands.
    std::thread::sleep(Duration::from_millis(300));
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    assert!(flushed, "the child never flushed ({status})");
    assert!(!status.success(), "the child was killed, not finished");

    let history = History::open(options(path)).unwrap();
    let since = UNIX_EPOCH + Duration::from_millis(START_MS);
    let until = UNIX_EPOCH + Duration::from_millis(START_MS + FLUSHED * 10);
    let mut found = 0;
    for c in 0..CONNECTORS {
        let points = history
            .points(&format!("c{c}"), since, until, usize::MAX)
            .unwrap();
        found += points.len() as u64;
    }
    assert_eq!(found, FLUSHED);
    let stats = history.stats();
    assert_eq!(stats.queued, 0);
    assert!(history.uptime("c0", SystemTime::now()).is_ok());
}
