//! [`ConnectorConfig`] back to the YAML entry shape, for the state file and
//! the APIs. Parsing that shape again gives the same config (secrets
//! included unless redacted), so every input path shares one validator.

use serde_norway::{Mapping, Value};

use super::{Auth, ComponentRef, ConnectorConfig, Secret, format_size, units};

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

fn secret(value: &Secret, secrets: Secrets) -> Value {
    match secrets {
        Secrets::Redact => Value::String(REDACTED.into()),
        Secrets::Keep => Value::String(value.expose().replace("${", "$${")),
    }
}

fn put(map: &mut Mapping, key: &str, value: impl Into<Value>) {
    map.insert(Value::String(key.into()), value.into());
}

fn string_map<'a>(pairs: impl Iterator<Item = (&'a String, Value)>) -> Value {
    Value::Mapping(pairs.map(|(k, v)| (Value::String(k.clone()), v)).collect())
}

/// The entry as an operator would write it in `connectors.yaml`.
pub fn to_value(config: &ConnectorConfig, secrets: Secrets) -> Value {
    let mut m = Mapping::new();
    put(&mut m, "id", config.id.clone());
    put(&mut m, "name", config.name.clone());
    put(&mut m, "type", config.connector_type.as_str());
    put(&mut m, "mode", config.mode.as_str());
    put(&mut m, "enabled", config.enabled);
    put(&mut m, "description", config.description.clone());
    put(&mut m, "host", config.host.clone());
    put(&mut m, "port", u64::from(config.port));
    put(&mut m, "scheme", config.scheme.as_str());
    put(&mut m, "base_path", config.base_path.clone());

    let mut auth = Mapping::new();
    put(&mut auth, "type", config.auth.auth.kind());
    match &config.auth.auth {
        Auth::None => {}
        Auth::Basic { username, password } => {
            put(&mut auth, "username", username.replace("${", "$${"));
            put(&mut auth, "password", secret(password, secrets));
        }
        Auth::Bearer { token } => put(&mut auth, "token", secret(token, secrets)),
        Auth::ApiKey { key } => put(&mut auth, "api_key", secret(key, secrets)),
        Auth::AwsSigV4 {
            access_key_id,
            secret_access_key,
            session_token,
            region,
            service,
        } => {
            put(
                &mut auth,
                "access_key_id",
                access_key_id.replace("${", "$${"),
            );
            put(
                &mut auth,
                "secret_access_key",
                secret(secret_access_key, secrets),
            );
            if let Some(token) = session_token {
                put(&mut auth, "session_token", secret(token, secrets));
            }
            put(&mut auth, "region", region.clone());
            put(&mut auth, "service", service.clone());
        }
    }
    if config.auth.share_with_connector {
        put(&mut auth, "share_with_connector", true);
    }
    if !config.auth.headers.is_empty() {
        put(
            &mut auth,
            "headers",
            string_map(
                config
                    .auth
                    .headers
                    .iter()
                    .map(|(k, v)| (k, secret(v, secrets))),
            ),
        );
    }
    put(&mut m, "auth", Value::Mapping(auth));
    put(
        &mut m,
        "metadata",
        string_map(
            config
                .metadata
                .iter()
                .map(|(k, v)| (k, Value::String(v.clone()))),
        ),
    );
    put(
        &mut m,
        "tags",
        Value::Sequence(config.tags.iter().cloned().map(Value::String).collect()),
    );

    let mut health = Mapping::new();
    put(&mut health, "enabled", config.health_check.enabled);
    put(
        &mut health,
        "interval",
        units::format_duration(config.health_check.interval),
    );
    put(
        &mut health,
        "timeout",
        units::format_duration(config.health_check.timeout),
    );
    put(&mut health, "path", config.health_check.path.clone());
    put(&mut m, "health_check", Value::Mapping(health));

    let component = match &config.component {
        ComponentRef::Builtin(name) => name.clone(),
        ComponentRef::Path(path) => path.display().to_string(),
    };
    put(&mut m, "component", component);
    if let Some(digest) = &config.component_sha256 {
        put(&mut m, "component_sha256", digest.clone());
    }
    put(
        &mut m,
        "settings",
        string_map(
            config
                .settings
                .iter()
                .map(|(k, v)| (k, Value::String(v.clone()))),
        ),
    );

    let mut sandbox = Mapping::new();
    put(
        &mut sandbox,
        "memory_limit",
        format_size(config.sandbox.memory_limit).replace(' ', ""),
    );
    put(
        &mut sandbox,
        "allowed_hosts",
        Value::Sequence(
            config
                .sandbox
                .allowed_hosts
                .iter()
                .map(|r| Value::String(r.to_string()))
                .collect(),
        ),
    );
    put(
        &mut sandbox,
        "max_response_size",
        format_size(config.sandbox.max_response_size).replace(' ', ""),
    );
    put(
        &mut sandbox,
        "max_requests_per_call",
        u64::from(config.sandbox.max_requests_per_call),
    );
    put(
        &mut sandbox,
        "max_bytes_per_call",
        format_size(config.sandbox.max_bytes_per_call).replace(' ', ""),
    );
    put(&mut m, "sandbox", Value::Mapping(sandbox));
    Value::Mapping(m)
}

/// Replaces every [`REDACTED`] secret in `config` with `current`'s value, so
/// that a client may send back what it read.
pub fn restore_redacted(config: &mut ConnectorConfig, current: &ConnectorConfig) {
    let redacted = |s: &Secret| s.expose() == REDACTED;
    match (&mut config.auth.auth, &current.auth.auth) {
        (Auth::Basic { password, .. }, Auth::Basic { password: old, .. }) if redacted(password) => {
            *password = old.clone();
        }
        (Auth::Bearer { token }, Auth::Bearer { token: old }) if redacted(token) => {
            *token = old.clone();
        }
        (Auth::ApiKey { key }, Auth::ApiKey { key: old }) if redacted(key) => *key = old.clone(),
        (
            Auth::AwsSigV4 {
                secret_access_key,
                session_token,
                ..
            },
            Auth::AwsSigV4 {
                secret_access_key: old_key,
                session_token: old_token,
                ..
            },
        ) => {
            if redacted(secret_access_key) {
                *secret_access_key = old_key.clone();
            }
            if let (Some(token), Some(old)) = (session_token.as_mut(), old_token)
                && redacted(token)
            {
                *token = old.clone();
            }
        }
        _ => {}
    }
    for (name, value) in config.auth.headers.iter_mut() {
        if redacted(value)
            && let Some(old) = current.auth.headers.get(name)
        {
            *value = old.clone();
        }
    }
}
