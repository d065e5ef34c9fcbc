//! Elasticsearch and OpenSearch (the built-in `opensearch` runs this same
//! component): `GET /_cluster/health` (or the configured path) must answer
//! JSON with the cluster's `status`: `green` is healthy, `yellow` degraded
//! (replica shards unassigned), `red` unhealthy (primary shards
//! unassigned). 401/403 are unhealthy: the cluster refused the credentials
//! (the host attaches them from the entry's `auth`). Details:
//! `cluster_name`, `status`, `number_of_nodes`,
//! `active_shards_percent_as_number`, `unassigned_shards`.

use sandport_sdk::{Config, Connector, ConnectorType, Error, HealthReport, export_connector, http};
use serde_json::Value;

const DETAILS: [&str; 5] = [
    "cluster_name",
    "status",
    "number_of_nodes",
    "active_shards_percent_as_number",
    "unassigned_shards",
];

struct Elasticsearch {
    request: http::Request,
    has_credentials: bool,
}

/// A string or a number from the answer, as text.
fn field(body: &Value, key: &str) -> Option<String> {
    match body.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// `type: reason` of an Elasticsearch error answer, e.g.
/// `security_exception: missing authentication credentials ...`.
fn error_text(body: &Value) -> Option<String> {
    let error = body.get("error")?;
    if let Some(text) = error.as_str() {
        return Some(text.chars().take(300).collect());
    }
    let kind = error.get("type").and_then(Value::as_str);
    let reason = error.get("reason").and_then(Value::as_str);
    let text = match (kind, reason) {
        (Some(kind), Some(reason)) => format!("{kind}: {reason}"),
        (Some(text), None) | (None, Some(text)) => text.to_string(),
        (None, None) => return None,
    };
    Some(text.chars().take(300).collect())
}

impl Connector for Elasticsearch {
    const NAME: &'static str = "Elasticsearch";
    const TYPE: ConnectorType = ConnectorType::Observability;
    const DESCRIPTION: &'static str = "Elasticsearch or OpenSearch cluster health";

    fn new(config: &Config) -> Result<Self, String> {
        Ok(Elasticsearch {
            request: config.health_request("/_cluster/health"),
            has_credentials: config.has_credentials(),
        })
    }

    fn health_check(&mut self) -> Result<HealthReport, Error> {
        let response = self.request.send()?;
        let what = response.describe_status();
        let body: Value = serde_json::from_slice(response.body()).unwrap_or(Value::Null);
        if matches!(response.status, 401 | 403) {
            let hint = if self.has_credentials {
                ""
            } else {
                "; the entry has no `auth`"
            };
            let why = error_text(&body)
                .map(|e| format!(" ({e})"))
                .unwrap_or_default();
            return Err(Error::new(format!(
                "{what}: the cluster refused the credentials{why}{hint}"
            )));
        }
        // 408: `wait_for_status` timed out; the answer is still the health.
        let answered = response.is_success() || response.status == 408;
        let status = body.get("status").and_then(Value::as_str);
        let Some(status) = status.filter(|_| answered) else {
            return Err(Error::new(match (error_text(&body), answered) {
                (Some(error), _) => format!("{what}: {error}"),
                (None, false) => what,
                (None, true) if body.is_null() => format!("{what} but the body is not JSON"),
                (None, true) => format!("{what} but the answer has no \"status\" field"),
            }));
        };
        let name = field(&body, "cluster_name").unwrap_or_else(|| "?".into());
        let unassigned = field(&body, "unassigned_shards").unwrap_or_else(|| "?".into());
        let active = body
            .get("active_shards_percent_as_number")
            .and_then(Value::as_f64)
            .map(|p| format!(", {p:.1}% of shards active"))
            .unwrap_or_default();
        let summary =
            format!("cluster \"{name}\" is {status}: {unassigned} unassigned shards{active}");
        let report = match status {
            "green" => HealthReport::healthy().message(what),
            "yellow" => HealthReport::degraded(summary),
            "red" => HealthReport::unhealthy(summary),
            other => HealthReport::unhealthy(format!(
                "{what} with an unknown cluster status \"{other}\""
            )),
        };
        Ok(report.details_from(DETAILS.map(|key| (key, field(&body, key)))))
    }
}

export_connector!(Elasticsearch);
