//! The operator's config: `connectors.yaml` parsed into typed, validated
//! [`ConnectorConfig`]s.
//!
//! Parsing never stops at the first bad entry: every entry is checked on its
//! own, each problem names the entry and the key, and the good entries still
//! load (see [`Loaded`]). Secrets may come from the environment (`${VAR}` in
//! auth fields) and are held as [`Secret`]s that never print.
//!
//! Layout:
//! - this file: the typed config ([`ConnectorConfig`] and its parts) and
//!   the entry points ([`load_file`], [`parse`], [`parse_entry`], ...);
//! - `raw/`: a YAML or JSON entry -> [`ConnectorConfig`], one file per
//!   section (auth, health, sandbox), `${VAR}` expansion and settings;
//! - `entry`: [`ConnectorConfig`] -> the entry shape again ([`to_value`]),
//!   for the REST API and the state file, with secrets kept or redacted;
//! - `component`: [`ComponentRef`] and what each kind of caller may name;
//! - `units`: durations and sizes as operators write them;
//! - `secret`: [`Secret`], a value that never prints;
//! - `read`: [`read_bounded`], how any file named from outside is read.
#![forbid(unsafe_code)]

mod alerts;
mod component;
mod entry;
mod raw;
mod read;
mod secret;
mod units;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use alerts::{
    AlertsConfig, HistoryConfig, MaintenanceWindow, Match, PAGERDUTY_EVENTS_URL, Provider,
    ProviderType, Route, Schedule, Weekly, format_time, parse_time,
};
pub use component::{ComponentPaths, ComponentRef, DIGEST_PREFIX, confined_path, parse_digest};
pub use entry::{REDACTED, Secrets, escape_env, restore_redacted, to_value};
pub use read::{ReadError, read_bounded, read_bounded_text};
pub use secret::Secret;
pub use units::format_duration;

use sandport_policy::HostRule;

/// The config shipped with the binary: the three observability connectors.
pub const DEFAULT_CONFIG: &str = include_str!("../../../config/connectors.yaml");

/// A size as the config writes it: `64 MiB`, `512 KiB`, `1000 B`.
pub fn format_size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 && b % (1 << 30) == 0 => format!("{} GiB", b >> 30),
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{} MiB", b >> 20),
        b if b >= 1 << 10 && b % (1 << 10) == 0 => format!("{} KiB", b >> 10),
        b => format!("{b} B"),
    }
}

/// What kind of system a connector watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnectorType {
    Observability,
    Agent,
    Storage,
    Messaging,
    Database,
    Custom,
}

impl ConnectorType {
    pub const ALL: [ConnectorType; 6] = [
        ConnectorType::Observability,
        ConnectorType::Agent,
        ConnectorType::Storage,
        ConnectorType::Messaging,
        ConnectorType::Database,
        ConnectorType::Custom,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ConnectorType::Observability => "observability",
            ConnectorType::Agent => "agent",
            ConnectorType::Storage => "storage",
            ConnectorType::Messaging => "messaging",
            ConnectorType::Database => "database",
            ConnectorType::Custom => "custom",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == text)
    }
}

impl fmt::Display for ConnectorType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a connector reaches its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionMode {
    Local,
    Remote,
}

impl ConnectionMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionMode::Local => "local",
            ConnectionMode::Remote => "remote",
        }
    }
}

/// `http` or `https`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }

    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }
}

/// Credentials the host attaches to requests bound for the connector's own
/// endpoint.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Auth {
    #[default]
    None,
    Basic {
        username: String,
        password: Secret,
    },
    Bearer {
        token: Secret,
    },
    /// Sent as the `X-API-Key` header.
    ApiKey {
        key: Secret,
    },
    /// AWS Signature Version 4: the host signs each request to the own
    /// endpoint, so the secret key never enters the guest (S3 and other
    /// AWS-style APIs).
    AwsSigV4 {
        access_key_id: String,
        secret_access_key: Secret,
        session_token: Option<Secret>,
        region: String,
        service: String,
    },
}

impl Auth {
    pub fn kind(&self) -> &'static str {
        match self {
            Auth::None => "none",
            Auth::Basic { .. } => "basic",
            Auth::Bearer { .. } => "bearer",
            Auth::ApiKey { .. } => "api_key",
            Auth::AwsSigV4 { .. } => "aws_sigv4",
        }
    }

    /// The values under the names the entry's `auth` map (and the gRPC
    /// message) gives them, so that each converter destructures one flat
    /// struct instead of re-spelling every variant.
    pub fn fields(&self) -> AuthFields<'_> {
        let none = AuthFields::default();
        match self {
            Auth::None => none,
            Auth::Basic { username, password } => AuthFields {
                username: Some(username),
                password: Some(password),
                ..none
            },
            Auth::Bearer { token } => AuthFields {
                token: Some(token),
                ..none
            },
            Auth::ApiKey { key } => AuthFields {
                api_key: Some(key),
                ..none
            },
            Auth::AwsSigV4 {
                access_key_id,
                secret_access_key,
                session_token,
                region,
                service,
            } => AuthFields {
                access_key_id: Some(access_key_id),
                secret_access_key: Some(secret_access_key),
                session_token: session_token.as_ref(),
                region: Some(region),
                service: Some(service),
                ..none
            },
        }
    }
}

/// An [`Auth`] flattened to the keys of the entry's `auth` map: `None` where
/// its kind has no such value. See [`Auth::fields`].
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct AuthFields<'a> {
    pub username: Option<&'a str>,
    pub password: Option<&'a Secret>,
    pub token: Option<&'a Secret>,
    pub api_key: Option<&'a Secret>,
    pub access_key_id: Option<&'a str>,
    pub secret_access_key: Option<&'a Secret>,
    pub session_token: Option<&'a Secret>,
    pub region: Option<&'a str>,
    pub service: Option<&'a str>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AuthConfig {
    pub auth: Auth,
    /// Extra headers (values are secrets too).
    pub headers: BTreeMap<String, Secret>,
    /// Let the guest read the credentials (`credentials.get`), for
    /// protocols the host cannot authenticate for it. The built-in TCP
    /// connectors get them without this.
    pub share_with_connector: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HealthCheckConfig {
    pub enabled: bool,
    pub interval: Duration,
    pub timeout: Duration,
    /// Empty: the connector's own default path.
    pub path: String,
    /// Failed checks in a row before a passing connector is reported as
    /// failing (as a Kubernetes probe's `failureThreshold`).
    pub failure_threshold: u32,
    /// Passed checks in a row before a failing connector is reported as
    /// passing again.
    pub success_threshold: u32,
}

impl HealthCheckConfig {
    /// The largest threshold: beyond it a status would lag for hours.
    pub const MAX_THRESHOLD: u32 = 100;
}

impl Default for HealthCheckConfig {
    fn default() -> Self {
        HealthCheckConfig {
            enabled: true,
            interval: Duration::from_secs(30),
            timeout: Duration::from_secs(5),
            path: String::new(),
            failure_threshold: 1,
            success_threshold: 1,
        }
    }
}

/// The sandbox a connector runs in.
#[derive(Debug, Clone, PartialEq)]
pub struct SandboxConfig {
    /// Cap on the guest's linear memory, in bytes.
    pub memory_limit: u64,
    /// Where the guest may send HTTP requests, besides its own endpoint.
    pub allowed_hosts: Vec<HostRule>,
    /// Cap on one response body, in bytes.
    pub max_response_size: u64,
    /// Cap on HTTP requests (redirect hops included) in one guest call.
    pub max_requests_per_call: u32,
    /// Cap on response bytes received in one guest call.
    pub max_bytes_per_call: u64,
    /// Cap on the TCP sockets (wasi:sockets) the guest holds at once.
    pub max_sockets: u32,
}

impl SandboxConfig {
    pub const DEFAULT_MEMORY_LIMIT: u64 = 64 << 20;
    pub const DEFAULT_MAX_RESPONSE_SIZE: u64 = 1 << 20;
    pub const DEFAULT_MAX_REQUESTS_PER_CALL: u32 = 16;
    pub const DEFAULT_MAX_BYTES_PER_CALL: u64 = 8 << 20;
    pub const DEFAULT_MAX_SOCKETS: u32 = 16;
    /// Each socket holds a file descriptor of the process.
    pub const MAX_MAX_SOCKETS: u32 = 1024;
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            memory_limit: Self::DEFAULT_MEMORY_LIMIT,
            allowed_hosts: Vec::new(),
            max_response_size: Self::DEFAULT_MAX_RESPONSE_SIZE,
            max_requests_per_call: Self::DEFAULT_MAX_REQUESTS_PER_CALL,
            max_bytes_per_call: Self::DEFAULT_MAX_BYTES_PER_CALL,
            max_sockets: Self::DEFAULT_MAX_SOCKETS,
        }
    }
}

/// One validated entry of `connectors.yaml`.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectorConfig {
    pub id: String,
    pub name: String,
    pub connector_type: ConnectorType,
    pub mode: ConnectionMode,
    pub enabled: bool,
    pub description: String,
    pub host: String,
    pub port: u16,
    pub scheme: Scheme,
    /// `""` or a path starting with `/`, without a trailing `/`.
    pub base_path: String,
    pub auth: AuthConfig,
    pub metadata: BTreeMap<String, String>,
    pub tags: Vec<String>,
    pub health_check: HealthCheckConfig,
    pub component: ComponentRef,
    /// If set, the component's bytes must have this SHA-256 (hex).
    pub component_sha256: Option<String>,
    /// Connector-specific options, nested maps flattened to `a.b` keys.
    pub settings: BTreeMap<String, String>,
    pub sandbox: SandboxConfig,
}

impl ConnectorConfig {
    /// `scheme://host:port`.
    pub fn endpoint(&self) -> String {
        if self.host.contains(':') {
            format!("{}://[{}]:{}", self.scheme.as_str(), self.host, self.port)
        } else {
            format!("{}://{}:{}", self.scheme.as_str(), self.host, self.port)
        }
    }
}

/// One problem found in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Which entry, e.g. `connectors[2] (id "grafana")`; empty for the file.
    pub entry: String,
    /// Which key, e.g. `health_check.interval`; empty for the entry as a whole.
    pub key: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.entry.is_empty(), self.key.is_empty()) {
            (true, true) => write!(f, "{}", self.message),
            (true, false) => write!(f, "{}: {}", self.key, self.message),
            (false, true) => write!(f, "{}: {}", self.entry, self.message),
            (false, false) => write!(f, "{}: {}: {}", self.entry, self.key, self.message),
        }
    }
}

/// A config file that could be read: the entries that passed, and the
/// problems of those that did not.
#[derive(Debug, Default)]
pub struct Loaded {
    pub connectors: Vec<ConnectorConfig>,
    pub problems: Vec<Problem>,
    pub alerts: AlertsConfig,
    pub history: HistoryConfig,
}

/// A config file that cannot be used at all.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: ReadError },
    #[error("{source_name} is not valid YAML: {message}")]
    Syntax {
        source_name: String,
        message: String,
    },
    #[error("{source_name}: {message}")]
    Shape {
        source_name: String,
        message: String,
    },
}

/// Facts about the built-in components the config needs to fill defaults.
/// What an entry of a built-in component gets when it does not say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuiltinDefaults {
    pub connector_type: ConnectorType,
    pub port: Option<u16>,
    /// For SaaS targets (slack.com, ...); else `localhost`.
    pub host: Option<&'static str>,
    pub scheme: Option<Scheme>,
}

impl BuiltinDefaults {
    pub const fn new(connector_type: ConnectorType, port: Option<u16>) -> Self {
        BuiltinDefaults {
            connector_type,
            port,
            host: None,
            scheme: None,
        }
    }
}

pub trait BuiltinCatalog {
    /// Defaults of the built-in `name`, if there is one.
    fn defaults(&self, name: &str) -> Option<BuiltinDefaults>;
    /// Names of every built-in, for error messages.
    fn names(&self) -> Vec<&'static str>;
}

/// The largest config or entry file read: far above any real one, and
/// small enough that a wrong path (a log, a device) cannot take the
/// process's memory.
pub const MAX_FILE_SIZE: u64 = 16 << 20;

/// Reads and parses a config file. Relative component paths are resolved
/// against the file's directory.
pub fn load_file(path: &Path, builtins: &dyn BuiltinCatalog) -> Result<Loaded, ConfigError> {
    let text = read_bounded_text(path, MAX_FILE_SIZE).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let base_dir = path.parent().unwrap_or(Path::new("."));
    parse(&text, &path.display().to_string(), base_dir, builtins)
}

/// Parses config text. `source_name` names it in errors.
pub fn parse(
    text: &str,
    source_name: &str,
    base_dir: &Path,
    builtins: &dyn BuiltinCatalog,
) -> Result<Loaded, ConfigError> {
    let paths = ComponentPaths::Anywhere(base_dir);
    raw::parse_document(text, source_name, paths, builtins, &|name| {
        std::env::var(name).ok()
    })
}

/// Parses one entry (as YAML or JSON text) from the operator's own file.
pub fn parse_entry(
    text: &str,
    base_dir: &Path,
    builtins: &dyn BuiltinCatalog,
) -> Result<ConnectorConfig, Vec<Problem>> {
    let paths = ComponentPaths::Anywhere(base_dir);
    raw::parse_single(text, paths, builtins, &|name| std::env::var(name).ok())
}

/// Parses one entry sent through an API. Unlike the operator's file, it may
/// not read the service's environment (`${VAR}` would let an API caller send
/// any variable of the process to a host of their choosing), nor name a
/// component file outside the components directory (it would let a caller
/// probe any file the service can read).
pub fn parse_api_entry(
    value: &serde_norway::Value,
    builtins: &dyn BuiltinCatalog,
) -> Result<ConnectorConfig, Vec<Problem>> {
    let label = |v: &serde_norway::Value| match v.get("id").and_then(serde_norway::Value::as_str) {
        Some(id) => format!("connector \"{id}\""),
        None => "connector".to_string(),
    };
    let problems = raw::env_references(value);
    if !problems.is_empty() {
        return Err(problems
            .into_iter()
            .map(|key| Problem {
                entry: label(value),
                key,
                message: "`${...}` is expanded only in the operator's config file; send the value itself (write `$${` for a literal `${`)".into(),
            })
            .collect());
    }
    raw::parse_value(value, ComponentPaths::ComponentsDir, builtins, &|_| None)
}

/// Parses one entry already read into a YAML value (e.g. from JSON, a gRPC
/// message or the state file), with `paths` saying where its component may
/// be.
pub fn parse_entry_value(
    value: &serde_norway::Value,
    paths: ComponentPaths<'_>,
    builtins: &dyn BuiltinCatalog,
) -> Result<ConnectorConfig, Vec<Problem>> {
    raw::parse_value(value, paths, builtins, &|name| std::env::var(name).ok())
}

#[cfg(test)]
mod tests;
