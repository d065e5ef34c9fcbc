//! Who hears of every check besides the health cache: the history store and
//! the alerts, which the binary wires in through [`RuntimeOptions`]
//! (`observers`). The runtime knows them only as [`CheckObserver`]s.
//!
//! [`RuntimeOptions`]: crate::RuntimeOptions

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use sandport_config::ConnectorType;

use crate::health::{FailureKind, HealthStatus};

/// Told of each check as it is recorded. Called on the check path of every
/// connector, with that connector's health lock held: an implementation
/// must not block or wait (hand the record to a queue and return).
pub trait CheckObserver: Send + Sync + 'static {
    fn checked(&self, check: &Checked<'_>);
}

/// One recorded check, with the connector it belongs to.
#[non_exhaustive]
pub struct Checked<'a> {
    /// The connector's id, shared so that a queue can keep it without a copy.
    pub id: &'a Arc<str>,
    /// The name the component gives itself.
    pub name: &'a str,
    pub connector_type: ConnectorType,
    pub tags: &'a [String],
    /// What this check found (before the thresholds).
    pub status: HealthStatus,
    pub message: &'a str,
    pub details: &'a [(String, String)],
    pub failure: Option<&'a FailureKind>,
    pub latency: Duration,
    pub checked_at: SystemTime,
    /// The status reported after this check (see [`crate::HealthSnapshot`]).
    pub reported: HealthStatus,
    /// The status reported before it.
    pub previous: HealthStatus,
    /// When the reported status began.
    pub since: SystemTime,
    /// Whether the check's status or message differs from the previous
    /// check's, so that a store can keep each message once per change.
    pub message_changed: bool,
}

/// The observers of a runtime (none by default).
#[derive(Clone, Default)]
pub struct Observers(Vec<Arc<dyn CheckObserver>>);

impl Observers {
    pub fn new(observers: Vec<Arc<dyn CheckObserver>>) -> Self {
        Observers(observers)
    }

    pub fn push(&mut self, observer: Arc<dyn CheckObserver>) {
        self.0.push(observer);
    }

    pub(crate) fn tell(&self, check: &Checked<'_>) {
        for observer in &self.0 {
            observer.checked(check);
        }
    }
}

impl fmt::Debug for Observers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Observers({})", self.0.len())
    }
}
