//! Builds the test guests (`tests/guests/*`) and the Python example
//! connector, and tells the tests where they are.

#[path = "../runtime/build/guests.rs"]
mod guests;

use std::path::{Path, PathBuf};
use std::process::Command;

const COMPONENTIZE_PY: &str = "componentize-py==0.25.1";

fn main() {
    let built = guests::build(&["sandport-guest-hostile"], &["tests/guests"]);
    println!(
        "cargo:rustc-env=SANDPORT_HOSTILE_WASM={}",
        built[0].display()
    );

    let root = guests::workspace_root();
    for path in ["guest-sdk/python", "connectors/examples/python-http"] {
        println!("cargo:rerun-if-changed={}", root.join(path).display());
    }
    let out = built[0]
        .parent()
        .and_then(Path::parent)
        .and_then(Path::parent)
        .map(|guests| guests.join("python/python-http.wasm"))
        .expect("the guest target directory");
    match build_python(&root, &out) {
        Ok(cpy) => {
            println!("cargo:rustc-env=SANDPORT_COMPONENTIZE_PY={}", cpy.display());
            println!(
                "cargo:rustc-env=SANDPORT_PYTHON_HTTP_WASM={}",
                out.display()
            );
            println!("cargo:rustc-env=SANDPORT_PYTHON_HTTP_ERROR=");
        }
        Err(why) => {
            println!("cargo:warning=the Python example connector was not built: {why}");
            println!("cargo:rustc-env=SANDPORT_PYTHON_HTTP_WASM=");
            println!("cargo:rustc-env=SANDPORT_COMPONENTIZE_PY=");
            println!("cargo:rustc-env=SANDPORT_PYTHON_HTTP_ERROR={why}");
        }
    }
}

/// componentize-py: `$COMPONENTIZE_PY`, else on PATH, else installed with
/// pip into a virtualenv beside the guests (once per target directory).
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
    let run = |program: &Path, args: &[&str]| {
        Command::new(program)
            .args(args)
            .status()
            .map_err(|e| format!("cannot run {}: {e}", program.display()))
            .and_then(|s| {
                if s.success() {
                    Ok(())
                } else {
                    Err(format!("{} {} failed", program.display(), args.join(" ")))
                }
            })
    };
    println!(
        "cargo:warning=installing {COMPONENTIZE_PY} with pip into {}",
        tools.display()
    );
    run(
        Path::new("python3"),
        &["-m", "venv", &tools.display().to_string()],
    )?;
    run(
        &tools.join("bin/pip"),
        &["install", "--quiet", COMPONENTIZE_PY],
    )?;
    Ok(installed)
}

/// Builds the Python example; returns the componentize-py it used.
fn build_python(root: &Path, out: &Path) -> Result<PathBuf, String> {
    let tools = out
        .parent()
        .map(|dir| dir.join("tools"))
        .ok_or("no output directory")?;
    let cpy = componentize_py(&tools)?;
    let status = Command::new("bash")
        .arg(root.join("guest-sdk/python/build.sh"))
        .arg(root.join("connectors/examples/python-http"))
        .arg(out)
        .env("COMPONENTIZE_PY", &cpy)
        .status()
        .map_err(|e| format!("cannot run build.sh: {e}"))?;
    if status.success() {
        Ok(cpy)
    } else {
        Err("guest-sdk/python/build.sh failed".into())
    }
}
