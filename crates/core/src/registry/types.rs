//! What callers of the registry see: its options, its errors, its answers.

use std::collections::BTreeMap;
use std::time::SystemTime;

use sandport_config::{ConnectionMode, ConnectorType};

use crate::health::{FailureKind, HealthSnapshot, HealthStatus};
use crate::sandbox::SandboxError;

#[derive(Debug, Clone)]
pub struct RuntimeOptions {
    /// Run each connector's health checks on its interval.
    pub schedule: bool,
    /// Checks allowed to run at the same time (scheduled and live).
    pub max_concurrent_checks: usize,
    /// Enabled connectors (live instances) the node accepts.
    pub max_instances: usize,
    /// Sum of the enabled connectors' `sandbox.memory_limit` the node
    /// accepts; `None` for no limit.
    pub memory_budget: Option<u64>,
    /// Where compiled components are kept across restarts; `None` compiles
    /// every start.
    pub cache_dir: Option<std::path::PathBuf>,
    /// Where the component files an API caller names by a relative path
    /// live; `None` refuses such entries.
    pub components_dir: Option<std::path::PathBuf>,
    /// Components uploaded through the API; `None` refuses `sha256:`
    /// entries.
    pub uploads: Option<std::sync::Arc<crate::uploads::ComponentStore>>,
    /// The largest component file read, in bytes.
    pub max_component_size: u64,
    /// Components compiling at once, and how long each may take.
    pub compile: crate::sandbox::CompileLimits,
    /// TCP sockets all guests together may hold; `None`: a share of the
    /// process's descriptor limit ([`crate::limits::guest_socket_budget`]).
    pub guest_sockets: Option<usize>,
    /// Told of every check (the history store, the alerts).
    pub observers: crate::observe::Observers,
    /// Which connectors this node checks at start: all of them alone; in
    /// cluster mode, none until the node is a member (see
    /// [`Runtime::set_ownership`](super::Runtime::set_ownership)).
    pub ownership: super::Ownership,
}

/// The default [`RuntimeOptions::max_component_size`]: several times the
/// largest component built with the SDKs (a Python one is about 18 MiB).
pub const DEFAULT_MAX_COMPONENT_SIZE: u64 = 64 << 20;

/// The default compiled-component cache: `$SANDPORT_CACHE_DIR`, else
/// `$XDG_CACHE_HOME/sandport`, else `~/.cache/sandport`.
pub fn default_cache_dir() -> Option<std::path::PathBuf> {
    use std::path::PathBuf;
    std::env::var_os("SANDPORT_CACHE_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("XDG_CACHE_HOME").map(|d| PathBuf::from(d).join("sandport")))
        .or_else(|| std::env::var_os("HOME").map(|d| PathBuf::from(d).join(".cache/sandport")))
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        RuntimeOptions {
            schedule: true,
            max_concurrent_checks: 1024,
            max_instances: 20_000,
            memory_budget: None,
            cache_dir: default_cache_dir(),
            components_dir: None,
            uploads: None,
            max_component_size: DEFAULT_MAX_COMPONENT_SIZE,
            compile: crate::sandbox::CompileLimits::default(),
            guest_sockets: None,
            observers: crate::observe::Observers::default(),
            ownership: super::Ownership::all(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RuntimeError {
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    #[error("cannot create the HTTP client: {0}")]
    Http(String),
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegisterError {
    #[error("a connector with id `{0}` is already registered")]
    AlreadyExists(String),
    #[error("connector `{id}`: component {component}: {message}")]
    Component {
        id: String,
        component: String,
        message: String,
    },
    #[error("connector `{id}`: {message}")]
    Sandbox { id: String, message: String },
    /// Instantiating or initialising the connector took longer than its
    /// `health_check.timeout`.
    #[error("connector `{id}`: {message} (starting a connector has its health_check.timeout)")]
    StartTimedOut { id: String, message: String },
    #[error("connector `{id}` refused its config: {message}")]
    Initialize { id: String, message: String },
    #[error("no connector with id `{0}`")]
    NotFound(String),
    #[error("connector `{0}` was changed or removed while it was being updated; try again")]
    Conflict(String),
    #[error("connector `{id}` refused: {message}")]
    ResourceExhausted {
        id: String,
        message: String,
        /// The entry's key that would make it fit, if one would.
        key: &'static str,
    },
}

impl RegisterError {
    /// The config key the error is about, if one.
    pub fn key(&self) -> &'static str {
        match self {
            RegisterError::AlreadyExists(_) => "id",
            RegisterError::Component { .. } => "component",
            RegisterError::Sandbox { .. } => "sandbox",
            RegisterError::StartTimedOut { .. } => "health_check.timeout",
            RegisterError::Initialize { .. } => "settings",
            RegisterError::NotFound(_) | RegisterError::Conflict(_) => "id",
            RegisterError::ResourceExhausted { key, .. } => key,
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("no connector with id `{0}`")]
pub struct NotFound(pub String);

/// A connector's status changed.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthEvent {
    pub id: String,
    pub connector_type: ConnectorType,
    pub status: HealthStatus,
    pub previous: HealthStatus,
    pub message: String,
    pub failure: Option<FailureKind>,
    pub checked_at: SystemTime,
}

/// What [`Runtime::check_all_until`] found by its deadline.
#[derive(Debug, Clone, Default)]
pub struct CheckAll {
    /// Every connector, sorted by id: fresh results, or the cached status of
    /// those still running at the deadline.
    pub results: Vec<(String, HealthSnapshot)>,
    /// Ids whose checks had not finished by the deadline.
    pub unfinished: Vec<String>,
}

/// What the API shows of a connector.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectorInfo {
    pub id: String,
    pub name: String,
    pub connector_type: ConnectorType,
    pub description: String,
    pub endpoint: String,
    pub enabled: bool,
    pub mode: ConnectionMode,
    pub metadata: BTreeMap<String, String>,
    pub tags: Vec<String>,
    /// Digest of the component's bytes (hex SHA-256).
    pub component_digest: String,
    pub health: HealthSnapshot,
}
