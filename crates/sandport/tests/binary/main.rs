//! The `sandport` binary driven as operators and control planes drive it:
//! real processes on ephemeral loopback ports, real gRPC and HTTP clients.
#![allow(
    clippy::disallowed_methods,
    reason = "tests read back files they wrote and the pipes of processes they started"
)]

mod alerts;
mod api;
#[path = "../../../server/tests/browser/mod.rs"]
mod browser;
mod cli;
mod components;
mod deploy;
mod history;
mod operations;
mod service;
mod status_page;
mod support;
mod traces;
