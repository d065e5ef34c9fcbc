//! The code generated from `proto/connectors.proto`.
#![allow(clippy::all, missing_docs)]
tonic::include_proto!("sandport.connectors.v1");

/// For server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/connectors_descriptor.bin"));
