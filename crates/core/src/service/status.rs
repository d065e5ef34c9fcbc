//! What the checks found, kept and told: the check history (an embedded
//! SQLite file in the data directory, `sandport-history`) and the alerts
//! (`sandport-alerts`), each fed by an observer of the runtime's checks.
//!
//! Neither may slow a check: the observers only queue. Neither may stop the
//! service: a history file that cannot be used is reported (log, API,
//! metric) and the checks go on without it.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use sandport_config::HistoryConfig;
use sandport_history::{History, HistoryError, HistoryOptions, Point, Rollup, Status, StoredPoint};

use sandport_alerts::Alerts;
use sandport_config::Loaded;

use super::{StartError, alerts};
use crate::RuntimeError;
use crate::egress::HttpClient;
use crate::health::HealthStatus;
use crate::observe::{CheckObserver, Checked, Observers};

/// The history file's name in the data directory.
pub const HISTORY_FILE: &str = "history.db";

/// The history and the alerts of a service, and the temporary directories
/// they may live in.
pub(super) struct Stores {
    history: HistoryState,
    /// `None` when the outbox could not be opened (logged at start).
    alerts: Option<Alerts>,
    /// An ephemeral service's history; the outbox of a service that does
    /// not record (see [`super::ServiceOptions::record`]).
    _scratch: Vec<tempfile::TempDir>,
}

fn scratch(prefix: &str) -> Result<tempfile::TempDir, StartError> {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .map_err(|e| StartError::Scratch(e.to_string()))
}

impl Stores {
    /// Opens the history in the data directory (a temporary one without
    /// state, which an ephemeral service has none of) and starts the
    /// alerts; when `record`, adds the observers that feed them.
    pub(super) fn open(
        loaded: &Loaded,
        data_dir: Option<&Path>,
        record: bool,
        observers: &mut Observers,
    ) -> Result<Stores, StartError> {
        let mut scratches = Vec::new();
        let dir = match data_dir {
            Some(dir) => dir.to_path_buf(),
            None => {
                let dir = scratch("sandport-history-")?;
                let path = dir.path().to_path_buf();
                scratches.push(dir);
                path
            }
        };
        let history = HistoryState::open(&loaded.history, &dir);
        let http = HttpClient::new().map_err(RuntimeError::Http)?;
        let alerts = if record {
            if let Some(observer) = history.observer() {
                observers.push(observer);
            }
            let alerts = alerts::start(loaded.alerts.clone(), &dir, &http);
            if let Some(alerts) = &alerts {
                observers.push(Arc::new(alerts::AlertFeed(alerts.clone())));
            }
            alerts
        } else {
            let outbox = scratch("sandport-alerts-")?;
            let alerts = alerts::start(loaded.alerts.clone(), outbox.path(), &http);
            scratches.push(outbox);
            alerts
        };
        Ok(Stores {
            history,
            alerts,
            _scratch: scratches,
        })
    }

    pub(super) async fn close(&self) {
        if let Some(alerts) = &self.alerts {
            alerts.shutdown().await;
        }
        self.history.close();
    }
}

impl super::Service {
    /// The alerts, unless their outbox could not be opened.
    pub fn alerts(&self) -> Option<&Alerts> {
        self.stores.alerts.as_ref()
    }

    /// The check history, or why there is none.
    pub fn history(&self) -> Result<&History, HistoryUnavailable> {
        self.stores.history.get()
    }
}

/// The history a service keeps, or why it keeps none.
pub enum HistoryState {
    Open(History),
    /// `history.enabled: false` in the config.
    Disabled,
    /// The file could not be opened; the message names it and says what to
    /// do. Checks go on; nothing is recorded until a restart.
    Failed(String),
}

impl HistoryState {
    /// Opens the history in `dir` as the config asks. Never fails: a file
    /// that cannot be used is logged and kept as [`HistoryState::Failed`].
    pub fn open(config: &HistoryConfig, dir: &Path) -> HistoryState {
        let HistoryConfig {
            enabled,
            raw_retention,
            rollup_retention,
        } = config;
        if !enabled {
            return HistoryState::Disabled;
        }
        let options = HistoryOptions {
            raw_retention: *raw_retention,
            rollup_retention: *rollup_retention,
            ..HistoryOptions::new(dir.join(HISTORY_FILE))
        };
        match History::open(options) {
            Ok(history) => HistoryState::Open(history),
            Err(e) => {
                tracing::error!("{e}; checks go on without a history");
                HistoryState::Failed(e.to_string())
            }
        }
    }

    pub fn get(&self) -> Result<&History, HistoryUnavailable> {
        match self {
            HistoryState::Open(history) => Ok(history),
            HistoryState::Disabled => Err(HistoryUnavailable::Disabled),
            HistoryState::Failed(message) => Err(HistoryUnavailable::Failed(message.clone())),
        }
    }

    /// The observer that records every check, when there is a history.
    pub fn observer(&self) -> Option<Arc<dyn CheckObserver>> {
        match self {
            HistoryState::Open(history) => Some(history_feed(history)),
            _ => None,
        }
    }

    /// Writes what is queued and stops the writer.
    pub fn close(&self) {
        if let HistoryState::Open(history) = self {
            history.close();
        }
    }
}

/// Why there is no history to ask.
#[derive(Debug, Clone, thiserror::Error)]
pub enum HistoryUnavailable {
    #[error("the check history is turned off (`history.enabled: false` in the config)")]
    Disabled,
    #[error("the check history is unavailable: {0}")]
    Failed(String),
}

/// The observer that hands each check to `history`'s queue (what a
/// recording service attaches; public for the bench).
pub fn history_feed(history: &History) -> Arc<dyn CheckObserver> {
    Arc::new(HistoryFeed(history.clone()))
}

/// Hands each check to the history's queue.
struct HistoryFeed(History);

impl CheckObserver for HistoryFeed {
    fn checked(&self, check: &Checked<'_>) {
        let Checked {
            id,
            name: _,
            connector_type: _,
            tags: _,
            status,
            message,
            details: _,
            failure,
            latency,
            checked_at,
            reported,
            previous: _,
            since: _,
            message_changed,
        } = check;
        self.0.record(Point {
            connector: Arc::clone(id),
            at: *checked_at,
            status: to_history(*status),
            reported: to_history(*reported),
            latency: *latency,
            failure: failure.map(|f| f.as_str()),
            message: message_changed.then(|| message.to_string()),
        });
    }
}

pub fn to_history(status: HealthStatus) -> Status {
    match status {
        HealthStatus::Healthy => Status::Healthy,
        HealthStatus::Degraded => Status::Degraded,
        HealthStatus::Unhealthy => Status::Unhealthy,
        HealthStatus::Unavailable => Status::Unavailable,
        HealthStatus::Unknown => Status::Unknown,
    }
}

/// Which of a connector's recorded checks to answer with.
#[derive(Debug, Clone, Copy, Default)]
pub struct HistoryRange {
    /// Default: `until` minus an hour for raw points, minus 24 steps for
    /// rollups.
    pub since: Option<SystemTime>,
    /// Default: now.
    pub until: Option<SystemTime>,
    /// `None`: raw points; else rollups of this length (whole hours).
    pub step: Option<Duration>,
    /// Raw points at most (default [`DEFAULT_POINTS`], capped at
    /// [`MAX_POINTS`]).
    pub limit: Option<usize>,
}

/// Raw points answered when the caller names no limit.
pub const DEFAULT_POINTS: usize = 1000;
/// The most raw points one answer carries.
pub const MAX_POINTS: usize = 10_000;

/// A history answer: the range it covers and what was found in it.
#[derive(Debug, Clone)]
pub struct HistoryAnswer {
    pub since: SystemTime,
    pub until: SystemTime,
    pub found: Found,
}

#[derive(Debug, Clone)]
pub enum Found {
    Points(Vec<StoredPoint>),
    Rollups(Vec<Rollup>),
}

/// Why a history question got no answer.
#[derive(Debug, thiserror::Error)]
pub enum HistoryQueryError {
    #[error("no connector with id `{0}`")]
    NotFound(String),
    #[error(transparent)]
    Unavailable(#[from] HistoryUnavailable),
    /// The range or step does not make sense; the message says why.
    #[error("{0}")]
    BadRange(String),
    /// The store failed (logged by the caller; may name the file).
    #[error(transparent)]
    Failed(HistoryError),
    #[error("the history query's thread failed: {0}")]
    Thread(String),
}

impl From<HistoryError> for HistoryQueryError {
    fn from(error: HistoryError) -> Self {
        match error {
            HistoryError::BadRange(message) => HistoryQueryError::BadRange(message),
            other => HistoryQueryError::Failed(other),
        }
    }
}

impl super::Service {
    /// One connector's checks recorded on this node, read on a blocking
    /// thread: the answer to another node's read.
    pub async fn history_here(
        &self,
        id: &str,
        range: HistoryRange,
    ) -> Result<HistoryAnswer, HistoryQueryError> {
        const HOUR: Duration = Duration::from_secs(3600);
        self.runtime
            .get(id)
            .map_err(|e| HistoryQueryError::NotFound(e.0))?;
        let history = self.history()?.clone();
        let HistoryRange {
            since,
            until,
            step,
            limit,
        } = range;
        let until = until.unwrap_or_else(SystemTime::now);
        let since = since.unwrap_or_else(|| {
            until
                .checked_sub(step.map_or(HOUR, |s| s.saturating_mul(24)))
                .unwrap_or(SystemTime::UNIX_EPOCH)
        });
        if since > until {
            return Err(HistoryQueryError::BadRange(
                "`since` is after `until`".into(),
            ));
        }
        let id = id.to_string();
        let found = tokio::task::spawn_blocking(move || match step {
            None => {
                let limit = limit.unwrap_or(DEFAULT_POINTS).clamp(1, MAX_POINTS);
                history.points(&id, since, until, limit).map(Found::Points)
            }
            Some(step) => history.rollups(&id, since, until, step).map(Found::Rollups),
        })
        .await
        .map_err(|e| HistoryQueryError::Thread(e.to_string()))??;
        Ok(HistoryAnswer {
            since,
            until,
            found,
        })
    }
}
