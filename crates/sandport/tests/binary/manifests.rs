//! What the deployment tests (`deploy.rs`, `deploy_cluster.rs`) read
//! manifests and the binary's help with.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_norway::Value;

use super::support::SANDPORT;

pub(super) fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub(super) fn read(relative: &str) -> String {
    let path = repo_root().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

pub(super) fn output_text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The documents of a YAML stream. A line starting with `---` always ends
/// a document (even inside a block scalar), so splitting there is exact;
/// documents holding only comments are dropped.
pub(super) fn yaml_documents(relative: &str) -> Vec<Value> {
    let text = read(relative);
    let mut documents = vec![String::new()];
    for line in text.lines() {
        let marker = line == "---" || line.starts_with("--- ");
        match documents.last_mut() {
            Some(current) if !marker => {
                current.push_str(line);
                current.push('\n');
            }
            _ => documents.push(String::new()),
        }
    }
    documents
        .iter()
        .enumerate()
        .map(|(i, doc)| {
            serde_norway::from_str::<Value>(doc)
                .unwrap_or_else(|e| panic!("{relative}, document {i}: not YAML: {e}"))
        })
        .filter(|doc| !doc.is_null())
        .collect()
}

/// The value at `path` below `value`, or a panic naming the path and what.
pub(super) fn at<'a>(value: &'a Value, path: &[&str], what: &str) -> &'a Value {
    path.iter().fold(value, |v, key| {
        let next = &v[*key];
        assert!(!next.is_null(), "{what}: no {} in {v:?}", path.join("."));
        next
    })
}

pub(super) fn text_at<'a>(value: &'a Value, path: &[&str], what: &str) -> &'a str {
    at(value, path, what)
        .as_str()
        .unwrap_or_else(|| panic!("{what}: {} is not a string", path.join(".")))
}

pub(super) fn list_at<'a>(value: &'a Value, path: &[&str], what: &str) -> &'a [Value] {
    at(value, path, what)
        .as_sequence()
        .unwrap_or_else(|| panic!("{what}: {} is not a list", path.join(".")))
}

/// `sandport serve --help`.
pub(super) fn serve_help() -> String {
    let out = Command::new(SANDPORT)
        .args(["serve", "--help"])
        .output()
        .expect("run sandport serve --help");
    assert!(out.status.success(), "{}", output_text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Whether `help` documents `flag` (as a whole word).
pub(super) fn documents_flag(help: &str, flag: &str) -> bool {
    help.match_indices(flag).any(|(i, _)| {
        help[i + flag.len()..]
            .chars()
            .next()
            .is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '-'))
    })
}

/// The `--flags` among `args`, without `=VALUE`.
pub(super) fn flags<'a>(args: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    args.into_iter()
        .filter(|a| a.starts_with("--"))
        .map(|a| a.split_once('=').map_or(a, |(flag, _)| flag))
        .collect()
}

/// A Kubernetes quantity of bytes (`152Mi`, `1Gi`, `155536Ki`, `1000000`).
pub(super) fn bytes(quantity: &str) -> u64 {
    let units = [("Ki", 1u64 << 10), ("Mi", 1 << 20), ("Gi", 1 << 30)];
    let (digits, unit) = units
        .iter()
        .find_map(|(suffix, unit)| quantity.strip_suffix(suffix).map(|d| (d, *unit)))
        .unwrap_or((quantity, 1));
    digits
        .parse::<u64>()
        .unwrap_or_else(|_| panic!("`{quantity}` is not a whole quantity of bytes"))
        * unit
}
