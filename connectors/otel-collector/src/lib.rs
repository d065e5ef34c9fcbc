//! OpenTelemetry Collector, through its `health_check` extension (port
//! 13133): healthy when `GET /` (or the configured path, the extension's
//! `path`) answers 2xx, normally `{"status":"Server available", ...}`. The
//! extension answers 503 (`"Server not available"`) while the collector is
//! not running its pipelines: unhealthy, with that status text. `status`
//! and `uptime` from the JSON answer are reported in the details; a custom
//! `response_body` (plain text) is accepted too.

use sandport_sdk::{Config, Connector, ConnectorType, Error, HealthReport, export_connector, http};
use serde_json::Value;

struct OtelCollector {
    request: http::Request,
}

/// What the extension said: the JSON `status` (v1 and v2 of the extension),
/// else the first line of a text body; `None` for an empty or HTML body.
fn said(body: &Value, raw: &[u8]) -> Option<String> {
    if let Some(status) = body.get("status").and_then(Value::as_str) {
        return Some(status.to_string());
    }
    if !body.is_null() {
        return None;
    }
    let text = String::from_utf8_lossy(raw);
    let line = text.lines().map(str::trim).find(|l| !l.is_empty())?;
    (!line.starts_with('<')).then(|| line.chars().take(200).collect())
}

impl Connector for OtelCollector {
    const NAME: &'static str = "OpenTelemetry Collector";
    const TYPE: ConnectorType = ConnectorType::Observability;
    const DESCRIPTION: &'static str = "OpenTelemetry Collector, through its health_check extension";

    fn new(config: &Config) -> Result<Self, String> {
        Ok(OtelCollector {
            request: config.health_request("/"),
        })
    }

    fn health_check(&mut self) -> Result<HealthReport, Error> {
        let response = self.request.send()?;
        let body: Value = serde_json::from_slice(response.body()).unwrap_or(Value::Null);
        let status = said(&body, response.body());
        let report = match (&status, response.is_success()) {
            (_, true) => HealthReport::healthy().message(response.describe_status()),
            (Some(status), false) => {
                HealthReport::unhealthy(format!("{}: {status}", response.describe_status()))
            }
            (None, false) => HealthReport::unhealthy(response.describe_status()),
        };
        let uptime = body
            .get("uptime")
            .and_then(Value::as_str)
            .filter(|u| !u.is_empty());
        Ok(report.details_from([
            ("status", status.as_deref()),
            ("uptime", uptime),
            ("error", body.get("error").and_then(Value::as_str)),
        ]))
    }
}

export_connector!(OtelCollector);
