//! Ownership in cluster mode: several nodes share one registry, and each
//! connector is checked by exactly one of them (its owner, chosen outside
//! the core). Every node registers every connector, so that each can answer
//! for all of them and validate a change before it is kept; only the owner
//! holds an instance and runs a schedule. The others hold the host entry
//! (config, info, the health the owner published) and build an instance
//! only for the length of a live check.
//!
//! Whether a connector runs here (owned, and admitted within the node's
//! budgets) is a flag in its `Duty`, flipped under the registry's write
//! lock and read by the schedule and by every check; a check that finds it
//! off drops the instance it used, so none outlives a loss of ownership.

use std::sync::Arc;
use std::time::SystemTime;

use tokio::task::JoinSet;

use super::admit::Usage;
use super::{Entry, HealthEvent, Inner, NotFound, RegisterError, Runtime, close_guest, lock};
use crate::health::{HealthSnapshot, HealthStatus, one_line};

/// Which connectors this node checks. Cheap to clone.
#[derive(Clone)]
pub struct Ownership {
    owns: Owns,
}

#[derive(Clone)]
enum Owns {
    All,
    None,
    Chosen(Arc<dyn Fn(&str) -> bool + Send + Sync>),
}

impl Ownership {
    /// Every connector is checked here: a single node, the default.
    pub fn all() -> Ownership {
        Ownership { owns: Owns::All }
    }

    /// No connector is checked here: a node that is not a live member of
    /// its cluster.
    pub fn none() -> Ownership {
        Ownership { owns: Owns::None }
    }

    /// The connectors for which `owns(id)` says yes. It is asked under the
    /// registry's lock, once per connector, so it should be a quick pure
    /// function (rendezvous hashing over the members known at the time).
    pub fn from_fn(owns: impl Fn(&str) -> bool + Send + Sync + 'static) -> Ownership {
        Ownership {
            owns: Owns::Chosen(Arc::new(owns)),
        }
    }

    pub fn owns(&self, id: &str) -> bool {
        match &self.owns {
            Owns::All => true,
            Owns::None => false,
            Owns::Chosen(owns) => owns(id),
        }
    }
}

impl Default for Ownership {
    fn default() -> Self {
        Ownership::all()
    }
}

impl std::fmt::Debug for Ownership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.owns {
            Owns::All => "Ownership::all()",
            Owns::None => "Ownership::none()",
            Owns::Chosen(_) => "Ownership::from_fn(..)",
        })
    }
}

/// The status another node published for a connector it owns.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteHealth {
    pub status: HealthStatus,
    pub message: String,
    pub since: Option<SystemTime>,
    pub checked_at: Option<SystemTime>,
}

impl Runtime {
    /// Whether this node is the one to check `id` (whether or not it is
    /// registered, and whether or not the node's budgets let it run).
    pub fn owns(&self, id: &str) -> bool {
        self.inner.ownership().owns(id)
    }

    /// How many times the ownership was replaced ([`Runtime::set_ownership`]):
    /// a sweep over the owned connectors need run again only when this
    /// moved, or when their health changed (see [`Runtime::subscribe`]).
    pub fn ownership_generation(&self) -> u64 {
        self.inner
            .ownership_changes
            .load(std::sync::atomic::Ordering::Acquire)
    }

    /// Calls `visit` with the id and health of every connector this node
    /// owns, under the registry's read lock and without copying them, and
    /// returns those it answered true for, with their health: a sweep that
    /// copies only what it will act on. Returns the count owned too.
    pub fn owned_health_where(
        &self,
        mut visit: impl FnMut(&str, &HealthSnapshot) -> bool,
    ) -> (usize, Vec<(String, HealthSnapshot)>) {
        let entries = self.read();
        let ownership = self.inner.ownership();
        let mut owned = 0;
        let mut chosen = Vec::new();
        for entry in entries.values() {
            if !ownership.owns(&entry.config.id) {
                continue;
            }
            owned += 1;
            let health = lock(&entry.health);
            if visit(&entry.config.id, &health) {
                chosen.push((entry.config.id.clone(), health.clone()));
            }
        }
        (owned, chosen)
    }

    /// Replaces the ownership; connectors that became owned start their
    /// schedule (first check soon, spread as at registration); ones no
    /// longer owned stop theirs and their instance is closed and dropped,
    /// keeping config, info and last health. Newly owned connectors that
    /// would pass the node's instance limit or memory budget are started
    /// as far as they fit, in id order; the rest stay unchecked with an
    /// unhealthy status that names the limit, until a later call finds
    /// room.
    pub async fn set_ownership(&self, ownership: Ownership) {
        let mut stopped = Vec::new();
        let mut started = Vec::new();
        let mut refused = Vec::new();
        {
            let connectors = self.write();
            *self
                .inner
                .ownership
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = ownership.clone();
            self.inner
                .ownership_changes
                .fetch_add(1, std::sync::atomic::Ordering::Release);
            for entry in connectors.values() {
                if entry.runs_here() && !ownership.owns(&entry.config.id) {
                    entry.stop_schedule();
                    stopped.push(entry.clone());
                }
            }
            // Once, not per connector: a node taking on thousands at once
            // would otherwise count them all for each.
            let mut usage = Usage::of(&connectors, None);
            for entry in connectors.values() {
                if entry.runs_here() || !ownership.owns(&entry.config.id) {
                    continue;
                }
                if entry.config.enabled {
                    match self.fits(&usage, &entry.config) {
                        Ok(()) => usage.add(&entry.config),
                        Err(error) => {
                            refused.push((entry.clone(), error));
                            continue;
                        }
                    }
                }
                entry.set_runs_here();
                started.push(entry.clone());
            }
        }
        for entry in &started {
            self.start_schedule(entry);
        }
        if let Some((_, error)) = refused.first() {
            tracing::warn!(
                connectors = refused.len(),
                "connectors this node owns are not checked: {}",
                not_run_message(error)
            );
        }
        for (entry, error) in &refused {
            set_status(
                &self.inner,
                entry,
                HealthStatus::Unhealthy,
                not_run_message(error),
                None,
            );
        }
        let mut closing = JoinSet::new();
        for entry in stopped {
            closing.spawn(async move { release_instance(&entry).await });
        }
        while closing.join_next().await.is_some() {}
        if !started.is_empty() || !refused.is_empty() {
            tracing::info!(
                started = started.len(),
                refused = refused.len(),
                "ownership changed"
            );
        }
    }

    /// The status another node published for a connector this node does
    /// not own: set in the health cache, and announced as a [`HealthEvent`]
    /// when the status changes, so that this node's APIs show it. The
    /// observers (history, alerts) are not told: the owner's are, and a
    /// status change must alert once, not once per node. Ignored for an
    /// owned connector, whose status this node's own checks decide.
    pub fn record_remote_health(&self, id: &str, remote: RemoteHealth) -> Result<(), NotFound> {
        // Held so that ownership cannot change between the question and
        // the write.
        let connectors = self.read();
        let entry = connectors.get(id).ok_or_else(|| NotFound(id.to_string()))?;
        if self.owns(id) {
            return Ok(());
        }
        let RemoteHealth {
            status,
            message,
            since,
            checked_at,
        } = remote;
        // Another node's text is still a guest's: kept to one line.
        let message = one_line(message);
        let mut health = lock(&entry.health);
        let previous = health.status;
        *health = HealthSnapshot {
            status,
            since,
            message,
            checked_at,
            ..HealthSnapshot::unknown()
        };
        if status != previous {
            announce(&self.inner, entry, &health, previous);
        }
        Ok(())
    }

    /// Whether `id` runs here: owned and admitted (a test's view).
    #[cfg(test)]
    pub(super) fn runs_here(&self, id: &str) -> bool {
        self.entry(id).is_ok_and(|e| e.runs_here())
    }
}

impl Inner {
    pub(super) fn ownership(&self) -> std::sync::RwLockReadGuard<'_, Ownership> {
        self.ownership
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// What an owned connector that does not fit shows as its status.
fn not_run_message(error: &RegisterError) -> String {
    let flag = match error {
        RegisterError::ResourceExhausted { key: "", .. } => "--max-connectors",
        _ => "--memory-budget",
    };
    let why = match error {
        RegisterError::ResourceExhausted { message, .. } => message.clone(),
        other => other.to_string(),
    };
    format!("owned by this node but not checked: {why}; raise {flag} to check it here")
}

/// Sets an unchecked status in the cache and announces a change of it.
fn set_status(
    inner: &Inner,
    entry: &Entry,
    status: HealthStatus,
    message: String,
    checked_at: Option<SystemTime>,
) {
    let mut health = lock(&entry.health);
    let previous = health.status;
    let since = if previous == status {
        health.since
    } else {
        Some(SystemTime::now())
    };
    *health = HealthSnapshot {
        status,
        since,
        message,
        checked_at,
        ..HealthSnapshot::unknown()
    };
    if status != previous {
        announce(inner, entry, &health, previous);
    }
}

fn announce(inner: &Inner, entry: &Entry, now: &HealthSnapshot, previous: HealthStatus) {
    // No receivers is fine.
    let _ = inner.events.send(HealthEvent {
        id: entry.config.id.clone(),
        connector_type: entry.info.connector_type,
        status: now.status,
        previous,
        message: now.message.clone(),
        failure: now.failure.clone(),
        checked_at: now.checked_at.or(now.since).unwrap_or_else(SystemTime::now),
    });
}

/// Closes and drops the instance of a connector that does not run here.
/// Decided under the instance's lock, so a check in flight finishes first
/// and an ownership given back meanwhile keeps the instance.
pub(super) async fn release_instance(entry: &Entry) {
    let guest = {
        let mut slot = entry.instance.lock().await;
        if entry.runs_here() {
            return;
        }
        slot.take()
    };
    if let Some(guest) = guest {
        close_guest(&entry.config.id, guest).await;
    }
}

#[cfg(test)]
#[path = "ownership_tests.rs"]
mod tests;
