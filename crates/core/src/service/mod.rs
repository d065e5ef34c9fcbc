//! The Connectors Service in-process: the [`Runtime`] plus where its
//! changes are kept: the durable [`StateFile`], or in cluster mode the
//! cluster's [`ChangeStore`]. Every API (gRPC, REST, the in-process client)
//! goes through here, so they all validate, persist and answer alike.
//!
//! Order of work: a register or update first succeeds in the runtime (the
//! component initialised), then is persisted; if persisting fails it is
//! undone, so the answer never claims what a restart would lose. A removal is
//! persisted first, then carried out (`changes.rs`, which also applies the
//! changes other nodes of a cluster made).

mod alerts;
mod changes;
mod forward;
mod recorded;
mod reload;
mod status;
mod status_metrics;

pub use alerts::{ALERTS_FILE, AlertTestError};
pub use changes::{Change, ChangeError, ChangeFuture, ChangeStore, FileChanges, FileChangesFuture};
pub use forward::{
    ForwardError, ForwardFuture, Forwarded, Forwarder, PeerRound, REPEAT_WARNING, ReadsFuture,
    RoundsFuture,
};
pub use recorded::{Recorded, RecordedAsk, latency_since};
pub use reload::{ReloadCollector, ReloadReport};
pub use status::{
    DEFAULT_POINTS, Found, HISTORY_FILE, HistoryAnswer, HistoryQueryError, HistoryRange,
    HistoryUnavailable, MAX_POINTS, history_feed, to_history,
};
pub use status_metrics::StatusCollector;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{broadcast, watch};

use crate::registry::{ConnectorInfo, HealthEvent, RegisterError, Runtime, RuntimeOptions};
use crate::state::{StateError, StateFile};
use crate::uploads::{ComponentStore, StoredComponent, UploadError};
use crate::{HealthSnapshot, RuntimeError};
use sandport_config::{
    self as config, ComponentRef, ConfigError, ConnectorConfig, ConnectorType, Problem,
};

/// Where the service takes its config and keeps its state.
#[derive(Clone, Default)]
pub struct ServiceOptions {
    /// The operator's YAML; `None` is the config built into the binary.
    pub config: Option<PathBuf>,
    /// Where API-made changes are kept; `None` is `data/` beside the config
    /// file (or in the working directory for the built-in config).
    pub data_dir: Option<PathBuf>,
    /// Keep no state: changes last until the process ends.
    pub ephemeral: bool,
    /// Record every check in the history and send alerts: the serving
    /// process does. Otherwise (a command run beside it) the history is only
    /// read, and alerts are only tested, through a scratch outbox, so that
    /// the command neither writes the service's history nor sends or takes
    /// over its pending alerts.
    pub record: bool,
    /// The sum of the uploaded components' sizes the service keeps; `None`
    /// is [`DEFAULT_UPLOADS_CAP`].
    pub uploads_cap: Option<u64>,
    /// `components_dir` `None` is `components/` beside the config file (or
    /// in the working directory for the built-in config); `uploads` `None`
    /// is `components/` in the data directory (a temporary one when
    /// ephemeral).
    pub runtime: RuntimeOptions,
    /// Cluster mode: API changes are kept here instead of in a state file,
    /// and the config file's entries only seed the cluster's registry
    /// ([`Service::seed_entries`]); the cluster applies what it lists
    /// ([`Service::apply_put`]). Uploads and config reloads are refused.
    pub changes: Option<Arc<dyn ChangeStore>>,
    /// Cluster mode: a live check of a connector another node owns is
    /// asked of that node (`forward.rs`); `None` checks every connector
    /// here.
    pub forwarder: Option<Arc<dyn Forwarder>>,
}

/// Uploads received at the same time; more are refused until one ends, so
/// that uploads cannot hold more than this many components in memory.
pub const MAX_UPLOADS_AT_ONCE: usize = 2;

/// The default [`ServiceOptions::uploads_cap`].
pub const DEFAULT_UPLOADS_CAP: u64 = 1 << 30;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error(transparent)]
    Uploads(#[from] UploadError),
    #[error("cannot make a temporary directory for the history or the alerts: {0}")]
    Scratch(String),
}

/// Why an operation was refused. Each maps to one gRPC code and HTTP status.
#[derive(Debug, thiserror::Error)]
// Exhaustive on purpose: each API maps every case to its own code.
pub enum ServiceError {
    #[error("no connector with id `{0}`")]
    NotFound(String),
    #[error("a connector with id `{0}` is already registered")]
    AlreadyExists(String),
    #[error("invalid connector config: {}", join(.0))]
    Invalid(Vec<Problem>),
    /// The config parsed, but the component could not be loaded or refused it.
    #[error("{0}")]
    Rejected(RegisterError),
    #[error("{0}")]
    Conflict(String),
    #[error("the change could not be saved, so it was not made: {0}")]
    State(#[from] StateError),
    #[error("the service is shutting down")]
    ShuttingDown,
    #[error("{0}")]
    ResourceExhausted(String),
    #[error(transparent)]
    Upload(#[from] UploadError),
    /// What keeps the changes (the cluster's store) cannot be reached now;
    /// nothing was changed, and the caller may retry.
    #[error("{0}")]
    Unavailable(String),
}

fn join(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

impl From<RegisterError> for ServiceError {
    fn from(error: RegisterError) -> Self {
        match error {
            RegisterError::AlreadyExists(id) => ServiceError::AlreadyExists(id),
            RegisterError::NotFound(id) => ServiceError::NotFound(id),
            RegisterError::Conflict(_) => ServiceError::Conflict(error.to_string()),
            RegisterError::ResourceExhausted { .. } => {
                ServiceError::ResourceExhausted(error.to_string())
            }
            other => ServiceError::Rejected(other),
        }
    }
}

pub struct Service {
    runtime: Runtime,
    state: Option<StateFile>,
    /// Cluster mode: where changes are kept instead of `state`.
    changes: Option<Arc<dyn ChangeStore>>,
    /// Cluster mode: asks a connector's owner for its live checks.
    forwarder: Option<Arc<dyn Forwarder>>,
    /// Which owners failed to answer a forwarded check, for the log.
    fallbacks: forward::FallbackLog,
    /// Which members failed to answer a history read, for the log.
    read_fallbacks: forward::FallbackLog,
    /// Cluster mode: the config file's entries, for the cluster to seed.
    seed: Vec<ConnectorConfig>,
    /// Held by each change of one id (see `changes.rs`).
    id_locks: changes::IdLocks,
    /// The operator's file, reloaded on request; `None`: the built-in config.
    config_path: Option<PathBuf>,
    /// Which connectors the operator's file decides.
    yaml: Mutex<reload::YamlManaged>,
    /// Held by the reload under way.
    reloading: tokio::sync::Mutex<()>,
    reloads: reload::ReloadLog,
    /// Held while a change could race the deletion of an uploaded
    /// component: a registration that names one, and the deletion itself.
    uploads_in_use: tokio::sync::Mutex<()>,
    /// Uploads being received: each holds up to a component in memory.
    uploads_at_once: Arc<tokio::sync::Semaphore>,
    shutting_down: AtomicBool,
    shutdown: watch::Sender<bool>,
    /// The tokio runtime the connectors live on. The APIs run on a thread
    /// of their own (see `server`); what they ask of the connectors runs
    /// here, so that answers never queue behind the scheduler's checks.
    work: tokio::runtime::Handle,
    /// The history and the alerts.
    stores: status::Stores,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service").finish_non_exhaustive()
    }
}

impl Service {
    /// Loads the config and the saved state and starts every connector.
    /// Returns the problems of entries that could not be started.
    pub async fn start(options: ServiceOptions) -> Result<(Service, Vec<Problem>), StartError> {
        let builtins = sandport_builtins::catalog();
        let (mut loaded, base_dir) = match &options.config {
            Some(path) => {
                let base = path.parent().unwrap_or(Path::new(".")).to_path_buf();
                (config::load_file(path, builtins)?, base)
            }
            None => (
                config::parse(
                    config::DEFAULT_CONFIG,
                    "the built-in config",
                    Path::new("."),
                    builtins,
                )?,
                PathBuf::from("."),
            ),
        };
        let yaml_ids = loaded.connectors.iter().map(|c| c.id.clone()).collect();
        let mut api_ids = std::collections::HashSet::new();
        let mut runtime_options = options.runtime;
        runtime_options
            .components_dir
            .get_or_insert_with(|| base_dir.join("components"));
        let uploads_cap = options.uploads_cap.unwrap_or(DEFAULT_UPLOADS_CAP);
        let max_size = runtime_options.max_component_size;
        let mut seed = Vec::new();
        let state = if options.changes.is_some() {
            // The cluster's registry decides which connectors run, and
            // uploads live on no node in particular.
            seed = std::mem::take(&mut loaded.connectors);
            runtime_options.uploads = None;
            None
        } else if options.ephemeral {
            if runtime_options.uploads.is_none() {
                let store = ComponentStore::temporary(max_size, uploads_cap)?;
                runtime_options.uploads = Some(Arc::new(store));
            }
            None
        } else {
            let dir = options
                .data_dir
                .clone()
                .unwrap_or_else(|| base_dir.join("data"));
            let state = StateFile::open(&dir)?;
            if runtime_options.uploads.is_none() {
                let store = ComponentStore::open(&dir.join("components"), max_size, uploads_cap)?;
                runtime_options.uploads = Some(Arc::new(store));
            }
            state.apply(&mut loaded, builtins).await;
            api_ids = state.api_ids().await;
            Some(state)
        };
        let data_dir = match (&state, &options.changes) {
            (Some(state), _) => Some(state.dir().to_path_buf()),
            (None, Some(_)) if !options.ephemeral => Some(
                options
                    .data_dir
                    .clone()
                    .unwrap_or_else(|| base_dir.join("data")),
            ),
            (None, _) => None,
        };
        let stores = status::Stores::open(
            &loaded,
            data_dir.as_deref(),
            options.record,
            &mut runtime_options.observers,
        )?;
        let runtime = Runtime::new(runtime_options)?;
        let problems = runtime.load(loaded).await;
        let yaml = reload::YamlManaged::new(yaml_ids, api_ids, |id| runtime.get(id).is_ok());
        let service = Service {
            runtime,
            state,
            changes: options.changes,
            forwarder: options.forwarder,
            fallbacks: forward::FallbackLog::default(),
            read_fallbacks: forward::FallbackLog::default(),
            seed,
            id_locks: changes::IdLocks::default(),
            config_path: options.config.clone(),
            yaml: Mutex::new(yaml),
            reloading: tokio::sync::Mutex::new(()),
            reloads: reload::ReloadLog::default(),
            uploads_in_use: tokio::sync::Mutex::new(()),
            uploads_at_once: Arc::new(tokio::sync::Semaphore::new(MAX_UPLOADS_AT_ONCE)),
            shutting_down: AtomicBool::new(false),
            shutdown: watch::channel(false).0,
            work: tokio::runtime::Handle::current(),
            stores,
        };
        Ok((service, problems))
    }

    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// Where the state file lives, if the service keeps state.
    pub fn state_path(&self) -> Option<&Path> {
        self.state.as_ref().map(StateFile::path)
    }

    /// Validates one entry in the YAML shape (from JSON, YAML or gRPC).
    pub fn parse_entry(
        &self,
        value: &serde_norway::Value,
    ) -> Result<ConnectorConfig, ServiceError> {
        config::parse_api_entry(value, sandport_builtins::catalog()).map_err(ServiceError::Invalid)
    }

    fn check_running(&self) -> Result<(), ServiceError> {
        if self.shutting_down.load(Ordering::SeqCst) {
            Err(ServiceError::ShuttingDown)
        } else {
            Ok(())
        }
    }

    pub async fn register(
        self: &Arc<Self>,
        config: ConnectorConfig,
    ) -> Result<ConnectorInfo, ServiceError> {
        self.on_work(|this| async move { this.register_here(config).await })
            .await
    }

    async fn register_here(&self, config: ConnectorConfig) -> Result<ConnectorInfo, ServiceError> {
        self.check_running()?;
        let _uploads = self.hold_upload(&config).await;
        let id = config.id.clone();
        let info = self.register_kept(config).await?;
        self.lock_yaml().claimed_by_api(&id);
        Ok(info)
    }

    /// Replaces a connector. Secrets sent back as `<redacted>` keep their
    /// current values.
    pub async fn update(
        self: &Arc<Self>,
        config: ConnectorConfig,
    ) -> Result<ConnectorInfo, ServiceError> {
        self.on_work(|this| async move { this.update_here(config).await })
            .await
    }

    async fn update_here(&self, config: ConnectorConfig) -> Result<ConnectorInfo, ServiceError> {
        self.check_running()?;
        let _uploads = self.hold_upload(&config).await;
        let id = config.id.clone();
        let info = self.update_kept(config).await?;
        self.lock_yaml().claimed_by_api(&id);
        Ok(info)
    }

    pub async fn remove(self: &Arc<Self>, id: &str) -> Result<(), ServiceError> {
        let id = id.to_string();
        self.on_work(|this| async move { this.remove_here(&id).await })
            .await
    }

    async fn remove_here(&self, id: &str) -> Result<(), ServiceError> {
        self.check_running()?;
        self.remove_kept(id).await?;
        // A connector removed while failing is not reminded of forever.
        if let Some(alerts) = self.alerts() {
            alerts.forget(id);
        }
        Ok(())
    }

    pub fn list(
        &self,
        connector_type: Option<ConnectorType>,
        enabled_only: bool,
    ) -> Vec<ConnectorInfo> {
        let mut list = self.runtime.list(connector_type);
        if enabled_only {
            list.retain(|c| c.enabled);
        }
        list
    }

    /// Info and config; the caller redacts secrets before showing them.
    pub fn get(&self, id: &str) -> Result<(ConnectorInfo, ConnectorConfig), ServiceError> {
        self.runtime
            .get(id)
            .map_err(|e| ServiceError::NotFound(e.0))
    }

    /// The last health snapshot, without running a check.
    pub fn health(&self, id: &str) -> Result<HealthSnapshot, ServiceError> {
        self.runtime
            .health(id)
            .map_err(|e| ServiceError::NotFound(e.0))
    }

    /// Keeps the uploaded component `config` names from being deleted until
    /// the guard drops.
    async fn hold_upload(
        &self,
        config: &ConnectorConfig,
    ) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match config.component {
            ComponentRef::Uploaded(_) => Some(self.uploads_in_use.lock().await),
            _ => None,
        }
    }

    fn uploads(&self) -> Result<Arc<ComponentStore>, ServiceError> {
        if self.changes.is_some() {
            return Err(ServiceError::Conflict(
                changes::NO_UPLOADS_IN_CLUSTER.into(),
            ));
        }
        self.runtime.uploads().ok_or_else(|| {
            ServiceError::Conflict("this service takes no uploaded components".into())
        })
    }

    /// A slot for receiving one upload, held while its bytes arrive; the
    /// largest component the service accepts comes with it.
    pub fn upload_slot(&self) -> Result<(tokio::sync::OwnedSemaphorePermit, u64), ServiceError> {
        self.check_running()?;
        let store = self.uploads()?;
        let permit = self.uploads_at_once.clone().try_acquire_owned().map_err(|_| {
            ServiceError::ResourceExhausted(format!(
                "{MAX_UPLOADS_AT_ONCE} uploads are being received already; try again when one has finished"
            ))
        })?;
        Ok((permit, store.max_size()))
    }

    /// Stores an uploaded component; connectors name it by the digest
    /// returned (`sha256:<digest>`).
    pub async fn upload_component(
        self: &Arc<Self>,
        bytes: Vec<u8>,
    ) -> Result<StoredComponent, ServiceError> {
        self.check_running()?;
        let store = self.uploads()?;
        let stored = tokio::task::spawn_blocking(move || store.put(&bytes))
            .await
            .map_err(|_| ServiceError::ShuttingDown)??;
        Ok(stored)
    }

    /// The uploaded components, each with the ids of the connectors that
    /// name it.
    pub async fn list_components(
        &self,
    ) -> Result<Vec<(StoredComponent, Vec<String>)>, ServiceError> {
        let store = self.uploads()?;
        let stored = tokio::task::spawn_blocking(move || store.list())
            .await
            .map_err(|_| ServiceError::ShuttingDown)??;
        Ok(stored
            .into_iter()
            .map(|component| {
                let users = self.users_of(&component.digest);
                (component, users)
            })
            .collect())
    }

    /// Deletes an uploaded component no connector names.
    pub async fn remove_component(&self, digest: &str) -> Result<(), ServiceError> {
        self.check_running()?;
        let digest = config::parse_digest(digest).map_err(|message| {
            ServiceError::Invalid(vec![Problem {
                entry: "component".into(),
                key: "digest".into(),
                message,
            }])
        })?;
        let store = self.uploads()?;
        let _held = self.uploads_in_use.lock().await;
        let ids = self.users_of(&digest);
        if !ids.is_empty() {
            return Err(UploadError::InUse { digest, ids }.into());
        }
        tokio::task::spawn_blocking(move || store.remove(&digest))
            .await
            .map_err(|_| ServiceError::ShuttingDown)??;
        Ok(())
    }

    fn users_of(&self, digest: &str) -> Vec<String> {
        self.runtime
            .list(None)
            .into_iter()
            .filter(|info| {
                self.runtime.get(&info.id).is_ok_and(|(_, config)| {
                    matches!(&config.component, ComponentRef::Uploaded(d) if d == digest)
                })
            })
            .map(|info| info.id)
            .collect()
    }

    /// Runs `job` on the connectors' runtime when called from the API
    /// thread, else right here (the scheduler, the in-process client and
    /// the tests already run there). A job cancelled because that runtime
    /// is going away answers `ShuttingDown`.
    async fn on_work<T, F>(
        self: &Arc<Self>,
        job: impl FnOnce(Arc<Self>) -> F,
    ) -> Result<T, ServiceError>
    where
        F: Future<Output = Result<T, ServiceError>> + Send + 'static,
        T: Send + 'static,
    {
        let job = job(self.clone());
        if !on_api_thread() {
            return job.await;
        }
        // The call's span goes along, so that its checks are its children.
        let job = tracing::Instrument::instrument(job, tracing::Span::current());
        match self.work.spawn(job).await {
            Ok(result) => result,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => Err(ServiceError::ShuttingDown),
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<HealthEvent> {
        self.runtime.subscribe()
    }

    /// Resolves once shutdown has begun; long-lived streams end with it.
    pub fn shutdown_started(&self) -> impl Future<Output = ()> + Send + use<> {
        let mut rx = self.shutdown.subscribe();
        async move {
            let _ = rx.wait_for(|started| *started).await;
        }
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }

    /// Refuses new changes and ends watch streams.
    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
        self.shutdown.send_replace(true);
    }

    /// Closes every connector. State needs no flush: every change was
    /// written before it was acknowledged.
    pub async fn shutdown(&self) {
        self.begin_shutdown();
        self.runtime.shutdown().await;
        self.stores.close().await;
    }
}

thread_local! {
    static API_THREAD: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Marks the calling thread as the APIs' own: calls into a [`Service`]
/// made on it run their work on the connectors' runtime, so that an API
/// answer never queues behind the scheduler's checks (and the reverse).
pub fn mark_api_thread() {
    API_THREAD.with(|api| api.set(true));
}

/// Whether the current thread is the APIs' own (see [`mark_api_thread`]).
pub fn on_api_thread() -> bool {
    API_THREAD.with(std::cell::Cell::get)
}
