//! Part 1, boundary overhead: one `health-check` call into a Rust guest that
//! touches no network (the hostile test guest in mode `count`: it counts the
//! call and answers healthy with the count as a detail) through
//! `Runtime::check`, so the figure includes the host's bookkeeping (permit,
//! instance lock, deadline, cache update); against a native Rust function
//! doing the guest's work (count, build a report with one detail).
//!
//! The wasm side times every call on its own (median and p99 of ns/call);
//! the native side is too fast for that, so it times batches of
//! [`NATIVE_BATCH`] calls and reports the median of the batches' ns/call.

use std::hint::black_box;
use std::time::{Duration, Instant};

use anyhow::Context;
use sandport_core::HealthStatus;

use crate::report::{Row, Stats, human};

const NATIVE_BATCH: u32 = 1_000;

pub struct Options {
    pub iterations: usize,
    pub warmup: usize,
}

/// What the native function returns: the shape of the guest's report.
struct Report {
    status: HealthStatus,
    message: String,
    details: Vec<(String, String)>,
}

/// The guest's `count` mode, natively.
#[inline(never)]
fn native_check(checks: &mut u64) -> Report {
    *checks += 1;
    Report {
        status: HealthStatus::Healthy,
        message: String::new(),
        details: vec![("checks".to_string(), checks.to_string())],
    }
}

pub async fn run(options: &Options) -> anyhow::Result<Vec<Row>> {
    println!(
        "method: Runtime::check on a `count` hostile guest (no network), {} warm-up + {} timed calls one after another, each timed; native: the same work in a Rust function, {} batches of {NATIVE_BATCH} calls",
        options.warmup,
        options.iterations,
        options.iterations / NATIVE_BATCH as usize
    );
    let runtime = crate::unscheduled_runtime()?;
    let wasm = sandport_tests::HOSTILE_WASM;
    runtime
        .register(sandport_tests::entry(&format!(
            "{{id: boundary, component: '{wasm}', host: 127.0.0.1, port: 9, settings: {{mode: count}}}}"
        )))
        .await
        .context("register the count guest")?;

    let mut unhealthy = 0usize;
    for _ in 0..options.warmup {
        let snapshot = runtime.check("boundary").await.context("check")?;
        unhealthy += usize::from(snapshot.status != HealthStatus::Healthy);
    }
    let mut samples = Vec::with_capacity(options.iterations);
    let started = Instant::now();
    for _ in 0..options.iterations {
        let t = Instant::now();
        let snapshot = runtime.check("boundary").await.context("check")?;
        samples.push(t.elapsed());
        unhealthy += usize::from(snapshot.status != HealthStatus::Healthy);
    }
    let wasm_total = started.elapsed();
    let last = runtime.check("boundary").await.context("check")?;
    runtime.shutdown().await;
    let wasm = Stats::new(samples);

    let mut checks = 0u64;
    for _ in 0..100_000 {
        black_box(native_check(black_box(&mut checks)));
    }
    let batches = (options.iterations / NATIVE_BATCH as usize).max(100);
    let mut native_samples = Vec::with_capacity(batches);
    for _ in 0..batches {
        let t = Instant::now();
        for _ in 0..NATIVE_BATCH {
            let report = native_check(black_box(&mut checks));
            black_box((&report.status, &report.message, &report.details));
        }
        native_samples.push(t.elapsed() / NATIVE_BATCH);
    }
    let native = Stats::new(native_samples);

    let ratio = wasm.median().as_secs_f64() / native.median().as_secs_f64();
    println!(
        "wasm (host call incl. bookkeeping): median {} p99 {} min {} mean {} per call over {} calls",
        human(wasm.median()),
        human(wasm.p99()),
        human(wasm.min()),
        human(wasm_total / options.iterations.max(1) as u32),
        wasm.len()
    );
    println!(
        "native function:                    median {} p99 {} per call (batch means)",
        human(native.median()),
        human(native.p99())
    );
    println!(
        "ratio of medians: {ratio:.0}x; every check healthy: {} (last: {:?} {:?})",
        unhealthy == 0,
        last.status,
        last.details
    );
    Ok(vec![Row::info(
        1,
        "health-check into a Rust guest, no network (host call incl. bookkeeping), median / p99",
        format!(
            "{} / {} per call ({} ns native, {ratio:.0}×){}",
            ns(wasm.median()),
            ns(wasm.p99()),
            native.median().as_nanos(),
            if unhealthy == 0 {
                String::new()
            } else {
                format!("; {unhealthy} checks NOT healthy")
            }
        ),
    )])
}

fn ns(d: Duration) -> String {
    format!("{} ns", crate::report::thousands(d.as_nanos() as u64))
}
