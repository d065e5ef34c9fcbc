//! What each built-in needs of its target, in two tables:
//!
//! - [`BUILTINS`]: per built-in, which kind of server answers its check and
//!   what its entry adds (credentials, settings) to be checked the way an
//!   operator's entry is;
//! - [`ANSWERS`]: what the loopback HTTP targets answer, per method and
//!   path, taken from the request each HTTP built-in sends and the answer
//!   it parses (`connectors/<name>/src`). One router serves every row, so
//!   one set of target servers answers every HTTP built-in; a request no
//!   row answers gets a 404 that names it, and the check fails loudly.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{Method, StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};

/// The kind of server a built-in's check talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Serves {
    /// The loopback HTTP targets, answering [`ANSWERS`].
    Http,
    /// A loopback RESP server: `PING` -> `+PONG`, `INFO`, `AUTH`.
    Redis,
    /// A loopback NATS server: `INFO` on connect, `PING` -> `PONG`.
    Nats,
    /// A loopback MQTT 3.1.1 server: `CONNECT` -> `CONNACK` accepted.
    Mqtt,
    /// The real PostgreSQL (Debian's package).
    Postgres,
    /// The real MariaDB (Debian's package).
    MariaDb,
    /// The real RabbitMQ (Debian's package).
    RabbitMq,
}

impl Serves {
    /// Whether the bench's own target process answers (else a real server).
    pub fn is_loopback_fake(self) -> bool {
        matches!(
            self,
            Serves::Http | Serves::Redis | Serves::Nats | Serves::Mqtt
        )
    }

    /// What the targets are, for the method line.
    pub fn about(self) -> &'static str {
        match self {
            Serves::Http => {
                "loopback axum servers of the bench answering each built-in's health request (method, path) from a table"
            }
            Serves::Redis => {
                "loopback RESP servers of the bench: PING -> +PONG, INFO server, AUTH -> +OK"
            }
            Serves::Nats => {
                "loopback NATS servers of the bench: INFO on connect, CONNECT, PING -> PONG"
            }
            Serves::Mqtt => {
                "loopback MQTT 3.1.1 servers of the bench: CONNECT -> CONNACK accepted, DISCONNECT"
            }
            Serves::Postgres => {
                "the real PostgreSQL (Debian's package), one server, max_connections 1,200, scram-sha-256 for TCP logins (the check stops at the authentication request)"
            }
            Serves::MariaDb => {
                "the real MariaDB (Debian's package), one server, max_connections and back_log 1,200; each check logs in as root without a password, then COM_QUIT"
            }
            Serves::RabbitMq => {
                "the real RabbitMQ (Debian's package), one server; each check logs in as guest/guest, opens vhost / and closes"
            }
        }
    }
}

pub struct Builtin {
    pub name: &'static str,
    pub serves: Serves,
    /// `health_check.path`, when the bench sets one.
    pub path: Option<&'static str>,
    /// More keys of the entry (YAML flow mapping items), or empty.
    pub extra: &'static str,
}

const fn builtin(name: &'static str, serves: Serves, extra: &'static str) -> Builtin {
    Builtin {
        name,
        serves,
        path: None,
        extra,
    }
}

/// Every built-in component (`tempo` and `opensearch` run the `loki` and
/// `elasticsearch` components), by name.
#[rustfmt::skip]
pub const BUILTINS: &[Builtin] = &[
    builtin("alertmanager", Serves::Http, ""),
    builtin("discord", Serves::Http, "scheme: http, auth: {headers: {Authorization: 'Bot bench-token'}}"),
    builtin("elasticsearch", Serves::Http, ""),
    builtin("grafana", Serves::Http, ""),
    // As in parts 2 and 3: one GET of /-/healthy.
    Builtin { name: "http", serves: Serves::Http, path: Some("/-/healthy"), extra: "" },
    builtin("jaeger", Serves::Http, ""),
    builtin("loki", Serves::Http, ""),
    builtin("mcp", Serves::Http, ""),
    builtin("minio", Serves::Http, ""),
    builtin("mqtt", Serves::Mqtt, ""),
    // A login (mysql_native_password, no password) and COM_QUIT.
    builtin("mysql", Serves::MariaDb, "settings: {user: root}"),
    builtin("nats", Serves::Nats, ""),
    builtin("openclaw", Serves::Http, ""),
    builtin("otel-collector", Serves::Http, ""),
    builtin("postgresql", Serves::Postgres, ""),
    builtin("prometheus", Serves::Http, ""),
    // The login, connection.open of `/` and connection.close.
    builtin("rabbitmq", Serves::RabbitMq, "auth: {type: basic, username: guest, password: guest}"),
    builtin("redis", Serves::Redis, ""),
    // Signed by the host; the targets do not verify the signature.
    builtin("s3", Serves::Http, "scheme: http, settings: {bucket: sandport-bench}, auth: {type: aws_sigv4, access_key_id: AKIDSANDPORTBENCH, secret_access_key: bench-secret, region: us-east-1}"),
    builtin("slack", Serves::Http, "scheme: http, auth: {type: bearer, token: xoxb-bench}"),
    // Connects to the HTTP targets' ports only.
    builtin("tcp", Serves::Http, ""),
    builtin("webhook", Serves::Http, r#"settings: {path: /hooks/bench, body: '{"text":"sandport health check"}'}"#),
];

/// The row of built-in `name`; `None` for a component file.
pub fn find(name: &str) -> Option<&'static Builtin> {
    BUILTINS.iter().find(|b| b.name == name)
}

/// A component file: the HTTP targets, `GET /-/healthy`.
pub const COMPONENT_FILE: Builtin = Builtin {
    name: "",
    serves: Serves::Http,
    path: Some("/-/healthy"),
    extra: "",
};

const JSON: &str = "application/json";
const TEXT: &str = "text/plain; charset=utf-8";

/// One answer of the HTTP targets.
pub struct Answer {
    pub method: &'static str,
    pub path: &'static str,
    /// The built-ins that ask for it.
    pub asked_by: &'static str,
    pub content_type: &'static str,
    pub body: &'static str,
    /// One more header, or `("", "")`.
    pub header: (&'static str, &'static str),
}

const fn answer(
    method: &'static str,
    path: &'static str,
    asked_by: &'static str,
    content_type: &'static str,
    body: &'static str,
) -> Answer {
    Answer {
        method,
        path,
        asked_by,
        content_type,
        body,
        header: ("", ""),
    }
}

/// Every answer is a 200. MCP's `POST /mcp` echoes the request's id and is
/// answered by [`mcp_initialize`].
#[rustfmt::skip]
pub const ANSWERS: &[Answer] = &[
    answer("GET", "/-/healthy", "prometheus, alertmanager, http", TEXT, "Healthy.\n"),
    answer("GET", "/-/ready", "prometheus, alertmanager", TEXT, "Ready.\n"),
    answer("GET", "/api/health", "grafana", JSON, r#"{"commit":"bench","database":"ok","version":"11.0.0"}"#),
    answer("GET", "/", "jaeger, otel-collector", JSON, r#"{"status":"Server available","upSince":"2026-01-01T00:00:00Z","uptime":"1h0m0s"}"#),
    answer("GET", "/ready", "loki", TEXT, "ready\n"),
    answer("GET", "/_cluster/health", "elasticsearch", JSON, r#"{"cluster_name":"bench","status":"green","number_of_nodes":1,"active_shards_percent_as_number":100.0,"unassigned_shards":0}"#),
    answer("GET", "/health", "openclaw", JSON, r#"{"ok":true,"status":"live","version":"bench"}"#),
    answer("GET", "/minio/health/live", "minio", TEXT, ""),
    answer("GET", "/minio/health/ready", "minio", TEXT, ""),
    Answer { header: ("x-amz-bucket-region", "us-east-1"), ..answer("HEAD", "/sandport-bench", "s3", "application/xml", "") },
    answer("POST", "/api/auth.test", "slack", JSON, r#"{"ok":true,"url":"https://bench.slack.com/","team":"Bench","user":"sandport","team_id":"T0BENCH","user_id":"U0BENCH"}"#),
    answer("GET", "/api/v10/users/@me", "discord", JSON, r#"{"id":"100000000000000001","username":"sandport-bench","bot":true}"#),
    answer("POST", "/hooks/bench", "webhook", TEXT, "ok\n"),
    // Answered by `mcp_initialize` (the id echoed); the row describes it.
    answer("POST", "/mcp", "mcp", JSON, r#"{"jsonrpc":"2.0","id":<the request's>,"result":{"protocolVersion":"2025-06-18","capabilities":{"tools":{}},"serverInfo":{...}}}, Mcp-Session-Id"#),
    answer("DELETE", "/mcp", "mcp", TEXT, ""),
];

/// What the HTTP targets answer `component`'s check, a line per request.
pub fn answers_for(component: &str) -> Vec<String> {
    ANSWERS
        .iter()
        .filter(|a| a.asked_by.split(", ").any(|name| name == component))
        .map(|a| {
            let body = if a.body.is_empty() {
                "(empty)"
            } else {
                a.body.trim_end()
            };
            format!("{} {} -> 200 {}: {body}", a.method, a.path, a.content_type)
        })
        .collect()
}

/// The session id MCP's answer opens (the connector ends it with DELETE).
const MCP_SESSION: &str = "bench-session";

/// The router of the HTTP targets: every row of [`ANSWERS`], and MCP.
pub fn router() -> axum::Router {
    axum::Router::new().fallback(answer_request)
}

async fn answer_request(request: Request) -> Response {
    let (parts, body) = request.into_parts();
    // Read what was sent, as a server does, so that the connection is
    // reused.
    let body = axum::body::to_bytes(body, 64 * 1024)
        .await
        .unwrap_or_default();
    let path = parts.uri.path();
    if parts.method == Method::POST && path == "/mcp" {
        return mcp_initialize(&body);
    }
    let row = ANSWERS
        .iter()
        .find(|a| a.method == parts.method.as_str() && a.path == path);
    let Some(row) = row else {
        return reply(
            StatusCode::NOT_FOUND,
            TEXT,
            format!(
                "the bench's targets have no answer for {} {path}\n",
                parts.method
            ),
        );
    };
    let mut response = reply(StatusCode::OK, row.content_type, row.body.to_string());
    let (name, value) = row.header;
    if !name.is_empty() {
        response
            .headers_mut()
            .insert(name, header::HeaderValue::from_static(value));
    }
    response
}

/// MCP `initialize`: the result to the request's own id, over JSON, with a
/// session.
fn mcp_initialize(body: &[u8]) -> Response {
    let id = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("id").cloned())
        .unwrap_or(Value::Null);
    let answer = json!({
        "jsonrpc": "2.0",
        "id": id,
        "result": {
            "protocolVersion": "2025-06-18",
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "sandport-bench", "version": "1.0.0"},
        },
    });
    let mut response = reply(StatusCode::OK, JSON, answer.to_string());
    response.headers_mut().insert(
        "mcp-session-id",
        header::HeaderValue::from_static(MCP_SESSION),
    );
    response
}

fn reply(status: StatusCode, content_type: &'static str, body: String) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    response
}
