//! The process's memory allocator, as the service runs it.
//!
//! glibc's malloc gives each thread that contends for it an arena of its
//! own, up to eight per core. A connector's long-lived state is allocated by
//! whichever worker registered it and its temporaries by whichever worker
//! ran a call, so with many arenas each one keeps free holes of its own:
//! with 3,000 idle `http` connectors the heap held about 29 KiB per
//! connector for 19 KiB in use. Two arenas keep the threads from queueing on
//! one lock (each thread also has its own cache) and bring that to about
//! 21 KiB (docs/performance.md, "Memory (part 4)").
//!
//! A scheduling runtime also holds a [`Trimmer`], which gives malloc's free
//! pages back to the kernel every few seconds.
//!
//! Unsafe code: two calls into the C library: `mallopt`, made before other
//! threads allocate, and `malloc_trim`.
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

/// A thread that gives malloc's free pages back to the kernel now and then
/// (glibc's `malloc_trim`), for as long as it is held.
///
/// glibc returns freed memory to the kernel only from the top of a heap; a
/// page freed in the middle stays resident until the process trims. A
/// service's checks free a connection's buffers and a call's temporaries
/// after every check, among long-lived data, so without trimming the heap
/// keeps what its busiest moment needed. At 10,000 `http` connectors
/// checked every 30 s, trimming every 10 s took the steady state from 52.2
/// to 50.7 KiB per connector (the heap 24.6 -> 22.9 KiB for 20.6 in use).
pub struct Trimmer {
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    trims: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Trimmer {
    /// Trims every `every`; `None` where there is nothing to trim (another C
    /// library or allocator) or no thread could be started.
    pub fn start(every: std::time::Duration) -> Option<Trimmer> {
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        {
            let (stop, stopped) = std::sync::mpsc::channel::<()>();
            let trims = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
            let counted = trims.clone();
            let spawned = std::thread::Builder::new()
                .name("sandport-trim".into())
                .spawn(move || {
                    while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                        stopped.recv_timeout(every)
                    {
                        let started = std::time::Instant::now();
                        // SAFETY: malloc_trim takes malloc's own locks; it
                        // only gives back pages no allocation holds.
                        unsafe { libc::malloc_trim(0) };
                        counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        tracing::debug!(took = ?started.elapsed(), "trimmed the heap");
                    }
                });
            match spawned {
                Ok(thread) => Some(Trimmer {
                    stop: Some(stop),
                    thread: Some(thread),
                    trims,
                }),
                Err(e) => {
                    tracing::warn!("cannot start the heap-trimming thread: {e}");
                    None
                }
            }
        }
        #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
        {
            let _ = every;
            None
        }
    }

    /// How many times it has trimmed.
    pub fn trims(&self) -> u64 {
        self.trims.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Drop for Trimmer {
    fn drop(&mut self) {
        // Hanging up wakes the thread at once; a trim under way takes
        // milliseconds.
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(all(test, target_os = "linux", target_env = "gnu"))]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn a_trimmer_trims_until_it_is_dropped() {
        let trimmer = Trimmer::start(Duration::from_millis(1)).expect("a trimmer on glibc");
        let deadline = Instant::now() + Duration::from_secs(10);
        while trimmer.trims() < 3 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(trimmer.trims() >= 3, "it trimmed {} times", trimmer.trims());
        // Dropping joins the thread: a trimmer that did not stop would
        // hang here.
        drop(trimmer);
    }
}
