//! Host config <-> WIT records.

use super::bindings::sandport::connector::types as wit;
use sandport_config::{
    Auth, AuthConfig, ConnectionMode, ConnectorConfig, ConnectorType, HealthCheckConfig,
};

fn ms(d: std::time::Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX)
}

/// The guest's view of its config: everything but the secret values.
pub fn to_wit(config: &ConnectorConfig) -> wit::ConnectorConfig {
    let ConnectorConfig {
        id,
        name,
        connector_type,
        mode,
        enabled,
        description,
        host,
        port,
        scheme,
        base_path,
        auth:
            AuthConfig {
                auth,
                // Only the names: the values are secrets, attached by the host.
                headers,
                // The host's decision (the `credentials` import), not config
                // for the guest.
                share_with_connector: _,
            },
        metadata,
        tags,
        health_check:
            HealthCheckConfig {
                enabled: check_enabled,
                interval,
                timeout,
                path,
                // The host's to apply: the guest reports each check as it is.
                failure_threshold: _,
                success_threshold: _,
            },
        // Which code runs and its digest are the host's to load and check.
        component: _,
        component_sha256: _,
        settings,
        // The host enforces the limits; the guest cannot change them.
        sandbox: _,
    } = config;
    wit::ConnectorConfig {
        id: id.clone(),
        name: name.clone(),
        connector_type: to_wit_type(*connector_type),
        mode: match mode {
            ConnectionMode::Local => wit::ConnectionMode::Local,
            ConnectionMode::Remote => wit::ConnectionMode::Remote,
        },
        enabled: *enabled,
        description: description.clone(),
        host: host.clone(),
        port: *port,
        scheme: scheme.as_str().to_string(),
        base_path: base_path.clone(),
        health_check: wit::HealthCheckConfig {
            enabled: *check_enabled,
            interval_ms: ms(*interval),
            timeout_ms: ms(*timeout),
            path: path.clone(),
        },
        // The kind only: the credentials stay in the host, which signs or
        // attaches them to the connector's own requests.
        auth_kind: match auth {
            Auth::None => wit::AuthKind::None,
            Auth::Basic { .. } => wit::AuthKind::Basic,
            Auth::Bearer { .. } => wit::AuthKind::Bearer,
            Auth::ApiKey { .. } => wit::AuthKind::ApiKey,
            Auth::AwsSigV4 { .. } => wit::AuthKind::AwsSigv4,
        },
        auth_headers: headers.keys().cloned().collect(),
        metadata: metadata
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        tags: tags.clone(),
        settings: settings
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    }
}

pub fn to_wit_type(t: ConnectorType) -> wit::ConnectorType {
    match t {
        ConnectorType::Observability => wit::ConnectorType::Observability,
        ConnectorType::Agent => wit::ConnectorType::Agent,
        ConnectorType::Storage => wit::ConnectorType::Storage,
        ConnectorType::Messaging => wit::ConnectorType::Messaging,
        ConnectorType::Database => wit::ConnectorType::Database,
        ConnectorType::Custom => wit::ConnectorType::Custom,
    }
}

pub fn from_wit_type(t: wit::ConnectorType) -> ConnectorType {
    match t {
        wit::ConnectorType::Observability => ConnectorType::Observability,
        wit::ConnectorType::Agent => ConnectorType::Agent,
        wit::ConnectorType::Storage => ConnectorType::Storage,
        wit::ConnectorType::Messaging => ConnectorType::Messaging,
        wit::ConnectorType::Database => ConnectorType::Database,
        wit::ConnectorType::Custom => ConnectorType::Custom,
    }
}

pub fn status_from_wit(status: wit::HealthStatus) -> crate::health::HealthStatus {
    use crate::health::HealthStatus as H;
    match status {
        wit::HealthStatus::Healthy => H::Healthy,
        wit::HealthStatus::Degraded => H::Degraded,
        wit::HealthStatus::Unhealthy => H::Unhealthy,
        wit::HealthStatus::Unavailable => H::Unavailable,
        wit::HealthStatus::Unknown => H::Unknown,
    }
}
