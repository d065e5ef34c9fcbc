//! Part 6, gRPC under load: `sandport serve` (release) with 100 `http`
//! connectors on loopback targets, scheduled as usual, and a tonic load
//! generator in this process, limited to one thread so that the service
//! keeps the other core.
//!
//! - Open loop: requests start at a fixed rate whatever the answers do,
//!   evenly spaced (a timer in the generator's event loop starts each at
//!   its due time), over a few HTTP/2 connections; each request's latency
//!   runs from its due time to its answer. `HealthCheck{cached: true}`
//!   (ids in turn) and `ListConnectors`, each after a one-second warm-up
//!   at the same rate.
//! - Closed loop: C workers send one request after another as fast as the
//!   answers come: the throughput ceiling on this machine.
//!
//! The service's CPU time over each phase (from `/proc/PID/stat`) is
//! reported per request.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use sandport_server::grpc::pb;

use crate::report::{self, Row, human};
use crate::serve::{self, Serve, TempDir};
use crate::targets::Targets;

mod load;

use load::{Call, Phase, closed_loop, open_loop};

pub struct Options {
    pub connectors: usize,
    pub rate: f64,
    pub list_rate: f64,
    pub seconds: f64,
    pub connections: usize,
    pub concurrency: usize,
    pub sandport: Option<PathBuf>,
    /// Then the cached HealthCheck again, against a service whose scheduler
    /// checks this many connectors (0: skip).
    pub busy: usize,
    /// Their check interval.
    pub busy_interval: Duration,
}

/// Target: p99 of a cached HealthCheck at 5,000 req/s.
const TARGET_P99: Duration = Duration::from_millis(1);

pub async fn run(options: &Options) -> anyhow::Result<Vec<Row>> {
    let binary = serve::binary(options.sandport.as_deref())?;
    let length = Duration::from_secs_f64(options.seconds);
    println!(
        "method: `sandport serve` with {} `http` connectors (scheduled, 30 s interval) on loopback targets; load generator: this process, one thread, {} HTTP/2 connections; open loop, evenly spaced, latency from each request's due time, {:.0} req/s (HealthCheck cached) and {:.0} req/s (ListConnectors) for {:.0} s each after 1 s warm-up; closed loop {} concurrent workers for {:.0} s each",
        options.connectors,
        options.connections,
        options.rate,
        options.list_rate,
        options.seconds,
        options.concurrency,
        options.seconds / 2.0
    );
    let targets = Targets::spawn(8)?;
    let dir = TempDir::new("grpc")?;
    let config = serve::write_config(dir.path(), options.connectors, &["http"], &targets, None)?;
    let cache = TempDir::new("cache")?;
    let mut service = Serve::spawn(&binary, &config, cache.path())?;
    let ready = service
        .wait_listed(options.connectors, Instant::now(), Duration::from_secs(120))
        .await?;
    println!("service ready in {}", human(ready));
    wait_healthy(&service, options.connectors, Duration::from_secs(10)).await?;
    let mut clients = Vec::new();
    for _ in 0..options.connections.max(1) {
        clients.push(service.client().await?);
    }
    let pid = service.pid();
    let n = options.connectors;
    let warmup = Duration::from_secs(1);

    open_loop(&clients, Call::HealthCached, options.rate, warmup, n, pid).await?;
    let health = open_loop(&clients, Call::HealthCached, options.rate, length, n, pid).await?;
    println!(
        "open loop, {} at {:.0} req/s: {}",
        Call::HealthCached.name(),
        options.rate,
        health.describe()
    );
    open_loop(&clients, Call::List, options.list_rate, warmup, n, pid).await?;
    let list = open_loop(&clients, Call::List, options.list_rate, length, n, pid).await?;
    println!(
        "open loop, {} at {:.0} req/s: {}",
        Call::List.name(),
        options.list_rate,
        list.describe()
    );
    let half = length / 2;
    let health_max = closed_loop(
        &clients,
        Call::HealthCached,
        options.concurrency,
        half,
        n,
        pid,
    )
    .await?;
    println!(
        "closed loop, {}, {} workers: {}",
        Call::HealthCached.name(),
        options.concurrency,
        health_max.describe()
    );
    let list_max = closed_loop(&clients, Call::List, options.concurrency, half, n, pid).await?;
    println!(
        "closed loop, {}, {} workers: {}",
        Call::List.name(),
        options.concurrency,
        list_max.describe()
    );
    for phase in [&health, &list, &health_max, &list_max] {
        if let Some(error) = &phase.first_error {
            println!("an error: {error}");
        }
    }
    let service_rss = report::status_kib(Some(pid), "VmHWM");
    service.stop(clients).await;
    if let Some(kib) = service_rss {
        println!("service peak RSS: {} KiB", report::thousands(kib));
    }
    let busy = if options.busy > 0 {
        Some(busy_phase(options, &binary, &targets).await?)
    } else {
        None
    };

    let achieved_ok = health.rate() >= options.rate * 0.98;
    let busy_rows = busy.map(|(phase, on_time)| {
        vec![
            Row::info(
                6,
                format!(
                    "gRPC HealthCheck (cached), open loop {:.0} req/s, while the scheduler checks {} connectors every {}: p50 / p99 / max",
                    options.rate,
                    report::thousands(options.busy as u64),
                    human(options.busy_interval)
                ),
                phase.latency_cell(false),
            ),
            Row::info(
                6,
                "the same: scheduled checks on time (last check younger than two intervals)",
                format!(
                    "{} of {}; service CPU {:.0}% of a core",
                    report::thousands(on_time as u64),
                    report::thousands(options.busy as u64),
                    phase.cpu_percent()
                ),
            ),
        ]
    });
    let mut rows = vec![
        Row::target(
            6,
            format!(
                "gRPC HealthCheck (cached), open loop {:.0} req/s: p50 / **p99** / max",
                options.rate
            ),
            health.latency_cell(true),
            "p99 ≤ 1 ms at 5,000 req/s",
            health.latencies.p99() <= TARGET_P99 && health.errors == 0 && achieved_ok,
        ),
        Row::info(
            6,
            format!(
                "gRPC ListConnectors ({n} connectors), open loop {:.0} req/s: p50 / p99 / max",
                options.list_rate
            ),
            list.latency_cell(false),
        ),
        Row::info(
            6,
            format!(
                "gRPC throughput, closed loop, {} workers: HealthCheck (cached) / ListConnectors",
                options.concurrency
            ),
            format!(
                "{:.0} / {:.0} req/s (p99 {} / {})",
                health_max.rate(),
                list_max.rate(),
                human(health_max.latencies.p99()),
                human(list_max.latencies.p99())
            ),
        ),
        Row::info(
            6,
            "service CPU per request: HealthCheck (cached) / ListConnectors",
            format!(
                "{} / {}",
                human(health.server_cpu / (health.latencies.len() + health.errors).max(1) as u32),
                human(list.server_cpu / (list.latencies.len() + list.errors).max(1) as u32)
            ),
        ),
    ];
    rows.extend(busy_rows.into_iter().flatten());
    Ok(rows)
}

/// Waits until all `count` connectors of `service` are healthy (their first
/// scheduled checks are spread over the first seconds), so that cached
/// answers are real results.
pub(crate) async fn wait_healthy(
    service: &Serve,
    count: usize,
    within: Duration,
) -> anyhow::Result<()> {
    let mut client = service.client().await?;
    let deadline = Instant::now() + within;
    loop {
        let list = client
            .list_connectors(pb::ListConnectorsRequest::default())
            .await
            .context("ListConnectors")?;
        let healthy = list
            .get_ref()
            .connectors
            .iter()
            .filter(|c| c.status() == pb::ConnectorStatus::Healthy)
            .count();
        if healthy == count {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "only {healthy} of {count} connectors became healthy:\n{}",
                service.log_tail()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The cached HealthCheck at the open-loop rate against a service whose
/// scheduler is checking `options.busy` connectors every
/// `options.busy_interval`: does checking starve the API? Returns the phase
/// and how many connectors were checked on time.
async fn busy_phase(
    options: &Options,
    binary: &std::path::Path,
    targets: &Targets,
) -> anyhow::Result<(Phase, usize)> {
    let every = format!("{}ms", options.busy_interval.as_millis());
    let dir = TempDir::new("grpc-busy")?;
    let config = serve::write_config(
        dir.path(),
        options.busy,
        &["http"],
        targets,
        // A check must end before the next one starts.
        Some(&format!("interval: {every}, timeout: {every}")),
    )?;
    let cache = TempDir::new("cache-busy")?;
    let mut service = Serve::spawn(binary, &config, cache.path())?;
    service
        .wait_listed(options.busy, Instant::now(), Duration::from_secs(180))
        .await?;
    wait_healthy(&service, options.busy, Duration::from_secs(60)).await?;
    let mut clients = Vec::new();
    for _ in 0..options.connections.max(1) {
        clients.push(service.client().await?);
    }
    let (pid, n) = (service.pid(), options.busy);
    let length = Duration::from_secs_f64(options.seconds);
    open_loop(
        &clients,
        Call::HealthCached,
        options.rate,
        Duration::from_secs(1),
        n,
        pid,
    )
    .await?;
    let phase = open_loop(&clients, Call::HealthCached, options.rate, length, n, pid).await?;
    let list = clients[0]
        .clone()
        .list_connectors(pb::ListConnectorsRequest::default())
        .await
        .context("ListConnectors")?;
    let now = std::time::SystemTime::now();
    let on_time = list
        .get_ref()
        .connectors
        .iter()
        .filter_map(|c| c.last_checked.as_ref())
        .filter_map(|t| {
            let at = std::time::UNIX_EPOCH
                + Duration::new(u64::try_from(t.seconds).ok()?, u32::try_from(t.nanos).ok()?);
            now.duration_since(at).ok()
        })
        .filter(|age| *age <= options.busy_interval * 2)
        .count();
    println!(
        "open loop, {} at {:.0} req/s while the scheduler checks {} connectors every {every}: {}; {on_time} of {n} connectors checked within two intervals",
        Call::HealthCached.name(),
        options.rate,
        n,
        phase.describe()
    );
    if let Some(error) = &phase.first_error {
        println!("an error: {error}");
    }
    service.stop(clients).await;
    Ok((phase, on_time))
}
