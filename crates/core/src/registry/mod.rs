//! The registry of running connectors: one sandboxed instance per enabled
//! config entry, its cached health, and its place in the health schedule.
//!
//! [`Runtime`] is the whole public surface the service uses: register,
//! update, remove, list, get, check one, check all, shut down. Its methods
//! are spread over the files named for their job:
//! - `types`: the options, errors and answers callers see;
//! - `admit`: the node's instance and memory budget;
//! - `components`: compiling components once (built-ins, files by identity);
//! - `start`: instantiating and initialising a connector;
//! - `check`: one check and every check, recorded in the health cache;
//! - `schedule`: each connector's own timer;
//! - `ownership`: which connectors this node checks in cluster mode, and
//!   the status other nodes published for the rest.
mod admit;
mod check;
mod components;
mod metrics;
mod ownership;
mod schedule;
mod start;
mod types;

pub use ownership::{Ownership, RemoteHealth};
pub use types::{
    CheckAll, ConnectorInfo, DEFAULT_MAX_COMPONENT_SIZE, HealthEvent, NotFound, RegisterError,
    RuntimeError, RuntimeOptions, default_cache_dir,
};

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

use tokio::sync::{Semaphore, broadcast};
use tokio::task::JoinSet;

use admit::InstanceLimit;
use check::run_check;
use components::FileStamp;

use crate::budget::Budget;
use crate::egress::{Egress, HttpClient};
use crate::health::HealthSnapshot;
use crate::metrics::{ConnectorCounters, NodeCounters, RuntimeCollector};
use crate::quarantine::Quarantine;
pub use crate::sandbox::{CompileLimits, Echo};
use crate::sandbox::{Guest, GuestInfo, Prepared, Sandbox, mappings};
use sandport_config::{ConnectorConfig, ConnectorType, Loaded, Problem};

/// How long `close` may take when a connector is removed or on shutdown.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// Connectors started at once. Starts are mostly CPU work, so more would
/// only queue; enough that starts waiting on the network overlap.
const MAX_CONCURRENT_STARTS: usize = 128;

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
    /// Which connectors this node checks; replaced under `connectors`'
    /// write lock, so that whoever holds that lock sees one answer.
    ownership: RwLock<ownership::Ownership>,
    /// How many times `ownership` was replaced.
    ownership_changes: std::sync::atomic::AtomicU64,
    /// Components given by path, by file identity: registering 10,000
    /// entries of one file reads and hashes it once, not 10,000 times.
    by_path: Mutex<std::collections::HashMap<std::path::PathBuf, (FileStamp, Weak<Prepared>)>>,
    node: NodeCounters,
    /// Only while checks run on schedule (see `Trimmer`).
    _trimmer: Option<crate::allocator::Trimmer>,
}

/// How often a scheduling runtime gives malloc's free pages back.
const TRIM_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

struct Entry {
    config: ConnectorConfig,
    /// The id again, shared with the observers' queues.
    key: Arc<str>,
    prepared: Arc<Prepared>,
    /// Built once, so its connection pool outlives re-created instances.
    egress: Egress,
    info: GuestInfo,
    instance: tokio::sync::Mutex<Option<Guest>>,
    health: Mutex<HealthSnapshot>,
    /// Whether it runs here, and its schedule's task.
    duty: Mutex<schedule::Duty>,
    quarantine: Mutex<Quarantine>,
    counters: ConnectorCounters,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Every critical section leaves the value consistent.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Runtime {
    pub fn new(options: RuntimeOptions) -> Result<Self, RuntimeError> {
        let fd_limit = crate::limits::current_fd_limit();
        let guest_sockets = options
            .guest_sockets
            .unwrap_or_else(|| crate::limits::guest_socket_budget(fd_limit));
        tracing::info!(
            guest_sockets,
            fd_limit = %fd_limit.map_or_else(|| "unlimited".to_string(), |n| n.to_string()),
            "TCP sockets all connectors together may hold"
        );
        let sandbox = Sandbox::new(options.cache_dir.clone(), options.compile, guest_sockets)?;
        let http = HttpClient::new().map_err(RuntimeError::Http)?;
        let instance_limit = InstanceLimit::new(options.max_instances, mappings::max_map_count());
        let trimmer = options
            .schedule
            .then(|| crate::allocator::Trimmer::start(TRIM_EVERY))
            .flatten();
        let ownership = RwLock::new(options.ownership.clone());
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
                ownership,
                ownership_changes: std::sync::atomic::AtomicU64::new(0),
                by_path: Mutex::new(std::collections::HashMap::new()),
                node: NodeCounters::default(),
                _trimmer: trimmer,
            }),
        })
    }

    /// The most enabled connectors this node runs: the configured limit, or
    /// fewer where the kernel's limit on memory mappings allows fewer.
    pub fn max_instances(&self) -> usize {
        self.inner.instance_limit.max
    }

    /// The TCP sockets all connectors together may hold, and hold now.
    pub fn guest_sockets(&self) -> (usize, usize) {
        let sockets = self.inner.sandbox.sockets();
        (sockets.budget(), sockets.held())
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
    /// schedules its health checks. One this node does not own is started
    /// all the same (to validate its config and learn its info), then its
    /// instance is dropped: only the host entry stays, and no schedule.
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
                    if self.owns(&id) {
                        entry.set_runs_here();
                    }
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
        ownership::release_instance(&entry).await;
        tracing::info!(connector = %id, component = %entry.config.component, "registered");
        Ok(entry.info())
    }

    /// Replaces a registered connector. The old instance keeps serving until
    /// the new one has initialised; if that fails, the old one stays. As
    /// with [`Runtime::register`], one this node does not own keeps no
    /// instance, old or new.
    pub async fn update(&self, config: ConnectorConfig) -> Result<ConnectorInfo, RegisterError> {
        let old = self
            .entry(&config.id)
            .map_err(|e| RegisterError::NotFound(e.0))?;
        self.admit(&self.read(), &config, Some(&old.config.id))?;
        let entry = self.build_entry(config).await?;
        let id = entry.config.id.clone();
        let swapped = {
            let mut connectors = self.write();
            match connectors.get(&id) {
                Some(current) if Arc::ptr_eq(current, &old) => {
                    if self.owns(&id) {
                        entry.set_runs_here();
                    }
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
        ownership::release_instance(&entry).await;
        tracing::info!(connector = %id, component = %entry.config.component, "updated");
        Ok(entry.info())
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

    /// The ids of every connector (of `connector_type`, if given), sorted.
    pub fn ids(&self, connector_type: Option<ConnectorType>) -> Vec<String> {
        self.read()
            .values()
            .filter(|e| connector_type.is_none_or(|t| e.info.connector_type == t))
            .map(|e| e.config.id.clone())
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

    /// Runs a health check now and returns the updated snapshot. A
    /// connector that does not run here is instantiated for the check and
    /// dropped after it.
    pub async fn check(&self, id: &str) -> Result<HealthSnapshot, NotFound> {
        let entry = self.entry(id)?;
        run_check(&self.inner, &entry, None).await;
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

    /// Where the components uploaded through the API are kept, if anywhere.
    pub fn uploads(&self) -> Option<Arc<crate::uploads::ComponentStore>> {
        self.inner.options.uploads.clone()
    }

    /// How many components were loaded from the compiled-component cache.
    pub fn cache_hits(&self) -> usize {
        self.inner.sandbox.cache_hits()
    }

    /// The runtime's metrics, for a `prometheus_client` registry: read at
    /// each scrape, from the connectors registered then.
    pub fn collector(&self) -> RuntimeCollector {
        let inner: Arc<dyn crate::metrics::Source> = self.inner.clone();
        RuntimeCollector {
            source: Arc::downgrade(&inner),
        }
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
}

fn load_problem(id: &str, error: &RegisterError) -> Problem {
    Problem {
        entry: format!("connector \"{id}\""),
        key: error.key().into(),
        message: error.to_string(),
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

/// Stops a connector's schedule and closes its instance: it no longer runs
/// here, so a check in flight drops any instance it starts.
async fn close(entry: &Entry) {
    entry.stop_schedule();
    let guest = entry.instance.lock().await.take();
    if let Some(guest) = guest {
        close_guest(&entry.config.id, guest).await;
    }
}

/// Calls a guest's `close`, within [`CLOSE_TIMEOUT`].
async fn close_guest(id: &str, guest: Guest) {
    if let Err(e) = guest.close(Budget::new(CLOSE_TIMEOUT)).await {
        tracing::warn!(connector = %id, "close failed: {e}");
    }
}
