//! The Connectors Service end to end: every RPC and route, error codes,
//! redaction, durability across kill -9, concurrency, watching, deadlines,
//! and the CLI switching between local and remote.

use std::time::{Duration, Instant};

use sandport_server::grpc::pb;
use sandport_server::grpc::pb::connectors_service_client::ConnectorsServiceClient;
use tonic::Code;
use tonic::transport::Channel;

use super::support::{SANDPORT, Server, Target, closed_port, temp_dir, write};

async fn client(server: &Server) -> ConnectorsServiceClient<Channel> {
    ConnectorsServiceClient::connect(server.grpc.clone())
        .await
        .expect("connect to the gRPC API")
}

fn http_entry(id: &str, port: u16) -> pb::ConnectorConfig {
    pb::ConnectorConfig {
        id: id.into(),
        component: "http".into(),
        host: "127.0.0.1".into(),
        port: i32::from(port),
        r#type: pb::ConnectorType::Custom.into(),
        health_check: Some(pb::HealthCheckConfig {
            interval_ms: 1000,
            timeout_ms: 1000,
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn config_yaml(target: u16) -> String {
    format!(
        "connectors:\n  - {{id: prometheus, host: 127.0.0.1, port: {target}, auth: {{type: bearer, token: yaml-secret}}}}\n  - {{id: jaeger, host: 127.0.0.1, port: {target}}}\n"
    )
}

#[tokio::test]
async fn every_rpc_works_and_errors_carry_the_right_codes() {
    let target = Target::start(200);
    let dir = temp_dir("rpcs");
    let config = write(&dir, "connectors.yaml", &config_yaml(target.port));
    let server = Server::start(&config, &dir.join("data"));
    let mut c = client(&server).await;

    let list = c
        .list_connectors(pb::ListConnectorsRequest::default())
        .await
        .expect("list")
        .into_inner();
    let ids: Vec<&str> = list.connectors.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["jaeger", "prometheus"]);

    // Register, then the duplicate.
    let mut entry = http_entry("web", target.port);
    entry.auth = Some(pb::AuthConfig {
        r#type: "basic".into(),
        username: "admin".into(),
        password: "hunter2".into(),
        headers: [("X-Key".to_string(), "k3y".to_string())].into(),
        ..Default::default()
    });
    let registered = c
        .register_connector(pb::RegisterConnectorRequest {
            config: Some(entry.clone()),
        })
        .await
        .expect("register")
        .into_inner();
    assert_eq!(
        registered.connector.as_ref().map(|i| i.id.as_str()),
        Some("web")
    );
    let dup = c
        .register_connector(pb::RegisterConnectorRequest {
            config: Some(entry.clone()),
        })
        .await
        .expect_err("duplicate");
    assert_eq!(dup.code(), Code::AlreadyExists);

    // Invalid configs name the field.
    let mut bad = http_entry("bad", 80);
    bad.port = 70000;
    let err = c
        .register_connector(pb::RegisterConnectorRequest { config: Some(bad) })
        .await
        .expect_err("bad port");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("port"), "{}", err.message());
    let mut unknown = http_entry("ghost", 80);
    unknown.component = "nonesuch".into();
    let err = c
        .register_connector(pb::RegisterConnectorRequest {
            config: Some(unknown),
        })
        .await
        .expect_err("unknown component");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("component"), "{}", err.message());
    let err = c
        .register_connector(pb::RegisterConnectorRequest { config: None })
        .await
        .expect_err("no config");
    assert_eq!(err.code(), Code::InvalidArgument);

    // Type filter.
    let custom = c
        .list_connectors(pb::ListConnectorsRequest {
            r#type: pb::ConnectorType::Custom.into(),
            enabled_only: true,
        })
        .await
        .expect("list custom")
        .into_inner();
    assert_eq!(
        custom
            .connectors
            .iter()
            .map(|c| c.id.as_str())
            .collect::<Vec<_>>(),
        ["web"]
    );

    // Get redacts every secret.
    let got = c
        .get_connector(pb::GetConnectorRequest { id: "web".into() })
        .await
        .expect("get")
        .into_inner();
    let auth = got.config.and_then(|c| c.auth).expect("auth");
    assert_eq!(auth.username, "admin");
    assert_eq!(auth.password, "<redacted>");
    assert_eq!(
        auth.headers.get("X-Key").map(String::as_str),
        Some("<redacted>")
    );
    let got = c
        .get_connector(pb::GetConnectorRequest {
            id: "prometheus".into(),
        })
        .await
        .expect("get")
        .into_inner();
    assert_eq!(
        got.config.and_then(|c| c.auth).map(|a| a.token),
        Some("<redacted>".into())
    );
    let err = c
        .get_connector(pb::GetConnectorRequest { id: "nope".into() })
        .await
        .expect_err("unknown");
    assert_eq!(err.code(), Code::NotFound);

    // Live checks.
    let check = c
        .health_check(pb::HealthCheckRequest {
            id: "web".into(),
            cached: false,
        })
        .await
        .expect("check")
        .into_inner();
    assert_eq!(check.status(), pb::ConnectorStatus::Healthy, "{check:?}");
    assert!(check.checked_at.is_some());
    // `cached` answers with that result instead of checking again.
    let cached = c
        .health_check(pb::HealthCheckRequest {
            id: "web".into(),
            cached: true,
        })
        .await
        .expect("cached check")
        .into_inner();
    assert_eq!(cached.checked_at, check.checked_at);
    assert_eq!(cached.message, check.message);
    let all = c
        .health_check_all(pb::HealthCheckAllRequest::default())
        .await
        .expect("check all")
        .into_inner();
    assert_eq!(all.results.len(), 3);
    assert!(all.unfinished.is_empty());
    for cached in [false, true] {
        let err = c
            .health_check(pb::HealthCheckRequest {
                id: "nope".into(),
                cached,
            })
            .await
            .expect_err("unknown");
        assert_eq!(err.code(), Code::NotFound, "cached: {cached}");
    }

    // Update: a redacted secret sent back keeps its value; a new port applies.
    target.set_status(200);
    let other = Target::start(418);
    let mut changed = entry.clone();
    changed.port = i32::from(other.port);
    changed.auth = Some(pb::AuthConfig {
        r#type: "basic".into(),
        username: "admin".into(),
        password: "<redacted>".into(),
        ..Default::default()
    });
    let updated = c
        .update_connector(pb::UpdateConnectorRequest {
            config: Some(changed),
        })
        .await
        .expect("update")
        .into_inner();
    assert!(
        updated
            .connector
            .expect("info")
            .endpoint
            .ends_with(&other.port.to_string())
    );
    let check = c
        .health_check(pb::HealthCheckRequest {
            id: "web".into(),
            cached: false,
        })
        .await
        .expect("check")
        .into_inner();
    assert_eq!(check.status(), pb::ConnectorStatus::Unhealthy);
    assert!(check.message.contains("418"), "{}", check.message);
    let err = c
        .update_connector(pb::UpdateConnectorRequest {
            config: Some(http_entry("nope", 80)),
        })
        .await
        .expect_err("unknown");
    assert_eq!(err.code(), Code::NotFound);

    // Remove.
    c.remove_connector(pb::RemoveConnectorRequest { id: "web".into() })
        .await
        .expect("remove");
    let err = c
        .remove_connector(pb::RemoveConnectorRequest { id: "web".into() })
        .await
        .expect_err("gone");
    assert_eq!(err.code(), Code::NotFound);

    // gRPC health.
    let mut health = tonic_health::pb::health_client::HealthClient::new(
        Channel::from_shared(server.grpc.clone())
            .expect("uri")
            .connect()
            .await
            .expect("connect"),
    );
    let serving = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "sandport.connectors.v1.ConnectorsService".into(),
        })
        .await
        .expect("health")
        .into_inner();
    assert_eq!(
        serving.status(),
        tonic_health::pb::health_check_response::ServingStatus::Serving
    );

    // Reflection, as grpcurl uses it.
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    let mut reflection = ServerReflectionClient::new(
        Channel::from_shared(server.grpc.clone())
            .expect("uri")
            .connect()
            .await
            .expect("connect"),
    );
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut answers = reflection
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .expect("reflection")
        .into_inner();
    let answer = answers
        .message()
        .await
        .expect("answer")
        .expect("one answer");
    let Some(MessageResponse::ListServicesResponse(list)) = answer.message_response else {
        panic!("unexpected reflection answer");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    assert!(
        names.contains(&"sandport.connectors.v1.ConnectorsService".to_string()),
        "{names:?}"
    );
    assert!(
        names.contains(&"grpc.health.v1.Health".to_string()),
        "{names:?}"
    );
}

#[tokio::test]
async fn registrations_and_removals_survive_kill_9() {
    let target = Target::start(200);
    let dir = temp_dir("durable");
    let config = write(&dir, "connectors.yaml", &config_yaml(target.port));
    let yaml_before = std::fs::read_to_string(&config).expect("read");
    let data = dir.join("data");
    let server = Server::start(&config, &data);
    let mut c = client(&server).await;
    c.register_connector(pb::RegisterConnectorRequest {
        config: Some(http_entry("added", target.port)),
    })
    .await
    .expect("register");
    c.remove_connector(pb::RemoveConnectorRequest {
        id: "jaeger".into(),
    })
    .await
    .expect("remove");
    server.kill_9();

    let server = Server::start(&config, &data);
    let mut c = client(&server).await;
    let list = c
        .list_connectors(pb::ListConnectorsRequest::default())
        .await
        .expect("list")
        .into_inner();
    let ids: Vec<&str> = list.connectors.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["added", "prometheus"]);
    assert_eq!(
        std::fs::read_to_string(&config).expect("read"),
        yaml_before,
        "the YAML is untouched"
    );
    let check = c
        .health_check(pb::HealthCheckRequest {
            id: "added".into(),
            cached: false,
        })
        .await
        .expect("check")
        .into_inner();
    assert_eq!(check.status(), pb::ConnectorStatus::Healthy);
}

#[tokio::test]
async fn a_registration_past_the_node_budget_is_resource_exhausted() {
    let target = Target::start(200);
    let dir = temp_dir("budget");
    let config = write(&dir, "connectors.yaml", "connectors: []\n");
    let server = Server::start_with(&config, &dir.join("data"), &["--max-connectors", "1"]);
    let mut c = client(&server).await;
    c.register_connector(pb::RegisterConnectorRequest {
        config: Some(http_entry("one", target.port)),
    })
    .await
    .expect("fits");
    let err = c
        .register_connector(pb::RegisterConnectorRequest {
            config: Some(http_entry("two", target.port)),
        })
        .await
        .expect_err("over budget");
    assert_eq!(err.code(), Code::ResourceExhausted);
    assert!(
        err.message().contains("1 of at most 1"),
        "{}",
        err.message()
    );
}

#[tokio::test]
async fn concurrent_registrations_of_one_id_have_exactly_one_winner() {
    let target = Target::start(200);
    let dir = temp_dir("race");
    let config = write(&dir, "connectors.yaml", "connectors: []\n");
    let server = Server::start(&config, &dir.join("data"));
    let c = client(&server).await;
    let mut calls = Vec::new();
    for _ in 0..8 {
        let mut c = c.clone();
        let entry = http_entry("same", target.port);
        calls.push(tokio::spawn(async move {
            c.register_connector(pb::RegisterConnectorRequest {
                config: Some(entry),
            })
            .await
        }));
    }
    let mut wins = 0;
    for call in calls {
        match call.await.expect("task") {
            Ok(_) => wins += 1,
            Err(status) => assert_eq!(status.code(), Code::AlreadyExists, "{status:?}"),
        }
    }
    assert_eq!(wins, 1);
}

#[tokio::test]
async fn watch_health_delivers_a_change_when_the_target_goes_down() {
    let target = Target::start(200);
    let dir = temp_dir("watch");
    let config = write(
        &dir,
        "connectors.yaml",
        &format!(
            "connectors:\n  - {{id: web, component: http, host: 127.0.0.1, port: {}, health_check: {{interval: 1s, timeout: 1s}}}}\n",
            target.port
        ),
    );
    let server = Server::start(&config, &dir.join("data"));
    let mut c = client(&server).await;
    let mut stream = c
        .watch_health(pb::WatchHealthRequest {
            ids: vec!["web".into()],
            ..Default::default()
        })
        .await
        .expect("watch")
        .into_inner();
    // Wait for it to be healthy, then take the target down.
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut saw_healthy = false;
    let mut saw_down = false;
    while Instant::now() < deadline && !saw_down {
        let next = tokio::time::timeout(Duration::from_secs(5), stream.message()).await;
        let Ok(Ok(Some(event))) = next else {
            if !saw_healthy {
                // It may have turned healthy before we subscribed.
                saw_healthy = true;
                target.set_status(503);
            }
            continue;
        };
        match event.status() {
            pb::ConnectorStatus::Healthy => {
                saw_healthy = true;
                target.set_status(503);
            }
            pb::ConnectorStatus::Unhealthy if saw_healthy => {
                assert!(event.message.contains("503"), "{}", event.message);
                saw_down = true;
            }
            _ => {}
        }
    }
    assert!(saw_down, "no unhealthy event arrived");
}

#[tokio::test]
async fn health_check_all_honours_a_short_client_deadline_while_one_connector_hangs() {
    let fast = Target::start(200);
    let slow = Target::start(200);
    slow.set_delay(Duration::from_secs(10));
    let dir = temp_dir("deadline");
    let config = write(
        &dir,
        "connectors.yaml",
        &format!(
            "connectors:\n  - {{id: fast, component: http, host: 127.0.0.1, port: {}}}\n  - {{id: slow, component: http, host: 127.0.0.1, port: {}, health_check: {{interval: 30s, timeout: 8s}}}}\n",
            fast.port, slow.port
        ),
    );
    let server = Server::start(&config, &dir.join("data"));
    let mut c = client(&server).await;
    let mut request = tonic::Request::new(pb::HealthCheckAllRequest::default());
    request.set_timeout(Duration::from_millis(1500));
    let started = Instant::now();
    let all = c
        .health_check_all(request)
        .await
        .expect("answered within the deadline")
        .into_inner();
    let took = started.elapsed();
    assert!(took < Duration::from_millis(1500), "took {took:?}");
    assert_eq!(all.unfinished, ["slow"]);
    let fast_result = all.results.iter().find(|r| r.id == "fast").expect("fast");
    assert_eq!(fast_result.status(), pb::ConnectorStatus::Healthy);
}

#[tokio::test]
async fn the_rest_api_serves_the_same_operations_with_json_errors() {
    let target = Target::start(200);
    let dir = temp_dir("rest");
    let config = write(&dir, "connectors.yaml", &config_yaml(target.port));
    let server = Server::start(&config, &dir.join("data"));
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();
    let url = |path: &str| format!("{}{path}", server.http);
    let get_json = async |path: &str| -> serde_json::Value {
        let answer = http.get(url(path)).send().await;
        let answer = answer.unwrap_or_else(|e| panic!("GET {path}: {e}"));
        answer
            .json()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: not JSON: {e}"))
    };

    let list = get_json("/api/v1/connectors").await;
    assert_eq!(list.as_array().map(Vec::len), Some(2));
    let filtered = get_json("/api/v1/connectors?type=custom").await;
    assert_eq!(filtered.as_array().map(Vec::len), Some(0));

    let entry = serde_json::json!({
        "id": "web", "component": "http", "host": "127.0.0.1", "port": target.port,
        "auth": {"type": "bearer", "token": "t0ken"},
        "health_check": {"interval": "30s", "timeout": "2s"}
    });
    let created = http
        .post(url("/api/v1/connectors"))
        .json(&entry)
        .send()
        .await
        .expect("post");
    assert_eq!(created.status(), 201);
    let dup = http
        .post(url("/api/v1/connectors"))
        .json(&entry)
        .send()
        .await
        .expect("post");
    assert_eq!(dup.status(), 409);
    let body: serde_json::Value = dup.json().await.expect("json");
    assert_eq!(body["error"]["code"], "already_exists");

    let bad = http
        .post(url("/api/v1/connectors"))
        .json(&serde_json::json!({"id": "x", "component": "http", "port": 80, "health_check": {"interval": "soon"}}))
        .send()
        .await
        .expect("post");
    assert_eq!(bad.status(), 422);
    let body: serde_json::Value = bad.json().await.expect("json");
    assert_eq!(body["error"]["problems"][0]["key"], "health_check.interval");

    // An API caller may not read the service's environment.
    let sneaky = http
        .post(url("/api/v1/connectors"))
        .json(
            &serde_json::json!({"id": "sneaky", "component": "http", "port": 80,
            "auth": {"type": "bearer", "token": "${HOME}"}}),
        )
        .send()
        .await
        .expect("post");
    assert_eq!(sneaky.status(), 422);
    let body: serde_json::Value = sneaky.json().await.expect("json");
    assert_eq!(body["error"]["problems"][0]["key"], "auth.token");

    let got = get_json("/api/v1/connectors/web").await;
    assert_eq!(got["config"]["auth"]["token"], "<redacted>");
    assert_eq!(got["config"]["health_check"]["timeout"], "2s");
    assert!(!got.to_string().contains("t0ken"));

    let health = get_json("/api/v1/connectors/web/health").await;
    assert_eq!(health["status"], "healthy", "{health}");
    assert!(health["latency"].is_string());
    // `cached=true` answers with that check instead of running another
    // (which would carry a later `checked_at`, to the millisecond).
    tokio::time::sleep(Duration::from_millis(5)).await;
    let cached = get_json("/api/v1/connectors/web/health?cached=true").await;
    assert_eq!(cached["checked_at"], health["checked_at"], "{cached}");
    assert_eq!(cached["message"], health["message"]);
    let unknown = http
        .get(url("/api/v1/connectors/nope/health?cached=true"))
        .send()
        .await
        .expect("cached health of an unknown id");
    assert_eq!(unknown.status(), 404);

    let put = http
        .put(url("/api/v1/connectors/web"))
        .json(&serde_json::json!({"component": "http", "host": "127.0.0.1", "port": closed_port()}))
        .send()
        .await
        .expect("put");
    assert_eq!(put.status(), 200);
    let mismatch = http
        .put(url("/api/v1/connectors/web"))
        .json(&serde_json::json!({"id": "other", "component": "http", "port": 80}))
        .send()
        .await
        .expect("put");
    assert_eq!(mismatch.status(), 422);

    let all = get_json("/api/v1/health").await;
    assert_eq!(all.as_array().map(Vec::len), Some(3));

    assert_eq!(
        http.delete(url("/api/v1/connectors/web"))
            .send()
            .await
            .expect("delete")
            .status(),
        204
    );
    let missing = http
        .delete(url("/api/v1/connectors/web"))
        .send()
        .await
        .expect("delete");
    assert_eq!(missing.status(), 404);
    assert_eq!(
        missing.json::<serde_json::Value>().await.expect("json")["error"]["code"],
        "not_found"
    );
    assert_eq!(
        http.patch(url("/api/v1/connectors/web"))
            .send()
            .await
            .expect("patch")
            .status(),
        405
    );
    assert_eq!(
        http.get(url("/nope")).send().await.expect("get").status(),
        404
    );
    assert_eq!(
        http.get(url("/healthz"))
            .send()
            .await
            .expect("healthz")
            .status(),
        200
    );
    assert_eq!(
        http.get(url("/readyz"))
            .send()
            .await
            .expect("readyz")
            .status(),
        200
    );

    let log = server.log.clone();
    let status = server.terminate(Duration::from_secs(15));
    assert!(status.success(), "{status}");
    let log = log.lock().expect("log").join("\n");
    assert!(log.contains("draining"), "{log}");
}

#[tokio::test]
async fn the_cli_talks_to_a_remote_service_when_connectors_service_addr_is_set() {
    let target = Target::start(200);
    let dir = temp_dir("remote-cli");
    let config = write(&dir, "connectors.yaml", &config_yaml(target.port));
    let server = Server::start(&config, &dir.join("data"));
    let entry = write(
        &dir,
        "entry.yaml",
        &format!(
            "id: remote-only\ncomponent: http\nhost: 127.0.0.1\nport: {}\n",
            target.port
        ),
    );
    let cli = |args: &[&str], remote: bool| {
        let mut command = std::process::Command::new(SANDPORT);
        command
            .args(args)
            .env("RUST_LOG", "warn")
            .env_remove("SANDPORT_CONFIG");
        if remote {
            command.env("CONNECTORS_SERVICE_ADDR", &server.grpc);
        } else {
            command.env_remove("CONNECTORS_SERVICE_ADDR");
        }
        command.output().expect("run sandport")
    };
    let out = cli(
        &["register", "--file", entry.to_str().expect("utf-8")],
        true,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = cli(&["list", "-o", "json"], true);
    let remote: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let ids: Vec<&str> = remote
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|i| i["id"].as_str())
        .collect();
    assert_eq!(ids, ["jaeger", "prometheus", "remote-only"]);

    // Without the variable, the CLI runs its own in-process service on the
    // built-in config, which knows nothing of the remote registration.
    let local_dir = temp_dir("local-cli");
    let out = cli(
        &[
            "list",
            "-o",
            "json",
            "--data-dir",
            local_dir.to_str().expect("utf-8"),
        ],
        false,
    );
    let local: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let ids: Vec<&str> = local
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|i| i["id"].as_str())
        .collect();
    assert_eq!(ids, ["grafana", "jaeger", "prometheus"]);

    let out = cli(&["check", "remote-only", "-o", "json"], true);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = cli(&["get", "remote-only"], true);
    assert!(String::from_utf8_lossy(&out.stdout).contains("component: http"));
    let out = cli(&["remove", "remote-only"], true);
    assert!(out.status.success());
    let out = cli(&["remove", "remote-only"], true);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("remote-only"));
}

#[tokio::test]
async fn grpc_health_turns_not_serving_when_shutdown_begins() {
    use tonic_health::pb::health_check_response::ServingStatus;
    let dir = temp_dir("not-serving");
    let config = write(&dir, "connectors.yaml", "connectors: []\n");
    let server = Server::start(&config, &dir.join("data"));
    let mut health = tonic_health::pb::health_client::HealthClient::new(
        Channel::from_shared(server.grpc.clone())
            .expect("uri")
            .connect()
            .await
            .expect("connect"),
    );
    let mut watch = health
        .watch(tonic_health::pb::HealthCheckRequest {
            service: "sandport.connectors.v1.ConnectorsService".into(),
        })
        .await
        .expect("watch")
        .into_inner();
    let first = watch.message().await.expect("status").expect("one");
    assert_eq!(first.status(), ServingStatus::Serving);
    let stopping = std::thread::spawn(move || server.terminate(Duration::from_secs(20)));
    let next = tokio::time::timeout(Duration::from_secs(10), watch.message())
        .await
        .expect("a status change")
        .expect("status")
        .expect("one");
    assert_eq!(next.status(), ServingStatus::NotServing);
    drop(watch);
    drop(health);
    let status = stopping.join().expect("thread");
    assert!(status.success(), "{status}");
}
