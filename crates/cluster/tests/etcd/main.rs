//! The cluster library against a real etcd (Debian's `etcd-server`), one
//! etcd per test.

mod file_sync;
mod membership;
mod outage;
mod registry;
mod status;
mod support;
mod tls;

use std::path::Path;

use sandport_config::{BuiltinCatalog, BuiltinDefaults, ConnectorConfig, ConnectorType};

/// The built-ins the test entries name.
struct Builtins;

impl BuiltinCatalog for Builtins {
    fn defaults(&self, name: &str) -> Option<BuiltinDefaults> {
        match name {
            "http" => Some(BuiltinDefaults::new(ConnectorType::Custom, None)),
            "prometheus" => Some(BuiltinDefaults::new(
                ConnectorType::Observability,
                Some(9090),
            )),
            _ => None,
        }
    }

    fn names(&self) -> Vec<&'static str> {
        vec!["http", "prometheus"]
    }
}

/// A valid entry `id` on `port`.
fn entry(id: &str, port: u16) -> ConnectorConfig {
    let yaml = format!("id: {id}\ncomponent: http\nhost: 127.0.0.1\nport: {port}\n");
    sandport_config::parse_entry(&yaml, Path::new("."), &Builtins).expect("a valid entry")
}

/// Every field set, secrets and `${` included.
const FULL_ENTRY: &str = "id: web
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
health_check: {enabled: false, interval: 1m30s, timeout: 2s, path: /h, failure_threshold: 3, success_threshold: 2}
component: http
settings: {path: /x, headers: {Accept: text/plain}}
sandbox: {memory_limit: 32MiB, allowed_hosts: ['*.example.com:443', 'http://10.0.0.5:9090/v1']}
";

fn full_entry() -> ConnectorConfig {
    sandport_config::parse_entry(FULL_ENTRY, Path::new("."), &Builtins).expect("a valid entry")
}
