//! The `health_check` section, with its interval default from the environment.

use serde_norway::{Mapping, Value};

use super::env::Env;
use super::fields::Fields;
use crate::{HealthCheckConfig, units};

pub const KEYS: &[&str] = &[
    "enabled",
    "interval",
    "timeout",
    "path",
    "failure_threshold",
    "success_threshold",
];

/// The variable the original service read for the default check interval.
pub const DEFAULT_INTERVAL_VAR: &str = "HEALTH_INTERVAL";

pub fn parse(
    map: &Mapping,
    env: Env<'_>,
    problems: &mut Vec<(String, String)>,
) -> HealthCheckConfig {
    let mut f = Fields::new(map, "health_check.", KEYS, problems);
    let mut defaults = HealthCheckConfig::default();
    if f.get("interval").is_none()
        && let Some(text) = env(DEFAULT_INTERVAL_VAR)
    {
        match units::duration(&Value::String(text.clone())) {
            Ok(interval) => {
                defaults.interval = interval;
                defaults.timeout = defaults.timeout.min(interval);
            }
            Err(message) => f.problem(
                "interval",
                format!("from {DEFAULT_INTERVAL_VAR}: {message}"),
            ),
        }
    }
    let enabled = f.boolean("enabled").unwrap_or(defaults.enabled);
    let interval = f
        .with("interval", units::duration)
        .unwrap_or(defaults.interval);
    let timeout = f
        .with("timeout", units::duration)
        .unwrap_or(defaults.timeout);
    let path = f.string("path").unwrap_or_default();
    let failure_threshold = f
        .with("failure_threshold", threshold)
        .unwrap_or(defaults.failure_threshold);
    let success_threshold = f
        .with("success_threshold", threshold)
        .unwrap_or(defaults.success_threshold);
    if interval < std::time::Duration::from_secs(1) {
        f.problem("interval", "must be at least 1s");
    }
    if timeout.is_zero() {
        f.problem("timeout", "must be more than 0s");
    } else if timeout > interval {
        f.problem(
            "timeout",
            format!(
                "{} is longer than the interval ({}); a check must end before the next one starts",
                units::format_duration(timeout),
                units::format_duration(interval)
            ),
        );
    }
    if !path.is_empty() && !path.starts_with('/') {
        f.problem("path", format!("`{path}` must start with `/`"));
    }
    HealthCheckConfig {
        enabled,
        interval,
        timeout,
        path,
        failure_threshold,
        success_threshold,
    }
}

/// A count of checks in a row: 1 (every check counts) up to
/// [`HealthCheckConfig::MAX_THRESHOLD`].
fn threshold(value: &Value) -> Result<u32, String> {
    let max = HealthCheckConfig::MAX_THRESHOLD;
    match value {
        Value::Number(n) => n
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| format!("{n} is not a count of checks from 1 to {max}")),
        other => Err(format!(
            "expected a count of checks from 1 to {max}, found {}",
            units::describe(other)
        )),
    }
}
