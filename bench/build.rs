//! Orders the hot code of `sandport-bench` as the `sandport` binary's is
//! ordered, so that the bench measures the code as the service runs it.

#[path = "../runtime/build/hot_code.rs"]
mod hot_code;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=../runtime/build/hot_code.rs");
    hot_code::order_hot_code(std::path::Path::new("../runtime/hot-code.order"));
}
