//! YAML -> [`ConnectorConfig`], one entry at a time, collecting every problem.
//!
//! Entries are walked by hand rather than through `#[derive(Deserialize)]` so
//! that each problem names its key, all unknown keys are reported (with a
//! suggestion), and one bad entry never hides the others.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use serde_norway::{Mapping, Value};

use super::{
    Auth, AuthConfig, BuiltinCatalog, BuiltinDefaults, ComponentRef, ConfigError, ConnectionMode,
    ConnectorConfig, ConnectorType, HealthCheckConfig, Loaded, Problem, SandboxConfig, Scheme,
    Secret, units,
};
use sandport_policy::HostRule;

type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

const ENTRY_KEYS: &[&str] = &[
    "id",
    "name",
    "type",
    "mode",
    "enabled",
    "description",
    "host",
    "port",
    "scheme",
    "base_path",
    "auth",
    "metadata",
    "tags",
    "health_check",
    "component",
    "component_sha256",
    "settings",
    "sandbox",
];
const AUTH_KEYS: &[&str] = &[
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
const HEALTH_KEYS: &[&str] = &["enabled", "interval", "timeout", "path"];
const SANDBOX_KEYS: &[&str] = &[
    "memory_limit",
    "allowed_hosts",
    "max_response_size",
    "max_requests_per_call",
    "max_bytes_per_call",
];

/// Human description of a YAML value's kind, for "expected X, found Y".
pub fn describe(value: &Value) -> String {
    match value {
        Value::Null => "nothing".into(),
        Value::Bool(b) => format!("the boolean `{b}`"),
        Value::Number(n) => format!("the number `{n}`"),
        Value::String(s) => format!("the string `{s}`"),
        Value::Sequence(_) => "a list".into(),
        Value::Mapping(_) => "a map".into(),
        Value::Tagged(t) => format!("a value tagged {}", t.tag),
    }
}

pub fn parse_document(
    text: &str,
    source_name: &str,
    base_dir: &Path,
    builtins: &dyn BuiltinCatalog,
    env: Env<'_>,
) -> Result<Loaded, ConfigError> {
    let doc: Value = serde_norway::from_str(text).map_err(|e| ConfigError::Syntax {
        source_name: source_name.to_string(),
        message: e.to_string(),
    })?;
    let shape = |message: String| ConfigError::Shape {
        source_name: source_name.to_string(),
        message,
    };
    let top = match &doc {
        Value::Mapping(m) => m,
        Value::Null => {
            return Err(shape(
                "the file is empty; expected a `connectors:` list".into(),
            ));
        }
        other => {
            return Err(shape(format!(
                "expected a map with a `connectors:` list, found {}",
                describe(other)
            )));
        }
    };
    let mut loaded = Loaded::default();
    for key in top.keys() {
        let name = key_name(key);
        if name != "connectors" {
            loaded.problems.push(Problem {
                entry: String::new(),
                key: name,
                message: "unknown top-level key; the file holds one key, `connectors`".into(),
            });
        }
    }
    let entries = match top.get("connectors") {
        Some(Value::Sequence(entries)) => entries,
        Some(Value::Null) => return Ok(loaded),
        Some(other) => {
            return Err(shape(format!(
                "`connectors` must be a list of entries, found {}",
                describe(other)
            )));
        }
        None => return Err(shape("no `connectors:` list".into())),
    };

    let mut seen: HashSet<String> = HashSet::new();
    for (index, value) in entries.iter().enumerate() {
        let label = entry_label(index, value);
        match parse_entry(value, base_dir, builtins, env) {
            Ok(config) => {
                if !seen.insert(config.id.clone()) {
                    loaded.problems.push(Problem {
                        entry: label,
                        key: "id".into(),
                        message: format!(
                            "duplicate id `{}`; every connector needs its own id",
                            config.id
                        ),
                    });
                } else {
                    loaded.connectors.push(config);
                }
            }
            Err(problems) => loaded
                .problems
                .extend(problems.into_iter().map(|(key, message)| Problem {
                    entry: label.clone(),
                    key,
                    message,
                })),
        }
    }
    Ok(loaded)
}

pub fn parse_single(
    text: &str,
    base_dir: &Path,
    builtins: &dyn BuiltinCatalog,
    env: Env<'_>,
) -> Result<ConnectorConfig, Vec<Problem>> {
    let value: Value = serde_norway::from_str(text).map_err(|e| {
        vec![Problem {
            entry: String::new(),
            key: String::new(),
            message: format!("not valid YAML or JSON: {e}"),
        }]
    })?;
    parse_value(&value, base_dir, builtins, env)
}

pub fn parse_value(
    value: &Value,
    base_dir: &Path,
    builtins: &dyn BuiltinCatalog,
    env: Env<'_>,
) -> Result<ConnectorConfig, Vec<Problem>> {
    let label = match value.get("id").and_then(scalar).filter(|id| !id.is_empty()) {
        Some(id) => format!("connector \"{id}\""),
        None => "connector".to_string(),
    };
    parse_entry(value, base_dir, builtins, env).map_err(|problems| {
        problems
            .into_iter()
            .map(|(key, message)| Problem {
                entry: label.clone(),
                key,
                message,
            })
            .collect()
    })
}

fn entry_label(index: usize, value: &Value) -> String {
    match value.get("id").and_then(scalar).filter(|id| !id.is_empty()) {
        Some(id) => format!("connectors[{index}] (id \"{id}\")"),
        None => format!("connectors[{index}]"),
    }
}

fn key_name(key: &Value) -> String {
    match key {
        Value::String(s) => s.clone(),
        other => serde_norway::to_string(other)
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "?".into()),
    }
}

/// Reads the keys of one map, recording a problem per bad key.
struct Fields<'a, 'p> {
    map: &'a Mapping,
    prefix: &'static str,
    problems: &'p mut Vec<(String, String)>,
}

impl<'a, 'p> Fields<'a, 'p> {
    fn new(
        map: &'a Mapping,
        prefix: &'static str,
        known: &[&str],
        problems: &'p mut Vec<(String, String)>,
    ) -> Self {
        for key in map.keys() {
            let name = key_name(key);
            if !known.contains(&name.as_str()) {
                let hint = known
                    .iter()
                    .map(|k| (strsim::levenshtein(k, &name), k))
                    .min()
                    .filter(|(distance, k)| *distance <= 2 && *distance < k.len().min(name.len()))
                    .map(|(_, k)| format!(" (did you mean `{k}`?)"))
                    .unwrap_or_default();
                problems.push((
                    format!("{prefix}{name}"),
                    format!("unknown key{hint}; known keys: {}", known.join(", ")),
                ));
            }
        }
        Fields {
            map,
            prefix,
            problems,
        }
    }

    fn problem(&mut self, key: &str, message: impl Into<String>) {
        self.problems
            .push((format!("{}{key}", self.prefix), message.into()));
    }

    fn get(&self, key: &str) -> Option<&'a Value> {
        match self.map.get(key) {
            None | Some(Value::Null) => None,
            Some(value) => Some(value),
        }
    }

    fn string(&mut self, key: &str) -> Option<String> {
        match self.get(key)? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            other => {
                let found = describe(other);
                self.problem(key, format!("expected a string, found {found}"));
                None
            }
        }
    }

    fn boolean(&mut self, key: &str) -> Option<bool> {
        match self.get(key)? {
            Value::Bool(b) => Some(*b),
            other => {
                let found = describe(other);
                self.problem(key, format!("expected true or false, found {found}"));
                None
            }
        }
    }

    fn with<T>(&mut self, key: &str, parse: impl FnOnce(&Value) -> Result<T, String>) -> Option<T> {
        let value = self.get(key)?;
        match parse(value) {
            Ok(v) => Some(v),
            Err(message) => {
                self.problem(key, message);
                None
            }
        }
    }

    fn choice<T: Copy>(&mut self, key: &str, options: &[(&str, T)]) -> Option<T> {
        let text = self.string(key)?;
        let found = options
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(text.trim()));
        match found {
            Some((_, value)) => Some(*value),
            None => {
                let names: Vec<&str> = options.iter().map(|(n, _)| *n).collect();
                self.problem(key, format!("`{text}` is not one of: {}", names.join(", ")));
                None
            }
        }
    }

    fn string_map(&mut self, key: &str) -> BTreeMap<String, String> {
        let Some(value) = self.get(key) else {
            return BTreeMap::new();
        };
        let Value::Mapping(map) = value else {
            let found = describe(value);
            self.problem(
                key,
                format!("expected a map of names to values, found {found}"),
            );
            return BTreeMap::new();
        };
        let mut out = BTreeMap::new();
        for (k, v) in map {
            match scalar(v) {
                Some(text) => {
                    out.insert(key_name(k), text);
                }
                None => {
                    let found = describe(v);
                    self.problem(
                        &format!("{key}.{}", key_name(k)),
                        format!("expected a plain value, found {found}"),
                    );
                }
            }
        }
        out
    }

    fn sub_map(&mut self, key: &str) -> Option<&'a Mapping> {
        match self.get(key)? {
            Value::Mapping(m) => Some(m),
            other => {
                let found = describe(other);
                self.problem(key, format!("expected a map, found {found}"));
                None
            }
        }
    }
}

/// A DNS name, an IPv4 address or an IPv6 address (brackets already removed).
fn valid_host(host: &str) -> bool {
    if host.contains(':') {
        return host.parse::<std::net::Ipv6Addr>().is_ok();
    }
    !host.is_empty()
        && host.len() <= 253
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
}

fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::Null => Some(String::new()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) => Some(s.clone()),
        _ => None,
    }
}

/// Nested maps become `a.b` keys; lists of plain values are joined with `,`.
fn flatten_settings(
    prefix: &str,
    value: &Value,
    out: &mut BTreeMap<String, String>,
    problems: &mut Vec<(String, String)>,
) {
    match value {
        Value::Mapping(map) => {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    key_name(k)
                } else {
                    format!("{prefix}.{}", key_name(k))
                };
                flatten_settings(&key, v, out, problems);
            }
        }
        Value::Sequence(items) => {
            let parts: Option<Vec<String>> = items.iter().map(scalar).collect();
            match parts {
                Some(parts) => {
                    out.insert(prefix.to_string(), parts.join(","));
                }
                None => problems.push((
                    format!("settings.{prefix}"),
                    "lists in settings may only hold plain values".into(),
                )),
            }
        }
        Value::Tagged(_) => problems.push((
            format!("settings.{prefix}"),
            "tagged values are not supported in settings".into(),
        )),
        other => {
            out.insert(prefix.to_string(), scalar(other).unwrap_or_default());
        }
    }
}

/// The auth keys of an entry whose values hold a `${` that would expand.
pub fn env_references(entry: &Value) -> Vec<String> {
    let expands = |text: &str| {
        text.match_indices("${")
            .any(|(i, _)| i == 0 || text.as_bytes()[i - 1] != b'$')
    };
    let Some(Value::Mapping(auth)) = entry.get("auth") else {
        return Vec::new();
    };
    let mut keys = Vec::new();
    for (key, value) in auth {
        let name = key_name(key);
        match value {
            Value::String(text) if expands(text) => keys.push(format!("auth.{name}")),
            Value::Mapping(headers) if name == "headers" => {
                for (header, value) in headers {
                    if value.as_str().is_some_and(expands) {
                        keys.push(format!("auth.headers.{}", key_name(header)));
                    }
                }
            }
            _ => {}
        }
    }
    keys
}

/// Replaces `${NAME}` with the environment variable NAME; `$${` is a
/// literal `${`. Errors never quote the text: it may be a secret.
fn expand_env(text: &str, env: Env<'_>) -> Result<String, String> {
    const HINT: &str = "(write `$${` for a literal `${`)";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        if rest[..start].ends_with('$') {
            out.push_str(&rest[..start - 1]);
            out.push_str("${");
            rest = &rest[start + 2..];
            continue;
        }
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            return Err(format!("has `${{` without a closing `}}` {HINT}"));
        };
        let name = &after[..end];
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!(
                "has a `${{...}}` that is not an environment variable name (letters, digits, `_`) {HINT}"
            ));
        }
        match env(name) {
            Some(value) => out.push_str(&value),
            None => return Err(format!("environment variable `{name}` is not set")),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn parse_entry(
    value: &Value,
    base_dir: &Path,
    builtins: &dyn BuiltinCatalog,
    env: Env<'_>,
) -> Result<ConnectorConfig, Vec<(String, String)>> {
    let mut problems = Vec::new();
    let Value::Mapping(map) = value else {
        return Err(vec![(
            String::new(),
            format!("expected a map of keys, found {}", describe(value)),
        )]);
    };
    let mut f = Fields::new(map, "", ENTRY_KEYS, &mut problems);

    let id = f.string("id").unwrap_or_default();
    if id.is_empty() {
        f.problem("id", "missing; every connector needs an id");
    } else if !id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        f.problem(
            "id",
            format!("`{id}` may only hold letters, digits, `-`, `_` and `.`"),
        );
    }

    let component = match f.string("component") {
        Some(c) if c.ends_with(".wasm") || c.contains('/') => {
            let path = Path::new(&c);
            ComponentRef::Path(if path.is_absolute() {
                path.to_path_buf()
            } else {
                base_dir.join(path)
            })
        }
        Some(name) => {
            if builtins.defaults(&name).is_none() {
                f.problem(
                    "component",
                    format!(
                        "no built-in component named `{name}`; built-ins: {} (or give a path to a .wasm file)",
                        builtins.names().join(", ")
                    ),
                );
            }
            ComponentRef::Builtin(name)
        }
        None => {
            if builtins.defaults(&id).is_none() && !id.is_empty() {
                f.problem(
                    "component",
                    format!(
                        "missing, and there is no built-in named like the id `{id}`; set `component` to one of {} or to a path to a .wasm file",
                        builtins.names().join(", ")
                    ),
                );
            }
            ComponentRef::Builtin(id.clone())
        }
    };
    let builtin = match &component {
        ComponentRef::Builtin(name) => builtins.defaults(name),
        ComponentRef::Path(_) => None,
    }
    .unwrap_or(BuiltinDefaults::new(ConnectorType::Custom, None));
    let (builtin_type, builtin_port) = (builtin.connector_type, builtin.port);

    let component_sha256 = f
        .string("component_sha256")
        .map(|s| s.trim().to_ascii_lowercase());
    if let Some(digest) = &component_sha256
        && (digest.len() != 64 || !digest.chars().all(|c| c.is_ascii_hexdigit()))
    {
        f.problem(
            "component_sha256",
            "must be 64 hexadecimal digits (the SHA-256 of the .wasm file)",
        );
    }
    let type_options: Vec<(&str, ConnectorType)> = ConnectorType::ALL
        .iter()
        .map(|t| (t.as_str(), *t))
        .collect();
    let connector_type = f.choice("type", &type_options).unwrap_or(builtin_type);
    let mode = f
        .choice(
            "mode",
            &[
                ("local", ConnectionMode::Local),
                ("remote", ConnectionMode::Remote),
            ],
        )
        .unwrap_or(ConnectionMode::Remote);
    let enabled = f.boolean("enabled").unwrap_or(true);
    let name = f.string("name").unwrap_or_else(|| id.clone());
    let description = f.string("description").unwrap_or_default();
    let scheme = f
        .choice(
            "scheme",
            &[("http", Scheme::Http), ("https", Scheme::Https)],
        )
        .or(builtin.scheme)
        .unwrap_or(Scheme::Http);
    let host = f
        .string("host")
        .unwrap_or_else(|| builtin.host.unwrap_or("localhost").into());
    let host = host.trim();
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
        .to_string();
    if !valid_host(&host) {
        f.problem(
            "host",
            format!("`{host}` is not a host name or IP address (put the port in `port`)"),
        );
    }
    let port = match f.get("port") {
        None => match builtin_port {
            Some(port) => port,
            None => {
                f.problem("port", "missing; this component has no default port");
                0
            }
        },
        Some(Value::Number(n)) => match n.as_u64().and_then(|p| u16::try_from(p).ok()) {
            Some(p) if p > 0 => p,
            _ if n.as_u64().is_none() && !n.is_i64() => {
                f.problem(
                    "port",
                    format!("{n} is not a whole number; a port is 1 to 65535"),
                );
                0
            }
            _ => {
                f.problem("port", format!("{n} is out of range; a port is 1 to 65535"));
                0
            }
        },
        Some(other) => {
            let found = describe(other);
            f.problem(
                "port",
                format!("expected a number from 1 to 65535, found {found}"),
            );
            0
        }
    };
    let base_path = f.string("base_path").unwrap_or_default();
    let base_path = match base_path.trim().trim_end_matches('/') {
        "" => String::new(),
        p if p.starts_with('/') => p.to_string(),
        p => format!("/{p}"),
    };
    let metadata = f.string_map("metadata");
    let tags = f
        .with("tags", |v| match v {
            Value::Sequence(items) => items
                .iter()
                .map(|item| scalar(item).ok_or_else(|| "tags must be plain values".to_string()))
                .collect(),
            other => Err(format!(
                "expected a list of tags, found {}",
                describe(other)
            )),
        })
        .unwrap_or_default();
    let mut settings = BTreeMap::new();
    let mut settings_problems = Vec::new();
    match f.get("settings") {
        None => {}
        Some(Value::Mapping(_)) => {
            if let Some(value) = f.get("settings") {
                flatten_settings("", value, &mut settings, &mut settings_problems);
            }
        }
        Some(other) => {
            let found = describe(other);
            f.problem("settings", format!("expected a map, found {found}"));
        }
    }
    let auth_map = f.sub_map("auth");
    let health_map = f.sub_map("health_check");
    let sandbox_map = f.sub_map("sandbox");
    problems.extend(settings_problems);

    let auth = auth_map
        .map(|m| parse_auth(m, env, &mut problems))
        .unwrap_or(AuthConfig {
            auth: Auth::None,
            headers: BTreeMap::new(),
            share_with_connector: false,
        });
    let empty = Mapping::new();
    let health_check = parse_health(health_map.unwrap_or(&empty), env, &mut problems);
    let sandbox = sandbox_map
        .map(|m| parse_sandbox(m, &mut problems))
        .unwrap_or_default();

    if problems.is_empty() {
        Ok(ConnectorConfig {
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
            auth,
            metadata,
            tags,
            health_check,
            component,
            component_sha256,
            settings,
            sandbox,
        })
    } else {
        Err(problems)
    }
}

fn parse_auth(map: &Mapping, env: Env<'_>, problems: &mut Vec<(String, String)>) -> AuthConfig {
    let mut f = Fields::new(map, "auth.", AUTH_KEYS, problems);
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
    let typed = AUTH_KEYS
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

/// The variable the original service read for the default check interval.
pub const DEFAULT_INTERVAL_VAR: &str = "HEALTH_INTERVAL";

fn parse_health(
    map: &Mapping,
    env: Env<'_>,
    problems: &mut Vec<(String, String)>,
) -> HealthCheckConfig {
    let mut f = Fields::new(map, "health_check.", HEALTH_KEYS, problems);
    let mut defaults = HealthCheckConfig::default();
    if f.get("interval").is_none()
        && let Some(text) = env(DEFAULT_INTERVAL_VAR)
    {
        match units::duration(&Value::String(text.clone())) {
            Ok(interval) => {
                defaults.interval = interval;
                defaults.timeout = defaults.timeout.min(interval);
            }
            Err(message) => f.problem(
                "interval",
                format!("from {DEFAULT_INTERVAL_VAR}: {message}"),
            ),
        }
    }
    let enabled = f.boolean("enabled").unwrap_or(defaults.enabled);
    let interval = f
        .with("interval", units::duration)
        .unwrap_or(defaults.interval);
    let timeout = f
        .with("timeout", units::duration)
        .unwrap_or(defaults.timeout);
    let path = f.string("path").unwrap_or_default();
    if interval < std::time::Duration::from_secs(1) {
        f.problem("interval", "must be at least 1s");
    }
    if timeout.is_zero() {
        f.problem("timeout", "must be more than 0s");
    } else if timeout > interval {
        f.problem(
            "timeout",
            format!(
                "{} is longer than the interval ({}); a check must end before the next one starts",
                units::format_duration(timeout),
                units::format_duration(interval)
            ),
        );
    }
    if !path.is_empty() && !path.starts_with('/') {
        f.problem("path", format!("`{path}` must start with `/`"));
    }
    HealthCheckConfig {
        enabled,
        interval,
        timeout,
        path,
    }
}

fn parse_sandbox(map: &Mapping, problems: &mut Vec<(String, String)>) -> SandboxConfig {
    let mut f = Fields::new(map, "sandbox.", SANDBOX_KEYS, problems);
    let memory_limit = f
        .with("memory_limit", units::size)
        .unwrap_or(SandboxConfig::DEFAULT_MEMORY_LIMIT);
    if memory_limit < (1 << 20) {
        f.problem("memory_limit", "must be at least 1MiB");
    }
    let allowed_hosts = f
        .with("allowed_hosts", |v| match v {
            Value::Sequence(items) => items
                .iter()
                .map(|item| match item {
                    Value::String(s) => HostRule::parse(s).map_err(|e| e.to_string()),
                    other => Err(format!(
                        "expected a host rule string, found {}",
                        describe(other)
                    )),
                })
                .collect(),
            other => Err(format!(
                "expected a list of hosts, found {}",
                describe(other)
            )),
        })
        .unwrap_or_default();
    let max_response_size = f
        .with("max_response_size", units::size)
        .unwrap_or(SandboxConfig::DEFAULT_MAX_RESPONSE_SIZE);
    let max_bytes_per_call = f
        .with("max_bytes_per_call", units::size)
        .unwrap_or(SandboxConfig::DEFAULT_MAX_BYTES_PER_CALL);
    let max_requests_per_call = f
        .with("max_requests_per_call", |v| match v {
            Value::Number(n) => n
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .filter(|n| *n >= 1)
                .ok_or_else(|| format!("{n} is not a count from 1 up")),
            other => Err(format!("expected a count, found {}", describe(other))),
        })
        .unwrap_or(SandboxConfig::DEFAULT_MAX_REQUESTS_PER_CALL);
    if max_response_size > max_bytes_per_call {
        f.problem(
            "max_response_size",
            "must not be larger than max_bytes_per_call",
        );
    }
    SandboxConfig {
        memory_limit,
        allowed_hosts,
        max_response_size,
        max_requests_per_call,
        max_bytes_per_call,
    }
}
