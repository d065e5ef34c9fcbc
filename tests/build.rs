//! Builds the test guests (`tests/guests/*`) and the Python and JavaScript
//! example connectors, and tells the tests where they are.
//!
//! The language toolchains are installed beside the guests when missing
//! (componentize-py with pip into a virtualenv, componentize-js with
//! `npm ci` from the pinned lock file), once per target directory. A
//! toolchain that cannot be installed is reported to the tests, which then
//! fail with the reason rather than skip.
#![allow(
    clippy::disallowed_methods,
    reason = "the build reads its own lock files"
)]

#[path = "../crates/builtins/build/guests.rs"]
mod guests;

use std::path::{Path, PathBuf};
use std::process::Command;

const COMPONENTIZE_PY: &str = "componentize-py==0.25.1";

fn main() {
    let built = guests::build(
        &["sandport-guest-hostile", "sandport-guest-contract-0-2-0"],
        &["tests/guests"],
    );
    println!(
        "cargo:rustc-env=SANDPORT_HOSTILE_WASM={}",
        built[0].display()
    );
    println!(
        "cargo:rustc-env=SANDPORT_CONTRACT_0_2_0_WASM={}",
        built[1].display()
    );
    let root = guests::workspace_root();
    let guests_dir = built[0]
        .ancestors()
        .nth(3)
        .expect("the guest target directory")
        .to_path_buf();

    for path in [
        "guest-sdk/python",
        "connectors/examples/python-http",
        "guest-sdk/js",
        "connectors/examples/js-http",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(path).display());
    }
    println!("cargo:rerun-if-env-changed=COMPONENTIZE_PY");
    println!("cargo:rerun-if-env-changed=SANDPORT_JS_TOOLS");

    let python = guests_dir.join("python");
    let cpy = componentize_py(&python.join("tools"));
    let out = python.join("python-http.wasm");
    let example = cpy.clone().and_then(|cpy| {
        run(Command::new("bash")
            .arg(root.join("guest-sdk/python/build.sh"))
            .arg(root.join("connectors/examples/python-http"))
            .arg(&out)
            .env("COMPONENTIZE_PY", cpy))
    });
    export("SANDPORT_COMPONENTIZE_PY", cpy);
    export("SANDPORT_PYTHON_HTTP_WASM", example.map(|()| out));

    let js = guests_dir.join("js");
    let tools = js_tools(&root, &js.join("tools"));
    let out = js.join("js-http.wasm");
    let example = tools.clone().and_then(|tools| {
        run(Command::new("node")
            .arg(root.join("guest-sdk/js/build.mjs"))
            .arg(root.join("connectors/examples/js-http"))
            .arg(&out)
            .env("SANDPORT_JS_TOOLS", tools))
    });
    export("SANDPORT_JS_TOOLS", tools);
    export("SANDPORT_JS_HTTP_WASM", example.map(|()| out));
}

/// Sets `NAME` (the path, or empty) and `NAME_ERROR` (empty, or why not)
/// for the tests.
fn export(name: &str, built: Result<PathBuf, String>) {
    match built {
        Ok(path) => {
            println!("cargo:rustc-env={name}={}", path.display());
            println!("cargo:rustc-env={name}_ERROR=");
        }
        Err(why) => {
            println!("cargo:warning={name} is not available: {why}");
            println!("cargo:rustc-env={name}=");
            println!("cargo:rustc-env={name}_ERROR={why}");
        }
    }
}

fn run(command: &mut Command) -> Result<(), String> {
    let shown = format!("{command:?}");
    let status = command
        .status()
        .map_err(|e| format!("cannot run {shown}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{shown} failed ({status})"))
    }
}

/// componentize-py: `$COMPONENTIZE_PY`, else on PATH, else installed with
/// pip into a virtualenv at `tools`.
fn componentize_py(tools: &Path) -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("COMPONENTIZE_PY") {
        return Ok(PathBuf::from(path));
    }
    let on_path = Command::new("componentize-py").arg("--version").output();
    if on_path.is_ok_and(|o| o.status.success()) {
        return Ok(PathBuf::from("componentize-py"));
    }
    let installed = tools.join("bin/componentize-py");
    if installed.exists() {
        return Ok(installed);
    }
    println!(
        "cargo:warning=installing {COMPONENTIZE_PY} with pip into {}",
        tools.display()
    );
    run(Command::new("python3").arg("-m").arg("venv").arg(tools))?;
    run(Command::new(tools.join("bin/pip")).args(["install", "--quiet", COMPONENTIZE_PY]))?;
    Ok(installed)
}

/// A directory whose node_modules holds componentize-js:
/// `$SANDPORT_JS_TOOLS`, else `tools`, filled by `npm ci` from
/// guest-sdk/js/tools/package-lock.json whenever that lock changes.
fn js_tools(root: &Path, tools: &Path) -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("SANDPORT_JS_TOOLS") {
        return Ok(PathBuf::from(path));
    }
    let pinned = root.join("guest-sdk/js/tools");
    let lock = std::fs::read(pinned.join("package-lock.json"))
        .map_err(|e| format!("cannot read guest-sdk/js/tools/package-lock.json: {e}"))?;
    let installed_lock = tools.join("installed-lock.json");
    let module = tools.join("node_modules/@bytecodealliance/componentize-js");
    if module.is_dir() && std::fs::read(&installed_lock).is_ok_and(|l| l == lock) {
        return Ok(tools.to_path_buf());
    }
    println!(
        "cargo:warning=installing componentize-js with npm ci into {}",
        tools.display()
    );
    std::fs::create_dir_all(tools).map_err(|e| format!("{}: {e}", tools.display()))?;
    for file in ["package.json", "package-lock.json"] {
        std::fs::copy(pinned.join(file), tools.join(file))
            .map_err(|e| format!("cannot copy {file}: {e}"))?;
    }
    run(Command::new("npm")
        .args([
            "ci",
            "--no-audit",
            "--no-fund",
            "--loglevel=error",
            "--prefix",
        ])
        .arg(tools))?;
    std::fs::write(&installed_lock, lock).map_err(|e| format!("{e}"))?;
    Ok(tools.to_path_buf())
}
