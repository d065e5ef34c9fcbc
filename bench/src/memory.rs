//! Part 4, memory: the process's RSS (VmRSS) per connector in three states,
//! each at every connector count asked for (1,000 and 10,000 by default),
//! each state and count in a fresh child process ([`phase`]):
//!
//! - **steady state**: the scheduler on, every connector checked on its
//!   interval (30 s), sampled through the third interval after the last
//!   registration: what a running service holds, and what a node is sized
//!   by;
//! - **idle**: registered and initialised, never checked;
//! - **right after a check**: idle, then one `check_all`.
//!
//! KiB per connector are judged on the step between the two counts
//! (1,000 → 10,000), which leaves out the one-off cost of compiling the
//! component; the figure over the runtime alone at each count is printed
//! too.
//!
//! Each built-in is checked against a target that answers its check
//! (`targets::table`): a figure for connectors whose checks fail is not the
//! memory of a running service, so a `check_all` with a check that is not
//! healthy fails the phase, naming the connector and the message.

mod phase;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail, ensure};

pub use phase::Phase;
use phase::{POINT_PREFIX, PhaseOptions, Point};

use crate::report::{Row, human, thousands};
use crate::targets::table;

pub struct Options {
    pub connectors: Vec<usize>,
    pub component: String,
    pub servers: usize,
    /// The scheduled checks' interval in the steady state.
    pub steady_interval: Duration,
    /// Intervals to wait before (and through the last of which) the steady
    /// state is sampled.
    pub steady_intervals: u32,
    /// Skip the steady state.
    pub no_steady: bool,
    /// Run one phase in this process (the parent's child).
    pub phase: Option<Phase>,
}

/// Target: KiB of RSS per connector, idle and in the steady state, of a
/// connector that speaks HTTP.
const TARGET_HTTP_KIB: f64 = 50.0;
/// The same for one that speaks TCP itself (wasi:sockets).
const TARGET_TCP_KIB: f64 = 60.0;
/// Target: CPU one `/metrics` scrape takes with 10,000 connectors.
const SCRAPE_TARGET_MS: f64 = 100.0;

/// The built-ins that speak TCP through wasi:sockets, not HTTP.
pub fn speaks_tcp(component: &str) -> bool {
    [
        "tcp",
        "redis",
        "postgresql",
        "mysql",
        "nats",
        "mqtt",
        "rabbitmq",
    ]
    .contains(&component)
}

pub async fn run(options: &Options) -> anyhow::Result<Vec<Row>> {
    let mut counts = options.connectors.clone();
    counts.sort_unstable();
    counts.dedup();
    ensure!(!counts.is_empty(), "no connector counts given");
    ensure!(
        options.steady_interval >= Duration::from_secs(1),
        "--steady-interval must be at least 1 (second): the config refuses shorter health-check intervals"
    );
    if let Some(phase) = options.phase {
        let [n] = counts[..] else {
            bail!("a single phase takes one connector count");
        };
        phase::run(&PhaseOptions {
            phase,
            connectors: n,
            component: options.component.clone(),
            servers: options.servers,
            interval: options.steady_interval,
            intervals: options.steady_intervals.max(1),
            scrape: phase == Phase::Checked,
        })
        .await?;
        return Ok(Vec::new());
    }
    let serves = table::find(&options.component).map_or(table::Serves::Http, |b| b.serves);
    let targets = if serves.is_loopback_fake() {
        format!("{} {}", options.servers, serves.about())
    } else {
        serves.about().to_string()
    };
    let list = counts
        .iter()
        .map(|n| thousands(*n as u64))
        .collect::<Vec<_>>()
        .join(", ");
    println!(
        "method: VmRSS; `{}` connectors (ids c00000..) pointed at {targets} (a child process); every check must be healthy; registered concurrently; each state and count ({list}) in a fresh process: (a) scheduler off: idle (registered, never checked), then after one check_all; (b) scheduler on, checked every {}: the highest RSS of a sample a second through interval {} after the last registration",
        options.component,
        human(options.steady_interval),
        options.steady_intervals.max(1),
    );
    for line in table::answers_for(&options.component) {
        println!("  the targets answer: {line}");
    }
    let mut checked = Vec::new();
    for &n in &counts {
        println!("-- scheduler off, {} connectors", thousands(n as u64));
        checked.push(Child::spawn(options, Phase::Checked, n)?.finish()?);
    }
    let mut steady = Vec::new();
    if !options.no_steady {
        // Side by side: each count waits the same intervals, and the
        // smaller adds little load to the larger one's machine.
        let children = counts
            .iter()
            .map(|&n| Child::spawn(options, Phase::Steady, n))
            .collect::<anyhow::Result<Vec<_>>>()?;
        for (child, &n) in children.into_iter().zip(&counts) {
            println!(
                "-- scheduler on, {} connectors, every {}",
                thousands(n as u64),
                human(options.steady_interval)
            );
            steady.push(child.finish()?);
        }
    }
    Ok(rows(options, &checked, &steady))
}

/// One phase running in a child process; its output is read as it comes
/// and printed by [`Child::finish`].
struct Child {
    process: std::process::Child,
    reader: std::thread::JoinHandle<anyhow::Result<(Vec<String>, Option<Point>)>>,
}

impl Child {
    fn spawn(options: &Options, phase: Phase, n: usize) -> anyhow::Result<Child> {
        let exe = std::env::current_exe().context("the bench's own path")?;
        let mut process = Command::new(exe)
            .args([
                "memory",
                "--phase",
                match phase {
                    Phase::Checked => "checked",
                    Phase::Steady => "steady",
                },
                "--connectors",
                &n.to_string(),
                "--component",
                &options.component,
                "--servers",
                &options.servers.to_string(),
                "--steady-interval",
                &options.steady_interval.as_secs().to_string(),
                "--steady-intervals",
                &options.steady_intervals.to_string(),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("start a phase of part 4")?;
        let stdout = process.stdout.take().context("the phase's stdout")?;
        let reader = std::thread::spawn(move || {
            let mut lines = Vec::new();
            let mut point = None;
            for line in BufReader::new(stdout).lines() {
                let line = line.context("read the phase's output")?;
                match line.strip_prefix(POINT_PREFIX) {
                    Some(json) => point = Some(serde_json::from_str::<Point>(json)?),
                    // The child's own header (machine, load) is the parent's.
                    None if line.starts_with("  ") => lines.push(line),
                    None => {}
                }
            }
            Ok((lines, point))
        });
        Ok(Child { process, reader })
    }

    /// Waits for the phase, prints its output, returns its point.
    fn finish(mut self) -> anyhow::Result<Point> {
        let status = self.process.wait().context("wait for the phase")?;
        let (lines, point) = self
            .reader
            .join()
            .map_err(|_| anyhow::anyhow!("the reader of a phase's output panicked"))??;
        for line in lines {
            println!("{line}");
        }
        ensure!(status.success(), "the phase failed ({status})");
        point.context("the phase reported nothing")
    }
}

/// KiB per connector between two points of `which` (the step leaves out
/// what the first connector pays alone: compiling the component).
fn step(a: &Point, b: &Point, which: fn(&Point) -> u64) -> Option<f64> {
    let added = b.connectors.checked_sub(a.connectors).filter(|n| *n > 0)?;
    // Each process's own runtime-alone RSS taken out, so that two
    // processes compare.
    let a_rise = which(a).saturating_sub(a.zero) as f64;
    let b_rise = which(b).saturating_sub(b.zero) as f64;
    Some((b_rise - a_rise) / added as f64)
}

fn over_zero(p: &Point, which: fn(&Point) -> u64) -> f64 {
    which(p).saturating_sub(p.zero) as f64 / p.connectors.max(1) as f64
}

fn rows(options: &Options, checked: &[Point], steady: &[Point]) -> Vec<Row> {
    let c = &options.component;
    let target = if speaks_tcp(c) {
        TARGET_TCP_KIB
    } else {
        TARGET_HTTP_KIB
    };
    let idle = |p: &Point| p.idle;
    let loaded = |p: &Point| p.loaded;
    let mut rows = Vec::new();
    let counts = |points: &[Point]| {
        points
            .iter()
            .map(|p| thousands(p.connectors as u64))
            .collect::<Vec<_>>()
            .join(" / ")
    };
    let healthy_note = |points: &[Point]| {
        let (healthy, checks) = points
            .iter()
            .fold((0, 0), |(h, c), p| (h + p.healthy, c + p.checks));
        if healthy == checks && checks > 0 {
            String::new()
        } else {
            format!(" ({healthy}/{checks} checks healthy)")
        }
    };
    if let [.., a, b] = steady
        && let Some(kib) = step(a, b, loaded)
    {
        println!("KiB per connector in the steady state: {kib:.1}");
        rows.push(Row::target(
                4,
                format!(
                    "RSS per `{c}` connector, steady state: scheduler on, checked every {}, after {} intervals ({} → {})",
                    human(options.steady_interval),
                    options.steady_intervals.max(1),
                    thousands(a.connectors as u64),
                    thousands(b.connectors as u64)
                ),
                format!("**{kib:.1} KiB**{}", healthy_note(steady)),
                format!("≤ {target:.0} KiB"),
                kib <= target && healthy_note(steady).is_empty(),
            ));
    }
    if let [.., a, b] = checked
        && let (Some(after), Some(idle_kib)) = (step(a, b, loaded), step(a, b, idle))
    {
        println!("KiB per connector right after a check: {after:.1}; idle: {idle_kib:.1}");
        rows.push(Row::info(
            4,
            format!(
                "RSS per `{c}` connector right after one check_all ({} → {})",
                thousands(a.connectors as u64),
                thousands(b.connectors as u64)
            ),
            format!("{after:.1} KiB{}", healthy_note(checked)),
        ));
        rows.push(Row::target(
            4,
            format!(
                "RSS per idle `{c}` connector ({} → {})",
                thousands(a.connectors as u64),
                thousands(b.connectors as u64)
            ),
            format!("**{idle_kib:.1} KiB**"),
            format!("≤ {target:.0} KiB"),
            idle_kib <= target,
        ));
    }
    let per_count = |points: &[Point], which: fn(&Point) -> u64| {
        points
            .iter()
            .map(|p| format!("{:.1}", over_zero(p, which)))
            .collect::<Vec<_>>()
            .join(" / ")
    };
    let mut states = Vec::new();
    if !steady.is_empty() {
        states.push(format!("steady {}", per_count(steady, loaded)));
    }
    states.push(format!("after a check {}", per_count(checked, loaded)));
    states.push(format!("idle {} KiB", per_count(checked, idle)));
    rows.push(Row::info(
        4,
        format!(
            "RSS per `{c}` connector over the runtime alone at {} (incl. compiling the component once)",
            counts(checked)
        ),
        states.join("; "),
    ));
    let mib = |points: &[Point], which: fn(&Point) -> u64| {
        points
            .iter()
            .map(|p| format!("{}", which(p) / 1024))
            .collect::<Vec<_>>()
            .join(" / ")
    };
    let zero = checked.first().map_or(0, |p| p.zero / 1024);
    let mut states = Vec::new();
    if !steady.is_empty() {
        states.push(format!("steady {}", mib(steady, loaded)));
    }
    states.push(format!("after a check {}", mib(checked, loaded)));
    states.push(format!("idle {} MiB", mib(checked, idle)));
    rows.push(Row::info(
        4,
        format!(
            "RSS with {} `{c}` connectors (the runtime alone: {zero} MiB)",
            counts(checked)
        ),
        states.join("; "),
    ));
    if let Some(last) = checked.last()
        && let Some(ms) = last.scrape_ms
    {
        rows.push(Row::target(
            4,
            format!(
                "CPU of one /metrics scrape, {} connectors ({} KiB of text)",
                thousands(last.connectors as u64),
                thousands(last.scrape_kib)
            ),
            format!("**{ms:.1} ms**"),
            "< 100 ms",
            ms < SCRAPE_TARGET_MS,
        ));
    }
    rows
}
