//! Part 3 through the API: the same N connectors and targets as the
//! in-process rounds, but registered through a config file of a
//! `sandport serve` (the release binary, its default scheduler and
//! settings, history and alerts on, as an operator runs it) in a child
//! process, and checked by gRPC `HealthCheckAll` calls from this process.
//! Each round is timed from the client: from sending the call to holding
//! every decoded result.
//!
//! The service has been up until every connector passed its first scheduled
//! check (so the start-up burst is over and connections are pooled); then
//! one first call and W warm ones, each right after the in-process round of
//! the same number, so that both meet the same load of a shared machine
//! (the in-process runtime is idle meanwhile: it has no scheduler).
//! Besides the wall time it reports the
//! service's CPU time per check, split by thread name
//! (`/proc/PID/task/*/schedstat`), which is where a gap to the in-process
//! round shows first.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use sandport_server::grpc::pb;
use sandport_server::grpc::pb::connectors_service_client::ConnectorsServiceClient;
use tonic::transport::Channel;

use crate::check_all::Round;
use crate::report::{self, Row, human, per_second, thousands};
use crate::serve::{Serve, TempDir};
use crate::targets::Targets;

/// The deadline the client gives each call: longer than any round, so that
/// every round is complete (the service caps it at its own request
/// timeout, 30 s by default).
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// Target: a round through the API takes at most this times the
/// in-process round.
const TARGET_API_RATIO: f64 = 1.5;

/// The largest answer the client accepts: 10,000 results take about 1.5 MiB.
const MAX_ANSWER: usize = 64 << 20;

/// What the rounds through the API measured.
pub struct ApiRounds {
    /// From spawning the service until it listed every connector.
    pub ready: Duration,
    pub first: Round,
    pub warm: Vec<Round>,
    /// The service's CPU time over the warm rounds, per check.
    pub cpu_per_check: Duration,
    /// The same, by thread name, most first.
    pub cpu_by_thread: Vec<(String, Duration)>,
}

/// A `sandport serve` whose rounds the in-process ones alternate with, so
/// that both sides meet the same load of a shared machine.
pub struct ApiService {
    service: Serve,
    client: ConnectorsServiceClient<Channel>,
    ready: Duration,
    first: Option<Round>,
    warm: Vec<Round>,
    /// Per thread: CPU time (ns) spent in warm rounds, and the name.
    cpu: BTreeMap<String, (String, u64)>,
    _dirs: (TempDir, TempDir),
}

impl ApiService {
    /// Starts `sandport serve` on `n` connectors of `component` over
    /// `targets` and waits until every connector passed its first scheduled
    /// check. `history`: whether the service keeps its check history (its
    /// default); off, the difference is what the history costs a round.
    pub async fn start(
        binary: &Path,
        component: &str,
        targets: &Targets,
        n: usize,
        history: bool,
    ) -> anyhow::Result<ApiService> {
        let dir = TempDir::new("check-all-api")?;
        // The entries the in-process rounds register (ids `c00000`.., the
        // same target and health path each), every other setting at its
        // default (the history too, unless `history` is false).
        let config = crate::serve::write_config(
            dir.path(),
            n,
            &[component],
            targets,
            Some("path: /-/healthy"),
        )?;
        if !history {
            let mut file = std::fs::OpenOptions::new()
                .append(true)
                .open(&config)
                .with_context(|| format!("open {}", config.display()))?;
            std::io::Write::write_all(&mut file, b"history:\n  enabled: false\n")
                .with_context(|| format!("write {}", config.display()))?;
        }
        let cache = TempDir::new("check-all-api-cache")?;
        let spawned = Instant::now();
        let mut service = Serve::spawn(binary, &config, cache.path())?;
        let ready = service
            .wait_listed(n, spawned, Duration::from_secs(300))
            .await?;
        crate::grpc::wait_healthy(&service, n, Duration::from_secs(120)).await?;
        let client = service
            .client()
            .await?
            .max_decoding_message_size(MAX_ANSWER);
        Ok(ApiService {
            service,
            client,
            ready,
            first: None,
            warm: Vec::new(),
            cpu: BTreeMap::new(),
            _dirs: (dir, cache),
        })
    }

    /// One `HealthCheckAll` call: the first, then warm ones.
    pub async fn round(&mut self) -> anyhow::Result<()> {
        if self.first.is_none() {
            self.first = Some(round(&mut self.client).await?);
            return Ok(());
        }
        let pid = self.service.pid();
        let before = report::threads_cpu(Some(pid));
        self.warm.push(round(&mut self.client).await?);
        for (tid, (name, ns)) in report::threads_cpu(Some(pid)) {
            let was = before.get(&tid).map_or(0, |(_, ns)| *ns);
            let spent = &mut self.cpu.entry(tid).or_insert((name, 0)).1;
            *spent += ns.saturating_sub(was);
        }
        Ok(())
    }

    /// Stops the service; what its rounds measured.
    pub async fn finish(self) -> anyhow::Result<ApiRounds> {
        let ApiService {
            service,
            client,
            ready,
            first,
            warm,
            cpu,
            _dirs,
        } = self;
        service.stop(vec![client]).await;
        let first = first.context("no call through the API was made")?;
        let checks = warm.iter().map(|r| r.total).sum::<usize>().max(1) as u64;
        let mut by_name: BTreeMap<String, u64> = BTreeMap::new();
        for (name, ns) in cpu.into_values() {
            *by_name.entry(name).or_default() += ns;
        }
        let total: u64 = by_name.values().sum();
        let mut cpu_by_thread: Vec<(String, Duration)> = by_name
            .into_iter()
            .map(|(name, ns)| (name, Duration::from_nanos(ns / checks)))
            .filter(|(_, cpu)| !cpu.is_zero())
            .collect();
        cpu_by_thread.sort_by_key(|(_, cpu)| std::cmp::Reverse(*cpu));
        Ok(ApiRounds {
            ready,
            first,
            warm,
            cpu_per_check: Duration::from_nanos(total / checks),
            cpu_by_thread,
        })
    }
}

/// One `HealthCheckAll` call, timed from the client.
async fn round(client: &mut ConnectorsServiceClient<Channel>) -> anyhow::Result<Round> {
    let mut request = tonic::Request::new(pb::HealthCheckAllRequest::default());
    request.set_timeout(CALL_TIMEOUT);
    let started = Instant::now();
    let answer = client
        .health_check_all(request)
        .await
        .context("HealthCheckAll")?
        .into_inner();
    let wall = started.elapsed();
    let healthy = |r: &pb::HealthCheckResponse| r.status() == pb::ConnectorStatus::Healthy;
    let first_failure = answer
        .results
        .iter()
        .find(|r| !healthy(r))
        .map(|r| format!("{}: {:?} {}", r.id, r.status(), r.message))
        .or_else(|| {
            (!answer.unfinished.is_empty())
                .then(|| format!("{} unfinished by the deadline", answer.unfinished.len()))
        });
    Ok(Round {
        wall,
        healthy: answer
            .results
            .iter()
            .filter(|r| healthy(r) && !answer.unfinished.contains(&r.id))
            .count(),
        total: answer.results.len(),
        first_failure,
    })
}

impl ApiRounds {
    /// The median warm round (the first when there are none).
    pub fn warm_wall(&self) -> Duration {
        let mut walls: Vec<Duration> = self.warm.iter().map(|r| r.wall).collect();
        walls.sort();
        walls
            .get(walls.len() / 2)
            .copied()
            .unwrap_or(self.first.wall)
    }

    pub fn all_healthy(&self) -> bool {
        std::iter::once(&self.first)
            .chain(&self.warm)
            .all(|r| r.healthy == r.total)
    }

    /// One line for the part's log.
    pub fn describe(&self, n: usize) -> String {
        let threads: Vec<String> = self
            .cpu_by_thread
            .iter()
            .take(6)
            .map(|(name, cpu)| format!("{name} {}", human(*cpu)))
            .collect();
        format!(
            "ready in {}; first call {} ({:.0} checks/s); warm calls {} (median {}, {:.0} checks/s); all healthy: {}; service CPU per check {} ({})",
            human(self.ready),
            human(self.first.wall),
            per_second(n, self.first.wall),
            self.warm
                .iter()
                .map(|r| human(r.wall))
                .collect::<Vec<_>>()
                .join(", "),
            human(self.warm_wall()),
            per_second(n, self.warm_wall()),
            self.all_healthy(),
            human(self.cpu_per_check),
            threads.join(", ")
        )
    }

    pub fn first_failure(&self) -> Option<&String> {
        std::iter::once(&self.first)
            .chain(&self.warm)
            .find_map(|r| r.first_failure.as_ref())
    }
}

impl ApiRounds {
    /// The rows beside the in-process round's: the wall time through the
    /// API and its ratio to the in-process round, then CPU per check.
    pub fn rows(
        &self,
        n: usize,
        in_process_warm: Duration,
        in_process_first: Duration,
        in_process_cpu: Duration,
    ) -> Vec<Row> {
        let warm = self.warm_wall();
        let ratio = warm.as_secs_f64() / in_process_warm.as_secs_f64().max(f64::MIN_POSITIVE);
        let healthy_note = if self.all_healthy() {
            ""
        } else {
            " — NOT all healthy"
        };
        let figure = format!(
            "HealthCheckAll through gRPC (`sandport serve`, client in another process), {} connectors: wall time",
            thousands(n as u64)
        );
        let value = format!(
            "warm {} (first call {}, with connections the scheduler pooled; in-process first round {}); {:.0} checks/s; **{ratio:.2}×** the in-process warm round{healthy_note}",
            human(warm),
            human(self.first.wall),
            human(in_process_first),
            per_second(n, warm)
        );
        let wall_row = if n >= 10_000 {
            Row::target(
                3,
                figure,
                value,
                "≤ 1.5× in-process",
                ratio <= TARGET_API_RATIO && self.all_healthy(),
            )
        } else {
            Row::info(3, figure, value)
        };
        vec![
            wall_row,
            Row::info(
                3,
                format!(
                    "CPU per check, {} connectors: in-process / the service through the API",
                    thousands(n as u64)
                ),
                format!("{} / {}", human(in_process_cpu), human(self.cpu_per_check)),
            ),
        ]
    }
}
