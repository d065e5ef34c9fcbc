//! Part 5, cold start: `sandport serve` (the release binary) on a config of
//! 100 connectors, timed from spawn until gRPC `ListConnectors` lists all
//! 100 (the service loads and initialises every connector before it
//! serves). First start: an empty compiled-component cache
//! (`SANDPORT_CACHE_DIR`), so every distinct component is compiled; second
//! start: the same cache, so they are loaded precompiled. Built-ins go
//! through the same cache as components given by path
//! (`Sandbox::prepare_builtin` → `prepare` → `compile_or_load`).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::ensure;

use crate::report::{Row, Stats, human};
use crate::serve::{self, Serve, TempDir};
use crate::targets::Targets;

pub struct Options {
    pub connectors: usize,
    pub components: Vec<String>,
    pub first_runs: usize,
    pub second_runs: usize,
    pub sandport: Option<PathBuf>,
}

/// Target: the second (cached) start of 100 connectors.
const TARGET: Duration = Duration::from_millis(300);

pub async fn run(options: &Options) -> anyhow::Result<Vec<Row>> {
    ensure!(!options.components.is_empty(), "no components given");
    let binary = serve::binary(options.sandport.as_deref())?;
    let components: Vec<&str> = options.components.iter().map(String::as_str).collect();
    println!(
        "method: {} connectors cycling through {} built-ins ({}); spawn `sandport serve` → ListConnectors lists them all, polled every 2 ms; {} first starts (each with an empty cache dir) and {} second starts (on the last first start's cache); median of each",
        options.connectors,
        components.len(),
        components.join(", "),
        options.first_runs,
        options.second_runs
    );
    let targets = Targets::spawn(8)?;
    let dir = TempDir::new("cold")?;
    let config = serve::write_config(dir.path(), options.connectors, &components, &targets, None)?;

    let mut first = Vec::new();
    let mut cache = None;
    for _ in 0..options.first_runs.max(1) {
        let fresh = TempDir::new("cache")?;
        let took = start_once(&binary, &config, fresh.path(), options.connectors).await?;
        println!("first start (empty cache): {}", human(took));
        first.push(took);
        cache = Some(fresh);
    }
    let Some(cache) = cache else {
        anyhow::bail!("no first start ran");
    };
    let cached: Vec<String> = std::fs::read_dir(cache.path())
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".cwasm"))
                .collect()
        })
        .unwrap_or_default();
    println!(
        "the cache holds {} compiled component(s) after a first start (one per distinct component expected: {})",
        cached.len(),
        components.len()
    );

    let mut second = Vec::new();
    for _ in 0..options.second_runs.max(1) {
        let took = start_once(&binary, &config, cache.path(), options.connectors).await?;
        println!("second start (cached): {}", human(took));
        second.push(took);
    }
    let (first, second) = (Stats::new(first), Stats::new(second));
    println!(
        "first start median {} (min {}); second start median {} (min {})",
        human(first.median()),
        human(first.min()),
        human(second.median()),
        human(second.min())
    );
    Ok(vec![
        Row::info(
            5,
            format!(
                "cold start, {} connectors ({} built-ins), first start (compile)",
                options.connectors,
                components.len()
            ),
            human(first.median()),
        ),
        Row::target(
            5,
            format!(
                "cold start, {} connectors, second start (precompiled cache: {} file(s))",
                options.connectors,
                cached.len()
            ),
            format!("**{}**", human(second.median())),
            "≤ 300 ms",
            second.median() <= TARGET,
        ),
    ])
}

/// Starts `sandport serve` on `config` and `cache`, and stops it once it
/// lists all `connectors`: how long that took.
async fn start_once(
    binary: &Path,
    config: &Path,
    cache: &Path,
    connectors: usize,
) -> anyhow::Result<Duration> {
    let since = Instant::now();
    let mut service = Serve::spawn(binary, config, cache)?;
    let took = service
        .wait_listed(connectors, since, Duration::from_secs(120))
        .await?;
    service.stop(Vec::new()).await;
    Ok(took)
}
