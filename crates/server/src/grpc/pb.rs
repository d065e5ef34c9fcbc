//! The code generated from `proto/connectors.proto`.
#![allow(clippy::all, missing_docs)]
tonic::include_proto!("sandport.connectors.v1");

/// For server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/connectors_descriptor.bin"));

/// The calls between a cluster's nodes, from `proto/cluster.proto`.
pub mod peer {
    #![allow(clippy::all, missing_docs)]
    include!(concat!(env!("OUT_DIR"), "/peer/sandport.cluster.v1.rs"));
}
