//! The `sandport` command's library: what the command line needs beyond
//! the service itself.
//!
//! Layout:
//! - [`client`]: the control plane's `ConnectorService`, over gRPC to a
//!   running service or in-process on a config.
//! - [`conformance`]: the kit behind `sandport test-connector`.
//! - [`project`]: `sandport new` / `build` for connector authors.
//!
//! The binary (`src/bin/sandport`) parses the command line and prints.
#![forbid(unsafe_code)]

pub mod client;
pub mod conformance;
pub mod project;
