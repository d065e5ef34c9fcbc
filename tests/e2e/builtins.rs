//! The built-in connectors against servers that impersonate the services.

use std::time::Duration;

use sandport_core::{HealthSnapshot, HealthStatus};
use sandport_tests::{FakeServer, Reply, closed_port, detail, entry, runtime};

async fn check_once(yaml: &str) -> HealthSnapshot {
    let runtime = runtime();
    let config = entry(yaml);
    let id = config.id.clone();
    runtime.register(config).await.expect("registers");
    let snapshot = runtime.check(&id).await.expect("known id");
    runtime.shutdown().await;
    snapshot
}

#[tokio::test]
async fn prometheus_is_healthy_when_healthy_answers_and_reports_readiness() {
    let server = FakeServer::prometheus().await;
    let snap = check_once(&format!(
        "{{id: prometheus, host: 127.0.0.1, port: {}}}",
        server.port()
    ))
    .await;
    assert_eq!(snap.status, HealthStatus::Healthy, "{snap:?}");
    assert_eq!(detail(&snap, "ready"), Some("ready"));
    assert_eq!(server.hits("/-/healthy"), 1);
    assert!(snap.latency.is_some() && snap.checked_at.is_some());
}

#[tokio::test]
async fn prometheus_503_is_unhealthy_with_the_url_and_status() {
    let server = FakeServer::prometheus().await;
    server.set("/-/healthy", Reply::status(503, "not yet"));
    let snap = check_once(&format!(
        "{{id: prometheus, host: 127.0.0.1, port: {}}}",
        server.port()
    ))
    .await;
    assert_eq!(snap.status, HealthStatus::Unhealthy);
    assert_eq!(
        snap.message,
        format!(
            "GET http://127.0.0.1:{}/-/healthy returned 503",
            server.port()
        )
    );
    assert_eq!(
        snap.failure, None,
        "an honest unhealthy is not a sandbox failure"
    );
}

#[tokio::test]
async fn prometheus_not_ready_is_still_healthy_but_says_so() {
    let server = FakeServer::prometheus().await;
    server.set("/-/ready", Reply::status(503, "Service Unavailable"));
    let snap = check_once(&format!(
        "{{id: prometheus, host: 127.0.0.1, port: {}}}",
        server.port()
    ))
    .await;
    assert_eq!(snap.status, HealthStatus::Healthy);
    assert_eq!(detail(&snap, "ready"), Some("not ready (503)"));
}

#[tokio::test]
async fn prometheus_uses_the_configured_path_and_base_path() {
    let server = FakeServer::start(&[("/prom/custom", Reply::ok("ok"))]).await;
    let snap = check_once(&format!(
        "{{id: prometheus, host: 127.0.0.1, port: {}, base_path: prom, health_check: {{path: /custom}}}}",
        server.port()
    ))
    .await;
    assert_eq!(snap.status, HealthStatus::Healthy, "{snap:?}");
    assert_eq!(server.hits("/prom/custom"), 1);
}

#[tokio::test]
async fn a_closed_port_is_unhealthy_with_connection_refused() {
    let port = closed_port();
    let snap = check_once(&format!(
        "{{id: prometheus, host: 127.0.0.1, port: {port}}}"
    ))
    .await;
    assert_eq!(snap.status, HealthStatus::Unhealthy);
    assert_eq!(
        snap.message,
        format!("GET http://127.0.0.1:{port}/-/healthy: connection refused")
    );
}

#[tokio::test]
async fn a_slow_server_is_cut_off_at_the_timeout() {
    let server = FakeServer::prometheus().await;
    server.set("/-/healthy", Reply::ok("late").slow(Duration::from_secs(5)));
    let snap = check_once(&format!(
        "{{id: prometheus, host: 127.0.0.1, port: {}, health_check: {{timeout: 1s}}}}",
        server.port()
    ))
    .await;
    assert_eq!(snap.status, HealthStatus::Unhealthy);
    assert!(
        snap.message.ends_with("timed out after 1s"),
        "{}",
        snap.message
    );
    let latency = snap.latency.expect("latency recorded");
    assert!(latency < Duration::from_secs(2), "took {latency:?}");
}

#[tokio::test]
async fn grafana_reports_version_and_is_healthy_with_database_ok() {
    let server = FakeServer::start(&[(
        "/api/health",
        Reply::ok(r#"{"commit":"abc123","database":"ok","version":"11.2.0"}"#)
            .header("content-type", "application/json"),
    )])
    .await;
    let snap = check_once(&format!(
        "{{id: grafana, host: 127.0.0.1, port: {}}}",
        server.port()
    ))
    .await;
    assert_eq!(snap.status, HealthStatus::Healthy, "{snap:?}");
    assert_eq!(detail(&snap, "version"), Some("11.2.0"));
    assert_eq!(detail(&snap, "database"), Some("ok"));
    assert_eq!(detail(&snap, "commit"), Some("abc123"));
}

#[tokio::test]
async fn grafana_with_a_failing_database_is_degraded() {
    let server = FakeServer::start(&[(
        "/api/health",
        Reply::ok(r#"{"database":"failing","version":"11.2.0"}"#),
    )])
    .await;
    let snap = check_once(&format!(
        "{{id: grafana, host: 127.0.0.1, port: {}}}",
        server.port()
    ))
    .await;
    assert_eq!(snap.status, HealthStatus::Degraded);
    assert_eq!(snap.message, "Grafana reports database: failing");
}

#[tokio::test]
async fn grafana_with_a_body_that_is_not_json_is_unhealthy_and_says_why() {
    let server = FakeServer::start(&[("/api/health", Reply::ok("<html>login</html>"))]).await;
    let snap = check_once(&format!(
        "{{id: grafana, host: 127.0.0.1, port: {}}}",
        server.port()
    ))
    .await;
    assert_eq!(snap.status, HealthStatus::Unhealthy);
    assert!(snap.message.contains("not JSON"), "{}", snap.message);
}

#[tokio::test]
async fn jaeger_checks_the_query_service_root_or_the_configured_path() {
    let server = FakeServer::start(&[
        ("/", Reply::ok("<html>Jaeger UI</html>")),
        ("/api/services", Reply::ok("{}")),
    ])
    .await;
    let snap = check_once(&format!(
        "{{id: jaeger, host: 127.0.0.1, port: {}}}",
        server.port()
    ))
    .await;
    assert_eq!(snap.status, HealthStatus::Healthy, "{snap:?}");
    assert_eq!(server.hits("/"), 1);
    let snap = check_once(&format!(
        "{{id: jaeger, host: 127.0.0.1, port: {}, health_check: {{path: /api/services}}}}",
        server.port()
    ))
    .await;
    assert_eq!(snap.status, HealthStatus::Healthy, "{snap:?}");
    assert_eq!(server.hits("/api/services"), 1);
}

#[tokio::test]
async fn http_connector_accepts_the_configured_status_ranges() {
    let server = FakeServer::start(&[("/login", Reply::status(401, "who are you"))]).await;
    let yaml = |expected: &str| {
        format!(
            "{{id: web, component: http, host: 127.0.0.1, port: {}, settings: {{path: /login, expected_status: '{expected}'}}}}",
            server.port()
        )
    };
    let snap = check_once(&yaml("200-299,401")).await;
    assert_eq!(snap.status, HealthStatus::Healthy, "{snap:?}");
    let snap = check_once(&yaml("200-299")).await;
    assert_eq!(snap.status, HealthStatus::Unhealthy);
    assert!(
        snap.message.ends_with("returned 401, expected 200-299"),
        "{}",
        snap.message
    );
}

#[tokio::test]
async fn http_connector_reports_each_check_as_the_target_answered_it() {
    // The connector reuses its last healthy report while the status stays
    // the same; every change of status must still show.
    let server = FakeServer::start(&[("/", Reply::ok("up"))]).await;
    let runtime = runtime();
    runtime
        .register(entry(&format!(
            "{{id: web, component: http, host: 127.0.0.1, port: {}}}",
            server.port()
        )))
        .await
        .expect("registers");
    for (status, healthy) in [
        (200, true),
        (200, true),
        (202, true),
        (503, false),
        (200, true),
    ] {
        server.set("/", Reply::status(status, "body"));
        let snap = runtime.check("web").await.expect("known");
        let expected = if healthy {
            HealthStatus::Healthy
        } else {
            HealthStatus::Unhealthy
        };
        assert_eq!(snap.status, expected, "{status}: {snap:?}");
        assert!(
            snap.message.contains(&format!("returned {status}")),
            "{status}: {snap:?}"
        );
        if healthy {
            assert_eq!(detail(&snap, "status"), Some(status.to_string().as_str()));
        }
    }
    assert_eq!(server.hits("/"), 5);
}

#[tokio::test]
async fn http_connector_checks_the_body_and_sends_method_headers_and_body() {
    let server =
        FakeServer::start(&[("/status", Reply::ok("status: all systems operational v2"))]).await;
    let base = format!(
        "id: web, component: http, host: 127.0.0.1, port: {}",
        server.port()
    );
    let healthy = format!(
        "{{{base}, settings: {{path: /status, method: post, body: ping, body_contains: operational, body_not_contains: degraded, body_matches: 'v\\d+', headers: {{X-Probe: sandport}}}}}}"
    );
    let snap = check_once(&healthy).await;
    assert_eq!(snap.status, HealthStatus::Healthy, "{snap:?}");
    let seen = server.seen();
    let last = seen.last().expect("a request");
    assert_eq!(last.method, "POST");
    assert_eq!(
        last.headers
            .get("x-probe")
            .map(|v| v.to_str().unwrap_or("")),
        Some("sandport")
    );

    let snap = check_once(&format!(
        "{{{base}, settings: {{path: /status, body_contains: maintenance}}}}"
    ))
    .await;
    assert_eq!(snap.status, HealthStatus::Unhealthy);
    assert!(
        snap.message.contains("does not contain \"maintenance\""),
        "{}",
        snap.message
    );
    let snap = check_once(&format!(
        "{{{base}, settings: {{path: /status, body_matches: '(?i)ALL SYSTEMS\\s+OPERATIONAL'}}}}"
    ))
    .await;
    assert_eq!(snap.status, HealthStatus::Healthy, "{snap:?}");
    let snap = check_once(&format!(
        "{{{base}, settings: {{path: /status, body_not_matches: 'operational'}}}}"
    ))
    .await;
    assert_eq!(snap.status, HealthStatus::Unhealthy);
    assert!(
        snap.message.contains("matches /operational/"),
        "{}",
        snap.message
    );
}

#[tokio::test]
async fn http_connector_searches_a_large_body_in_the_host_not_in_the_guest() {
    // 900 KiB of varied text, then the word the check looks for.
    let mut x: u64 = 1;
    let mut body: String = (0..900 * 1024)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from(b"abcdefghijklmnopqrstuvwxyz ab\n"[(x % 30) as usize])
        })
        .collect();
    body.push_str("all systems operational");
    let server = FakeServer::start(&[("/status", Reply::ok(body))]).await;
    let runtime = runtime();
    for (id, settings) in [
        (
            "web",
            "body_contains: operational, body_not_matches: 'degraded|maintenance'",
        ),
        // Bounded repetitions of `.` on varied text: the host's search
        // gives up rather than spend a second of a worker thread.
        ("costly", "body_matches: '(?s)(.{0,30}[ab]){3}[xy]{6}'"),
    ] {
        runtime
            .register(entry(&format!(
                "{{id: {id}, component: http, host: 127.0.0.1, port: {}, settings: {{path: /status, {settings}}}}}",
                server.port()
            )))
            .await
            .expect("registers");
    }
    let snap = runtime.check("costly").await.expect("known id");
    assert_eq!(snap.status, HealthStatus::Unhealthy, "{snap:?}");
    assert!(
        snap.message.contains("the search gave up at byte")
            && snap.message.contains("simplify the pattern"),
        "{}",
        snap.message
    );
    let before = runtime
        .memory_used("web")
        .await
        .expect("known")
        .expect("an instance");
    let snap = runtime.check("web").await.expect("known id");
    assert_eq!(snap.status, HealthStatus::Healthy, "{snap:?}");
    let after = runtime
        .memory_used("web")
        .await
        .expect("known")
        .expect("an instance");
    // A body copied into the guest would grow its memory by 900 KiB or more,
    // for good: linear memory never shrinks.
    assert!(
        after < before + 128 * 1024,
        "the guest's memory grew from {before} to {after} bytes"
    );
    runtime.shutdown().await;
}

#[tokio::test]
async fn http_connector_refuses_bad_settings_at_registration() {
    let runtime = runtime();
    // The registration error for an `http` entry with these settings.
    let refused = async |id: &str, settings: &str| {
        runtime
            .register(entry(&format!(
                "{{id: {id}, component: http, host: 127.0.0.1, port: 8080, settings: {{{settings}}}}}"
            )))
            .await
            .expect_err("bad settings must be refused")
            .to_string()
    };
    let text = refused("web", "body_matches: '(unclosed'").await;
    assert!(
        text.contains("settings.body_matches: invalid regex") && text.contains("unclosed group"),
        "{text}"
    );
    // Unicode classes are not in the documented syntax: refused, not ignored.
    let text = refused("web3", "body_not_matches: '\\p{Greek}'").await;
    assert!(
        text.contains("settings.body_not_matches: invalid regex: Unicode not allowed"),
        "{text}"
    );
    // A pattern the host would need more than its cap to compile.
    let text = refused("web4", "body_matches: '\\w{1000}{1000}'").await;
    assert!(
        text.contains("settings.body_matches: invalid regex") && text.contains("the host allows"),
        "{text}"
    );
    let text = refused("web2", "expected_status: '2xx'").await;
    assert!(text.contains("settings.expected_status"), "{text}");
    assert!(
        runtime.list(None).is_empty(),
        "refused connectors are not registered"
    );
}

#[tokio::test]
async fn the_host_attaches_credentials_that_the_guest_never_sees() {
    let server = FakeServer::prometheus().await;
    let snap = check_once(&format!(
        "{{id: prometheus, host: 127.0.0.1, port: {}, auth: {{type: bearer, token: s3cret-token, headers: {{X-Tenant: blue}}}}}}",
        server.port()
    ))
    .await;
    assert_eq!(snap.status, HealthStatus::Healthy, "{snap:?}");
    let seen = server.seen();
    let first = &seen[0];
    assert_eq!(
        first
            .headers
            .get("authorization")
            .map(|v| v.to_str().unwrap_or("")),
        Some("Bearer s3cret-token")
    );
    assert_eq!(
        first
            .headers
            .get("x-tenant")
            .map(|v| v.to_str().unwrap_or("")),
        Some("blue")
    );
}

#[tokio::test]
async fn basic_auth_is_encoded_by_the_host() {
    let server = FakeServer::prometheus().await;
    check_once(&format!(
        "{{id: prometheus, host: 127.0.0.1, port: {}, auth: {{type: basic, username: admin, password: hunter2}}}}",
        server.port()
    ))
    .await;
    let seen = server.seen();
    assert_eq!(
        seen[0]
            .headers
            .get("authorization")
            .map(|v| v.to_str().unwrap_or("")),
        Some("Basic YWRtaW46aHVudGVyMg==")
    );
}
