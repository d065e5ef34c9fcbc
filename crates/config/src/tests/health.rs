//! The `health_check` section: durations, their limits, and the interval
//! default from the environment.

use std::time::Duration;

use super::*;

#[test]
fn durations_accept_units_and_plain_seconds() {
    let c = single(
        "connectors:\n  - id: grafana\n    health_check:\n      interval: 90\n      timeout: 1500ms\n",
    );
    assert_eq!(c.health_check.interval, Duration::from_secs(90));
    assert_eq!(c.health_check.timeout, Duration::from_millis(1500));

    let c = single(
        "connectors:\n  - id: grafana\n    health_check:\n      interval: 1m 30s\n      timeout: 2.5\n",
    );
    assert_eq!(c.health_check.interval, Duration::from_secs(90));
    assert_eq!(c.health_check.timeout, Duration::from_millis(2500));
}

#[test]
fn bad_duration_names_health_check_interval() {
    let message = rejected(
        &[
            "id: x",
            "component: grafana",
            "health_check:",
            "  interval: 5 parsecs",
        ],
        "connectors[1] (id \"x\")",
        "health_check.interval",
    );
    assert_contains(&message, "`5 parsecs` is not a duration");
    assert_contains(&message, "write it like 30s");
}

#[test]
fn bad_timeout_duration_names_health_check_timeout() {
    let message = rejected(
        &[
            "id: x",
            "component: grafana",
            "health_check:",
            "  timeout: [1, 2]",
        ],
        "connectors[1] (id \"x\")",
        "health_check.timeout",
    );
    assert_contains(&message, "expected a duration like 30s, found a list");
}

#[test]
fn timeout_longer_than_interval_is_rejected() {
    let message = rejected(
        &[
            "id: x",
            "component: grafana",
            "health_check:",
            "  interval: 10s",
            "  timeout: 20s",
        ],
        "connectors[1] (id \"x\")",
        "health_check.timeout",
    );
    assert_contains(&message, "20s is longer than the interval (10s)");
}

#[test]
fn timeout_equal_to_interval_is_accepted() {
    let c = single(
        "connectors:\n  - id: grafana\n    health_check:\n      interval: 5s\n      timeout: 5s\n",
    );
    assert_eq!(c.health_check.interval, c.health_check.timeout);
}

#[test]
fn interval_under_one_second_is_rejected() {
    let message = rejected(
        &[
            "id: x",
            "component: grafana",
            "health_check:",
            "  interval: 500ms",
            "  timeout: 100ms",
        ],
        "connectors[1] (id \"x\")",
        "health_check.interval",
    );
    assert_eq!(message, "must be at least 1s");
}

#[test]
fn zero_timeout_is_rejected() {
    let message = rejected(
        &[
            "id: x",
            "component: grafana",
            "health_check:",
            "  timeout: 0s",
        ],
        "connectors[1] (id \"x\")",
        "health_check.timeout",
    );
    assert_eq!(message, "must be more than 0s");
}

#[test]
fn health_path_not_starting_with_a_slash_is_rejected() {
    let message = rejected(
        &[
            "id: x",
            "component: grafana",
            "health_check:",
            "  path: healthz",
        ],
        "connectors[1] (id \"x\")",
        "health_check.path",
    );
    assert_eq!(message, "`healthz` must start with `/`");
}

#[test]
fn a_huge_numeric_duration_is_a_problem_not_a_crash() {
    let message = rejected(
        &[
            "id: x",
            "component: grafana",
            "health_check: {interval: 1e20}",
        ],
        "connectors[1] (id \"x\")",
        "health_check.interval",
    );
    assert_contains(&message, "is not a duration");
}

#[test]
fn health_interval_from_the_environment_is_the_default_interval() {
    let env = |name: &str| (name == "HEALTH_INTERVAL").then(|| "10s".to_string());
    let loaded = load_with_env(
        "connectors:\n  - {id: grafana}\n  - {id: jaeger, health_check: {interval: 1m}}\n  - {id: prometheus}\n",
        &env,
    );
    assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
    assert_eq!(
        connector(&loaded, "grafana").health_check.interval,
        Duration::from_secs(10)
    );
    assert_eq!(
        connector(&loaded, "jaeger").health_check.interval,
        Duration::from_secs(60)
    );
    let short = |name: &str| (name == "HEALTH_INTERVAL").then(|| "2s".to_string());
    let loaded = load_with_env("connectors:\n  - {id: grafana}\n", &short);
    assert_eq!(
        connector(&loaded, "grafana").health_check.timeout,
        Duration::from_secs(2)
    );
    let bad = |name: &str| (name == "HEALTH_INTERVAL").then(|| "often".to_string());
    let loaded = load_with_env("connectors:\n  - {id: grafana}\n", &bad);
    assert_eq!(loaded.problems.len(), 1);
    assert!(loaded.problems[0].message.contains("HEALTH_INTERVAL"));
}

#[test]
fn thresholds_default_to_one_and_read_counts() {
    let c = single("connectors:\n  - id: grafana\n");
    assert_eq!(
        (
            c.health_check.failure_threshold,
            c.health_check.success_threshold
        ),
        (1, 1)
    );
    let c = single(
        "connectors:\n  - id: grafana\n    health_check: {failure_threshold: 3, success_threshold: 2}\n",
    );
    assert_eq!(
        (
            c.health_check.failure_threshold,
            c.health_check.success_threshold
        ),
        (3, 2)
    );
}

#[test]
fn thresholds_outside_one_to_the_maximum_are_rejected() {
    for (key, value, expected) in [
        (
            "failure_threshold",
            "0",
            "0 is not a count of checks from 1 to 100",
        ),
        (
            "success_threshold",
            "101",
            "101 is not a count of checks from 1 to 100",
        ),
        ("failure_threshold", "-1", "-1 is not a count of checks"),
        ("success_threshold", "two", "found the string `two`"),
    ] {
        let line = format!("  {key}: {value}");
        let message = rejected(
            &["id: x", "component: grafana", "health_check:", &line],
            "connectors[1] (id \"x\")",
            &format!("health_check.{key}"),
        );
        assert_contains(&message, expected);
    }
}
