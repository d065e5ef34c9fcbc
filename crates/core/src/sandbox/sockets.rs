//! TCP sockets a guest may hold: at most `sandbox.max_sockets` per instance,
//! and at most the node's budget for all guests together (a share of the
//! process's descriptor limit, see [`crate::limits`]).
//!
//! wasi:sockets takes a descriptor when a socket is *created*, before any
//! address is known, so the count is kept there: `create-tcp-socket` is
//! shadowed in the linker by a version that asks for a place first and
//! refuses with `new-socket-limit` (an error the guest handles, never a
//! trap), and the `tcp-socket` destructor by one that gives the place back.
//! The streams of a connected socket are its children in the resource
//! table, so the socket (and its descriptor) cannot go before they do. An
//! instance that is dropped (after a trap, or when its connector goes)
//! closes all its sockets with its store, and gives back all its places
//! with its [`SocketQuota`].

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use wasmtime::StoreContextMut;
use wasmtime::component::{Linker, Resource, ResourceType};
use wasmtime_wasi::p2::TcpSocket;
use wasmtime_wasi::p2::bindings::sockets::network::{self, ErrorCode, IpAddressFamily};
use wasmtime_wasi::p2::bindings::sockets::{tcp, tcp_create_socket};
use wasmtime_wasi::sockets::WasiSocketsView;

/// The version of `wasi:sockets` the pinned wasmtime-wasi links (its
/// `src/p2/wit/deps/sockets.wit`). Guests built for any 0.2 version are
/// linked to it, and so to the hooks below; the e2e tests prove the hooks
/// are in place (`tests/e2e/resources.rs`).
const WASI_SOCKETS: &str = "0.2.12";

/// Sockets all guests of the node hold together, against its budget.
#[derive(Debug)]
pub struct NodeSockets {
    budget: usize,
    held: AtomicUsize,
}

impl NodeSockets {
    pub fn new(budget: usize) -> Arc<Self> {
        Arc::new(NodeSockets {
            budget,
            held: AtomicUsize::new(0),
        })
    }

    /// The most sockets all guests together may hold.
    pub fn budget(&self) -> usize {
        self.budget
    }

    /// Sockets all guests hold now.
    pub fn held(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }

    fn take(&self) -> bool {
        self.held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                (held < self.budget).then_some(held + 1)
            })
            .is_ok()
    }

    fn give(&self, count: usize) {
        // Only what was taken is given back, so this never wraps; saturate
        // anyway rather than trust that.
        let _ = self
            .held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                Some(held.saturating_sub(count))
            });
    }
}

/// Why a socket was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SocketRefused {
    #[error("the connector holds its {0} sockets (sandbox.max_sockets)")]
    Instance(usize),
    #[error("the node's guests hold all {0} sockets of its budget")]
    Node(usize),
}

/// One instance's sockets: its cap, what it holds, and its part of the
/// node's count, given back when the instance goes.
#[derive(Debug)]
pub struct SocketQuota {
    node: Arc<NodeSockets>,
    max: usize,
    held: usize,
}

impl SocketQuota {
    pub fn new(node: Arc<NodeSockets>, max: usize) -> Self {
        SocketQuota { node, max, held: 0 }
    }

    /// A place for one more socket, or why there is none.
    pub fn acquire(&mut self) -> Result<(), SocketRefused> {
        if self.held >= self.max {
            return Err(SocketRefused::Instance(self.max));
        }
        if !self.node.take() {
            return Err(SocketRefused::Node(self.node.budget));
        }
        self.held += 1;
        Ok(())
    }

    /// Gives back the place of a socket that went.
    pub fn release(&mut self) {
        if self.held > 0 {
            self.held -= 1;
            self.node.give(1);
        }
    }

    /// Sockets the instance holds now.
    #[cfg(test)]
    pub fn held(&self) -> usize {
        self.held
    }
}

impl Drop for SocketQuota {
    fn drop(&mut self) {
        self.node.give(self.held);
    }
}

/// What the counting socket functions need of a store's data.
pub(super) trait SocketHost: WasiSocketsView + 'static {
    fn socket_quota(&mut self) -> &mut SocketQuota;
    fn connector_id(&self) -> &str;
}

/// Shadows wasmtime-wasi's `create-tcp-socket` and `tcp-socket`
/// destructor with counting versions. Call after WASI is linked.
pub(super) fn add_to_linker<T: SocketHost>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    linker
        .instance(&format!("wasi:sockets/tcp-create-socket@{WASI_SOCKETS}"))?
        .func_wrap(
            "create-tcp-socket",
            |mut store: StoreContextMut<'_, T>,
             (family,): (IpAddressFamily,)|
             -> wasmtime::Result<(Result<Resource<TcpSocket>, ErrorCode>,)> {
                let state = store.data_mut();
                if let Err(refused) = state.socket_quota().acquire() {
                    // Debug, not warn: a guest that keeps asking would
                    // otherwise flood the host log.
                    tracing::debug!(connector = %state.connector_id(), %refused, "socket refused");
                    return Ok((Err(ErrorCode::NewSocketLimit),));
                }
                let mut view = state.sockets();
                match tcp_create_socket::Host::create_tcp_socket(&mut view, family) {
                    Ok(socket) => Ok((Ok(socket),)),
                    Err(error) => {
                        let code = network::Host::convert_error_code(&mut view, error)?;
                        state.socket_quota().release();
                        Ok((Err(code),))
                    }
                }
            },
        )?;
    linker
        .instance(&format!("wasi:sockets/tcp@{WASI_SOCKETS}"))?
        .resource(
            "tcp-socket",
            ResourceType::host::<TcpSocket>(),
            |mut store: StoreContextMut<'_, T>, rep: u32| {
                let state = store.data_mut();
                // Fails (a trap) while the socket's streams live: then the
                // socket, and its place, stay.
                tcp::HostTcpSocket::drop(&mut state.sockets(), Resource::new_own(rep))?;
                state.socket_quota().release();
                Ok(())
            },
        )?;
    linker.allow_shadowing(false);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_instance_stops_at_its_cap_and_the_node_at_its_budget() {
        let node = NodeSockets::new(5);
        let mut a = SocketQuota::new(node.clone(), 3);
        let mut b = SocketQuota::new(node.clone(), 3);
        for _ in 0..3 {
            a.acquire().expect("room");
        }
        assert_eq!(a.acquire(), Err(SocketRefused::Instance(3)));
        b.acquire().expect("room");
        b.acquire().expect("room");
        assert_eq!(b.acquire(), Err(SocketRefused::Node(5)));
        assert_eq!(node.held(), 5);
        // A socket that goes frees its place for anyone.
        a.release();
        b.acquire().expect("room again");
        // An instance that goes gives back all it held.
        drop(a);
        assert_eq!(node.held(), 3);
        b.release();
        b.release();
        b.release();
        b.release();
        assert_eq!((b.held(), node.held()), (0, 0));
    }
}
