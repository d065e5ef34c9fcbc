//! An MCP (Model Context Protocol) server over the Streamable HTTP
//! transport: `POST` to the endpoint (`health_check.path`, default `/mcp`)
//! a JSON-RPC `initialize` request (protocol `2025-06-18`). Healthy when
//! the answer, JSON or an event stream (SSE), holds the response to that
//! request with a `protocolVersion` and a `serverInfo`; a JSON-RPC error or
//! anything else is unhealthy. Details: `server_name`, `server_version`,
//! `protocol_version`. A session the server opened (`Mcp-Session-Id`) is
//! ended with a `DELETE`. Credentials, if any, are attached by the host.

use sandport_sdk::{Config, Connector, ConnectorType, Error, HealthReport, export_connector, http};
use serde_json::Value;

const PROTOCOL_VERSION: &str = "2025-06-18";
const SESSION_HEADER: &str = "Mcp-Session-Id";

struct Mcp {
    url: String,
    next_id: u64,
    has_credentials: bool,
}

/// The data of each event of a `text/event-stream` body, in order.
fn sse_events(text: &str) -> Vec<String> {
    let mut events = Vec::new();
    let mut data: Option<String> = None;
    for line in text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l)) {
        if line.is_empty() {
            events.extend(data.take());
            continue;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        if field == "data" {
            let value = value.strip_prefix(' ').unwrap_or(value);
            match &mut data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => data = Some(value.to_string()),
            }
        }
    }
    events.extend(data);
    events
}

/// The JSON-RPC response with this id in a JSON or event-stream body, or
/// an error response with a null id (the server could not read the id).
fn find_response(response: &http::Response, id: u64) -> Option<Value> {
    let is_ours = |v: &Value| match v.get("id") {
        _ if v.get("method").is_some() => false,
        Some(Value::Number(n)) => n.as_u64() == Some(id),
        None | Some(Value::Null) => v.get("error").is_some(),
        Some(_) => false,
    };
    let text = response.text();
    let stream = response
        .header("content-type")
        .is_some_and(|t| t.trim_start().starts_with("text/event-stream"));
    if !stream && let Ok(value) = serde_json::from_str::<Value>(&text) {
        return is_ours(&value).then_some(value);
    }
    sse_events(&text)
        .iter()
        .filter_map(|data| serde_json::from_str::<Value>(data).ok())
        .find(is_ours)
}

/// The first line of a short text answer, for messages.
fn first_line(response: &http::Response) -> Option<String> {
    let text = response.text();
    let line = text.lines().map(str::trim).find(|l| !l.is_empty())?;
    (!line.starts_with('<')).then(|| line.chars().take(200).collect())
}

impl Mcp {
    /// What a non-2xx answer without a JSON-RPC response means.
    fn http_failure(&self, response: &http::Response) -> String {
        let what = response.describe_status();
        let hint = match response.status {
            401 | 403 if self.has_credentials => " (the server refused the credentials)".into(),
            401 | 403 => " (the server wants credentials; the entry has no `auth`)".into(),
            404 => " (is health_check.path the server's MCP endpoint?)".into(),
            405 => {
                " (not a Streamable HTTP endpoint; the older HTTP+SSE transport is not supported)"
                    .into()
            }
            _ => first_line(response)
                .map(|l| format!(": {l}"))
                .unwrap_or_default(),
        };
        format!("{what}{hint}")
    }

    /// The report, and the protocol version the server chose.
    fn judge(&self, response: &http::Response, id: u64) -> (HealthReport, Option<String>) {
        let what = response.describe_status();
        let Some(answer) = find_response(response, id) else {
            if !response.is_success() {
                return (HealthReport::unhealthy(self.http_failure(response)), None);
            }
            return (
                HealthReport::unhealthy(format!(
                    "{what} but its answer holds no JSON-RPC response to initialize (id {id})"
                )),
                None,
            );
        };
        if let Some(error) = answer.get("error") {
            let message = error
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("no message");
            let code = error
                .get("code")
                .and_then(Value::as_i64)
                .map(|c| format!(" (code {c})"))
                .unwrap_or_default();
            return (
                HealthReport::unhealthy(format!("{what}: initialize failed: {message}{code}")),
                None,
            );
        }
        let result = answer.get("result").unwrap_or(&Value::Null);
        let version = result.get("protocolVersion").and_then(Value::as_str);
        let info = result.get("serverInfo").filter(|i| i.is_object());
        let (Some(version), Some(info)) = (version, info) else {
            return (
                HealthReport::unhealthy(format!(
                    "{what} but the initialize result has no protocolVersion or serverInfo"
                )),
                None,
            );
        };
        let mut report = HealthReport::healthy().message(what);
        for (key, field) in [("server_name", "name"), ("server_version", "version")] {
            if let Some(value) = info
                .get(field)
                .and_then(Value::as_str)
                .filter(|v| !v.is_empty())
            {
                report = report.detail(key, value);
            }
        }
        let report = report.detail("protocol_version", version);
        (report, Some(version.to_string()))
    }
}

impl Connector for Mcp {
    const NAME: &'static str = "MCP server";
    const TYPE: ConnectorType = ConnectorType::Agent;
    const DESCRIPTION: &'static str = "MCP server (Streamable HTTP): initialize handshake";

    fn new(config: &Config) -> Result<Self, String> {
        Ok(Mcp {
            url: config.url(config.health_path_or("/mcp")),
            next_id: 1,
            has_credentials: config.has_credentials(),
        })
    }

    fn health_check(&mut self) -> Result<HealthReport, Error> {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1).max(1);
        // Written out rather than built as a `serde_json::Value`: serialising
        // one pulls the float formatter's tables into the component, and
        // every instance holds its own copy of the component's data.
        let request = format!(
            r#"{{"jsonrpc":"2.0","id":{id},"method":"initialize","params":{{"protocolVersion":"{PROTOCOL_VERSION}","capabilities":{{}},"clientInfo":{{"name":"sandport","version":"{}"}}}}}}"#,
            env!("CARGO_PKG_VERSION")
        );
        let response = http::Request::post(&self.url, request)
            .header("Content-Type", "application/json")
            .header("Accept", "application/json, text/event-stream")
            .send()?;
        let (report, version) = self.judge(&response, id);
        if let Some(session) = response.header(SESSION_HEADER) {
            // End the session politely; whatever the server answers is not
            // part of the check.
            let version = version.as_deref().unwrap_or(PROTOCOL_VERSION);
            let _ = http::Request::new("DELETE", &self.url)
                .header(SESSION_HEADER, session)
                .header("MCP-Protocol-Version", version)
                .send();
        }
        Ok(report)
    }
}

export_connector!(Mcp);
