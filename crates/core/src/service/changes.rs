//! Where API changes are kept: the state file on a single node, or, in
//! cluster mode, a [`ChangeStore`] the server plugs in (the registry every
//! node shares). Either way a register or update is kept only after the
//! runtime took it, and undone when keeping it fails; a removal is kept
//! first, then carried out.
//!
//! Changes another node made reach this one through the cluster, not the
//! API: [`Service::apply_put`] and [`Service::apply_remove`] apply them to
//! this node's runtime only.
//!
//! Every change of one id, the API's and the cluster's, holds that id's
//! lock from the runtime's change to the store's answer (and the undo), so
//! that a change seen through the cluster cannot land between an API
//! change and its undo and be undone with it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use sandport_config::{self as config, ConnectorConfig};

use super::{Service, ServiceError, ServiceOptions};
use crate::registry::ConnectorInfo;

/// What a [`ChangeStore`] returns.
pub type ChangeFuture<'a> = Pin<Box<dyn Future<Output = Result<(), ChangeError>> + Send + 'a>>;

/// What [`ChangeStore::reload`] returns.
pub type FileChangesFuture<'a> =
    Pin<Box<dyn Future<Output = Result<FileChanges, ChangeError>> + Send + 'a>>;

/// What a reload of the config file changed in the cluster (ids sorted).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileChanges {
    pub created: Vec<String>,
    pub updated: Vec<String>,
    pub removed: Vec<String>,
    /// The file's entries the cluster already held as the file says.
    pub unchanged: usize,
    /// Ids of the file that an API call registered or updated in the
    /// cluster: the API owns them, and they were left alone.
    pub skipped: Vec<String>,
    /// Entries that could not be written, each id with why.
    pub failed: Vec<(String, String)>,
}

/// Keeps the API's changes in cluster mode, in place of the state file.
pub trait ChangeStore: Send + Sync + 'static {
    /// Makes the cluster's entries that came from the config file equal
    /// to `configs` (the reloaded file's entries, already validated):
    /// creates the new ones, replaces the changed ones, removes the ones no
    /// longer in the file, and leaves the API's entries alone.
    /// [`ChangeError::Unavailable`]: nothing could be read, so nothing
    /// changed.
    fn reload<'a>(&'a self, configs: &'a [ConnectorConfig]) -> FileChangesFuture<'a>;
    /// Persists a registered (`Change::Register`: must not exist yet) or
    /// updated connector.
    fn put<'a>(&'a self, config: &'a ConnectorConfig, change: Change) -> ChangeFuture<'a>;
    /// Persists the removal of a connector.
    fn remove<'a>(&'a self, id: &'a str) -> ChangeFuture<'a>;
}

/// Which change a [`ChangeStore::put`] keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Register,
    Update,
}

/// Why a [`ChangeStore`] did not keep a change.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    #[error("the cluster's store is unavailable, so the change was not made: {0}")]
    Unavailable(String),
    #[error("a connector with id `{0}` is already registered")]
    AlreadyExists(String),
    #[error("no connector with id `{0}`")]
    NotFound(String),
    /// E.g. changed concurrently on another node: the caller may retry.
    #[error("{0}")]
    Conflict(String),
}

impl From<ChangeError> for ServiceError {
    fn from(error: ChangeError) -> Self {
        match error {
            ChangeError::Unavailable(_) => ServiceError::Unavailable(error.to_string()),
            ChangeError::AlreadyExists(id) => ServiceError::AlreadyExists(id),
            ChangeError::NotFound(id) => ServiceError::NotFound(id),
            ChangeError::Conflict(message) => ServiceError::Conflict(message),
        }
    }
}

/// Why an upload is refused in cluster mode: an uploaded component would
/// live on one node only, and the others could not run the connectors
/// that name it.
pub(super) const NO_UPLOADS_IN_CLUSTER: &str = "uploaded components are not supported in cluster mode: give each node the same component files, or use a built-in";

// By hand: a store need not be `Debug`.
impl std::fmt::Debug for ServiceOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ServiceOptions {
            config,
            data_dir,
            ephemeral,
            record,
            uploads_cap,
            runtime,
            changes,
            forwarder,
        } = self;
        f.debug_struct("ServiceOptions")
            .field("config", config)
            .field("data_dir", data_dir)
            .field("ephemeral", ephemeral)
            .field("record", record)
            .field("uploads_cap", uploads_cap)
            .field("runtime", runtime)
            .field("changes", &changes.as_ref().map(|_| "ChangeStore"))
            .field("forwarder", &super::forward::describe(forwarder))
            .finish()
    }
}

/// Locks by id, striped: changes of one id wait for each other, changes
/// of different ids seldom do.
pub(super) struct IdLocks([tokio::sync::Mutex<()>; 64]);

impl Default for IdLocks {
    fn default() -> Self {
        IdLocks(std::array::from_fn(|_| tokio::sync::Mutex::new(())))
    }
}

impl IdLocks {
    pub(super) async fn lock(&self, id: &str) -> tokio::sync::MutexGuard<'_, ()> {
        use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
        let hash = BuildHasherDefault::<DefaultHasher>::default().hash_one(id);
        // The remainder is below the array's length, so it fits a usize.
        let stripe = (hash % self.0.len() as u64) as usize;
        self.0[stripe].lock().await
    }
}

impl Service {
    /// Keeps a change the runtime has made; `undo` puts the runtime back
    /// if that fails.
    pub(super) async fn keep_put(
        &self,
        config: &ConnectorConfig,
        change: Change,
        undo: impl Future<Output = ()>,
    ) -> Result<(), ServiceError> {
        let kept = match (&self.changes, &self.state) {
            (Some(changes), _) => changes.put(config, change).await.map_err(Into::into),
            (None, Some(state)) => state.record_put(config).await.map_err(Into::into),
            (None, None) => Ok(()),
        };
        if kept.is_err() {
            undo.await;
        }
        kept
    }

    /// Keeps the removal of `id`, before it is carried out.
    pub(super) async fn keep_remove(&self, id: &str) -> Result<(), ServiceError> {
        match (&self.changes, &self.state) {
            (Some(changes), _) => changes.remove(id).await.map_err(Into::into),
            (None, Some(state)) => {
                let from_yaml = self.lock_yaml().ids.contains(id);
                state.record_remove(id, from_yaml).await.map_err(Into::into)
            }
            (None, None) => Ok(()),
        }
    }

    /// The config file's entries, which in cluster mode seed the cluster's
    /// registry instead of this node's runtime; empty otherwise.
    pub fn seed_entries(&self) -> Vec<ConnectorConfig> {
        self.seed.clone()
    }

    /// Whether the service keeps its changes in a cluster.
    pub fn in_cluster(&self) -> bool {
        self.changes.is_some()
    }

    /// Registers or updates `config` in this node's runtime only (no
    /// [`ChangeStore`]): a change another node made. Idempotent: an
    /// identical config already registered changes nothing (so the echo of
    /// this node's own change is harmless); a different one is an update.
    pub async fn apply_put(self: &Arc<Self>, config: ConnectorConfig) -> Result<(), ServiceError> {
        self.on_work(|this| async move { this.apply_put_here(config).await })
            .await
    }

    async fn apply_put_here(&self, config: ConnectorConfig) -> Result<(), ServiceError> {
        self.check_running()?;
        let _id = self.id_locks.lock(&config.id).await;
        let changed = match self.runtime.get(&config.id) {
            Ok((_, current)) if current == config => return Ok(()),
            Ok(_) => self.runtime.update(config).await,
            Err(_) => self.runtime.register(config).await,
        };
        changed.map(|_| ()).map_err(ServiceError::from)
    }

    /// Removes `id` from this node's runtime only: a removal another node
    /// made. Ok if it is not there.
    pub async fn apply_remove(self: &Arc<Self>, id: &str) -> Result<(), ServiceError> {
        let id = id.to_string();
        self.on_work(|this| async move {
            this.check_running()?;
            let _id = this.id_locks.lock(&id).await;
            if this.runtime.remove(&id).await.is_ok()
                && let Some(alerts) = this.alerts()
            {
                alerts.forget(&id);
            }
            Ok(())
        })
        .await
    }

    /// Registers in the runtime, then keeps it (see the module's doc).
    pub(super) async fn register_kept(
        &self,
        config: ConnectorConfig,
    ) -> Result<ConnectorInfo, ServiceError> {
        let _id = self.id_locks.lock(&config.id).await;
        let info = self.runtime.register(config.clone()).await?;
        let undo = async {
            let _ = self.runtime.remove(&config.id).await;
        };
        self.keep_put(&config, Change::Register, undo).await?;
        Ok(info)
    }

    /// Updates in the runtime, then keeps it (see the module's doc).
    pub(super) async fn update_kept(
        &self,
        mut config: ConnectorConfig,
    ) -> Result<ConnectorInfo, ServiceError> {
        let _id = self.id_locks.lock(&config.id).await;
        let (_, current) = self
            .runtime
            .get(&config.id)
            .map_err(|e| ServiceError::NotFound(e.0))?;
        config::restore_redacted(&mut config, &current);
        let info = self.runtime.update(config.clone()).await?;
        // Put the old one back, so the runtime and the store agree.
        let undo = async {
            let _ = self.runtime.update(current).await;
        };
        self.keep_put(&config, Change::Update, undo).await?;
        Ok(info)
    }

    /// Keeps the removal, then carries it out.
    pub(super) async fn remove_kept(&self, id: &str) -> Result<(), ServiceError> {
        let _id = self.id_locks.lock(id).await;
        self.runtime
            .get(id)
            .map_err(|e| ServiceError::NotFound(e.0))?;
        self.keep_remove(id).await?;
        // Before the removal, so that a reload meanwhile does not take the
        // file's entry as its to start again.
        self.lock_yaml().claimed_by_api(id);
        self.runtime
            .remove(id)
            .await
            .map_err(|e| ServiceError::NotFound(e.0))
    }
}

#[cfg(test)]
#[path = "changes_tests.rs"]
mod tests;
