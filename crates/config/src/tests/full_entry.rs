//! A full entry: every key read field by field, and how values are normalised.

use sandport_policy::HostRule;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use super::*;

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
      failure_threshold: 3
      success_threshold: 2
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
            failure_threshold: 3,
            success_threshold: 2,
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
