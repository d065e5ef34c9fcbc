//! Constructors for [`HealthReport`].

use crate::{HealthReport, HealthStatus};

impl HealthReport {
    fn with_status(status: HealthStatus, message: impl Into<String>) -> Self {
        HealthReport {
            status,
            message: message.into(),
            details: Vec::new(),
        }
    }

    /// The target meets its success condition.
    pub fn healthy() -> Self {
        Self::with_status(HealthStatus::Healthy, "")
    }

    /// The target answers but reports a problem.
    pub fn degraded(message: impl Into<String>) -> Self {
        Self::with_status(HealthStatus::Degraded, message)
    }

    /// The target does not meet its success condition; say why.
    pub fn unhealthy(message: impl Into<String>) -> Self {
        Self::with_status(HealthStatus::Unhealthy, message)
    }

    /// Replaces the message.
    pub fn message(mut self, message: impl Into<String>) -> Self {
        self.message = message.into();
        self
    }

    /// Adds a detail shown to operators.
    pub fn detail(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.details.push((key.into(), value.into()));
        self
    }

    /// Adds a detail for each `(key, Some(value))` of `pairs`, in order;
    /// a pair whose value is `None` adds nothing. For fields an answer may
    /// or may not carry, e.g.
    /// `report.details_from(["version", "commit"].map(|key| (key, field(key))))`.
    pub fn details_from<K, V>(mut self, pairs: impl IntoIterator<Item = (K, Option<V>)>) -> Self
    where
        K: Into<String>,
        V: Into<String>,
    {
        for (key, value) in pairs {
            if let Some(value) = value {
                self = self.detail(key, value);
            }
        }
        self
    }
}
