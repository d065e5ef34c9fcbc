//! Soak test: 100 hostile and 100 healthy connectors under the scheduler for
//! a while, in one process. Prints the process's RSS as it goes, checks done
//! and good checks late or failed. Exits 1 if any good check was late or
//! failed, or if memory still grew over the last third of the run by more
//! than 5% (memory must level off at what the config allows, whatever the
//! guests do).
//!
//! ```text
//! cargo run --release -p sandport-tests --bin soak -- [SECONDS] [LATE_MS]
//! ```
//!
//! `SOAK_MODES=alloc,loop` runs only those hostile modes (the 100 hostile
//! connectors are spread over them), to find which one a change affects;
//! `SOAK_PRINT_EVERY=10` prints RSS every 10 s instead of every 30 s.
#![allow(
    clippy::disallowed_methods,
    reason = "the soak test reads its own fixtures"
)]

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

use sandport_core::{HealthStatus, Runtime, RuntimeOptions};
use sandport_tests::{FakeServer, HOSTILE_WASM, Reply, entry};

mod growth;

const HOSTILE_MODES: &[&str] = &[
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

/// How much the last third of the run may grow, in per cent.
const MAX_LATE_GROWTH: f64 = 5.0;

fn rss_kib() -> u64 {
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

fn modes() -> Result<Vec<String>, String> {
    let Ok(chosen) = std::env::var("SOAK_MODES") else {
        return Ok(HOSTILE_MODES.iter().map(|m| m.to_string()).collect());
    };
    let modes: Vec<String> = chosen
        .split(',')
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .map(str::to_string)
        .collect();
    if let Some(unknown) = modes.iter().find(|m| !HOSTILE_MODES.contains(&m.as_str())) {
        return Err(format!(
            "SOAK_MODES: unknown mode `{unknown}` (known: {})",
            HOSTILE_MODES.join(", ")
        ));
    }
    if modes.is_empty() {
        return Err("SOAK_MODES names no mode".into());
    }
    Ok(modes)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> std::process::ExitCode {
    sandport_core::allocator::limit_arenas();
    let mut args = std::env::args().skip(1);
    let seconds: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(30);
    let late_ms: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let print_every: u64 = std::env::var("SOAK_PRINT_EVERY")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|v| *v > 0)
        .unwrap_or(30);
    let modes = match modes() {
        Ok(modes) => modes,
        Err(e) => {
            eprintln!("soak: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let rss_start = rss_kib();

    let server = FakeServer::prometheus().await;
    // What the soak measures is the runtime, not a server keeping a record.
    server.forget_requests();
    server.set("/huge", Reply::ok("z".repeat(4 << 20)));
    let port = server.port();
    let runtime = Runtime::new(RuntimeOptions::default()).expect("runtime");
    for i in 0..100 {
        let mode = modes[i % modes.len()].as_str();
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
            .await
            .expect("hostile registers");
    }
    for i in 0..100 {
        runtime
            .register(entry(&format!(
                "{{id: good-{i}, component: prometheus, host: 127.0.0.1, port: {port}, health_check: {{interval: 1s, timeout: 1s}}}}"
            )))
            .await
            .expect("good registers");
    }
    let rss_loaded = rss_kib();
    println!(
        "soak: 100 hostile ({}) + 100 healthy connectors for {seconds}s (late = over {late_ms}ms); RSS loaded {rss_loaded} KiB",
        modes.join(", ")
    );

    let mut seen: HashMap<String, SystemTime> = HashMap::new();
    let (mut good_checks, mut hostile_checks, mut bad) = (0u64, 0u64, 0u64);
    let mut samples = growth::Samples::default();
    let started = Instant::now();
    let end = started + Duration::from_secs(seconds);
    let mut next_print = Duration::from_secs(print_every);
    while Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let at = started.elapsed();
        samples.push(at, rss_kib());
        if at >= next_print {
            println!("soak: {:>4}s RSS {} KiB", at.as_secs(), rss_kib());
            next_print += Duration::from_secs(print_every);
        }
        for info in runtime.list(None) {
            let Some(at) = info.health.checked_at else {
                continue;
            };
            if seen.insert(info.id.clone(), at) == Some(at) {
                continue;
            }
            if info.id.starts_with("good-") {
                good_checks += 1;
                let late = info
                    .health
                    .latency
                    .is_some_and(|l| l > Duration::from_millis(late_ms));
                if info.health.status != HealthStatus::Healthy || late {
                    bad += 1;
                    println!(
                        "soak: BAD {}: {} {:?} {}",
                        info.id, info.health.status, info.health.latency, info.health.message
                    );
                }
            } else {
                hostile_checks += 1;
            }
        }
    }
    runtime.shutdown().await;
    println!(
        "soak: checks done: {good_checks} good, {hostile_checks} hostile (sampled every 200ms)"
    );
    println!("soak: good checks late or failed: {bad}");
    println!(
        "soak: RSS start {rss_start} KiB, loaded {rss_loaded} KiB, end {} KiB",
        rss_kib()
    );
    let growth = samples.late_growth();
    let flat = match growth {
        Some(g) => {
            println!(
                "soak: RSS over the last third: {} -> {} KiB ({:+.1}%, at most {MAX_LATE_GROWTH}%)",
                g.from, g.to, g.percent
            );
            g.percent <= MAX_LATE_GROWTH
        }
        None => {
            println!("soak: too short a run to judge growth");
            true
        }
    };
    if bad == 0 && good_checks > 0 && flat {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}
