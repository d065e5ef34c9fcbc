//! The built-in TCP connectors (redis, postgresql, mysql, nats, mqtt,
//! rabbitmq, tcp), registered by their built-in names, against real servers
//! (`sandport_tests::servers`) and, for answers a healthy test server never
//! gives (too many connections, starting up, a foreign protocol), against
//! small TCP servers in the test that send the exact bytes.

use std::time::Duration;

use sandport_core::{HealthSnapshot, HealthStatus, Runtime};
use sandport_tests::servers::{Kind, Options, RealServer};
use sandport_tests::{HOSTILE_WASM, closed_port, closed_port_on, detail, entry, runtime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// One runtime with the given entries registered.
async fn registered(entries: &[String]) -> Runtime {
    let runtime = runtime();
    for yaml in entries {
        runtime.register(entry(yaml)).await.expect("registers");
    }
    runtime
}

async fn check(runtime: &Runtime, id: &str) -> HealthSnapshot {
    runtime.check(id).await.expect("known id")
}

#[track_caller]
fn assert_healthy(snap: &HealthSnapshot) {
    assert_eq!(snap.status, HealthStatus::Healthy, "{snap:?}");
}

#[track_caller]
fn assert_unhealthy_with(snap: &HealthSnapshot, parts: &[&str]) {
    assert_eq!(snap.status, HealthStatus::Unhealthy, "{snap:?}");
    for part in parts {
        assert!(
            snap.message.contains(part),
            "message lacks {part:?}: {}",
            snap.message
        );
    }
    assert_eq!(
        snap.failure, None,
        "the connector reported it, not the sandbox"
    );
}

async fn start(kind: Kind, options: Options) -> RealServer {
    tokio::task::spawn_blocking(move || RealServer::start_with(kind, options))
        .await
        .expect("the server starts")
}

async fn stop(mut server: RealServer) -> u16 {
    let port = server.port();
    tokio::task::spawn_blocking(move || {
        server.stop();
        port
    })
    .await
    .expect("the server stops")
}

fn password(password: &str) -> Options {
    Options {
        password: Some(password.into()),
        user: None,
    }
}

// ---------------------------------------------------------------- redis

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_is_healthy_with_its_version_and_unhealthy_once_stopped() {
    let server = start(Kind::Redis, Options::default()).await;
    let port = server.port();
    let runtime = registered(&[format!(
        "{{id: cache, component: redis, host: 127.0.0.1, port: {port}}}"
    )])
    .await;
    let snap = check(&runtime, "cache").await;
    assert_healthy(&snap);
    assert!(snap.message.starts_with("PING answered PONG"), "{snap:?}");
    assert!(detail(&snap, "redis_version").is_some(), "{snap:?}");
    assert_eq!(detail(&snap, "redis_mode"), Some("standalone"));

    stop(server).await;
    let snap = check(&runtime, "cache").await;
    assert_unhealthy_with(&snap, &[]);
    assert_eq!(
        snap.message,
        format!("redis://127.0.0.1:{port}: connection refused")
    );
    runtime.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_with_a_password_needs_the_right_one_and_says_what_to_do() {
    let server = start(Kind::Redis, password("pw-r1ght")).await;
    let port = server.port();
    let base = format!("component: redis, host: 127.0.0.1, port: {port}");
    let runtime = registered(&[
        format!("{{id: right, {base}, auth: {{type: bearer, token: pw-r1ght}}}}"),
        format!("{{id: right-basic, {base}, auth: {{type: basic, username: default, password: pw-r1ght}}}}"),
        format!("{{id: wrong, {base}, auth: {{type: bearer, token: nope}}}}"),
        format!("{{id: missing, {base}}}"),
    ])
    .await;
    assert_healthy(&check(&runtime, "right").await);
    assert_healthy(&check(&runtime, "right-basic").await);
    assert_unhealthy_with(
        &check(&runtime, "wrong").await,
        &["Redis refused the credentials", "WRONGPASS", "check auth"],
    );
    assert_unhealthy_with(
        &check(&runtime, "missing").await,
        &["Redis requires a password: set auth"],
    );
    runtime.shutdown().await;
    drop(server);

    // An ACL user logs in with `AUTH user password`.
    let server = start(
        Kind::Redis,
        Options {
            user: Some("alice".into()),
            password: Some("pw-al1ce".into()),
        },
    )
    .await;
    let runtime = registered(&[format!(
        "{{id: acl, component: redis, host: 127.0.0.1, port: {}, auth: {{type: basic, username: alice, password: pw-al1ce}}}}",
        server.port()
    )])
    .await;
    assert_healthy(&check(&runtime, "acl").await);
    runtime.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_that_never_answers_is_reported_by_the_connector_before_the_deadline() {
    // Accepts and never answers.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("address").port();
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let runtime = registered(&[format!(
        "{{id: mute, component: redis, host: 127.0.0.1, port: {port}, health_check: {{timeout: 1s}}}}"
    )])
    .await;
    let snap = check(&runtime, "mute").await;
    assert_unhealthy_with(&snap, &["timed out after", "waiting for the reply to PING"]);
    let latency = snap.latency.expect("latency");
    assert!(latency < Duration::from_secs(1), "took {latency:?}");
    runtime.shutdown().await;
    silent.abort();
}

// ---------------------------------------------------------------- postgresql

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgresql_with_trust_is_healthy_and_reports_the_version_and_startup_refusals() {
    let server = start(Kind::Postgres, Options::default()).await;
    let port = server.port();
    let base = format!("component: postgresql, host: 127.0.0.1, port: {port}");
    let runtime = registered(&[
        format!("{{id: pg, {base}}}"),
        format!("{{id: pg-nodb, {base}, settings: {{database: no_such_db}}}}"),
        format!("{{id: pg-norole, {base}, settings: {{user: no_such_role}}}}"),
    ])
    .await;
    let snap = check(&runtime, "pg").await;
    assert_healthy(&snap);
    assert_eq!(snap.message, "accepting connections; authentication: trust");
    assert_eq!(detail(&snap, "authentication"), Some("trust"));
    assert_eq!(detail(&snap, "ssl"), Some("not offered"));
    assert!(detail(&snap, "server_version").is_some(), "{snap:?}");

    // The health check is about the server, not a role or a database.
    let snap = check(&runtime, "pg-nodb").await;
    assert_healthy(&snap);
    assert!(snap.message.contains("no_such_db"), "{snap:?}");
    assert!(
        detail(&snap, "startup_error").is_some_and(|e| e.starts_with("3D000")),
        "{snap:?}"
    );
    let snap = check(&runtime, "pg-norole").await;
    assert_healthy(&snap);
    assert!(
        detail(&snap, "startup_error").is_some_and(|e| e.starts_with("28000")),
        "{snap:?}"
    );

    stop(server).await;
    let snap = check(&runtime, "pg").await;
    assert_unhealthy_with(&snap, &[]);
    assert_eq!(
        snap.message,
        format!("postgresql://127.0.0.1:{port}: connection refused")
    );
    runtime.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgresql_with_a_password_is_healthy_at_the_scram_request_without_logging_in() {
    let server = start(Kind::Postgres, password("pg-secret")).await;
    let runtime = registered(&[format!(
        "{{id: pg, component: postgresql, host: 127.0.0.1, port: {}}}",
        server.port()
    )])
    .await;
    for _ in 0..2 {
        let snap = check(&runtime, "pg").await;
        assert_healthy(&snap);
        assert_eq!(
            snap.message,
            "accepting connections; authentication: scram-sha-256"
        );
        assert_eq!(detail(&snap, "ssl"), Some("not offered"), "{snap:?}");
    }
    runtime.shutdown().await;
    let log = server.log();
    assert!(
        !log.contains("FATAL") && !log.contains("password authentication failed"),
        "the check left traces in the server log:\n{log}"
    );
}

/// A server that reads whatever comes for a moment, then sends `reply`,
/// and (with `reset`) closes with a TCP reset. A PostgreSQL `SSLRequest` is
/// answered `N` first.
async fn canned_server(reply: Vec<u8>, reset: bool) -> (u16, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("address").port();
    let task = tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let reply = reply.clone();
            tokio::spawn(async move {
                let mut first = [0u8; 8];
                let read =
                    tokio::time::timeout(Duration::from_millis(200), socket.read_exact(&mut first))
                        .await;
                if matches!(read, Ok(Ok(_))) && first == [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f] {
                    let _ = socket.write_all(b"N").await;
                    let mut rest = [0u8; 512];
                    let _ =
                        tokio::time::timeout(Duration::from_millis(200), socket.read(&mut rest))
                            .await;
                }
                let _ = socket.write_all(&reply).await;
                let _ = socket.flush().await;
                tokio::time::sleep(Duration::from_millis(50)).await;
                if reset {
                    let _ = socket.set_zero_linger();
                }
            });
        }
    });
    (port, task)
}

/// A PostgreSQL `ErrorResponse`.
fn pg_error(code: &str, message: &str) -> Vec<u8> {
    let mut body = Vec::new();
    for (field, value) in [(b'S', "FATAL"), (b'C', code), (b'M', message)] {
        body.push(field);
        body.extend_from_slice(value.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut out = vec![b'E'];
    out.extend_from_slice(&u32::try_from(body.len() + 4).unwrap().to_be_bytes());
    out.extend_from_slice(&body);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgresql_out_of_slots_is_degraded_and_starting_up_is_unhealthy() {
    let (full, full_task) =
        canned_server(pg_error("53300", "sorry, too many clients already"), false).await;
    let (starting, starting_task) = canned_server(
        pg_error("57P03", "the database system is starting up"),
        false,
    )
    .await;
    let runtime = registered(&[
        format!("{{id: full, component: postgresql, host: 127.0.0.1, port: {full}}}"),
        format!("{{id: starting, component: postgresql, host: 127.0.0.1, port: {starting}}}"),
    ])
    .await;
    let snap = check(&runtime, "full").await;
    assert_eq!(snap.status, HealthStatus::Degraded, "{snap:?}");
    assert!(
        snap.message.contains("no free connection slot")
            && snap.message.contains("too many clients already (53300)"),
        "{}",
        snap.message
    );
    assert_unhealthy_with(
        &check(&runtime, "starting").await,
        &[
            "PostgreSQL is not accepting connections yet",
            "starting up (57P03)",
        ],
    );
    runtime.shutdown().await;
    full_task.abort();
    starting_task.abort();
}

// ---------------------------------------------------------------- mysql

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_greeting_and_login_against_mariadb_and_unhealthy_once_stopped() {
    let server = start(
        Kind::MariaDb,
        Options {
            user: Some("sandport".into()),
            password: Some("my-secret".into()),
        },
    )
    .await;
    let port = server.port();
    let base = format!("component: mysql, host: 127.0.0.1, port: {port}");
    let runtime = registered(&[
        format!("{{id: greeting, {base}}}"),
        format!(
            "{{id: login, {base}, auth: {{type: basic, username: sandport, password: my-secret}}}}"
        ),
        format!("{{id: wrong, {base}, auth: {{type: basic, username: sandport, password: nope}}}}"),
        format!("{{id: nopass, {base}, settings: {{user: sandport}}}}"),
    ])
    .await;
    let snap = check(&runtime, "greeting").await;
    assert_healthy(&snap);
    let version = detail(&snap, "server_version").expect("server_version");
    assert!(
        version.contains("MariaDB") && !version.starts_with("5.5.5-"),
        "{version}"
    );
    assert_eq!(detail(&snap, "protocol"), Some("10"));

    let snap = check(&runtime, "login").await;
    assert_healthy(&snap);
    assert!(snap.message.ends_with("logged in as sandport"), "{snap:?}");
    assert_unhealthy_with(
        &check(&runtime, "wrong").await,
        &["MySQL refused the credentials", "Access denied", "(1045)"],
    );
    assert_unhealthy_with(&check(&runtime, "nopass").await, &["(1045)", "set auth"]);

    stop(server).await;
    let snap = check(&runtime, "greeting").await;
    assert_unhealthy_with(&snap, &[]);
    assert_eq!(
        snap.message,
        format!("mysql://127.0.0.1:{port}: connection refused")
    );
    runtime.shutdown().await;
}

/// A MySQL error packet as the first packet (before the greeting).
fn mysql_error(code: u16, message: &str) -> Vec<u8> {
    let mut payload = vec![0xff];
    payload.extend_from_slice(&code.to_le_bytes());
    payload.extend_from_slice(message.as_bytes());
    let len = u32::try_from(payload.len()).unwrap().to_le_bytes();
    let mut out = vec![len[0], len[1], len[2], 0];
    out.extend_from_slice(&payload);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_too_many_connections_is_degraded_and_a_blocked_host_unhealthy() {
    let (full, full_task) = canned_server(mysql_error(1040, "Too many connections"), false).await;
    let (blocked, blocked_task) = canned_server(
        mysql_error(
            1129,
            "Host '10.0.0.7' is blocked because of many connection errors; unblock with 'mariadb-admin flush-hosts'",
        ),
        false,
    )
    .await;
    let runtime = registered(&[
        format!("{{id: full, component: mysql, host: 127.0.0.1, port: {full}}}"),
        format!("{{id: blocked, component: mysql, host: 127.0.0.1, port: {blocked}}}"),
    ])
    .await;
    let snap = check(&runtime, "full").await;
    assert_eq!(snap.status, HealthStatus::Degraded, "{snap:?}");
    assert!(
        snap.message.contains("Too many connections (1040)"),
        "{}",
        snap.message
    );
    assert_unhealthy_with(
        &check(&runtime, "blocked").await,
        &[
            "blocked because of many connection errors",
            "(1129)",
            "FLUSH HOSTS",
        ],
    );
    runtime.shutdown().await;
    full_task.abort();
    blocked_task.abort();
}

// ---------------------------------------------------------------- nats

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_is_healthy_with_server_facts_and_unhealthy_once_stopped() {
    let server = start(Kind::Nats, Options::default()).await;
    let port = server.port();
    let runtime = registered(&[format!(
        "{{id: bus, component: nats, host: 127.0.0.1, port: {port}}}"
    )])
    .await;
    let snap = check(&runtime, "bus").await;
    assert_healthy(&snap);
    assert!(snap.message.starts_with("PING answered PONG"), "{snap:?}");
    assert!(detail(&snap, "version").is_some(), "{snap:?}");
    assert!(detail(&snap, "server_name").is_some(), "{snap:?}");
    assert_eq!(detail(&snap, "auth_required"), Some("false"));

    stop(server).await;
    let snap = check(&runtime, "bus").await;
    assert_unhealthy_with(&snap, &[]);
    assert_eq!(
        snap.message,
        format!("nats://127.0.0.1:{port}: connection refused")
    );
    runtime.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_with_a_password_needs_the_right_one_and_says_what_to_do() {
    let server = start(
        Kind::Nats,
        Options {
            user: Some("alice".into()),
            password: Some("n4ts-pw".into()),
        },
    )
    .await;
    let base = format!("component: nats, host: 127.0.0.1, port: {}", server.port());
    let runtime = registered(&[
        format!("{{id: right, {base}, auth: {{type: basic, username: alice, password: n4ts-pw}}}}"),
        format!("{{id: wrong, {base}, auth: {{type: basic, username: alice, password: nope}}}}"),
        format!("{{id: missing, {base}}}"),
    ])
    .await;
    let snap = check(&runtime, "right").await;
    assert_healthy(&snap);
    assert_eq!(detail(&snap, "auth_required"), Some("true"));
    assert_unhealthy_with(
        &check(&runtime, "wrong").await,
        &["NATS refused the credentials", "Authorization Violation"],
    );
    assert_unhealthy_with(
        &check(&runtime, "missing").await,
        &["NATS requires authentication", "set auth"],
    );
    runtime.shutdown().await;
}

// ---------------------------------------------------------------- mqtt

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_anonymous_is_healthy_and_unhealthy_once_stopped() {
    let server = start(Kind::Mosquitto, Options::default()).await;
    let port = server.port();
    let runtime = registered(&[
        format!("{{id: broker, component: mqtt, host: 127.0.0.1, port: {port}}}"),
        format!("{{id: broker-2, component: mqtt, host: 127.0.0.1, port: {port}}}"),
    ])
    .await;
    let (a, b) = tokio::join!(check(&runtime, "broker"), check(&runtime, "broker-2"));
    assert_healthy(&a);
    assert_healthy(&b);
    assert!(a.message.starts_with("CONNACK accepted"), "{a:?}");
    let id = detail(&a, "client_id").expect("client_id");
    assert!(id.starts_with("sandport-broker-"), "{id}");
    assert_ne!(detail(&b, "client_id"), Some(id), "client ids are unique");

    stop(server).await;
    let snap = check(&runtime, "broker").await;
    assert_unhealthy_with(&snap, &[]);
    assert_eq!(
        snap.message,
        format!("mqtt://127.0.0.1:{port}: connection refused")
    );
    runtime.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_with_a_password_needs_the_right_one_and_says_what_to_do() {
    let server = start(
        Kind::Mosquitto,
        Options {
            user: Some("alice".into()),
            password: Some("mq-pw".into()),
        },
    )
    .await;
    let base = format!("component: mqtt, host: 127.0.0.1, port: {}", server.port());
    let runtime = registered(&[
        format!("{{id: right, {base}, auth: {{type: basic, username: alice, password: mq-pw}}}}"),
        format!("{{id: wrong, {base}, auth: {{type: basic, username: alice, password: nope}}}}"),
        format!("{{id: missing, {base}}}"),
    ])
    .await;
    assert_healthy(&check(&runtime, "right").await);
    assert_unhealthy_with(
        &check(&runtime, "wrong").await,
        &["refused the connection", "check auth"],
    );
    assert_unhealthy_with(
        &check(&runtime, "missing").await,
        &["wants credentials; set auth"],
    );
    runtime.shutdown().await;
}

// ---------------------------------------------------------------- rabbitmq

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_handshake_login_vhost_and_unhealthy_once_stopped() {
    let server = start(Kind::RabbitMq, Options::default()).await;
    let port = server.port();
    let base = format!("component: rabbitmq, host: 127.0.0.1, port: {port}");
    let runtime = registered(&[
        format!("{{id: handshake, {base}}}"),
        format!("{{id: login, {base}, auth: {{type: basic, username: guest, password: guest}}}}"),
        format!("{{id: wrong, {base}, auth: {{type: basic, username: guest, password: nope}}}}"),
        format!("{{id: vhost, {base}, auth: {{type: basic, username: guest, password: guest}}, settings: {{vhost: no-such-vhost}}}}"),
    ])
    .await;
    let snap = check(&runtime, "handshake").await;
    assert_healthy(&snap);
    assert_eq!(detail(&snap, "product"), Some("RabbitMQ"));
    assert!(detail(&snap, "version").is_some(), "{snap:?}");
    assert_eq!(detail(&snap, "amqp"), Some("0-9"));

    let snap = check(&runtime, "login").await;
    assert_healthy(&snap);
    assert!(snap.message.contains("accepted the login"), "{snap:?}");
    assert_unhealthy_with(
        &check(&runtime, "wrong").await,
        &["RabbitMQ refused the credentials", "ACCESS_REFUSED"],
    );
    assert_unhealthy_with(
        &check(&runtime, "vhost").await,
        &["no-such-vhost", "NOT_ALLOWED"],
    );

    stop(server).await;
    let snap = check(&runtime, "handshake").await;
    assert_unhealthy_with(&snap, &[]);
    assert_eq!(
        snap.message,
        format!("amqp://127.0.0.1:{port}: connection refused")
    );
    runtime.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_pointed_at_an_amqp_1_0_broker_says_so_even_when_it_resets() {
    let (port, task) = canned_server(b"AMQP\x00\x01\x00\x00".to_vec(), true).await;
    let runtime = registered(&[format!(
        "{{id: amqp1, component: rabbitmq, host: 127.0.0.1, port: {port}}}"
    )])
    .await;
    assert_unhealthy_with(
        &check(&runtime, "amqp1").await,
        &["does not speak AMQP 0-9-1", "AMQP 1-0-0"],
    );
    runtime.shutdown().await;
    task.abort();
}

// ---------------------------------------------------------------- tcp

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_connects_sends_and_expects() {
    // Greets with a banner, then echoes one read back.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("address").port();
    let server = tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let _ = socket.write_all(b"HELLO test-server 1.0\r\n").await;
                let mut buf = [0u8; 256];
                if let Ok(Ok(n)) =
                    tokio::time::timeout(Duration::from_secs(3), socket.read(&mut buf)).await
                {
                    let _ = socket.write_all(&buf[..n]).await;
                }
                tokio::time::sleep(Duration::from_secs(3)).await;
            });
        }
    });
    let base = format!("component: tcp, host: 127.0.0.1, port: {port}");
    let runtime = registered(&[
        format!("{{id: plain, {base}}}"),
        format!("{{id: banner, {base}, settings: {{expect: 'HELLO test-server'}}}}"),
        format!("{{id: echo, {base}, settings: {{send: 'PING\\r\\n', expect: '\\r\\nPING\\r\\n'}}}}"),
        format!("{{id: hex, {base}, settings: {{send_hex: '50 49 4e 47 0d 0a', expect_hex: '50494e47'}}}}"),
        format!("{{id: wrong, {base}, settings: {{expect: 'SSH-2.0', read_bytes: 16}}}}"),
        format!("{{id: slow, {base}, settings: {{expect: 'never sent'}}, health_check: {{timeout: 1s}}}}"),
        format!("{{id: closed, component: tcp, host: 127.0.0.1, port: {}}}", closed_port()),
    ])
    .await;
    let snap = check(&runtime, "plain").await;
    assert_healthy(&snap);
    assert!(snap.message.starts_with("connected in "), "{snap:?}");
    assert!(detail(&snap, "connect_ms").is_some());

    let snap = check(&runtime, "banner").await;
    assert_healthy(&snap);
    assert!(
        snap.message
            .ends_with("the answer contains \"HELLO test-server\""),
        "{snap:?}"
    );
    assert_healthy(&check(&runtime, "echo").await);
    assert_healthy(&check(&runtime, "hex").await);

    let snap = check(&runtime, "wrong").await;
    assert_unhealthy_with(&snap, &[]);
    assert_eq!(
        snap.message,
        format!(
            "tcp://127.0.0.1:{port}: expected \"SSH-2.0\" in the first 16 bytes, got \"HELLO test-serve\""
        )
    );

    let snap = check(&runtime, "slow").await;
    assert_unhealthy_with(
        &snap,
        &["expected \"never sent\", got \"HELLO test-server 1.0\\r\\n\" and nothing more within"],
    );
    let latency = snap.latency.expect("latency");
    assert!(latency < Duration::from_secs(1), "took {latency:?}");

    let snap = check(&runtime, "closed").await;
    assert_unhealthy_with(&snap, &["connection refused"]);
    runtime.shutdown().await;
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_reaches_an_ipv6_loopback_server_and_reports_refusals_there() {
    let Ok(listener) = TcpListener::bind("[::1]:0").await else {
        eprintln!("skipped: this machine has no IPv6 loopback");
        return;
    };
    let port = listener.local_addr().expect("address").port();
    let closed = closed_port_on(std::net::Ipv6Addr::LOCALHOST.into());
    let server = tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 256];
                if let Ok(n) = socket.read(&mut buf).await {
                    let _ = socket.write_all(&buf[..n]).await;
                }
            });
        }
    });
    let runtime = registered(&[
        format!(
            "{{id: v6, component: tcp, host: '::1', port: {port}, settings: {{send: 'PING\\r\\n', expect: 'PING'}}}}"
        ),
        format!("{{id: v6closed, component: tcp, host: '::1', port: {closed}}}"),
    ])
    .await;
    let snap = check(&runtime, "v6").await;
    assert_healthy(&snap);
    assert!(
        snap.message.ends_with("the answer contains \"PING\""),
        "{snap:?}"
    );
    let snap = check(&runtime, "v6closed").await;
    assert_unhealthy_with(&snap, &[]);
    assert_eq!(
        snap.message,
        format!("tcp://[::1]:{closed}: connection refused")
    );
    runtime.shutdown().await;
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_settings_are_checked_when_the_entry_is_registered() {
    let runtime = runtime();
    for (settings, problem) in [
        ("{send: 'a', send_hex: '61'}", "not both"),
        ("{send: 'bad \\q escape'}", "unknown escape"),
        ("{send_hex: 'zz'}", "not hex"),
        ("{read_bytes: 0}", "settings.read_bytes"),
    ] {
        let result = runtime
            .register(entry(&format!(
                "{{id: t, component: tcp, host: 127.0.0.1, port: 1, settings: {settings}}}"
            )))
            .await;
        let error = format!("{:?}", result.expect_err(settings));
        assert!(error.contains(problem), "{settings}: {error}");
    }
    runtime.shutdown().await;
}

// ---------------------------------------------------------------- credentials

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_component_given_by_path_gets_the_credentials_only_when_shared() {
    // The same redis component, loaded from its file instead of by name: as
    // a stranger's component it sees no credentials unless the operator
    // shares them.
    let wasm = std::path::Path::new(HOSTILE_WASM).with_file_name("sandport_connector_redis.wasm");
    assert!(
        wasm.exists(),
        "{} is built beside the test guests",
        wasm.display()
    );
    let server = start(Kind::Redis, password("sh4red")).await;
    let base = format!(
        "component: '{}', host: 127.0.0.1, port: {}",
        wasm.display(),
        server.port()
    );
    let runtime = registered(&[
        format!("{{id: kept, {base}, auth: {{type: bearer, token: sh4red}}}}"),
        format!("{{id: shared, {base}, auth: {{type: bearer, token: sh4red, share_with_connector: true}}}}"),
    ])
    .await;
    assert_unhealthy_with(
        &check(&runtime, "kept").await,
        &["Redis requires a password"],
    );
    assert_healthy(&check(&runtime, "shared").await);
    runtime.shutdown().await;
}
