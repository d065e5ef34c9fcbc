//! Sandport's host runtime: loads connectors (WebAssembly components) from
//! the operator's config, runs each in its own sandbox and health-checks them
//! on schedule.
//!
//! Layout, in the order data flows:
//! - [`config`]: `connectors.yaml` -> validated [`ConnectorConfig`]s, every
//!   problem named by entry and key.
//! - `builtin`: the connectors compiled into the binary.
//! - `sandbox`: the wasmtime engine, compiled components, and one deadline-
//!   and memory-capped instance per connector.
//! - [`egress`]: the guest's only way out (HTTP through an allowlist, with
//!   credentials attached by the host).
//! - [`registry`]: the [`Runtime`] — registered connectors, their cached
//!   health and their schedule; the surface the API layers call.
//! - [`health`]: check results and the cache entry per connector.
//! - [`state`]: API-made changes to the registry, kept across restarts.
//! - [`service`]: runtime + state: what every API calls.
//! - [`grpc`], [`rest`], [`server`]: the APIs over the service; [`client`]:
//!   the control plane's `ConnectorService` (in-process or remote).
//! - [`allocator`]: the malloc settings the binary applies at start.
//!
//! For connector authors: [`conformance`] (the kit behind
//! `sandport test-connector`) and [`project`] (`sandport new` / `build`).
// The exceptions (loading cached compiled code, mapping the fiber stacks,
// tuning malloc) carry their reasons.
#![deny(unsafe_code)]

pub mod allocator;
mod budget;
mod builtin;
pub mod client;
pub mod config;
pub mod conformance;
pub mod egress;
pub mod grpc;
pub mod health;
pub mod project;
mod quarantine;
pub mod registry;
pub mod rest;
mod sandbox;
pub mod server;
pub mod service;
pub mod state;

pub use config::{ConnectorConfig, ConnectorType};
pub use health::{FailureKind, HealthSnapshot, HealthStatus};
pub use registry::{
    CheckAll, ConnectorInfo, HealthEvent, NotFound, RegisterError, Runtime, RuntimeError,
    RuntimeOptions,
};
/// Memory mappings one live connector instance holds at most.
pub use sandbox::mappings::PER_INSTANCE as MAPPINGS_PER_INSTANCE;

/// The built-ins, for config parsing.
pub fn builtins() -> &'static dyn config::BuiltinCatalog {
    &builtin::Builtins
}

/// Names of the built-in components.
pub fn builtin_names() -> Vec<&'static str> {
    builtin::BUILTINS.iter().map(|b| b.name).collect()
}
