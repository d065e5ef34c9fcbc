//! Helpers on the config record the host passes to `initialize`.

use std::time::Duration;

use crate::bindings::sandport::connector::types::{
    AuthKind, ConnectionMode, ConnectorConfig, ConnectorType, HealthCheckConfig,
};
use crate::http;

impl ConnectorConfig {
    /// `scheme://host:port`, e.g. `http://127.0.0.1:9090`.
    pub fn endpoint(&self) -> String {
        let host = if self.host.contains(':') && !self.host.starts_with('[') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        format!("{}://{}:{}", self.scheme, host, self.port)
    }

    /// The endpoint joined with the base path and `path`.
    pub fn url(&self, path: &str) -> String {
        let base = self.base_path.trim_end_matches('/');
        let path = if path.is_empty() || path.starts_with('/') {
            path.to_string()
        } else {
            format!("/{path}")
        };
        format!("{}{}{}", self.endpoint(), base, path)
    }

    /// The configured health path, or `default` when none is configured.
    pub fn health_path_or<'a>(&'a self, default: &'a str) -> &'a str {
        if self.health_check.path.is_empty() {
            default
        } else {
            &self.health_check.path
        }
    }

    /// A `GET` of the health path, or of `default` when none is configured:
    /// `http::Request::get(self.url(self.health_path_or(default)))`.
    pub fn health_request(&self, default: &str) -> http::Request {
        http::Request::get(self.url(self.health_path_or(default)))
    }

    /// Whether the entry has credentials for the host to attach (an `auth`
    /// kind or auth headers), e.g. to hint at a missing `auth` on a 401.
    pub fn has_credentials(&self) -> bool {
        !matches!(self.auth_kind, AuthKind::None) || !self.auth_headers.is_empty()
    }

    /// The deadline of one health check.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(u64::from(self.health_check.timeout_ms))
    }

    /// A connector-specific setting from the entry's `settings` map.
    pub fn setting(&self, key: &str) -> Option<&str> {
        self.settings
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// All settings whose key starts with `prefix.`, with the prefix removed
    /// (a nested map in YAML arrives flattened, e.g. `headers.Accept`).
    pub fn settings_under<'a>(
        &'a self,
        prefix: &'a str,
    ) -> impl Iterator<Item = (&'a str, &'a str)> {
        self.settings.iter().filter_map(move |(k, v)| {
            k.strip_prefix(prefix)
                .and_then(|rest| rest.strip_prefix('.'))
                .map(|rest| (rest, v.as_str()))
        })
    }

    pub(crate) fn empty() -> Self {
        ConnectorConfig {
            id: String::new(),
            name: String::new(),
            connector_type: ConnectorType::Custom,
            mode: ConnectionMode::Remote,
            enabled: false,
            description: String::new(),
            host: String::new(),
            port: 0,
            scheme: String::new(),
            base_path: String::new(),
            health_check: HealthCheckConfig {
                enabled: false,
                interval_ms: 0,
                timeout_ms: 0,
                path: String::new(),
            },
            auth_kind: AuthKind::None,
            auth_headers: Vec::new(),
            metadata: Vec::new(),
            tags: Vec::new(),
            settings: Vec::new(),
        }
    }
}
