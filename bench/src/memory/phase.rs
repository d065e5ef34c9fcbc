//! The phases of part 4, each run in a child process of its own (so that
//! one phase's freed but kept memory does not show in the next):
//!
//! - `checked`: the scheduler off; N connectors registered (idle: started,
//!   never checked), then one `check_all` (right after a check);
//! - `steady`: the scheduler on; N connectors registered and left to run
//!   on their interval, sampled through the last of several intervals.
//!
//! A phase prints what it sees as it goes and ends with one [`Point`] on a
//! line of its own, which the parent collects.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use sandport_core::{CheckObserver, Checked, HealthStatus, Observers, Runtime, RuntimeOptions};
use serde::{Deserialize, Serialize};

use crate::report::{self, human, thousands};
use crate::targets::{Targets, table};

/// Marks the line that carries a phase's [`Point`].
pub const POINT_PREFIX: &str = "@memory-point ";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
pub enum Phase {
    Checked,
    Steady,
}

/// What one phase measured, in KiB of RSS.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Point {
    pub connectors: usize,
    /// The runtime alone.
    pub zero: u64,
    /// `checked`: every connector started, none checked yet.
    pub idle: u64,
    /// `checked`: after one `check_all`; `steady`: the highest sample of
    /// the last interval.
    pub loaded: u64,
    /// How many of the last round of checks were healthy, of how many.
    pub healthy: u64,
    pub checks: u64,
    /// `checked`, when asked: CPU of one `/metrics` scrape (ms) and its size.
    pub scrape_ms: Option<f64>,
    pub scrape_kib: u64,
}

pub struct PhaseOptions {
    pub phase: Phase,
    pub connectors: usize,
    pub component: String,
    pub servers: usize,
    pub interval: Duration,
    pub intervals: u32,
    pub scrape: bool,
}

pub async fn run(options: &PhaseOptions) -> anyhow::Result<Point> {
    let needed = (options.connectors + 2_048) as u64;
    sandport_core::limits::raise_fd_limit();
    if let Some(limit) = report::open_files_limit()
        && limit < needed
    {
        bail!(
            "the open-files limit is {limit}, but {} connectors need about {needed}: raise it (`ulimit -n {}`) and run again",
            options.connectors,
            needed.next_power_of_two()
        );
    }
    let builtin = table::find(&options.component).unwrap_or(&table::COMPONENT_FILE);
    let targets = Targets::for_builtin(builtin, options.servers)
        .with_context(|| format!("start the targets of `{}`", options.component))?;
    println!("  targets: {}", targets.about);
    let point = match options.phase {
        Phase::Checked => checked(options, &targets).await?,
        Phase::Steady => steady(options, &targets).await?,
    };
    println!("{POINT_PREFIX}{}", serde_json::to_string(&point)?);
    Ok(point)
}

/// Scheduler off: idle, then right after one `check_all`.
async fn checked(options: &PhaseOptions, targets: &Targets) -> anyhow::Result<Point> {
    let n = options.connectors;
    let runtime = crate::unscheduled_runtime()?;
    let zero = report::rss_kib();
    let heap_zero = report::malloc_in_use();
    let maps_zero = report::mappings();
    let started = Instant::now();
    register(&runtime, options, targets, n).await?;
    let idle = report::rss_kib();
    println!(
        "  {} idle connectors: RSS {} KiB over the runtime alone's {} KiB ({:.1} KiB per connector), {:.1} mappings per connector; registering took {}",
        thousands(n as u64),
        thousands(idle.saturating_sub(zero)),
        thousands(zero),
        per(idle.saturating_sub(zero), n),
        report::mappings().saturating_sub(maps_zero) as f64 / n as f64,
        human(started.elapsed())
    );
    print_heap(heap_zero, n);
    print_breakdown();
    let linear = runtime
        .memory_used("c00000")
        .await
        .context("memory of c00000")?
        .unwrap_or(0);
    println!(
        "  linear memory one instance holds (Runtime::memory_used): {} KiB",
        thousands(linear / 1024)
    );

    let results = runtime.check_all(None).await;
    let healthy = results
        .iter()
        .filter(|(_, h)| h.status == HealthStatus::Healthy)
        .count();
    let loaded = report::rss_kib();
    // A figure for connectors whose checks fail is not the memory of the
    // service an operator runs.
    if let Some((id, h)) = results
        .iter()
        .find(|(_, h)| h.status != HealthStatus::Healthy)
    {
        bail!(
            "`{}`: {} of {} checks of one check_all were not healthy, e.g. {id}: {} {}",
            options.component,
            results.len() - healthy,
            results.len(),
            h.status,
            h.message
        );
    }
    println!(
        "  after one check_all ({healthy}/{} healthy): RSS {} KiB over the runtime alone ({:.1} KiB per connector)",
        results.len(),
        thousands(loaded.saturating_sub(zero)),
        per(loaded.saturating_sub(zero), n)
    );
    print_heap(heap_zero, n);
    print_breakdown();
    let mut point = Point {
        connectors: n,
        zero,
        idle,
        loaded,
        healthy: healthy as u64,
        checks: results.len() as u64,
        ..Point::default()
    };
    if options.scrape {
        let (ms, kib) = scrape_cost(&runtime)?;
        println!(
            "  one /metrics scrape with {} checked connectors: {ms:.1} ms of CPU (median of 5), {} KiB of text",
            thousands(n as u64),
            thousands(kib)
        );
        point.scrape_ms = Some(ms);
        point.scrape_kib = kib;
    }
    runtime.shutdown().await;
    Ok(point)
}

/// Scheduler on: registered, then left to run for `intervals` intervals;
/// RSS sampled every second through the last one.
async fn steady(options: &PhaseOptions, targets: &Targets) -> anyhow::Result<Point> {
    let n = options.connectors;
    let counter = Arc::new(Counter::default());
    let runtime = Runtime::new(RuntimeOptions {
        schedule: true,
        cache_dir: None,
        observers: Observers::new(vec![counter.clone()]),
        ..RuntimeOptions::default()
    })
    .context("create the runtime")?;
    let zero = report::rss_kib();
    let heap_zero = report::malloc_in_use();
    let started = Instant::now();
    register(&runtime, options, targets, n).await?;
    let registered = Instant::now();
    println!(
        "  {} connectors registered in {}, checked every {}; waiting {} intervals",
        thousands(n as u64),
        human(registered - started),
        human(options.interval),
        options.intervals
    );
    let last = registered + options.interval * options.intervals.saturating_sub(1);
    tokio::time::sleep_until(last.into()).await;
    let (checks_before, failed_before) = counter.read();
    let end = last + options.interval;
    let mut highest = 0;
    while Instant::now() < end {
        highest = highest.max(report::rss_kib());
        tokio::time::sleep(Duration::from_secs(1).min(end - Instant::now())).await;
    }
    highest = highest.max(report::rss_kib());
    let (checks_after, failed_after) = counter.read();
    let checks = checks_after - checks_before;
    let failed = failed_after - failed_before;
    println!(
        "  the last interval: {} checks ({:.0}% of the connectors), {} not healthy; RSS at most {} KiB over the runtime alone's {} KiB ({:.1} KiB per connector)",
        thousands(checks),
        checks as f64 * 100.0 / n as f64,
        thousands(failed),
        thousands(highest.saturating_sub(zero)),
        thousands(zero),
        per(highest.saturating_sub(zero), n)
    );
    if let Some(failure) = counter.first_failure.get() {
        println!(
            "  NOT HEALTHY: {} scheduled checks of `{}` since the first ({} in the last interval), e.g. {failure}",
            thousands(failed_after),
            options.component,
            thousands(failed),
        );
    }
    print_heap(heap_zero, n);
    print_breakdown();
    runtime.shutdown().await;
    Ok(Point {
        connectors: n,
        zero,
        idle: 0,
        loaded: highest,
        healthy: checks - failed,
        checks,
        ..Point::default()
    })
}

/// Registers connectors `c00000..` of `options.component`, spread over the
/// target servers, concurrently.
async fn register(
    runtime: &Runtime,
    options: &PhaseOptions,
    targets: &Targets,
    n: usize,
) -> anyhow::Result<()> {
    // What the built-in's entry needs (`targets::table`).
    let builtin = table::find(&options.component).unwrap_or(&table::COMPONENT_FILE);
    let timeout = options.interval.min(check_timeout(builtin.serves));
    let path = builtin
        .path
        .map(|p| format!(", path: {p}"))
        .unwrap_or_default();
    let extra = if builtin.extra.is_empty() {
        String::new()
    } else {
        format!(", {}", builtin.extra)
    };
    crate::check_all::register_all(
        runtime,
        (0..n).map(|i| {
            format!(
                "{{id: c{i:05}, component: {}, host: 127.0.0.1, port: {}, health_check: {{interval: {}ms, timeout: {}ms{path}}}{extra}}}",
                options.component,
                targets.port(i),
                options.interval.as_millis(),
                timeout.as_millis(),
            )
        }),
    )
    .await
}

/// The checks' timeout: the default (5 s), or 15 s against a real server,
/// which alone answers every connector (10,000 logins in one `check_all`
/// queue at one RabbitMQ for longer than 5 s; a node's connectors each
/// have a server of their own).
pub fn check_timeout(serves: table::Serves) -> Duration {
    if serves.is_loopback_fake() {
        Duration::from_secs(5)
    } else {
        Duration::from_secs(15)
    }
}

/// Counts the checks the scheduler runs, and those not healthy.
#[derive(Default)]
struct Counter {
    checks: AtomicU64,
    failed: AtomicU64,
    first_failure: std::sync::OnceLock<String>,
}

impl Counter {
    fn read(&self) -> (u64, u64) {
        (
            self.checks.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        )
    }
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

fn per(kib: u64, connectors: usize) -> f64 {
    kib as f64 / connectors.max(1) as f64
}

/// The CPU time of writing `/metrics` (the thread's own, median of 5) with
/// every connector registered and checked: what a Prometheus scrape costs
/// the service. Milliseconds, and the text's KiB.
fn scrape_cost(runtime: &Runtime) -> anyhow::Result<(f64, u64)> {
    let metrics = sandport_server::metrics::Metrics::new(runtime.collector(), Vec::new());
    let mut times = Vec::new();
    let mut size = 0;
    for _ in 0..5 {
        let started = report::thread_cpu();
        let (_, text) = metrics
            .render(false)
            .map_err(|e| anyhow::anyhow!("writing the metrics failed: {e}"))?;
        times.push(report::thread_cpu().saturating_sub(started));
        size = text.len();
    }
    times.sort_unstable();
    let median = times[times.len() / 2].as_secs_f64() * 1000.0;
    Ok((median, (size / 1024) as u64))
}

/// The host heap in use per connector (what the allocator handed out, not
/// what it keeps): the part of the RSS that is the runtime's own data.
fn print_heap(zero: Option<u64>, connectors: usize) {
    if let (Some(zero), Some(now)) = (zero, report::malloc_in_use()) {
        println!(
            "    host heap in use: {:.1} KiB per connector (malloc)",
            now.saturating_sub(zero) as f64 / 1024.0 / connectors.max(1) as f64
        );
    }
}

/// Where the resident memory is, by kind of mapping.
fn print_breakdown() {
    for (kind, count, kib) in report::rss_by_mapping().iter().take(8) {
        println!(
            "    {:>9} KiB in {:>6} mappings: {kind}",
            thousands(*kib),
            thousands(*count as u64)
        );
    }
}
