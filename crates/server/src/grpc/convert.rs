//! Protobuf messages <-> runtime types. A config arriving over gRPC is
//! turned into the YAML entry shape and validated by the config parser, so
//! its errors name the same keys as a YAML file's.

use std::time::{Duration, SystemTime};

use serde_norway::{Mapping, Value};

use super::pb;
use sandport_config::{
    AuthConfig, AuthFields, ConnectionMode, ConnectorConfig, ConnectorType, HealthCheckConfig,
    SandboxConfig, Secret, Secrets, escape_env,
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

fn failure_to_pb(failure: Option<&FailureKind>) -> String {
    failure.map(|f| f.as_str().to_string()).unwrap_or_default()
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

fn from_millis(ms: i64) -> Duration {
    Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

pub fn info_to_pb(info: &ConnectorInfo) -> pb::ConnectorInfo {
    let ConnectorInfo {
        id,
        name,
        connector_type,
        description,
        endpoint,
        enabled,
        mode,
        metadata,
        tags,
        component_digest,
        health:
            HealthSnapshot {
                status,
                message,
                // A list answer stays short; a health check's answer
                // (`check_to_pb`) carries the details.
                details: _,
                failure,
                latency,
                checked_at,
                consecutive_failures,
                consecutive_successes,
                since,
            },
    } = info;
    pb::ConnectorInfo {
        id: id.clone(),
        name: name.clone(),
        r#type: type_to_pb(*connector_type).into(),
        description: description.clone(),
        endpoint: endpoint.clone(),
        enabled: *enabled,
        status: status_to_pb(*status).into(),
        mode: mode_to_pb(*mode).into(),
        metadata: metadata.clone().into_iter().collect(),
        tags: tags.clone(),
        status_message: message.clone(),
        last_checked: checked_at.map(timestamp),
        response_time_ms: latency.map(millis).unwrap_or(0),
        consecutive_failures: *consecutive_failures,
        failure: failure_to_pb(failure.as_ref()),
        component_digest: component_digest.clone(),
        status_since: since.map(timestamp),
        consecutive_successes: *consecutive_successes,
        // From the history, which the handlers ask.
        uptime: None,
    }
}

pub fn info_from_pb(info: pb::ConnectorInfo) -> ConnectorInfo {
    let pb::ConnectorInfo {
        id,
        name,
        r#type,
        description,
        endpoint,
        enabled,
        status,
        mode,
        metadata,
        tags,
        status_message,
        last_checked,
        response_time_ms,
        consecutive_failures,
        failure,
        component_digest,
        status_since,
        consecutive_successes,
        // Not part of the runtime's view of a connector.
        uptime: _,
    } = info;
    ConnectorInfo {
        id,
        name,
        connector_type: type_from_pb(r#type)
            .ok()
            .flatten()
            .unwrap_or(ConnectorType::Custom),
        description,
        endpoint,
        enabled,
        mode: match pb::ConnectionMode::try_from(mode) {
            Ok(pb::ConnectionMode::Local) => ConnectionMode::Local,
            _ => ConnectionMode::Remote,
        },
        metadata: metadata.into_iter().collect(),
        tags,
        component_digest,
        health: HealthSnapshot {
            status: status_from_pb(status),
            message: status_message,
            details: Vec::new(),
            failure: failure_from_str(&failure),
            latency: last_checked
                .is_some()
                .then(|| from_millis(response_time_ms)),
            checked_at: from_timestamp(last_checked),
            consecutive_failures,
            consecutive_successes,
            since: from_timestamp(status_since),
        },
    }
}

/// Takes the snapshot by value: `HealthCheckAll` answers thousands at once
/// on the API thread, and moving the strings saves a copy of each.
pub fn check_to_pb(id: String, h: HealthSnapshot) -> pb::HealthCheckResponse {
    let HealthSnapshot {
        status,
        message,
        details,
        failure,
        latency,
        checked_at,
        // One check's answer; the runs and `since` are on `ConnectorInfo`.
        consecutive_failures: _,
        consecutive_successes: _,
        since: _,
    } = h;
    pb::HealthCheckResponse {
        id,
        status: status_to_pb(status).into(),
        message,
        response_time_ms: latency.map(millis).unwrap_or(0),
        checked_at: checked_at.map(timestamp),
        details: details.into_iter().collect(),
        failure: failure_to_pb(failure.as_ref()),
    }
}

pub fn check_from_pb(r: pb::HealthCheckResponse) -> (String, HealthSnapshot) {
    let pb::HealthCheckResponse {
        id,
        status,
        message,
        response_time_ms,
        checked_at,
        details,
        failure,
    } = r;
    (
        id,
        HealthSnapshot {
            status: status_from_pb(status),
            message,
            details: details.into_iter().collect(),
            failure: failure_from_str(&failure),
            latency: Some(from_millis(response_time_ms)),
            checked_at: from_timestamp(checked_at),
            consecutive_failures: 0,
            consecutive_successes: 0,
            since: None,
        },
    )
}

pub fn event_to_pb(e: &HealthEvent) -> pb::HealthEvent {
    let HealthEvent {
        id,
        // Watchers filter by type on the server (`WatchHealthRequest.type`);
        // the event itself does not carry it.
        connector_type: _,
        status,
        previous,
        message,
        failure,
        checked_at,
    } = e;
    pb::HealthEvent {
        id: id.clone(),
        status: status_to_pb(*status).into(),
        previous_status: status_to_pb(*previous).into(),
        message: message.clone(),
        checked_at: Some(timestamp(*checked_at)),
        failure: failure_to_pb(failure.as_ref()),
    }
}

pub fn event_from_pb(e: pb::HealthEvent) -> HealthEvent {
    let pb::HealthEvent {
        id,
        status,
        previous_status,
        message,
        checked_at,
        failure,
    } = e;
    HealthEvent {
        id,
        connector_type: ConnectorType::Custom,
        status: status_from_pb(status),
        previous: status_from_pb(previous_status),
        message,
        failure: failure_from_str(&failure),
        checked_at: from_timestamp(checked_at).unwrap_or(SystemTime::UNIX_EPOCH),
    }
}

/// A config as a message; answers use [`Secrets::Redact`], a client sending
/// a config it parsed uses [`Secrets::Keep`]. The same shape as
/// [`sandport_config::to_value`], field for field.
pub fn config_to_pb(c: &ConnectorConfig, secrets: Secrets) -> pb::ConnectorConfig {
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
                headers,
                share_with_connector,
            },
        metadata,
        tags,
        health_check:
            HealthCheckConfig {
                enabled: check_enabled,
                interval,
                timeout,
                path,
                failure_threshold,
                success_threshold,
            },
        component,
        component_sha256,
        settings,
        sandbox:
            SandboxConfig {
                memory_limit,
                allowed_hosts,
                max_response_size,
                max_requests_per_call,
                max_bytes_per_call,
                max_sockets,
            },
    } = c;
    let secret = |s: &Secret| secrets.write(s);
    let AuthFields {
        username,
        password,
        token,
        api_key,
        access_key_id,
        secret_access_key,
        session_token,
        region,
        service,
    } = auth.fields();
    pb::ConnectorConfig {
        id: id.clone(),
        name: name.clone(),
        r#type: type_to_pb(*connector_type).into(),
        mode: mode_to_pb(*mode).into(),
        enabled: Some(*enabled),
        description: description.clone(),
        host: host.clone(),
        port: i32::from(*port),
        scheme: scheme.as_str().to_string(),
        base_path: base_path.clone(),
        auth: Some(pb::AuthConfig {
            r#type: auth.kind().to_string(),
            username: username.map(escape_env).unwrap_or_default(),
            password: password.map(secret).unwrap_or_default(),
            token: token.map(secret).unwrap_or_default(),
            api_key: api_key.map(secret).unwrap_or_default(),
            headers: headers
                .iter()
                .map(|(k, v)| (k.clone(), secret(v)))
                .collect(),
            share_with_connector: *share_with_connector,
            access_key_id: access_key_id.map(escape_env).unwrap_or_default(),
            secret_access_key: secret_access_key.map(secret).unwrap_or_default(),
            session_token: session_token.map(secret).unwrap_or_default(),
            region: region.unwrap_or_default().to_string(),
            service: service.unwrap_or_default().to_string(),
        }),
        metadata: metadata.clone().into_iter().collect(),
        tags: tags.clone(),
        health_check: Some(pb::HealthCheckConfig {
            enabled: Some(*check_enabled),
            interval_ms: millis(*interval),
            timeout_ms: millis(*timeout),
            path: path.clone(),
            failure_threshold: *failure_threshold,
            success_threshold: *success_threshold,
        }),
        component: component.entry_text(),
        settings: settings.clone().into_iter().collect(),
        component_sha256: component_sha256.clone().unwrap_or_default(),
        sandbox: Some(pb::SandboxConfig {
            memory_limit_bytes: *memory_limit,
            allowed_hosts: allowed_hosts.iter().map(ToString::to_string).collect(),
            max_response_size_bytes: *max_response_size,
            max_requests_per_call: *max_requests_per_call,
            max_bytes_per_call: *max_bytes_per_call,
            max_sockets: Some(*max_sockets),
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

/// A config from a request, in the YAML entry shape that
/// [`sandport_config::parse_api_entry`] reads (the REST API's shape too):
/// zero values are left out so the parser's defaults apply. Out-of-range
/// numbers are passed on as they are, for the parser to reject by key.
pub fn config_from_pb(c: pb::ConnectorConfig) -> Result<Value, String> {
    let pb::ConnectorConfig {
        id,
        name,
        r#type,
        mode,
        enabled,
        description,
        host,
        port,
        scheme,
        base_path,
        auth,
        metadata,
        tags,
        health_check,
        component,
        settings,
        sandbox,
        component_sha256,
    } = c;
    let mut m = Mapping::new();
    put_text(&mut m, "id", &id);
    put_text(&mut m, "name", &name);
    if let Some(t) = type_from_pb(r#type)? {
        put(&mut m, "type", t.as_str());
    }
    match pb::ConnectionMode::try_from(mode) {
        Ok(pb::ConnectionMode::Unspecified) => {}
        Ok(pb::ConnectionMode::Local) => put(&mut m, "mode", "local"),
        Ok(pb::ConnectionMode::Remote) => put(&mut m, "mode", "remote"),
        Err(_) => return Err(format!("mode: {mode} is not a ConnectionMode")),
    }
    if let Some(enabled) = enabled {
        put(&mut m, "enabled", enabled);
    }
    put_text(&mut m, "description", &description);
    put_text(&mut m, "host", &host);
    if port != 0 {
        put(&mut m, "port", i64::from(port));
    }
    put_text(&mut m, "scheme", &scheme);
    put_text(&mut m, "base_path", &base_path);
    if let Some(pb::AuthConfig {
        r#type: kind,
        username,
        password,
        token,
        api_key,
        headers,
        share_with_connector,
        access_key_id,
        secret_access_key,
        session_token,
        region,
        service,
    }) = auth
    {
        let mut auth = Mapping::new();
        put_text(&mut auth, "type", &kind);
        put_text(&mut auth, "username", &username);
        put_text(&mut auth, "password", &password);
        put_text(&mut auth, "token", &token);
        put_text(&mut auth, "api_key", &api_key);
        put_text(&mut auth, "access_key_id", &access_key_id);
        put_text(&mut auth, "secret_access_key", &secret_access_key);
        put_text(&mut auth, "session_token", &session_token);
        put_text(&mut auth, "region", &region);
        put_text(&mut auth, "service", &service);
        if share_with_connector {
            put(&mut auth, "share_with_connector", true);
        }
        if !headers.is_empty() {
            put(&mut auth, "headers", string_map(headers));
        }
        put(&mut m, "auth", Value::Mapping(auth));
    }
    if !metadata.is_empty() {
        put(&mut m, "metadata", string_map(metadata));
    }
    if !tags.is_empty() {
        put(
            &mut m,
            "tags",
            Value::Sequence(tags.into_iter().map(Value::String).collect()),
        );
    }
    if let Some(pb::HealthCheckConfig {
        enabled,
        interval_ms,
        timeout_ms,
        path,
        failure_threshold,
        success_threshold,
    }) = health_check
    {
        let mut health = Mapping::new();
        if let Some(enabled) = enabled {
            put(&mut health, "enabled", enabled);
        }
        if interval_ms != 0 {
            put(&mut health, "interval", format!("{interval_ms}ms"));
        }
        if timeout_ms != 0 {
            put(&mut health, "timeout", format!("{timeout_ms}ms"));
        }
        put_text(&mut health, "path", &path);
        if failure_threshold != 0 {
            put(&mut health, "failure_threshold", failure_threshold);
        }
        if success_threshold != 0 {
            put(&mut health, "success_threshold", success_threshold);
        }
        put(&mut m, "health_check", Value::Mapping(health));
    }
    put_text(&mut m, "component", &component);
    put_text(&mut m, "component_sha256", &component_sha256);
    if !settings.is_empty() {
        put(&mut m, "settings", string_map(settings));
    }
    if let Some(pb::SandboxConfig {
        memory_limit_bytes,
        allowed_hosts,
        max_response_size_bytes,
        max_requests_per_call,
        max_bytes_per_call,
        max_sockets,
    }) = sandbox
    {
        let mut sandbox = Mapping::new();
        if memory_limit_bytes != 0 {
            put(&mut sandbox, "memory_limit", memory_limit_bytes);
        }
        if max_response_size_bytes != 0 {
            put(&mut sandbox, "max_response_size", max_response_size_bytes);
        }
        if max_requests_per_call != 0 {
            put(
                &mut sandbox,
                "max_requests_per_call",
                u64::from(max_requests_per_call),
            );
        }
        if max_bytes_per_call != 0 {
            put(&mut sandbox, "max_bytes_per_call", max_bytes_per_call);
        }
        if let Some(max_sockets) = max_sockets {
            put(&mut sandbox, "max_sockets", u64::from(max_sockets));
        }
        if !allowed_hosts.is_empty() {
            put(
                &mut sandbox,
                "allowed_hosts",
                Value::Sequence(allowed_hosts.into_iter().map(Value::String).collect()),
            );
        }
        put(&mut m, "sandbox", Value::Mapping(sandbox));
    }
    Ok(Value::Mapping(m))
}

#[cfg(test)]
#[path = "convert_tests.rs"]
mod tests;
