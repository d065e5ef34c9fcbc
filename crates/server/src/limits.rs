//! What one API call may cost: message and body sizes, time, and how many
//! calls run at once.
//!
//! Calls past the concurrency limit are shed at once (gRPC
//! `RESOURCE_EXHAUSTED`, HTTP `429` with `Retry-After`) rather than queued:
//! a queue would only turn an overload into timeouts for everyone. The
//! probes (`/healthz`, `/readyz`, `grpc.health.v1`) are never shed, so a
//! busy node is not mistaken for a dead one.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The limits of the API, shared by gRPC and REST.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The largest gRPC message decoded or encoded.
    pub max_message_size: usize,
    /// The largest REST request body. Routes that take uploads set their
    /// own, larger cap ([`Limits::max_upload_size`]).
    pub max_body_size: usize,
    /// The body cap of upload routes (none exist yet).
    pub max_upload_size: usize,
    /// How long one call may take, streams (WatchHealth) excepted: their
    /// answer starts at once and runs until the client leaves.
    pub request_timeout: Duration,
    /// Calls in flight over both APIs, probes excepted.
    pub max_concurrent_requests: usize,
}

/// Defaults: roomy for any entry and list, small enough that a client
/// cannot make the API hold much.
impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_size: 4 << 20,
            max_body_size: 1 << 20,
            max_upload_size: 256 << 20,
            request_timeout: Duration::from_secs(30),
            max_concurrent_requests: 512,
        }
    }
}

/// Seconds a shed client is told to wait.
pub const RETRY_AFTER_SECS: u64 = 1;

/// The gate every call but the probes passes.
#[derive(Debug, Clone)]
pub struct Shed {
    permits: Arc<Semaphore>,
}

impl Shed {
    pub fn new(max: usize) -> Shed {
        Shed {
            permits: Arc::new(Semaphore::new(max.max(1))),
        }
    }

    /// A permit held for the call, or `None` when the node is at its limit.
    pub fn try_enter(&self) -> Option<OwnedSemaphorePermit> {
        self.permits.clone().try_acquire_owned().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn past_the_limit_calls_are_shed_until_one_finishes() {
        let shed = Shed::new(2);
        let first = shed.try_enter().expect("one");
        let _second = shed.try_enter().expect("two");
        assert!(shed.try_enter().is_none());
        drop(first);
        assert!(shed.try_enter().is_some());
    }
}
