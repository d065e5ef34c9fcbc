//! The tests' etcd (the crate's `testing` module: a real member on free
//! loopback ports, killed when dropped) and a poll for a condition.

use std::time::{Duration, Instant};

pub use sandport_cluster::testing::Etcd;

/// Polls `condition` every 20 ms until it holds or `timeout` passes.
pub async fn eventually(timeout: Duration, mut condition: impl AsyncFnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if condition().await {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
