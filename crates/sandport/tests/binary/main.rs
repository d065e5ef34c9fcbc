//! The `sandport` binary driven as operators and control planes drive it:
//! real processes on ephemeral loopback ports, real gRPC and HTTP clients.
#![allow(
    clippy::disallowed_methods,
    reason = "tests read back files they wrote and the pipes of processes they started"
)]

mod alerts;
mod api;
// The server's browser harness, shared; these tests use part of it.
#[allow(dead_code, reason = "the server's own tests use the rest")]
#[path = "../../../server/tests/browser/mod.rs"]
mod browser;
mod cli;
mod cluster;
mod cluster_forward;
mod cluster_history;
mod components;
mod deploy;
mod deploy_cluster;
mod history;
mod manifests;
mod operations;
mod service;
mod status_page;
mod support;
mod support_cluster;
mod traces;
