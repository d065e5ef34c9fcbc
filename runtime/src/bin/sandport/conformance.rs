//! `sandport test-connector`: the conformance kit a connector author runs.
//!
//! Loads the component into a fresh runtime (which validates its imports),
//! registers it against HTTP servers it starts on loopback, and checks that
//! it answers like a connector should: healthy when the target is up, not
//! healthy (with a message) when it is down or fails, within its deadline
//! when the target hangs, and steadily over repeated checks.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::Router;
use axum::http::StatusCode;
use sandport::config::{self, ConnectorConfig};
use sandport::{HealthStatus, Runtime, RuntimeOptions};

struct Outcome {
    name: &'static str,
    passed: bool,
    detail: String,
}

/// How the test server answers every path.
#[derive(Clone, Copy)]
enum Target {
    Up,
    Failing,
    Hanging,
}

async fn start_target(target: Target) -> anyhow::Result<u16> {
    let app = Router::new().fallback(move || async move {
        match target {
            Target::Up => (
                StatusCode::OK,
                r#"{"database":"ok","version":"test","status":"ok"}"#,
            ),
            Target::Failing => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            Target::Hanging => {
                tokio::time::sleep(Duration::from_secs(60)).await;
                (StatusCode::OK, "late")
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(port)
}

fn entry(
    component: &Path,
    overrides: Option<&Path>,
    id: &str,
    port: u16,
    timeout: &str,
) -> anyhow::Result<ConnectorConfig> {
    let mut value: serde_norway::Value = match overrides {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            serde_norway::from_str(&text)
                .with_context(|| format!("{} is not YAML", path.display()))?
        }
        None => serde_norway::Value::Mapping(Default::default()),
    };
    let map = value
        .as_mapping_mut()
        .context("the --config file must hold one entry (a map)")?;
    let mut put = |key: &str, v: serde_norway::Value| {
        map.insert(key.into(), v);
    };
    put("id", id.into());
    put("component", component.display().to_string().into());
    put("host", "127.0.0.1".into());
    put("port", u64::from(port).into());
    put("scheme", "http".into());
    let mut health = serde_norway::Mapping::new();
    health.insert("timeout".into(), timeout.into());
    health.insert("interval".into(), "30s".into());
    if let Some(path) = map.get("health_check").and_then(|h| h.get("path")).cloned() {
        health.insert("path".into(), path);
    }
    map.insert("health_check".into(), serde_norway::Value::Mapping(health));
    config::parse_entry_value(&value, Path::new("."), sandport::builtins()).map_err(|problems| {
        let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
        anyhow::anyhow!("{}", lines.join("; "))
    })
}

/// Runs the kit; true when every check passed.
pub async fn run(component: &Path, overrides: Option<&Path>) -> anyhow::Result<bool> {
    let runtime = Runtime::new(RuntimeOptions {
        schedule: false,
        ..RuntimeOptions::default()
    })?;
    let mut results = Vec::new();
    let up = start_target(Target::Up).await?;
    let failing = start_target(Target::Failing).await?;
    let hanging = start_target(Target::Hanging).await?;
    let down = {
        let l = std::net::TcpListener::bind("127.0.0.1:0")?;
        l.local_addr()?.port()
    };

    // Loading: imports, exports, initialize.
    let loaded = runtime
        .register(entry(component, overrides, "up", up, "2s")?)
        .await;
    let loaded_ok = loaded.is_ok();
    results.push(Outcome {
        name: "loads: imports fit the world, initialize accepts the config",
        passed: loaded_ok,
        detail: match &loaded {
            Ok(info) => format!(
                "name `{}`, type {}, endpoint {}",
                info.name, info.connector_type, info.endpoint
            ),
            Err(e) => e.to_string(),
        },
    });
    if !loaded_ok {
        print_table(&results);
        return Ok(false);
    }

    let check = |id: &'static str| {
        let runtime = runtime.clone();
        async move { runtime.check(id).await.map_err(|e| anyhow::anyhow!(e)) }
    };
    let up_result = check("up").await?;
    results.push(Outcome {
        name: "target up: healthy",
        passed: up_result.status == HealthStatus::Healthy,
        detail: format!("{}: {}", up_result.status, up_result.message),
    });

    for (id, port, name) in [
        (
            "failing",
            failing,
            "target answers 503: not healthy, with a message",
        ),
        ("down", down, "target down: not healthy, with a message"),
    ] {
        runtime
            .register(entry(component, overrides, id, port, "2s")?)
            .await?;
        let s = check(id).await?;
        results.push(Outcome {
            name,
            passed: s.status != HealthStatus::Healthy
                && !s.message.is_empty()
                && s.failure.is_none(),
            detail: format!("{}: {}", s.status, s.message),
        });
    }

    runtime
        .register(entry(component, overrides, "hanging", hanging, "1s")?)
        .await?;
    let started = Instant::now();
    let s = check("hanging").await?;
    let took = started.elapsed();
    results.push(Outcome {
        name: "target hangs: gives up within its 1s deadline",
        passed: s.status != HealthStatus::Healthy && took < Duration::from_millis(1500),
        detail: format!("{} after {took:.2?}: {}", s.status, s.message),
    });

    let mut steady = true;
    let mut slowest = Duration::ZERO;
    for _ in 0..20 {
        let s = check("up").await?;
        slowest = slowest.max(s.latency.unwrap_or_default());
        if s.status != HealthStatus::Healthy {
            steady = false;
            break;
        }
    }
    results.push(Outcome {
        name: "20 checks in a row: healthy every time",
        passed: steady,
        detail: format!("slowest {slowest:.2?}"),
    });

    runtime.shutdown().await;
    results.push(Outcome {
        name: "close: the instance shuts down cleanly",
        passed: runtime.list(None).is_empty(),
        detail: String::new(),
    });
    print_table(&results);
    Ok(results.iter().all(|r| r.passed))
}

fn print_table(results: &[Outcome]) {
    let width = results.iter().map(|r| r.name.len()).max().unwrap_or(0);
    for r in results {
        println!(
            "{}  {:<width$}  {}",
            if r.passed { "PASS" } else { "FAIL" },
            r.name,
            r.detail
        );
    }
    let failed = results.iter().filter(|r| !r.passed).count();
    println!("{} passed, {} failed", results.len() - failed, failed);
}
