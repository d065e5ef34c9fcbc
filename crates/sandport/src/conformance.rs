//! The conformance kit (`sandport test-connector`): what a connector author
//! runs before shipping a component.
//!
//! Loads the component into a fresh runtime (which validates its imports),
//! registers it against HTTP servers it starts on loopback, and checks that
//! it answers like a connector should: every export answers (`id` and
//! `get-config` with the entry's values); healthy when the target is up (also
//! when slow), not healthy with a message when the target fails, is down or
//! sends it somewhere the sandbox refuses; within its deadline when the
//! target hangs; steadily over repeated checks, without its memory growing
//! towards its limit; and that it closes cleanly.

use std::fmt;
use std::path::Path;
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use sandport_config::{self as config, ConnectorConfig};
use sandport_core::{HealthSnapshot, HealthStatus, Runtime, RuntimeOptions};

/// Why the kit could not run at all (as opposed to a check that failed).
#[derive(Debug, thiserror::Error)]
pub enum KitError {
    #[error("cannot start the kit's runtime: {0}")]
    Runtime(#[from] sandport_core::RuntimeError),
    #[error("cannot start a loopback test server: {0}")]
    Server(#[from] std::io::Error),
    #[error("cannot read the entry file {path}: {source}")]
    ReadEntry {
        path: String,
        source: sandport_config::ReadError,
    },
    #[error("the entry file {path} is not usable: {why}")]
    BadEntry { path: String, why: String },
    #[error("the component loaded once but not a second time: {0}")]
    Reload(String),
    #[error("connector `{0}` vanished from the kit's runtime")]
    Vanished(String),
}

/// One row of the kit's table.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// What was checked, e.g. "target up: healthy".
    pub name: &'static str,
    pub passed: bool,
    /// What was seen.
    pub detail: String,
}

/// Every row, in the order the checks ran.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub outcomes: Vec<Outcome>,
}

impl Report {
    pub fn passed(&self) -> bool {
        !self.outcomes.is_empty() && self.outcomes.iter().all(|o| o.passed)
    }

    /// The row named `name`, if the kit got that far.
    pub fn outcome(&self, name: &str) -> Option<&Outcome> {
        self.outcomes.iter().find(|o| o.name == name)
    }

    fn push(&mut self, name: &'static str, passed: bool, detail: impl Into<String>) {
        self.outcomes.push(Outcome {
            name,
            passed,
            detail: detail.into(),
        });
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = self
            .outcomes
            .iter()
            .map(|o| o.name.len())
            .max()
            .unwrap_or(0);
        for o in &self.outcomes {
            let verdict = if o.passed { "PASS" } else { "FAIL" };
            writeln!(f, "{verdict}  {:<width$}  {}", o.name, o.detail)?;
        }
        let failed = self.outcomes.iter().filter(|o| !o.passed).count();
        writeln!(
            f,
            "{} passed, {} failed",
            self.outcomes.len() - failed,
            failed
        )
    }
}

/// Row names, for tests and scripts that look for one row.
pub mod rows {
    pub const LOADS: &str = "loads: imports fit the world, initialize accepts the config";
    pub const DESCRIBES: &str = "describes itself: name, description, endpoint";
    pub const ECHO: &str = "id and get-config: the entry's id, host and port";
    pub const UP: &str = "target up: healthy";
    pub const SLOW: &str = "target slow (0.5s): still healthy, latency shows it";
    pub const FAILING: &str = "target answers 503: not healthy, with a message";
    pub const DOWN: &str = "target down: not healthy, with a message";
    pub const DENIED: &str = "target redirects to a denied host: not healthy, request refused";
    pub const HANGING: &str = "target hangs: gives up within its 1s deadline";
    pub const STEADY: &str = "20 checks in a row: healthy every time";
    pub const MEMORY: &str = "memory: does not grow towards its limit";
    pub const CLOSE: &str = "close: the instance shuts down cleanly";
}

/// How a loopback test server answers every path.
#[derive(Clone, Copy)]
enum Target {
    Up,
    Slow,
    Failing,
    Hanging,
    /// Redirects to the cloud metadata address, which no grant for the
    /// connector's own endpoint allows.
    RedirectToMetadata,
}

const SLOW_ANSWER: Duration = Duration::from_millis(500);
const METADATA_URL: &str = "http://169.254.169.254/latest/meta-data/";

async fn answer(target: Target) -> Response {
    const UP_BODY: &str = r#"{"database":"ok","version":"test","status":"ok"}"#;
    match target {
        Target::Up => (StatusCode::OK, UP_BODY).into_response(),
        Target::Slow => {
            tokio::time::sleep(SLOW_ANSWER).await;
            (StatusCode::OK, UP_BODY).into_response()
        }
        Target::Failing => (StatusCode::SERVICE_UNAVAILABLE, "unavailable").into_response(),
        Target::Hanging => {
            tokio::time::sleep(Duration::from_secs(60)).await;
            (StatusCode::OK, "late").into_response()
        }
        Target::RedirectToMetadata => {
            (StatusCode::FOUND, [(header::LOCATION, METADATA_URL)]).into_response()
        }
    }
}

async fn start_target(target: Target) -> std::io::Result<u16> {
    let app = Router::new().fallback(move || answer(target));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(port)
}

/// A loopback port that refuses connections for as long as the socket is
/// held: bound but never listening. A port only learnt and released could
/// be handed to one of the kit's own targets, and "down" would reach it.
fn refusing_port() -> std::io::Result<(tokio::net::TcpSocket, u16)> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind((std::net::Ipv4Addr::LOCALHOST, 0).into())?;
    let port = socket.local_addr()?.port();
    Ok((socket, port))
}

/// The author's entry (if any) with the kit's id, component and target.
fn entry(
    component: &Path,
    overrides: Option<&Path>,
    id: &str,
    port: u16,
    timeout: &str,
) -> Result<ConnectorConfig, KitError> {
    let shown = |p: &Path| p.display().to_string();
    let mut value: serde_norway::Value = match overrides {
        Some(path) => {
            let text = sandport_config::read_bounded_text(path, sandport_config::MAX_FILE_SIZE)
                .map_err(|source| KitError::ReadEntry {
                    path: shown(path),
                    source,
                })?;
            serde_norway::from_str(&text).map_err(|e| KitError::BadEntry {
                path: shown(path),
                why: format!("not YAML: {e}"),
            })?
        }
        None => serde_norway::Value::Mapping(Default::default()),
    };
    let bad = |why: String| KitError::BadEntry {
        path: overrides.map(shown).unwrap_or_default(),
        why,
    };
    let map = value
        .as_mapping_mut()
        .ok_or_else(|| bad("it must hold one entry (a map)".into()))?;
    map.insert("id".into(), id.into());
    map.insert("component".into(), shown(component).into());
    map.insert("host".into(), "127.0.0.1".into());
    map.insert("port".into(), u64::from(port).into());
    map.insert("scheme".into(), "http".into());
    map.insert("enabled".into(), true.into());
    let mut health = serde_norway::Mapping::new();
    health.insert("timeout".into(), timeout.into());
    health.insert("interval".into(), "30s".into());
    if let Some(path) = map.get("health_check").and_then(|h| h.get("path")).cloned() {
        health.insert("path".into(), path);
    }
    map.insert("health_check".into(), serde_norway::Value::Mapping(health));
    config::parse_entry_value(
        &value,
        config::ComponentPaths::Anywhere(Path::new(".")),
        sandport_builtins::catalog(),
    )
    .map_err(|problems| {
        let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
        bad(lines.join("; "))
    })
}

fn said(s: &HealthSnapshot) -> String {
    match &s.failure {
        Some(kind) => format!("{} ({}): {}", s.status, kind.as_str(), s.message),
        None => format!("{}: {}", s.status, s.message),
    }
}

/// Runs the kit on `component`, with the settings of the entry file
/// `overrides` (its id, component and target are the kit's own), keeping
/// compiled code in `cache_dir`.
pub async fn run(
    component: &Path,
    overrides: Option<&Path>,
    cache_dir: Option<std::path::PathBuf>,
) -> Result<Report, KitError> {
    let runtime = Runtime::new(RuntimeOptions {
        schedule: false,
        cache_dir,
        ..RuntimeOptions::default()
    })?;
    let report = run_on(&runtime, component, overrides).await;
    runtime.shutdown().await;
    report
}

async fn run_on(
    runtime: &Runtime,
    component: &Path,
    overrides: Option<&Path>,
) -> Result<Report, KitError> {
    let mut report = Report::default();
    let up = start_target(Target::Up).await?;
    let (_held, down) = refusing_port()?;

    let loaded = runtime
        .register(entry(component, overrides, "up", up, "2s")?)
        .await;
    let info = match loaded {
        Ok(info) => info,
        Err(e) => {
            report.push(rows::LOADS, false, e.to_string());
            return Ok(report);
        }
    };
    report.push(rows::LOADS, true, format!("type {}", info.connector_type));
    let missing: Vec<&str> = [
        ("name", &info.name),
        ("description", &info.description),
        ("endpoint", &info.endpoint),
    ]
    .into_iter()
    .filter(|(_, v)| v.trim().is_empty())
    .map(|(k, _)| k)
    .collect();
    report.push(
        rows::DESCRIBES,
        missing.is_empty(),
        if missing.is_empty() {
            format!("{:?}, endpoint {}", info.description, info.endpoint)
        } else {
            format!("empty: {}", missing.join(", "))
        },
    );

    let check = |id: &'static str| async move {
        runtime
            .check(id)
            .await
            .map_err(|_| KitError::Vanished(id.into()))
    };
    let s = check("up").await?;
    report.push(rows::UP, s.status == HealthStatus::Healthy, said(&s));

    let echo = runtime
        .echo("up")
        .await
        .map_err(|_| KitError::Vanished("up".into()))?;
    let (passed, detail) = match echo {
        None => (false, "no live instance after a check".to_string()),
        Some(Err(e)) => (false, e),
        Some(Ok(echo)) => {
            let wrong: Vec<String> = [
                ("id", echo.id.as_str(), "up".to_string()),
                ("get-config id", &echo.config_id, "up".to_string()),
                (
                    "get-config host",
                    &echo.config_host,
                    "127.0.0.1".to_string(),
                ),
                (
                    "get-config port",
                    &echo.config_port.to_string(),
                    up.to_string(),
                ),
            ]
            .into_iter()
            .filter(|(_, got, want)| got != want)
            .map(|(what, got, want)| format!("{what} is {got:?}, not {want:?}"))
            .collect();
            if wrong.is_empty() {
                (true, format!("id `up`, {} setting(s)", echo.settings))
            } else {
                (false, wrong.join("; "))
            }
        }
    };
    report.push(rows::ECHO, passed, detail);

    let slow = start_target(Target::Slow).await?;
    register(runtime, entry(component, overrides, "slow", slow, "2s")?).await?;
    let s = check("slow").await?;
    let latency = s.latency.unwrap_or_default();
    report.push(
        rows::SLOW,
        s.status == HealthStatus::Healthy && latency >= SLOW_ANSWER,
        format!("{} in {latency:.2?}", said(&s)),
    );

    // A connector that answered (failure None) said why it is not healthy;
    // one that trapped or timed out did not.
    let failing = start_target(Target::Failing).await?;
    let denied = start_target(Target::RedirectToMetadata).await?;
    for (id, port, name) in [
        ("failing", failing, rows::FAILING),
        ("down", down, rows::DOWN),
    ] {
        register(runtime, entry(component, overrides, id, port, "2s")?).await?;
        let s = check(id).await?;
        let passed =
            s.status != HealthStatus::Healthy && !s.message.is_empty() && s.failure.is_none();
        report.push(name, passed, said(&s));
    }

    register(
        runtime,
        entry(component, overrides, "denied", denied, "2s")?,
    )
    .await?;
    let s = check("denied").await?;
    report.push(
        rows::DENIED,
        s.status != HealthStatus::Healthy
            && !s.message.is_empty()
            && s.failure == Some(sandport_core::FailureKind::EgressDenied),
        said(&s),
    );

    let hanging = start_target(Target::Hanging).await?;
    register(
        runtime,
        entry(component, overrides, "hanging", hanging, "1s")?,
    )
    .await?;
    let started = Instant::now();
    let s = check("hanging").await?;
    let took = started.elapsed();
    report.push(
        rows::HANGING,
        s.status != HealthStatus::Healthy && took < Duration::from_millis(1500),
        format!("after {took:.2?}, {}", said(&s)),
    );

    let mut steady = Ok(Duration::ZERO);
    for _ in 0..20 {
        let s = check("up").await?;
        if s.status != HealthStatus::Healthy {
            steady = Err(said(&s));
            break;
        }
        if let Ok(slowest) = &mut steady {
            *slowest = (*slowest).max(s.latency.unwrap_or_default());
        }
    }
    match steady {
        Ok(slowest) => report.push(rows::STEADY, true, format!("slowest {slowest:.2?}")),
        Err(seen) => report.push(rows::STEADY, false, seen),
    }

    let limit = runtime
        .get("up")
        .map_err(|_| KitError::Vanished("up".into()))?
        .1
        .sandbox
        .memory_limit;
    let (passed, detail) = memory_growth(runtime, limit).await?;
    report.push(rows::MEMORY, passed, detail);

    runtime.shutdown().await;
    report.push(
        rows::CLOSE,
        runtime.list(None).is_empty(),
        "close called on every instance",
    );
    Ok(report)
}

async fn register(runtime: &Runtime, config: ConnectorConfig) -> Result<(), KitError> {
    runtime
        .register(config)
        .await
        .map(drop)
        .map_err(|e| KitError::Reload(e.to_string()))
}

/// Memory after the checks so far, and after 100 more: a connector whose
/// memory keeps growing at that pace would reach its limit within a day of
/// checks at the default 30s interval fails.
async fn memory_growth(runtime: &Runtime, limit: u64) -> Result<(bool, String), KitError> {
    const MORE: u64 = 100;
    const CHECKS_PER_DAY: u64 = 24 * 60 * 2;
    let used = |runtime: &Runtime| {
        let runtime = runtime.clone();
        async move {
            runtime
                .memory_used("up")
                .await
                .map_err(|_| KitError::Vanished("up".into()))
        }
    };
    let Some(before) = used(runtime).await? else {
        return Ok((false, "no live instance after healthy checks".into()));
    };
    for _ in 0..MORE {
        let s = runtime
            .check("up")
            .await
            .map_err(|_| KitError::Vanished("up".into()))?;
        if s.status != HealthStatus::Healthy {
            return Ok((false, format!("a check failed: {}", said(&s))));
        }
    }
    let Some(after) = used(runtime).await? else {
        return Ok((false, "the instance was dropped during the checks".into()));
    };
    let kib = |b: u64| b / 1024;
    let per_check = after.saturating_sub(before) / MORE;
    let in_a_day = after.saturating_add(per_check.saturating_mul(CHECKS_PER_DAY));
    let passed = in_a_day <= limit;
    let detail = format!(
        "{} KiB, {} KiB after {MORE} more checks ({} B/check); limit {} KiB",
        kib(before),
        kib(after),
        per_check,
        kib(limit)
    );
    Ok((passed, detail))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_down_port_refuses_and_no_target_can_be_given_it() {
        let (held, port) = refusing_port().expect("a port");
        let refused = tokio::net::TcpStream::connect(("127.0.0.1", port)).await;
        assert_eq!(
            refused.map(drop).map_err(|e| e.kind()),
            Err(std::io::ErrorKind::ConnectionRefused)
        );
        // tokio's listener asks for SO_REUSEADDR, as the targets' do.
        assert!(
            tokio::net::TcpListener::bind(("127.0.0.1", port))
                .await
                .is_err()
        );
        drop(held);
        assert!(
            tokio::net::TcpListener::bind(("127.0.0.1", port))
                .await
                .is_ok()
        );
    }
}
