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
//! `--component all` runs every built-in, one after the other, and ends
//! with a summary of them.

mod phase;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail, ensure};

pub use phase::Phase;
use phase::{POINT_PREFIX, PhaseOptions, Point};

use crate::report::{Row, human, thousands};
use crate::targets::table;

/// `all` as every built-in; the rest as given, once each.
pub fn components(asked: &[String]) -> anyhow::Result<Vec<String>> {
    let mut components: Vec<String> = Vec::new();
    for name in asked.iter().map(|c| c.trim()).filter(|c| !c.is_empty()) {
        let names = if name == "all" {
            table::BUILTINS.iter().map(|b| b.name.to_string()).collect()
        } else {
            vec![name.to_string()]
        };
        for name in names {
            if !components.contains(&name) {
                components.push(name);
            }
        }
    }
    ensure!(!components.is_empty(), "no --component given");
    Ok(components)
}

pub struct Options {
    pub connectors: Vec<usize>,
    /// Built-ins (or component files), measured one after the other.
    pub components: Vec<String>,
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
        let ([n], [component]) = (&counts[..], &options.components[..]) else {
            bail!("a single phase takes one connector count and one component");
        };
        phase::run(&PhaseOptions {
            phase,
            connectors: *n,
            component: component.clone(),
            servers: options.servers,
            interval: options.steady_interval,
            intervals: options.steady_intervals.max(1),
            scrape: phase == Phase::Checked,
        })
        .await?;
        return Ok(Vec::new());
    }
    let mut rows = Vec::new();
    let mut summaries = Vec::new();
    let mut failed = Vec::new();
    for component in &options.components {
        let started = std::time::Instant::now();
        match run_component(options, &counts, component) {
            Ok((mut more, summary)) => {
                rows.append(&mut more);
                summaries.push(summary);
            }
            // One built-in's failure does not hide the others' figures.
            Err(e) if options.components.len() > 1 => {
                println!("`{component}` FAILED: {e:#}");
                failed.push(component.clone());
            }
            Err(e) => return Err(e),
        }
        println!("(`{component}` took {})", human(started.elapsed()));
    }
    if options.components.len() > 1 {
        print_summary(&summaries, &counts);
    }
    ensure!(
        failed.is_empty(),
        "part 4 failed for: {}",
        failed.join(", ")
    );
    Ok(rows)
}

/// Every state and count of one component.
fn run_component(
    options: &Options,
    counts: &[usize],
    component: &str,
) -> anyhow::Result<(Vec<Row>, Summary)> {
    let serves = table::find(component).map_or(table::Serves::Http, |b| b.serves);
    let list = counts
        .iter()
        .map(|n| thousands(*n as u64))
        .collect::<Vec<_>>()
        .join(", ");
    let targets = if serves.is_loopback_fake() {
        format!("{} {}", options.servers, serves.about())
    } else {
        serves.about().to_string()
    };
    println!();
    println!(
        "method: VmRSS; `{component}` connectors (ids c00000..) pointed at {targets} (a child process); checks time out after {}; every check must be healthy; registered concurrently; each state and count ({list}) in a fresh process: (a) scheduler off: idle (registered, never checked), then after one check_all; (b) scheduler on, checked every {}: the highest RSS of a sample a second through interval {} after the last registration",
        human(options.steady_interval.min(phase::check_timeout(serves))),
        human(options.steady_interval),
        options.steady_intervals.max(1),
    );
    for line in table::answers_for(component) {
        println!("  the targets answer: {line}");
    }
    let mut checked = Vec::new();
    for &n in counts {
        println!(
            "-- `{component}`, scheduler off, {} connectors",
            thousands(n as u64)
        );
        checked.push(Child::spawn(options, component, Phase::Checked, n)?.finish()?);
    }
    let mut steady = Vec::new();
    if !options.no_steady {
        // Side by side: each count waits the same intervals, and the
        // smaller adds little load to the larger one's machine.
        let children = counts
            .iter()
            .map(|&n| Child::spawn(options, component, Phase::Steady, n))
            .collect::<anyhow::Result<Vec<_>>>()?;
        // Every child waited for, even after one failed, so that none
        // runs on beside the next component.
        let results: Vec<_> = children
            .into_iter()
            .zip(counts)
            .map(|(child, &n)| {
                println!(
                    "-- `{component}`, scheduler on, {} connectors, every {}",
                    thousands(n as u64),
                    human(options.steady_interval)
                );
                child.finish()
            })
            .collect();
        for point in results {
            steady.push(point?);
        }
    }
    Ok(rows(options, component, &checked, &steady))
}

/// One phase running in a child process; its output is read as it comes
/// and printed by [`Child::finish`].
struct Child {
    process: std::process::Child,
    reader: std::thread::JoinHandle<anyhow::Result<(Vec<String>, Option<Point>)>>,
}

impl Child {
    fn spawn(options: &Options, component: &str, phase: Phase, n: usize) -> anyhow::Result<Child> {
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
                component,
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

/// One component's figures, for the summary of several.
struct Summary {
    component: String,
    target: f64,
    idle: Option<f64>,
    after: Option<f64>,
    steady: Option<f64>,
    /// Every scheduled check of the steady state was healthy.
    steady_healthy: bool,
}

fn print_summary(summaries: &[Summary], counts: &[usize]) {
    let step = match counts {
        [.., a, b] => format!("{} → {}", thousands(*a as u64), thousands(*b as u64)),
        _ => "one count: no step".to_string(),
    };
    let kib = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1}"));
    println!();
    println!("summary: KiB of RSS per connector, the {step} step");
    println!(
        "  {:<16} {:>8} {:>13} {:>8} {:>7}  verdict",
        "component", "idle", "after a check", "steady", "target"
    );
    for s in summaries {
        let judged = [s.idle, s.steady].into_iter().flatten();
        let pass = judged.clone().all(|v| v <= s.target) && s.steady_healthy;
        let verdict = match (judged.count(), pass) {
            (0, _) => "-",
            (_, true) => "pass",
            (_, false) => "FAIL",
        };
        println!(
            "  {:<16} {:>8} {:>13} {:>8} {:>7}  {verdict}{}",
            s.component,
            kib(s.idle),
            kib(s.after),
            kib(s.steady),
            format!("≤ {:.0}", s.target),
            if s.steady_healthy {
                ""
            } else {
                " (steady-state checks not all healthy)"
            }
        );
    }
}

fn rows(options: &Options, c: &str, checked: &[Point], steady: &[Point]) -> (Vec<Row>, Summary) {
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
    let mut summary = Summary {
        component: c.to_string(),
        target,
        idle: None,
        after: None,
        steady: None,
        steady_healthy: healthy_note(steady).is_empty() || steady.is_empty(),
    };
    if let [.., a, b] = steady
        && let Some(kib) = step(a, b, loaded)
    {
        println!("KiB per connector in the steady state: {kib:.1}");
        summary.steady = Some(kib);
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
                kib <= target && summary.steady_healthy,
            ));
    }
    if let [.., a, b] = checked
        && let (Some(after), Some(idle_kib)) = (step(a, b, loaded), step(a, b, idle))
    {
        println!("KiB per connector right after a check: {after:.1}; idle: {idle_kib:.1}");
        summary.after = Some(after);
        summary.idle = Some(idle_kib);
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
    (rows, summary)
}
