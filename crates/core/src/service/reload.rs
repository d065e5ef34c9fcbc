//! Reloading `connectors.yaml` while the service runs: the file is read
//! again, compared with what it said last time, and only the difference is
//! applied: new entries are started, deleted ones removed, changed ones
//! replaced (a changed component file counts, by digest); the others, with
//! their instances, health and schedule, are not touched.
//!
//! - A file with any problem changes nothing: a typo in one entry must not
//!   take its running connector away.
//! - A replacement is gated as an API update is: the new instance must
//!   initialise before it takes over; otherwise the old one runs on and the
//!   problem is reported.
//! - An entry that an API call registered, updated or removed belongs to
//!   the API from then on (as at start-up): the file no longer decides it.
//!
//! In cluster mode the file's entries are not applied to this node's
//! runtime: the cluster's entries that came from the file are made equal
//! to it through the [`ChangeStore`] (the API's entries are left alone,
//! and named in the report), and every node, this one included, applies
//! the change as it follows the cluster. The file's `alerts` are applied
//! on the reloading node only, as alerts are each node's own.
//!
//! What happened is kept for `GET /api/v1/config/status` and counted for
//! the metrics.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use tokio::task::JoinSet;

use super::{ChangeStore, FileChanges, Service, ServiceError};
use sandport_config::{self as config, ComponentRef, ConnectorConfig, Problem};

/// Which connectors the operator's file decides.
#[derive(Default)]
pub(super) struct YamlManaged {
    /// Every id the file defines now: removing one through the API needs a
    /// tombstone in the state file.
    pub(super) ids: HashSet<String>,
    /// Ids running as the file defined them at its last load (their config
    /// is the runtime's).
    running: BTreeSet<String>,
    /// Ids an API call registered, updated or removed (now or before a
    /// restart): the file no longer decides them.
    api: HashSet<String>,
}

impl YamlManaged {
    pub(super) fn new(
        ids: HashSet<String>,
        api: HashSet<String>,
        is_running: impl Fn(&str) -> bool,
    ) -> Self {
        let running = ids
            .iter()
            .filter(|id| !api.contains(*id) && is_running(id))
            .cloned()
            .collect();
        YamlManaged { ids, running, api }
    }

    /// An API call changed `id`: the file no longer decides it.
    pub(super) fn claimed_by_api(&mut self, id: &str) {
        self.running.remove(id);
        self.api.insert(id.to_string());
    }
}

/// What one reload did.
#[derive(Debug, Clone)]
pub struct ReloadReport {
    pub at: SystemTime,
    /// Whether the file was applied; `false`: it had problems, and nothing
    /// changed.
    pub applied: bool,
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub replaced: Vec<String>,
    pub unchanged: usize,
    /// Ids the file defines that an API call registered, updated or
    /// removed: the API owns them, so the file's entry was not applied.
    pub skipped: Vec<String>,
    /// The file's problems (not applied), or the entries that could not be
    /// started or replaced (applied; a replaced entry's old instance runs on).
    pub problems: Vec<Problem>,
}

impl ReloadReport {
    fn failed(problems: Vec<Problem>) -> Self {
        ReloadReport {
            at: SystemTime::now(),
            applied: false,
            added: Vec::new(),
            removed: Vec::new(),
            replaced: Vec::new(),
            unchanged: 0,
            skipped: Vec::new(),
            problems,
        }
    }
}

/// The reloads so far.
#[derive(Default)]
pub(super) struct ReloadLog {
    applied: AtomicU64,
    failed: AtomicU64,
    last: Mutex<Option<ReloadReport>>,
}

impl ReloadLog {
    fn record(&self, report: &ReloadReport) {
        let counter = if report.applied && report.problems.is_empty() {
            &self.applied
        } else {
            &self.failed
        };
        counter.fetch_add(1, Ordering::Relaxed);
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(report.clone());
    }

    fn last(&self) -> Option<ReloadReport> {
        self.last.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// `sandport_config_reloads_total` and `sandport_config_last_reload_success`.
#[derive(Debug)]
pub struct ReloadCollector {
    service: std::sync::Weak<Service>,
}

impl Collector for ReloadCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(service) = self.service.upgrade() else {
            return Ok(());
        };
        let log = &service.reloads;
        let mut family = encoder.encode_descriptor(
            "sandport_config_reloads",
            "Reloads of the config file, by result (failed: it had problems, or an entry could not be started)",
            None,
            MetricType::Counter,
        )?;
        for (result, counter) in [("applied", &log.applied), ("failed", &log.failed)] {
            family
                .encode_family(&[("result", result)])?
                .encode_counter::<NoLabelSet, _, u64>(&counter.load(Ordering::Relaxed), None)?;
        }
        let success = log
            .last()
            .is_none_or(|last| last.applied && last.problems.is_empty());
        encoder
            .encode_descriptor(
                "sandport_config_last_reload_success",
                "1 when the last reload of the config file (if any) was applied without a problem",
                None,
                MetricType::Gauge,
            )?
            .encode_gauge(&u64::from(success))
    }
}

impl Service {
    /// The config file the service reloads, if it runs on one.
    pub fn config_path(&self) -> Option<&std::path::Path> {
        self.config_path.as_deref()
    }

    /// The last reload's report, if there was one.
    pub fn last_reload(&self) -> Option<ReloadReport> {
        self.reloads.last()
    }

    /// The reload counters, for a `prometheus_client` registry.
    pub fn reload_collector(self: &Arc<Self>) -> ReloadCollector {
        ReloadCollector {
            service: Arc::downgrade(self),
        }
    }

    /// Reads the config file again and applies the difference (see the
    /// module's doc). Reloads run one at a time.
    pub async fn reload_config(self: &Arc<Self>) -> Result<ReloadReport, ServiceError> {
        if self.config_path.is_none() {
            return Err(ServiceError::Conflict(
                "the service runs on the built-in config; start it with --config FILE to reload a file"
                    .into(),
            ));
        }
        self.on_work(|this| async move {
            this.check_running()?;
            let _one = this.reloading.lock().await;
            let report = match this.changes.clone() {
                Some(changes) => this.reload_into_cluster(changes.as_ref()).await,
                None => Ok(this.reload_here().await),
            };
            let report = match report {
                Ok(report) => report,
                Err(e) => {
                    // Counted and shown as a reload that changed nothing.
                    let failed = ReloadReport::failed(vec![file_problem(e.to_string())]);
                    this.reloads.record(&failed);
                    tracing::warn!("config reload failed, nothing was changed: {e}");
                    return Err(e);
                }
            };
            this.reloads.record(&report);
            log(&report);
            Ok(report)
        })
        .await
    }

    /// Reads and validates the file: its entries, or the report of a
    /// reload refused for its problems.
    async fn read_file(&self) -> Result<config::Loaded, ReloadReport> {
        let Some(path) = self.config_path.clone() else {
            return Err(ReloadReport::failed(vec![file_problem(
                "the service runs on the built-in config".into(),
            )]));
        };
        let read = tokio::task::spawn_blocking(move || {
            config::load_file(&path, sandport_builtins::catalog())
        })
        .await;
        let loaded = match read {
            Ok(Ok(loaded)) => loaded,
            Ok(Err(e)) => return Err(ReloadReport::failed(vec![file_problem(e.to_string())])),
            Err(e) => return Err(ReloadReport::failed(vec![file_problem(e.to_string())])),
        };
        if !loaded.problems.is_empty() {
            return Err(ReloadReport::failed(loaded.problems));
        }
        Ok(loaded)
    }

    /// Cluster mode: the file made the cluster's file entries (see the
    /// module's doc). `Err` when the cluster could not be reached; then
    /// nothing changed, here or in the cluster.
    async fn reload_into_cluster(
        &self,
        changes: &dyn ChangeStore,
    ) -> Result<ReloadReport, ServiceError> {
        let loaded = match self.read_file().await {
            Ok(loaded) => loaded,
            Err(refused) => return Ok(refused),
        };
        let FileChanges {
            created,
            updated,
            removed,
            unchanged,
            skipped,
            failed,
        } = changes.reload(&loaded.connectors).await?;
        if let Some(alerts) = self.alerts() {
            alerts.reconfigure(loaded.alerts);
        }
        // Each node applies the change as it follows the cluster; an entry
        // that cannot start there is shown in that node's status, as after
        // a Register.
        let problems = failed
            .into_iter()
            .map(|(id, message)| Problem {
                entry: format!("connector \"{id}\""),
                key: String::new(),
                message,
            })
            .collect();
        Ok(ReloadReport {
            at: SystemTime::now(),
            applied: true,
            added: created,
            removed,
            replaced: updated,
            unchanged,
            skipped,
            problems,
        })
    }

    async fn reload_here(self: &Arc<Self>) -> ReloadReport {
        let loaded = match self.read_file().await {
            Ok(loaded) => loaded,
            Err(refused) => return refused,
        };
        if let Some(alerts) = self.alerts() {
            alerts.reconfigure(loaded.alerts.clone());
        }
        let wanted: BTreeMap<String, ConnectorConfig> = loaded
            .connectors
            .into_iter()
            .map(|c| (c.id.clone(), c))
            .collect();
        let mut report = ReloadReport {
            applied: true,
            ..ReloadReport::failed(Vec::new())
        };

        let (running, api) = {
            let mut yaml = self.lock_yaml();
            yaml.ids = wanted.keys().cloned().collect();
            (yaml.running.clone(), yaml.api.clone())
        };
        for id in running.iter().filter(|id| !wanted.contains_key(*id)) {
            if self.runtime.remove(id).await.is_ok() {
                report.removed.push(id.clone());
                if let Some(alerts) = self.alerts() {
                    alerts.forget(id);
                }
            }
            self.lock_yaml().running.remove(id);
        }
        // (config, whether it replaces a running one)
        let mut changes = Vec::new();
        for (id, config) in wanted {
            if api.contains(&id) {
                report.skipped.push(id);
                continue;
            }
            let current = running
                .contains(&id)
                .then(|| self.runtime.get(&id).ok())
                .flatten();
            match current {
                Some((info, old))
                    if old == config
                        && !self
                            .component_changed(&config, &info.component_digest)
                            .await =>
                {
                    report.unchanged += 1;
                }
                current => changes.push((config, current.is_some())),
            }
        }
        let mut tasks = JoinSet::new();
        for (config, replacing) in changes {
            let this = self.clone();
            tasks.spawn(async move {
                let id = config.id.clone();
                let result = if replacing {
                    this.runtime.update(config).await
                } else {
                    this.runtime.register(config).await
                };
                if result.is_ok() {
                    let mut yaml = this.lock_yaml();
                    // An API call that claimed it meanwhile wins.
                    if !yaml.api.contains(&id) {
                        yaml.running.insert(id.clone());
                    }
                }
                (id, replacing, result)
            });
        }
        while let Some(joined) = tasks.join_next().await {
            let Ok((id, replacing, result)) = joined else {
                continue;
            };
            match (result, replacing) {
                (Ok(_), true) => report.replaced.push(id),
                (Ok(_), false) => report.added.push(id),
                (Err(e), replacing) => report.problems.push(Problem {
                    entry: format!("connector \"{id}\""),
                    key: e.key().into(),
                    message: if replacing {
                        format!("{e}; the running instance was kept")
                    } else {
                        e.to_string()
                    },
                }),
            }
        }
        report.added.sort();
        report.replaced.sort();
        report.removed.sort();
        report
    }

    /// Whether the file a path component names now holds other bytes than
    /// the running instance (of digest `running`) was made from.
    async fn component_changed(&self, config: &ConnectorConfig, running: &str) -> bool {
        if !matches!(
            config.component,
            ComponentRef::Path(_) | ComponentRef::InComponentsDir(_)
        ) {
            return false;
        }
        // A file that cannot be read now is a change: the replacement
        // fails, is reported, and the running instance stays.
        self.runtime
            .component_digest(config)
            .await
            .is_none_or(|digest| digest != running)
    }

    pub(super) fn lock_yaml(&self) -> std::sync::MutexGuard<'_, YamlManaged> {
        self.yaml.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn file_problem(message: String) -> Problem {
    Problem {
        entry: String::new(),
        key: String::new(),
        message,
    }
}

fn log(report: &ReloadReport) {
    let ReloadReport {
        at: _,
        applied,
        added,
        removed,
        replaced,
        unchanged,
        skipped,
        problems,
    } = report;
    for problem in problems {
        tracing::warn!("config reload: {problem}");
    }
    if *applied {
        tracing::info!(
            added = added.len(),
            removed = removed.len(),
            replaced = replaced.len(),
            unchanged,
            skipped = skipped.len(),
            problems = problems.len(),
            "config reloaded"
        );
    } else {
        tracing::warn!(
            problems = problems.len(),
            "config reload refused: the file has problems, so nothing was changed"
        );
    }
}
