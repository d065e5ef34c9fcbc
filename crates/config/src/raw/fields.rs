//! Reading one map of an entry: [`Fields`] records a problem per bad key;
//! the helpers name YAML keys and values for those problems.

use std::collections::BTreeMap;

use serde_norway::{Mapping, Value};

pub use crate::units::describe;

pub fn key_name(key: &Value) -> String {
    match key {
        Value::String(s) => s.clone(),
        other => serde_norway::to_string(other)
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "?".into()),
    }
}

/// A key as a problem names it: the empty key as `""`, since an empty
/// [`crate::Problem::key`] means the entry (or file) as a whole.
pub fn problem_key(key: &Value) -> String {
    match key_name(key) {
        name if name.is_empty() => "\"\"".into(),
        name => name,
    }
}

pub fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::Null => Some(String::new()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) => Some(s.clone()),
        _ => None,
    }
}

/// Reads the keys of one map, recording a problem per bad key.
pub struct Fields<'a, 'p> {
    map: &'a Mapping,
    prefix: &'static str,
    problems: &'p mut Vec<(String, String)>,
}

impl<'a, 'p> Fields<'a, 'p> {
    pub fn new(
        map: &'a Mapping,
        prefix: &'static str,
        known: &[&str],
        problems: &'p mut Vec<(String, String)>,
    ) -> Self {
        for key in map.keys() {
            let name = key_name(key);
            if !known.contains(&name.as_str()) {
                let hint = known
                    .iter()
                    .map(|k| (strsim::levenshtein(k, &name), k))
                    .min()
                    .filter(|(distance, k)| *distance <= 2 && *distance < k.len().min(name.len()))
                    .map(|(_, k)| format!(" (did you mean `{k}`?)"))
                    .unwrap_or_default();
                problems.push((
                    format!("{prefix}{}", problem_key(key)),
                    format!("unknown key{hint}; known keys: {}", known.join(", ")),
                ));
            }
        }
        Fields {
            map,
            prefix,
            problems,
        }
    }

    pub fn problem(&mut self, key: &str, message: impl Into<String>) {
        self.problems
            .push((format!("{}{key}", self.prefix), message.into()));
    }

    pub fn get(&self, key: &str) -> Option<&'a Value> {
        match self.map.get(key) {
            None | Some(Value::Null) => None,
            Some(value) => Some(value),
        }
    }

    pub fn string(&mut self, key: &str) -> Option<String> {
        match self.get(key)? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            other => {
                let found = describe(other);
                self.problem(key, format!("expected a string, found {found}"));
                None
            }
        }
    }

    pub fn boolean(&mut self, key: &str) -> Option<bool> {
        match self.get(key)? {
            Value::Bool(b) => Some(*b),
            other => {
                let found = describe(other);
                self.problem(key, format!("expected true or false, found {found}"));
                None
            }
        }
    }

    pub fn with<T>(
        &mut self,
        key: &str,
        parse: impl FnOnce(&Value) -> Result<T, String>,
    ) -> Option<T> {
        let value = self.get(key)?;
        match parse(value) {
            Ok(v) => Some(v),
            Err(message) => {
                self.problem(key, message);
                None
            }
        }
    }

    pub fn choice<T: Copy>(&mut self, key: &str, options: &[(&str, T)]) -> Option<T> {
        let text = self.string(key)?;
        let found = options
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(text.trim()));
        match found {
            Some((_, value)) => Some(*value),
            None => {
                let names: Vec<&str> = options.iter().map(|(n, _)| *n).collect();
                self.problem(key, format!("`{text}` is not one of: {}", names.join(", ")));
                None
            }
        }
    }

    pub fn string_map(&mut self, key: &str) -> BTreeMap<String, String> {
        let Some(value) = self.get(key) else {
            return BTreeMap::new();
        };
        let Value::Mapping(map) = value else {
            let found = describe(value);
            self.problem(
                key,
                format!("expected a map of names to values, found {found}"),
            );
            return BTreeMap::new();
        };
        let mut out = BTreeMap::new();
        for (k, v) in map {
            match scalar(v) {
                Some(text) => {
                    out.insert(key_name(k), text);
                }
                None => {
                    let found = describe(v);
                    self.problem(
                        &format!("{key}.{}", key_name(k)),
                        format!("expected a plain value, found {found}"),
                    );
                }
            }
        }
        out
    }

    pub fn sub_map(&mut self, key: &str) -> Option<&'a Mapping> {
        match self.get(key)? {
            Value::Mapping(m) => Some(m),
            other => {
                let found = describe(other);
                self.problem(key, format!("expected a map, found {found}"));
                None
            }
        }
    }
}
