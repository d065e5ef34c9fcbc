//! The registry as the metrics collector reads it at a scrape.

use std::sync::Arc;

use super::{Entry, Inner, lock};
use crate::metrics::{ConnectorView, NodeCounters, Source};

impl Source for Inner {
    fn with_connectors(
        &self,
        f: &mut dyn FnMut(&[ConnectorView<'_>]) -> std::fmt::Result,
    ) -> std::fmt::Result {
        // Copied out so that no check or registration waits on a scrape.
        let entries: Vec<Arc<Entry>> = self
            .connectors
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .values()
            .cloned()
            .collect();
        let views: Vec<ConnectorView<'_>> = entries
            .iter()
            .map(|entry| ConnectorView {
                id: &entry.config.id,
                connector_type: entry.info.connector_type.as_str(),
                status: lock(&entry.health).status,
                enabled: entry.config.enabled,
                counters: &entry.counters,
            })
            .collect();
        f(&views)
    }

    fn node(&self) -> &NodeCounters {
        &self.node
    }

    fn compile_cache(&self) -> (u64, u64) {
        let as_u64 = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
        (
            as_u64(self.sandbox.cache_hits()),
            as_u64(self.sandbox.compiles()),
        )
    }
}
