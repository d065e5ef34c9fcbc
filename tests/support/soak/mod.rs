//! The soak: 100 hostile connectors (the hostile guest's modes in turn)
//! beside 100 healthy `prometheus` ones under the scheduler, in this
//! process, for a while. It counts good checks late or failed and samples
//! the process's RSS, so that a caller can judge both that hostile guests
//! cannot delay the others and that memory levels off at what the config
//! allows. The `soak` binary and the bench's soak part run it.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

use sandport_core::{HealthStatus, Runtime, RuntimeOptions};

use crate::{FakeServer, HOSTILE_WASM, Reply, entry};

mod growth;

pub use growth::Growth;

/// Every hostile mode the soak knows, in the order connectors get them.
pub const HOSTILE_MODES: &[&str] = &[
    "loop",
    "recurse",
    "alloc",
    "panic",
    "big-string",
    "log-flood",
    "host-loop",
    "fetch-metadata",
    "fetch-huge",
    "count",
];

/// How much the lowest RSS of the last third of a run may exceed the
/// lowest of the third before it, in per cent.
pub const MAX_LATE_GROWTH: f64 = 5.0;

pub struct Options {
    pub length: Duration,
    /// A good check slower than this is late.
    pub late: Duration,
    /// The hostile modes to run; the 100 hostile connectors are spread
    /// over them.
    pub modes: Vec<String>,
    /// How often to print the RSS.
    pub print_every: Duration,
}

impl Options {
    /// The modes named in `list` (comma-separated), each checked.
    pub fn modes_from(list: &str) -> Result<Vec<String>, String> {
        let modes: Vec<String> = list
            .split(',')
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .map(str::to_string)
            .collect();
        if let Some(unknown) = modes.iter().find(|m| !HOSTILE_MODES.contains(&m.as_str())) {
            return Err(format!(
                "unknown hostile mode `{unknown}` (known: {})",
                HOSTILE_MODES.join(", ")
            ));
        }
        if modes.is_empty() {
            return Err("no hostile mode named".into());
        }
        Ok(modes)
    }

    pub fn all_modes() -> Vec<String> {
        HOSTILE_MODES.iter().map(|m| m.to_string()).collect()
    }
}

pub struct Outcome {
    pub good_checks: u64,
    pub hostile_checks: u64,
    /// Good checks late or failed.
    pub bad: u64,
    pub rss_start: u64,
    pub rss_loaded: u64,
    pub rss_end: u64,
    /// How the run's last third compares with the third before it (`None`
    /// for a run too short to tell).
    pub growth: Option<Growth>,
}

impl Outcome {
    /// No good check late or failed, some done, and memory levelled off.
    pub fn passed(&self) -> bool {
        self.bad == 0
            && self.good_checks > 0
            && self
                .growth
                .as_ref()
                .is_none_or(|g| g.percent <= MAX_LATE_GROWTH)
    }
}

/// This process's resident set, KiB (0 where `/proc` has none).
pub fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// Runs the soak, printing as it goes (lines start with `soak:`).
pub async fn run(options: &Options) -> anyhow::Result<Outcome> {
    let rss_start = rss_kib();
    let server = FakeServer::prometheus().await;
    // What the soak measures is the runtime, not a server keeping a record
    // of every request.
    server.forget_requests();
    server.set("/huge", Reply::ok("z".repeat(4 << 20)));
    let port = server.port();
    let runtime = Runtime::new(RuntimeOptions::default())?;
    for i in 0..100 {
        let mode = options.modes[i % options.modes.len()].as_str();
        let settings = match mode {
            "fetch-metadata" => {
                "mode: fetch, url: 'http://169.254.169.254/latest/meta-data/'".to_string()
            }
            "fetch-huge" => format!("mode: fetch, url: '{}'", server.url("/huge")),
            "host-loop" => format!("mode: host-loop, url: '{}'", server.url("/-/healthy")),
            other => format!("mode: {other}"),
        };
        runtime
            .register(entry(&format!(
                "{{id: hostile-{i}, component: '{HOSTILE_WASM}', host: 127.0.0.1, port: {port}, settings: {{{settings}}}, health_check: {{interval: 2s, timeout: 1s}}}}"
            )))
            .await?;
    }
    for i in 0..100 {
        runtime
            .register(entry(&format!(
                "{{id: good-{i}, component: prometheus, host: 127.0.0.1, port: {port}, health_check: {{interval: 1s, timeout: 1s}}}}"
            )))
            .await?;
    }
    let rss_loaded = rss_kib();
    println!(
        "soak: 100 hostile ({}) + 100 healthy connectors for {}s (late = over {}ms); RSS loaded {rss_loaded} KiB",
        options.modes.join(", "),
        options.length.as_secs(),
        options.late.as_millis()
    );

    let mut seen: HashMap<String, SystemTime> = HashMap::new();
    let (mut good_checks, mut hostile_checks, mut bad) = (0u64, 0u64, 0u64);
    let mut samples = growth::Samples::default();
    let started = Instant::now();
    let mut next_print = options.print_every;
    let mut lowest = u64::MAX;
    while started.elapsed() < options.length {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let at = started.elapsed();
        let rss = rss_kib();
        samples.push(at, rss);
        lowest = lowest.min(rss);
        if at >= next_print {
            println!(
                "soak: {:>4}s RSS {rss} KiB (lowest since the last line {lowest} KiB)",
                at.as_secs()
            );
            next_print += options.print_every;
            lowest = u64::MAX;
        }
        for info in runtime.list(None) {
            let Some(checked) = info.health.checked_at else {
                continue;
            };
            if seen.insert(info.id.clone(), checked) == Some(checked) {
                continue;
            }
            if !info.id.starts_with("good-") {
                hostile_checks += 1;
                continue;
            }
            good_checks += 1;
            let late = info.health.latency.is_some_and(|l| l > options.late);
            if info.health.status != HealthStatus::Healthy || late {
                bad += 1;
                println!(
                    "soak: BAD {}: {} {:?} {}",
                    info.id, info.health.status, info.health.latency, info.health.message
                );
            }
        }
    }
    runtime.shutdown().await;
    let outcome = Outcome {
        good_checks,
        hostile_checks,
        bad,
        rss_start,
        rss_loaded,
        rss_end: rss_kib(),
        growth: samples.late_growth(),
    };
    println!(
        "soak: checks done: {good_checks} good, {hostile_checks} hostile (sampled every 200ms)"
    );
    println!("soak: good checks late or failed: {bad}");
    println!(
        "soak: RSS start {rss_start} KiB, loaded {rss_loaded} KiB, end {} KiB",
        outcome.rss_end
    );
    match &outcome.growth {
        Some(g) => println!(
            "soak: lowest RSS, third before last -> last third: {} -> {} KiB ({:+.1}%, at most {MAX_LATE_GROWTH}%)",
            g.from, g.to, g.percent
        ),
        None => println!("soak: too short a run to judge growth"),
    }
    Ok(outcome)
}
