//! Compiles the built-in connectors (`connectors/*`) to components and puts
//! them in OUT_DIR, from where `src/builtin.rs` embeds them; generates the
//! gRPC code from `proto/connectors.proto` with a vendored `protoc`; orders
//! the hot code of the `sandport` binary (`build/hot_code.rs`).

#[path = "build/guests.rs"]
mod guests;
#[path = "build/hot_code.rs"]
mod hot_code;

/// Crates `connectors/NAME` (package `sandport-connector-NAME`).
const BUILTINS: &[&str] = &[
    "prometheus",
    "alertmanager",
    "grafana",
    "jaeger",
    "otel-collector",
    "loki",
    "elasticsearch",
    "openclaw",
    "mcp",
    "minio",
    "s3",
    "slack",
    "discord",
    "webhook",
    "nats",
    "mqtt",
    "rabbitmq",
    "postgresql",
    "redis",
    "mysql",
    "http",
    "tcp",
];

fn main() {
    compile_proto();
    hot_code::order_hot_code(std::path::Path::new("hot-code.order"));
    let out_dir = std::path::PathBuf::from(std::env::var("OUT_DIR").expect("set by cargo"));
    let packages: Vec<String> = BUILTINS
        .iter()
        .map(|name| format!("sandport-connector-{name}"))
        .collect();
    let packages: Vec<&str> = packages.iter().map(String::as_str).collect();
    let built = guests::build(&packages, &["connectors"]);
    for (name, wasm) in BUILTINS.iter().zip(built) {
        let dest = out_dir.join(format!("{name}.wasm"));
        std::fs::copy(&wasm, &dest).unwrap_or_else(|e| {
            panic!("cannot copy {} to {}: {e}", wasm.display(), dest.display())
        });
    }
}

fn compile_proto() {
    let root = guests::workspace_root();
    let proto = root.join("proto/connectors.proto");
    println!("cargo:rerun-if-changed={}", root.join("proto").display());
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=build");
    let out_dir = std::path::PathBuf::from(std::env::var("OUT_DIR").expect("set by cargo"));
    let protoc = protoc_bin_vendored::protoc_bin_path().expect("the vendored protoc");
    let includes = protoc_bin_vendored::include_path().expect("the vendored protobuf includes");
    let mut config = tonic_prost_build::Config::new();
    config.protoc_executable(protoc);
    tonic_prost_build::configure()
        .file_descriptor_set_path(out_dir.join("connectors_descriptor.bin"))
        .compile_with_config(
            config,
            std::slice::from_ref(&proto),
            &[root.join("proto"), includes],
        )
        .unwrap_or_else(|e| panic!("cannot compile {}: {e}", proto.display()));
}
