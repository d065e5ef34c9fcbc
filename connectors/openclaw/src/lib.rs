//! OpenClaw gateway: healthy when `GET /health` (or the configured path,
//! e.g. `/readyz`) answers 2xx. A JSON answer's `status` and `version` are
//! reported in the details, and `"ok": false` is degraded. 401/403 are
//! unhealthy: the gateway refused the token, which the host attaches from
//! the entry's `auth: {type: bearer, token: ...}`.

use sandport_sdk::{Config, Connector, ConnectorType, Error, HealthReport, export_connector, http};
use serde_json::Value;

struct OpenClaw {
    request: http::Request,
    has_credentials: bool,
}

impl Connector for OpenClaw {
    const NAME: &'static str = "OpenClaw";
    const TYPE: ConnectorType = ConnectorType::Agent;
    const DESCRIPTION: &'static str = "OpenClaw agent gateway";

    fn new(config: &Config) -> Result<Self, String> {
        Ok(OpenClaw {
            request: config.health_request("/health"),
            has_credentials: config.has_credentials(),
        })
    }

    fn health_check(&mut self) -> Result<HealthReport, Error> {
        let response = self.request.send()?;
        let what = response.describe_status();
        if matches!(response.status, 401 | 403) {
            let hint = if self.has_credentials {
                ""
            } else {
                "; the entry has no `auth` (type: bearer)"
            };
            return Err(Error::new(format!(
                "{what}: the gateway refused the token{hint}"
            )));
        }
        let response = response.expect_success()?;
        let body: Value = serde_json::from_slice(response.body()).unwrap_or(Value::Null);
        let text = |key: &str| match body.get(key) {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        let report = if body.get("ok").and_then(Value::as_bool) == Some(false) {
            let status = text("status")
                .map(|s| format!(" (status: {s})"))
                .unwrap_or_default();
            HealthReport::degraded(format!("{what} but the gateway reports ok: false{status}"))
        } else {
            HealthReport::from(response)
        };
        Ok(report.details_from(["status", "version"].map(|key| (key, text(key)))))
    }
}

export_connector!(OpenClaw);
