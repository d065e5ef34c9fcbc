//! The APIs' protection end to end: tokens and roles on gRPC and REST, the
//! tokens file and certificate reloaded in place, TLS and mTLS, the loopback
//! rule, load shedding, the body cap and the audit log.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sandport_server::grpc::pb;
use sandport_server::grpc::pb::connectors_service_client::ConnectorsServiceClient;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic::{Code, Request};

use super::support::{SANDPORT, Server, Target, TestCa, temp_dir, write};

const ADMIN: &str = "sp_admin_token_for_tests";
const READ: &str = "sp_read_token_for_tests";

fn sha256_hex(token: &str) -> String {
    sandport_server::auth::digest_hex(token)
}

fn tokens_yaml(entries: &[(&str, &str, &str)]) -> String {
    let mut text = String::from("tokens:\n");
    for (name, role, token) in entries {
        text.push_str(&format!(
            "  - {{name: {name}, role: {role}, sha256: {}}}\n",
            sha256_hex(token)
        ));
    }
    text
}

fn entry_json(id: &str, port: u16) -> serde_json::Value {
    serde_json::json!({
        "id": id, "component": "http", "host": "127.0.0.1", "port": port,
        "health_check": {"interval": "30s", "timeout": "5s"}
    })
}

fn grpc_entry(id: &str, port: u16) -> pb::ConnectorConfig {
    pb::ConnectorConfig {
        id: id.into(),
        component: "http".into(),
        host: "127.0.0.1".into(),
        port: i32::from(port),
        r#type: pb::ConnectorType::Custom.into(),
        ..Default::default()
    }
}

fn with_token<T>(message: T, token: Option<&str>) -> Request<T> {
    let mut request = Request::new(message);
    if let Some(token) = token {
        request.metadata_mut().insert(
            "authorization",
            format!("Bearer {token}").parse().expect("ascii"),
        );
    }
    request
}

fn http_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

fn log_has(server: &Server, needles: &[&str]) -> bool {
    server
        .log
        .lock()
        .expect("log")
        .iter()
        .any(|line| needles.iter().all(|n| line.contains(n)))
}

/// Polls `probe` until it holds, for at most 10 s (a reload is seen within
/// about a second).
async fn eventually(what: &str, mut probe: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !probe().await {
        assert!(Instant::now() < deadline, "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn start_with_tokens(name: &str, extra: &[&str]) -> (Server, PathBuf, PathBuf) {
    let dir = temp_dir(name);
    let config = write(&dir, "connectors.yaml", "connectors: []\n");
    let tokens = write(
        &dir,
        "tokens.yaml",
        &tokens_yaml(&[("ci", "admin", ADMIN), ("dash", "read", READ)]),
    );
    let mut args = vec!["--tokens", tokens.to_str().expect("utf-8")];
    args.extend_from_slice(extra);
    let server = Server::start_with(&config, &dir.join("data"), &args);
    (server, tokens, dir)
}

#[tokio::test]
async fn tokens_decide_who_may_call_what_on_grpc_and_rest_and_admin_calls_are_audited() {
    let target = Target::start(200);
    let (server, _tokens, dir) = start_with_tokens("roles", &[]);
    let http = http_client();
    let url = |path: &str| format!("{}{path}", server.http);

    // REST: no token, a malformed or unknown one: 401 with the scheme to use.
    for token in [None, Some("sp_unknown")] {
        let mut request = http.get(url("/api/v1/connectors"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let answer = request.send().await.expect("get");
        assert_eq!(answer.status(), 401, "token {token:?}");
        assert_eq!(answer.headers()["www-authenticate"], "Bearer");
        let body: serde_json::Value = answer.json().await.expect("json");
        assert_eq!(body["error"]["code"], "unauthenticated");
    }
    // The probes stay open.
    for probe in ["/healthz", "/readyz"] {
        let answer = http.get(url(probe)).send().await.expect("probe");
        assert_eq!(answer.status(), 200, "{probe}");
    }
    // read lists but cannot register; admin can.
    let listed = http
        .get(url("/api/v1/connectors"))
        .bearer_auth(READ)
        .send()
        .await
        .expect("list");
    assert_eq!(listed.status(), 200);
    let refused = http
        .post(url("/api/v1/connectors"))
        .bearer_auth(READ)
        .json(&entry_json("by-read", target.port))
        .send()
        .await
        .expect("post");
    assert_eq!(refused.status(), 403);
    let created = http
        .post(url("/api/v1/connectors"))
        .bearer_auth(ADMIN)
        .json(&entry_json("by-admin", target.port))
        .send()
        .await
        .expect("post");
    assert_eq!(created.status(), 201);

    // gRPC: the same rules.
    let mut client = ConnectorsServiceClient::connect(server.grpc.clone())
        .await
        .expect("connect");
    let list = |token: Option<&'static str>| {
        let mut client = client.clone();
        async move {
            client
                .list_connectors(with_token(pb::ListConnectorsRequest::default(), token))
                .await
        }
    };
    assert_eq!(
        list(None).await.expect_err("no token").code(),
        Code::Unauthenticated
    );
    assert_eq!(
        list(Some("sp_unknown")).await.expect_err("unknown").code(),
        Code::Unauthenticated
    );
    assert_eq!(
        list(Some(READ))
            .await
            .expect("read lists")
            .into_inner()
            .connectors
            .len(),
        1
    );
    let register = |token| pb::RegisterConnectorRequest {
        config: Some(grpc_entry(token, target.port)),
    };
    let denied = client
        .register_connector(with_token(register("grpc-read"), Some(READ)))
        .await
        .expect_err("read cannot register");
    assert_eq!(denied.code(), Code::PermissionDenied);
    client
        .register_connector(with_token(register("grpc-admin"), Some(ADMIN)))
        .await
        .expect("admin registers");
    // gRPC health answers without a token.
    let mut health = tonic_health::pb::health_client::HealthClient::new(
        Channel::from_shared(server.grpc.clone())
            .expect("uri")
            .connect()
            .await
            .expect("connect"),
    );
    health
        .check(tonic_health::pb::HealthCheckRequest::default())
        .await
        .expect("health is open");

    // Each admin call left one audit line naming who, what and how it went.
    eventually("the audit lines", async || {
        log_has(
            &server,
            &[
                "sandport::audit",
                "who=\"ci\"",
                "RegisterConnector",
                "grpc-admin",
                "outcome=\"ok\"",
            ],
        ) && log_has(
            &server,
            &[
                "sandport::audit",
                "who=\"ci\"",
                "POST /api/v1/connectors",
                "by-admin",
                "outcome=\"ok\"",
            ],
        ) && log_has(
            &server,
            &[
                "sandport::audit",
                "who=\"dash\"",
                "RegisterConnector",
                "permission_denied",
            ],
        )
    })
    .await;
    assert!(
        !log_has(&server, &[ADMIN]) && !log_has(&server, &[READ]),
        "a token reached the log"
    );

    // The CLI sends its token to a remote service.
    let cli = |token: Option<&str>| {
        let mut command = std::process::Command::new(SANDPORT);
        command
            .args(["list", "-o", "json"])
            .env("CONNECTORS_SERVICE_ADDR", &server.grpc)
            .env("RUST_LOG", "warn")
            .env_remove("SANDPORT_TOKEN");
        if let Some(token) = token {
            command.env("SANDPORT_TOKEN", token);
        }
        command.output().expect("run sandport")
    };
    let without = cli(None);
    assert!(!without.status.success());
    assert!(
        String::from_utf8_lossy(&without.stderr).contains("SANDPORT_TOKEN"),
        "{}",
        String::from_utf8_lossy(&without.stderr)
    );
    let with = cli(Some(READ));
    assert!(
        with.status.success(),
        "{}",
        String::from_utf8_lossy(&with.stderr)
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_changed_tokens_file_takes_effect_and_a_bad_one_keeps_the_last_good() {
    let (server, tokens, dir) = start_with_tokens("reload", &[]);
    let http = http_client();
    let status = async |token: &str| {
        http.get(format!("{}/api/v1/connectors", server.http))
            .bearer_auth(token)
            .send()
            .await
            .expect("get")
            .status()
    };
    assert_eq!(status(READ).await, 200);

    let renewed = "sp_renewed_token_for_tests";
    std::fs::write(&tokens, tokens_yaml(&[("dash", "read", renewed)])).expect("write");
    eventually("the new token admitted", async || {
        status(renewed).await == 200
    })
    .await;
    assert_eq!(status(READ).await, 401, "the removed token still works");

    std::fs::write(&tokens, "tokens: [{name: broken, role: root}]\n").expect("write");
    eventually("the bad file logged", async || {
        log_has(&server, &["keeping the previous tokens", "role"])
    })
    .await;
    assert_eq!(
        status(renewed).await,
        200,
        "a bad file replaced the good set"
    );
    let _ = std::fs::remove_dir_all(dir);
}

fn https(addr: &str) -> String {
    addr.replacen("http://", "https://", 1)
}

async fn grpc_tls(
    server: &Server,
    ca_pem: &str,
    identity: Option<(&str, &str)>,
) -> Result<ConnectorsServiceClient<Channel>, tonic::transport::Error> {
    let mut tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca_pem));
    if let Some((cert, key)) = identity {
        tls = tls.identity(Identity::from_pem(cert, key));
    }
    let channel = Endpoint::from_shared(https(&server.grpc))
        .expect("uri")
        .tls_config(tls)?
        .connect()
        .await?;
    Ok(ConnectorsServiceClient::new(channel))
}

fn write_pair(dir: &Path, (cert, key): &(String, String)) -> (PathBuf, PathBuf) {
    (
        write(dir, "server.crt", cert),
        write(dir, "server.key", key),
    )
}

#[tokio::test]
async fn tls_serves_both_apis_maps_client_certificates_and_picks_up_a_renewed_certificate() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let first = TestCa::new("first");
    let dir = temp_dir("tls");
    let (cert, key) = write_pair(
        &dir,
        &first.leaf(None, &[rcgen::ExtendedKeyUsagePurpose::ServerAuth]),
    );
    let ca = write(&dir, "ca.crt", &first.pem);
    let config = write(&dir, "connectors.yaml", "connectors: []\n");
    let tokens = write(
        &dir,
        "tokens.yaml",
        &format!(
            "{}  - {{name: deployer, role: admin, client_cn: deployer.test}}\n",
            tokens_yaml(&[("dash", "read", READ)])
        ),
    );
    let path = |p: &PathBuf| p.to_str().expect("utf-8").to_string();
    let (cert_s, key_s, ca_s, tokens_s) = (path(&cert), path(&key), path(&ca), path(&tokens));
    let server = Server::start_with(
        &config,
        &dir.join("data"),
        &[
            "--tls-cert",
            &cert_s,
            "--tls-key",
            &key_s,
            "--client-ca",
            &ca_s,
            "--tokens",
            &tokens_s,
        ],
    );

    // REST over TLS, with a token.
    let rest = |ca_pem: &str| {
        reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(ca_pem.as_bytes()).expect("pem")])
            .build()
            .expect("client")
    };
    let listed = rest(&first.pem)
        .get(format!("{}/api/v1/connectors", https(&server.http)))
        .bearer_auth(READ)
        .send()
        .await
        .expect("https get");
    assert_eq!(listed.status(), 200);
    // Plain HTTP is not served.
    assert!(
        http_client()
            .get(format!("{}/healthz", server.http))
            .send()
            .await
            .map_or(true, |a| a.status() != 200)
    );

    // gRPC over TLS: a token, or a client certificate mapped to its role.
    let mut client = grpc_tls(&server, &first.pem, None)
        .await
        .expect("tls channel");
    client
        .list_connectors(with_token(pb::ListConnectorsRequest::default(), Some(READ)))
        .await
        .expect("read lists over TLS");
    let client_pair = first.leaf(
        Some("deployer.test"),
        &[rcgen::ExtendedKeyUsagePurpose::ClientAuth],
    );
    let mut deployer = grpc_tls(&server, &first.pem, Some((&client_pair.0, &client_pair.1)))
        .await
        .expect("mTLS channel");
    deployer
        .register_connector(Request::new(pb::RegisterConnectorRequest {
            config: Some(grpc_entry("by-cert", Target::start(200).port)),
        }))
        .await
        .expect("the certificate's name is an admin");
    assert!(
        log_has(&server, &["sandport::audit", "who=\"deployer\""]) || {
            tokio::time::sleep(Duration::from_millis(300)).await;
            log_has(&server, &["sandport::audit", "who=\"deployer\""])
        }
    );

    // A renewed certificate, from another CA, is served without a restart.
    let second = TestCa::new("second");
    write_pair(
        &dir,
        &second.leaf(None, &[rcgen::ExtendedKeyUsagePurpose::ServerAuth]),
    );
    eventually("the renewed certificate served", async || {
        rest(&second.pem)
            .get(format!("{}/healthz", https(&server.http)))
            .send()
            .await
            .is_ok_and(|a| a.status() == 200)
    })
    .await;
    assert!(grpc_tls(&server, &second.pem, None).await.is_ok());
    let mut renewed = grpc_tls(&server, &second.pem, None).await.expect("channel");
    renewed
        .list_connectors(with_token(pb::ListConnectorsRequest::default(), Some(READ)))
        .await
        .expect("gRPC with the renewed certificate");

    // The CLI over https, with --ca-cert and --token.
    let ca2 = write(&dir, "ca2.crt", &second.pem);
    let out = std::process::Command::new(SANDPORT)
        .args([
            "list",
            "-o",
            "json",
            "--ca-cert",
            &path(&ca2),
            "--token",
            READ,
        ])
        .env("CONNECTORS_SERVICE_ADDR", https(&server.grpc))
        .env("RUST_LOG", "warn")
        .output()
        .expect("run sandport");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_non_loopback_address_needs_tls_and_tokens_or_insecure() {
    let dir = temp_dir("exposed");
    let config = write(&dir, "connectors.yaml", "connectors: []\n");
    let out = std::process::Command::new(SANDPORT)
        .args([
            "serve",
            "--grpc-addr",
            "127.0.0.1:0",
            "--http-addr",
            "0.0.0.0:0",
            "--config",
        ])
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.join("data"))
        .env_remove("SANDPORT_TOKENS")
        .output()
        .expect("run sandport");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for needle in [
        "refusing to serve REST on 0.0.0.0",
        "--tls-cert",
        "--tokens",
        "--insecure",
    ] {
        assert!(stderr.contains(needle), "{needle} missing from: {stderr}");
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn calls_past_the_concurrency_limit_are_shed_and_oversized_bodies_refused() {
    let target = Target::start(200);
    let dir = temp_dir("shed");
    let config = write(
        &dir,
        "connectors.yaml",
        &format!(
            "connectors:\n  - {{id: slow, component: http, host: 127.0.0.1, port: {}, health_check: {{interval: 1m, timeout: 5s}}}}\n",
            target.port
        ),
    );
    let server = Server::start_with(
        &config,
        &dir.join("data"),
        &["--max-concurrent-requests", "1"],
    );
    let _ = rustls::crypto::ring::default_provider().install_default();
    // A connection per call, so that each call takes a place of its own.
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("client");
    let url = |path: &str| format!("{}{path}", server.http);

    // A body past the default 1 MiB cap.
    let big = serde_json::json!({"id": "big", "component": "http", "settings": {"pad": "x".repeat(2 << 20)}});
    // On a client of its own: the server closes a connection whose body it
    // refused to read, and the next call must not be sent on it.
    let answer = http_client()
        .post(url("/api/v1/connectors"))
        .json(&big)
        .send()
        .await
        .expect("post");
    assert_eq!(answer.status(), 413);

    // One slow live check holds the only place (the target answers after
    // 4 s, within the check's 5 s timeout).
    target.set_delay(Duration::from_secs(4));
    let mut client = ConnectorsServiceClient::connect(server.grpc.clone())
        .await
        .expect("connect");
    let slow = tokio::spawn({
        let (http, url) = (http.clone(), url("/api/v1/connectors/slow/health"));
        async move { http.get(url).send().await.map(|a| a.status()) }
    });
    // The check's request may take a moment to arrive on a busy machine.
    let mut shed = None;
    eventually("a call shed while the check runs", async || {
        let answer = http
            .get(url("/api/v1/connectors"))
            .send()
            .await
            .expect("get");
        let refused = answer.status() == 429;
        shed = Some(answer);
        refused
    })
    .await;
    let shed = shed.expect("an answer");
    assert_eq!(shed.headers()["retry-after"], "1");
    let refused = client
        .list_connectors(pb::ListConnectorsRequest::default())
        .await
        .expect_err("shed");
    assert_eq!(refused.code(), Code::ResourceExhausted);
    // Probes are never shed.
    assert_eq!(
        http.get(url("/readyz"))
            .send()
            .await
            .expect("probe")
            .status(),
        200
    );

    assert_eq!(slow.await.expect("join").expect("slow check").as_u16(), 200);
    assert_eq!(
        http.get(url("/api/v1/connectors"))
            .send()
            .await
            .expect("get")
            .status(),
        200
    );
    let _ = std::fs::remove_dir_all(dir);
}
