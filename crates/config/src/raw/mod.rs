//! YAML -> [`ConnectorConfig`], one entry at a time, collecting every problem:
//! the document and entry walk; each section of an entry has its own module.
//!
//! Entries are walked by hand rather than through `#[derive(Deserialize)]` so
//! that each problem names its key, all unknown keys are reported (with a
//! suggestion), and one bad entry never hides the others.

mod alerts;
mod auth;
mod env;
mod fields;
mod health;
mod sandbox;
mod settings;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use serde_norway::{Mapping, Value};

use super::{
    Auth, AuthConfig, BuiltinCatalog, BuiltinDefaults, ComponentPaths, ComponentRef, ConfigError,
    ConnectionMode, ConnectorConfig, ConnectorType, DIGEST_PREFIX, Loaded, Problem, Scheme,
    confined_path, parse_digest,
};
use fields::{Fields, key_name, problem_key, scalar};

use env::Env;
pub use env::env_references;
pub use fields::describe;

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

/// Every key the parser reads, by section (`""` for the entry itself), so
/// that tests can check a fixture sets them all.
#[cfg(test)]
pub const KNOWN_KEYS: &[(&str, &[&str])] = &[
    ("", ENTRY_KEYS),
    ("auth", auth::KEYS),
    ("health_check", health::KEYS),
    ("sandbox", sandbox::KEYS),
];

pub fn parse_document(
    text: &str,
    source_name: &str,
    paths: ComponentPaths<'_>,
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
        if key_name(key) != "connectors" && !alerts::is_section(key) {
            loaded.problems.push(Problem {
                entry: String::new(),
                key: problem_key(key),
                message:
                    "unknown top-level key; the file holds `connectors`, `alerts` and `history`"
                        .into(),
            });
        }
    }
    loaded.alerts = alerts::parse_alerts(top.get("alerts"), env, &mut loaded.problems);
    loaded.history = alerts::parse_history(top.get("history"), &mut loaded.problems);
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
        match parse_entry(value, paths, builtins, env) {
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
    paths: ComponentPaths<'_>,
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
    parse_value(&value, paths, builtins, env)
}

pub fn parse_value(
    value: &Value,
    paths: ComponentPaths<'_>,
    builtins: &dyn BuiltinCatalog,
    env: Env<'_>,
) -> Result<ConnectorConfig, Vec<Problem>> {
    let label = match value.get("id").and_then(scalar).filter(|id| !id.is_empty()) {
        Some(id) => format!("connector \"{id}\""),
        None => "connector".to_string(),
    };
    parse_entry(value, paths, builtins, env).map_err(|problems| {
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

fn parse_entry(
    value: &Value,
    paths: ComponentPaths<'_>,
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
        Some(text) if text.starts_with(DIGEST_PREFIX) => match parse_digest(&text) {
            Ok(digest) => ComponentRef::Uploaded(digest),
            Err(message) => {
                f.problem("component", message);
                ComponentRef::Uploaded(String::new())
            }
        },
        Some(text) if text.ends_with(".wasm") || text.contains('/') => match paths {
            ComponentPaths::Anywhere(base_dir) => {
                let path = Path::new(&text);
                ComponentRef::Path(if path.is_absolute() {
                    path.to_path_buf()
                } else {
                    base_dir.join(path)
                })
            }
            ComponentPaths::ComponentsDir => match confined_path(&text) {
                Ok(path) => ComponentRef::InComponentsDir(path),
                Err(message) => {
                    f.problem("component", message);
                    ComponentRef::InComponentsDir(PathBuf::new())
                }
            },
        },
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
        ComponentRef::Path(_) | ComponentRef::InComponentsDir(_) | ComponentRef::Uploaded(_) => {
            None
        }
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
                settings::flatten("", value, &mut settings, &mut settings_problems);
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
        .map(|m| auth::parse(m, env, &mut problems))
        .unwrap_or(AuthConfig {
            auth: Auth::None,
            headers: BTreeMap::new(),
            share_with_connector: false,
        });
    let empty = Mapping::new();
    let health_check = health::parse(health_map.unwrap_or(&empty), env, &mut problems);
    let sandbox = sandbox_map
        .map(|m| sandbox::parse(m, &mut problems))
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
