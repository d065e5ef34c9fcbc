//! Generates the gRPC code from `proto/connectors.proto` with a vendored
//! `protoc`, and the descriptor set that server reflection serves; and
//! the calls between a cluster's nodes, `proto/cluster.proto` (not served
//! by reflection: not for clients).

use std::path::PathBuf;

fn main() {
    compile_proto();
}

fn compile_proto() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let root = manifest_dir.join("../..");
    let proto = root.join("proto/connectors.proto");
    println!("cargo:rerun-if-changed={}", root.join("proto").display());
    println!("cargo:rerun-if-changed=build.rs");
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("set by cargo"));
    let protoc = protoc_bin_vendored::protoc_bin_path().expect("the vendored protoc");
    let includes = protoc_bin_vendored::include_path().expect("the vendored protobuf includes");
    let mut config = tonic_prost_build::Config::new();
    config.protoc_executable(protoc.clone());
    tonic_prost_build::configure()
        .file_descriptor_set_path(out_dir.join("connectors_descriptor.bin"))
        .compile_with_config(
            config,
            std::slice::from_ref(&proto),
            &[root.join("proto"), includes.clone()],
        )
        .unwrap_or_else(|e| panic!("cannot compile {}: {e}", proto.display()));

    let peers = root.join("proto/cluster.proto");
    let mut config = tonic_prost_build::Config::new();
    config.protoc_executable(protoc.clone());
    // A directory of its own: the generator also writes the imported
    // file's service code, which must not replace the one above.
    let peer_out = out_dir.join("peer");
    std::fs::create_dir_all(&peer_out).expect("a directory in OUT_DIR");
    tonic_prost_build::configure()
        .out_dir(peer_out)
        .extern_path(".sandport.connectors.v1", "crate::grpc::pb")
        .compile_with_config(
            config,
            std::slice::from_ref(&peers),
            &[root.join("proto"), includes.clone()],
        )
        .unwrap_or_else(|e| panic!("cannot compile {}: {e}", peers.display()));
}
