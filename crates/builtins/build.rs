//! Compiles the built-in connectors (`connectors/*`) to components and puts
//! them in OUT_DIR, from where `src/lib.rs` embeds them.

#[path = "build/guests.rs"]
mod guests;

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
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=build");
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
