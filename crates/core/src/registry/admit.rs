//! Admission: a registration that would take the node past its instance
//! limit (or the kernel's limit on memory mappings) or its memory budget
//! (each connector's memory limit plus what the host holds for it) is
//! refused, naming the figures and the key that would make it fit.

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

impl Runtime {
    /// Refuses `config` if running it (in place of `replacing`) would pass
    /// the node's instance or memory budget.
    pub(super) fn admit(
        &self,
        connectors: &BTreeMap<String, Arc<Entry>>,
        config: &ConnectorConfig,
        replacing: Option<&ConnectorConfig>,
    ) -> Result<(), RegisterError> {
        if !config.enabled {
            return Ok(());
        }
        let enabled = || connectors.values().filter(|e| e.config.enabled);
        let freed = replacing.filter(|c| c.enabled);
        let instances = enabled().count() - usize::from(freed.is_some());
        let options = &self.inner.options;
        let refuse = |key, message: String| {
            Err(RegisterError::ResourceExhausted {
                id: config.id.clone(),
                message,
                key,
            })
        };
        if instances + 1 > self.inner.instance_limit.max {
            // No key of the entry changes the count but `enabled` itself.
            return refuse("", self.inner.instance_limit.refusal(instances));
        }
        if let Some(budget) = options.memory_budget {
            let held = |c: &ConnectorConfig| {
                c.sandbox
                    .memory_limit
                    .saturating_add(HOST_MEMORY_PER_CONNECTOR)
            };
            let used: u64 = enabled()
                .map(|e| held(&e.config))
                .fold(0u64, u64::saturating_add)
                .saturating_sub(freed.map_or(0, held));
            let wanted = held(config);
            if used.saturating_add(wanted) > budget {
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
