//! How many instances fit under the kernel's limit on one process's memory
//! mappings (`vm.max_map_count` on Linux, 65,530 by default).
//!
//! Each live instance holds a few mappings of its own, so that limit, not
//! memory, is what ends a node's capacity first on a default Linux: past
//! it, every new instance fails with "Cannot allocate memory". The registry
//! turns it into an instance limit it can name in its refusals.

/// Mappings one live instance holds at most: its linear memory (the part in
/// use and the rest of its reservation) and its fiber stack (the stack and
/// its guard page). The sandbox's memory layout is chosen to keep this low;
/// a test holds it to this figure.
pub const PER_INSTANCE: usize = 4;

/// Mappings kept for the rest of the process: its libraries and thread
/// stacks, malloc's arenas and the compiled components.
const HEADROOM: usize = 2_000;

/// The kernel's limit on this process's memory mappings, where there is one
/// to read.
pub fn max_map_count() -> Option<usize> {
    if !cfg!(target_os = "linux") {
        return None;
    }
    #[allow(
        clippy::disallowed_methods,
        reason = "a one-line file of the kernel's, not a path from outside"
    )]
    std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// How many instances fit under a limit of `max_map_count` mappings.
pub fn instances_within(max_map_count: usize) -> usize {
    max_map_count.saturating_sub(HEADROOM) / PER_INSTANCE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_limit_fits_ten_thousand_instances_and_a_raised_one_more() {
        assert_eq!(instances_within(65_530), 15_882);
        assert_eq!(instances_within(262_144), 65_036);
        assert_eq!(instances_within(100), 0);
    }
}
