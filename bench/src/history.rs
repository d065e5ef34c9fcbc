//! Part 7, the cost of the check history: N `http` connectors (10,000 by
//! default) on loopback targets, checked by the runtime's own scheduler every
//! interval (10 s), first without the history, then recording every check
//! into a `sandport-history` file, each phase on a fresh runtime.
//!
//! Each phase registers every connector, waits a warm-up (so that the first
//! checks, spread by id, have settled into their steady rhythm) and then
//! measures a window: checks completed (a counting observer beside the
//! history's), the process's CPU time per check, and the schedule's lateness
//! (`sandport_schedule_lateness_seconds`, read from the runtime's metrics
//! before and after). The phase with the history then flushes and closes the
//! store (closing folds the write-ahead log into the file) and reports its
//! size, the points written and the points dropped.
//!
//! Last, a simulated day outside both phases: a fresh store fed a whole UTC
//! day of points for a few connectors, rolled up, closed and measured, for
//! the size a connector costs per day once the one-off rows are amortised.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use sandport_core::service::history_feed;
use sandport_core::{CheckObserver, Checked, HealthStatus, Observers, Runtime, RuntimeOptions};
use sandport_history::{History, HistoryOptions};

use crate::report::{self, Row, human, thousands};
use crate::serve::TempDir;
use crate::targets::Targets;

mod day;
mod lateness;

use lateness::Lateness;

pub struct Options {
    pub connectors: usize,
    pub servers: usize,
    pub interval: Duration,
    pub warmup: Duration,
    pub window: Duration,
}

/// Target: checks/s with the history at most this much below without.
const TARGET_DROP_PERCENT: f64 = 10.0;
/// The check timeout, or the interval when that is shorter.
const TIMEOUT: Duration = Duration::from_secs(5);
const SECONDS_PER_DAY: f64 = 86_400.0;

pub async fn run(options: &Options) -> anyhow::Result<Vec<Row>> {
    let n = options.connectors;
    ensure!(n > 0, "--connectors must be at least 1");
    ensure!(
        options.interval >= Duration::from_secs(1),
        "--interval must be at least 1 (second): the config refuses shorter health-check intervals"
    );
    ensure!(
        options.window >= options.interval,
        "--seconds must cover at least one interval ({} s): a shorter window may hold no scheduled check at all",
        options.interval.as_secs()
    );
    check_open_files(n)?;
    let interval = options.interval.as_secs_f64();
    let schedule_rate = n as f64 / interval;
    println!(
        "method: {} `http` connectors (ids c00000..) over {} loopback target servers (child process), health_check {{interval: {}, timeout: {}}}, checked by the runtime's scheduler (no compiled-component cache); two phases, each on a fresh runtime: (a) history off: a counting observer only; (b) history on: the counting observer plus the recording service's history_feed into a new file in a temp dir; each: register all, {} warm-up, then a {} window: checks completed (the counting observer), process CPU time (CLOCK_PROCESS_CPUTIME_ID: every thread, incl. the history writer and threads that ended), schedule lateness (the runtime's sandport_schedule_lateness_seconds, differences over the window); the schedule alone asks for {schedule_rate:.0} checks/s",
        thousands(n as u64),
        options.servers,
        human(options.interval),
        human(timeout(options.interval)),
        human(options.warmup),
        human(options.window),
    );
    let targets = Targets::spawn(options.servers)?;
    let dir = TempDir::new("history")?;

    println!("-- (a) history off");
    let off = phase(options, &targets, None).await?;
    off.print(options);

    println!("-- (b) history on");
    let history = open(&dir.path().join("history.db")).await?;
    let on = phase(options, &targets, Some(&history)).await?;
    on.print(options);
    let store = store(&history, n, interval).await?;
    drop(history);

    let day = day::simulated_day(dir.path(), options.interval).await?;

    let drop_percent = (off.rate() - on.rate()) / off.rate().max(f64::MIN_POSITIVE) * 100.0;
    // Rounded for the table; adding zero turns the -0.0 of a tiny gain into 0.0.
    let shown = (drop_percent * 10.0).round() / 10.0 + 0.0;
    let all_healthy = off.failed == 0 && on.failed == 0;
    let checked = off.checks > 0 && on.checks > 0;
    println!(
        "checks/s: off {:.1}, on {:.1}: {drop_percent:+.2}% drop (the schedule asks for {schedule_rate:.1}; both phases are held to it unless the machine cannot keep up, so the CPU per check is the finer figure)",
        off.rate(),
        on.rate()
    );
    let healthy_note = if !checked {
        " — a window without checks".to_string()
    } else if !all_healthy {
        " — NOT all healthy".to_string()
    } else {
        String::new()
    };
    let mut rows = vec![
        Row::target(
            7,
            format!(
                "checks/s with the history on vs off, {} connectors every {}",
                thousands(n as u64),
                human(options.interval)
            ),
            format!(
                "**{shown:.1}% drop** ({:.0} → {:.0} checks/s; schedule {schedule_rate:.0}){healthy_note}",
                off.rate(),
                on.rate()
            ),
            "< 10% drop",
            drop_percent < TARGET_DROP_PERCENT && all_healthy && checked,
        ),
        Row::info(
            7,
            "process CPU per scheduled check, history off / on",
            format!(
                "{} / {} ({:+.1} µs; the history writer thread {} per check); {:.0}% / {:.0}% of a core",
                human(off.cpu_per_check()),
                human(on.cpu_per_check()),
                (on.cpu_per_check().as_secs_f64() - off.cpu_per_check().as_secs_f64()) * 1e6,
                on.writer
                    .map_or_else(|| "?".into(), |w| human(per_check(w, on.checks))),
                off.cpu_share() * 100.0,
                on.cpu_share() * 100.0
            ),
        ),
    ];
    if let (Some(a), Some(b)) = (&off.lateness, &on.lateness) {
        rows.push(Row::info(
            7,
            "schedule lateness over the window, history off / on: mean, share within 10 ms",
            format!(
                "{} / {}; {:.1}% / {:.1}%",
                human(a.mean()),
                human(b.mean()),
                a.share_within(0.01) * 100.0,
                b.share_within(0.01) * 100.0
            ),
        ));
    }
    rows.push(Row::info(
        7,
        format!(
            "history store per connector per day, {} connectors every {}",
            thousands(n as u64),
            human(options.interval)
        ),
        format!(
            "{} KiB measured ({} bytes / {} connectors × 86,400 / {:.0} s covered); {} KiB in a simulated day",
            thousands((store.per_day / 1024.0).round() as u64),
            thousands(store.bytes),
            thousands(n as u64),
            store.covered,
            thousands((day.per_connector / 1024.0).round() as u64)
        ),
    ));
    rows.push(Row::info(
        7,
        "history points written / dropped",
        format!(
            "{} / {}{}",
            thousands(store.written),
            thousands(store.dropped),
            if store.dropped == 0 {
                ""
            } else {
                " — points LOST"
            }
        ),
    ));
    Ok(rows)
}

/// 10,000 connectors each keep a pooled connection to a target: raise the
/// soft limit to the hard one, as the service does at start, and stop early
/// if even that is too low.
fn check_open_files(connectors: usize) -> anyhow::Result<()> {
    let concurrency = RuntimeOptions::default().max_concurrent_checks;
    let needed = (connectors + concurrency + 512) as u64;
    let limits = sandport_core::limits::raise_fd_limit();
    match report::open_files_limit() {
        Some(limit) if limit < needed => bail!(
            "the open-files limit is {limit} (hard limit {}), but {connectors} connectors need about {needed}: raise the hard limit (e.g. `ulimit -Hn {}` as root, or LimitNOFILE in a unit) and run again",
            limits
                .hard
                .map_or_else(|| "unlimited".to_string(), |h| h.to_string()),
            needed.next_power_of_two()
        ),
        Some(limit) => println!(
            "open-files limit: {limit} (was {}; need about {needed})",
            limits
                .before
                .map_or_else(|| "unlimited".to_string(), |b| b.to_string())
        ),
        None => println!("open-files limit: unknown"),
    }
    Ok(())
}

fn timeout(interval: Duration) -> Duration {
    TIMEOUT.min(interval)
}

/// Counts every check the runtime records, and the ones that were not
/// healthy.
#[derive(Default)]
struct Counter {
    checks: AtomicU64,
    failed: AtomicU64,
    first_failure: OnceLock<String>,
}

impl CheckObserver for Counter {
    fn checked(&self, check: &Checked<'_>) {
        self.checks.fetch_add(1, Ordering::Relaxed);
        if check.status != HealthStatus::Healthy {
            self.failed.fetch_add(1, Ordering::Relaxed);
            let _ = self
                .first_failure
                .set(format!("{}: {} {}", check.id, check.status, check.message));
        }
    }
}

/// What one phase measured over its window.
struct Phase {
    registered_in: Duration,
    window: Duration,
    checks: u64,
    failed: u64,
    first_failure: Option<String>,
    cpu: Duration,
    /// CPU of the history's writer thread over the window, when there is one.
    writer: Option<Duration>,
    lateness: Option<Lateness>,
    rss_kib: u64,
}

impl Phase {
    fn rate(&self) -> f64 {
        report::per_second(self.checks as usize, self.window)
    }

    fn cpu_per_check(&self) -> Duration {
        per_check(self.cpu, self.checks)
    }

    fn cpu_share(&self) -> f64 {
        self.cpu.as_secs_f64() / self.window.as_secs_f64().max(f64::MIN_POSITIVE)
    }

    fn print(&self, options: &Options) {
        let expected =
            options.connectors as f64 * self.window.as_secs_f64() / options.interval.as_secs_f64();
        println!(
            "registered in {}; window {}: {} checks ({:.1} checks/s, {:.1}% of the {expected:.0} the schedule asks for), {} not healthy; CPU {} ({} per check, {:.0}% of a core){}; RSS at the end {} KiB",
            human(self.registered_in),
            human(self.window),
            thousands(self.checks),
            self.rate(),
            self.checks as f64 * 100.0 / expected.max(1.0),
            thousands(self.failed),
            human(self.cpu),
            human(self.cpu_per_check()),
            self.cpu_share() * 100.0,
            self.writer.map_or_else(String::new, |w| format!(
                ", of which the history writer thread {} ({} per check)",
                human(w),
                human(per_check(w, self.checks))
            )),
            thousands(self.rss_kib),
        );
        if let Some(failure) = &self.first_failure {
            println!("a check that was not healthy said: {failure}");
        }
        match &self.lateness {
            Some(l) => println!(
                "schedule lateness over the window and the metric reads either side of it: {} checks started, mean {}, {:.1}% within 1 ms, {:.1}% within 10 ms, 99% within {}",
                thousands(l.count as u64),
                human(l.mean()),
                l.share_within(0.001) * 100.0,
                l.share_within(0.01) * 100.0,
                l.quantile_bound(0.99)
                    .map_or_else(|| "more than 30 s".to_string(), human)
            ),
            None => println!("schedule lateness: not found in the runtime's metrics"),
        }
    }
}

fn per_check(cpu: Duration, checks: u64) -> Duration {
    u32::try_from(checks)
        .ok()
        .filter(|&c| c > 0)
        .map_or(Duration::ZERO, |c| cpu / c)
}

/// One phase on a fresh runtime: register, warm up, measure the window,
/// shut the runtime down.
async fn phase(
    options: &Options,
    targets: &Targets,
    history: Option<&History>,
) -> anyhow::Result<Phase> {
    let counter = Arc::new(Counter::default());
    let mut observers: Vec<Arc<dyn CheckObserver>> = vec![counter.clone()];
    if let Some(history) = history {
        observers.push(history_feed(history));
    }
    let runtime = Runtime::new(RuntimeOptions {
        schedule: true,
        cache_dir: None,
        observers: Observers::new(observers),
        ..RuntimeOptions::default()
    })
    .context("create the runtime")?;
    let started = Instant::now();
    register(&runtime, targets, options).await?;
    let registered_in = started.elapsed();
    tokio::time::sleep(options.warmup).await;

    let metrics = Arc::new(sandport_server::metrics::Metrics::new(
        runtime.collector(),
        Vec::new(),
    ));
    let lateness_before = Lateness::read(&metrics).await;
    let checks_before = counter.checks.load(Ordering::Relaxed);
    let failed_before = counter.failed.load(Ordering::Relaxed);
    let writer_before = history.and_then(|_| writer_cpu());
    let cpu_before = process_cpu();
    let window_start = Instant::now();
    tokio::time::sleep(options.window).await;
    let window = window_start.elapsed();
    let cpu_after = process_cpu();
    let writer_after = history.and_then(|_| writer_cpu());
    let checks = counter.checks.load(Ordering::Relaxed) - checks_before;
    let failed = counter.failed.load(Ordering::Relaxed) - failed_before;
    let lateness_after = Lateness::read(&metrics).await;
    let rss_kib = report::rss_kib();
    drop(metrics);
    runtime.shutdown().await;
    drop(runtime);

    let cpu = match (cpu_before, cpu_after) {
        (Some(a), Some(b)) => b.saturating_sub(a),
        _ => Duration::ZERO,
    };
    Ok(Phase {
        registered_in,
        window,
        checks,
        failed,
        first_failure: counter.first_failure.get().cloned(),
        cpu,
        writer: writer_after
            .zip(writer_before)
            .map(|(b, a)| b.saturating_sub(a)),
        lateness: lateness_after
            .zip(lateness_before)
            .map(|(b, a)| b.since(&a)),
        rss_kib,
    })
}

/// Registers the connectors concurrently; each one's schedule starts as it
/// is registered.
async fn register(runtime: &Runtime, targets: &Targets, options: &Options) -> anyhow::Result<()> {
    let interval_ms = options.interval.as_millis();
    let timeout_ms = timeout(options.interval).as_millis();
    crate::check_all::register_all(
        runtime,
        (0..options.connectors).map(|i| {
            format!(
                "{{id: c{i:05}, component: http, host: 127.0.0.1, port: {}, health_check: {{path: /-/healthy, interval: {interval_ms}ms, timeout: {timeout_ms}ms}}}}",
                targets.port(i)
            )
        }),
    )
    .await
}

/// CPU time of every thread of this process so far, those that ended too
/// (exact, unlike the 10 ms ticks of `/proc/self/stat`).
fn process_cpu() -> Option<Duration> {
    #[cfg(target_os = "linux")]
    {
        let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
        Some(Duration::new(
            u64::try_from(t.tv_sec).ok()?,
            u32::try_from(t.tv_nsec).ok()?,
        ))
    }
    #[cfg(not(target_os = "linux"))]
    {
        report::cpu_time(None)
    }
}

/// CPU time of the history's writer thread so far (its name, as
/// `sandport-history` gives it, in `/proc/self/task/*/comm`).
fn writer_cpu() -> Option<Duration> {
    report::threads_cpu(None)
        .into_values()
        .find(|(name, _)| name == "history-writer")
        .map(|(_, ns)| Duration::from_nanos(ns))
}

/// The store after phase (b).
struct Store {
    written: u64,
    dropped: u64,
    /// The database file after closing (the log folded in).
    bytes: u64,
    /// Seconds of schedule the points cover: points / connectors × interval.
    covered: f64,
    per_day: f64,
}

async fn open(path: &Path) -> anyhow::Result<History> {
    let options = HistoryOptions::new(path);
    tokio::task::spawn_blocking(move || History::open(options))
        .await
        .context("the task opening the history failed")?
        .context("open the history")
}

/// Flushes and closes the history (its runtime is already shut down, so
/// nothing more is recorded) and works out the size per connector per day.
async fn store(history: &History, connectors: usize, interval: f64) -> anyhow::Result<Store> {
    let queued = history.stats().queued;
    let started = Instant::now();
    let flushing = history.clone();
    tokio::task::spawn_blocking(move || flushing.flush())
        .await
        .context("the flushing task failed")?
        .context("flush the history")?;
    let flushed_in = started.elapsed();
    let before_close = history.stats();
    let closing = history.clone();
    tokio::task::spawn_blocking(move || closing.close())
        .await
        .context("the closing task failed")?;
    let bytes = file_bytes(history.path());
    let written = before_close.written;
    let covered = written as f64 / connectors as f64 * interval;
    let per_day = bytes as f64 / connectors as f64 * SECONDS_PER_DAY / covered.max(1.0);
    println!(
        "history: {} points queued when the checks stopped, flushed in {}; {} written, {} dropped, {} write errors; file + log {} bytes before closing, file {} bytes after (closing folds the log in): {:.1} bytes per point",
        thousands(queued),
        human(flushed_in),
        thousands(written),
        thousands(before_close.dropped),
        before_close.write_errors,
        thousands(before_close.file_bytes),
        thousands(bytes),
        bytes as f64 / written.max(1) as f64
    );
    println!(
        "store per connector per day: {} bytes / {} connectors × 86,400 s / {covered:.0} s = {} bytes ({:.1} KiB), where {covered:.0} s = {} points written / {} connectors × {interval:.0} s interval, the stretch of schedule the points cover; the file also holds each connector's one-off rows (id, first message, hour and day tallies), which a short run does not amortise",
        thousands(bytes),
        thousands(connectors as u64),
        thousands(per_day.round() as u64),
        per_day / 1024.0,
        thousands(written),
        thousands(connectors as u64),
    );
    Ok(Store {
        written,
        dropped: before_close.dropped,
        bytes,
        covered,
        per_day,
    })
}

/// The database file and its log, whichever exist.
fn file_bytes(path: &Path) -> u64 {
    let size = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    size(path) + size(Path::new(&wal))
}
