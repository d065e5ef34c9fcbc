//! `sandport-bench`: the reproducible benchmark suite of the performance
//! issue. Every part prints what it measured and how; `all` runs each part
//! in a child process of its own (so that one part's memory does not show in
//! another's figures) and ends with a markdown table for
//! `docs/performance.md`.
//!
//! ```text
//! cargo build --release -p sandport          # parts 5 and 6 run the binary
//! cargo run --release -p sandport-bench -- all
//! ```
//!
//! Benchmarks print figures; nothing here is a test.
#![allow(
    clippy::disallowed_methods,
    reason = "the bench reads /proc, its own logs and its children's pipes"
)]

mod boundary;
mod check;
mod check_all;
mod check_all_api;
mod cluster;
mod cold_start;
mod grpc;
mod history;
mod memory;
mod report;
mod serve;
mod soak;
mod targets;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command as Process, ExitCode, Stdio};

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use report::{ROW_PREFIX, Row};

#[derive(Parser)]
#[command(
    name = "sandport-bench",
    about = "Sandport's benchmark suite (docs/performance.md). Run in release."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone)]
struct Common {
    /// Print rows for a parent `all` instead of a table.
    #[arg(long, hide = true)]
    emit_rows: bool,
}

#[derive(Subcommand)]
enum Command {
    /// 1. One health-check call into a Rust guest without network vs the
    ///    same work as a native function.
    Boundary {
        #[arg(long, default_value_t = 100_000)]
        iterations: usize,
        #[arg(long, default_value_t = 5_000)]
        warmup: usize,
        #[command(flatten)]
        common: Common,
    },
    /// 2. One check of a loopback HTTP endpoint through a wasm connector vs
    ///    a native reqwest GET.
    Check {
        #[arg(long, default_value_t = 10_000)]
        iterations: usize,
        #[arg(long, default_value_t = 1_000)]
        warmup: usize,
        /// Calls per side before switching sides.
        #[arg(long, default_value_t = 100)]
        block: usize,
        /// Leave the bench and the target server unpinned (by default they
        /// run on separate CPUs; see docs/performance.md).
        #[arg(long)]
        no_pin: bool,
        /// Run one side alone (for a profiler or callgrind: subtracting a
        /// run of N calls from one of 2N gives the cost of N); prints that
        /// side's figures and no table.
        #[arg(long, value_enum)]
        only: Option<check::Side>,
        #[command(flatten)]
        common: Common,
    },
    /// 3. HealthCheckAll across N connectors, in-process and through the
    ///    gRPC API of `sandport serve`, vs blackbox_exporter on the same
    ///    targets.
    CheckAll {
        #[arg(long, value_delimiter = ',', default_value = "1000,10000")]
        connectors: Vec<usize>,
        /// Loopback target servers the connectors are spread over.
        #[arg(long, default_value_t = 8)]
        servers: usize,
        /// Rounds after the first, with connections pooled.
        #[arg(long, default_value_t = 3)]
        warm_rounds: usize,
        /// The built-in to run (`http`: one GET per check, as a blackbox
        /// probe; `prometheus` GETs /-/healthy and /-/ready).
        #[arg(long, default_value = "http")]
        component: String,
        /// Skip the blackbox_exporter comparison.
        #[arg(long)]
        no_blackbox: bool,
        /// Skip the rounds through the gRPC API of `sandport serve`.
        #[arg(long)]
        no_api: bool,
        /// Point the connectors at servers already listening on these
        /// loopback ports (e.g. an nginx) instead of the bench's own.
        #[arg(long, value_delimiter = ',')]
        target_ports: Vec<u16>,
        /// Turn the service's check history off for the rounds through the
        /// API (it is on by default), to see what it costs a round.
        #[arg(long)]
        api_no_history: bool,
        /// The release `sandport` binary for the rounds through the API
        /// [default: beside this one].
        #[arg(long)]
        sandport: Option<PathBuf>,
        #[command(flatten)]
        common: Common,
    },
    /// 4. RSS per connector at 1,000 and 10,000: in the steady state
    ///    (checked on schedule), idle, and right after one check.
    Memory {
        #[arg(long, value_delimiter = ',', default_value = "1000,10000")]
        connectors: Vec<usize>,
        /// Built-ins, comma-separated, or `all` (every built-in, one after
        /// the other), or a component file. Each is checked against a
        /// target that answers its check (see `targets::table`).
        #[arg(long, value_delimiter = ',', default_value = "prometheus")]
        component: Vec<String>,
        #[arg(long, default_value_t = 8)]
        servers: usize,
        /// The check interval of the steady state, in seconds.
        #[arg(long, default_value_t = 30)]
        steady_interval: u64,
        /// Intervals after the last registration; the steady state is
        /// sampled through the last of them.
        #[arg(long, default_value_t = 3)]
        steady_intervals: u32,
        /// Skip the steady state.
        #[arg(long)]
        no_steady: bool,
        /// Run one phase of the part, for one connector count.
        #[arg(long, value_enum, hide = true)]
        phase: Option<memory::Phase>,
        #[command(flatten)]
        common: Common,
    },
    /// 5. `sandport serve` with 100 connectors until all are initialised:
    ///    first start (compile) and second start (precompiled cache).
    ColdStart {
        #[arg(long, default_value_t = 100)]
        connectors: usize,
        /// Built-ins the connectors cycle through.
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "prometheus,grafana,jaeger,alertmanager,http"
        )]
        components: Vec<String>,
        #[arg(long, default_value_t = 3)]
        first_runs: usize,
        #[arg(long, default_value_t = 5)]
        second_runs: usize,
        /// The release `sandport` binary [default: beside this one].
        #[arg(long)]
        sandport: Option<PathBuf>,
        #[command(flatten)]
        common: Common,
    },
    /// 6. gRPC HealthCheck (cached) and ListConnectors latency and
    ///    throughput under load.
    Grpc {
        #[arg(long, default_value_t = 100)]
        connectors: usize,
        /// Open-loop rate of cached HealthChecks, requests per second.
        #[arg(long, default_value_t = 5_000.0)]
        rate: f64,
        /// Open-loop rate of ListConnectors, requests per second.
        #[arg(long, default_value_t = 1_000.0)]
        list_rate: f64,
        /// Length of each open-loop phase (closed-loop phases take half).
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
        /// HTTP/2 connections the load is spread over.
        #[arg(long, default_value_t = 4)]
        connections: usize,
        /// Workers of the closed-loop phases.
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
        /// Then the cached HealthCheck against a service whose scheduler
        /// checks this many connectors (0: skip that phase).
        #[arg(long, default_value_t = 0)]
        busy: usize,
        /// The check interval of those connectors, in milliseconds.
        #[arg(long, default_value_t = 1_000)]
        busy_interval_ms: u64,
        #[arg(long)]
        sandport: Option<PathBuf>,
        #[command(flatten)]
        common: Common,
    },
    /// 7. The cost of the check history: N connectors checked by the
    ///    scheduler, history off vs on: checks/s, CPU per check, store size.
    History {
        #[arg(long, default_value_t = 10_000)]
        connectors: usize,
        /// The connectors' health-check interval, in seconds.
        #[arg(long, default_value_t = 10)]
        interval: u64,
        /// Seconds after registering before each phase's window.
        #[arg(long, default_value_t = 20)]
        warmup: u64,
        /// Length of each phase's window, in seconds.
        #[arg(long, default_value_t = 60)]
        seconds: u64,
        #[arg(long, default_value_t = 8)]
        servers: usize,
        #[command(flatten)]
        common: Common,
    },
    /// 8. The soak: 100 hostile guests beside 100 healthy connectors; good
    ///    checks on time, memory levelling off.
    Soak {
        #[arg(long, default_value_t = 600)]
        seconds: u64,
        /// Hostile modes, comma-separated (default: every one).
        #[arg(long)]
        modes: Option<String>,
        #[command(flatten)]
        common: Common,
    },
    /// 9. A cluster on one real etcd over the same connectors with 1, 2
    ///    and 3 nodes: CPU per check and RSS per node, etcd traffic per
    ///    connector, failover after kill -9 (not in `all`: it needs
    ///    Debian's etcd-server and, for one node over 30,000 connectors, a
    ///    raised vm.max_map_count).
    Cluster {
        #[command(flatten)]
        args: cluster::Args,
        #[command(flatten)]
        common: Common,
    },
    /// Every part, each in a child process; ends with the summary table.
    /// Part 4 runs `prometheus`, `http` and `tcp` here; `memory --component
    /// all` measures every built-in (about two minutes each).
    All {
        /// Connector counts for parts 3 and 4; part 7 takes the largest.
        #[arg(long, value_delimiter = ',', default_value = "1000,10000")]
        connectors: Vec<String>,
        /// Length of the soak (part 8), in seconds; 0 leaves it out.
        #[arg(long, default_value_t = 600)]
        soak_seconds: u64,
        #[arg(long)]
        sandport: Option<PathBuf>,
    },
    /// Loopback target servers (used by the parts; prints its ports and
    /// serves until stdin closes).
    #[command(hide = true)]
    Targets {
        #[arg(long, default_value_t = 8)]
        servers: usize,
        #[arg(long, value_enum, default_value = "http")]
        serves: targets::table::Serves,
    },
}

/// A connector runtime with the scheduler off and no compiled-component
/// cache: the parts call checks themselves, and every run compiles afresh.
fn unscheduled_runtime() -> anyhow::Result<sandport_core::Runtime> {
    sandport_core::Runtime::new(sandport_core::RuntimeOptions {
        schedule: false,
        cache_dir: None,
        ..sandport_core::RuntimeOptions::default()
    })
    .context("create the runtime")
}

fn multi_thread() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("start the tokio runtime")
}

fn main() -> ExitCode {
    // The in-process parts measure the runtime as the service runs it.
    sandport_core::allocator::limit_arenas();
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sandport-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> anyhow::Result<()> {
    let (name, emit) = match &command {
        Command::Boundary { common, .. } => ("1. boundary overhead", common.emit_rows),
        Command::Check { common, .. } => ("2. loopback HTTP check", common.emit_rows),
        Command::CheckAll { common, .. } => ("3. HealthCheckAll at scale", common.emit_rows),
        Command::Memory { common, .. } => ("4. memory per connector", common.emit_rows),
        Command::ColdStart { common, .. } => ("5. cold start", common.emit_rows),
        Command::Grpc { common, .. } => ("6. gRPC under load", common.emit_rows),
        Command::History { common, .. } => ("7. history cost", common.emit_rows),
        Command::Soak { common, .. } => ("8. soak", common.emit_rows),
        Command::Cluster { common, .. } => ("9. cluster", common.emit_rows),
        Command::All {
            connectors,
            soak_seconds,
            sandport,
        } => return all(connectors, *soak_seconds, sandport.as_deref()),
        Command::Targets { servers, serves } => {
            return multi_thread()?.block_on(targets::serve(*servers, *serves));
        }
    };
    report::print_conditions(name);
    if cfg!(debug_assertions) {
        println!("WARNING: a debug build; run with `cargo run --release -p sandport-bench`");
    }
    let rows = match command {
        Command::Boundary {
            iterations, warmup, ..
        } => multi_thread()?.block_on(boundary::run(&boundary::Options { iterations, warmup }))?,
        Command::Check {
            iterations,
            warmup,
            block,
            no_pin,
            only,
            ..
        } => multi_thread()?.block_on(check::run(&check::Options {
            iterations,
            warmup,
            block: block.max(1),
            pin: !no_pin,
            only,
        }))?,
        Command::CheckAll {
            connectors,
            servers,
            warm_rounds,
            component,
            no_blackbox,
            no_api,
            sandport,
            target_ports,
            api_no_history,
            ..
        } => multi_thread()?.block_on(check_all::run(&check_all::Options {
            connectors,
            servers: servers.max(1),
            warm_rounds,
            component,
            blackbox: !no_blackbox,
            api: !no_api,
            sandport,
            target_ports,
            api_history: !api_no_history,
        }))?,
        Command::Memory {
            connectors,
            component,
            servers,
            steady_interval,
            steady_intervals,
            no_steady,
            phase,
            ..
        } => multi_thread()?.block_on(memory::run(&memory::Options {
            connectors,
            components: memory::components(&component)?,
            servers: servers.max(1),
            steady_interval: std::time::Duration::from_secs(steady_interval),
            steady_intervals: steady_intervals.max(1),
            no_steady,
            phase,
        }))?,
        Command::ColdStart {
            connectors,
            components,
            first_runs,
            second_runs,
            sandport,
            ..
        } => multi_thread()?.block_on(cold_start::run(&cold_start::Options {
            connectors,
            components,
            first_runs,
            second_runs,
            sandport,
        }))?,
        Command::Grpc {
            connectors,
            rate,
            list_rate,
            seconds,
            connections,
            concurrency,
            busy,
            busy_interval_ms,
            sandport,
            ..
        } => {
            // One thread for the load generator: the service keeps the rest.
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("start the tokio runtime")?
                .block_on(grpc::run(&grpc::Options {
                    connectors,
                    rate,
                    list_rate,
                    seconds,
                    connections: connections.max(1),
                    concurrency: concurrency.max(1),
                    sandport,
                    busy,
                    busy_interval: std::time::Duration::from_millis(busy_interval_ms.max(1)),
                }))?
        }
        Command::History {
            connectors,
            interval,
            warmup,
            seconds,
            servers,
            ..
        } => multi_thread()?.block_on(history::run(&history::Options {
            connectors,
            servers: servers.max(1),
            interval: std::time::Duration::from_secs(interval),
            warmup: std::time::Duration::from_secs(warmup),
            window: std::time::Duration::from_secs(seconds.max(1)),
        }))?,
        Command::Soak { seconds, modes, .. } => {
            // Two workers, as on the 2-core node the soak is judged on.
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .context("start the tokio runtime")?
                .block_on(soak::run(seconds, modes.as_deref()))?
        }
        Command::Cluster { args, .. } => multi_thread()?.block_on(cluster::run(&args.into()))?,
        Command::All { .. } | Command::Targets { .. } => unreachable!("handled above"),
    };
    println!("load average after: {}", report::loadavg());
    report::finish(&rows, emit);
    Ok(())
}

/// Runs every part in a child process and prints the summary table.
fn all(
    connectors: &[String],
    soak_seconds: u64,
    sandport: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("the bench's own path")?;
    let counts = connectors.join(",");
    let most = connectors
        .iter()
        .filter_map(|n| n.trim().parse::<usize>().ok())
        .max()
        .unwrap_or(10_000);
    let mut binary = Vec::new();
    if let Some(path) = sandport {
        binary = vec!["--sandport".to_string(), path.display().to_string()];
    }
    let mut parts: Vec<Vec<String>> = vec![
        vec!["boundary".into()],
        vec!["check".into()],
        [
            vec![
                "check-all".to_string(),
                "--connectors".into(),
                counts.clone(),
            ],
            binary.clone(),
        ]
        .concat(),
        vec![
            "memory".into(),
            "--connectors".into(),
            counts.clone(),
            "--component".into(),
            "prometheus".into(),
        ],
        vec![
            "memory".into(),
            "--connectors".into(),
            counts.clone(),
            "--component".into(),
            "http".into(),
        ],
        vec![
            "memory".into(),
            "--connectors".into(),
            counts,
            "--component".into(),
            "tcp".into(),
        ],
        [vec!["cold-start".to_string()], binary.clone()].concat(),
        [
            vec!["grpc".to_string(), "--busy".into(), "10000".into()],
            binary,
        ]
        .concat(),
        vec!["history".into(), "--connectors".into(), most.to_string()],
    ];
    if soak_seconds > 0 {
        parts.push(vec![
            "soak".into(),
            "--seconds".into(),
            soak_seconds.to_string(),
        ]);
    }
    let load_before = report::loadavg();
    let started = std::time::Instant::now();
    let mut rows: Vec<Row> = Vec::new();
    let mut failed = Vec::new();
    for args in &parts {
        println!();
        println!("$ sandport-bench {}", args.join(" "));
        let mut child = Process::new(&exe)
            .args(args)
            .arg("--emit-rows")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("run part {}", args[0]))?;
        let stdout = child.stdout.take().context("the part's stdout")?;
        for line in BufReader::new(stdout).lines() {
            let line = line.context("read the part's output")?;
            match line.strip_prefix(ROW_PREFIX) {
                Some(json) => match serde_json::from_str::<Row>(json) {
                    Ok(row) => rows.push(row),
                    Err(e) => println!("(unreadable row: {e}: {json})"),
                },
                None => println!("{line}"),
            }
        }
        let status = child.wait().context("wait for the part")?;
        if !status.success() {
            println!("part `{}` FAILED ({status})", args[0]);
            failed.push(args[0].clone());
        }
    }
    println!();
    println!("## Summary");
    println!();
    println!("machine: {}", report::machine());
    println!(
        "load average before: {load_before}; after: {}; suite took {:.0} s",
        report::loadavg(),
        started.elapsed().as_secs_f64()
    );
    if !failed.is_empty() {
        println!("parts that failed: {}", failed.join(", "));
    }
    println!();
    print!("{}", report::table(&rows));
    Ok(())
}
