// Builds guest components (crates of this workspace) for wasm32-wasip2 with
// a nested `cargo build`. Shared by the build scripts of `runtime` (the
// built-in connectors) and `tests` (the test guests).
//
// The nested build uses its own target directory, so it never waits on the
// lock of the build that runs this script, and all guests share one set of
// compiled dependencies.

use std::path::{Path, PathBuf};
use std::process::Command;

pub const TARGET: &str = "wasm32-wasip2";
pub const PROFILE: &str = "guest";

pub fn workspace_root() -> PathBuf {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    manifest_dir
        .ancestors()
        .find(|dir| dir.join("wit").is_dir() && dir.join("Cargo.lock").exists())
        .unwrap_or_else(|| manifest_dir.parent().expect("crate inside the workspace"))
        .to_path_buf()
}

fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
        .join("guests")
}

/// Makes sure the standard library for the guest target is installed, so
/// that a plain `cargo build` works on a fresh machine.
fn ensure_target() {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let libdir = Command::new(rustc)
        .args(["--print", "target-libdir", "--target", TARGET])
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()));
    if libdir.is_some_and(|dir| dir.is_dir()) {
        return;
    }
    println!(
        "cargo:warning=installing the {TARGET} target with rustup to build the guest components"
    );
    let added = Command::new("rustup")
        .args(["target", "add", TARGET])
        .status()
        .is_ok_and(|status| status.success());
    if !added {
        panic!(
            "the {TARGET} target is missing and `rustup target add {TARGET}` failed; install it and build again"
        );
    }
}

/// Where cargo keeps the registry's sources: `CARGO_HOME` (rustup sets it
/// for the tools it runs), else `~/.cargo`.
fn cargo_home() -> Option<PathBuf> {
    std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cargo")))
}

/// Builds `packages` and returns the path of each one's `.wasm`, in order.
pub fn build(packages: &[&str], watch: &[&str]) -> Vec<PathBuf> {
    ensure_target();
    let root = workspace_root();
    for path in watch
        .iter()
        .chain(["wit", "guest-sdk", "Cargo.toml", "Cargo.lock"].iter())
    {
        println!("cargo:rerun-if-changed={}", root.join(path).display());
    }
    let target_dir = target_dir(&root);
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .arg("build")
        .arg("--manifest-path")
        .arg(root.join("Cargo.toml"))
        .args(["--target", TARGET, "--profile", PROFILE, "--locked"])
        .arg("--target-dir")
        .arg(&target_dir);
    for package in packages {
        command.args(["-p", package]);
    }
    // Settings meant for the host build must not leak into the guest build.
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_BUILD_TARGET",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_RUSTFLAGS",
    ] {
        command.env_remove(var);
    }
    // Panic locations name source files, and those of registry crates
    // would carry this machine's cargo home into every component (and into
    // each instance's copy of its data).
    // Cargo takes its flags from the first of its sources that is set, and
    // this one comes first: the guest target's own flags are appended, so
    // that setting them keeps working.
    if let Some(home) = cargo_home() {
        let mut flags = vec![format!("--remap-path-prefix={}=/cargo", home.display())];
        let own = format!(
            "CARGO_TARGET_{}_RUSTFLAGS",
            TARGET.to_ascii_uppercase().replace('-', "_")
        );
        println!("cargo:rerun-if-env-changed={own}");
        if let Ok(extra) = std::env::var(&own) {
            flags.extend(extra.split_whitespace().map(str::to_string));
        }
        command.env("CARGO_ENCODED_RUSTFLAGS", flags.join("\x1f"));
    }
    let status = command
        .status()
        .unwrap_or_else(|e| panic!("cannot run cargo to build the guest components: {e}"));
    if !status.success() {
        panic!(
            "building the guest components ({}) for {TARGET} failed; \
             is the target installed? (`rustup target add {TARGET}`)",
            packages.join(", ")
        );
    }
    packages
        .iter()
        .map(|package| {
            target_dir
                .join(TARGET)
                .join(PROFILE)
                .join(format!("{}.wasm", package.replace('-', "_")))
        })
        .collect()
}
