//! End-to-end tests: the real built-in and test components, run by the real
//! runtime against real HTTP servers on loopback. One test binary with
//! submodules keeps link time down.
#![allow(
    clippy::disallowed_methods,
    reason = "tests read back files they wrote and the pipes of processes they started"
)]

mod authoring;
mod builtins;
mod catalogue_http;
mod catalogue_s3;
mod catalogue_tcp;
mod languages;
mod registry;
mod resources;
mod sandbox;
mod secrets;
mod soak;
mod thresholds;
