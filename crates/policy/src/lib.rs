//! Where a connector may send requests, as pure values decided without I/O.
//!
//! Layout:
//! - `rule`: one `sandbox.allowed_hosts` entry ([`HostRule`]), parsed once
//!   at config load time.
//! - `ip`: which resolved addresses a rule vouches for ([`Grant`],
//!   [`vet`]); the threat model is in its doc.
//! - `allowlist`: one connector's rules together ([`EgressPolicy`]) and the
//!   socket addresses it may open TCP connections to ([`TcpAllowed`]).
//!
//! The host enforces these at one hook, twice: the URL against the rules,
//! then every address it resolved against the grant of the rule that
//! admitted the host.
#![forbid(unsafe_code)]

mod allowlist;
pub mod ip;
mod rule;

pub use allowlist::{EgressPolicy, TcpAllowed};
pub use ip::Grant;
pub use rule::{HostRule, RuleError};
