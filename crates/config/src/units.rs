//! Durations (`30s`, `1m30s`, `500ms`, or a number of seconds) and sizes
//! (`64MiB`, `512KiB`, or a number of bytes) as operators write them, and
//! how a YAML value is named in a message ("found the string `x`").

use std::time::Duration;

use serde_norway::Value;

/// Human description of a YAML value's kind, for "expected X, found Y".
pub fn describe(value: &Value) -> String {
    match value {
        Value::Null => "nothing".into(),
        Value::Bool(b) => format!("the boolean `{b}`"),
        Value::Number(n) => format!("the number `{n}`"),
        Value::String(s) => format!("the string `{s}`"),
        Value::Sequence(_) => "a list".into(),
        Value::Mapping(_) => "a map".into(),
        Value::Tagged(t) => format!("a value tagged {}", t.tag),
    }
}

pub fn duration(value: &Value) -> Result<Duration, String> {
    match value {
        Value::Number(n) => n
            .as_f64()
            .and_then(|secs| Duration::try_from_secs_f64(secs).ok())
            .ok_or_else(|| format!("`{n}` is not a duration; write it like 30s, 500ms or 1m")),
        Value::String(s) => humantime::parse_duration(s.trim())
            .map_err(|e| format!("`{s}` is not a duration ({e}); write it like 30s, 500ms or 1m")),
        other => Err(format!(
            "expected a duration like 30s, found {}",
            describe(other)
        )),
    }
}

pub fn size(value: &Value) -> Result<u64, String> {
    match value {
        Value::Number(n) => n
            .as_u64()
            .ok_or_else(|| format!("`{n}` is not a size; write it like 64MiB")),
        Value::String(s) => s
            .trim()
            .parse::<bytesize::ByteSize>()
            .map(|b| b.as_u64())
            .map_err(|e| format!("`{s}` is not a size ({e}); write it like 64MiB or 512KiB")),
        other => Err(format!(
            "expected a size like 64MiB, found {}",
            describe(other)
        )),
    }
}

/// Formats a duration the way the config writes it (`30s`, `1m 30s`, `500ms`).
pub fn format_duration(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}
