//! Part 3, HealthCheckAll at scale: N connectors (the `http` built-in by
//! default: one `GET /-/healthy` per check, the same work as one blackbox
//! probe) pointed at loopback target servers, checked with
//! `Runtime::check_all(None)`, which is what the gRPC `HealthCheckAll` runs.
//! Reports the registration time, the wall time of a first round (every
//! connection new) and of warm rounds (connections pooled, as under the
//! scheduler), checks/s, the per-check latency p99, and the process's peak
//! RSS (VmHWM, reset before each N).
//!
//! Then the same through the API (`check_all_api`): `sandport serve` in a
//! child process on the same connectors, `HealthCheckAll` called from here.
//!
//! The same targets are then probed by Prometheus's blackbox_exporter
//! (`/probe?module=http_2xx&target=...`), driven at the runtime's own check
//! concurrency (`max_concurrent_checks`).

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::StreamExt;
use sandport_core::{HealthStatus, Runtime, RuntimeOptions};
use sandport_tests::servers::{Kind, RealServer};
use tokio::task::JoinSet;

use crate::check_all_api;
use crate::report::{self, Row, Stats, human, per_second, thousands};
use crate::targets::Targets;

pub struct Options {
    pub connectors: Vec<usize>,
    pub servers: usize,
    pub warm_rounds: usize,
    pub component: String,
    pub blackbox: bool,
    /// Also through the API of a `sandport serve`.
    pub api: bool,
    /// The release `sandport` binary [default: beside this one].
    pub sandport: Option<std::path::PathBuf>,
    /// Check these loopback ports instead of the bench's own target servers.
    pub target_ports: Vec<u16>,
    /// The service through the API keeps its check history (its default).
    pub api_history: bool,
}

const BLACKBOX: &str = "/usr/bin/prometheus-blackbox-exporter";
/// Target: 10,000 connectors checked in under this.
const TARGET_WALL: Duration = Duration::from_secs(2);
/// Target: at least this times blackbox_exporter's probes/s.
const TARGET_VS_BLACKBOX: f64 = 2.0;

/// One round of checks or probes.
pub struct Round {
    pub wall: Duration,
    pub healthy: usize,
    pub total: usize,
    pub first_failure: Option<String>,
}

/// What one N measured.
struct Sandport {
    register: Duration,
    cold: Round,
    warm: Vec<Round>,
    check_p99: Duration,
    /// This process's CPU time over the warm rounds, per check.
    cpu_per_check: Duration,
    peak_kib: u64,
    rss_before_kib: u64,
    mappings: usize,
}

pub async fn run(options: &Options) -> anyhow::Result<Vec<Row>> {
    let concurrency = RuntimeOptions::default().max_concurrent_checks;
    let most = options.connectors.iter().copied().max().unwrap_or(0);
    // Pooled connections: one per connector in this process, plus the
    // blackbox client's; the targets live in a child process of their own.
    let needed = (most + concurrency + 512) as u64;
    match report::open_files_limit() {
        Some(limit) if limit < needed => bail!(
            "the open-files limit is {limit}, but {most} connectors need about {needed}: run `ulimit -n {}` first (the hard limit is in /proc/self/limits)",
            needed.next_power_of_two()
        ),
        Some(limit) => println!("open-files limit: {limit} (need about {needed})"),
        None => println!("open-files limit: unknown"),
    }
    // The service through the API gets target servers of its own: with
    // the in-process connectors' pooled connections, one process would
    // hold two per connector.
    let (targets, api_targets, where_to) = if options.target_ports.is_empty() {
        let where_to = format!(
            "{} loopback target servers (child process; the service's connectors get {} more in another)",
            options.servers, options.servers
        );
        let api_targets = options
            .api
            .then(|| Targets::spawn(options.servers))
            .transpose()?;
        (Targets::spawn(options.servers)?, api_targets, where_to)
    } else {
        let where_to = format!("the servers on loopback ports {:?}", options.target_ports);
        let api_targets = Some(Targets::external(options.target_ports.clone()));
        (
            Targets::external(options.target_ports.clone()),
            api_targets,
            where_to,
        )
    };
    println!(
        "method: `{}` connectors spread over {where_to}; per N: register all concurrently, 1 first round + {} warm rounds of Runtime::check_all(None) (runtime check concurrency {concurrency}); {}blackbox_exporter: the same targets through /probe?module=http_2xx at concurrency {concurrency}, 1 + {} rounds",
        options.component,
        options.warm_rounds,
        if options.api {
            format!(
                "and `sandport serve` (release, default settings, started before the rounds) on the same entries in a config file: a first and {} warm gRPC HealthCheckAll calls from this process, timed by the client, each right after the in-process round; ",
                options.warm_rounds
            )
        } else {
            String::new()
        },
        options.warm_rounds
    );
    let blackbox = if !options.blackbox {
        None
    } else if std::path::Path::new(BLACKBOX).exists() {
        let server = tokio::task::spawn_blocking(|| RealServer::start(Kind::BlackboxExporter))
            .await
            .context("start blackbox_exporter")?;
        println!("blackbox_exporter on 127.0.0.1:{}", server.port());
        Some(server)
    } else {
        println!(
            "blackbox_exporter is missing ({BLACKBOX}); install the Debian package prometheus-blackbox-exporter (scripts/install-test-deps.sh does) to compare"
        );
        None
    };
    let probe_client = crate::check::native_client()?;
    let api_binary = if options.api {
        match crate::serve::binary(options.sandport.as_deref()) {
            Ok(path) => Some(path),
            Err(e) => {
                println!("skipping the rounds through the API: {e:#}");
                None
            }
        }
    } else {
        None
    };

    let mut rows = Vec::new();
    for &n in &options.connectors {
        println!("-- {n} connectors");
        let api = api_binary.as_deref().zip(api_targets.as_ref());
        let (ours, api) = measure_sandport(options, &targets, api, n).await?;
        let warm = Stats::new(ours.warm.iter().map(|r| r.wall).collect());
        let warm_wall = if ours.warm.is_empty() {
            ours.cold.wall
        } else {
            warm.median()
        };
        let rate = per_second(n, warm_wall);
        let all_healthy = std::iter::once(&ours.cold)
            .chain(&ours.warm)
            .all(|r| r.healthy == r.total);
        println!(
            "sandport: registered in {}; first round {} ({:.0} checks/s); warm rounds {} (median {}, {:.0} checks/s); per-check latency p99 {}; CPU per check {}; healthy in the first round {}/{}, all healthy in every round: {all_healthy}",
            human(ours.register),
            human(ours.cold.wall),
            per_second(n, ours.cold.wall),
            ours.warm
                .iter()
                .map(|r| human(r.wall))
                .collect::<Vec<_>>()
                .join(", "),
            human(warm_wall),
            rate,
            human(ours.check_p99),
            human(ours.cpu_per_check),
            ours.cold.healthy,
            n,
        );
        if let Some(failure) = std::iter::once(&ours.cold)
            .chain(&ours.warm)
            .find_map(|r| r.first_failure.as_ref())
        {
            println!("sandport: a failed check said: {failure}");
        }
        println!(
            "sandport: RSS before {} KiB, peak {} KiB (+{} KiB, {:.1} KiB per connector); memory mappings after the rounds: {}",
            thousands(ours.rss_before_kib),
            thousands(ours.peak_kib),
            thousands(ours.peak_kib.saturating_sub(ours.rss_before_kib)),
            ours.peak_kib.saturating_sub(ours.rss_before_kib) as f64 / n as f64,
            thousands(ours.mappings as u64)
        );

        let wall_target = n >= 10_000;
        let healthy_note = if all_healthy {
            String::new()
        } else {
            " — NOT all healthy".to_string()
        };
        let wall_value = format!(
            "warm **{}** (first round {}); {:.0} checks/s{healthy_note}",
            human(warm_wall),
            human(ours.cold.wall),
            rate
        );
        let figure = format!(
            "HealthCheckAll, {} connectors: wall time",
            thousands(n as u64)
        );
        rows.push(if wall_target {
            Row::target(
                3,
                figure,
                wall_value,
                "< 2 s",
                warm_wall < TARGET_WALL && all_healthy,
            )
        } else {
            Row::info(3, figure, wall_value)
        });

        let api = match api {
            Some(api) => {
                println!("through the API: {}", api.describe(n));
                if let Some(failure) = api.first_failure() {
                    println!("through the API: a failed check said: {failure}");
                }
                rows.extend(api.rows(n, warm_wall, ours.cold.wall, ours.cpu_per_check));
                Some(api)
            }
            None => None,
        };

        if let Some(server) = &blackbox {
            let mut rounds = Vec::new();
            for _ in 0..=options.warm_rounds {
                rounds.push(
                    probe_round(&probe_client, server.port(), &targets, n, concurrency).await,
                );
            }
            let walls = Stats::new(rounds.iter().map(|r| r.wall).collect());
            let bb_rate = per_second(n, walls.median());
            let bb_healthy = rounds.iter().all(|r| r.healthy == r.total);
            let bb_peak =
                blackbox_pid(server).and_then(|pid| report::status_kib(Some(pid), "VmHWM"));
            println!(
                "blackbox_exporter: rounds {} (median {}, {:.0} probes/s); every probe succeeded: {bb_healthy}; its peak RSS so far {} KiB",
                rounds
                    .iter()
                    .map(|r| human(r.wall))
                    .collect::<Vec<_>>()
                    .join(", "),
                human(walls.median()),
                bb_rate,
                bb_peak.map_or_else(|| "?".into(), thousands)
            );
            if let Some(failure) = rounds.iter().find_map(|r| r.first_failure.as_ref()) {
                println!("blackbox_exporter: a failed probe said: {failure}");
            }
            let vs = rate / bb_rate;
            rows.push(Row::target(
                3,
                format!(
                    "checks/s vs blackbox_exporter probes/s, {} targets",
                    thousands(n as u64)
                ),
                format!(
                    "{:.0} vs {:.0} = **{vs:.2}×**{}",
                    rate,
                    bb_rate,
                    if bb_healthy {
                        ""
                    } else {
                        " — blackbox probes failed"
                    }
                ),
                "≥ 2×",
                vs >= TARGET_VS_BLACKBOX && all_healthy && bb_healthy,
            ));
            if let Some(api) = &api {
                let api_rate = per_second(n, api.warm_wall());
                rows.push(Row::info(
                    3,
                    format!(
                        "the same through the API (gRPC HealthCheckAll), {} targets",
                        thousands(n as u64)
                    ),
                    format!("{api_rate:.0} vs {bb_rate:.0} = {:.2}×", api_rate / bb_rate),
                ));
            }
            rows.push(Row::info(
                3,
                format!("peak RSS, {} connectors", thousands(n as u64)),
                format!(
                    "sandport {} MiB (in-process runtime); blackbox_exporter {} MiB",
                    ours.peak_kib / 1024,
                    bb_peak.map_or_else(|| "?".into(), |k| (k / 1024).to_string())
                ),
            ));
        } else {
            rows.push(Row::info(
                3,
                format!("peak RSS, {} connectors", thousands(n as u64)),
                format!("sandport {} MiB (in-process runtime)", ours.peak_kib / 1024),
            ));
        }
    }
    Ok(rows)
}

/// The in-process rounds, and when `api` names a `sandport` binary and
/// its targets, the rounds through its API, each right after the
/// in-process round of the same number.
async fn measure_sandport(
    options: &Options,
    targets: &Targets,
    api: Option<(&std::path::Path, &Targets)>,
    n: usize,
) -> anyhow::Result<(Sandport, Option<check_all_api::ApiRounds>)> {
    let reset = report::reset_peak_rss();
    if !reset {
        println!(
            "(cannot reset VmHWM through /proc/self/clear_refs: the peak covers earlier work too)"
        );
    }
    let rss_before_kib = report::rss_kib();
    let runtime = crate::unscheduled_runtime()?;
    let started = Instant::now();
    register_many(&runtime, &options.component, targets, n).await?;
    let register = started.elapsed();
    let mut service = match api {
        Some((binary, api_targets)) => Some(
            check_all_api::ApiService::start(
                binary,
                &options.component,
                api_targets,
                n,
                options.api_history,
            )
            .await?,
        ),
        None => None,
    };

    let cold = check_round(&runtime).await;
    if let Some(service) = &mut service {
        service.round().await?;
    }
    let mut warm = Vec::new();
    let mut latencies = Vec::new();
    let mut cpu_ns = 0;
    for _ in 0..options.warm_rounds {
        let cpu_before = report::threads_cpu_ns();
        let (round, mut lat) = check_round(&runtime).await;
        cpu_ns += report::threads_cpu_ns().saturating_sub(cpu_before);
        warm.push(round);
        latencies.append(&mut lat);
        if let Some(service) = &mut service {
            service.round().await?;
        }
    }
    let checks = warm.iter().map(|r| r.total).sum::<usize>().max(1) as u64;
    let cpu_per_check = Duration::from_nanos(cpu_ns / checks);
    let peak_kib = report::peak_rss_kib();
    let mappings = report::mappings();
    runtime.shutdown().await;
    drop(runtime);
    let api = match service {
        Some(service) => Some(service.finish().await?),
        None => None,
    };
    let ours = Sandport {
        register,
        cold: cold.0,
        warm,
        check_p99: Stats::new(latencies).p99(),
        cpu_per_check,
        peak_kib,
        rss_before_kib,
        mappings,
    };
    Ok((ours, api))
}

/// Registers `n` connectors of `component`, ids `c00000`.., concurrently.
pub async fn register_many(
    runtime: &Runtime,
    component: &str,
    targets: &Targets,
    n: usize,
) -> anyhow::Result<()> {
    register_range(runtime, component, targets, 0..n).await
}

/// Registers connectors `range` (ids `c00000`..) of `component`.
pub async fn register_range(
    runtime: &Runtime,
    component: &str,
    targets: &Targets,
    range: std::ops::Range<usize>,
) -> anyhow::Result<()> {
    register_all(
        runtime,
        range.map(|i| {
            format!(
                "{{id: c{i:05}, component: {component}, host: 127.0.0.1, port: {}, health_check: {{path: /-/healthy}}}}",
                targets.port(i)
            )
        }),
    )
    .await
}

/// Registers the entries (YAML flow maps) concurrently.
pub async fn register_all(
    runtime: &Runtime,
    entries: impl Iterator<Item = String>,
) -> anyhow::Result<()> {
    let mut tasks = JoinSet::new();
    for yaml in entries {
        let config = sandport_tests::entry(&yaml);
        let runtime = runtime.clone();
        tasks.spawn(async move { runtime.register(config).await.map(|_| ()) });
    }
    while let Some(joined) = tasks.join_next().await {
        joined
            .context("a registration task failed")?
            .context("register a connector")?;
    }
    Ok(())
}

async fn check_round(runtime: &Runtime) -> (Round, Vec<Duration>) {
    let started = Instant::now();
    let results = runtime.check_all(None).await;
    let wall = started.elapsed();
    let healthy = results
        .iter()
        .filter(|(_, h)| h.status == HealthStatus::Healthy)
        .count();
    let first_failure = results
        .iter()
        .find(|(_, h)| h.status != HealthStatus::Healthy)
        .map(|(id, h)| format!("{id}: {} {}", h.status, h.message));
    let latencies = results.iter().filter_map(|(_, h)| h.latency).collect();
    (
        Round {
            wall,
            healthy,
            total: results.len(),
            first_failure,
        },
        latencies,
    )
}

/// Probes `n` targets through blackbox_exporter at `concurrency`.
async fn probe_round(
    client: &reqwest::Client,
    blackbox_port: u16,
    targets: &Targets,
    n: usize,
    concurrency: usize,
) -> Round {
    let started = Instant::now();
    let outcomes: Vec<Result<(), String>> = futures::stream::iter(0..n)
        .map(|i| {
            let url = format!(
                "http://127.0.0.1:{blackbox_port}/probe?module=http_2xx&target={}",
                targets.url(i, "/-/healthy")
            );
            async move {
                let response = client.get(&url).send().await.map_err(|e| e.to_string())?;
                let status = response.status();
                let body = response.text().await.map_err(|e| e.to_string())?;
                if status.is_success() && body.lines().any(|l| l == "probe_success 1") {
                    Ok(())
                } else {
                    Err(format!(
                        "{url}: {status}: {}",
                        body.lines()
                            .find(|l| l.starts_with("probe_success"))
                            .unwrap_or("no probe_success")
                    ))
                }
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let wall = started.elapsed();
    Round {
        wall,
        healthy: outcomes.iter().filter(|o| o.is_ok()).count(),
        total: outcomes.len(),
        first_failure: outcomes.into_iter().find_map(Result::err),
    }
}

/// The exporter's pid, from the pid file `RealServer` keeps in its dir.
fn blackbox_pid(server: &RealServer) -> Option<u32> {
    std::fs::read_to_string(server.dir().join("server.pids"))
        .ok()?
        .lines()
        .next()?
        .trim()
        .parse()
        .ok()
}
