//! Measures the history store: bytes per connector per day for connectors
//! checked every 10 s, the records per second the writer sustains, the
//! cost of the rollups, of reopening, and of `uptime_all`/`daily_all`.
//!
//! ```text
//! cargo run --release -p sandport-history --example measure -- [CONNECTORS] [MANY] [HOURS]
//! ```
//!
//! CONNECTORS (default 100) get HOURS (default 24) of checks at 10 s; MANY
//! (default 10,000) connectors get a few checks each for the summary
//! timings. The
//! file goes to a temporary directory that is removed at the end.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sandport_history::{History, HistoryOptions, Point, Status};

const INTERVAL_S: u64 = 10;
const DAY_S: u64 = 86_400;

fn main() {
    let mut args = std::env::args().skip(1);
    let connectors: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(100);
    let many: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let hours: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(24);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("history.db");
    // Yesterday (UTC), so the retention walk keeps everything.
    let now_s = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let day0 = (now_s / DAY_S - 1) * DAY_S;
    let per_day = DAY_S / INTERVAL_S;
    let steps = hours * 3600 / INTERVAL_S;
    let total = steps * connectors;
    let options = || HistoryOptions {
        queue: usize::try_from(total.max(many * 3)).unwrap_or(usize::MAX),
        ..HistoryOptions::new(&path)
    };

    let history = History::open(options()).expect("open");
    let names: Vec<Arc<str>> = (0..connectors)
        .map(|c| Arc::from(format!("connector-{c:05}")))
        .collect();
    let started = Instant::now();
    let mut recorded = 0u64;
    let mut record_time = Duration::ZERO;
    for step in 0..steps {
        let t = Instant::now();
        for (c, name) in names.iter().enumerate() {
            let c = c as u64;
            let i = step * connectors + c;
            // Mostly healthy, a short outage per connector a day, latencies
            // spread over 2-60 ms with a tail.
            let phase = (step + c * 97) % per_day;
            let down = phase < 30;
            let status = if down {
                Status::Unhealthy
            } else {
                Status::Healthy
            };
            let latency_us =
                2_000 + (i * 7919) % 58_000 + if i.is_multiple_of(100) { 400_000 } else { 0 };
            let message = if step == 0 || phase == 0 || phase == 30 {
                Some(if down {
                    "connection refused".to_owned()
                } else {
                    format!("ok: version 2.{c}")
                })
            } else {
                None
            };
            history.record(Point {
                connector: name.clone(),
                at: UNIX_EPOCH + Duration::from_millis((day0 + step * INTERVAL_S) * 1000 + c * 37),
                status,
                reported: status,
                latency: Duration::from_micros(latency_us),
                failure: None,
                message,
            });
            recorded += 1;
        }
        record_time += t.elapsed();
    }
    history.flush().expect("flush");
    let write_time = started.elapsed();
    let stats = history.stats();
    assert_eq!(stats.written, total, "{stats:?}");
    println!("{hours} h of {connectors} connectors at {INTERVAL_S} s: {total} points");
    println!(
        "  writer: {:.0} points/s sustained ({:.2} s), record(): {:.0} ns each",
        total as f64 / write_time.as_secs_f64(),
        write_time.as_secs_f64(),
        record_time.as_nanos() as f64 / recorded as f64
    );

    let t = Instant::now();
    history
        .maintain_now_for_test(UNIX_EPOCH + Duration::from_secs(day0 + DAY_S + 3600))
        .expect("maintain");
    println!(
        "  rollups still due after the writes: {:.2} s",
        t.elapsed().as_secs_f64()
    );
    history.close();
    drop(history);

    let conn = rusqlite::Connection::open(&path).expect("stat connection");
    let t = Instant::now();
    let check: String = conn
        .query_row("PRAGMA quick_check", [], |r| r.get(0))
        .expect("quick_check");
    println!(
        "  PRAGMA quick_check ({check}): {:.3} s",
        t.elapsed().as_secs_f64()
    );
    let mut sizes = conn
        .prepare("SELECT name, sum(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC")
        .expect("dbstat");
    let rows: Vec<(String, i64)> = sizes
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .and_then(|rows| rows.collect())
        .expect("dbstat rows");
    drop(sizes);
    drop(conn);
    let file = std::fs::metadata(&path).map_or(0, |m| m.len());
    println!(
        "  file after checkpoint: {file} bytes = {:.0} bytes per connector per day ({:.1} bytes per check)",
        file as f64 / connectors as f64 * 24.0 / hours as f64,
        file as f64 / total as f64
    );
    for (table, bytes) in rows {
        println!(
            "    {table:<16} {bytes:>12} bytes  {:>9.0} per connector-day",
            bytes as f64 / connectors as f64 * 24.0 / hours as f64
        );
    }

    let t = Instant::now();
    let history = History::open(options()).expect("reopen");
    println!(
        "  reopen (quick_check + summary): {:.3} s",
        t.elapsed().as_secs_f64()
    );
    // Every hour again, to time the rollups on their own.
    let conn = rusqlite::Connection::open(&path).expect("connection");
    conn.execute("UPDATE hourly SET pending = 1", [])
        .expect("mark pending");
    drop(conn);
    let t = Instant::now();
    history
        .maintain_now_for_test(UNIX_EPOCH + Duration::from_secs(day0 + DAY_S + 3600))
        .expect("maintain");
    println!(
        "  rolling up {hours} h x {connectors} connectors from scratch: {:.2} s",
        t.elapsed().as_secs_f64()
    );
    drop(history);

    // Many connectors, a few checks each, for the summary timings.
    let history = History::open(options()).expect("open");
    for c in 0..many {
        let name: Arc<str> = Arc::from(format!("many-{c:05}"));
        for k in 0..3u64 {
            history.record(Point {
                connector: name.clone(),
                at: UNIX_EPOCH + Duration::from_secs(day0 + DAY_S + k * INTERVAL_S),
                status: Status::Healthy,
                reported: Status::Healthy,
                latency: Duration::from_millis(5),
                failure: None,
                message: Some("ok".to_owned()),
            });
        }
    }
    history.flush().expect("flush");
    let now = UNIX_EPOCH + Duration::from_secs(day0 + DAY_S + 3600);
    // The best of five: the machine may be busy with other work.
    let best = |f: &dyn Fn() -> usize| {
        (0..5)
            .map(|_| {
                let t = Instant::now();
                let n = f();
                (t.elapsed(), n)
            })
            .min()
            .unwrap_or_default()
    };
    let (uptime_all, n) = best(&|| history.uptime_all(now).map_or(0, |m| m.len()));
    let (daily_all, bars) = best(&|| history.daily_all(90, now).map_or(0, |m| m.len()));
    println!(
        "  uptime_all over {n} connectors: {:.2} ms; daily_all(90): {:.2} ms ({bars} bars)",
        uptime_all.as_secs_f64() * 1000.0,
        daily_all.as_secs_f64() * 1000.0,
    );
    history.close();
    drop(history);
    let t = Instant::now();
    let history = History::open(options()).expect("reopen");
    println!(
        "  reopen with {} connectors: {:.3} s",
        many + connectors,
        t.elapsed().as_secs_f64()
    );
    drop(history);
}
