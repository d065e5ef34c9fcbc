//! A config through the gRPC message and back: config -> `config_to_pb` ->
//! `config_from_pb` -> the one entry parser gives the same config, for an
//! entry that sets every key, once per auth kind.

use sandport_config::{
    BuiltinCatalog, BuiltinDefaults, ConnectorConfig, ConnectorType, REDACTED, Secrets,
    parse_api_entry, restore_redacted,
};

use super::{config_from_pb, config_to_pb};

/// One built-in, `http`: custom, no default port.
struct TestCatalog;

impl BuiltinCatalog for TestCatalog {
    fn defaults(&self, name: &str) -> Option<BuiltinDefaults> {
        (name == "http").then(|| BuiltinDefaults::new(ConnectorType::Custom, None))
    }

    fn names(&self) -> Vec<&'static str> {
        vec!["http"]
    }
}

/// The `auth` of each kind with every key it takes; secrets hold `s3cret`.
const AUTH_KINDS: &[&str] = &[
    "type: none",
    "type: basic, username: 'adm$${in}', password: 's3cret-pa$${ss'",
    "type: bearer, token: s3cret-token",
    "type: api_key, api_key: s3cret-key",
    "type: aws_sigv4, access_key_id: 'AK$${ID}', secret_access_key: s3cret-sak, session_token: s3cret-st, region: eu-west-1, service: execute-api",
];

/// An entry that sets every key to a value other than its default, with
/// `auth` as given; a built-in, a path and an uploaded component by turns.
fn full_entry(index: usize, auth: &str) -> String {
    let uploaded = format!("sha256:{}", "cd".repeat(32));
    let component = match index % 3 {
        0 => "http",
        1 => "components/full.wasm",
        _ => uploaded.as_str(),
    };
    format!(
        "id: full-{index}
name: Full entry
type: database
mode: local
enabled: false
description: every key set
host: db.example.com
port: 8443
scheme: https
base_path: /api
auth: {{{auth}, share_with_connector: true, headers: {{X-Tenant: s3cret-tenant, X-Other: 's3cret-$${{x}}'}}}}
metadata: {{team: sre, tier: '1'}}
tags: [a, b]
health_check: {{enabled: false, interval: 1m30s, timeout: 2s, path: /h, failure_threshold: 3, success_threshold: 2}}
component: {component}
component_sha256: {sha}
settings: {{path: /x, headers: {{Accept: text/plain}}, list: [1, 2]}}
sandbox: {{memory_limit: 32MiB, allowed_hosts: ['*.example.com:443', 'http://10.0.0.5:9090/v1'], max_response_size: 2MiB, max_requests_per_call: 7, max_bytes_per_call: 4MiB, max_sockets: 3}}
",
        sha = "ab".repeat(32),
    )
}

fn full_configs() -> Vec<(String, ConnectorConfig)> {
    AUTH_KINDS
        .iter()
        .enumerate()
        .map(|(index, auth)| {
            let text = full_entry(index, auth);
            let value: serde_norway::Value = serde_norway::from_str(&text).expect("YAML");
            let config =
                parse_api_entry(&value, &TestCatalog).unwrap_or_else(|p| panic!("{p:#?}\n{text}"));
            (text, config)
        })
        .collect()
}

/// What the gRPC service does with a config it receives.
fn through_pb(config: &ConnectorConfig, secrets: Secrets) -> ConnectorConfig {
    let value = config_from_pb(config_to_pb(config, secrets)).expect("a valid message");
    parse_api_entry(&value, &TestCatalog).unwrap_or_else(|p| panic!("{p:#?}"))
}

#[test]
fn every_full_config_survives_the_message_and_the_parser() {
    for (text, original) in full_configs() {
        assert_eq!(through_pb(&original, Secrets::Keep), original, "{text}");
    }
}

#[test]
fn a_redacted_message_holds_no_secret_and_restores_from_the_current_config() {
    for (text, original) in full_configs() {
        let message = config_to_pb(&original, Secrets::Redact);
        let shown = format!("{message:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains(REDACTED), "{shown}");
        let mut sent_back = through_pb(&original, Secrets::Redact);
        assert_ne!(sent_back, original, "{text}");
        restore_redacted(&mut sent_back, &original);
        assert_eq!(sent_back, original, "{text}");
    }
}

#[test]
fn a_check_result_moves_into_its_message_without_copying_its_text() {
    use sandport_core::health::{HealthSnapshot, HealthStatus};
    // HealthCheckAll converts thousands of these on the API thread, which
    // every other API call shares: each string copied is an allocation,
    // a copy and a free more per result.
    let snapshot = HealthSnapshot {
        status: HealthStatus::Healthy,
        message: "GET http://127.0.0.1:8080/-/healthy returned 200".to_string(),
        details: vec![("code".to_string(), "200".to_string())],
        ..HealthSnapshot::unknown()
    };
    let id = "c00001".to_string();
    let (id_at, message_at) = (id.as_ptr(), snapshot.message.as_ptr());
    let message = super::check_to_pb(id, snapshot);
    assert_eq!(message.id.as_ptr(), id_at);
    assert_eq!(message.message.as_ptr(), message_at);
    assert_eq!(message.details.get("code").map(String::as_str), Some("200"));
    let (_, back) = super::check_from_pb(message);
    assert_eq!(back.status, HealthStatus::Healthy);
}
