//! Tests of the config parser: defaults, every key of a full entry, one test
//! per kind of problem (each names its entry and key, and the other entries
//! still load), file-level errors and secret redaction.
//!
//! `${VAR}` tests go through [`raw::parse_document`] with a closure for the
//! environment, so no test reads or writes the real process environment.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::raw;
use super::*;
use sandport_policy::HostRule;

/// prometheus, grafana, jaeger (observability, with ports) and http (custom,
/// no default port), like the real built-ins.
struct TestBuiltins;

impl BuiltinCatalog for TestBuiltins {
    fn defaults(&self, name: &str) -> Option<BuiltinDefaults> {
        let d = BuiltinDefaults::new;
        match name {
            "prometheus" => Some(d(ConnectorType::Observability, Some(9090))),
            "grafana" => Some(d(ConnectorType::Observability, Some(3000))),
            "jaeger" => Some(d(ConnectorType::Observability, Some(16686))),
            "http" => Some(d(ConnectorType::Custom, None)),
            "slack" => Some(BuiltinDefaults {
                host: Some("slack.com"),
                scheme: Some(Scheme::Https),
                ..d(ConnectorType::Messaging, Some(443))
            }),
            _ => None,
        }
    }

    fn names(&self) -> Vec<&'static str> {
        vec!["prometheus", "grafana", "jaeger", "http"]
    }
}

const SOURCE: &str = "test.yaml";

fn base_dir() -> &'static Path {
    Path::new("/etc/sandport")
}

fn no_env(_: &str) -> Option<String> {
    None
}

fn try_load_with_env(
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Loaded, ConfigError> {
    raw::parse_document(text, SOURCE, base_dir(), &TestBuiltins, env)
}

fn load_with_env(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Loaded {
    try_load_with_env(text, env).unwrap_or_else(|e| panic!("file rejected: {e}\n{text}"))
}

fn load(text: &str) -> Loaded {
    load_with_env(text, &no_env)
}

fn load_err(text: &str) -> ConfigError {
    match try_load_with_env(text, &no_env) {
        Ok(loaded) => panic!("expected a file-level error, got {loaded:#?}"),
        Err(e) => e,
    }
}

fn ids(loaded: &Loaded) -> Vec<&str> {
    loaded.connectors.iter().map(|c| c.id.as_str()).collect()
}

fn connector<'a>(loaded: &'a Loaded, id: &str) -> &'a ConnectorConfig {
    loaded
        .connectors
        .iter()
        .find(|c| c.id == id)
        .unwrap_or_else(|| panic!("no connector `{id}`; problems: {:#?}", loaded.problems))
}

/// The one connector of a file that must load cleanly.
fn single(text: &str) -> ConnectorConfig {
    let loaded = load(text);
    assert!(loaded.problems.is_empty(), "{:#?}", loaded.problems);
    assert_eq!(loaded.connectors.len(), 1, "{text}");
    loaded.connectors.into_iter().next().unwrap()
}

fn assert_contains(haystack: &str, needle: &str) {
    assert!(
        haystack.contains(needle),
        "expected {needle:?} in:\n{haystack}"
    );
}

/// A document with `lines` as entry `connectors[1]`, between the good
/// entries `prometheus` and `grafana`. Nested lines carry their own extra
/// indentation.
fn between_good_entries(lines: &[&str]) -> String {
    let mut doc = String::from("connectors:\n  - id: prometheus\n");
    for (i, line) in lines.iter().enumerate() {
        doc.push_str(if i == 0 { "  - " } else { "    " });
        doc.push_str(line);
        doc.push('\n');
    }
    doc.push_str("  - id: grafana\n");
    doc
}

/// Parses `lines` as `connectors[1]` between two good entries, checks that
/// both good entries still load and that there is exactly one problem, for
/// `entry` and `key`; returns its message.
fn rejected(lines: &[&str], entry: &str, key: &str) -> String {
    rejected_with_env(lines, entry, key, &no_env)
}

fn rejected_with_env(
    lines: &[&str],
    entry: &str,
    key: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> String {
    let loaded = load_with_env(&between_good_entries(lines), env);
    assert_eq!(
        ids(&loaded),
        ["prometheus", "grafana"],
        "{:#?}",
        loaded.problems
    );
    assert_eq!(loaded.problems.len(), 1, "{:#?}", loaded.problems);
    let problem = &loaded.problems[0];
    assert_eq!(problem.entry, entry, "{problem:?}");
    assert_eq!(problem.key, key, "{problem:?}");
    problem.message.clone()
}

// ---------------------------------------------------------------------------
// The shipped config and defaults
// ---------------------------------------------------------------------------

#[test]
fn shipped_default_config_loads_the_three_observability_connectors_without_problems() {
    let loaded = super::parse(DEFAULT_CONFIG, "connectors.yaml", base_dir(), &TestBuiltins)
        .expect("the shipped config parses");
    assert!(loaded.problems.is_empty(), "{:#?}", loaded.problems);
    assert_eq!(ids(&loaded), ["prometheus", "grafana", "jaeger"]);

    let expected = [
        ("prometheus", "Prometheus", 9090, "/-/healthy", "metrics"),
        ("grafana", "Grafana", 3000, "/api/health", "visualization"),
        ("jaeger", "Jaeger", 16686, "/", "tracing"),
    ];
    for (id, name, port, path, category) in expected {
        let c = connector(&loaded, id);
        assert_eq!(c.name, name);
        assert_eq!(c.connector_type, ConnectorType::Observability);
        assert_eq!(c.mode, ConnectionMode::Local);
        assert!(c.enabled);
        assert_eq!(c.host, "localhost");
        assert_eq!(c.port, port);
        assert_eq!(c.scheme, Scheme::Http);
        assert_eq!(c.base_path, "");
        assert_eq!(c.endpoint(), format!("http://localhost:{port}"));
        assert_eq!(c.auth.auth, Auth::None);
        assert!(c.auth.headers.is_empty());
        assert_eq!(
            c.metadata.get("category").map(String::as_str),
            Some(category)
        );
        assert!(c.health_check.enabled);
        assert_eq!(c.health_check.interval, Duration::from_secs(30));
        assert_eq!(c.health_check.timeout, Duration::from_secs(5));
        assert_eq!(c.health_check.path, path);
        assert_eq!(c.component, ComponentRef::Builtin(id.to_string()));
        assert_eq!(c.sandbox, SandboxConfig::default());
    }
    assert_eq!(
        connector(&loaded, "prometheus").tags,
        ["metrics", "monitoring"]
    );
    assert_eq!(connector(&loaded, "jaeger").tags, ["tracing"]);
}

#[test]
fn entry_with_only_an_id_gets_every_default() {
    let c = single("connectors:\n  - id: grafana\n");
    assert_eq!(c.id, "grafana");
    assert_eq!(c.name, "grafana");
    assert!(c.enabled);
    assert_eq!(c.description, "");
    assert_eq!(c.scheme, Scheme::Http);
    assert_eq!(c.host, "localhost");
    assert_eq!(c.port, 3000);
    assert_eq!(c.connector_type, ConnectorType::Observability);
    assert_eq!(c.mode, ConnectionMode::Remote);
    assert_eq!(c.base_path, "");
    assert_eq!(c.auth.auth, Auth::None);
    assert!(c.auth.headers.is_empty());
    assert!(c.metadata.is_empty());
    assert!(c.tags.is_empty());
    assert!(c.settings.is_empty());
    assert!(c.health_check.enabled);
    assert_eq!(c.health_check.interval, Duration::from_secs(30));
    assert_eq!(c.health_check.timeout, Duration::from_secs(5));
    assert_eq!(c.health_check.path, "");
    assert_eq!(c.sandbox.memory_limit, 64 * 1024 * 1024);
    assert!(c.sandbox.allowed_hosts.is_empty());
    assert_eq!(c.component, ComponentRef::Builtin("grafana".into()));
    assert_eq!(c.endpoint(), "http://localhost:3000");
}

#[test]
fn explicit_nulls_mean_the_defaults() {
    let c = single(
        "connectors:\n  - id: jaeger\n    name:\n    port: ~\n    health_check:\n    sandbox: null\n",
    );
    assert_eq!(c.name, "jaeger");
    assert_eq!(c.port, 16686);
    assert_eq!(c.health_check, HealthCheckConfig::default());
    assert_eq!(c.sandbox, SandboxConfig::default());
}

#[test]
fn partial_health_check_keeps_the_other_defaults() {
    let c = single("connectors:\n  - id: jaeger\n    health_check:\n      timeout: 2s\n");
    assert!(c.health_check.enabled);
    assert_eq!(c.health_check.interval, Duration::from_secs(30));
    assert_eq!(c.health_check.timeout, Duration::from_secs(2));
}

#[test]
fn component_named_in_the_entry_supplies_the_type_and_port() {
    let c = single("connectors:\n  - id: metrics-eu\n    component: prometheus\n");
    assert_eq!(c.component, ComponentRef::Builtin("prometheus".into()));
    assert_eq!(c.connector_type, ConnectorType::Observability);
    assert_eq!(c.port, 9090);
    assert_eq!(c.name, "metrics-eu");
}

#[test]
fn explicit_type_and_port_override_the_builtin_defaults() {
    let c = single(
        "connectors:\n  - id: prometheus\n    type: database\n    port: 9091\n    host: 10.0.0.5\n",
    );
    assert_eq!(c.connector_type, ConnectorType::Database);
    assert_eq!(c.port, 9091);
    assert_eq!(c.endpoint(), "http://10.0.0.5:9091");
}

#[test]
fn http_builtin_is_custom_and_needs_an_explicit_port() {
    let c = single("connectors:\n  - id: web\n    component: http\n    port: 8080\n");
    assert_eq!(c.connector_type, ConnectorType::Custom);
    assert_eq!(c.port, 8080);

    let message = rejected(
        &["id: web", "component: http"],
        "connectors[1] (id \"web\")",
        "port",
    );
    assert_contains(&message, "missing; this component has no default port");
}

#[test]
fn choice_values_are_case_insensitive_and_trimmed() {
    let c = single(
        "connectors:\n  - id: grafana\n    type: Observability\n    mode: ' LOCAL '\n    scheme: HTTPS\n",
    );
    assert_eq!(c.connector_type, ConnectorType::Observability);
    assert_eq!(c.mode, ConnectionMode::Local);
    assert_eq!(c.scheme, Scheme::Https);
    assert_eq!(c.endpoint(), "https://localhost:3000");
}

#[test]
fn bracketed_ipv6_host_is_stored_bare_and_bracketed_in_the_endpoint() {
    let c = single("connectors:\n  - id: grafana\n    host: '[::1]'\n");
    assert_eq!(c.host, "::1");
    assert_eq!(c.endpoint(), "http://[::1]:3000");
}

// ---------------------------------------------------------------------------
// A full entry
// ---------------------------------------------------------------------------

const FULL_ENTRY: &str = r#"
connectors:
  - id: prom-prod
    name: Production Prometheus
    type: observability
    mode: remote
    enabled: false
    description: The big one
    host: prom.example.com
    port: 9443
    scheme: https
    base_path: api/
    auth:
      type: basic
      username: admin
      password: hunter2-full-entry
      headers:
        X-Scope-OrgID: tenant-1
        X-Trace: "on"
    metadata:
      team: sre
      tier: 1
      critical: true
    tags: [metrics, prod, 2024]
    health_check:
      enabled: false
      interval: 1m
      timeout: 10s
      path: /-/ready
    component: components/prometheus.wasm
    settings:
      query:
        step: 15s
        max_points: 11000
        nested:
          deeper: yes
      labels: [job, instance, 3]
      verbose: true
      empty:
    sandbox:
      memory_limit: 32MiB
      allowed_hosts:
        - https://alerts.example.com
        - "*.internal.example.com:8443"
"#;

#[test]
fn full_entry_with_every_key_is_read_field_by_field() {
    let c = single(FULL_ENTRY);
    assert_eq!(c.id, "prom-prod");
    assert_eq!(c.name, "Production Prometheus");
    assert_eq!(c.connector_type, ConnectorType::Observability);
    assert_eq!(c.mode, ConnectionMode::Remote);
    assert!(!c.enabled);
    assert_eq!(c.description, "The big one");
    assert_eq!(c.host, "prom.example.com");
    assert_eq!(c.port, 9443);
    assert_eq!(c.scheme, Scheme::Https);
    assert_eq!(c.base_path, "/api");
    assert_eq!(c.endpoint(), "https://prom.example.com:9443");

    match &c.auth.auth {
        Auth::Basic { username, password } => {
            assert_eq!(username, "admin");
            assert_eq!(password.expose(), "hunter2-full-entry");
        }
        other => panic!("expected basic auth, got {other:?}"),
    }
    assert_eq!(c.auth.auth.kind(), "basic");
    let headers: BTreeMap<&str, &str> = c
        .auth
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.expose()))
        .collect();
    assert_eq!(
        headers,
        BTreeMap::from([("X-Scope-OrgID", "tenant-1"), ("X-Trace", "on")])
    );

    let metadata: BTreeMap<&str, &str> = c
        .metadata
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        metadata,
        BTreeMap::from([("critical", "true"), ("team", "sre"), ("tier", "1")])
    );
    assert_eq!(c.tags, ["metrics", "prod", "2024"]);

    assert_eq!(
        c.health_check,
        HealthCheckConfig {
            enabled: false,
            interval: Duration::from_secs(60),
            timeout: Duration::from_secs(10),
            path: "/-/ready".into(),
        }
    );

    assert_eq!(
        c.component,
        ComponentRef::Path(PathBuf::from("/etc/sandport/components/prometheus.wasm"))
    );
    // A path component has no built-in defaults; the explicit type wins.
    assert_eq!(c.connector_type, ConnectorType::Observability);

    let settings: BTreeMap<&str, &str> = c
        .settings
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        settings,
        BTreeMap::from([
            ("empty", ""),
            ("labels", "job,instance,3"),
            ("query.max_points", "11000"),
            // YAML 1.2: `yes` is a string, not a boolean.
            ("query.nested.deeper", "yes"),
            ("query.step", "15s"),
            ("verbose", "true"),
        ])
    );

    assert_eq!(c.sandbox.memory_limit, 32 * 1024 * 1024);
    assert_eq!(
        c.sandbox.allowed_hosts,
        [
            HostRule::parse("https://alerts.example.com").unwrap(),
            HostRule::parse("*.internal.example.com:8443").unwrap(),
        ]
    );
    assert_eq!(
        c.sandbox.allowed_hosts[1].to_string(),
        "*.internal.example.com:8443"
    );
}

#[test]
fn bearer_and_api_key_auth_are_read_as_secrets() {
    let loaded = load(
        "connectors:
  - id: prometheus
    auth:
      type: bearer
      token: tok-123
  - id: grafana
    auth:
      type: api_key
      api_key: key-456
      headers:
        X-Extra: extra-789
",
    );
    assert!(loaded.problems.is_empty(), "{:#?}", loaded.problems);
    match &connector(&loaded, "prometheus").auth.auth {
        Auth::Bearer { token } => assert_eq!(token.expose(), "tok-123"),
        other => panic!("expected bearer auth, got {other:?}"),
    }
    let grafana = &connector(&loaded, "grafana").auth;
    match &grafana.auth {
        Auth::ApiKey { key } => assert_eq!(key.expose(), "key-456"),
        other => panic!("expected api_key auth, got {other:?}"),
    }
    assert_eq!(grafana.auth.kind(), "api_key");
    assert_eq!(grafana.headers["X-Extra"].expose(), "extra-789");
}

#[test]
fn base_path_is_normalised_to_a_leading_slash_without_a_trailing_one() {
    for (written, stored) in [
        ("api/", "/api"),
        ("api", "/api"),
        ("/api/v1/", "/api/v1"),
        ("/api/v1", "/api/v1"),
        ("/", ""),
        ("' '", ""),
        ("''", ""),
    ] {
        let c = single(&format!(
            "connectors:\n  - id: grafana\n    base_path: {written}\n"
        ));
        assert_eq!(c.base_path, stored, "base_path: {written}");
    }
}

#[test]
fn component_paths_are_resolved_against_the_config_directory() {
    for (written, resolved) in [
        (
            "components/custom.wasm",
            "/etc/sandport/components/custom.wasm",
        ),
        ("custom.wasm", "/etc/sandport/custom.wasm"),
        ("plugins/custom", "/etc/sandport/plugins/custom"),
        ("/opt/sandport/custom.wasm", "/opt/sandport/custom.wasm"),
    ] {
        let c = single(&format!(
            "connectors:\n  - id: custom\n    port: 8080\n    component: {written}\n"
        ));
        assert_eq!(
            c.component,
            ComponentRef::Path(PathBuf::from(resolved)),
            "component: {written}"
        );
        assert_eq!(c.connector_type, ConnectorType::Custom);
    }
}

#[test]
fn path_component_has_no_default_port() {
    let message = rejected(
        &["id: custom", "component: custom.wasm"],
        "connectors[1] (id \"custom\")",
        "port",
    );
    assert_contains(&message, "no default port");
}

#[test]
fn memory_limit_accepts_binary_and_decimal_units_and_plain_bytes() {
    for (written, bytes) in [
        ("32MiB", 32u64 << 20),
        ("512 MiB", 512 << 20),
        ("1GiB", 1 << 30),
        ("64MB", 64_000_000),
        ("2097152", 2 << 20),
    ] {
        let c = single(&format!(
            "connectors:\n  - id: grafana\n    sandbox:\n      memory_limit: {written}\n"
        ));
        assert_eq!(c.sandbox.memory_limit, bytes, "memory_limit: {written}");
    }
}

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

// ---------------------------------------------------------------------------
// Problems: each names its entry and key; the other entries still load
// ---------------------------------------------------------------------------

#[test]
fn unknown_key_is_named_with_a_suggestion() {
    let message = rejected(
        &["id: x", "component: grafana", "prot: 3001"],
        "connectors[1] (id \"x\")",
        "prot",
    );
    assert_contains(&message, "unknown key (did you mean `port`?)");
    assert_contains(&message, "known keys: id, name, type, mode, enabled");
}

#[test]
fn unknown_nested_keys_carry_their_section_prefix_and_a_suggestion() {
    for (lines, key, suggestion) in [
        (
            ["health_check:", "  intervall: 10s"],
            "health_check.intervall",
            "did you mean `interval`?",
        ),
        (
            ["auth:", "  pasword: x"],
            "auth.pasword",
            "did you mean `password`?",
        ),
        (
            ["sandbox:", "  memory_limt: 32MiB"],
            "sandbox.memory_limt",
            "did you mean `memory_limit`?",
        ),
    ] {
        let mut entry = vec!["id: x", "component: grafana"];
        entry.extend(lines);
        let message = rejected(&entry, "connectors[1] (id \"x\")", key);
        assert_contains(&message, suggestion);
    }
}

#[test]
fn unknown_key_far_from_every_known_key_gets_no_suggestion() {
    let message = rejected(
        &["id: x", "component: grafana", "colour: red"],
        "connectors[1] (id \"x\")",
        "colour",
    );
    assert!(!message.contains("did you mean"), "{message}");
    assert_contains(&message, "unknown key; known keys: id, name,");
}

#[test]
fn unknown_top_level_key_is_reported_for_the_file_and_the_entries_still_load() {
    let loaded = load("version: 2\nconnectors:\n  - id: grafana\n");
    assert_eq!(ids(&loaded), ["grafana"]);
    assert_eq!(loaded.problems.len(), 1, "{:#?}", loaded.problems);
    let problem = &loaded.problems[0];
    assert_eq!(problem.entry, "");
    assert_eq!(problem.key, "version");
    assert_contains(&problem.message, "unknown top-level key");
    assert_eq!(
        problem.to_string(),
        "version: unknown top-level key; the file holds one key, `connectors`"
    );
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
fn port_above_65535_is_rejected() {
    let message = rejected(
        &["id: x", "component: grafana", "port: 70000"],
        "connectors[1] (id \"x\")",
        "port",
    );
    assert_eq!(message, "70000 is out of range; a port is 1 to 65535");
}

#[test]
fn port_zero_is_rejected() {
    let message = rejected(
        &["id: x", "component: grafana", "port: 0"],
        "connectors[1] (id \"x\")",
        "port",
    );
    assert_eq!(message, "0 is out of range; a port is 1 to 65535");
}

#[test]
fn negative_port_is_rejected() {
    let message = rejected(
        &["id: x", "component: grafana", "port: -1"],
        "connectors[1] (id \"x\")",
        "port",
    );
    assert_contains(&message, "-1 is out of range");
}

#[test]
fn port_that_is_not_a_number_is_rejected() {
    let message = rejected(
        &["id: x", "component: grafana", "port: abc"],
        "connectors[1] (id \"x\")",
        "port",
    );
    assert_eq!(
        message,
        "expected a number from 1 to 65535, found the string `abc`"
    );
}

#[test]
fn duplicate_id_rejects_the_second_entry_and_keeps_the_first() {
    let loaded = load(
        "connectors:
  - id: prometheus
    port: 9090
  - id: prometheus
    port: 9191
  - id: grafana
",
    );
    assert_eq!(ids(&loaded), ["prometheus", "grafana"]);
    assert_eq!(connector(&loaded, "prometheus").port, 9090);
    assert_eq!(loaded.problems.len(), 1, "{:#?}", loaded.problems);
    let problem = &loaded.problems[0];
    assert_eq!(problem.entry, "connectors[1] (id \"prometheus\")");
    assert_eq!(problem.key, "id");
    assert_contains(&problem.message, "duplicate id `prometheus`");
}

#[test]
fn missing_component_for_an_id_that_is_no_builtin_is_reported() {
    let message = rejected(
        &["id: mystery", "port: 8080"],
        "connectors[1] (id \"mystery\")",
        "component",
    );
    assert_contains(&message, "no built-in named like the id `mystery`");
    assert_contains(&message, "prometheus, grafana, jaeger, http");
    assert_contains(&message, ".wasm");
}

#[test]
fn unknown_builtin_component_name_lists_the_builtins() {
    let message = rejected(
        &["id: x", "port: 8080", "component: prometheous"],
        "connectors[1] (id \"x\")",
        "component",
    );
    assert_contains(&message, "no built-in component named `prometheous`");
    assert_contains(&message, "built-ins: prometheus, grafana, jaeger, http");
}

#[test]
fn bad_type_lists_the_valid_types() {
    let message = rejected(
        &["id: x", "component: grafana", "type: metrics"],
        "connectors[1] (id \"x\")",
        "type",
    );
    assert_eq!(
        message,
        "`metrics` is not one of: observability, agent, storage, messaging, database, custom"
    );
}

#[test]
fn bad_mode_lists_the_valid_modes() {
    let message = rejected(
        &["id: x", "component: grafana", "mode: hybrid"],
        "connectors[1] (id \"x\")",
        "mode",
    );
    assert_eq!(message, "`hybrid` is not one of: local, remote");
}

#[test]
fn bad_scheme_lists_the_valid_schemes() {
    let message = rejected(
        &["id: x", "component: grafana", "scheme: ftp"],
        "connectors[1] (id \"x\")",
        "scheme",
    );
    assert_eq!(message, "`ftp` is not one of: http, https");
}

#[test]
fn bad_auth_type_lists_the_valid_auth_types() {
    let message = rejected(
        &["id: x", "component: grafana", "auth:", "  type: oauth"],
        "connectors[1] (id \"x\")",
        "auth.type",
    );
    assert_eq!(
        message,
        "`oauth` is not one of: none, basic, bearer, api_key, aws_sigv4"
    );
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
fn bearer_auth_without_a_token_is_rejected() {
    let message = rejected(
        &["id: x", "component: grafana", "auth:", "  type: bearer"],
        "connectors[1] (id \"x\")",
        "auth.token",
    );
    assert_eq!(message, "required when auth.type is bearer");
}

#[test]
fn basic_auth_without_a_username_and_api_key_auth_without_a_key_are_rejected() {
    let message = rejected(
        &[
            "id: x",
            "component: grafana",
            "auth:",
            "  type: basic",
            "  password: pw",
        ],
        "connectors[1] (id \"x\")",
        "auth.username",
    );
    assert_eq!(message, "required when auth.type is basic");

    let message = rejected(
        &["id: x", "component: grafana", "auth:", "  type: api_key"],
        "connectors[1] (id \"x\")",
        "auth.api_key",
    );
    assert_eq!(message, "required when auth.type is api_key");
}

#[test]
fn missing_environment_variable_in_a_password_is_named() {
    let message = rejected(
        &[
            "id: x",
            "component: grafana",
            "auth:",
            "  type: basic",
            "  username: admin",
            "  password: ${MISSING_VAR}",
        ],
        "connectors[1] (id \"x\")",
        "auth.password",
    );
    assert_eq!(message, "environment variable `MISSING_VAR` is not set");
}

#[test]
fn environment_variables_are_expanded_in_auth_fields_and_headers() {
    let asked = RefCell::new(Vec::new());
    let env = |name: &str| {
        asked.borrow_mut().push(name.to_string());
        match name {
            "PROM_USER" => Some("admin".to_string()),
            "PROM_PASS" => Some("s3cret".to_string()),
            "ORG_ID" => Some("42".to_string()),
            _ => None,
        }
    };
    let loaded = load_with_env(
        "connectors:
  - id: prometheus
    auth:
      type: basic
      username: ${PROM_USER}
      password: pre-${PROM_PASS}-post
      headers:
        X-Org: org-${ORG_ID}/${ORG_ID}
",
        &env,
    );
    assert!(loaded.problems.is_empty(), "{:#?}", loaded.problems);
    let auth = &connector(&loaded, "prometheus").auth;
    match &auth.auth {
        Auth::Basic { username, password } => {
            assert_eq!(username, "admin");
            assert_eq!(password.expose(), "pre-s3cret-post");
        }
        other => panic!("expected basic auth, got {other:?}"),
    }
    assert_eq!(auth.headers["X-Org"].expose(), "org-42/42");
    let mut asked = asked.into_inner();
    asked.retain(|name| name != "HEALTH_INTERVAL");
    asked.sort();
    assert_eq!(asked, ["ORG_ID", "ORG_ID", "PROM_PASS", "PROM_USER"]);
}

#[test]
fn expanded_values_are_not_expanded_again() {
    let env = |name: &str| match name {
        "OUTER" => Some("${INNER}".to_string()),
        _ => None,
    };
    let loaded = load_with_env(
        "connectors:\n  - id: grafana\n    auth:\n      type: bearer\n      token: ${OUTER}\n",
        &env,
    );
    assert!(loaded.problems.is_empty(), "{:#?}", loaded.problems);
    match &connector(&loaded, "grafana").auth.auth {
        Auth::Bearer { token } => assert_eq!(token.expose(), "${INNER}"),
        other => panic!("expected bearer auth, got {other:?}"),
    }
}

#[test]
fn malformed_environment_references_are_rejected() {
    let message = rejected(
        &[
            "id: x",
            "component: grafana",
            "auth:",
            "  type: basic",
            "  username: admin",
            "  password: abc${OOPS",
        ],
        "connectors[1] (id \"x\")",
        "auth.password",
    );
    assert_contains(&message, "without a closing `}`");
    assert!(
        !message.contains("abc"),
        "the secret is not echoed: {message}"
    );

    let message = rejected(
        &[
            "id: x",
            "component: grafana",
            "auth:",
            "  headers:",
            "    X-Key: ${}",
        ],
        "connectors[1] (id \"x\")",
        "auth.headers.X-Key",
    );
    assert_contains(&message, "is not an environment variable name");
}

#[test]
fn missing_environment_variable_in_a_header_is_named() {
    let message = rejected(
        &[
            "id: x",
            "component: grafana",
            "auth:",
            "  headers:",
            "    X-Key: ${NO_SUCH_KEY}",
        ],
        "connectors[1] (id \"x\")",
        "auth.headers.X-Key",
    );
    assert_eq!(message, "environment variable `NO_SUCH_KEY` is not set");
}

#[test]
fn invalid_header_name_is_rejected() {
    let message = rejected(
        &[
            "id: x",
            "component: grafana",
            "auth:",
            "  headers:",
            "    Bad Header: v",
        ],
        "connectors[1] (id \"x\")",
        "auth.headers.Bad Header",
    );
    assert_eq!(message, "`Bad Header` is not a valid HTTP header name");
}

#[test]
fn bad_allowed_hosts_rule_is_rejected() {
    let message = rejected(
        &[
            "id: x",
            "component: grafana",
            "sandbox:",
            "  allowed_hosts:",
            "    - https://ok.example.com",
            "    - ftp://files.example.com",
        ],
        "connectors[1] (id \"x\")",
        "sandbox.allowed_hosts",
    );
    assert_contains(&message, "`ftp://files.example.com` is not a host rule");
    assert_contains(&message, "the scheme must be http, https or tcp");
}

#[test]
fn allowed_hosts_that_is_not_a_list_of_strings_is_rejected() {
    let message = rejected(
        &[
            "id: x",
            "component: grafana",
            "sandbox:",
            "  allowed_hosts: example.com",
        ],
        "connectors[1] (id \"x\")",
        "sandbox.allowed_hosts",
    );
    assert_contains(
        &message,
        "expected a list of hosts, found the string `example.com`",
    );

    let message = rejected(
        &[
            "id: x",
            "component: grafana",
            "sandbox:",
            "  allowed_hosts: [8080]",
        ],
        "connectors[1] (id \"x\")",
        "sandbox.allowed_hosts",
    );
    assert_contains(
        &message,
        "expected a host rule string, found the number `8080`",
    );
}

#[test]
fn memory_limit_that_is_not_a_size_is_rejected() {
    let message = rejected(
        &[
            "id: x",
            "component: grafana",
            "sandbox:",
            "  memory_limit: lots",
        ],
        "connectors[1] (id \"x\")",
        "sandbox.memory_limit",
    );
    assert_contains(&message, "`lots` is not a size");
    assert_contains(&message, "write it like 64MiB");
}

#[test]
fn memory_limit_under_one_mebibyte_is_rejected() {
    let message = rejected(
        &[
            "id: x",
            "component: grafana",
            "sandbox:",
            "  memory_limit: 512KiB",
        ],
        "connectors[1] (id \"x\")",
        "sandbox.memory_limit",
    );
    assert_eq!(message, "must be at least 1MiB");
}

#[test]
fn id_with_invalid_characters_is_rejected() {
    let message = rejected(
        &["id: my connector!", "component: grafana"],
        "connectors[1] (id \"my connector!\")",
        "id",
    );
    assert_eq!(
        message,
        "`my connector!` may only hold letters, digits, `-`, `_` and `.`"
    );
}

#[test]
fn id_with_dots_dashes_and_underscores_is_accepted() {
    let c = single("connectors:\n  - id: eu-west_1.prom\n    component: prometheus\n");
    assert_eq!(c.id, "eu-west_1.prom");
}

#[test]
fn missing_id_is_rejected_and_the_entry_is_labelled_by_index() {
    let message = rejected(&["component: grafana"], "connectors[1]", "id");
    assert_eq!(message, "missing; every connector needs an id");
}

#[test]
fn entry_that_is_not_a_map_is_rejected_as_a_whole() {
    let message = rejected(&["just-a-string"], "connectors[1]", "");
    assert_eq!(
        message,
        "expected a map of keys, found the string `just-a-string`"
    );
}

#[test]
fn invalid_host_is_rejected() {
    for host in [
        "http://example.com",
        "exa mple.com",
        "user@example.com",
        "''",
    ] {
        let line = format!("host: {host}");
        let message = rejected(
            &["id: x", "component: grafana", &line],
            "connectors[1] (id \"x\")",
            "host",
        );
        assert_contains(&message, "is not a host name or IP address");
    }
}

#[test]
fn values_of_the_wrong_kind_are_described() {
    for (line, key, expected) in [
        (
            "enabled: yes",
            "enabled",
            "expected true or false, found the string `yes`",
        ),
        (
            "tags: metrics",
            "tags",
            "expected a list of tags, found the string `metrics`",
        ),
        ("tags: [[a]]", "tags", "tags must be plain values"),
        (
            "metadata: [a, b]",
            "metadata",
            "expected a map of names to values, found a list",
        ),
        (
            "auth: basic",
            "auth",
            "expected a map, found the string `basic`",
        ),
        ("settings: [a]", "settings", "expected a map, found a list"),
        ("name: {first: a}", "name", "expected a string, found a map"),
    ] {
        let message = rejected(
            &["id: x", "component: grafana", line],
            "connectors[1] (id \"x\")",
            key,
        );
        assert_eq!(message, expected, "{line}");
    }
}

#[test]
fn nested_values_in_metadata_and_lists_of_maps_in_settings_are_rejected() {
    let message = rejected(
        &[
            "id: x",
            "component: grafana",
            "metadata:",
            "  owner: {team: sre}",
        ],
        "connectors[1] (id \"x\")",
        "metadata.owner",
    );
    assert_eq!(message, "expected a plain value, found a map");

    let message = rejected(
        &[
            "id: x",
            "component: grafana",
            "settings:",
            "  query:",
            "    targets: [{a: 1}]",
        ],
        "connectors[1] (id \"x\")",
        "settings.query.targets",
    );
    assert_eq!(message, "lists in settings may only hold plain values");
}

#[test]
fn every_problem_of_one_entry_is_reported_together() {
    let loaded = load(&between_good_entries(&[
        "id: x",
        "component: grafana",
        "port: 0",
        "scheme: gopher",
        "health_check:",
        "  interval: soon",
    ]));
    assert_eq!(ids(&loaded), ["prometheus", "grafana"]);
    let keys: Vec<&str> = loaded.problems.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(keys, ["scheme", "port", "health_check.interval"]);
    for problem in &loaded.problems {
        assert_eq!(problem.entry, "connectors[1] (id \"x\")");
    }
}

#[test]
fn problems_of_several_entries_are_each_labelled_with_their_own_entry() {
    let loaded = load(
        "connectors:
  - id: a
    port: 1
  - id: grafana
  - id: b
    component: grafana
    port: 99999
",
    );
    assert_eq!(ids(&loaded), ["grafana"]);
    let found: Vec<(&str, &str)> = loaded
        .problems
        .iter()
        .map(|p| (p.entry.as_str(), p.key.as_str()))
        .collect();
    assert_eq!(
        found,
        [
            ("connectors[0] (id \"a\")", "component"),
            ("connectors[2] (id \"b\")", "port"),
        ]
    );
}

#[test]
fn problem_display_joins_entry_key_and_message() {
    let problem = Problem {
        entry: "connectors[1] (id \"x\")".into(),
        key: "health_check.interval".into(),
        message: "must be at least 1s".into(),
    };
    assert_eq!(
        problem.to_string(),
        "connectors[1] (id \"x\"): health_check.interval: must be at least 1s"
    );
    let whole_entry = Problem {
        key: String::new(),
        ..problem.clone()
    };
    assert_eq!(
        whole_entry.to_string(),
        "connectors[1] (id \"x\"): must be at least 1s"
    );
}

// ---------------------------------------------------------------------------
// File-level errors
// ---------------------------------------------------------------------------

#[test]
fn text_that_is_not_yaml_is_a_syntax_error() {
    match load_err("connectors: [unclosed\n") {
        ConfigError::Syntax {
            source_name,
            message,
        } => {
            assert_eq!(source_name, SOURCE);
            assert!(!message.is_empty());
        }
        other => panic!("expected a syntax error, got {other:?}"),
    }
    let text = load_err("connectors:\n  - id: a\n bad indent: [\n").to_string();
    assert_contains(&text, "test.yaml is not valid YAML");
}

#[test]
fn empty_file_is_a_shape_error() {
    for text in ["", "\n", "# only a comment\n"] {
        match load_err(text) {
            ConfigError::Shape {
                source_name,
                message,
            } => {
                assert_eq!(source_name, SOURCE);
                assert_contains(&message, "the file is empty");
            }
            other => panic!("expected a shape error for {text:?}, got {other:?}"),
        }
    }
}

#[test]
fn top_level_list_is_a_shape_error() {
    let err = load_err("- id: prometheus\n- id: grafana\n");
    assert!(matches!(err, ConfigError::Shape { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "test.yaml: expected a map with a `connectors:` list, found a list"
    );
}

#[test]
fn top_level_scalar_is_a_shape_error() {
    let err = load_err("just text\n");
    assert_contains(&err.to_string(), "found the string `just text`");
}

#[test]
fn connectors_that_is_not_a_list_is_a_shape_error() {
    let err = load_err("connectors:\n  id: prometheus\n");
    assert!(matches!(err, ConfigError::Shape { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "test.yaml: `connectors` must be a list of entries, found a map"
    );
    let err = load_err("connectors: prometheus\n");
    assert_contains(&err.to_string(), "found the string `prometheus`");
}

#[test]
fn file_without_a_connectors_key_is_a_shape_error() {
    let err = load_err("services:\n  - id: prometheus\n");
    assert_eq!(err.to_string(), "test.yaml: no `connectors:` list");
}

#[test]
fn empty_connectors_list_loads_nothing_without_problems() {
    for text in ["connectors: []\n", "connectors:\n"] {
        let loaded = load(text);
        assert!(loaded.connectors.is_empty(), "{text:?}");
        assert!(
            loaded.problems.is_empty(),
            "{text:?}: {:#?}",
            loaded.problems
        );
    }
}

#[test]
fn load_file_resolves_component_paths_next_to_the_file_and_reports_unreadable_files() {
    let dir = std::env::temp_dir().join(format!("sandport-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("connectors.yaml");
    std::fs::write(
        &path,
        "connectors:\n  - id: custom\n    port: 8080\n    component: custom.wasm\n",
    )
    .unwrap();
    let result = load_file(&path, &TestBuiltins);
    let missing = load_file(&dir.join("absent.yaml"), &TestBuiltins);
    std::fs::remove_dir_all(&dir).unwrap();

    let loaded = result.expect("the file loads");
    assert!(loaded.problems.is_empty(), "{:#?}", loaded.problems);
    assert_eq!(
        connector(&loaded, "custom").component,
        ComponentRef::Path(dir.join("custom.wasm"))
    );

    match missing {
        Err(ConfigError::Read { path, .. }) => assert_eq!(path, dir.join("absent.yaml")),
        other => panic!("expected a read error, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------
// One entry (parse_single)
// ---------------------------------------------------------------------------

#[test]
fn single_entry_parses_from_json() {
    let c = raw::parse_single(
        r#"{"id": "grafana", "port": 3001, "tags": ["a"]}"#,
        base_dir(),
        &TestBuiltins,
        &no_env,
    )
    .expect("the entry parses");
    assert_eq!(c.id, "grafana");
    assert_eq!(c.port, 3001);
    assert_eq!(c.tags, ["a"]);
    assert_eq!(c.connector_type, ConnectorType::Observability);
}

#[test]
fn single_entry_problems_are_labelled_by_id_without_an_index() {
    let problems = raw::parse_single(
        "id: grafana\nport: 0\nhealth_check:\n  path: x\n",
        base_dir(),
        &TestBuiltins,
        &no_env,
    )
    .unwrap_err();
    let found: Vec<(&str, &str)> = problems
        .iter()
        .map(|p| (p.entry.as_str(), p.key.as_str()))
        .collect();
    assert_eq!(
        found,
        [
            ("connector \"grafana\"", "port"),
            ("connector \"grafana\"", "health_check.path"),
        ]
    );
}

#[test]
fn single_entry_that_is_not_yaml_is_one_problem() {
    let problems = raw::parse_single("{id: [", base_dir(), &TestBuiltins, &no_env).unwrap_err();
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].entry, "");
    assert_eq!(problems[0].key, "");
    assert_contains(&problems[0].message, "not valid YAML or JSON");
}

// ---------------------------------------------------------------------------
// Secrets
// ---------------------------------------------------------------------------

#[test]
fn secret_debug_and_display_print_redacted() {
    let secret = Secret::new("hunter2");
    assert_eq!(format!("{secret:?}"), "<redacted>");
    assert_eq!(format!("{secret}"), "<redacted>");
    assert_eq!(format!("{secret:#?}"), "<redacted>");
    assert_eq!(secret.expose(), "hunter2");
    assert!(!secret.is_empty());
    assert!(Secret::default().is_empty());
}

#[test]
fn parsed_config_debug_never_contains_a_secret_value() {
    let env = |name: &str| match name {
        "TOKEN" => Some("env-token-value-5150".to_string()),
        _ => None,
    };
    let loaded = load_with_env(
        "connectors:
  - id: prometheus
    auth:
      type: basic
      username: admin
      password: pw-value-8d1f
      headers:
        X-Api-Key: header-value-77aa
  - id: grafana
    auth:
      type: bearer
      token: ${TOKEN}
  - id: jaeger
    auth:
      type: api_key
      api_key: apikey-value-c0ff
",
        &env,
    );
    assert!(loaded.problems.is_empty(), "{:#?}", loaded.problems);
    assert_eq!(loaded.connectors.len(), 3);
    for debug in [format!("{loaded:?}"), format!("{loaded:#?}")] {
        for secret in [
            "pw-value-8d1f",
            "header-value-77aa",
            "env-token-value-5150",
            "apikey-value-c0ff",
        ] {
            assert!(!debug.contains(secret), "{secret} leaked:\n{debug}");
        }
        assert_contains(&debug, "<redacted>");
        assert_contains(&debug, "admin");
    }
}

#[test]
fn problems_about_auth_never_contain_the_secret_value() {
    let loaded = load(
        "connectors:
  - id: prometheus
    auth:
      type: bearer
      token: tok-value-9a9a
      headers:
        X-Bad: \"line\\nbreak-value-3e3e\"
        Bad Name: name-value-4f4f
      passwrd: typo-value-1b1b
",
    );
    assert!(loaded.connectors.is_empty());
    let keys: Vec<&str> = loaded.problems.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "auth.passwrd",
            "auth.headers.Bad Name",
            "auth.headers.X-Bad"
        ]
    );
    let all = format!("{:?}", loaded.problems);
    for secret in ["tok-value", "break-value", "name-value", "typo-value"] {
        assert!(!all.contains(secret), "{secret} leaked:\n{all}");
    }
}

// ---------------------------------------------------------------------------
// Regressions found while reviewing the parser
// ---------------------------------------------------------------------------

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
fn a_host_with_a_port_or_stray_brackets_is_rejected() {
    for host in ["localhost:9090", "'[::1'", "'a b'", "'evil/path'"] {
        let message = rejected(
            &["id: x", "component: grafana", &format!("host: {host}")],
            "connectors[1] (id \"x\")",
            "host",
        );
        assert_contains(&message, "is not a host name or IP address");
    }
    let c = single("connectors:\n  - {id: grafana, host: '[::1]'}\n");
    assert_eq!(c.host, "::1");
    assert_eq!(c.endpoint(), "http://[::1]:3000");
}

#[test]
fn credentials_the_auth_type_does_not_use_are_reported() {
    let message = rejected(
        &["id: x", "component: grafana", "auth: {token: abc}"],
        "connectors[1] (id \"x\")",
        "auth.token",
    );
    assert_contains(&message, "auth.type is none");
    assert!(!message.contains("abc"));
}

#[test]
fn a_required_secret_whose_variable_is_missing_is_one_problem() {
    let message = rejected(
        &[
            "id: x",
            "component: grafana",
            "auth: {type: bearer, token: '${MISSING_TOKEN}'}",
        ],
        "connectors[1] (id \"x\")",
        "auth.token",
    );
    assert_contains(&message, "MISSING_TOKEN");
}

#[test]
fn a_double_dollar_writes_a_literal_placeholder() {
    let c = single("connectors:\n  - {id: grafana, auth: {type: bearer, token: 'a$${b}'}}\n");
    match &c.auth.auth {
        Auth::Bearer { token } => assert_eq!(token.expose(), "a${b}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_numeric_id_labels_its_problems() {
    let loaded = load("connectors:\n  - {id: 42, port: 0}\n");
    assert_eq!(loaded.problems[0].entry, "connectors[0] (id \"42\")");
}

#[test]
fn a_fractional_port_is_not_called_out_of_range() {
    let message = rejected(
        &["id: x", "component: grafana", "port: 80.5"],
        "connectors[1] (id \"x\")",
        "port",
    );
    assert_contains(&message, "not a whole number");
}

// ---------------------------------------------------------------------------
// The entry shape written back (state file, APIs)
// ---------------------------------------------------------------------------

const ROUND_TRIP_ENTRY: &str = "connectors:
  - id: web
    name: Web
    type: messaging
    mode: local
    enabled: false
    description: d
    host: '::1'
    port: 8443
    scheme: https
    base_path: /api
    auth: {type: basic, username: admin, password: 'pa$${ss', headers: {X-Key: k}}
    metadata: {team: sre}
    tags: [a, b]
    health_check: {enabled: false, interval: 1m30s, timeout: 2s, path: /h}
    component: http
    settings: {path: /x, headers: {Accept: text/plain}}
    sandbox: {memory_limit: 32MiB, allowed_hosts: ['*.example.com:443', 'http://10.0.0.5:9090/v1']}
";

#[test]
fn an_entry_written_back_parses_to_the_same_config() {
    let original = single(ROUND_TRIP_ENTRY);
    let value = to_value(&original, Secrets::Keep);
    let again = raw::parse_value(&value, base_dir(), &TestBuiltins, &no_env).expect("parses");
    assert_eq!(again, original);
    match &again.auth.auth {
        Auth::Basic { password, .. } => assert_eq!(password.expose(), "pa${ss"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_redacted_entry_holds_no_secret_and_restores_from_the_current_one() {
    let original = single(ROUND_TRIP_ENTRY);
    let value = to_value(&original, Secrets::Redact);
    let text = serde_norway::to_string(&value).expect("serialises");
    assert!(!text.contains("pa$"), "{text}");
    assert!(!text.contains(": k"), "{text}");
    let mut sent_back =
        raw::parse_value(&value, base_dir(), &TestBuiltins, &no_env).expect("parses");
    assert_ne!(sent_back, original);
    restore_redacted(&mut sent_back, &original);
    assert_eq!(sent_back, original);
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
fn aws_sigv4_auth_takes_keys_region_and_service_with_defaults() {
    let loaded = load(
        "connectors:\n  - id: bucket\n    component: http\n    port: 9000\n    auth: {type: aws_sigv4, access_key_id: AKID, secret_access_key: sk}\n  - id: bad\n    component: http\n    port: 9000\n    auth: {type: aws_sigv4, access_key_id: AKID, token: t}\n",
    );
    let c = connector(&loaded, "bucket");
    match &c.auth.auth {
        Auth::AwsSigV4 {
            access_key_id,
            secret_access_key,
            session_token,
            region,
            service,
        } => {
            assert_eq!(access_key_id, "AKID");
            assert_eq!(secret_access_key.expose(), "sk");
            assert!(session_token.is_none());
            assert_eq!((region.as_str(), service.as_str()), ("us-east-1", "s3"));
        }
        other => panic!("{other:?}"),
    }
    let problems: Vec<String> = loaded.problems.iter().map(ToString::to_string).collect();
    let text = problems.join("\n");
    assert!(
        text.contains("auth.secret_access_key: required when auth.type is aws_sigv4"),
        "{text}"
    );
    assert!(
        text.contains("auth.token: is set, but auth.type is aws_sigv4"),
        "{text}"
    );
}

#[test]
fn aws_sigv4_and_sharing_survive_the_round_trip_through_yaml_and_redaction() {
    let loaded = load(
        "connectors:\n  - id: bucket\n    component: http\n    port: 9000\n    auth: {type: aws_sigv4, access_key_id: AKID, secret_access_key: sk, region: eu-west-1, share_with_connector: true}\n",
    );
    let original = connector(&loaded, "bucket").clone();
    let yaml = to_value(&original, Secrets::Keep);
    let again = parse_entry_value(&yaml, Path::new("."), &TestBuiltins).expect("parses");
    assert_eq!(again, original);
    let mut redacted = parse_entry_value(
        &to_value(&original, Secrets::Redact),
        Path::new("."),
        &TestBuiltins,
    )
    .expect("parses");
    restore_redacted(&mut redacted, &original);
    assert_eq!(redacted, original);
}
