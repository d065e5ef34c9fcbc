//! [`ConnectorConfig`] back to the YAML entry shape, for the state file and
//! the APIs. Parsing that shape again gives the same config (secrets
//! included unless redacted), so every input path shares one validator.

use serde_norway::{Mapping, Value};

use super::{
    Auth, AuthConfig, AuthFields, ConnectorConfig, HealthCheckConfig, SandboxConfig, Secret,
    format_size, units,
};

/// What replaces a secret in API answers. Sent back on update, it means
/// "keep the current value".
pub const REDACTED: &str = "<redacted>";

/// How secrets are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Secrets {
    /// As [`REDACTED`].
    Redact,
    /// As they are, with `${` escaped so that parsing does not expand it.
    Keep,
}

impl Secrets {
    /// `value` as an entry holds it: [`REDACTED`], or escaped as it is.
    pub fn write(self, value: &Secret) -> String {
        match self {
            Secrets::Redact => REDACTED.into(),
            Secrets::Keep => escape_env(value.expose()),
        }
    }
}

/// A value the parser reads through `${VAR}` expansion, written so that
/// parsing gives it back as it is: `${` becomes `$${`.
pub fn escape_env(value: &str) -> String {
    value.replace("${", "$${")
}

fn secret(value: &Secret, secrets: Secrets) -> Value {
    Value::String(secrets.write(value))
}

fn escaped(value: &str) -> Value {
    Value::String(escape_env(value))
}

fn put(map: &mut Mapping, key: &str, value: impl Into<Value>) {
    map.insert(Value::String(key.into()), value.into());
}

fn string_map<'a>(pairs: impl Iterator<Item = (&'a String, Value)>) -> Value {
    Value::Mapping(pairs.map(|(k, v)| (Value::String(k.clone()), v)).collect())
}

/// The entry as an operator would write it in `connectors.yaml`.
pub fn to_value(config: &ConnectorConfig, secrets: Secrets) -> Value {
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
    } = config;
    let size = |bytes: u64| format_size(bytes).replace(' ', "");

    let mut m = Mapping::new();
    put(&mut m, "id", id.clone());
    put(&mut m, "name", name.clone());
    put(&mut m, "type", connector_type.as_str());
    put(&mut m, "mode", mode.as_str());
    put(&mut m, "enabled", *enabled);
    put(&mut m, "description", description.clone());
    put(&mut m, "host", host.clone());
    put(&mut m, "port", u64::from(*port));
    put(&mut m, "scheme", scheme.as_str());
    put(&mut m, "base_path", base_path.clone());

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
    let mut a = Mapping::new();
    put(&mut a, "type", auth.kind());
    let values = [
        ("username", username.map(escaped)),
        ("password", password.map(|s| secret(s, secrets))),
        ("token", token.map(|s| secret(s, secrets))),
        ("api_key", api_key.map(|s| secret(s, secrets))),
        ("access_key_id", access_key_id.map(escaped)),
        (
            "secret_access_key",
            secret_access_key.map(|s| secret(s, secrets)),
        ),
        ("session_token", session_token.map(|s| secret(s, secrets))),
        ("region", region.map(|s| Value::String(s.into()))),
        ("service", service.map(|s| Value::String(s.into()))),
    ];
    for (key, value) in values {
        if let Some(value) = value {
            put(&mut a, key, value);
        }
    }
    if *share_with_connector {
        put(&mut a, "share_with_connector", true);
    }
    if !headers.is_empty() {
        put(
            &mut a,
            "headers",
            string_map(headers.iter().map(|(k, v)| (k, secret(v, secrets)))),
        );
    }
    put(&mut m, "auth", Value::Mapping(a));
    put(
        &mut m,
        "metadata",
        string_map(metadata.iter().map(|(k, v)| (k, Value::String(v.clone())))),
    );
    put(
        &mut m,
        "tags",
        Value::Sequence(tags.iter().cloned().map(Value::String).collect()),
    );

    let mut health = Mapping::new();
    put(&mut health, "enabled", *check_enabled);
    put(&mut health, "interval", units::format_duration(*interval));
    put(&mut health, "timeout", units::format_duration(*timeout));
    put(&mut health, "path", path.clone());
    put(&mut health, "failure_threshold", *failure_threshold);
    put(&mut health, "success_threshold", *success_threshold);
    put(&mut m, "health_check", Value::Mapping(health));

    put(&mut m, "component", component.entry_text());
    if let Some(digest) = component_sha256 {
        put(&mut m, "component_sha256", digest.clone());
    }
    put(
        &mut m,
        "settings",
        string_map(settings.iter().map(|(k, v)| (k, Value::String(v.clone())))),
    );

    let mut sandbox = Mapping::new();
    put(&mut sandbox, "memory_limit", size(*memory_limit));
    put(
        &mut sandbox,
        "allowed_hosts",
        Value::Sequence(
            allowed_hosts
                .iter()
                .map(|r| Value::String(r.to_string()))
                .collect(),
        ),
    );
    put(&mut sandbox, "max_response_size", size(*max_response_size));
    put(
        &mut sandbox,
        "max_requests_per_call",
        u64::from(*max_requests_per_call),
    );
    put(
        &mut sandbox,
        "max_bytes_per_call",
        size(*max_bytes_per_call),
    );
    put(&mut sandbox, "max_sockets", u64::from(*max_sockets));
    put(&mut m, "sandbox", Value::Mapping(sandbox));
    Value::Mapping(m)
}

/// Replaces every [`REDACTED`] secret in `config` with `current`'s value, so
/// that a client may send back what it read.
pub fn restore_redacted(config: &mut ConnectorConfig, current: &ConnectorConfig) {
    // Every field is named so that a new one is checked for secrets here;
    // only the auth section holds any.
    let ConnectorConfig {
        id: _,
        name: _,
        connector_type: _,
        mode: _,
        enabled: _,
        description: _,
        host: _,
        port: _,
        scheme: _,
        base_path: _,
        auth:
            AuthConfig {
                auth,
                headers,
                share_with_connector: _,
            },
        metadata: _,
        tags: _,
        health_check:
            HealthCheckConfig {
                enabled: _,
                interval: _,
                timeout: _,
                path: _,
                failure_threshold: _,
                success_threshold: _,
            },
        component: _,
        component_sha256: _,
        settings: _,
        sandbox:
            SandboxConfig {
                memory_limit: _,
                allowed_hosts: _,
                max_response_size: _,
                max_requests_per_call: _,
                max_bytes_per_call: _,
                max_sockets: _,
            },
    } = config;
    let AuthConfig {
        auth: old_auth,
        headers: old_headers,
        share_with_connector: _,
    } = &current.auth;
    let restore = |value: &mut Secret, old: &Secret| {
        if value.expose() == REDACTED {
            *value = old.clone();
        }
    };
    match (auth, old_auth) {
        (
            Auth::Basic {
                username: _,
                password,
            },
            Auth::Basic {
                username: _,
                password: old,
            },
        ) => restore(password, old),
        (Auth::Bearer { token }, Auth::Bearer { token: old }) => restore(token, old),
        (Auth::ApiKey { key }, Auth::ApiKey { key: old }) => restore(key, old),
        (
            Auth::AwsSigV4 {
                access_key_id: _,
                secret_access_key,
                session_token,
                region: _,
                service: _,
            },
            Auth::AwsSigV4 {
                access_key_id: _,
                secret_access_key: old_key,
                session_token: old_token,
                region: _,
                service: _,
            },
        ) => {
            restore(secret_access_key, old_key);
            if let (Some(token), Some(old)) = (session_token.as_mut(), old_token) {
                restore(token, old);
            }
        }
        // No secret, or a kind other than the current one: nothing to keep.
        _ => {}
    }
    for (name, value) in headers.iter_mut() {
        if let Some(old) = old_headers.get(name) {
            restore(value, old);
        }
    }
}
