//! API changes in cluster mode: written to etcd, where every node's
//! registry follows them. A Register creates the key only if it does not
//! exist (two nodes registering one id at once: one wins); an Update and a
//! Remove compare the revision this node last saw, so that a change made
//! meanwhile on another node is not overwritten unseen. A reload of the
//! config file makes the registry's file entries equal to the file
//! (`Store::sync_file`), leaving the API's entries alone.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;

use sandport_cluster::FileSync;
use sandport_cluster::{ClusterError, Store};
use sandport_config::ConnectorConfig;
use sandport_core::service::{Change, ChangeError, ChangeStore, FileChanges, FileChangesFuture};

/// The revision of each connector's key as this node last saw it.
#[derive(Debug, Default)]
pub(super) struct Revisions(Mutex<HashMap<String, i64>>);

impl Revisions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, i64>> {
        // Each critical section leaves the map consistent.
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(super) fn get(&self, id: &str) -> Option<i64> {
        self.lock().get(id).copied()
    }

    /// Records `revision` for `id` unless a later one is known (a watch
    /// event may come after the answer to this node's own write).
    pub(super) fn saw(&self, id: &str, revision: i64) {
        let mut map = self.lock();
        let known = map.entry(id.to_string()).or_insert(revision);
        *known = (*known).max(revision);
    }

    pub(super) fn forget(&self, id: &str) {
        self.lock().remove(id);
    }

    /// Replaces every revision (after listing the registry).
    pub(super) fn reset(&self, revisions: HashMap<String, i64>) {
        *self.lock() = revisions;
    }
}

pub(super) struct EtcdChanges {
    store: Store,
    revisions: std::sync::Arc<Revisions>,
}

impl EtcdChanges {
    pub(super) fn new(store: Store, revisions: std::sync::Arc<Revisions>) -> Self {
        EtcdChanges { store, revisions }
    }

    async fn put_config(
        &self,
        config: &ConnectorConfig,
        change: Change,
    ) -> Result<(), ChangeError> {
        let revision = match change {
            Change::Register => self.store.create(config).await,
            Change::Update => {
                let Some(expected) = self.revisions.get(&config.id) else {
                    return Err(ChangeError::Conflict(format!(
                        "connector `{}` is not yet known to this node's copy of the cluster's registry; try again in a moment",
                        config.id
                    )));
                };
                self.store.update(config, expected).await
            }
        }
        .map_err(change_error)?;
        self.revisions.saw(&config.id, revision);
        Ok(())
    }

    async fn reload_file(&self, configs: &[ConnectorConfig]) -> Result<FileChanges, ChangeError> {
        let FileSync {
            created,
            updated,
            removed,
            unchanged,
            skipped,
            failed,
        } = self.store.sync_file(configs).await.map_err(|e| {
            if e.is_unavailable() {
                tracing::warn!("the config file could not be written to the cluster: {e}");
                ChangeError::Unavailable(
                    "etcd did not answer; reload again when it is reachable".into(),
                )
            } else {
                ChangeError::Conflict(e.to_string())
            }
        })?;
        // The new revisions reach `revisions` through the watch, as other
        // nodes' changes do.
        Ok(FileChanges {
            created,
            updated,
            removed,
            unchanged,
            skipped,
            failed,
        })
    }

    async fn remove_id(&self, id: &str) -> Result<(), ChangeError> {
        let expected = self.revisions.get(id);
        self.store
            .remove(id, expected)
            .await
            .map_err(change_error)?;
        self.revisions.forget(id);
        Ok(())
    }
}

impl ChangeStore for EtcdChanges {
    fn put<'a>(
        &'a self,
        config: &'a ConnectorConfig,
        change: Change,
    ) -> Pin<Box<dyn Future<Output = Result<(), ChangeError>> + Send + 'a>> {
        Box::pin(self.put_config(config, change))
    }

    fn remove<'a>(
        &'a self,
        id: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<(), ChangeError>> + Send + 'a>> {
        Box::pin(self.remove_id(id))
    }

    fn reload<'a>(&'a self, configs: &'a [ConnectorConfig]) -> FileChangesFuture<'a> {
        Box::pin(self.reload_file(configs))
    }
}

/// What an API caller is told. Errors of etcd itself are logged; the
/// caller learns that the change was not made and why in its terms.
fn change_error(error: ClusterError) -> ChangeError {
    match error {
        ClusterError::AlreadyExists { id } => ChangeError::AlreadyExists(id),
        ClusterError::NotFound { id } => ChangeError::NotFound(id),
        ClusterError::Conflict { .. } => ChangeError::Conflict(error.to_string()),
        ClusterError::InvalidId(e) => ChangeError::Conflict(e.to_string()),
        ClusterError::TooLarge { .. } => ChangeError::Conflict(error.to_string()),
        other => {
            tracing::warn!("a change could not be written to the cluster: {other}");
            ChangeError::Unavailable("etcd did not answer; try again when it is reachable".into())
        }
    }
}
