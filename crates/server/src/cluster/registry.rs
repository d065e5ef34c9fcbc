//! The node's runtime follows the cluster's registry: the file's entries
//! are seeded once per cluster, the registry is listed into the service,
//! then every change any node makes arrives through etcd's watch. A change
//! this node made itself arrives too and changes nothing (the service
//! applies an identical entry as a no-op).

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;

use sandport_cluster::{ClusterError, Origin, RegistryEvent, Store, StoredEntry};
use sandport_config::{ComponentPaths, ConnectorConfig};
use sandport_core::service::Service;

use super::changes::Revisions;
use super::{Outage, RETRY};

pub(super) struct Sync {
    pub(super) store: Store,
    pub(super) service: Arc<Service>,
    pub(super) revisions: Arc<Revisions>,
    pub(super) config_dir: PathBuf,
}

impl Sync {
    /// Seeds, lists and applies the registry, retrying while etcd is
    /// unreachable. Returns the revision to watch from.
    pub(super) async fn load(&self) -> i64 {
        let seed = self.service.seed_entries();
        let mut outage = Outage::default();
        loop {
            match self.store.seed(&seed).await {
                Ok(outcome) => {
                    outage.ok("the cluster's registry is reachable");
                    tracing::info!(
                        ?outcome,
                        entries = seed.len(),
                        "the cluster's registry is seeded"
                    );
                    break;
                }
                Err(e) => {
                    outage.failed("cannot seed the cluster's registry yet", &e);
                    tokio::time::sleep(RETRY).await;
                }
            }
        }
        self.relist().await
    }

    /// Lists the registry and makes the runtime hold exactly it.
    async fn relist(&self) -> i64 {
        let mut outage = Outage::default();
        let listing = loop {
            match self.store.list().await {
                Ok(listing) => {
                    outage.ok("the cluster's registry is listed");
                    break listing;
                }
                Err(e) => {
                    outage.failed("cannot list the cluster's registry yet", &e);
                    tokio::time::sleep(RETRY).await;
                }
            }
        };
        for (id, problem) in &listing.unreadable {
            tracing::error!(connector = %id, "the cluster's entry cannot be read; its last good entry stands: {problem}");
        }
        let mut revisions = HashMap::new();
        let mut listed = HashSet::new();
        for stored in listing.entries {
            listed.insert(stored.id.clone());
            revisions.insert(stored.id.clone(), stored.mod_revision);
            self.put(stored).await;
        }
        // Entries this node holds that the registry no longer has (removed
        // while this node was not watching). Keys it could not read keep
        // their last good entry.
        let unreadable: HashSet<&str> = listing
            .unreadable
            .iter()
            .map(|(id, _)| id.as_str())
            .collect();
        for info in self.service.runtime().list(None) {
            if !listed.contains(&info.id) && !unreadable.contains(info.id.as_str()) {
                self.remove(&info.id).await;
            }
        }
        self.revisions.reset(revisions);
        listing.revision + 1
    }

    /// Applies every change from `revision` on, until the task is stopped.
    pub(super) async fn follow(self, revision: i64) {
        let mut watch = self.store.watch(revision);
        let mut outage = Outage::default();
        loop {
            match watch.next().await {
                Ok(events) => {
                    outage.ok("the cluster's registry is followed");
                    for event in events {
                        self.apply(event).await;
                    }
                }
                Err(ClusterError::Compacted { .. }) => {
                    let from = self.relist().await;
                    watch = self.store.watch(from);
                }
                Err(e) => {
                    // The watch resumes from its last revision once etcd
                    // answers again; meanwhile the last registry stands.
                    outage.failed("the cluster's registry is out of reach", &e);
                    tokio::time::sleep(RETRY).await;
                }
            }
        }
    }

    async fn apply(&self, event: RegistryEvent) {
        match event {
            RegistryEvent::Put(stored) => {
                self.revisions.saw(&stored.id, stored.mod_revision);
                self.put(stored).await;
            }
            RegistryEvent::Removed { id, .. } => {
                self.revisions.forget(&id);
                self.remove(&id).await;
            }
            RegistryEvent::Unreadable { id, reason } => {
                tracing::error!(connector = %id, "the cluster's entry cannot be read; its last good entry stands: {reason}");
            }
        }
    }

    async fn put(&self, stored: StoredEntry) {
        let id = stored.id.clone();
        let config = match self.parse(&stored) {
            Ok(config) => config,
            Err(problems) => {
                tracing::error!(connector = %id, "the cluster's entry is not valid here: {problems}");
                return;
            }
        };
        if let Err(e) = self.service.apply_put(config).await {
            // Another node took it, so the entry is fine there: what this
            // node lacks (a component file, room) is the operator's to fix.
            tracing::error!(connector = %id, "cannot load the cluster's entry on this node: {e}");
        }
    }

    async fn remove(&self, id: &str) {
        if let Err(e) = self.service.apply_remove(id).await {
            tracing::error!(connector = %id, "cannot remove the connector on this node: {e}");
        }
    }

    /// An entry read as where it came from reads: the file's against the
    /// file's directory, an API's within the components directory.
    fn parse(&self, stored: &StoredEntry) -> Result<ConnectorConfig, String> {
        let paths = match stored.origin {
            Origin::File => ComponentPaths::Anywhere(&self.config_dir),
            Origin::Api => ComponentPaths::ComponentsDir,
        };
        sandport_config::parse_entry_value(&stored.entry, paths, sandport_builtins::catalog())
            .map_err(|problems| {
                problems
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            })
    }
}
