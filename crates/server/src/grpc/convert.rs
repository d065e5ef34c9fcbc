//! Protobuf messages <-> runtime types. A config arriving over gRPC is
//! turned into the YAML entry shape and validated by the config parser, so
//! its errors name the same keys as a YAML file's.

use std::time::{Duration, SystemTime};

use serde_norway::{Mapping, Value};

use super::pb;
use sandport_config::{
    Auth, ComponentRef, ConnectionMode, ConnectorConfig, ConnectorType, REDACTED, Secret, Secrets,
};
use sandport_core::health::{FailureKind, HealthSnapshot, HealthStatus};
use sandport_core::registry::{ConnectorInfo, HealthEvent};

pub fn type_to_pb(t: ConnectorType) -> pb::ConnectorType {
    match t {
        ConnectorType::Observability => pb::ConnectorType::Observability,
        ConnectorType::Agent => pb::ConnectorType::Agent,
        ConnectorType::Storage => pb::ConnectorType::Storage,
        ConnectorType::Messaging => pb::ConnectorType::Messaging,
        ConnectorType::Database => pb::ConnectorType::Database,
        ConnectorType::Custom => pb::ConnectorType::Custom,
    }
}

/// `None` for UNSPECIFIED (no filter); an unknown number is an error.
pub fn type_from_pb(value: i32) -> Result<Option<ConnectorType>, String> {
    match pb::ConnectorType::try_from(value) {
        Ok(pb::ConnectorType::Unspecified) => Ok(None),
        Ok(pb::ConnectorType::Observability) => Ok(Some(ConnectorType::Observability)),
        Ok(pb::ConnectorType::Agent) => Ok(Some(ConnectorType::Agent)),
        Ok(pb::ConnectorType::Storage) => Ok(Some(ConnectorType::Storage)),
        Ok(pb::ConnectorType::Messaging) => Ok(Some(ConnectorType::Messaging)),
        Ok(pb::ConnectorType::Database) => Ok(Some(ConnectorType::Database)),
        Ok(pb::ConnectorType::Custom) => Ok(Some(ConnectorType::Custom)),
        Err(_) => Err(format!("type: {value} is not a ConnectorType")),
    }
}

fn mode_to_pb(mode: ConnectionMode) -> pb::ConnectionMode {
    match mode {
        ConnectionMode::Local => pb::ConnectionMode::Local,
        ConnectionMode::Remote => pb::ConnectionMode::Remote,
    }
}

pub fn status_to_pb(status: HealthStatus) -> pb::ConnectorStatus {
    match status {
        HealthStatus::Healthy => pb::ConnectorStatus::Healthy,
        HealthStatus::Degraded => pb::ConnectorStatus::Degraded,
        HealthStatus::Unhealthy => pb::ConnectorStatus::Unhealthy,
        HealthStatus::Unavailable => pb::ConnectorStatus::Unavailable,
        HealthStatus::Unknown => pb::ConnectorStatus::Unknown,
    }
}

pub fn status_from_pb(value: i32) -> HealthStatus {
    match pb::ConnectorStatus::try_from(value) {
        Ok(pb::ConnectorStatus::Healthy) => HealthStatus::Healthy,
        Ok(pb::ConnectorStatus::Degraded) => HealthStatus::Degraded,
        Ok(pb::ConnectorStatus::Unhealthy) => HealthStatus::Unhealthy,
        Ok(pb::ConnectorStatus::Unavailable) => HealthStatus::Unavailable,
        _ => HealthStatus::Unknown,
    }
}

fn failure_from_str(text: &str) -> Option<FailureKind> {
    Some(match text {
        "deadline" => FailureKind::Deadline,
        "out-of-memory" => FailureKind::OutOfMemory,
        "trap" => FailureKind::Trap,
        "guest-error" => FailureKind::GuestError,
        "instantiate" => FailureKind::Instantiate,
        "egress-denied" => FailureKind::EgressDenied,
        "quarantined" => FailureKind::Quarantined,
        _ => return None,
    })
}

fn timestamp(t: SystemTime) -> prost_types::Timestamp {
    prost_types::Timestamp::from(t)
}

fn from_timestamp(t: Option<prost_types::Timestamp>) -> Option<SystemTime> {
    t.and_then(|t| SystemTime::try_from(t).ok())
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

pub fn info_to_pb(info: &ConnectorInfo) -> pb::ConnectorInfo {
    let h = &info.health;
    pb::ConnectorInfo {
        id: info.id.clone(),
        name: info.name.clone(),
        r#type: type_to_pb(info.connector_type).into(),
        description: info.description.clone(),
        endpoint: info.endpoint.clone(),
        enabled: info.enabled,
        status: status_to_pb(h.status).into(),
        mode: mode_to_pb(info.mode).into(),
        metadata: info.metadata.clone().into_iter().collect(),
        tags: info.tags.clone(),
        status_message: h.message.clone(),
        last_checked: h.checked_at.map(timestamp),
        response_time_ms: h.latency.map(millis).unwrap_or(0),
        consecutive_failures: h.consecutive_failures,
        failure: h
            .failure
            .as_ref()
            .map(|f| f.as_str().to_string())
            .unwrap_or_default(),
        component_digest: info.component_digest.clone(),
    }
}

pub fn info_from_pb(info: pb::ConnectorInfo) -> ConnectorInfo {
    ConnectorInfo {
        connector_type: type_from_pb(info.r#type)
            .ok()
            .flatten()
            .unwrap_or(ConnectorType::Custom),
        mode: match pb::ConnectionMode::try_from(info.mode) {
            Ok(pb::ConnectionMode::Local) => ConnectionMode::Local,
            _ => ConnectionMode::Remote,
        },
        health: HealthSnapshot {
            status: status_from_pb(info.status),
            message: info.status_message,
            details: Vec::new(),
            failure: failure_from_str(&info.failure),
            latency: info
                .last_checked
                .is_some()
                .then(|| Duration::from_millis(u64::try_from(info.response_time_ms).unwrap_or(0))),
            checked_at: from_timestamp(info.last_checked),
            consecutive_failures: info.consecutive_failures,
        },
        id: info.id,
        name: info.name,
        description: info.description,
        endpoint: info.endpoint,
        enabled: info.enabled,
        metadata: info.metadata.into_iter().collect(),
        tags: info.tags,
        component_digest: info.component_digest,
    }
}

pub fn check_to_pb(id: &str, h: &HealthSnapshot) -> pb::HealthCheckResponse {
    pb::HealthCheckResponse {
        id: id.to_string(),
        status: status_to_pb(h.status).into(),
        message: h.message.clone(),
        response_time_ms: h.latency.map(millis).unwrap_or(0),
        checked_at: h.checked_at.map(timestamp),
        details: h.details.iter().cloned().collect(),
        failure: h
            .failure
            .as_ref()
            .map(|f| f.as_str().to_string())
            .unwrap_or_default(),
    }
}

pub fn check_from_pb(r: pb::HealthCheckResponse) -> (String, HealthSnapshot) {
    (
        r.id,
        HealthSnapshot {
            status: status_from_pb(r.status),
            message: r.message,
            details: r.details.into_iter().collect(),
            failure: failure_from_str(&r.failure),
            latency: Some(Duration::from_millis(
                u64::try_from(r.response_time_ms).unwrap_or(0),
            )),
            checked_at: from_timestamp(r.checked_at),
            consecutive_failures: 0,
        },
    )
}

pub fn event_to_pb(e: &HealthEvent) -> pb::HealthEvent {
    pb::HealthEvent {
        id: e.id.clone(),
        status: status_to_pb(e.status).into(),
        previous_status: status_to_pb(e.previous).into(),
        message: e.message.clone(),
        checked_at: Some(timestamp(e.checked_at)),
        failure: e
            .failure
            .as_ref()
            .map(|f| f.as_str().to_string())
            .unwrap_or_default(),
    }
}

pub fn event_from_pb(e: pb::HealthEvent) -> HealthEvent {
    HealthEvent {
        id: e.id,
        connector_type: ConnectorType::Custom,
        status: status_from_pb(e.status),
        previous: status_from_pb(e.previous_status),
        message: e.message,
        failure: failure_from_str(&e.failure),
        checked_at: from_timestamp(e.checked_at).unwrap_or(SystemTime::UNIX_EPOCH),
    }
}

/// A config as a message; answers use [`Secrets::Redact`], a client sending
/// a config it parsed uses [`Secrets::Keep`].
pub fn config_to_pb(c: &ConnectorConfig, secrets: Secrets) -> pb::ConnectorConfig {
    let secret = |s: &Secret| match secrets {
        Secrets::Redact => REDACTED.to_string(),
        Secrets::Keep => s.expose().replace("${", "$${"),
    };
    let mut auth = pb::AuthConfig {
        r#type: c.auth.auth.kind().to_string(),
        headers: c
            .auth
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), secret(v)))
            .collect(),
        ..Default::default()
    };
    match &c.auth.auth {
        Auth::None => {}
        Auth::Basic { username, password } => {
            auth.username = username.replace("${", "$${");
            auth.password = secret(password);
        }
        Auth::Bearer { token } => auth.token = secret(token),
        Auth::ApiKey { key } => auth.api_key = secret(key),
        Auth::AwsSigV4 {
            access_key_id,
            secret_access_key,
            session_token,
            region,
            service,
        } => {
            auth.access_key_id = access_key_id.replace("${", "$${");
            auth.secret_access_key = secret(secret_access_key);
            auth.session_token = session_token.as_ref().map(secret).unwrap_or_default();
            auth.region = region.clone();
            auth.service = service.clone();
        }
    }
    auth.share_with_connector = c.auth.share_with_connector;
    pb::ConnectorConfig {
        id: c.id.clone(),
        name: c.name.clone(),
        r#type: type_to_pb(c.connector_type).into(),
        mode: mode_to_pb(c.mode).into(),
        enabled: Some(c.enabled),
        description: c.description.clone(),
        host: c.host.clone(),
        port: i32::from(c.port),
        scheme: c.scheme.as_str().to_string(),
        base_path: c.base_path.clone(),
        auth: Some(auth),
        metadata: c.metadata.clone().into_iter().collect(),
        tags: c.tags.clone(),
        health_check: Some(pb::HealthCheckConfig {
            enabled: Some(c.health_check.enabled),
            interval_ms: millis(c.health_check.interval),
            timeout_ms: millis(c.health_check.timeout),
            path: c.health_check.path.clone(),
        }),
        component: match &c.component {
            ComponentRef::Builtin(name) => name.clone(),
            ComponentRef::Path(path) => path.display().to_string(),
        },
        settings: c.settings.clone().into_iter().collect(),
        component_sha256: c.component_sha256.clone().unwrap_or_default(),
        sandbox: Some(pb::SandboxConfig {
            memory_limit_bytes: c.sandbox.memory_limit,
            max_response_size_bytes: c.sandbox.max_response_size,
            max_requests_per_call: c.sandbox.max_requests_per_call,
            max_bytes_per_call: c.sandbox.max_bytes_per_call,
            allowed_hosts: c
                .sandbox
                .allowed_hosts
                .iter()
                .map(ToString::to_string)
                .collect(),
        }),
    }
}

fn put(map: &mut Mapping, key: &str, value: impl Into<Value>) {
    map.insert(Value::String(key.into()), value.into());
}

fn put_text(map: &mut Mapping, key: &str, value: &str) {
    if !value.is_empty() {
        put(map, key, value);
    }
}

fn string_map(pairs: impl IntoIterator<Item = (String, String)>) -> Value {
    Value::Mapping(
        pairs
            .into_iter()
            .map(|(k, v)| (Value::String(k), Value::String(v)))
            .collect(),
    )
}

/// A config from a request, in the YAML entry shape: zero values are left
/// out so the parser's defaults apply. Out-of-range numbers are passed on
/// as they are, for the parser to reject by key.
pub fn config_from_pb(c: pb::ConnectorConfig) -> Result<Value, String> {
    let mut m = Mapping::new();
    put_text(&mut m, "id", &c.id);
    put_text(&mut m, "name", &c.name);
    if let Some(t) = type_from_pb(c.r#type)? {
        put(&mut m, "type", t.as_str());
    }
    match pb::ConnectionMode::try_from(c.mode) {
        Ok(pb::ConnectionMode::Unspecified) => {}
        Ok(pb::ConnectionMode::Local) => put(&mut m, "mode", "local"),
        Ok(pb::ConnectionMode::Remote) => put(&mut m, "mode", "remote"),
        Err(_) => return Err(format!("mode: {} is not a ConnectionMode", c.mode)),
    }
    if let Some(enabled) = c.enabled {
        put(&mut m, "enabled", enabled);
    }
    put_text(&mut m, "description", &c.description);
    put_text(&mut m, "host", &c.host);
    if c.port != 0 {
        put(&mut m, "port", i64::from(c.port));
    }
    put_text(&mut m, "scheme", &c.scheme);
    put_text(&mut m, "base_path", &c.base_path);
    if let Some(a) = c.auth {
        let mut auth = Mapping::new();
        put_text(&mut auth, "type", &a.r#type);
        put_text(&mut auth, "username", &a.username);
        put_text(&mut auth, "password", &a.password);
        put_text(&mut auth, "token", &a.token);
        put_text(&mut auth, "api_key", &a.api_key);
        put_text(&mut auth, "access_key_id", &a.access_key_id);
        put_text(&mut auth, "secret_access_key", &a.secret_access_key);
        put_text(&mut auth, "session_token", &a.session_token);
        put_text(&mut auth, "region", &a.region);
        put_text(&mut auth, "service", &a.service);
        if a.share_with_connector {
            put(&mut auth, "share_with_connector", true);
        }
        if !a.headers.is_empty() {
            put(&mut auth, "headers", string_map(a.headers));
        }
        put(&mut m, "auth", Value::Mapping(auth));
    }
    if !c.metadata.is_empty() {
        put(&mut m, "metadata", string_map(c.metadata));
    }
    if !c.tags.is_empty() {
        put(
            &mut m,
            "tags",
            Value::Sequence(c.tags.into_iter().map(Value::String).collect()),
        );
    }
    if let Some(h) = c.health_check {
        let mut health = Mapping::new();
        if let Some(enabled) = h.enabled {
            put(&mut health, "enabled", enabled);
        }
        if h.interval_ms != 0 {
            put(&mut health, "interval", format!("{}ms", h.interval_ms));
        }
        if h.timeout_ms != 0 {
            put(&mut health, "timeout", format!("{}ms", h.timeout_ms));
        }
        put_text(&mut health, "path", &h.path);
        put(&mut m, "health_check", Value::Mapping(health));
    }
    put_text(&mut m, "component", &c.component);
    put_text(&mut m, "component_sha256", &c.component_sha256);
    if !c.settings.is_empty() {
        put(&mut m, "settings", string_map(c.settings));
    }
    if let Some(s) = c.sandbox {
        let mut sandbox = Mapping::new();
        if s.memory_limit_bytes != 0 {
            put(&mut sandbox, "memory_limit", s.memory_limit_bytes);
        }
        if s.max_response_size_bytes != 0 {
            put(&mut sandbox, "max_response_size", s.max_response_size_bytes);
        }
        if s.max_requests_per_call != 0 {
            put(
                &mut sandbox,
                "max_requests_per_call",
                u64::from(s.max_requests_per_call),
            );
        }
        if s.max_bytes_per_call != 0 {
            put(&mut sandbox, "max_bytes_per_call", s.max_bytes_per_call);
        }
        if !s.allowed_hosts.is_empty() {
            put(
                &mut sandbox,
                "allowed_hosts",
                Value::Sequence(s.allowed_hosts.into_iter().map(Value::String).collect()),
            );
        }
        put(&mut m, "sandbox", Value::Mapping(sandbox));
    }
    Ok(Value::Mapping(m))
}
