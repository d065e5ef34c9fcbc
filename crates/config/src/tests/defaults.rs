//! Defaults: the shipped config, an entry with only an id, built-in defaults.

use std::time::Duration;

use super::*;

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
