//! Sandport's runtime: loads connectors (WebAssembly components), runs each
//! in its own sandbox and health-checks them on schedule. It knows nothing
//! of gRPC, HTTP frameworks or the command line; the APIs live in
//! `sandport-server`, the CLI in `sandport`.
//!
//! Layout, in the order data flows (the config itself is `sandport-config`,
//! the egress rules `sandport-policy`, the embedded connectors
//! `sandport-builtins`):
//! - `sandbox`: the wasmtime engine, compiled components, and one deadline-
//!   and memory-capped instance per connector.
//! - `egress`: the guest's only way out (HTTP through the allowlist, with
//!   credentials attached by the host; TCP to vetted addresses).
//! - `budget`: one deadline and request allowance per guest call.
//! - `quarantine`: connectors that keep failing are set aside.
//! - [`registry`]: the [`Runtime`]: registered connectors, admission, the
//!   compile cache, checks and the scheduler; in cluster mode, which
//!   connectors this node checks ([`Ownership`]).
//! - [`health`]: check results and the cache entry per connector, with the
//!   thresholds that turn its reported status.
//! - [`observe`]: who hears of every check (history, alerts).
//! - `state`: API-made changes to the registry, kept across restarts.
//! - [`service`]: runtime + state (in cluster mode, the cluster's
//!   [`service::ChangeStore`] instead): what every API calls.
//! - [`uploads`]: components uploaded through the API, by digest.
//! - [`allocator`]: the malloc settings the binary applies at start.
//! - [`metrics`]: what the runtime counts, and its Prometheus collector.
//! - [`limits`]: the descriptor limit the service raises at start, and the
//!   share of it guests may hold as sockets.
// The exceptions (loading cached compiled code, mapping the fiber stacks,
// tuning malloc) carry their reasons.
#![deny(unsafe_code)]

pub mod allocator;
mod budget;
mod egress;
pub mod health;
pub mod limits;
pub mod metrics;
pub mod observe;
mod quarantine;
pub mod registry;
mod sandbox;
pub mod service;
mod state;
pub mod uploads;

pub use health::{FailureKind, HealthSnapshot, HealthStatus, Thresholds};
pub use observe::{CheckObserver, Checked, Observers};
pub use registry::{
    CheckAll, ConnectorInfo, HealthEvent, NotFound, Ownership, RegisterError, RemoteHealth,
    Runtime, RuntimeError, RuntimeOptions,
};
/// Memory mappings one live connector instance holds at most.
pub use sandbox::mappings::PER_INSTANCE as MAPPINGS_PER_INSTANCE;
