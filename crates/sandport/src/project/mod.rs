//! Connector projects on disk, for authors: [`new`] writes a project from a
//! template (Rust, Python or JavaScript), [`build`] recognises a project's
//! language and runs its toolchain, producing `build/<name>.wasm`.
//!
//! A project carries its own copy of the WIT contract and of the SDK for
//! its language, taken from this sandport, so it builds offline and agrees
//! with the runtime that made it.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

mod files;

/// The languages `sandport new` has templates for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Rust,
    Python,
    Js,
}

impl Lang {
    pub const ALL: [Lang; 3] = [Lang::Rust, Lang::Python, Lang::Js];

    pub fn as_str(self) -> &'static str {
        match self {
            Lang::Rust => "rust",
            Lang::Python => "python",
            Lang::Js => "js",
        }
    }

    fn display_name(self) -> &'static str {
        match self {
            Lang::Rust => "Rust",
            Lang::Python => "Python",
            Lang::Js => "JavaScript",
        }
    }
}

impl fmt::Display for Lang {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Lang {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "rust" | "rs" => Ok(Lang::Rust),
            "python" | "py" => Ok(Lang::Python),
            "js" | "javascript" => Ok(Lang::Js),
            _ => Err(format!("`{s}` is not one of: rust, python, js")),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProjectError {
    #[error("{0} exists and is not empty; pick a new directory")]
    NotEmpty(PathBuf),
    #[error(
        "cannot derive a project name from {0}: name the directory with letters, digits and `-`"
    )]
    BadName(PathBuf),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{0} is not a connector project: expected Cargo.toml (Rust), app.py (Python) or app.js (JavaScript)"
    )]
    NotAProject(PathBuf),
    #[error("{tool} is needed to build a {lang} connector and was not found; {hint}")]
    ToolMissing {
        tool: &'static str,
        lang: Lang,
        hint: String,
    },
    #[error("`{command}` failed ({status}); its output is above")]
    ToolFailed { command: String, status: String },
    #[error("the build finished but produced no component: {0}")]
    NoOutput(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ProjectError + '_ {
    move |source| ProjectError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Where the toolchains are, when not the defaults.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// Cargo's target directory for Rust projects (shared between projects
    /// to reuse compiled dependencies) [default: the project's `target/`].
    pub target_dir: Option<PathBuf>,
    /// The componentize-py program [default: `$COMPONENTIZE_PY`, else on PATH].
    pub componentize_py: Option<PathBuf>,
    /// A directory whose `node_modules` holds componentize-js [default:
    /// `$SANDPORT_JS_TOOLS`, else the project's own `node_modules`].
    pub js_tools: Option<PathBuf>,
}

/// The project name `dir` gives: its last component, which must be usable
/// as a crate, module and file name.
fn project_name(dir: &Path) -> Result<String, ProjectError> {
    let bad = || ProjectError::BadName(dir.to_path_buf());
    let name = dir.file_name().and_then(|n| n.to_str()).ok_or_else(bad)?;
    let ok = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(name.to_ascii_lowercase())
    } else {
        Err(bad())
    }
}

/// What [`new`] wrote.
#[derive(Debug, Clone)]
pub struct Created {
    /// The project's name (from its directory): its component is
    /// `build/<name>.wasm`.
    pub name: String,
    /// The files written, relative to the project directory.
    pub files: Vec<PathBuf>,
}

/// Writes a new `lang` project into `dir` (created; it must not exist or be
/// empty).
pub fn new(lang: Lang, dir: &Path) -> Result<Created, ProjectError> {
    let name = project_name(dir)?;
    if dir.exists() {
        let mut entries = std::fs::read_dir(dir).map_err(io(dir))?;
        if entries.next().is_some() {
            return Err(ProjectError::NotEmpty(dir.to_path_buf()));
        }
    }
    let fill = |template: &str| {
        template
            .replace("{{name}}", &name)
            .replace("{{lang}}", lang.display_name())
            .replace("{{sdk_version}}", env!("CARGO_PKG_VERSION"))
            .replace("{{wit_bindgen}}", files::WIT_BINDGEN_VERSION)
            .replace("{{wasip2}}", files::WASIP2_VERSION)
    };
    let mut written = Vec::new();
    for (path, template) in files::template(lang) {
        let to = dir.join(path);
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        std::fs::write(&to, fill(template)).map_err(io(&to))?;
        written.push(PathBuf::from(path));
    }
    Ok(Created {
        name,
        files: written,
    })
}

/// The language of the project in `dir`.
pub fn detect(dir: &Path) -> Result<Lang, ProjectError> {
    if dir.join("Cargo.toml").is_file() {
        Ok(Lang::Rust)
    } else if dir.join("app.py").is_file() {
        Ok(Lang::Python)
    } else if dir.join("app.js").is_file() {
        Ok(Lang::Js)
    } else {
        Err(ProjectError::NotAProject(dir.to_path_buf()))
    }
}

/// Builds the project in `dir` into `dir/build/<name>.wasm` and returns
/// that path. The toolchain's own output goes to this process's stderr.
pub fn build(dir: &Path, options: &BuildOptions) -> Result<PathBuf, ProjectError> {
    let dir = std::path::absolute(dir).map_err(io(dir))?;
    let lang = detect(&dir)?;
    let name = project_name(&dir)?;
    let out_dir = dir.join("build");
    std::fs::create_dir_all(&out_dir).map_err(io(&out_dir))?;
    let out = out_dir.join(format!("{name}.wasm"));
    match lang {
        Lang::Rust => build_rust(&dir, &out, options)?,
        Lang::Python => build_python(&dir, &out, options)?,
        Lang::Js => build_js(&dir, &out, options)?,
    }
    if !out.is_file() {
        return Err(ProjectError::NoOutput(out.display().to_string()));
    }
    Ok(out)
}

fn run(mut command: Command) -> Result<std::process::Output, ProjectError> {
    let shown = format!("{command:?}").replace('"', "");
    let output = command.output().map_err(|e| ProjectError::ToolFailed {
        command: shown.clone(),
        status: e.to_string(),
    })?;
    if output.status.success() {
        Ok(output)
    } else {
        Err(ProjectError::ToolFailed {
            command: shown,
            status: output.status.to_string(),
        })
    }
}

fn found(program: &OsString) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

const WASM_TARGET: &str = "wasm32-wasip2";

fn build_rust(dir: &Path, out: &Path, options: &BuildOptions) -> Result<(), ProjectError> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    if !found(&cargo) {
        return Err(ProjectError::ToolMissing {
            tool: "cargo",
            lang: Lang::Rust,
            hint: "install Rust with rustup (https://rustup.rs)".into(),
        });
    }
    ensure_wasm_target()?;
    let mut command = Command::new(&cargo);
    command
        .args(["build", "--release", "--target", WASM_TARGET])
        .arg("--message-format=json-render-diagnostics")
        .arg("--manifest-path")
        .arg(dir.join("Cargo.toml"))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if let Some(target_dir) = &options.target_dir {
        command.arg("--target-dir").arg(target_dir);
    }
    let output = run(command)?;
    // The cdylib's .wasm, as cargo reports it (wherever the target dir is).
    let built = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-artifact")
        .filter_map(|m| m["filenames"].as_array().cloned())
        .flatten()
        .filter_map(|f| f.as_str().map(PathBuf::from))
        .rfind(|f| f.extension().is_some_and(|e| e == "wasm"))
        .ok_or_else(|| {
            ProjectError::NoOutput("cargo built no .wasm; is the crate a cdylib?".into())
        })?;
    std::fs::copy(&built, out).map_err(io(out))?;
    Ok(())
}

/// Installs the wasm32-wasip2 standard library with rustup when it is
/// missing (and rustup is there to do it).
fn ensure_wasm_target() -> Result<(), ProjectError> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let libdir = Command::new(&rustc)
        .args(["--print", "target-libdir", "--target", WASM_TARGET])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    if libdir.is_some_and(|d| d.is_dir()) {
        return Ok(());
    }
    let mut rustup = Command::new("rustup");
    rustup.args(["target", "add", WASM_TARGET]);
    run(rustup)
        .map(drop)
        .map_err(|_| ProjectError::ToolMissing {
            tool: "the wasm32-wasip2 target",
            lang: Lang::Rust,
            hint: format!("run `rustup target add {WASM_TARGET}`"),
        })
}

fn build_python(dir: &Path, out: &Path, options: &BuildOptions) -> Result<(), ProjectError> {
    let program: OsString = options
        .componentize_py
        .clone()
        .map(Into::into)
        .or_else(|| std::env::var_os("COMPONENTIZE_PY"))
        .unwrap_or_else(|| "componentize-py".into());
    if !found(&program) {
        return Err(ProjectError::ToolMissing {
            tool: "componentize-py",
            lang: Lang::Python,
            hint: format!(
                "install it with `pip install {}` or set COMPONENTIZE_PY to its path",
                files::COMPONENTIZE_PY
            ),
        });
    }
    let mut command = Command::new(&program);
    command
        .arg("-d")
        .arg(dir.join("wit"))
        .args(["-w", "connector", "componentize", "-p"])
        .arg(dir)
        .arg("-o")
        .arg(out)
        .arg("app")
        // stdout is for the path of the component alone.
        .stdout(std::io::stderr())
        .stderr(Stdio::inherit());
    run(command).map(drop)
}

fn build_js(dir: &Path, out: &Path, options: &BuildOptions) -> Result<(), ProjectError> {
    let node: OsString = "node".into();
    if !found(&node) {
        return Err(ProjectError::ToolMissing {
            tool: "node",
            lang: Lang::Js,
            hint: "install Node.js 20 or later".into(),
        });
    }
    let tools = options
        .js_tools
        .clone()
        .or_else(|| std::env::var_os("SANDPORT_JS_TOOLS").map(PathBuf::from))
        .unwrap_or_else(|| dir.to_path_buf());
    if !tools
        .join("node_modules/@bytecodealliance/componentize-js")
        .is_dir()
    {
        return Err(ProjectError::ToolMissing {
            tool: "componentize-js",
            lang: Lang::Js,
            hint: format!(
                "run `npm install` in the project (or `npm install --prefix DIR {}` and set SANDPORT_JS_TOOLS=DIR)",
                files::COMPONENTIZE_JS
            ),
        });
    }
    let mut command = Command::new(&node);
    command
        .arg(dir.join("sandport-sdk/build.mjs"))
        .arg(dir)
        .arg(out)
        .env("SANDPORT_JS_TOOLS", &tools)
        .env("SANDPORT_WIT_DIR", dir.join("wit"))
        // stdout is for the path of the component alone.
        .stdout(std::io::stderr())
        .stderr(Stdio::inherit());
    run(command).map(drop)
}

#[cfg(test)]
mod tests;
