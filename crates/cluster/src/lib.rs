//! Sandport's cluster mode: several `sandport serve` nodes share one
//! connector registry in etcd, and each connector is health-checked by
//! exactly one live node.
//!
//! This crate is the library the server wires in; it knows etcd and the
//! config's entries, not the runtime (no `sandport-core`, no gRPC server).
//!
//! Layout:
//! - `options`: [`ClusterOptions`], parsed from `etcd://host:port[,...]`
//!   (`etcds://` for TLS), and the TLS files;
//! - `connect`: [`Cluster`], the etcd client with every call bounded by a
//!   timeout, and how etcd's errors become [`ClusterError`]s;
//! - `error`: [`ClusterError`], [`OptionsError`], [`IdError`];
//! - `keys`: the key layout under the prefix (`members/`, `connectors/`,
//!   `status/`, `seeded`) and the [`NodeId`] and connector id rules;
//! - `membership`: join (a lease and the member key), keep-alive, the
//!   loss of membership as an event, leave; [`MemberWatch`], the live set;
//! - `ownership`: [`owner`], rendezvous hashing of connectors onto nodes;
//! - `store`: [`Store`], the registry: create, compare-and-swap update,
//!   remove, list, watch;
//! - `seed`: [`Store::seed`], the config file's entries written once per
//!   cluster;
//! - `file_sync`: [`Store::sync_file`], a reloaded config file made the
//!   registry's file entries (compare-and-swap, the API's entries left
//!   alone);
//! - `status`: [`StatusPublisher`] (a write only when a status changes)
//!   and reading the published statuses;
//! - `watch`: a resumable watch over one key prefix (private);
//! - `testing` (feature `testing`): a real etcd for tests.
#![forbid(unsafe_code)]

mod connect;
mod error;
mod file_sync;
mod keys;
mod membership;
mod options;
mod ownership;
mod seed;
mod status;
mod store;
#[cfg(feature = "testing")]
pub mod testing;
mod watch;

pub use connect::Cluster;
pub use error::{ClusterError, IdError, OptionsError};
pub use file_sync::FileSync;
pub use keys::{DEFAULT_PREFIX, MAX_ID_LEN, NodeId, validate_connector_id};
pub use membership::{Liveness, MemberInfo, MemberWatch, Membership};
pub use options::{ClusterOptions, TlsFiles};
pub use ownership::{owner, weight};
pub use seed::SeedOutcome;
pub use status::{ConnectorStatus, StatusEvent, StatusPublisher, StatusWatch};
pub use store::{
    Listing, MAX_VALUE_BYTES, Origin, RegistryEvent, RegistryWatch, Store, StoredEntry,
};
