//! The time one guest call may take, everything included.

use std::time::Duration;

use tokio::time::Instant;

/// A deadline plus the limit it came from, so that messages say "timed out
/// after 5s" (the configured limit) rather than whatever was left.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    pub deadline: Instant,
    pub limit: Duration,
}

impl Budget {
    pub fn new(limit: Duration) -> Self {
        Budget {
            deadline: Instant::now() + limit,
            limit,
        }
    }

    pub fn left(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    pub fn timed_out_message(&self) -> String {
        format!(
            "timed out after {}",
            crate::health::format_latency(self.limit)
        )
    }
}
