//! What the checks found, kept and told: the check history (an embedded
//! SQLite file in the data directory, `sandport-history`) and the alerts
//! (`sandport-alerts`), each fed by an observer of the runtime's checks.
//!
//! Neither may slow a check: the observers only queue. Neither may stop the
//! service: a history file that cannot be used is reported (log, API,
//! metric) and the checks go on without it.

use std::path::Path;
use std::sync::Arc;

use sandport_config::HistoryConfig;
use sandport_history::{History, HistoryOptions, Point, Status};

use crate::health::HealthStatus;
use crate::observe::{CheckObserver, Checked};

/// The history file's name in the data directory.
pub const HISTORY_FILE: &str = "history.db";

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
            HistoryState::Open(history) => Some(Arc::new(HistoryFeed(history.clone()))),
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
