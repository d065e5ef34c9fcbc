//! The Unix side of `stack`: each fiber stack an anonymous mapping of its
//! own, made and given back with mmap, mprotect and madvise.
#![allow(unsafe_code)]

use std::ops::Range;
use std::sync::Arc;

use wasmtime::{StackCreator, StackMemory};

use super::{CREATED, StackHandle};

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
pub(super) struct Mapping {
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

    pub(super) fn usable(&self) -> Range<usize> {
        self.base + self.guard..self.base + self.len
    }

    pub(super) fn release(&self) {
        let usable = self.usable();
        // SAFETY: the range is inside this mapping, and no fiber runs on it
        // (see `StackHandle::release`): discarding its contents is what a
        // new stack would look like.
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

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: the mapping was made by `Mapping::new` and nothing uses it
        // any more: wasmtime's `Stack` and every handle are gone.
        unsafe { libc::munmap(self.base as *mut libc::c_void, self.len) };
    }
}

#[cfg(test)]
pub(super) use tests::resident;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::stack::capture;

    /// Resident pages of `range` (mincore).
    pub(crate) fn resident(range: Range<usize>) -> usize {
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
