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
use sandport_server::grpc::pb::connectors_service_client::ConnectorsServiceClient;
use tonic::transport::Channel;

use crate::report::{self, Row, Stats, human, per_second};
use crate::serve::{self, Serve, TempDir};
use crate::targets::Targets;

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

#[derive(Clone, Copy, Debug)]
enum Call {
    HealthCached,
    List,
}

impl Call {
    fn name(self) -> &'static str {
        match self {
            Call::HealthCached => "HealthCheck{cached: true}",
            Call::List => "ListConnectors",
        }
    }
}

/// The outcome of one phase.
struct Phase {
    latencies: Stats,
    errors: usize,
    first_error: Option<String>,
    elapsed: Duration,
    server_cpu: Duration,
    generator_cpu: Duration,
    /// Open loop: how late the pacer started each request.
    pacing: Option<Stats>,
}

impl Phase {
    fn rate(&self) -> f64 {
        per_second(self.latencies.len() + self.errors, self.elapsed)
    }

    /// The service's CPU time over the phase, as a percentage of one core.
    fn cpu_percent(&self) -> f64 {
        100.0 * self.server_cpu.as_secs_f64() / self.elapsed.as_secs_f64()
    }

    /// `p50 / p99 / max (achieved R req/s[, N errors])` for the table;
    /// `bold_p99` marks the figure a target applies to.
    fn latency_cell(&self, bold_p99: bool) -> String {
        let p99 = human(self.latencies.p99());
        let errors = if self.errors == 0 {
            String::new()
        } else {
            format!(", {} errors", self.errors)
        };
        format!(
            "{} / {} / {} (achieved {:.0} req/s{errors})",
            human(self.latencies.median()),
            if bold_p99 { format!("**{p99}**") } else { p99 },
            human(self.latencies.max()),
            self.rate(),
        )
    }

    fn describe(&self) -> String {
        format!(
            "{} requests, {} errors, achieved {:.0} req/s; latency p50 {} p99 {} max {}; service CPU {:.0}% of a core ({} per request), generator CPU {:.0}%",
            self.latencies.len(),
            self.errors,
            self.rate(),
            human(self.latencies.median()),
            human(self.latencies.p99()),
            human(self.latencies.max()),
            self.cpu_percent(),
            human(self.server_cpu / (self.latencies.len() + self.errors).max(1) as u32),
            100.0 * self.generator_cpu.as_secs_f64() / self.elapsed.as_secs_f64(),
        ) + &self.pacing.as_ref().map_or(String::new(), |late| {
            format!(
                "; requests started late by p50 {} p99 {} (counted in the latency)",
                human(late.median()),
                human(late.p99())
            )
        })
    }
}

async fn call(
    client: &mut ConnectorsServiceClient<Channel>,
    kind: Call,
    i: usize,
    connectors: usize,
) -> Result<(), String> {
    match kind {
        Call::HealthCached => {
            let response = client
                .health_check(pb::HealthCheckRequest {
                    id: format!("c{:05}", i % connectors),
                    cached: true,
                })
                .await
                .map_err(|s| s.to_string())?;
            if response.get_ref().id.is_empty() {
                return Err("empty answer".into());
            }
        }
        Call::List => {
            let response = client
                .list_connectors(pb::ListConnectorsRequest::default())
                .await
                .map_err(|s| s.to_string())?;
            if response.get_ref().connectors.len() != connectors {
                return Err(format!(
                    "listed {} connectors",
                    response.get_ref().connectors.len()
                ));
            }
        }
    }
    Ok(())
}

/// Starts request `i` at `started + i / rate` for `length`: evenly spaced,
/// as constant-rate generators (wrk2) do. Each latency runs from that
/// intended start, not from when the request actually left, so a generator
/// or a service that falls behind shows in the figures instead of hiding
/// (no coordinated omission).
///
/// tokio's timer ticks in milliseconds, too coarse for 5,000 starts a
/// second (it sent bursts of five), so a [`Pacer`] wakes the generator's
/// own thread at each due time: starting a request wakes no other thread.
async fn open_loop(
    clients: &[ConnectorsServiceClient<Channel>],
    kind: Call,
    rate: f64,
    length: Duration,
    connectors: usize,
    pid: u32,
) -> anyhow::Result<Phase> {
    let total = (length.as_secs_f64() * rate) as usize;
    let (done, mut answers) = tokio::sync::mpsc::unbounded_channel();
    let mut pacer = Pacer::new().context("create the pacing timer")?;
    let mut lateness = Vec::with_capacity(total);
    let cpu_before = (report::cpu_time(Some(pid)), report::cpu_time(None));
    let started = Instant::now();
    for i in 0..total {
        let due = started + Duration::from_secs_f64(i as f64 / rate);
        pacer
            .sleep_until(due)
            .await
            .context("wait for the next start")?;
        lateness.push(due.elapsed());
        let mut client = clients[i % clients.len()].clone();
        let done = done.clone();
        // Detached: a finished request leaves nothing behind but its outcome.
        tokio::spawn(async move {
            let result = call(&mut client, kind, i, connectors).await;
            let _ = done.send(result.map(|()| due.elapsed()));
        });
    }
    drop(done);
    let mut outcomes = Vec::with_capacity(total);
    while let Some(outcome) = answers.recv().await {
        outcomes.push(outcome);
    }
    if outcomes.len() != total {
        bail!(
            "{} of {total} requests ended without an outcome (a request task panicked)",
            total - outcomes.len()
        );
    }
    let elapsed = started.elapsed();
    let cpu_after = (report::cpu_time(Some(pid)), report::cpu_time(None));
    Ok(Phase {
        pacing: Some(Stats::new(lateness)),
        ..phase(outcomes, elapsed, cpu_before, cpu_after)
    })
}

/// Sleeps until a due time with microsecond precision, on the calling
/// task's own thread: a `timerfd` (an hrtimer, which no timer slack
/// delays) registered with tokio's reactor.
#[cfg(target_os = "linux")]
struct Pacer {
    timer: tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>,
}

#[cfg(target_os = "linux")]
impl Pacer {
    fn new() -> std::io::Result<Self> {
        use rustix::time::{TimerfdClockId, TimerfdFlags, timerfd_create};
        let fd = timerfd_create(
            TimerfdClockId::Monotonic,
            TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC,
        )?;
        // SAFETY: the AsyncFd owns the OwnedFd, which keeps that one
        // descriptor open for as long as it is registered.
        let timer = unsafe {
            tokio::io::unix::AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE)
        }?;
        Ok(Pacer { timer })
    }

    async fn sleep_until(&mut self, due: Instant) -> std::io::Result<()> {
        use rustix::time::{Itimerspec, TimerfdTimerFlags, Timespec, timerfd_settime};
        let Some(wait) = due.checked_duration_since(Instant::now()) else {
            return Ok(());
        };
        let zero = Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        let spec = Itimerspec {
            it_interval: zero,
            // A zero it_value would disarm the timer instead of firing it.
            it_value: Timespec {
                tv_sec: wait.as_secs().try_into().unwrap_or(i64::MAX),
                tv_nsec: wait.subsec_nanos().max(1).into(),
            },
        };
        timerfd_settime(self.timer.get_ref(), TimerfdTimerFlags::empty(), &spec)?;
        loop {
            let mut ready = self.timer.readable_mut().await?;
            let mut expirations = [0u8; 8];
            if let Ok(read) =
                ready.try_io(|fd| Ok(rustix::io::read(fd.get_ref(), &mut expirations)?))
            {
                return read.map(drop);
            }
        }
    }
}

/// Elsewhere, tokio's timer: millisecond ticks, so starts come in bursts.
#[cfg(not(target_os = "linux"))]
struct Pacer;

#[cfg(not(target_os = "linux"))]
impl Pacer {
    fn new() -> std::io::Result<Self> {
        Ok(Pacer)
    }

    async fn sleep_until(&mut self, due: Instant) -> std::io::Result<()> {
        tokio::time::sleep_until(due.into()).await;
        Ok(())
    }
}

/// `concurrency` workers, each sending its next request when the last one
/// is answered, for `length`.
async fn closed_loop(
    clients: &[ConnectorsServiceClient<Channel>],
    kind: Call,
    concurrency: usize,
    length: Duration,
    connectors: usize,
    pid: u32,
) -> anyhow::Result<Phase> {
    let cpu_before = (report::cpu_time(Some(pid)), report::cpu_time(None));
    let started = Instant::now();
    let mut workers = Vec::new();
    for w in 0..concurrency {
        let mut client = clients[w % clients.len()].clone();
        workers.push(tokio::spawn(async move {
            let mut outcomes = Vec::new();
            let mut i = w;
            while started.elapsed() < length {
                let t = Instant::now();
                let result = call(&mut client, kind, i, connectors).await;
                outcomes.push(result.map(|()| t.elapsed()));
                i += concurrency;
            }
            outcomes
        }));
    }
    let mut outcomes = Vec::new();
    for worker in workers {
        outcomes.append(&mut worker.await.context("a load worker failed")?);
    }
    let elapsed = started.elapsed();
    let cpu_after = (report::cpu_time(Some(pid)), report::cpu_time(None));
    Ok(phase(outcomes, elapsed, cpu_before, cpu_after))
}

type CpuPair = (Option<Duration>, Option<Duration>);

fn phase(
    outcomes: Vec<Result<Duration, String>>,
    elapsed: Duration,
    before: CpuPair,
    after: CpuPair,
) -> Phase {
    let mut latencies = Vec::with_capacity(outcomes.len());
    let mut errors = 0;
    let mut first_error = None;
    for outcome in outcomes {
        match outcome {
            Ok(latency) => latencies.push(latency),
            Err(e) => {
                errors += 1;
                first_error.get_or_insert(e);
            }
        }
    }
    let delta = |a: Option<Duration>, b: Option<Duration>| match (a, b) {
        (Some(a), Some(b)) => b.saturating_sub(a),
        _ => Duration::ZERO,
    };
    Phase {
        latencies: Stats::new(latencies),
        errors,
        first_error,
        elapsed,
        server_cpu: delta(before.0, after.0),
        generator_cpu: delta(before.1, after.1),
        pacing: None,
    }
}

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
async fn wait_healthy(service: &Serve, count: usize, within: Duration) -> anyhow::Result<()> {
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
    let config = serve::write_config(dir.path(), options.busy, &["http"], targets, Some(&every))?;
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
