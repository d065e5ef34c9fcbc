//! The load generator of part 6: one gRPC call, an open loop paced by its
//! own timer, a closed loop of workers, and what a phase of either found.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use sandport_server::grpc::pb;
use sandport_server::grpc::pb::connectors_service_client::ConnectorsServiceClient;
use tonic::transport::Channel;

use crate::report::{self, Stats, human, per_second};

#[derive(Clone, Copy, Debug)]
pub(super) enum Call {
    HealthCached,
    List,
}

impl Call {
    pub(super) fn name(self) -> &'static str {
        match self {
            Call::HealthCached => "HealthCheck{cached: true}",
            Call::List => "ListConnectors",
        }
    }
}

/// The outcome of one phase.
pub(super) struct Phase {
    pub(super) latencies: Stats,
    pub(super) errors: usize,
    pub(super) first_error: Option<String>,
    pub(super) elapsed: Duration,
    pub(super) server_cpu: Duration,
    pub(super) generator_cpu: Duration,
    /// Open loop: how late the pacer started each request.
    pub(super) pacing: Option<Stats>,
}

impl Phase {
    pub(super) fn rate(&self) -> f64 {
        per_second(self.latencies.len() + self.errors, self.elapsed)
    }

    /// The service's CPU time over the phase, as a percentage of one core.
    pub(super) fn cpu_percent(&self) -> f64 {
        100.0 * self.server_cpu.as_secs_f64() / self.elapsed.as_secs_f64()
    }

    /// `p50 / p99 / max (achieved R req/s[, N errors])` for the table;
    /// `bold_p99` marks the figure a target applies to.
    pub(super) fn latency_cell(&self, bold_p99: bool) -> String {
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

    pub(super) fn describe(&self) -> String {
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
pub(super) async fn open_loop(
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
pub(super) async fn closed_loop(
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
