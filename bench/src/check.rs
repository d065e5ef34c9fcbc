//! Part 2, one full check of a loopback HTTP endpoint: `Runtime::check` of
//! the `http` built-in connector (one `GET /-/healthy`, through the host's
//! egress and the connector's pooled client) against a native `reqwest` GET
//! of the same URL with one reused keep-alive client (status checked, body
//! read). Sequential calls, warmed up, alternating blocks of wasm and native
//! calls so that changes in the machine's load hit both sides alike.

use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use sandport_core::HealthStatus;

use crate::report::{self, Row, Stats, human};
use crate::targets::Targets;

#[derive(Clone, Copy)]
pub struct Options {
    pub iterations: usize,
    pub warmup: usize,
    pub block: usize,
    /// This process on the first CPU, the target server on the last.
    pub pin: bool,
    /// One side alone, or both.
    pub only: Option<Side>,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Side {
    Wasm,
    Native,
}

/// Target: a check through wasm takes at most this times the native median.
const TARGET_RATIO: f64 = 1.15;
/// How the two sides are named in the figures printed.
const WASM_SIDE: &str = "wasm check (Runtime::check, http built-in)";
const NATIVE_SIDE: &str = "native reqwest GET";

/// A plain keep-alive client, as an operator's own Rust checker would use.
pub fn native_client() -> anyhow::Result<reqwest::Client> {
    // reqwest is built without a default crypto provider; only plain HTTP is
    // used here, but the builder wants one installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .context("build the native reqwest client")
}

async fn native_get(client: &reqwest::Client, url: &str) -> anyhow::Result<()> {
    let response = client.get(url).send().await.context("native GET")?;
    ensure!(
        response.status().is_success(),
        "native GET answered {}",
        response.status()
    );
    response.bytes().await.context("native body")?;
    Ok(())
}

pub async fn run(options: &Options) -> anyhow::Result<Vec<Row>> {
    // Both sides run in a task on the runtime's worker threads, as checks
    // do in the service (the scheduler's tasks, the API's handlers) and as a
    // native checker built on tokio would. Called from `block_on`'s thread
    // instead, every I/O event would cross between that thread and the
    // workers that drive the connections.
    let options = *options;
    tokio::spawn(async move { measure(&options).await })
        .await
        .context("the measuring task failed")?
}

async fn measure(options: &Options) -> anyhow::Result<Vec<Row>> {
    println!(
        "method: {} warm-up + {} timed sequential checks per side, in alternating blocks of {}; target: a loopback axum server (child process) answering 200",
        options.warmup, options.iterations, options.block
    );
    let targets = Targets::spawn(1)?;
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    if options.pin && cpus >= 2 {
        let pinned = report::pin_process(0, 0) && report::pin_process(targets.pid(), cpus - 1);
        println!(
            "pinning: {}",
            if pinned {
                format!(
                    "this process on CPU 0, the target server on CPU {}",
                    cpus - 1
                )
            } else {
                "not possible here; both unpinned".to_string()
            }
        );
    } else {
        println!("pinning: none");
    }
    let url = targets.url(0, "/-/healthy");
    let runtime = crate::unscheduled_runtime()?;
    runtime
        .register(sandport_tests::entry(&format!(
            "{{id: web, component: http, host: 127.0.0.1, port: {}, health_check: {{path: /-/healthy}}}}",
            targets.port(0)
        )))
        .await
        .context("register the http connector")?;
    let client = native_client()?;

    let mut unhealthy = 0usize;
    let mut last_message = String::new();
    let (run_wasm, run_native) = (
        options.only != Some(Side::Native),
        options.only != Some(Side::Wasm),
    );
    for _ in 0..options.warmup {
        if run_wasm {
            let snapshot = runtime.check("web").await.context("check")?;
            unhealthy += usize::from(snapshot.status != HealthStatus::Healthy);
            last_message = snapshot.message;
        }
        if run_native {
            native_get(&client, &url).await?;
        }
    }
    let mut wasm = Vec::with_capacity(options.iterations);
    let mut native = Vec::with_capacity(options.iterations);
    // CPU time of this process's threads (the runtime's workers included;
    // the target server is another process) per side.
    let (mut wasm_cpu, mut native_cpu) = (0u64, 0u64);
    let mut block_ratios = Vec::new();
    let mut done = 0;
    while done < options.iterations {
        let block = options.block.min(options.iterations - done);
        done += block;
        let cpu = report::threads_cpu_ns();
        if run_wasm {
            for _ in 0..block {
                let t = Instant::now();
                let snapshot = runtime.check("web").await.context("check")?;
                wasm.push(t.elapsed());
                if snapshot.status != HealthStatus::Healthy {
                    unhealthy += 1;
                    last_message = snapshot.message;
                }
            }
        }
        let middle = report::threads_cpu_ns();
        wasm_cpu += middle.saturating_sub(cpu);
        if run_native {
            for _ in 0..block {
                let t = Instant::now();
                native_get(&client, &url).await?;
                native.push(t.elapsed());
            }
        }
        native_cpu += report::threads_cpu_ns().saturating_sub(middle);
        if options.only.is_some() {
            continue;
        }
        // How the two sides compare within one stretch of machine weather.
        let wasm_block = Stats::new(wasm[wasm.len() - block..].to_vec());
        let native_block = Stats::new(native[native.len() - block..].to_vec());
        block_ratios.push(ratio(wasm_block.median(), native_block.median()));
    }
    block_ratios.sort_by(f64::total_cmp);
    let quartile = |q: f64| {
        let i = ((block_ratios.len() as f64 - 1.0) * q).round() as usize;
        block_ratios.get(i).copied().unwrap_or(f64::NAN)
    };
    let (q1, q2, q3) = (quartile(0.25), quartile(0.5), quartile(0.75));
    let per = |total: u64| Duration::from_nanos(total / options.iterations.max(1) as u64);
    let (wasm_cpu, native_cpu) = (per(wasm_cpu), per(native_cpu));
    runtime.shutdown().await;
    drop(targets);
    if let Some(side) = options.only {
        let (name, samples, cpu) = match side {
            Side::Wasm => (WASM_SIDE, wasm, wasm_cpu),
            Side::Native => (NATIVE_SIDE, native, native_cpu),
        };
        let stats = Stats::new(samples);
        println!(
            "{name} alone: median {} p99 {} max {}; CPU time of this process per call {}; checks not healthy: {unhealthy}",
            human(stats.median()),
            human(stats.p99()),
            human(stats.max()),
            human(cpu)
        );
        return Ok(Vec::new());
    }
    let (wasm, native) = (Stats::new(wasm), Stats::new(native));
    let ratio_p99 = ratio(wasm.p99(), native.p99());
    let ratio = ratio(wasm.median(), native.median());
    println!(
        "{WASM_SIDE}: median {} p99 {} max {}",
        human(wasm.median()),
        human(wasm.p99()),
        human(wasm.max())
    );
    println!(
        "{:<width$} median {} p99 {} max {}",
        format!("{NATIVE_SIDE}:"),
        human(native.median()),
        human(native.p99()),
        human(native.max()),
        width = WASM_SIDE.len() + 1
    );
    println!(
        "ratio of medians {ratio:.2}x, of p99s {ratio_p99:.2}x; wasm-side extra per check (medians): {}; checks not healthy: {unhealthy}{}",
        human(wasm.median().saturating_sub(native.median())),
        if unhealthy > 0 {
            format!(" (last: {last_message})")
        } else {
            String::new()
        }
    );
    println!(
        "ratio of the medians of each pair of blocks ({} pairs): quartiles {q1:.2}x / {q2:.2}x / {q3:.2}x",
        block_ratios.len()
    );
    let cpu = format!(
        "{} vs {} (+{})",
        human(wasm_cpu),
        human(native_cpu),
        human(wasm_cpu.saturating_sub(native_cpu))
    );
    println!("CPU time of this process per call (all its threads), wasm vs native: {cpu}");
    let healthy = if unhealthy == 0 {
        String::new()
    } else {
        format!("; {unhealthy} checks NOT healthy")
    };
    Ok(vec![
        Row::target(
            2,
            "loopback HTTP check through wasm vs native reqwest GET, medians",
            format!(
                "{} vs {} = **{ratio:.2}×**{healthy}",
                human(wasm.median()),
                human(native.median())
            ),
            format!("≤ {TARGET_RATIO:.2}×"),
            ratio <= TARGET_RATIO && unhealthy == 0,
        ),
        Row::info(
            2,
            "the same: ratio per pair of adjacent blocks, quartiles",
            format!("{q1:.2}× / {q2:.2}× / {q3:.2}×"),
        ),
        Row::info(
            2,
            "the same: CPU time of the checking process per call",
            cpu,
        ),
        Row::info(
            2,
            "the same, p99",
            format!(
                "{} vs {} = {ratio_p99:.2}×",
                human(wasm.p99()),
                human(native.p99())
            ),
        ),
    ])
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64().max(f64::MIN_POSITIVE)
}
