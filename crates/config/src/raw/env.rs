//! `${VAR}` in auth fields: expanding it from the environment, and finding
//! it where it may not be expanded (entries sent through an API).

use serde_norway::Value;

use super::fields::key_name;

/// Looks up an environment variable (a closure, so tests need not touch the
/// process environment).
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The auth keys read as written, never expanded (see `auth.rs`): a `${`
/// there reads no variable. Every other key is checked, so that a key added
/// later is refused until it is known not to expand.
const LITERAL: &[&str] = &["type", "region", "service"];

/// The auth keys of an entry whose values hold a `${` that would expand.
pub fn env_references(entry: &Value) -> Vec<String> {
    let expands = |text: &str| {
        text.match_indices("${")
            .any(|(i, _)| i == 0 || text.as_bytes()[i - 1] != b'$')
    };
    let Some(Value::Mapping(auth)) = entry.get("auth") else {
        return Vec::new();
    };
    let mut keys = Vec::new();
    for (key, value) in auth {
        let name = key_name(key);
        match value {
            Value::String(text) if !LITERAL.contains(&name.as_str()) && expands(text) => {
                keys.push(format!("auth.{name}"));
            }
            Value::Mapping(headers) if name == "headers" => {
                for (header, value) in headers {
                    if value.as_str().is_some_and(expands) {
                        keys.push(format!("auth.headers.{}", key_name(header)));
                    }
                }
            }
            _ => {}
        }
    }
    keys
}

/// Replaces `${NAME}` with the environment variable NAME; `$${` is a
/// literal `${`. Errors never quote the text: it may be a secret.
pub fn expand_env(text: &str, env: Env<'_>) -> Result<String, String> {
    const HINT: &str = "(write `$${` for a literal `${`)";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        if rest[..start].ends_with('$') {
            out.push_str(&rest[..start - 1]);
            out.push_str("${");
            rest = &rest[start + 2..];
            continue;
        }
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            return Err(format!("has `${{` without a closing `}}` {HINT}"));
        };
        let name = &after[..end];
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!(
                "has a `${{...}}` that is not an environment variable name (letters, digits, `_`) {HINT}"
            ));
        }
        match env(name) {
            Some(value) => out.push_str(&value),
            None => return Err(format!("environment variable `{name}` is not set")),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}
