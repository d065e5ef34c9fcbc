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
//! The mappings are Unix's (`unix`). Elsewhere the engine keeps its own
//! stacks: [`capture`] finds none and an instance has nothing to give back,
//! so callers need no platform switches of their own.
//!
//! Unsafe code, all in `unix`: the mapping calls, and wasmtime's contract
//! for a stack (a page-aligned, zeroed range with a guard page below, valid
//! while wasmtime holds it). Each block says why it holds.

use std::cell::RefCell;
use std::sync::Arc;

#[cfg(unix)]
mod unix;

#[cfg(unix)]
use unix::Mapping;
#[cfg(unix)]
pub(crate) use unix::Stacks;

/// Never made off Unix, where no [`StackHandle`] is ever created.
#[cfg(not(unix))]
enum Mapping {}

#[cfg(not(unix))]
impl Mapping {
    fn release(&self) {
        match *self {}
    }
}

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

/// One store's stack, as the store's owner holds it.
pub(crate) struct StackHandle(Arc<Mapping>);

impl StackHandle {
    /// Gives the stack's resident pages back to the kernel.
    ///
    /// Only for a store that no call is running in (its owner holds it
    /// mutably); wasmtime keeps nothing on the stack between calls.
    pub(crate) fn release(&self) {
        self.0.release();
    }
}

#[cfg(all(test, unix))]
impl StackHandle {
    pub(crate) fn resident_pages(&self) -> usize {
        unix::resident(self.0.usable())
    }
}
