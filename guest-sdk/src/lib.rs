//! Write a Sandport connector in Rust.
//!
//! A connector is a struct that implements [`Connector`], exported with
//! [`export_connector!`]; the crate is built for `wasm32-wasip2` as a `cdylib`.
//!
//! ```ignore
//! use sandport_sdk::{export_connector, http, Config, Connector, ConnectorType, Error, HealthReport};
//!
//! struct Ping { url: String }
//!
//! impl Connector for Ping {
//!     const NAME: &'static str = "Ping";
//!     const TYPE: ConnectorType = ConnectorType::Custom;
//!
//!     fn new(config: &Config) -> Result<Self, String> {
//!         Ok(Ping { url: config.url(config.health_path_or("/")) })
//!     }
//!
//!     fn health_check(&mut self) -> Result<HealthReport, Error> {
//!         let response = http::get(&self.url)?;
//!         Ok(response.expect_success()?.into())
//!     }
//! }
//!
//! export_connector!(Ping);
//! ```
//!
//! Layout:
//! - [`Connector`]: the trait an author implements.
//! - [`http`]: outbound HTTP through the host (the only way out of the sandbox).
//! - [`log`]: `info!`-style logging into the host's log.
//! - [`net`]: raw TCP to allowlisted `host:port` pairs (databases, brokers).
//! - [`tcp`]: one TCP conversation under the check's deadline (reads with
//!   timeouts and caps), for protocol-level checks.
//! - [`credentials`]: the entry's credentials, for TCP protocols that need them.
//! - [`Config`], [`HealthReport`]: the records of the WIT contract, with helpers.
#![deny(missing_docs)]

mod config;
pub mod credentials;
mod error;
pub mod http;
pub mod log;
pub mod net;
mod report;
mod shim;
mod socket;
pub mod tcp;

/// One entry of the operator's config (secrets left out).
pub use bindings::sandport::connector::types::ConnectorConfig as Config;
pub use error::Error;

/// Which credentials the host attaches to the connector's own requests.
pub use bindings::sandport::connector::types::AuthKind;
/// How a connector reaches its target.
pub use bindings::sandport::connector::types::ConnectionMode;
/// What kind of system a connector watches.
pub use bindings::sandport::connector::types::ConnectorType;
/// What a health check found: status, message and details.
pub use bindings::sandport::connector::types::HealthReport;
/// The outcome of one health check.
pub use bindings::sandport::connector::types::HealthStatus;

/// The trait a connector implements.
///
/// The host creates one instance per config entry, calls [`Connector::new`]
/// once with that entry, [`Connector::health_check`] on schedule and
/// [`Connector::close`] before dropping it.
pub trait Connector: Sized + 'static {
    /// Human-readable name used until the config names the connector.
    const NAME: &'static str;
    /// The connector's type.
    const TYPE: ConnectorType;
    /// One sentence about what the connector checks.
    const DESCRIPTION: &'static str = "";

    /// Builds the connector from its config entry. An error is reported to the
    /// operator as it is, so say which setting is wrong and why.
    fn new(config: &Config) -> Result<Self, String>;

    /// Runs one health check. An [`Error`] (for instance a refused
    /// connection, through `?`) is reported as `unhealthy` with its message.
    fn health_check(&mut self) -> Result<HealthReport, Error>;

    /// The URL the connector talks to; by default the config's endpoint.
    fn endpoint(&self, config: &Config) -> String {
        config.endpoint()
    }

    /// Releases whatever the connector holds; called once.
    fn close(&mut self) {}
}

#[doc(hidden)]
pub mod __private {
    pub use crate::bindings::export as export_bindings;
    pub use crate::shim::Shim;
}

/// Exports a [`Connector`] implementation as the component's `connector`
/// interface. Call it once per crate.
#[macro_export]
macro_rules! export_connector {
    ($connector:ty) => {
        #[doc(hidden)]
        type __SandportConnectorShim = $crate::__private::Shim<$connector>;
        $crate::__private::export_bindings!(__SandportConnectorShim with_types_in $crate::bindings);
    };
}

#[doc(hidden)]
#[allow(missing_docs)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "connector",
        pub_export_macro: true,
        export_macro_name: "export",
        default_bindings_module: "sandport_sdk::bindings",
        runtime_path: "sandport_sdk::__wit_bindgen::rt",
    });
}

// The generated bindings name this crate by its public path, so that the
// export macro also works from a connector's crate.
extern crate self as sandport_sdk;
#[doc(hidden)]
pub use wit_bindgen as __wit_bindgen;
