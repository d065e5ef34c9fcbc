//! The `sandport` binary driven as operators and control planes drive it:
//! real processes on ephemeral loopback ports, real gRPC and HTTP clients.

mod cli;
mod service;
mod support;
