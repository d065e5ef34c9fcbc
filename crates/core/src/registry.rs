//! The registry of running connectors: one sandboxed instance per enabled
//! config entry, its cached health, and its place in the health schedule.
//!
//! [`Runtime`] is the whole public surface the binary and the API layers use:
//! register, remove, list, get, check one, check all, shut down. It knows
//! nothing of gRPC or HTTP frameworks.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, SystemTime};

use tokio::sync::{Semaphore, broadcast};
use tokio::task::{AbortHandle, JoinSet};
use tokio::time::Instant;

use crate::budget::Budget;
use crate::egress::{Egress, HttpClient};
use crate::health::{CheckOutcome, FailureKind, HealthSnapshot, HealthStatus, one_line};
use crate::quarantine::Quarantine;
pub use crate::sandbox::Echo;
use crate::sandbox::{Guest, GuestError, GuestInfo, Prepared, Sandbox, SandboxError, mappings};
use sandport_builtins as builtin;
use sandport_config::{
    ComponentRef, ConnectionMode, ConnectorConfig, ConnectorType, Loaded, Problem,
};

/// How long `close` may take when a connector is removed or on shutdown.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// Connectors started at once. Starts are mostly CPU work, so more would
/// only queue; enough that starts waiting on the network overlap.
const MAX_CONCURRENT_STARTS: usize = 128;

/// The most details kept from one health report.
const MAX_DETAILS: usize = 64;

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
}

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

/// The connector runtime. Cheap to clone; all clones share one registry.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

struct Inner {
    events: broadcast::Sender<HealthEvent>,
    sandbox: Sandbox,
    http: HttpClient,
    options: RuntimeOptions,
    instance_limit: InstanceLimit,
    permits: Semaphore,
    /// Connectors being started (instantiated and initialised) at once.
    starts: Semaphore,
    connectors: RwLock<BTreeMap<String, Arc<Entry>>>,
    /// Components given by path, by file identity: registering 10,000
    /// entries of one file reads and hashes it once, not 10,000 times.
    by_path: Mutex<std::collections::HashMap<std::path::PathBuf, (FileStamp, Weak<Prepared>)>>,
}

/// The most enabled connectors the node runs, and what sets it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct InstanceLimit {
    max: usize,
    /// `vm.max_map_count`, when the kernel's limit on memory mappings is
    /// lower than the configured limit and so sets it instead.
    max_map_count: Option<usize>,
}

impl InstanceLimit {
    fn new(configured: usize, max_map_count: Option<usize>) -> Self {
        let fits = max_map_count.map(|count| (count, mappings::instances_within(count)));
        match fits {
            Some((count, fits)) if fits < configured => InstanceLimit {
                max: fits,
                max_map_count: Some(count),
            },
            _ => InstanceLimit {
                max: configured,
                max_map_count: None,
            },
        }
    }

    /// Why one more instance is refused, with `instances` running.
    fn refusal(&self, instances: usize) -> String {
        match self.max_map_count {
            None => format!(
                "the node runs {instances} of at most {} connector instances",
                self.max
            ),
            Some(count) => format!(
                "the node runs {instances} connector instances, as many as the kernel's limit on memory mappings leaves room for (vm.max_map_count = {count}, {} per instance); raise it (e.g. `sysctl -w vm.max_map_count=262144`) to run more",
                mappings::PER_INSTANCE
            ),
        }
    }
}

/// What tells one version of a file from another without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    len: u64,
    modified: Option<SystemTime>,
    /// Device, inode and change time: a file replaced by another of the
    /// same size within the same modification second still differs here.
    #[cfg(unix)]
    identity: (u64, u64, i64, i64),
}

impl FileStamp {
    fn of(metadata: &std::fs::Metadata) -> Self {
        #[cfg(unix)]
        use std::os::unix::fs::MetadataExt;
        FileStamp {
            len: metadata.len(),
            modified: metadata.modified().ok(),
            #[cfg(unix)]
            identity: (
                metadata.dev(),
                metadata.ino(),
                metadata.ctime(),
                metadata.ctime_nsec(),
            ),
        }
    }
}

struct Entry {
    config: ConnectorConfig,
    prepared: Arc<Prepared>,
    /// Built once, so its connection pool outlives re-created instances.
    egress: Egress,
    info: GuestInfo,
    instance: tokio::sync::Mutex<Option<Guest>>,
    health: Mutex<HealthSnapshot>,
    schedule: Mutex<Option<AbortHandle>>,
    quarantine: Mutex<Quarantine>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Every critical section leaves the value consistent.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Runtime {
    pub fn new(options: RuntimeOptions) -> Result<Self, RuntimeError> {
        let sandbox = Sandbox::new(options.cache_dir.clone())?;
        let http = HttpClient::new().map_err(RuntimeError::Http)?;
        let instance_limit = InstanceLimit::new(options.max_instances, mappings::max_map_count());
        Ok(Runtime {
            inner: Arc::new(Inner {
                events: broadcast::channel(1024).0,
                sandbox,
                http,
                instance_limit,
                permits: Semaphore::new(options.max_concurrent_checks.max(1)),
                starts: Semaphore::new(MAX_CONCURRENT_STARTS),
                options,
                connectors: RwLock::new(BTreeMap::new()),
                by_path: Mutex::new(std::collections::HashMap::new()),
            }),
        })
    }

    /// The most enabled connectors this node runs: the configured limit, or
    /// fewer where the kernel's limit on memory mappings allows fewer.
    pub fn max_instances(&self) -> usize {
        self.inner.instance_limit.max
    }

    /// Registers every connector of a loaded config, concurrently. Returns
    /// the config's problems plus one per connector that failed to start.
    pub async fn load(&self, loaded: Loaded) -> Vec<Problem> {
        let mut problems = loaded.problems;
        let mut again = Vec::new();
        for (config, error) in self.register_all(loaded.connectors).await {
            match error {
                RegisterError::StartTimedOut { .. } => again.push(config),
                error => problems.push(load_problem(&config.id, &error)),
            }
        }
        // A node starting thousands of connectors can leave one short of
        // time; it gets a second start once the others have theirs.
        for (config, error) in self.register_all(again).await {
            let mut problem = load_problem(&config.id, &error);
            if matches!(error, RegisterError::StartTimedOut { .. }) {
                problem
                    .message
                    .push_str("; a second start, once the others had started, timed out too");
            }
            problems.push(problem);
        }
        problems
    }

    /// Registers `configs` concurrently; returns those that failed.
    async fn register_all(
        &self,
        configs: Vec<ConnectorConfig>,
    ) -> Vec<(ConnectorConfig, RegisterError)> {
        let mut tasks = JoinSet::new();
        for config in configs {
            let runtime = self.clone();
            tasks.spawn(async move {
                let kept = config.clone();
                runtime.register(config).await.err().map(|e| (kept, e))
            });
        }
        let mut failed = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            if let Ok(Some(failure)) = joined {
                failed.push(failure);
            }
        }
        failed
    }

    /// Loads, compiles, instantiates and initialises a connector, then
    /// schedules its health checks.
    pub async fn register(&self, config: ConnectorConfig) -> Result<ConnectorInfo, RegisterError> {
        {
            let connectors = self.read();
            if connectors.contains_key(&config.id) {
                return Err(RegisterError::AlreadyExists(config.id));
            }
            self.admit(&connectors, &config, None)?;
        }
        let entry = self.build_entry(config).await?;
        let id = entry.config.id.clone();
        let inserted = {
            let mut connectors = self.write();
            if connectors.contains_key(&id) {
                Err(RegisterError::AlreadyExists(id.clone()))
            } else {
                self.admit(&connectors, &entry.config, None).map(|()| {
                    connectors.insert(id.clone(), entry.clone());
                })
            }
        };
        if let Err(e) = inserted {
            // Lost a race with another registration.
            close(&entry).await;
            return Err(e);
        }
        self.start_schedule(&entry);
        tracing::info!(connector = %id, component = %entry.config.component, "registered");
        Ok(entry.info())
    }

    /// Replaces a registered connector. The old instance keeps serving until
    /// the new one has initialised; if that fails, the old one stays.
    pub async fn update(&self, config: ConnectorConfig) -> Result<ConnectorInfo, RegisterError> {
        let old = self
            .entry(&config.id)
            .map_err(|e| RegisterError::NotFound(e.0))?;
        self.admit(&self.read(), &config, Some(&old.config))?;
        let entry = self.build_entry(config).await?;
        let id = entry.config.id.clone();
        let swapped = {
            let mut connectors = self.write();
            match connectors.get(&id) {
                Some(current) if Arc::ptr_eq(current, &old) => {
                    connectors.insert(id.clone(), entry.clone());
                    true
                }
                _ => false,
            }
        };
        if !swapped {
            close(&entry).await;
            return Err(RegisterError::Conflict(id));
        }
        close(&old).await;
        self.start_schedule(&entry);
        tracing::info!(connector = %id, component = %entry.config.component, "updated");
        Ok(entry.info())
    }

    /// Refuses `config` if running it (in place of `replacing`) would pass
    /// the node's instance or memory budget.
    fn admit(
        &self,
        connectors: &BTreeMap<String, Arc<Entry>>,
        config: &ConnectorConfig,
        replacing: Option<&ConnectorConfig>,
    ) -> Result<(), RegisterError> {
        if !config.enabled {
            return Ok(());
        }
        let enabled = || connectors.values().filter(|e| e.config.enabled);
        let freed = replacing.filter(|c| c.enabled);
        let instances = enabled().count() - usize::from(freed.is_some());
        let options = &self.inner.options;
        let refuse = |key, message: String| {
            Err(RegisterError::ResourceExhausted {
                id: config.id.clone(),
                message,
                key,
            })
        };
        if instances + 1 > self.inner.instance_limit.max {
            // No key of the entry changes the count but `enabled` itself.
            return refuse("", self.inner.instance_limit.refusal(instances));
        }
        if let Some(budget) = options.memory_budget {
            let used: u64 = enabled()
                .map(|e| e.config.sandbox.memory_limit)
                .sum::<u64>()
                - freed.map_or(0, |c| c.sandbox.memory_limit);
            let wanted = config.sandbox.memory_limit;
            if used.saturating_add(wanted) > budget {
                return refuse(
                    "sandbox.memory_limit",
                    format!(
                        "its memory limit of {} does not fit: {} of the node's {} memory budget is taken",
                        sandport_config::format_size(wanted),
                        sandport_config::format_size(used),
                        sandport_config::format_size(budget)
                    ),
                );
            }
        }
        Ok(())
    }

    /// Compiles, instantiates and initialises a connector, not yet visible.
    async fn build_entry(&self, config: ConnectorConfig) -> Result<Arc<Entry>, RegisterError> {
        let id = config.id.clone();
        let prepared = self.prepare(&config).await?;
        let egress =
            Egress::new(&self.inner.http, &config).map_err(|e| RegisterError::Sandbox {
                id: id.clone(),
                message: e.to_string(),
            })?;
        // A start's budget counts from when it may run: loading thousands
        // of connectors at once would otherwise spend it queued behind the
        // others' starts.
        let _start = self.inner.starts.acquire().await;
        let budget = Budget::new(config.health_check.timeout);
        let (instance, info, health) = if config.enabled {
            let mut guest = start_guest(&self.inner, &prepared, &config, &egress, budget)
                .await
                .map_err(|e| match e {
                    StartError::Refused(message) => RegisterError::Initialize {
                        id: id.clone(),
                        message: one_line(&message),
                    },
                    StartError::Sandbox(e) => start_failed(&id, e),
                })?;
            let mut info = guest.info(budget).await.map_err(|e| start_failed(&id, e))?;
            // The operator's `type` is what lists and filters go by.
            info.connector_type = config.connector_type;
            // Its first check is an interval away, or never.
            guest.release_stack();
            let health = if config.health_check.enabled {
                HealthSnapshot::unknown()
            } else {
                HealthSnapshot {
                    message: "scheduled health checks are disabled".into(),
                    ..HealthSnapshot::unknown()
                }
            };
            (Some(guest), info, health)
        } else {
            let info = GuestInfo {
                name: config.name.clone(),
                description: config.description.clone(),
                connector_type: config.connector_type,
                endpoint: config.endpoint(),
            };
            (
                None,
                info,
                HealthSnapshot::unavailable("disabled in config"),
            )
        };
        Ok(Arc::new(Entry {
            config,
            prepared,
            egress,
            info,
            instance: tokio::sync::Mutex::new(instance),
            health: Mutex::new(health),
            schedule: Mutex::new(None),
            quarantine: Mutex::new(Quarantine::default()),
        }))
    }

    fn start_schedule(&self, entry: &Arc<Entry>) {
        if self.inner.options.schedule && entry.config.enabled && entry.config.health_check.enabled
        {
            let handle = spawn_schedule(Arc::downgrade(&self.inner), Arc::downgrade(entry));
            *lock(&entry.schedule) = Some(handle);
        }
    }

    /// Status changes of every connector, as they happen. A receiver that
    /// falls more than 1,024 events behind loses the oldest ones.
    pub fn subscribe(&self) -> broadcast::Receiver<HealthEvent> {
        self.inner.events.subscribe()
    }

    /// Stops checking a connector, calls its `close` and forgets it.
    pub async fn remove(&self, id: &str) -> Result<(), NotFound> {
        let entry = self
            .write()
            .remove(id)
            .ok_or_else(|| NotFound(id.to_string()))?;
        close(&entry).await;
        tracing::info!(connector = %id, "removed");
        Ok(())
    }

    /// Every connector (of `connector_type`, if given), sorted by id.
    pub fn list(&self, connector_type: Option<ConnectorType>) -> Vec<ConnectorInfo> {
        self.read()
            .values()
            .filter(|e| connector_type.is_none_or(|t| e.info.connector_type == t))
            .map(|e| e.info())
            .collect()
    }

    /// A connector's info and config.
    pub fn get(&self, id: &str) -> Result<(ConnectorInfo, ConnectorConfig), NotFound> {
        let entry = self.entry(id)?;
        Ok((entry.info(), entry.config.clone()))
    }

    /// The connector's last health snapshot, without running a check.
    /// Cheaper than [`Runtime::get`]: the cached-health APIs answer
    /// thousands of these a second.
    pub fn health(&self, id: &str) -> Result<HealthSnapshot, NotFound> {
        let entry = self.entry(id)?;
        Ok(entry.health())
    }

    /// Runs a health check now and returns the updated snapshot.
    pub async fn check(&self, id: &str) -> Result<HealthSnapshot, NotFound> {
        let entry = self.entry(id)?;
        run_check(&self.inner, &entry).await;
        Ok(entry.health())
    }

    /// Calls the guest's `id` and `get-config` exports (the conformance kit
    /// checks that they agree with the entry). `None` when it has no live
    /// instance; `Some(Err)` when the call failed.
    pub async fn echo(&self, id: &str) -> Result<Option<Result<Echo, String>>, NotFound> {
        let entry = self.entry(id)?;
        let mut slot = entry.instance.lock().await;
        let Some(guest) = slot.as_mut() else {
            return Ok(None);
        };
        let budget = Budget::new(entry.config.health_check.timeout);
        Ok(Some(guest.echo(budget).await.map_err(|e| e.message)))
    }

    /// Bytes of linear memory the connector's instance holds now, or `None`
    /// when it has no live instance (never started, or dropped after a trap).
    /// Waits for a check in progress to finish.
    pub async fn memory_used(&self, id: &str) -> Result<Option<u64>, NotFound> {
        let entry = self.entry(id)?;
        let slot = entry.instance.lock().await;
        Ok(slot.as_ref().map(Guest::memory_used))
    }

    /// Checks every connector (of `connector_type`, if given) concurrently.
    /// Results are sorted by id.
    pub async fn check_all(
        &self,
        connector_type: Option<ConnectorType>,
    ) -> Vec<(String, HealthSnapshot)> {
        self.check_all_until(connector_type, None).await.results
    }

    /// Like [`Runtime::check_all`], but returns at `deadline` with what has
    /// finished; the checks still running go on and update the cache.
    pub async fn check_all_until(
        &self,
        connector_type: Option<ConnectorType>,
        deadline: Option<Instant>,
    ) -> CheckAll {
        let entries: Vec<Arc<Entry>> = self
            .read()
            .values()
            .filter(|e| connector_type.is_none_or(|t| e.info.connector_type == t))
            .cloned()
            .collect();
        let mut tasks = JoinSet::new();
        for entry in &entries {
            let inner = self.inner.clone();
            let entry = entry.clone();
            tasks.spawn(async move {
                run_check(&inner, &entry).await;
                (entry.config.id.clone(), entry.health())
            });
        }
        let mut done: BTreeMap<String, HealthSnapshot> = BTreeMap::new();
        let collect = async {
            while let Some(joined) = tasks.join_next().await {
                match joined {
                    Ok((id, snapshot)) => {
                        done.insert(id, snapshot);
                    }
                    Err(e) => tracing::error!("a health check task failed: {e}"),
                }
            }
        };
        match deadline {
            Some(deadline) => {
                let _ = tokio::time::timeout_at(deadline, collect).await;
            }
            None => collect.await,
        }
        // Checks past the deadline finish in the background.
        tasks.detach_all();
        let mut result = CheckAll::default();
        for entry in entries {
            let id = entry.config.id.clone();
            match done.remove(&id) {
                Some(snapshot) => result.results.push((id, snapshot)),
                None => {
                    result.results.push((id.clone(), entry.health()));
                    result.unfinished.push(id);
                }
            }
        }
        result
    }

    /// How many components were loaded from the compiled-component cache.
    pub fn cache_hits(&self) -> usize {
        self.inner.sandbox.cache_hits()
    }

    /// How many distinct components the runtime has compiled.
    pub fn compiled_components(&self) -> usize {
        self.inner.sandbox.compiled_count()
    }

    /// Closes every connector. The runtime is empty afterwards.
    pub async fn shutdown(&self) {
        let entries: Vec<Arc<Entry>> = std::mem::take(&mut *self.write()).into_values().collect();
        let mut tasks = JoinSet::new();
        for entry in entries {
            tasks.spawn(async move { close(&entry).await });
        }
        while tasks.join_next().await.is_some() {}
    }

    fn entry(&self, id: &str) -> Result<Arc<Entry>, NotFound> {
        self.read()
            .get(id)
            .cloned()
            .ok_or_else(|| NotFound(id.to_string()))
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Arc<Entry>>> {
        self.inner
            .connectors
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, Arc<Entry>>> {
        self.inner
            .connectors
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    async fn prepare(&self, config: &ConnectorConfig) -> Result<Arc<Prepared>, RegisterError> {
        let fail = |message: String| RegisterError::Component {
            id: config.id.clone(),
            component: config.component.to_string(),
            message,
        };
        let prepared = self.compile(config).await.map_err(fail)?;
        if let Some(pinned) = &config.component_sha256
            && pinned != prepared.digest()
        {
            return Err(fail(format!(
                "its SHA-256 is {}, but component_sha256 pins {pinned}; refusing to load it",
                prepared.digest()
            )));
        }
        Ok(prepared)
    }

    async fn compile(&self, config: &ConnectorConfig) -> Result<Arc<Prepared>, String> {
        match &config.component {
            ComponentRef::Builtin(name) => {
                let builtin = builtin::find(name).ok_or_else(|| {
                    format!(
                        "no such built-in; built-ins: {}",
                        builtin::BUILTINS
                            .iter()
                            .map(|b| b.name)
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                })?;
                self.inner
                    .sandbox
                    .prepare_builtin(builtin.name, builtin.component)
                    .await
            }
            ComponentRef::Path(path) => {
                let stamp = tokio::fs::metadata(path)
                    .await
                    .map(|m| FileStamp::of(&m))
                    .map_err(|e| format!("cannot read the file: {e}"))?;
                let known = lock(&self.inner.by_path)
                    .get(path)
                    .filter(|(seen, _)| *seen == stamp)
                    .and_then(|(_, prepared)| prepared.upgrade());
                if let Some(prepared) = known {
                    return Ok(prepared);
                }
                let bytes = tokio::fs::read(path)
                    .await
                    .map_err(|e| format!("cannot read the file: {e}"))?;
                let what = format!("component {}", path.display());
                let prepared = self.inner.sandbox.prepare(&what, &bytes).await;
                if let Ok(prepared) = &prepared {
                    let mut by_path = lock(&self.inner.by_path);
                    by_path.retain(|_, (_, p)| p.strong_count() > 0);
                    by_path.insert(path.clone(), (stamp, Arc::downgrade(prepared)));
                }
                prepared
            }
        }
        .map_err(|e| e.to_string())
    }
}

enum StartError {
    /// The guest's `initialize` returned an error.
    Refused(String),
    Sandbox(GuestError),
}

fn start_failed(id: &str, error: GuestError) -> RegisterError {
    let (id, message) = (id.to_string(), error.message);
    if error.kind == FailureKind::Deadline {
        RegisterError::StartTimedOut { id, message }
    } else {
        RegisterError::Sandbox { id, message }
    }
}

fn load_problem(id: &str, error: &RegisterError) -> Problem {
    Problem {
        entry: format!("connector \"{id}\""),
        key: error.key().into(),
        message: error.to_string(),
    }
}

async fn start_guest(
    inner: &Inner,
    prepared: &Prepared,
    config: &ConnectorConfig,
    egress: &Egress,
    budget: Budget,
) -> Result<Guest, StartError> {
    let mut guest = Guest::instantiate(&inner.sandbox, prepared, config, egress.clone(), budget)
        .await
        .map_err(StartError::Sandbox)?;
    match guest.initialize(config, budget).await {
        Ok(Ok(())) => Ok(guest),
        Ok(Err(message)) => Err(StartError::Refused(message)),
        Err(e) => Err(StartError::Sandbox(e)),
    }
}

impl Entry {
    /// The last recorded check, as a copy that holds no lock.
    fn health(&self) -> HealthSnapshot {
        lock(&self.health).clone()
    }

    fn info(&self) -> ConnectorInfo {
        ConnectorInfo {
            id: self.config.id.clone(),
            name: self.info.name.clone(),
            connector_type: self.info.connector_type,
            description: self.info.description.clone(),
            endpoint: self.info.endpoint.clone(),
            enabled: self.config.enabled,
            mode: self.config.mode,
            metadata: self.config.metadata.clone(),
            tags: self.config.tags.clone(),
            component_digest: self.prepared.digest().to_string(),
            health: self.health(),
        }
    }
}

async fn close(entry: &Entry) {
    if let Some(handle) = lock(&entry.schedule).take() {
        handle.abort();
    }
    let guest = entry.instance.lock().await.take();
    if let Some(guest) = guest
        && let Err(e) = guest.close(Budget::new(CLOSE_TIMEOUT)).await
    {
        tracing::warn!(connector = %entry.config.id, "close failed: {e}");
    }
}

/// Runs one check of `entry` and records it in the cache. Returns nothing:
/// the scheduler, which runs most checks, reads no snapshot.
async fn run_check(inner: &Inner, entry: &Entry) {
    if !entry.config.enabled || lock(&entry.quarantine).blocks(Instant::now()) {
        return;
    }
    let mut outcome = match inner.permits.acquire().await {
        Ok(_permit) => check_once(inner, entry).await,
        Err(_) => return,
    };
    let quarantined = lock(&entry.quarantine).observe(outcome.failure.as_ref(), Instant::now());
    if let Some((backoff, overruns)) = quarantined {
        outcome.failure = Some(FailureKind::Quarantined);
        outcome.message = format!(
            "{}; quarantined: not called for {} after {overruns} deadline overruns in a row",
            outcome.message,
            crate::health::format_latency(backoff)
        );
    }
    let mut health = lock(&entry.health);
    // Log and announce changes, not every check: thousands of connectors
    // check often.
    if health.status != outcome.status || health.failure != outcome.failure {
        tracing::info!(
            connector = %entry.config.id,
            status = %outcome.status,
            failure = outcome.failure.as_ref().map(FailureKind::as_str),
            "{}",
            outcome.message
        );
        // No receivers is fine.
        let _ = inner.events.send(HealthEvent {
            id: entry.config.id.clone(),
            connector_type: entry.info.connector_type,
            status: outcome.status,
            previous: health.status,
            message: outcome.message.clone(),
            failure: outcome.failure.clone(),
            checked_at: outcome.checked_at,
        });
    }
    health.record(outcome);
}

async fn check_once(inner: &Inner, entry: &Entry) -> CheckOutcome {
    let started = Instant::now();
    let budget = Budget::new(entry.config.health_check.timeout);
    let fail = |kind: FailureKind, message: String| CheckOutcome {
        status: HealthStatus::Unhealthy,
        message,
        details: Vec::new(),
        failure: Some(kind),
        latency: started.elapsed(),
        checked_at: SystemTime::now(),
    };
    // Uncontended (the usual case) without arming a timer.
    let slot = match entry.instance.try_lock() {
        Ok(slot) => Ok(slot),
        Err(_) => tokio::time::timeout_at(budget.deadline, entry.instance.lock()).await,
    };
    let Ok(mut slot) = slot else {
        return fail(
            FailureKind::Deadline,
            format!(
                "{} waiting for the previous check to finish",
                budget.timed_out_message()
            ),
        );
    };
    if !slot.as_ref().is_some_and(Guest::is_usable) {
        // The last call trapped or timed out: start a fresh instance.
        *slot = None;
        // Boxed: a restart is rare, and its future (instantiating and
        // initialising, about 6 KB) held inline would make every check's
        // future that large, and every scheduled connector's task with it.
        let start = start_guest(inner, &entry.prepared, &entry.config, &entry.egress, budget);
        match Box::pin(start).await {
            Ok(guest) => *slot = Some(guest),
            Err(StartError::Refused(message)) => {
                return fail(
                    FailureKind::GuestError,
                    format!("initialize failed: {}", one_line(&message)),
                );
            }
            Err(StartError::Sandbox(e)) => return fail(e.kind, e.message),
        }
    }
    let Some(guest) = slot.as_mut() else {
        return fail(FailureKind::Instantiate, "no instance".into());
    };
    match guest.health_check(budget).await {
        Ok(Ok(report)) => CheckOutcome {
            failure: (report.status != crate::sandbox::WitHealthStatus::Healthy
                && report.status != crate::sandbox::WitHealthStatus::Degraded
                && guest.was_denied())
            .then_some(FailureKind::EgressDenied),
            status: crate::sandbox::status_from_wit(report.status),
            message: one_line(report.message),
            details: report
                .details
                .into_iter()
                .take(MAX_DETAILS)
                .map(|(k, v)| (one_line(k), one_line(v)))
                .collect(),
            latency: started.elapsed(),
            checked_at: SystemTime::now(),
        },
        Ok(Err(message)) => fail(FailureKind::GuestError, one_line(message)),
        Err(e) => {
            *slot = None;
            fail(e.kind, e.message)
        }
    }
}

/// Checks `entry` every interval until it is removed. The first check comes
/// after a delay derived from the id, so that many connectors loaded at once
/// do not all fire in the same instant.
fn spawn_schedule(inner: Weak<Inner>, entry: Weak<Entry>) -> AbortHandle {
    let Some(first) = entry.upgrade() else {
        return tokio::spawn(async {}).abort_handle();
    };
    let interval = first.config.health_check.interval;
    let spread = interval.min(Duration::from_secs(2));
    let offset = spread.mul_f64(fraction_of(&first.config.id));
    drop(first);
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval_at(Instant::now() + offset, interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            let (Some(inner), Some(entry)) = (inner.upgrade(), entry.upgrade()) else {
                break;
            };
            run_check(&inner, &entry).await;
        }
    })
    .abort_handle()
}

/// A stable number in [0, 1) from a string (FNV-1a).
fn fraction_of(text: &str) -> f64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    (hash >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn future_size<'a, A: 'a, B: 'a, F: Future>(_: impl FnOnce(&'a A, &'a B) -> F) -> usize {
        std::mem::size_of::<F>()
    }

    #[test]
    fn a_checks_future_leaves_the_rare_restart_boxed() {
        // Every scheduled connector's task holds one, and check_all moves
        // one per connector: 8.4 KB with the restart inline, 2.8 KB without.
        let size = future_size(run_check);
        assert!(size <= 4096, "run_check's future takes {size} bytes");
    }

    #[test]
    fn the_kernels_mapping_limit_lowers_the_instance_limit_and_says_how_to_raise_it() {
        let configured = InstanceLimit::new(20_000, None);
        assert_eq!(configured.max, 20_000);
        assert_eq!(
            configured.refusal(20_000),
            "the node runs 20000 of at most 20000 connector instances"
        );
        // A raised kernel limit leaves the configured one in charge.
        assert_eq!(InstanceLimit::new(20_000, Some(262_144)), configured);

        let mapped = InstanceLimit::new(20_000, Some(65_530));
        assert_eq!(mapped.max, mappings::instances_within(65_530));
        assert!(mapped.max >= 10_000, "{mapped:?}");
        let message = mapped.refusal(mapped.max);
        assert!(message.contains("vm.max_map_count = 65530"), "{message}");
        assert!(message.contains("sysctl -w vm.max_map_count="), "{message}");
    }
}
