// Lays the check path's hot functions out next to each other in release
// binaries. Shared by the build scripts of `runtime` (the `sandport`
// binary) and `bench` (`sandport-bench`), so that the bench measures the
// code as the service runs it.
//
// A check runs a few hundred functions from wasmtime, tokio, hyper, reqwest
// and Sandport, scattered over 16 MiB of code among their cold neighbours.
// Placed first and together (about 380 KB), they share cache lines and
// pages less with code that never runs. `runtime/hot-code.order` lists
// them, hottest first, by their mangled names, which change with
// `Cargo.lock`, the toolchain or the code: `scripts/order-hot-code.sh`
// regenerates it and says how much of it still matches. A name that no
// longer matches only loses its place; the build never fails on it.
//
// The list is handed to the linker only where it is known to read it: a
// release build for x86_64 Linux, which rustc links with its own LLD
// (the default there since Rust 1.90), and no linker chosen by the
// builder. SANDPORT_HOT_CODE_ORDER=off leaves the default layout
// (`scripts/build-pgo.sh` does, since its profile lays the code out).

use std::path::Path;

/// `order` is the list's path from the calling package (a build script runs
/// in its package's directory); the linker, which runs elsewhere, is given
/// it absolute.
pub fn order_hot_code(order: &Path) {
    let order = std::path::absolute(order).expect("the build script's directory exists");
    println!("cargo:rerun-if-changed={}", order.display());
    println!("cargo:rerun-if-env-changed=SANDPORT_HOT_CODE_ORDER");
    if applies() && order.is_file() {
        println!(
            "cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={}",
            order.display()
        );
        println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
    }
}

fn applies() -> bool {
    let var = |name| std::env::var(name).unwrap_or_default();
    let rustflags = var("CARGO_ENCODED_RUSTFLAGS");
    var("PROFILE") == "release"
        && var("TARGET") == "x86_64-unknown-linux-gnu"
        && var("SANDPORT_HOT_CODE_ORDER") != "off"
        && std::env::var_os("RUSTC_LINKER").is_none()
        && !rustflags.contains("linker")
        && !rustflags.contains("fuse-ld")
}
