//! The built-in HTTP connectors of the catalogue (alertmanager,
//! otel-collector, loki, tempo, elasticsearch/opensearch, openclaw, mcp,
//! minio, slack, discord, webhook), each registered by its built-in name
//! against a loopback server that answers like the service's documented
//! API (Alertmanager: the real server), then against a closed port; and
//! the conformance kit on each component.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use sandport::conformance::{self, rows};
use sandport_core::{HealthSnapshot, HealthStatus};
use sandport_tests::servers::{Kind, RealServer};
use sandport_tests::{FakeServer, Reply, closed_port, detail, entry, runtime};
use serde_json::{Value, json};

async fn check_once(yaml: &str) -> HealthSnapshot {
    let runtime = runtime();
    let config = entry(yaml);
    let id = config.id.clone();
    runtime.register(config).await.expect("registers");
    let snapshot = runtime.check(&id).await.expect("known id");
    runtime.shutdown().await;
    snapshot
}

/// The entry of built-in `component` on 127.0.0.1:`port` over plain HTTP
/// (slack and discord default to https on 443), plus `extra` keys.
fn yaml(component: &str, port: u16, extra: &str) -> String {
    let extra = if extra.is_empty() {
        String::new()
    } else {
        format!(", {extra}")
    };
    format!(
        "{{id: {component}-test, component: {component}, host: 127.0.0.1, port: {port}, scheme: http{extra}}}"
    )
}

fn header<'a>(seen: &'a sandport_tests::Seen, name: &str) -> Option<&'a str> {
    seen.headers.get(name).and_then(|v| v.to_str().ok())
}

fn json_reply(status: u16, body: Value) -> Reply {
    Reply::status(status, body.to_string()).header("content-type", "application/json")
}

/// Checks `component` against a closed port: unhealthy, saying which
/// request was refused, and not a sandbox failure.
async fn assert_down(component: &str, method: &str) {
    let port = closed_port();
    let snap = check_once(&yaml(component, port, "")).await;
    assert_eq!(
        snap.status,
        HealthStatus::Unhealthy,
        "{component}: {snap:?}"
    );
    assert_eq!(
        snap.message,
        format!(
            "{method} http://127.0.0.1:{port}{}: connection refused",
            default_path(component)
        ),
        "{component}"
    );
    assert_eq!(snap.failure, None, "{component}: an honest unhealthy");
}

fn default_path(component: &str) -> &'static str {
    match component {
        "alertmanager" => "/-/healthy",
        "otel-collector" | "webhook" => "/",
        "loki" | "tempo" => "/ready",
        "elasticsearch" | "opensearch" => "/_cluster/health",
        "openclaw" => "/health",
        "mcp" => "/mcp",
        "minio" => "/minio/health/live",
        "slack" => "/api/auth.test",
        "discord" => "/api/v10/users/@me",
        other => panic!("no default path for {other}"),
    }
}

// ---------------------------------------------------------------- alertmanager

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alertmanager_against_the_real_server_is_healthy_then_unhealthy_once_stopped() {
    let mut server = tokio::task::spawn_blocking(|| RealServer::start(Kind::Alertmanager))
        .await
        .expect("alertmanager starts");
    let port = server.port();
    let snap = check_once(&yaml("alertmanager", port, "")).await;
    assert_eq!(snap.status, HealthStatus::Healthy, "{snap:?}");
    assert_eq!(
        snap.message,
        format!("GET http://127.0.0.1:{port}/-/healthy returned 200")
    );
    assert_eq!(detail(&snap, "ready"), Some("ready"));

    let server = tokio::task::spawn_blocking(move || {
        server.stop();
        server
    })
    .await
    .expect("alertmanager stops");
    let snap = check_once(&yaml("alertmanager", port, "")).await;
    drop(server);
    assert_eq!(snap.status, HealthStatus::Unhealthy, "{snap:?}");
    assert_eq!(
        snap.message,
        format!("GET http://127.0.0.1:{port}/-/healthy: connection refused")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_against_the_real_server_is_healthy_and_ready_then_unhealthy_once_stopped() {
    let mut server = tokio::task::spawn_blocking(|| RealServer::start(Kind::Prometheus))
        .await
        .expect("prometheus starts");
    let port = server.port();
    let snap = check_once(&yaml("prometheus", port, "")).await;
    assert_eq!(
        snap.status,
        HealthStatus::Healthy,
        "{snap:?}\n{}",
        server.log()
    );
    assert_eq!(
        snap.message,
        format!("GET http://127.0.0.1:{port}/-/healthy returned 200")
    );
    assert_eq!(detail(&snap, "ready"), Some("ready"));

    let server = tokio::task::spawn_blocking(move || {
        server.stop();
        server
    })
    .await
    .expect("prometheus stops");
    let snap = check_once(&yaml("prometheus", port, "")).await;
    drop(server);
    assert_eq!(snap.status, HealthStatus::Unhealthy, "{snap:?}");
    assert_eq!(
        snap.message,
        format!("GET http://127.0.0.1:{port}/-/healthy: connection refused")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alertmanager_healthy_but_not_ready_is_degraded_and_not_healthy_is_unhealthy() {
    let server = FakeServer::start(&[
        ("/-/healthy", Reply::ok("OK")),
        ("/-/ready", Reply::status(503, "Service Unavailable")),
    ])
    .await;
    let port = server.port();
    let snap = check_once(&yaml("alertmanager", port, "")).await;
    assert_eq!(snap.status, HealthStatus::Degraded, "{snap:?}");
    assert_eq!(
        snap.message,
        format!("healthy but not ready: GET http://127.0.0.1:{port}/-/ready returned 503")
    );
    assert_eq!(detail(&snap, "ready"), Some("not ready (503)"));

    server.set("/-/healthy", Reply::status(500, "boom"));
    let snap = check_once(&yaml("alertmanager", port, "")).await;
    assert_eq!(snap.status, HealthStatus::Unhealthy, "{snap:?}");
    assert_eq!(
        snap.message,
        format!("GET http://127.0.0.1:{port}/-/healthy returned 500")
    );
    assert_down("alertmanager", "GET").await;
}

// -------------------------------------------------------------- otel-collector

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otel_collector_available_is_healthy_with_status_and_uptime() {
    let server = FakeServer::start(&[(
        "/",
        json_reply(
            200,
            json!({"status": "Server available", "upSince": "2025-03-26T16:54:47.936558866Z", "uptime": "13h33m15.557940292s"}),
        ),
    )])
    .await;
    let snap = check_once(&yaml("otel-collector", server.port(), "")).await;
    assert_eq!(snap.status, HealthStatus::Healthy, "{snap:?}");
    assert_eq!(detail(&snap, "status"), Some("Server available"));
    assert_eq!(detail(&snap, "uptime"), Some("13h33m15.557940292s"));
    assert_eq!(server.hits("/"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otel_collector_not_available_is_unhealthy_with_the_status_text() {
    let server = FakeServer::start(&[(
        "/health/status",
        json_reply(
            503,
            json!({"status": "Server not available", "upSince": "0001-01-01T00:00:00Z", "uptime": ""}),
        ),
    )])
    .await;
    let port = server.port();
    let extra = "health_check: {path: /health/status}";
    let snap = check_once(&yaml("otel-collector", port, extra)).await;
    assert_eq!(snap.status, HealthStatus::Unhealthy, "{snap:?}");
    assert_eq!(
        snap.message,
        format!("GET http://127.0.0.1:{port}/health/status returned 503: Server not available")
    );
    assert_eq!(detail(&snap, "status"), Some("Server not available"));
    assert_down("otel-collector", "GET").await;
}

// ------------------------------------------------------------------ loki, tempo

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loki_and_tempo_ready_is_healthy_and_not_ready_says_why() {
    for component in ["loki", "tempo"] {
        let server = FakeServer::start(&[("/ready", Reply::ok("ready\n"))]).await;
        let port = server.port();
        let snap = check_once(&yaml(component, port, "")).await;
        assert_eq!(snap.status, HealthStatus::Healthy, "{component}: {snap:?}");
        assert_eq!(
            snap.message,
            format!("GET http://127.0.0.1:{port}/ready returned 200")
        );

        server.set(
            "/ready",
            Reply::status(
                503,
                "Ingester not ready: waiting for 15s after being ready\n",
            ),
        );
        let snap = check_once(&yaml(component, port, "")).await;
        assert_eq!(snap.status, HealthStatus::Unhealthy, "{component}");
        assert_eq!(
            snap.message,
            format!(
                "GET http://127.0.0.1:{port}/ready returned 503: Ingester not ready: waiting for 15s after being ready"
            ),
            "{component}"
        );

        server.set(
            "/ready",
            Reply::status(
                503,
                "Some services are not Running:\nStarting: 1\nRunning: 12\n",
            ),
        );
        let snap = check_once(&yaml(component, port, "")).await;
        assert_eq!(snap.status, HealthStatus::Unhealthy, "{component}");
        assert!(
            snap.message
                .ends_with("returned 503: Some services are not Running:"),
            "{component}: {}",
            snap.message
        );
        assert_eq!(
            detail(&snap, "answer"),
            Some("Some services are not Running:; Starting: 1; Running: 12"),
            "{component}"
        );
        assert_down(component, "GET").await;
    }
}

// ------------------------------------------------- elasticsearch, opensearch

fn cluster_health(status: &str, unassigned: u32, percent: f64) -> Value {
    json!({
        "cluster_name": "docker-cluster",
        "status": status,
        "timed_out": false,
        "number_of_nodes": 3,
        "number_of_data_nodes": 3,
        "active_primary_shards": 5,
        "active_shards": 10 - unassigned,
        "relocating_shards": 0,
        "initializing_shards": 0,
        "unassigned_shards": unassigned,
        "delayed_unassigned_shards": 0,
        "number_of_pending_tasks": 0,
        "number_of_in_flight_fetch": 0,
        "task_max_waiting_in_queue_millis": 0,
        "active_shards_percent_as_number": percent
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn elasticsearch_and_opensearch_map_green_yellow_red() {
    for component in ["elasticsearch", "opensearch"] {
        let server = FakeServer::start(&[(
            "/_cluster/health",
            json_reply(200, cluster_health("green", 0, 100.0)),
        )])
        .await;
        let port = server.port();
        let snap = check_once(&yaml(component, port, "")).await;
        assert_eq!(snap.status, HealthStatus::Healthy, "{component}: {snap:?}");
        assert_eq!(
            snap.message,
            format!("GET http://127.0.0.1:{port}/_cluster/health returned 200")
        );
        for (key, value) in [
            ("cluster_name", "docker-cluster"),
            ("status", "green"),
            ("number_of_nodes", "3"),
            ("active_shards_percent_as_number", "100.0"),
            ("unassigned_shards", "0"),
        ] {
            assert_eq!(detail(&snap, key), Some(value), "{component}: {key}");
        }

        server.set(
            "/_cluster/health",
            json_reply(200, cluster_health("yellow", 5, 50.0)),
        );
        let snap = check_once(&yaml(component, port, "")).await;
        assert_eq!(snap.status, HealthStatus::Degraded, "{component}");
        assert_eq!(
            snap.message,
            "cluster \"docker-cluster\" is yellow: 5 unassigned shards, 50.0% of shards active"
        );

        server.set(
            "/_cluster/health",
            json_reply(200, cluster_health("red", 7, 30.0)),
        );
        let snap = check_once(&yaml(component, port, "")).await;
        assert_eq!(snap.status, HealthStatus::Unhealthy, "{component}");
        assert_eq!(
            snap.message,
            "cluster \"docker-cluster\" is red: 7 unassigned shards, 30.0% of shards active"
        );
        assert_eq!(detail(&snap, "status"), Some("red"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn elasticsearch_refused_credentials_and_errors_are_unhealthy_and_say_why() {
    let refused = json!({
        "error": {
            "root_cause": [{"type": "security_exception", "reason": "unable to authenticate user [elastic] for REST request [/_cluster/health]"}],
            "type": "security_exception",
            "reason": "unable to authenticate user [elastic] for REST request [/_cluster/health]"
        },
        "status": 401
    });
    let server = FakeServer::start(&[(
        "/_cluster/health",
        json_reply(401, refused).header("www-authenticate", "Basic realm=\"security\""),
    )])
    .await;
    let port = server.port();
    let snap = check_once(&yaml(
        "elasticsearch",
        port,
        "auth: {type: basic, username: elastic, password: wrong}",
    ))
    .await;
    assert_eq!(snap.status, HealthStatus::Unhealthy, "{snap:?}");
    assert_eq!(
        snap.message,
        format!(
            "GET http://127.0.0.1:{port}/_cluster/health returned 401: the cluster refused the credentials (security_exception: unable to authenticate user [elastic] for REST request [/_cluster/health])"
        )
    );
    let seen = server.seen();
    assert_eq!(
        header(&seen[0], "authorization"),
        Some("Basic ZWxhc3RpYzp3cm9uZw=="),
        "the host attaches the credentials"
    );
    // Without `auth`, the message says so.
    let snap = check_once(&yaml("opensearch", port, "")).await;
    assert!(
        snap.message.ends_with("; the entry has no `auth`"),
        "{}",
        snap.message
    );

    server.set(
        "/_cluster/health",
        json_reply(
            503,
            json!({"error": {"root_cause": [{"type": "master_not_discovered_exception", "reason": null}], "type": "master_not_discovered_exception", "reason": null}, "status": 503}),
        ),
    );
    let snap = check_once(&yaml("elasticsearch", port, "")).await;
    assert_eq!(snap.status, HealthStatus::Unhealthy);
    assert_eq!(
        snap.message,
        format!(
            "GET http://127.0.0.1:{port}/_cluster/health returned 503: master_not_discovered_exception"
        )
    );

    server.set("/_cluster/health", Reply::ok("<html>proxy login</html>"));
    let snap = check_once(&yaml("elasticsearch", port, "")).await;
    assert_eq!(snap.status, HealthStatus::Unhealthy);
    assert!(
        snap.message.ends_with("but the body is not JSON"),
        "{}",
        snap.message
    );
    assert_down("elasticsearch", "GET").await;
}

// -------------------------------------------------------------------- openclaw

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openclaw_is_healthy_with_the_host_attached_token_and_reports_status() {
    let server = FakeServer::start(&[
        (
            "/health",
            json_reply(200, json!({"ok": true, "status": "live"})),
        ),
        (
            "/readyz",
            json_reply(
                200,
                json!({"ok": true, "status": "ready", "version": "2026.3.1"}),
            ),
        ),
    ])
    .await;
    let port = server.port();
    let auth = "auth: {type: bearer, token: claw-secret}";
    let snap = check_once(&yaml("openclaw", port, auth)).await;
    assert_eq!(snap.status, HealthStatus::Healthy, "{snap:?}");
    assert_eq!(detail(&snap, "status"), Some("live"));
    let seen = server.seen();
    assert_eq!(
        header(&seen[0], "authorization"),
        Some("Bearer claw-secret")
    );

    let snap = check_once(&yaml(
        "openclaw",
        port,
        &format!("{auth}, health_check: {{path: /readyz}}"),
    ))
    .await;
    assert_eq!(snap.status, HealthStatus::Healthy, "{snap:?}");
    assert_eq!(detail(&snap, "status"), Some("ready"));
    assert_eq!(detail(&snap, "version"), Some("2026.3.1"));

    server.set(
        "/health",
        json_reply(200, json!({"ok": false, "status": "starting"})),
    );
    let snap = check_once(&yaml("openclaw", port, auth)).await;
    assert_eq!(snap.status, HealthStatus::Degraded, "{snap:?}");
    assert!(
        snap.message
            .ends_with("but the gateway reports ok: false (status: starting)"),
        "{}",
        snap.message
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openclaw_refused_token_is_unhealthy() {
    let server = FakeServer::start(&[(
        "/health",
        json_reply(401, json!({"error": {"message": "Unauthorized"}})),
    )])
    .await;
    let port = server.port();
    let snap = check_once(&yaml(
        "openclaw",
        port,
        "auth: {type: bearer, token: wrong}",
    ))
    .await;
    assert_eq!(snap.status, HealthStatus::Unhealthy);
    assert_eq!(
        snap.message,
        format!("GET http://127.0.0.1:{port}/health returned 401: the gateway refused the token")
    );
    let snap = check_once(&yaml("openclaw", port, "")).await;
    assert!(
        snap.message
            .ends_with("refused the token; the entry has no `auth` (type: bearer)"),
        "{}",
        snap.message
    );
    assert_down("openclaw", "GET").await;
}

// ------------------------------------------------------------------------- mcp

/// How the fake MCP server answers `initialize`.
#[derive(Clone, Copy)]
enum McpMode {
    Json,
    EventStream,
    Error,
}

#[derive(Clone, Debug)]
struct McpSeen {
    method: String,
    path: String,
    headers: axum::http::HeaderMap,
    body: String,
}

#[derive(Clone)]
struct McpState {
    mode: McpMode,
    seen: Arc<Mutex<Vec<McpSeen>>>,
}

/// An MCP server speaking the Streamable HTTP transport (2025-06-18) on
/// `/mcp`: answers `initialize` with JSON or an event stream, opens a
/// session and ends it on `DELETE`.
struct FakeMcp {
    port: u16,
    seen: Arc<Mutex<Vec<McpSeen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeMcp {
    async fn start(mode: McpMode) -> FakeMcp {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let state = McpState {
            mode,
            seen: seen.clone(),
        };
        let app = Router::new().fallback(mcp_answer).with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let port = listener.local_addr().expect("local address").port();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeMcp { port, seen, task }
    }

    fn seen(&self) -> Vec<McpSeen> {
        self.seen.lock().expect("fake MCP state").clone()
    }
}

impl Drop for FakeMcp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn reply(status: StatusCode, content_type: &str, body: String) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .header("mcp-session-id", "session-1f2e")
        .body(Body::from(body))
        .unwrap_or_else(|_| Response::new(Body::empty()))
}

async fn mcp_answer(State(state): State<McpState>, request: Request) -> Response {
    let method = request.method().to_string();
    let path = request.uri().path().to_string();
    let headers = request.headers().clone();
    let body = axum::body::to_bytes(request.into_body(), 1 << 20)
        .await
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    state.seen.lock().expect("fake MCP state").push(McpSeen {
        method: method.clone(),
        path: path.clone(),
        headers: headers.clone(),
        body: body.clone(),
    });
    let plain = |status: StatusCode, text: &str| {
        Response::builder()
            .status(status)
            .body(Body::from(text.to_string()))
            .unwrap_or_else(|_| Response::new(Body::empty()))
    };
    if path != "/mcp" {
        return plain(StatusCode::NOT_FOUND, "Not Found");
    }
    match method.as_str() {
        "DELETE" => return plain(StatusCode::OK, ""),
        "POST" => {}
        _ => return plain(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed"),
    }
    let accept = headers
        .get("accept")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !(accept.contains("application/json") && accept.contains("text/event-stream")) {
        return plain(
            StatusCode::NOT_ACCEPTABLE,
            "Not Acceptable: Client must accept both application/json and text/event-stream",
        );
    }
    let Ok(request) = serde_json::from_str::<Value>(&body) else {
        return plain(StatusCode::BAD_REQUEST, "Parse error");
    };
    let id = request.get("id").cloned().unwrap_or(Value::Null);
    if request.get("method").and_then(Value::as_str) != Some("initialize") {
        return plain(StatusCode::BAD_REQUEST, "expected initialize");
    }
    let version = request
        .pointer("/params/protocolVersion")
        .cloned()
        .unwrap_or(Value::Null);
    let result = json!({
        "jsonrpc": "2.0",
        "id": id,
        "result": {
            "protocolVersion": version,
            "capabilities": {"tools": {"listChanged": true}, "logging": {}},
            "serverInfo": {"name": "fake-mcp", "title": "Fake MCP", "version": "0.3.1"},
            "instructions": "test server"
        }
    });
    match state.mode {
        McpMode::Json => reply(StatusCode::OK, "application/json", result.to_string()),
        McpMode::EventStream => {
            // A log notification first, then the response, as a server
            // may send while it handles the request.
            let note = json!({"jsonrpc": "2.0", "method": "notifications/message", "params": {"level": "info", "data": "initializing"}});
            let stream = format!(
                ": keep-alive\r\n\r\nevent: message\r\nid: 1\r\ndata: {note}\r\n\r\nevent: message\r\nid: 2\r\ndata: {result}\r\n\r\n"
            );
            reply(StatusCode::OK, "text/event-stream", stream)
        }
        McpMode::Error => {
            let error = json!({
                "jsonrpc": "2.0",
                "id": id,
                "error": {"code": -32602, "message": "Unsupported protocol version", "data": {"supported": ["2024-11-05"]}}
            });
            reply(StatusCode::OK, "application/json", error.to_string())
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_initialize_over_json_is_healthy_and_the_session_is_ended() {
    let server = FakeMcp::start(McpMode::Json).await;
    let port = server.port;
    let snap = check_once(&yaml("mcp", port, "auth: {type: bearer, token: mcp-token}")).await;
    assert_eq!(snap.status, HealthStatus::Healthy, "{snap:?}");
    assert_eq!(
        snap.message,
        format!("POST http://127.0.0.1:{port}/mcp returned 200")
    );
    assert_eq!(detail(&snap, "server_name"), Some("fake-mcp"));
    assert_eq!(detail(&snap, "server_version"), Some("0.3.1"));
    assert_eq!(detail(&snap, "protocol_version"), Some("2025-06-18"));

    let seen = server.seen();
    assert_eq!(seen.len(), 2, "initialize, then DELETE: {seen:?}");
    let post = &seen[0];
    assert_eq!(post.method, "POST");
    let sent: Value = serde_json::from_str(&post.body).expect("a JSON body");
    assert_eq!(sent["jsonrpc"], "2.0");
    assert_eq!(sent["method"], "initialize");
    assert_eq!(sent["params"]["protocolVersion"], "2025-06-18");
    assert_eq!(sent["params"]["capabilities"], json!({}));
    assert_eq!(sent["params"]["clientInfo"]["name"], "sandport");
    assert!(sent["params"]["clientInfo"]["version"].is_string());
    let get = |s: &McpSeen, name: &str| {
        s.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    assert_eq!(
        get(post, "content-type").as_deref(),
        Some("application/json")
    );
    assert_eq!(
        get(post, "authorization").as_deref(),
        Some("Bearer mcp-token"),
        "the host attaches the token"
    );
    let delete = &seen[1];
    assert_eq!(
        (delete.method.as_str(), delete.path.as_str()),
        ("DELETE", "/mcp")
    );
    assert_eq!(
        get(delete, "mcp-session-id").as_deref(),
        Some("session-1f2e")
    );
    assert_eq!(
        get(delete, "mcp-protocol-version").as_deref(),
        Some("2025-06-18")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_initialize_over_an_event_stream_is_healthy() {
    let server = FakeMcp::start(McpMode::EventStream).await;
    let snap = check_once(&yaml("mcp", server.port, "")).await;
    assert_eq!(snap.status, HealthStatus::Healthy, "{snap:?}");
    assert_eq!(detail(&snap, "server_name"), Some("fake-mcp"));
    assert_eq!(detail(&snap, "protocol_version"), Some("2025-06-18"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_error_wrong_path_and_down_are_unhealthy_and_say_why() {
    let server = FakeMcp::start(McpMode::Error).await;
    let port = server.port;
    let snap = check_once(&yaml("mcp", port, "")).await;
    assert_eq!(snap.status, HealthStatus::Unhealthy, "{snap:?}");
    assert_eq!(
        snap.message,
        format!(
            "POST http://127.0.0.1:{port}/mcp returned 200: initialize failed: Unsupported protocol version (code -32602)"
        )
    );
    assert_eq!(
        server.seen().last().map(|s| s.method.clone()).as_deref(),
        Some("DELETE"),
        "the session is ended whatever the answer"
    );

    let snap = check_once(&yaml("mcp", port, "health_check: {path: /api/mcp}")).await;
    assert_eq!(snap.status, HealthStatus::Unhealthy);
    assert_eq!(
        snap.message,
        format!(
            "POST http://127.0.0.1:{port}/api/mcp returned 404 (is health_check.path the server's MCP endpoint?)"
        )
    );

    // A JSON-RPC error the server could not tie to the request (null id).
    let other = FakeServer::start(&[(
        "/mcp",
        json_reply(
            400,
            json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32600, "message": "Bad Request: Missing session ID"}}),
        ),
    )])
    .await;
    let snap = check_once(&yaml("mcp", other.port(), "")).await;
    assert_eq!(snap.status, HealthStatus::Unhealthy);
    assert_eq!(
        snap.message,
        format!(
            "POST http://127.0.0.1:{}/mcp returned 400: initialize failed: Bad Request: Missing session ID (code -32600)",
            other.port()
        )
    );

    // A server that answers something else than JSON-RPC.
    let other = FakeServer::start(&[("/mcp", Reply::ok("<html>hello</html>"))]).await;
    let snap = check_once(&yaml("mcp", other.port(), "")).await;
    assert_eq!(snap.status, HealthStatus::Unhealthy);
    assert!(
        snap.message.ends_with(
            "returned 200 but its answer holds no JSON-RPC response to initialize (id 1)"
        ),
        "{}",
        snap.message
    );
    assert_down("mcp", "POST").await;
}

// ----------------------------------------------------------------------- minio

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn minio_live_and_ready_is_healthy_live_only_is_degraded() {
    let server = FakeServer::start(&[
        ("/minio/health/live", Reply::ok("")),
        ("/minio/health/ready", Reply::ok("")),
    ])
    .await;
    let port = server.port();
    let snap = check_once(&yaml("minio", port, "")).await;
    assert_eq!(snap.status, HealthStatus::Healthy, "{snap:?}");
    assert_eq!(detail(&snap, "ready"), Some("ready"));
    assert_eq!(server.hits("/minio/health/live"), 1);
    assert_eq!(server.hits("/minio/health/ready"), 1);

    server.set(
        "/minio/health/ready",
        Reply::status(503, "").header("x-minio-server-status", "offline"),
    );
    let snap = check_once(&yaml("minio", port, "")).await;
    assert_eq!(snap.status, HealthStatus::Degraded, "{snap:?}");
    assert_eq!(
        snap.message,
        format!(
            "live but not ready (no quorum?): GET http://127.0.0.1:{port}/minio/health/ready returned 503 (server status: offline)"
        )
    );

    server.set("/minio/health/live", Reply::status(503, ""));
    let snap = check_once(&yaml("minio", port, "")).await;
    assert_eq!(snap.status, HealthStatus::Unhealthy);
    assert_eq!(
        snap.message,
        format!("GET http://127.0.0.1:{port}/minio/health/live returned 503")
    );
    assert_down("minio", "GET").await;
}

// ----------------------------------------------------------------------- slack

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_auth_test_ok_is_healthy_with_team_and_user() {
    let server = FakeServer::start(&[(
        "/api/auth.test",
        json_reply(
            200,
            json!({"ok": true, "url": "https://subarachnoid.slack.com/", "team": "Subarachnoid Workspace", "user": "grace", "team_id": "T12345678", "user_id": "W12345678", "bot_id": "B12345678", "is_enterprise_install": false}),
        ),
    )])
    .await;
    let port = server.port();
    let snap = check_once(&yaml(
        "slack",
        port,
        "auth: {type: bearer, token: xoxb-test-token}",
    ))
    .await;
    assert_eq!(snap.status, HealthStatus::Healthy, "{snap:?}");
    assert_eq!(
        snap.message,
        format!("POST http://127.0.0.1:{port}/api/auth.test returned 200")
    );
    assert_eq!(detail(&snap, "team"), Some("Subarachnoid Workspace"));
    assert_eq!(detail(&snap, "user"), Some("grace"));
    let seen = server.seen();
    assert_eq!(seen[0].method, "POST");
    assert_eq!(
        header(&seen[0], "authorization"),
        Some("Bearer xoxb-test-token")
    );
    assert_eq!(header(&seen[0], "content-length"), Some("0"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_refused_token_is_unhealthy_and_rate_limit_is_degraded() {
    let server = FakeServer::start(&[(
        "/api/auth.test",
        json_reply(200, json!({"ok": false, "error": "invalid_auth"})),
    )])
    .await;
    let port = server.port();
    let auth = "auth: {type: bearer, token: xoxb-revoked}";
    let snap = check_once(&yaml("slack", port, auth)).await;
    assert_eq!(snap.status, HealthStatus::Unhealthy, "{snap:?}");
    assert_eq!(snap.message, "Slack refused the token: invalid_auth");

    server.set(
        "/api/auth.test",
        json_reply(429, json!({"ok": false, "error": "ratelimited"})).header("retry-after", "30"),
    );
    let snap = check_once(&yaml("slack", port, auth)).await;
    assert_eq!(snap.status, HealthStatus::Degraded, "{snap:?}");
    assert_eq!(
        snap.message,
        "Slack rate limited the check (retry after 30s)"
    );
    assert_eq!(detail(&snap, "retry_after"), Some("30"));
    assert_down("slack", "POST").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_and_discord_default_to_their_public_apis_over_https() {
    let runtime = runtime();
    for (component, endpoint) in [
        ("slack", "https://slack.com:443"),
        ("discord", "https://discord.com:443"),
    ] {
        let info = runtime
            .register(entry(&format!(
                "{{id: {component}, component: {component}}}"
            )))
            .await
            .expect("registers");
        assert_eq!(info.endpoint, endpoint);
    }
    runtime.shutdown().await;
}

// --------------------------------------------------------------------- discord

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discord_users_me_is_healthy_with_the_bot_user() {
    let server = FakeServer::start(&[(
        "/api/v10/users/@me",
        json_reply(
            200,
            json!({"id": "80351110224678912", "username": "sandport-bot", "discriminator": "0", "global_name": null, "avatar": null, "bot": true, "flags": 0, "mfa_enabled": true}),
        ),
    )])
    .await;
    let port = server.port();
    let snap = check_once(&yaml(
        "discord",
        port,
        "auth: {headers: {Authorization: 'Bot discord-test-token'}}",
    ))
    .await;
    assert_eq!(snap.status, HealthStatus::Healthy, "{snap:?}");
    assert_eq!(detail(&snap, "username"), Some("sandport-bot"));
    assert_eq!(detail(&snap, "id"), Some("80351110224678912"));
    let seen = server.seen();
    assert_eq!(
        header(&seen[0], "authorization"),
        Some("Bot discord-test-token")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discord_refused_token_is_unhealthy_and_rate_limit_is_degraded() {
    let server = FakeServer::start(&[(
        "/api/v10/users/@me",
        json_reply(401, json!({"message": "401: Unauthorized", "code": 0})),
    )])
    .await;
    let port = server.port();
    let snap = check_once(&yaml("discord", port, "")).await;
    assert_eq!(snap.status, HealthStatus::Unhealthy, "{snap:?}");
    assert_eq!(
        snap.message,
        format!(
            "Discord refused the bot token: GET http://127.0.0.1:{port}/api/v10/users/@me returned 401 (401: Unauthorized)"
        )
    );

    server.set(
        "/api/v10/users/@me",
        json_reply(
            429,
            json!({"message": "You are being rate limited.", "retry_after": 1.5, "global": false}),
        )
        .header("retry-after", "2"),
    );
    let snap = check_once(&yaml("discord", port, "")).await;
    assert_eq!(snap.status, HealthStatus::Degraded, "{snap:?}");
    assert_eq!(
        snap.message,
        "Discord rate limited the check: retry after 1.5s"
    );
    assert_eq!(detail(&snap, "retry_after"), Some("1.5"));
    assert_down("discord", "GET").await;
}

// --------------------------------------------------------------------- webhook

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_posts_and_is_healthy_on_the_expected_status() {
    let server = FakeServer::start(&[
        ("/", Reply::status(204, "")),
        ("/hooks/deploy", Reply::status(202, "accepted")),
    ])
    .await;
    let port = server.port();
    let snap = check_once(&yaml("webhook", port, "")).await;
    assert_eq!(snap.status, HealthStatus::Healthy, "{snap:?}");
    assert_eq!(
        snap.message,
        format!("POST http://127.0.0.1:{port}/ returned 204")
    );
    assert_eq!(detail(&snap, "status"), Some("204"));
    let seen = server.seen();
    assert_eq!(seen[0].method, "POST");
    assert_eq!(header(&seen[0], "content-length"), Some("0"));
    assert_eq!(header(&seen[0], "content-type"), None);

    let snap = check_once(&yaml(
        "webhook",
        port,
        r#"settings: {method: put, path: /hooks/deploy, body: '{"ping":true}', expected_status: '202', headers: {X-Hook-Token: abc}}"#,
    ))
    .await;
    assert_eq!(snap.status, HealthStatus::Healthy, "{snap:?}");
    let seen = server.seen();
    let last = seen.last().expect("a request");
    assert_eq!(
        (last.method.as_str(), last.path.as_str()),
        ("PUT", "/hooks/deploy")
    );
    assert_eq!(header(last, "content-type"), Some("application/json"));
    assert_eq!(header(last, "x-hook-token"), Some("abc"));
    assert_eq!(header(last, "content-length"), Some("13"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_unexpected_status_is_unhealthy_and_bad_settings_are_refused() {
    let server = FakeServer::start(&[("/services/T0/B0/x", Reply::status(400, "no_text"))]).await;
    let port = server.port();
    let settings = |expected: &str| {
        format!(
            "settings: {{path: /services/T0/B0/x, content_type: text/plain, expected_status: '{expected}'}}"
        )
    };
    let snap = check_once(&yaml("webhook", port, &settings("200-299"))).await;
    assert_eq!(snap.status, HealthStatus::Unhealthy, "{snap:?}");
    assert_eq!(
        snap.message,
        format!(
            "POST http://127.0.0.1:{port}/services/T0/B0/x returned 400 (no_text), expected 200-299"
        )
    );
    let snap = check_once(&yaml("webhook", port, &settings("200-299,400"))).await;
    assert_eq!(snap.status, HealthStatus::Healthy, "{snap:?}");
    assert_eq!(
        header(server.seen().last().expect("a request"), "content-type"),
        Some("text/plain")
    );

    let runtime = runtime();
    for (settings, key) in [
        ("{expected_status: '2xx'}", "settings.expected_status"),
        ("{method: 'NOT A METHOD'}", "settings.method"),
    ] {
        let err = runtime
            .register(entry(&yaml(
                "webhook",
                port,
                &format!("settings: {settings}"),
            )))
            .await
            .expect_err("bad settings are refused");
        assert!(err.to_string().contains(key), "{err}");
    }
    runtime.shutdown().await;
    assert_down("webhook", "POST").await;
}

// ------------------------------------------------------------- conformance kit

/// target/guests/wasm32-wasip2/guest, where crates/builtins/build.rs builds the
/// built-in components.
fn guest_dir() -> PathBuf {
    Path::new(env!("SANDPORT_HOSTILE_WASM"))
        .parent()
        .expect("guest dir")
        .to_path_buf()
}

/// target/guests/kit-cache, shared with the authoring tests.
fn kit_cache() -> PathBuf {
    guest_dir()
        .ancestors()
        .nth(2)
        .expect("guests root")
        .join("kit-cache")
}

/// The kit's target answers every path 200 with a small generic JSON body.
/// Connectors whose check needs a particular answer (cluster health, an
/// MCP initialize result, Slack's `"ok": true`) are rightly not healthy
/// there; every other row must pass for them too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kit_passes_on_every_http_catalogue_component() {
    let needs_a_real_answer = [rows::UP, rows::SLOW, rows::STEADY, rows::MEMORY];
    let mut failures = Vec::new();
    for (crate_name, generic) in [
        ("alertmanager", true),
        ("otel_collector", true),
        ("loki", true),
        ("elasticsearch", false),
        ("openclaw", true),
        ("mcp", false),
        ("minio", true),
        ("slack", false),
        ("discord", true),
        ("webhook", true),
    ] {
        let component = guest_dir().join(format!("sandport_connector_{crate_name}.wasm"));
        let report = conformance::run(&component, None, Some(kit_cache()))
            .await
            .expect("the kit runs");
        println!("{crate_name}:\n{report}");
        for outcome in &report.outcomes {
            let excused = !generic && needs_a_real_answer.contains(&outcome.name);
            if !outcome.passed && !excused {
                failures.push(format!(
                    "{crate_name}: {}: {}",
                    outcome.name, outcome.detail
                ));
            }
        }
        assert!(
            report.outcome(rows::CLOSE).is_some(),
            "{crate_name}: the kit ran every row:\n{report}"
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The kit's memory row for the components it cannot make healthy: 100
/// healthy checks against their own fakes, and linear memory does not grow
/// at a pace that would reach the limit within a day at a 30s interval.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn elasticsearch_mcp_and_slack_memory_does_not_grow_over_healthy_checks() {
    const MORE: u64 = 100;
    const CHECKS_PER_DAY: u64 = 24 * 60 * 2;
    let es = FakeServer::start(&[(
        "/_cluster/health",
        json_reply(200, cluster_health("green", 0, 100.0)),
    )])
    .await;
    let slack = FakeServer::start(&[(
        "/api/auth.test",
        json_reply(200, json!({"ok": true, "team": "T", "user": "u"})),
    )])
    .await;
    let mcp = FakeMcp::start(McpMode::EventStream).await;
    let runtime = runtime();
    for (component, port) in [
        ("elasticsearch", es.port()),
        ("slack", slack.port()),
        ("mcp", mcp.port),
    ] {
        let id = format!("{component}-test");
        runtime
            .register(entry(&yaml(component, port, "")))
            .await
            .expect("registers");
        let check = || async {
            let snap = runtime.check(&id).await.expect("known id");
            assert_eq!(snap.status, HealthStatus::Healthy, "{component}: {snap:?}");
        };
        for _ in 0..10 {
            check().await;
        }
        let used = || async {
            runtime
                .memory_used(&id)
                .await
                .expect("known id")
                .expect("a live instance")
        };
        let before = used().await;
        for _ in 0..MORE {
            check().await;
        }
        let after = used().await;
        let per_check = after.saturating_sub(before) / MORE;
        let limit = runtime.get(&id).expect("known id").1.sandbox.memory_limit;
        assert!(
            after + per_check * CHECKS_PER_DAY <= limit,
            "{component}: {before} B, then {after} B after {MORE} checks ({per_check} B/check); limit {limit} B"
        );
        println!("{component}: {before} B, {after} B after {MORE} more checks");
    }
    runtime.shutdown().await;
}
