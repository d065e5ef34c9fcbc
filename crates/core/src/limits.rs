//! The process's file-descriptor limit: raised to its hard limit once at
//! start, and the share of it guests may hold as sockets.
//!
//! Under systemd's default soft `RLIMIT_NOFILE` of 1,024 a few guests
//! holding TCP connections can leave the API and the host's HTTP clients
//! without descriptors (`Too many open files`). The service raises its soft
//! limit to the hard one, and the runtime caps guest sockets node-wide at
//! [`guest_socket_budget`] of what the limit turned out to be.

/// The soft `RLIMIT_NOFILE` before and after [`raise_fd_limit`], and the
/// hard limit. `None` stands for no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FdLimits {
    pub before: Option<u64>,
    pub soft: Option<u64>,
    pub hard: Option<u64>,
    /// Why the soft limit could not be raised, if it could not.
    pub error: Option<FdLimitError>,
}

/// Why [`raise_fd_limit`] left the soft limit where it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FdLimitError {
    #[error("setrlimit(RLIMIT_NOFILE) failed: errno {0}")]
    Set(i32),
    #[error("file-descriptor limits are not supported on this platform")]
    Unsupported,
}

/// Descriptors kept out of the guests' budget for the API's connections,
/// the host's HTTP pools, compiled-code files and the state file.
pub const FD_RESERVE: u64 = 256;

/// Raises the soft `RLIMIT_NOFILE` to the hard limit and logs both. Called
/// once, at service start, before any connector is loaded.
pub fn raise_fd_limit() -> FdLimits {
    let limits = raise();
    match limits.error {
        None => tracing::info!(
            before = %show(limits.before),
            soft = %show(limits.soft),
            hard = %show(limits.hard),
            "file-descriptor limit (RLIMIT_NOFILE)"
        ),
        Some(error) => tracing::warn!(
            soft = %show(limits.soft),
            hard = %show(limits.hard),
            %error,
            "cannot raise the file-descriptor limit; guests get a share of the current one"
        ),
    }
    limits
}

/// Linux's default `fs.nr_open`: the soft limit asked for under an
/// unlimited hard one.
#[cfg(unix)]
const NR_OPEN_DEFAULT: u64 = 1 << 20;

#[cfg(unix)]
fn raise() -> FdLimits {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let now = getrlimit(Resource::Nofile);
    let mut limits = FdLimits {
        before: now.current,
        soft: now.current,
        hard: now.maximum,
        error: None,
    };
    if now.current == now.maximum {
        return limits;
    }
    // No kernel takes an unlimited soft limit for descriptors (Linux caps
    // it at `fs.nr_open`, 1,048,576 by default); a finite hard one is the
    // most that can be asked for.
    let target = Some(now.maximum.unwrap_or(NR_OPEN_DEFAULT));
    if target == now.current {
        return limits;
    }
    match setrlimit(
        Resource::Nofile,
        Rlimit {
            current: target,
            maximum: now.maximum,
        },
    ) {
        Ok(()) => limits.soft = getrlimit(Resource::Nofile).current,
        Err(errno) => limits.error = Some(FdLimitError::Set(errno.raw_os_error())),
    }
    limits
}

#[cfg(not(unix))]
fn raise() -> FdLimits {
    FdLimits {
        before: None,
        soft: None,
        hard: None,
        error: Some(FdLimitError::Unsupported),
    }
}

/// The soft `RLIMIT_NOFILE` now; `None` for no limit (or none known).
pub fn current_fd_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        rustix::process::getrlimit(rustix::process::Resource::Nofile).current
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// Sockets all guests together may hold under a soft limit of `limit`
/// descriptors: half of it, and never more than all but [`FD_RESERVE`],
/// so that the API and the host's own HTTP clients always have room. No
/// limit gives a budget of a million, well under any kernel's.
pub fn guest_socket_budget(limit: Option<u64>) -> usize {
    let limit = limit.unwrap_or(2 << 20);
    let budget = (limit / 2).min(limit.saturating_sub(FD_RESERVE));
    usize::try_from(budget).unwrap_or(usize::MAX)
}

fn show(limit: Option<u64>) -> String {
    limit.map_or_else(|| "unlimited".to_string(), |n| n.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guest_budget_leaves_the_reserve_and_half_the_limit_to_the_host() {
        assert_eq!(guest_socket_budget(Some(1024)), 512);
        assert_eq!(guest_socket_budget(Some(512)), 256);
        assert_eq!(guest_socket_budget(Some(300)), 44);
        assert_eq!(guest_socket_budget(Some(100)), 0);
        assert_eq!(guest_socket_budget(Some(1 << 20)), 1 << 19);
        assert_eq!(guest_socket_budget(None), 1 << 20);
    }

    #[cfg(unix)]
    #[test]
    fn raising_ends_at_the_hard_limit_and_says_where_it_started() {
        let limits = raise_fd_limit();
        assert!(limits.error.is_none(), "{limits:?}");
        assert!(
            limits.soft == limits.hard || limits.hard.is_none(),
            "{limits:?}"
        );
        assert_eq!(current_fd_limit(), limits.soft);
        assert!(limits.before <= limits.soft || limits.soft.is_none());
    }
}
