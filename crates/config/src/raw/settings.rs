//! The `settings` map, flattened to `a.b` keys.

use std::collections::BTreeMap;

use serde_norway::Value;

use super::fields::{key_name, scalar};

/// Nested maps become `a.b` keys; lists of plain values are joined with `,`.
pub fn flatten(
    prefix: &str,
    value: &Value,
    out: &mut BTreeMap<String, String>,
    problems: &mut Vec<(String, String)>,
) {
    match value {
        Value::Mapping(map) => {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    key_name(k)
                } else {
                    format!("{prefix}.{}", key_name(k))
                };
                flatten(&key, v, out, problems);
            }
        }
        Value::Sequence(items) => {
            let parts: Option<Vec<String>> = items.iter().map(scalar).collect();
            match parts {
                Some(parts) => {
                    out.insert(prefix.to_string(), parts.join(","));
                }
                None => problems.push((
                    format!("settings.{prefix}"),
                    "lists in settings may only hold plain values".into(),
                )),
            }
        }
        Value::Tagged(_) => problems.push((
            format!("settings.{prefix}"),
            "tagged values are not supported in settings".into(),
        )),
        other => {
            out.insert(prefix.to_string(), scalar(other).unwrap_or_default());
        }
    }
}
