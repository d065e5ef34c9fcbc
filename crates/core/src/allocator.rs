//! The process's memory allocator, as the service runs it.
//!
//! glibc's malloc gives each thread that contends for it an arena of its
//! own, up to eight per core. A connector's long-lived state is allocated by
//! whichever worker registered it and its temporaries by whichever worker
//! ran a call, so with many arenas each one keeps free holes of its own:
//! with 3,000 idle `http` connectors the heap held about 29 KiB per
//! connector for 19 KiB in use. Two arenas keep the threads from queueing on
//! one lock (each thread also has its own cache) and bring that to about
//! 21 KiB, at a few per cent of checks per second (docs/performance.md).
//!
//! Unsafe code: one call into the C library, made before other threads
//! allocate.
#![allow(unsafe_code)]

/// The arenas glibc may create.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const ARENAS: i32 = 2;

/// Limits glibc's malloc to two arenas (`ARENAS`), unless the operator chose a
/// limit (`MALLOC_ARENA_MAX`, or `glibc.malloc.arena_max` in
/// `GLIBC_TUNABLES`). Call it first thing in `main`. Does nothing with
/// another C library or allocator.
pub fn limit_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let chosen = std::env::var_os("MALLOC_ARENA_MAX").is_some()
            || std::env::var("GLIBC_TUNABLES").is_ok_and(|t| t.contains("arena_max"));
        if !chosen {
            // SAFETY: mallopt only changes malloc's own parameters; it takes
            // malloc's lock and is safe to call at any time.
            unsafe { libc::mallopt(libc::M_ARENA_MAX, ARENAS) };
        }
    }
}
