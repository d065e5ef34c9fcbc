//! Host config <-> WIT records.

use super::bindings::sandport::connector::types as wit;
use sandport_config::{Auth, ConnectionMode, ConnectorConfig, ConnectorType};

fn ms(d: std::time::Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX)
}

/// The guest's view of its config: everything but the secret values.
pub fn to_wit(config: &ConnectorConfig) -> wit::ConnectorConfig {
    wit::ConnectorConfig {
        id: config.id.clone(),
        name: config.name.clone(),
        connector_type: to_wit_type(config.connector_type),
        mode: match config.mode {
            ConnectionMode::Local => wit::ConnectionMode::Local,
            ConnectionMode::Remote => wit::ConnectionMode::Remote,
        },
        enabled: config.enabled,
        description: config.description.clone(),
        host: config.host.clone(),
        port: config.port,
        scheme: config.scheme.as_str().to_string(),
        base_path: config.base_path.clone(),
        health_check: wit::HealthCheckConfig {
            enabled: config.health_check.enabled,
            interval_ms: ms(config.health_check.interval),
            timeout_ms: ms(config.health_check.timeout),
            path: config.health_check.path.clone(),
        },
        auth_kind: match config.auth.auth {
            Auth::None => wit::AuthKind::None,
            Auth::Basic { .. } => wit::AuthKind::Basic,
            Auth::Bearer { .. } => wit::AuthKind::Bearer,
            Auth::ApiKey { .. } => wit::AuthKind::ApiKey,
            Auth::AwsSigV4 { .. } => wit::AuthKind::AwsSigv4,
        },
        auth_headers: config.auth.headers.keys().cloned().collect(),
        metadata: config
            .metadata
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        tags: config.tags.clone(),
        settings: config
            .settings
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
