//! End-to-end tests: the real built-in and test components, run by the real
//! runtime against real HTTP servers on loopback. One test binary with
//! submodules keeps link time down.

mod authoring;
mod builtins;
mod catalogue_http;
mod catalogue_s3;
mod catalogue_tcp;
mod languages;
mod registry;
mod sandbox;
