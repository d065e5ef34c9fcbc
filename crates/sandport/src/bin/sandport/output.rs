//! `sandport check` output: a table for people, JSON for scripts.

use std::fmt::Write;
use std::time::UNIX_EPOCH;

use sandport_core::health::format_latency;
use sandport_core::{ConnectorInfo, HealthSnapshot};
use serde_json::{Map, Value, json};

pub fn table(results: &[(ConnectorInfo, HealthSnapshot)]) -> String {
    let rows: Vec<[String; 5]> = results
        .iter()
        .map(|(info, h)| {
            [
                info.id.clone(),
                info.connector_type.to_string(),
                h.status.to_string(),
                h.latency.map(format_latency).unwrap_or_else(|| "-".into()),
                h.message.clone(),
            ]
        })
        .collect();
    let header = ["ID", "TYPE", "STATUS", "LATENCY", "MESSAGE"].map(String::from);
    render(&header, &rows)
}

pub fn json(results: &[(ConnectorInfo, HealthSnapshot)]) -> String {
    let items: Vec<Value> = results
        .iter()
        .map(|(info, h)| {
            let details: Map<String, Value> = h
                .details
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect();
            json!({
                "id": info.id,
                "name": info.name,
                "type": info.connector_type.as_str(),
                "endpoint": info.endpoint,
                "status": h.status.as_str(),
                "message": h.message,
                "latency_ms": h.latency.map(|l| l.as_secs_f64() * 1000.0),
                "failure": h.failure.as_ref().map(|f| f.as_str()),
                "details": details,
                "checked_at": h.checked_at
                    .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                    .map(|d| d.as_millis() as u64),
            })
        })
        .collect();
    serde_json::to_string_pretty(&Value::Array(items)).unwrap_or_else(|_| "[]".into())
}

pub fn list_table(list: &[ConnectorInfo]) -> String {
    let header = ["ID", "TYPE", "ENABLED", "STATUS", "ENDPOINT"].map(String::from);
    let rows: Vec<[String; 5]> = list
        .iter()
        .map(|i| {
            [
                i.id.clone(),
                i.connector_type.to_string(),
                i.enabled.to_string(),
                i.health.status.to_string(),
                i.endpoint.clone(),
            ]
        })
        .collect();
    render(&header, &rows)
}

pub fn list_json(list: &[ConnectorInfo]) -> String {
    let items: Vec<Value> = list.iter().map(sandport_server::rest::info_json).collect();
    serde_json::to_string_pretty(&Value::Array(items)).unwrap_or_else(|_| "[]".into())
}

pub fn describe(info: &ConnectorInfo, config: &sandport_config::ConnectorConfig) -> String {
    let mut out = String::new();
    let h = &info.health;
    let _ = writeln!(out, "id:          {}", info.id);
    let _ = writeln!(out, "name:        {}", info.name);
    let _ = writeln!(out, "type:        {}", info.connector_type);
    let _ = writeln!(out, "endpoint:    {}", info.endpoint);
    let _ = writeln!(out, "enabled:     {}", info.enabled);
    let _ = writeln!(out, "status:      {} {}", h.status, h.message);
    let _ = writeln!(out, "component:   {}", info.component_digest);
    let entry = sandport_config::to_value(config, sandport_config::Secrets::Redact);
    let yaml = serde_norway::to_string(&entry).unwrap_or_default();
    let _ = writeln!(out, "config:");
    for line in yaml.lines() {
        let _ = writeln!(out, "  {line}");
    }
    out
}

pub fn event_line(e: &sandport_core::HealthEvent) -> String {
    let at = humantime::format_rfc3339_seconds(e.checked_at);
    format!(
        "{at} {} {} -> {}: {}",
        e.id, e.previous, e.status, e.message
    )
}

pub fn render<const N: usize>(header: &[String; N], rows: &[[String; N]]) -> String {
    let mut widths = header.clone().map(|h| h.chars().count());
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(header).chain(rows) {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<width$}  ", width = widths[i]);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}
