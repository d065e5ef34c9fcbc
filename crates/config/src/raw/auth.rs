//! The `auth` section: the credential kind, its secrets, and extra headers.

use std::collections::BTreeMap;

use serde_norway::Mapping;

use super::env::{Env, expand_env};
use super::fields::Fields;
use crate::{Auth, AuthConfig, Secret};

pub const KEYS: &[&str] = &[
    "type",
    "username",
    "password",
    "token",
    "api_key",
    "access_key_id",
    "secret_access_key",
    "session_token",
    "region",
    "service",
    "headers",
    "share_with_connector",
];

pub fn parse(map: &Mapping, env: Env<'_>, problems: &mut Vec<(String, String)>) -> AuthConfig {
    let mut f = Fields::new(map, "auth.", KEYS, problems);
    let secret = |f: &mut Fields<'_, '_>, key: &str| -> Option<Secret> {
        let raw = f.string(key)?;
        match expand_env(&raw, env) {
            Ok(value) => Some(Secret::new(value)),
            Err(message) => {
                f.problem(key, message);
                None
            }
        }
    };
    #[derive(Clone, Copy)]
    enum Kind {
        None,
        Basic,
        Bearer,
        ApiKey,
        AwsSigV4,
    }
    let kind = f
        .choice(
            "type",
            &[
                ("none", Kind::None),
                ("basic", Kind::Basic),
                ("bearer", Kind::Bearer),
                ("api_key", Kind::ApiKey),
                ("aws_sigv4", Kind::AwsSigV4),
            ],
        )
        .unwrap_or(Kind::None);
    let username = secret(&mut f, "username");
    let password = secret(&mut f, "password");
    let token = secret(&mut f, "token");
    let api_key = secret(&mut f, "api_key");
    let access_key_id = secret(&mut f, "access_key_id");
    let secret_access_key = secret(&mut f, "secret_access_key");
    let session_token = secret(&mut f, "session_token");
    let region = f.string("region");
    let service = f.string("service");
    // A field that was given but failed to expand has its problem already.
    let need = |f: &mut Fields<'_, '_>, key: &str, value: Option<Secret>, kind: &str| match value {
        Some(v) if !v.is_empty() => v,
        _ => {
            if f.get(key).is_none() {
                f.problem(key, format!("required when auth.type is {kind}"));
            } else if value.is_some() {
                f.problem(key, format!("is empty; required when auth.type is {kind}"));
            }
            Secret::default()
        }
    };
    // Credentials that the chosen type would not use are a mistake, not
    // something to drop silently.
    let used: &[&str] = match kind {
        Kind::None => &[],
        Kind::Basic => &["username", "password"],
        Kind::Bearer => &["token"],
        Kind::ApiKey => &["api_key"],
        Kind::AwsSigV4 => &[
            "access_key_id",
            "secret_access_key",
            "session_token",
            "region",
            "service",
        ],
    };
    let type_name = match kind {
        Kind::None => "none",
        Kind::Basic => "basic",
        Kind::Bearer => "bearer",
        Kind::ApiKey => "api_key",
        Kind::AwsSigV4 => "aws_sigv4",
    };
    // Every auth key but these three belongs to one type or another.
    let typed = KEYS
        .iter()
        .filter(|k| !["type", "headers", "share_with_connector"].contains(k));
    for &key in typed {
        if !used.contains(&key) && f.get(key).is_some() {
            f.problem(
                key,
                format!("is set, but auth.type is {type_name}, which does not use it; set auth.type or remove the key"),
            );
        }
    }
    let auth = match kind {
        Kind::None => Auth::None,
        Kind::Basic => Auth::Basic {
            username: need(&mut f, "username", username, "basic")
                .expose()
                .to_string(),
            password: password.unwrap_or_default(),
        },
        Kind::Bearer => Auth::Bearer {
            token: need(&mut f, "token", token, "bearer"),
        },
        Kind::ApiKey => Auth::ApiKey {
            key: need(&mut f, "api_key", api_key, "api_key"),
        },
        Kind::AwsSigV4 => Auth::AwsSigV4 {
            access_key_id: need(&mut f, "access_key_id", access_key_id, "aws_sigv4")
                .expose()
                .to_string(),
            secret_access_key: need(&mut f, "secret_access_key", secret_access_key, "aws_sigv4"),
            session_token: session_token.filter(|t| !t.is_empty()),
            region: region.unwrap_or_else(|| "us-east-1".into()),
            service: service.unwrap_or_else(|| "s3".into()),
        },
    };
    let raw_headers = f.string_map("headers");
    let mut headers = BTreeMap::new();
    for (name, value) in raw_headers {
        let key = format!("headers.{name}");
        if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
            f.problem(&key, format!("`{name}` is not a valid HTTP header name"));
            continue;
        }
        match expand_env(&value, env) {
            Ok(v) if http::HeaderValue::from_str(&v).is_ok() => {
                headers.insert(name, Secret::new(v));
            }
            Ok(_) => f.problem(&key, "not a valid HTTP header value"),
            Err(message) => f.problem(&key, message),
        }
    }
    let share_with_connector = f.boolean("share_with_connector").unwrap_or(false);
    AuthConfig {
        auth,
        headers,
        share_with_connector,
    }
}
