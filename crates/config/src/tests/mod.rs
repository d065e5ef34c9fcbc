//! Tests of the config parser, one module per topic: defaults, every key of
//! a full entry, one test per kind of problem (each names its entry and key,
//! and the other entries still load) by section, file-level errors, secret
//! redaction, and the entry shape written back.
//!
//! `${VAR}` tests go through [`raw::parse_document`] with a closure for the
//! environment, so no test reads or writes the real process environment.

mod alerts;
mod auth;
mod defaults;
mod file;
mod full_entry;
mod health;
mod problems;
mod properties;
mod round_trip;
mod sandbox;
mod secrets;

use std::path::Path;

use super::raw;
use super::*;

/// prometheus, grafana, jaeger (observability, with ports) and http (custom,
/// no default port), like the real built-ins.
struct TestBuiltins;

impl BuiltinCatalog for TestBuiltins {
    fn defaults(&self, name: &str) -> Option<BuiltinDefaults> {
        let d = BuiltinDefaults::new;
        match name {
            "prometheus" => Some(d(ConnectorType::Observability, Some(9090))),
            "grafana" => Some(d(ConnectorType::Observability, Some(3000))),
            "jaeger" => Some(d(ConnectorType::Observability, Some(16686))),
            "http" => Some(d(ConnectorType::Custom, None)),
            "slack" => Some(BuiltinDefaults {
                host: Some("slack.com"),
                scheme: Some(Scheme::Https),
                ..d(ConnectorType::Messaging, Some(443))
            }),
            _ => None,
        }
    }

    fn names(&self) -> Vec<&'static str> {
        vec!["prometheus", "grafana", "jaeger", "http"]
    }
}

const SOURCE: &str = "test.yaml";

fn base_dir() -> &'static Path {
    Path::new("/etc/sandport")
}

fn no_env(_: &str) -> Option<String> {
    None
}

fn try_load_with_env(
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Loaded, ConfigError> {
    raw::parse_document(
        text,
        SOURCE,
        ComponentPaths::Anywhere(base_dir()),
        &TestBuiltins,
        env,
    )
}

fn load_with_env(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Loaded {
    try_load_with_env(text, env).unwrap_or_else(|e| panic!("file rejected: {e}\n{text}"))
}

fn load(text: &str) -> Loaded {
    load_with_env(text, &no_env)
}

fn load_err(text: &str) -> ConfigError {
    match try_load_with_env(text, &no_env) {
        Ok(loaded) => panic!("expected a file-level error, got {loaded:#?}"),
        Err(e) => e,
    }
}

fn ids(loaded: &Loaded) -> Vec<&str> {
    loaded.connectors.iter().map(|c| c.id.as_str()).collect()
}

fn connector<'a>(loaded: &'a Loaded, id: &str) -> &'a ConnectorConfig {
    loaded
        .connectors
        .iter()
        .find(|c| c.id == id)
        .unwrap_or_else(|| panic!("no connector `{id}`; problems: {:#?}", loaded.problems))
}

/// The one connector of a file that must load cleanly.
fn single(text: &str) -> ConnectorConfig {
    let loaded = load(text);
    assert!(loaded.problems.is_empty(), "{:#?}", loaded.problems);
    assert_eq!(loaded.connectors.len(), 1, "{text}");
    loaded.connectors.into_iter().next().unwrap()
}

fn assert_contains(haystack: &str, needle: &str) {
    assert!(
        haystack.contains(needle),
        "expected {needle:?} in:\n{haystack}"
    );
}

/// A document with `lines` as entry `connectors[1]`, between the good
/// entries `prometheus` and `grafana`. Nested lines carry their own extra
/// indentation.
fn between_good_entries(lines: &[&str]) -> String {
    let mut doc = String::from("connectors:\n  - id: prometheus\n");
    for (i, line) in lines.iter().enumerate() {
        doc.push_str(if i == 0 { "  - " } else { "    " });
        doc.push_str(line);
        doc.push('\n');
    }
    doc.push_str("  - id: grafana\n");
    doc
}

/// Parses `lines` as `connectors[1]` between two good entries, checks that
/// both good entries still load and that there is exactly one problem, for
/// `entry` and `key`; returns its message.
fn rejected(lines: &[&str], entry: &str, key: &str) -> String {
    rejected_with_env(lines, entry, key, &no_env)
}

fn rejected_with_env(
    lines: &[&str],
    entry: &str,
    key: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> String {
    let loaded = load_with_env(&between_good_entries(lines), env);
    assert_eq!(
        ids(&loaded),
        ["prometheus", "grafana"],
        "{:#?}",
        loaded.problems
    );
    assert_eq!(loaded.problems.len(), 1, "{:#?}", loaded.problems);
    let problem = &loaded.problems[0];
    assert_eq!(problem.entry, entry, "{problem:?}");
    assert_eq!(problem.key, key, "{problem:?}");
    problem.message.clone()
}
