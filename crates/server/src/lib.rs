//! Sandport's APIs over one [`Service`](sandport_core::service::Service):
//! gRPC, REST, and the loop that serves both until shutdown.
//!
//! Layout:
//! - [`grpc`]: the generated code ([`grpc::pb`], from
//!   `proto/connectors.proto`), thin handlers, and `grpc::convert`, the one
//!   place an entry crosses to and from protobuf.
//! - [`rest`]: the REST router (`/api/v1/...`, `/healthz`, `/readyz`).
//! - `components`: uploading, listing and deleting components, both APIs.
//! - `serve`: the API thread, gRPC health and reflection, the drain.
//! - `internal`: errors logged with an id, answered without internals.
#![forbid(unsafe_code)]

mod components;
pub mod grpc;
mod internal;
pub mod rest;
mod serve;

pub use serve::{ANNOUNCE_SHUTDOWN, DRAIN_GRACE, ServeError, serve};
