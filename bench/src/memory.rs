//! Part 4, memory: the process's RSS (VmRSS) with the runtime created and no
//! connector, then with 1,000 and 10,000 idle connectors (registered and
//! initialised, never checked), then after one `check_all` (touched: every
//! instance ran a check, every connector holds a pooled connection). KiB per
//! connector are the differences divided by the connectors added; the
//! 1,000 → 10,000 step leaves out the one-off cost of compiling the
//! component.

use anyhow::{Context, ensure};
use sandport_core::HealthStatus;

use crate::check_all::register_range;
use crate::report::{self, Row, human, thousands};
use crate::targets::Targets;

pub struct Options {
    pub connectors: Vec<usize>,
    pub component: String,
    pub servers: usize,
}

/// Target: KiB of RSS per idle connector.
const TARGET_KIB: f64 = 50.0;

pub async fn run(options: &Options) -> anyhow::Result<Vec<Row>> {
    let mut counts = options.connectors.clone();
    counts.sort_unstable();
    counts.dedup();
    ensure!(!counts.is_empty(), "no connector counts given");
    println!(
        "method: VmRSS of this process; `{}` connectors (ids c00000..) pointed at {} loopback target servers (child process), registered concurrently up to {} in turn, then one check_all",
        options.component,
        options.servers,
        counts
            .iter()
            .map(|n| thousands(*n as u64))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let targets = Targets::spawn(options.servers)?;
    let runtime = crate::unscheduled_runtime()?;
    let rss_zero = report::rss_kib();
    let maps_zero = report::mappings();
    let heap_zero = report::malloc_in_use();
    println!(
        "0 connectors: RSS {} KiB, {} mappings",
        thousands(rss_zero),
        thousands(maps_zero as u64)
    );

    let mut points = vec![(0usize, rss_zero)];
    let mut registered = 0;
    for &n in &counts {
        let started = std::time::Instant::now();
        register_range(&runtime, &options.component, &targets, registered..n).await?;
        let took = started.elapsed();
        registered = n;
        let rss = report::rss_kib();
        let maps = report::mappings();
        println!(
            "{} idle connectors: RSS {} KiB ({:.1} KiB per connector over the runtime alone), {} mappings ({:.1} per connector); registering took {}",
            thousands(n as u64),
            thousands(rss),
            rss.saturating_sub(rss_zero) as f64 / n as f64,
            thousands(maps as u64),
            maps.saturating_sub(maps_zero) as f64 / n as f64,
            human(took)
        );
        print_heap(heap_zero, n);
        points.push((n, rss));
    }
    print_breakdown();
    let linear = runtime
        .memory_used("c00000")
        .await
        .context("memory of c00000")?
        .unwrap_or(0);
    println!(
        "linear memory one instance holds (Runtime::memory_used): {} KiB",
        thousands(linear / 1024)
    );

    let results = runtime.check_all(None).await;
    let healthy = results
        .iter()
        .filter(|(_, h)| h.status == HealthStatus::Healthy)
        .count();
    let rss_touched = report::rss_kib();
    let touched_per = rss_touched.saturating_sub(rss_zero) as f64 / registered as f64;
    println!(
        "after one check_all ({healthy}/{} healthy): RSS {} KiB ({touched_per:.1} KiB per connector), {} mappings",
        results.len(),
        thousands(rss_touched),
        thousands(report::mappings() as u64)
    );
    print_heap(heap_zero, registered);
    print_breakdown();
    let scrape = scrape_cost(&runtime, registered)?;
    runtime.shutdown().await;

    let mut rows = vec![Row::info(
        4,
        format!(
            "RSS with {} idle `{}` connectors",
            points
                .iter()
                .map(|(n, _)| thousands(*n as u64))
                .collect::<Vec<_>>()
                .join(" / "),
            options.component
        ),
        points
            .iter()
            .map(|(_, kib)| format!("{} MiB", kib / 1024))
            .collect::<Vec<_>>()
            .join(" / "),
    )];
    if let [.., (n1, rss1), (n2, rss2)] = points[..] {
        let marginal = rss2.saturating_sub(rss1) as f64 / (n2 - n1) as f64;
        println!(
            "KiB per idle connector: {marginal:.1} (from {} to {} connectors)",
            thousands(n1 as u64),
            thousands(n2 as u64)
        );
        rows.push(Row::target(
            4,
            format!(
                "RSS per idle `{}` connector ({} → {})",
                options.component,
                thousands(n1 as u64),
                thousands(n2 as u64)
            ),
            format!("**{marginal:.1} KiB**"),
            "≤ 50 KiB",
            marginal <= TARGET_KIB,
        ));
    }
    if let Some(&(n, rss)) = points.get(1) {
        rows.push(Row::info(
            4,
            format!(
                "RSS per idle `{}` connector (0 → {}, incl. compiling the component)",
                options.component,
                thousands(n as u64)
            ),
            format!("{:.1} KiB", rss.saturating_sub(rss_zero) as f64 / n as f64),
        ));
    }
    rows.push(Row::info(
        4,
        format!(
            "RSS per `{}` connector after one check_all ({})",
            options.component,
            thousands(registered as u64)
        ),
        format!(
            "{touched_per:.1} KiB{}",
            if healthy == results.len() {
                String::new()
            } else {
                format!(" ({healthy}/{} healthy)", results.len())
            }
        ),
    ));
    rows.push(scrape);
    Ok(rows)
}

/// Target: CPU one `/metrics` scrape takes with 10,000 connectors.
const SCRAPE_TARGET_MS: f64 = 100.0;

/// The CPU time of writing `/metrics` (the thread's own, median of 5) with
/// every connector registered and checked: what a Prometheus scrape costs
/// the service.
fn scrape_cost(runtime: &sandport_core::Runtime, connectors: usize) -> anyhow::Result<Row> {
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
    println!(
        "one /metrics scrape with {} checked connectors: {median:.1} ms of CPU (median of 5), {} KiB of text",
        thousands(connectors as u64),
        thousands((size / 1024) as u64)
    );
    Ok(Row::target(
        4,
        format!(
            "CPU of one /metrics scrape, {} connectors",
            thousands(connectors as u64)
        ),
        format!("**{median:.1} ms**"),
        "< 100 ms",
        median < SCRAPE_TARGET_MS,
    ))
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
