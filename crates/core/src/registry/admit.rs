//! Admission: a registration that would take the node past its instance
//! limit (or the kernel's limit on memory mappings) or its memory budget
//! (each connector's memory limit plus what the host holds for it) is
//! refused, naming the figures and the key that would make it fit. Only
//! the connectors that run here count: in cluster mode, those this node
//! owns (see `ownership`).

use std::collections::BTreeMap;
use std::sync::Arc;

use sandport_config::ConnectorConfig;

use super::{Entry, RegisterError, Runtime};
use crate::sandbox::mappings;

/// What the host holds for one enabled connector besides its guest's
/// linear memory, which its `sandbox.memory_limit` bounds: at most 57 KiB
/// in the bench's part 4 (an `http` connector checked every 10 s or more
/// often, which keeps its connection warm: 85 KiB of RSS, 28 of them
/// linear memory), about 25 KiB checked less often. The memory budget
/// counts it beside each connector's limit, so that the budget bounds what
/// the node can hold.
pub(crate) const HOST_MEMORY_PER_CONNECTOR: u64 = 64 << 10;

/// The most enabled connectors the node runs, and what sets it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct InstanceLimit {
    pub(super) max: usize,
    /// `vm.max_map_count`, when the kernel's limit on memory mappings is
    /// lower than the configured limit and so sets it instead.
    max_map_count: Option<usize>,
}

impl InstanceLimit {
    pub(super) fn new(configured: usize, max_map_count: Option<usize>) -> Self {
        let fits = max_map_count.map(|count| (count, mappings::instances_within(count)));
        match fits {
            Some((count, fits)) if fits < configured => InstanceLimit {
                max: fits,
                max_map_count: Some(count),
            },
            _ => InstanceLimit {
                max: configured,
                max_map_count: None,
            },
        }
    }

    /// Why one more instance is refused, with `instances` running.
    pub(super) fn refusal(&self, instances: usize) -> String {
        match self.max_map_count {
            None => format!(
                "the node runs {instances} of at most {} connector instances",
                self.max
            ),
            Some(count) => format!(
                "the node runs {instances} connector instances, as many as the kernel's limit on memory mappings leaves room for (vm.max_map_count = {count}, {} per instance); raise it (e.g. `sysctl -w vm.max_map_count=262144`) to run more",
                mappings::PER_INSTANCE
            ),
        }
    }
}

/// What the enabled connectors that run here (owned and admitted) hold of
/// the node's budgets. A connector another node owns holds no instance
/// here, so it counts for nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Usage {
    instances: usize,
    memory: u64,
}

impl Usage {
    /// Of the connectors that run here, but the one with id `except` (the
    /// one an update replaces).
    pub(super) fn of(connectors: &BTreeMap<String, Arc<Entry>>, except: Option<&str>) -> Usage {
        let mut usage = Usage::default();
        for entry in connectors.values() {
            if Some(entry.config.id.as_str()) != except && entry.runs_here() {
                usage.add(&entry.config);
            }
        }
        usage
    }

    /// Counts `config` as running here too.
    pub(super) fn add(&mut self, config: &ConnectorConfig) {
        if config.enabled {
            self.instances += 1;
            self.memory = self.memory.saturating_add(held(config));
        }
    }
}

/// What the memory budget counts for one enabled connector.
fn held(config: &ConnectorConfig) -> u64 {
    config
        .sandbox
        .memory_limit
        .saturating_add(HOST_MEMORY_PER_CONNECTOR)
}

impl Runtime {
    /// Refuses `config` if running it (in place of the connector with id
    /// `replacing`) would pass the node's instance or memory budget. One
    /// this node does not own is not run here, so it always fits.
    pub(super) fn admit(
        &self,
        connectors: &BTreeMap<String, Arc<Entry>>,
        config: &ConnectorConfig,
        replacing: Option<&str>,
    ) -> Result<(), RegisterError> {
        if !config.enabled || !self.owns(&config.id) {
            return Ok(());
        }
        self.fits(&Usage::of(connectors, replacing), config)
    }

    /// Refuses `config` if running it beside `usage` would pass the node's
    /// instance or memory budget.
    pub(super) fn fits(
        &self,
        usage: &Usage,
        config: &ConnectorConfig,
    ) -> Result<(), RegisterError> {
        if !config.enabled {
            return Ok(());
        }
        let options = &self.inner.options;
        let refuse = |key, message: String| {
            Err(RegisterError::ResourceExhausted {
                id: config.id.clone(),
                message,
                key,
            })
        };
        if usage.instances + 1 > self.inner.instance_limit.max {
            // No key of the entry changes the count but `enabled` itself.
            return refuse("", self.inner.instance_limit.refusal(usage.instances));
        }
        if let Some(budget) = options.memory_budget {
            let used = usage.memory;
            if used.saturating_add(held(config)) > budget {
                return refuse(
                    "sandbox.memory_limit",
                    format!(
                        "its memory limit of {} (and {} the host holds for each connector) does not fit: {} of the node's {} memory budget is taken",
                        sandport_config::format_size(config.sandbox.memory_limit),
                        sandport_config::format_size(HOST_MEMORY_PER_CONNECTOR),
                        sandport_config::format_size(used),
                        sandport_config::format_size(budget)
                    ),
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernels_mapping_limit_lowers_the_instance_limit_and_says_how_to_raise_it() {
        let configured = InstanceLimit::new(20_000, None);
        assert_eq!(configured.max, 20_000);
        assert_eq!(
            configured.refusal(20_000),
            "the node runs 20000 of at most 20000 connector instances"
        );
        // A raised kernel limit leaves the configured one in charge.
        assert_eq!(InstanceLimit::new(20_000, Some(262_144)), configured);

        let mapped = InstanceLimit::new(20_000, Some(65_530));
        assert_eq!(mapped.max, mappings::instances_within(65_530));
        assert!(mapped.max >= 10_000, "{mapped:?}");
        let message = mapped.refusal(mapped.max);
        assert!(message.contains("vm.max_map_count = 65530"), "{message}");
        assert!(message.contains("sysctl -w vm.max_map_count="), "{message}");
    }
}
