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
}
