//! [`ComponentRef`]: which component implements a connector, and what each
//! kind of caller may name. The operator's file may name any path; an API
//! caller only a built-in, an uploaded component by digest, or a file inside
//! the service's components directory ([`ComponentPaths`]).

use std::fmt;
use std::path::{Component, Path, PathBuf};

/// Which component implements a connector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ComponentRef {
    /// One of the components built into the binary, by name.
    Builtin(String),
    /// A `.wasm` component on disk named by the operator's file (relative
    /// paths resolved against the file's directory).
    Path(PathBuf),
    /// A file inside the service's components directory, named by an API
    /// caller: relative, with no `..`. Where it leads is checked again when
    /// it is read, so that a symbolic link cannot lead out.
    InComponentsDir(PathBuf),
    /// A component uploaded through the API, by the hex SHA-256 of its
    /// bytes (`sha256:<hex>` in an entry).
    Uploaded(String),
}

/// The prefix of an uploaded component's name in an entry.
pub const DIGEST_PREFIX: &str = "sha256:";

impl ComponentRef {
    /// As an entry's `component` key holds it.
    pub fn entry_text(&self) -> String {
        match self {
            ComponentRef::Builtin(name) => name.clone(),
            ComponentRef::Path(path) | ComponentRef::InComponentsDir(path) => {
                path.display().to_string()
            }
            ComponentRef::Uploaded(digest) => format!("{DIGEST_PREFIX}{digest}"),
        }
    }
}

impl fmt::Display for ComponentRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ComponentRef::Builtin(name) => write!(f, "built-in `{name}`"),
            ComponentRef::Path(path) => write!(f, "{}", path.display()),
            ComponentRef::InComponentsDir(path) => {
                write!(f, "{} in the components directory", path.display())
            }
            ComponentRef::Uploaded(digest) => {
                write!(f, "uploaded component {DIGEST_PREFIX}{digest}")
            }
        }
    }
}

/// Where the component paths of the entries being parsed may point.
#[derive(Debug, Clone, Copy)]
pub enum ComponentPaths<'a> {
    /// The operator's own file: any path, relative ones against this
    /// directory.
    Anywhere(&'a Path),
    /// An entry sent through an API (or saved from one): only a relative
    /// path inside the components directory.
    ComponentsDir,
}

/// The hex digest of `sha256:<64 lowercase hex digits>`, or why not.
pub fn parse_digest(text: &str) -> Result<String, String> {
    let hex = text.strip_prefix(DIGEST_PREFIX).unwrap_or(text);
    if hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        Ok(hex.to_string())
    } else {
        Err(format!(
            "`{DIGEST_PREFIX}` must be followed by the 64 lowercase hex digits of the component's SHA-256, as the upload answered"
        ))
    }
}

/// An API caller's component path: relative, each part a plain name (no
/// `..`, no root), so that joined to the components directory it stays
/// inside it.
pub fn confined_path(text: &str) -> Result<PathBuf, String> {
    const WHAT: &str = "an API caller may name a built-in, an uploaded component (`sha256:<digest>`) or a file in the service's components directory by a relative path";
    if text.chars().any(char::is_control) {
        return Err(format!("{WHAT}; this path holds a control character"));
    }
    let path = Path::new(text);
    let mut confined = PathBuf::new();
    for part in path.components() {
        match part {
            Component::Normal(name) => confined.push(name),
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => {
                return Err(format!("{WHAT}; `{text}` is absolute"));
            }
            Component::ParentDir => {
                return Err(format!("{WHAT}; `{text}` climbs out with `..`"));
            }
        }
    }
    if confined.as_os_str().is_empty() {
        return Err(format!("{WHAT}; `{text}` names no file"));
    }
    Ok(confined)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confined_paths_stay_inside() {
        assert_eq!(
            confined_path("./team/check.wasm"),
            Ok(PathBuf::from("team/check.wasm"))
        );
        for bad in [
            "/etc/passwd",
            "../x.wasm",
            "a/../../x.wasm",
            ".",
            "",
            "a\0b.wasm",
        ] {
            assert!(confined_path(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn digests_are_64_lowercase_hex() {
        let hex = "ab".repeat(32);
        assert_eq!(parse_digest(&format!("sha256:{hex}")), Ok(hex.clone()));
        assert!(parse_digest(&format!("sha256:{}", hex.to_uppercase())).is_err());
        assert!(parse_digest(&format!("sha256:{}", &hex[1..])).is_err());
        assert!(parse_digest("sha256:../../etc/passwd").is_err());
    }
}
