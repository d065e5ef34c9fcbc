//! Runs the store at a node's real pace and reports what it costs: bytes
//! written to disk per second and per check, and the writer's CPU time.
//!
//! ```text
//! cargo run --release -p sandport-history --example paced -- [CONNECTORS] [SECONDS]
//! ```
//!
//! CONNECTORS (default 10,000) are each checked every 10 s, spread evenly,
//! for SECONDS (default 60) of wall-clock time, with the current time as
//! the check time. Linux only (reads `/proc/self/io` and
//! `/proc/self/task/*/stat`).

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use sandport_history::{History, HistoryOptions, Point, Status};

/// A small file of the kernel's about this process.
#[allow(
    clippy::disallowed_methods,
    reason = "small /proc files of this process"
)]
fn proc_text(path: impl AsRef<std::path::Path>) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

fn write_bytes() -> u64 {
    let io = proc_text("/proc/self/io");
    io.lines()
        .find_map(|l| l.strip_prefix("write_bytes: "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// CPU seconds of the thread named `history-writer`.
fn writer_cpu() -> f64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0.0;
    };
    for task in tasks.flatten() {
        let comm = proc_text(task.path().join("comm"));
        if comm.trim() == "history-writer" {
            let stat = proc_text(task.path().join("stat"));
            let fields: Vec<&str> = stat
                .rsplit(')')
                .next()
                .unwrap_or("")
                .split_whitespace()
                .collect();
            let ticks = |i: usize| {
                fields
                    .get(i)
                    .and_then(|v| v.parse::<f64>().ok())
                    .unwrap_or(0.0)
            };
            // utime and stime, fields 14 and 15 of stat (after the name).
            return (ticks(11) + ticks(12)) / 100.0;
        }
    }
    0.0
}

fn main() {
    let mut args = std::env::args().skip(1);
    let connectors: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let seconds: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(60);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let history = History::open(HistoryOptions::new(dir.path().join("history.db"))).expect("open");
    let names: Vec<Arc<str>> = (0..connectors)
        .map(|c| Arc::from(format!("connector-{c:05}")))
        .collect();
    // A first round so every connector exists before the measurement.
    let point = |name: &Arc<str>, i: u64| Point {
        connector: name.clone(),
        at: SystemTime::now(),
        status: if i.is_multiple_of(97) {
            Status::Degraded
        } else {
            Status::Healthy
        },
        reported: Status::Healthy,
        latency: Duration::from_micros(2_000 + (i * 7919) % 50_000),
        failure: None,
        message: None,
    };
    for (i, name) in names.iter().enumerate() {
        history.record(point(name, i as u64));
    }
    history.flush().expect("flush");
    let bytes0 = write_bytes();
    let cpu0 = writer_cpu();
    let started = Instant::now();
    let per_tick = connectors.div_ceil(100); // 100 ticks per 10 s round
    let mut next = 0usize;
    let mut recorded = 0u64;
    let mut tick = 0u64;
    while started.elapsed() < Duration::from_secs(seconds) {
        for _ in 0..per_tick {
            history.record(point(&names[next], recorded));
            next = (next + 1) % names.len();
            recorded += 1;
        }
        tick += 1;
        let due = Duration::from_millis(tick * 100);
        if let Some(wait) = due.checked_sub(started.elapsed()) {
            std::thread::sleep(wait);
        }
    }
    history.flush().expect("flush");
    let elapsed = started.elapsed().as_secs_f64();
    let bytes = write_bytes() - bytes0;
    let cpu = writer_cpu() - cpu0;
    let stats = history.stats();
    println!(
        "{connectors} connectors every 10 s for {elapsed:.0} s: {recorded} checks ({:.0}/s)",
        recorded as f64 / elapsed
    );
    println!(
        "  disk writes: {:.2} MB/s, {:.0} bytes per check; writer CPU {:.1} % of a core; file {} bytes; dropped {}",
        bytes as f64 / elapsed / 1e6,
        bytes as f64 / recorded as f64,
        cpu / elapsed * 100.0,
        stats.file_bytes,
        stats.dropped
    );
    history.close();
}
