//! Sandport's APIs over one [`Service`](sandport_core::service::Service):
//! gRPC, REST, and the loop that serves both until shutdown.
//!
//! Layout:
//! - [`grpc`]: the generated code ([`grpc::pb`], from
//!   `proto/connectors.proto`), thin handlers, and `grpc::convert`, the one
//!   place an entry crosses to and from protobuf.
//! - [`rest`]: the REST router (`/api/v1/...`, `/healthz`, `/readyz`).
//! - `rest_error`: the REST error answer, and the audit line of an admin call.
//! - `serve`: the API thread, gRPC health and reflection, the drain, and
//!   the rule that a non-loopback address needs TLS and tokens.
//! - [`auth`]: the tokens file, roles, and the check of a caller.
//! - [`guard`]: the gate in front of both APIs (roles, load shedding,
//!   timeouts), as a tower layer and an axum middleware.
//! - [`tls`]: rustls with a certificate reloaded in place, mTLS names.
//! - [`limits`]: sizes, time and concurrency of API calls.
//! - [`audit`]: one log line per admin call.
//! - `reload`: noticing that the tokens or certificate files changed.
//! - [`metrics`]: `GET /metrics` and the count of every API call.
//! - `config_api`: the config file's reload status, and reloading it.
//! - `components`: uploading, listing and deleting components, both APIs.
//! - `internal`: errors logged with an id, answered without internals.
//! - [`status_page`]: the status page (`GET /`, its embedded assets) and
//!   the SVG badge.
//! - `alerts_api`: test messages and the alerts' counters.
//! - `status_api`: history, uptime, the status page's data and live feed,
//!   badges.
//! - [`cluster`]: cluster mode: the service kept in step with a registry
//!   in etcd, checking only the connectors this node owns.
#![forbid(unsafe_code)]

mod alerts_api;
pub mod audit;
pub mod auth;
pub mod cluster;
mod components;
mod config_api;
pub mod grpc;
pub mod guard;
mod internal;
pub mod limits;
pub mod metrics;
mod reload;
pub mod rest;
mod rest_error;
mod serve;
pub mod status_api;
pub mod status_page;
pub mod tls;

pub use serve::{
    ANNOUNCE_SHUTDOWN, ApiOptions, DRAIN_GRACE, Exposed, ServeError, check_exposure, serve,
};
