//! Soak test: 100 hostile and 100 healthy connectors under the scheduler for
//! a while, in one process. Prints checks done, good checks late or failed
//! (must be 0) and the process's RSS at start and end. Exits 1 if any good
//! check was late or failed.
//!
//! ```text
//! cargo run --release -p sandport-tests --bin soak -- [SECONDS] [LATE_MS]
//! ```
#![allow(
    clippy::disallowed_methods,
    reason = "the soak test reads its own fixtures"
)]

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

use sandport_core::{HealthStatus, Runtime, RuntimeOptions};
use sandport_tests::{FakeServer, HOSTILE_WASM, Reply, entry};

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

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> std::process::ExitCode {
    let mut args = std::env::args().skip(1);
    let seconds: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(30);
    let late_ms: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let rss_start = rss_kib();

    let server = FakeServer::prometheus().await;
    server.set("/huge", Reply::ok("z".repeat(4 << 20)));
    let port = server.port();
    let runtime = Runtime::new(RuntimeOptions::default()).expect("runtime");
    for i in 0..100 {
        let mode = HOSTILE_MODES[i % HOSTILE_MODES.len()];
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
    println!("soak: 100 hostile + 100 healthy connectors for {seconds}s (late = over {late_ms}ms)");

    let mut seen: HashMap<String, SystemTime> = HashMap::new();
    let (mut good_checks, mut hostile_checks, mut bad) = (0u64, 0u64, 0u64);
    let end = Instant::now() + Duration::from_secs(seconds);
    while Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(200)).await;
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
    if bad == 0 && good_checks > 0 {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}
