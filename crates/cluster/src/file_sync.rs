//! Reloading the config file in cluster mode: [`Store::sync_file`] makes
//! the registry's file entries (origin [`Origin::File`]) equal to one
//! node's file, and every node sees the change through the watch it
//! already follows.
//!
//! - An id of the file absent from the registry is created (only if still
//!   absent); a file entry whose config differs is replaced, and one no
//!   longer in the file removed, each only at the revision read.
//! - An entry of origin [`Origin::Api`] is never touched: an id the API
//!   registered or updated belongs to the API, whatever the file says.
//! - A compare that fails (another node reloading the same file at the
//!   same moment, or an API change) reads that entry again and decides
//!   again, a bounded number of times: two nodes reloading one file
//!   converge without an error.
//!
//! One write per changed entry, a few in flight at once. Nothing is
//! written when etcd cannot be listed; a reload cut off half-way (etcd
//! lost meanwhile) leaves part of the file applied, and reloading again
//! finishes it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use sandport_config::{ConnectorConfig, Secrets, to_value};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::error::ClusterError;
use crate::store::{Origin, Store, StoredEntry};

/// How many times one entry is decided and written before the reload
/// gives up on it (each failed compare reads it again).
const MAX_ATTEMPTS: usize = 5;
/// Writes in flight at once.
const CONCURRENT_WRITES: usize = 16;

/// What [`Store::sync_file`] changed in the registry (ids sorted).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileSync {
    pub created: Vec<String>,
    pub updated: Vec<String>,
    pub removed: Vec<String>,
    /// File entries the registry already held as the file says.
    pub unchanged: usize,
    /// Ids of the file that the API owns in the registry: left alone.
    pub skipped: Vec<String>,
    /// Entries not written, each id with why (too large, unreadable in
    /// etcd, changed by others at every attempt).
    pub failed: Vec<(String, String)>,
}

/// What the registry holds for one id, as far as a decision needs.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Held {
    pub(crate) origin: Origin,
    /// The entry in a form that compares by content; `None` when it cannot
    /// be put in that form (it then differs from any file entry).
    pub(crate) entry: Option<serde_json::Value>,
    pub(crate) mod_revision: i64,
}

impl Held {
    fn of(stored: &StoredEntry) -> Held {
        let StoredEntry {
            id: _,
            origin,
            entry,
            mod_revision,
        } = stored;
        Held {
            origin: *origin,
            entry: serde_json::to_value(entry).ok(),
            mod_revision: *mod_revision,
        }
    }
}

/// What to do with one id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    Create,
    Update {
        expected: i64,
    },
    Remove {
        expected: i64,
    },
    Unchanged,
    /// The API owns it.
    Skip,
    /// Neither in the file nor a file entry in the registry.
    Nothing,
}

/// The decision for one id: `wanted` is the file's entry (in the form
/// [`Held::entry`] compares), `held` what the registry holds.
pub(crate) fn decide(wanted: Option<&serde_json::Value>, held: Option<&Held>) -> Action {
    match (wanted, held) {
        (Some(_), Some(held)) if held.origin == Origin::Api => Action::Skip,
        (None, Some(held)) if held.origin == Origin::Api => Action::Nothing,
        (Some(_), None) => Action::Create,
        (Some(wanted), Some(held)) if held.entry.as_ref() == Some(wanted) => Action::Unchanged,
        (Some(_), Some(held)) => Action::Update {
            expected: held.mod_revision,
        },
        (None, Some(held)) => Action::Remove {
            expected: held.mod_revision,
        },
        (None, None) => Action::Nothing,
    }
}

/// How one id ended.
enum Outcome {
    Created,
    Updated,
    Removed,
    Unchanged,
    Skipped,
    Nothing,
    Failed(String),
}

impl Store {
    /// Makes the registry's file entries equal to `configs` (the config
    /// file's entries, already validated); see the module's doc. Fails
    /// with [`ClusterError::Unavailable`] when etcd cannot be read or is
    /// lost during the writes.
    pub async fn sync_file(&self, configs: &[ConnectorConfig]) -> Result<FileSync, ClusterError> {
        let mut sync = FileSync::default();
        let mut wanted = BTreeMap::new();
        for config in configs {
            let entry = match serde_json::to_value(to_value(config, Secrets::Keep)) {
                Ok(entry) => entry,
                Err(e) => {
                    sync.failed.push((config.id.clone(), e.to_string()));
                    continue;
                }
            };
            if wanted
                .insert(config.id.clone(), (Arc::new(config.clone()), entry))
                .is_some()
            {
                return Err(ClusterError::Refused {
                    during: "reloading the config file",
                    reason: format!(
                        "connector \"{}\" appears twice in the config file",
                        config.id
                    ),
                });
            }
        }
        let listing = self.list().await?;
        let held: BTreeMap<String, Held> = listing
            .entries
            .iter()
            .map(|stored| (stored.id.clone(), Held::of(stored)))
            .collect();
        let unreadable: BTreeSet<&str> = listing
            .unreadable
            .iter()
            .map(|(id, reason)| {
                if wanted.contains_key(id) {
                    sync.failed.push((id.clone(), reason.clone()));
                }
                id.as_str()
            })
            .collect();

        let ids: BTreeSet<&String> = wanted.keys().chain(held.keys()).collect();
        let permits = Arc::new(Semaphore::new(CONCURRENT_WRITES));
        let mut writes = JoinSet::new();
        for id in ids {
            if unreadable.contains(id.as_str()) {
                continue;
            }
            let file = wanted.get(id);
            let first = held.get(id).cloned();
            match decide(file.map(|(_, entry)| entry), first.as_ref()) {
                Action::Unchanged => sync.unchanged += 1,
                Action::Skip => sync.skipped.push(id.clone()),
                Action::Nothing => {}
                Action::Create | Action::Update { .. } | Action::Remove { .. } => {
                    let store = self.clone();
                    let id = id.clone();
                    let file = file.cloned();
                    let permits = permits.clone();
                    writes.spawn(async move {
                        // The semaphore is never closed.
                        let _permit = permits.acquire_owned().await.ok();
                        let outcome = store.settle(&id, file, first).await;
                        (id, outcome)
                    });
                }
            }
        }
        let mut lost = None;
        while let Some(joined) = writes.join_next().await {
            let (id, outcome) = match joined {
                Ok(done) => done,
                Err(e) => {
                    sync.failed.push((String::new(), e.to_string()));
                    continue;
                }
            };
            match outcome {
                Ok(Outcome::Created) => sync.created.push(id),
                Ok(Outcome::Updated) => sync.updated.push(id),
                Ok(Outcome::Removed) => sync.removed.push(id),
                Ok(Outcome::Unchanged) => sync.unchanged += 1,
                Ok(Outcome::Skipped) => sync.skipped.push(id),
                Ok(Outcome::Nothing) => {}
                Ok(Outcome::Failed(why)) => sync.failed.push((id, why)),
                Err(e) => lost = Some(e),
            }
        }
        if let Some(e) = lost {
            return Err(e);
        }
        sync.created.sort();
        sync.updated.sort();
        sync.removed.sort();
        sync.skipped.sort();
        sync.failed.sort();
        Ok(sync)
    }

    /// Decides and writes one id until a write lands or nothing is left to
    /// do; a failed compare reads the entry again. `Err` only when etcd is
    /// unavailable.
    async fn settle(
        &self,
        id: &str,
        file: Option<(Arc<ConnectorConfig>, serde_json::Value)>,
        mut held: Option<Held>,
    ) -> Result<Outcome, ClusterError> {
        for _ in 0..MAX_ATTEMPTS {
            let written = match (decide(file.as_ref().map(|(_, e)| e), held.as_ref()), &file) {
                (Action::Unchanged, _) => return Ok(Outcome::Unchanged),
                (Action::Skip, _) => return Ok(Outcome::Skipped),
                (Action::Nothing, _) => return Ok(Outcome::Nothing),
                (Action::Create, Some((config, _))) => self
                    .create_as(config, Origin::File)
                    .await
                    .map(|_| Outcome::Created),
                (Action::Update { expected }, Some((config, _))) => self
                    .update_as(config, expected, Origin::File)
                    .await
                    .map(|_| Outcome::Updated),
                (Action::Remove { expected }, _) => self
                    .remove(id, Some(expected))
                    .await
                    .map(|_| Outcome::Removed),
                // Create and Update are only decided for a file entry.
                (Action::Create | Action::Update { .. }, None) => return Ok(Outcome::Nothing),
            };
            match written {
                Ok(outcome) => return Ok(outcome),
                Err(
                    ClusterError::AlreadyExists { .. }
                    | ClusterError::Conflict { .. }
                    | ClusterError::NotFound { .. },
                ) => {
                    held = match self.get(id).await {
                        Ok(stored) => stored.as_ref().map(Held::of),
                        Err(e) if e.is_unavailable() => return Err(e),
                        Err(e) => return Ok(Outcome::Failed(e.to_string())),
                    };
                }
                Err(e) if e.is_unavailable() => return Err(e),
                Err(e) => return Ok(Outcome::Failed(e.to_string())),
            }
        }
        Ok(Outcome::Failed(format!(
            "connector \"{id}\" was changed by others at each of {MAX_ATTEMPTS} attempts; reload again"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn held(origin: Origin, entry: serde_json::Value, mod_revision: i64) -> Held {
        Held {
            origin,
            entry: Some(entry),
            mod_revision,
        }
    }

    #[test]
    fn an_entry_only_in_the_file_is_created() {
        assert_eq!(decide(Some(&json!({"a": 1})), None), Action::Create);
    }

    #[test]
    fn a_file_entry_as_the_file_says_is_unchanged() {
        let stored = held(Origin::File, json!({"a": 1, "b": [2]}), 7);
        assert_eq!(
            decide(Some(&json!({"b": [2], "a": 1})), Some(&stored)),
            Action::Unchanged
        );
    }

    #[test]
    fn a_changed_file_entry_is_updated_at_the_revision_read() {
        let stored = held(Origin::File, json!({"a": 1}), 7);
        assert_eq!(
            decide(Some(&json!({"a": 2})), Some(&stored)),
            Action::Update { expected: 7 }
        );
    }

    #[test]
    fn a_file_entry_the_file_no_longer_has_is_removed_at_the_revision_read() {
        let stored = held(Origin::File, json!({"a": 1}), 9);
        assert_eq!(decide(None, Some(&stored)), Action::Remove { expected: 9 });
    }

    #[test]
    fn an_api_entry_is_never_touched() {
        let stored = held(Origin::Api, json!({"a": 1}), 3);
        assert_eq!(decide(Some(&json!({"a": 2})), Some(&stored)), Action::Skip);
        assert_eq!(decide(Some(&json!({"a": 1})), Some(&stored)), Action::Skip);
        assert_eq!(decide(None, Some(&stored)), Action::Nothing);
    }

    #[test]
    fn an_entry_that_cannot_be_compared_is_replaced() {
        let stored = Held {
            origin: Origin::File,
            entry: None,
            mod_revision: 4,
        };
        assert_eq!(
            decide(Some(&json!({"a": 1})), Some(&stored)),
            Action::Update { expected: 4 }
        );
    }

    #[test]
    fn nothing_anywhere_is_nothing() {
        assert_eq!(decide(None, None), Action::Nothing);
    }
}
