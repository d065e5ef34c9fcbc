//! Orders the hot code of `sandport-bench` as the `sandport` binary's is
//! ordered, so that the bench measures the code as the service runs it.

#[path = "../runtime/build/hot_code.rs"]
mod hot_code;

fn main() {
    let manifest_dir =
        std::path::PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let root = manifest_dir.parent().expect("bench/ inside the workspace");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=../runtime/build/hot_code.rs");
    hot_code::order_hot_code(root);
}
