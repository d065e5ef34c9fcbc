//! Fiber stacks that an idle instance gives back to the kernel.
//!
//! wasmtime runs every call into a guest on a fiber with a stack of its own
//! (2 MiB of address space), and each store keeps its stack from call to
//! call. Only the pages a call touched are resident, but they stay so: 4 KiB
//! after a connector's start, 12 KiB after a check, for every connector, for
//! as long as it lives. wasmtime has no call that releases a store's stack,
//! so the sandbox maps the stacks itself ([`Stacks`], installed with
//! `Config::with_host_stack`) and keeps a [`StackHandle`] to each store's
//! stack, with which the store's owner gives the pages back
//! (`madvise(MADV_DONTNEED)`) when no call is running. The next call starts
//! on zeroed pages, as on a fresh stack.
//!
//! A store's stack is created at its first call; [`capture`] runs that call
//! and hands back the handle of the stack created in it.
//!
//! Unsafe code: the mapping calls, and wasmtime's contract for a stack (a
//! page-aligned, zeroed range with a guard page below, valid while wasmtime
//! holds it). Each block says why it holds.
#![allow(unsafe_code)]

use std::cell::RefCell;
use std::ops::Range;
use std::sync::Arc;

use wasmtime::{StackCreator, StackMemory};

tokio::task_local! {
    /// Where [`Stacks::new_stack`] leaves the handle of a stack it creates
    /// while [`capture`] runs.
    static CREATED: RefCell<Option<StackHandle>>;
}

/// Runs `call` and returns, besides its output, the handle of the stack
/// wasmtime created for it, if it created one.
pub(crate) async fn capture<F: Future>(call: F) -> (F::Output, Option<StackHandle>) {
    CREATED
        .scope(RefCell::new(None), async {
            let output = call.await;
            let created = CREATED.with(RefCell::take);
            (output, created)
        })
        .await
}

/// The engine's stack creator: each stack is its own mapping, with a guard
/// page below it, as wasmtime maps its own.
pub(crate) struct Stacks;

// SAFETY: every stack is a fresh anonymous mapping, page-aligned, zeroed,
// with an inaccessible guard page below it, unmapped only when both
// wasmtime's `StackMemory` and every `StackHandle` to it are dropped.
unsafe impl StackCreator for Stacks {
    fn new_stack(&self, size: usize, _zeroed: bool) -> wasmtime::Result<Box<dyn StackMemory>> {
        // A fresh mapping is zeroed whether or not wasmtime asks for it.
        let mapping = Arc::new(Mapping::new(size)?);
        let _ = CREATED.try_with(|slot| slot.replace(Some(StackHandle(mapping.clone()))));
        Ok(Box::new(Stack(mapping)))
    }
}

/// One store's stack, as the store's owner holds it.
pub(crate) struct StackHandle(Arc<Mapping>);

impl StackHandle {
    /// Gives the stack's resident pages back to the kernel.
    ///
    /// Only for a store that no call is running in (its owner holds it
    /// mutably); wasmtime keeps nothing on the stack between calls.
    pub(crate) fn release(&self) {
        let usable = self.0.usable();
        // SAFETY: the range is inside the mapping, which this handle keeps
        // alive, and no fiber runs on it (see above): discarding its
        // contents is what a new stack would look like.
        let result = unsafe {
            libc::madvise(
                usable.start as *mut libc::c_void,
                usable.len(),
                libc::MADV_DONTNEED,
            )
        };
        if result != 0 {
            tracing::debug!(
                "cannot release a fiber stack: {}",
                std::io::Error::last_os_error()
            );
        }
    }
}

#[cfg(test)]
impl StackHandle {
    pub(crate) fn resident_pages(&self) -> usize {
        tests::resident(self.0.usable())
    }
}

struct Stack(Arc<Mapping>);

// SAFETY: see `Mapping`: the addresses stay valid while `self` lives.
unsafe impl StackMemory for Stack {
    fn top(&self) -> *mut u8 {
        self.0.usable().end as *mut u8
    }

    fn range(&self) -> Range<usize> {
        self.0.usable()
    }

    fn guard_range(&self) -> Range<*mut u8> {
        let start = self.0.base as *mut u8;
        start..start.wrapping_add(self.0.guard)
    }
}

/// An anonymous mapping: `guard` inaccessible bytes, then the stack.
struct Mapping {
    base: usize,
    len: usize,
    guard: usize,
}

impl Mapping {
    fn new(size: usize) -> wasmtime::Result<Mapping> {
        // SAFETY: sysconf has no preconditions.
        let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) })
            .ok()
            .filter(|page| page.is_power_of_two())
            .unwrap_or(4096);
        let size = size
            .max(1)
            .checked_next_multiple_of(page)
            .ok_or_else(|| wasmtime::format_err!("a fiber stack of {size} bytes is too large"))?;
        let len = size + page;
        // SAFETY: a new private anonymous mapping, touching no existing one.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(wasmtime::format_err!(
                "cannot map a fiber stack of {size} bytes: {}",
                std::io::Error::last_os_error()
            ));
        }
        let mapping = Mapping {
            base: base as usize,
            len,
            guard: page,
        };
        // SAFETY: the range lies inside the mapping just made.
        let result = unsafe {
            libc::mprotect(
                (mapping.base + page) as *mut libc::c_void,
                size,
                libc::PROT_READ | libc::PROT_WRITE,
            )
        };
        if result != 0 {
            return Err(wasmtime::format_err!(
                "cannot map a fiber stack of {size} bytes: {}",
                std::io::Error::last_os_error()
            ));
        }
        Ok(mapping)
    }

    fn usable(&self) -> Range<usize> {
        self.base + self.guard..self.base + self.len
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: the mapping was made by `Mapping::new` and nothing uses it
        // any more: wasmtime's `Stack` and every handle are gone.
        unsafe { libc::munmap(self.base as *mut libc::c_void, self.len) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Resident pages of `range` (mincore).
    pub(super) fn resident(range: Range<usize>) -> usize {
        let pages = range.len() / 4096;
        let mut flags = vec![0u8; pages];
        // SAFETY: the range is a live mapping; `flags` has a byte per page.
        let result = unsafe {
            libc::mincore(
                range.start as *mut libc::c_void,
                range.len(),
                flags.as_mut_ptr(),
            )
        };
        assert_eq!(result, 0, "mincore: {}", std::io::Error::last_os_error());
        flags.iter().filter(|flag| **flag & 1 == 1).count()
    }

    #[tokio::test]
    async fn a_released_stack_holds_no_pages_and_reads_as_zeroes() {
        let (stack, handle) = capture(async { Stacks.new_stack(64 * 1024, true) }).await;
        let stack = stack.expect("a stack");
        let handle = handle.expect("the handle of the stack created inside capture");
        let range = stack.range();
        assert_eq!(range.end, stack.top() as usize);
        assert_eq!(stack.guard_range().end as usize, range.start);
        assert_eq!(resident(range.clone()), 0, "a new stack holds no pages");

        let top_word = (range.end - 8) as *mut u64;
        // SAFETY: inside the stack's read-write range; nothing else uses it.
        unsafe { top_word.write(0xfeed) };
        assert_eq!(resident(range.clone()), 1);

        handle.release();
        assert_eq!(resident(range.clone()), 0, "released pages are gone");
        // SAFETY: as above.
        assert_eq!(
            unsafe { top_word.read() },
            0,
            "a released page reads as zeroes"
        );

        // The mapping lives while either side holds it.
        drop(stack);
        handle.release();
    }

    #[tokio::test]
    async fn stacks_created_outside_capture_are_not_handed_out() {
        let stack = Stacks.new_stack(4096, true).expect("a stack");
        let (_, handle) = capture(async {}).await;
        assert!(handle.is_none());
        assert_eq!(stack.range().len(), 4096);
    }
}
