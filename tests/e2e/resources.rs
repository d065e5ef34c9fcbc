//! Shared resources a guest can take from the others: TCP sockets (each a
//! file descriptor of the process) are capped per instance by
//! `sandbox.max_sockets` and node-wide by the runtime's guest budget;
//! the patterns the host compiles for a guest count against its memory limit.

use std::sync::{Arc, Mutex};

use sandport_core::HealthStatus;
use sandport_tests::{FakeServer, HOSTILE_WASM, detail, entry};

/// A TCP server on loopback that accepts every connection and keeps it
/// open, as a database would.
async fn holding_server() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let kept = Arc::new(Mutex::new(Vec::new()));
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            kept.lock().expect("kept").push(stream);
        }
    });
    port
}

/// A `hold-sockets` guest whose own endpoint (and so TCP target) is
/// `127.0.0.1:port`.
fn hoarder(id: &str, port: u16, settings: &str, sandbox: &str) -> sandport_config::ConnectorConfig {
    entry(&format!(
        "{{id: {id}, component: '{HOSTILE_WASM}', host: 127.0.0.1, port: {port}, settings: {{mode: hold-sockets, tcp_host: 127.0.0.1, tcp_port: {port}{settings}}}, health_check: {{timeout: 20s}}{sandbox}}}"
    ))
}

fn runtime_with_sockets(budget: Option<usize>) -> sandport_core::Runtime {
    sandport_core::Runtime::new(sandport_core::RuntimeOptions {
        schedule: false,
        cache_dir: None,
        guest_sockets: budget,
        ..Default::default()
    })
    .expect("runtime starts")
}

async fn held(runtime: &sandport_core::Runtime, id: &str) -> (usize, String) {
    let snap = runtime.check(id).await.expect("known");
    assert_eq!(snap.status, HealthStatus::Healthy, "{snap:?}");
    let held = detail(&snap, "held")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count: {snap:?}"));
    let error = detail(&snap, "error").unwrap_or_default().to_string();
    (held, error)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_holds_no_more_sockets_than_max_sockets_while_others_stay_healthy() {
    let target = holding_server().await;
    let prometheus = FakeServer::prometheus().await;
    let runtime = runtime_with_sockets(None);
    runtime
        .register(hoarder("hoarder", target, "", ""))
        .await
        .expect("registers");
    runtime
        .register(entry(&format!(
            "{{id: good, component: prometheus, host: 127.0.0.1, port: {}}}",
            prometheus.port()
        )))
        .await
        .expect("registers");

    // The default cap: 16, refused as an error the guest handles.
    let (count, error) = held(&runtime, "hoarder").await;
    assert_eq!(count, 16, "{error}");
    assert_ne!(error, "none");
    assert_eq!(runtime.guest_sockets().1, 16);
    // It keeps them across checks, and gets no more.
    let (count, _) = held(&runtime, "hoarder").await;
    assert_eq!(count, 16);

    // While it holds them, the others are checked and the runtime answers.
    let good = runtime.check("good").await.expect("known");
    assert_eq!(good.status, HealthStatus::Healthy, "{good:?}");
    assert_eq!(runtime.list(None).len(), 2);

    // A lower cap of the entry's own.
    runtime
        .register(hoarder("modest", target, "", ", sandbox: {max_sockets: 3}"))
        .await
        .expect("registers");
    assert_eq!(held(&runtime, "modest").await.0, 3);
    assert_eq!(runtime.guest_sockets().1, 19);

    // An instance that goes gives its sockets back.
    runtime.remove("hoarder").await.expect("known");
    runtime.remove("modest").await.expect("known");
    assert_eq!(runtime.guest_sockets().1, 0);
}

#[tokio::test]
async fn the_node_budget_caps_all_guests_together_and_dropped_sockets_free_it() {
    let target = holding_server().await;
    let runtime = runtime_with_sockets(Some(20));
    assert_eq!(runtime.guest_sockets(), (20, 0));
    runtime
        .register(hoarder("first", target, "", ""))
        .await
        .expect("registers");
    runtime
        .register(hoarder("second", target, ", release: 'true'", ""))
        .await
        .expect("registers");
    assert_eq!(held(&runtime, "first").await.0, 16);
    // The second gets what is left of the node's 20; once it lets them go,
    // the places are free again.
    let snap = runtime.check("second").await.expect("known");
    assert_eq!(detail(&snap, "held"), Some("4"), "{snap:?}");
    assert_eq!(detail(&snap, "again"), Some("connected"), "{snap:?}");
    assert_eq!(runtime.guest_sockets().1, 16);

    // When the first goes, the second can take its own full cap.
    runtime.remove("first").await.expect("known");
    assert_eq!(runtime.guest_sockets().1, 0);
    let snap = runtime.check("second").await.expect("known");
    assert_eq!(detail(&snap, "held"), Some("16"), "{snap:?}");
}

#[tokio::test]
async fn patterns_the_host_compiles_for_a_guest_count_against_its_memory_limit() {
    let server = FakeServer::start(&[(
        "/status",
        sandport_tests::Reply::ok("All systems OPERATIONAL"),
    )])
    .await;
    let runtime = sandport_tests::runtime();
    runtime
        .register(entry(&format!(
            "{{id: patterns, component: '{HOSTILE_WASM}', host: 127.0.0.1, port: {}, settings: {{mode: hold-patterns, url: '{}'}}, sandbox: {{memory_limit: 4MiB}}, health_check: {{timeout: 20s}}}}",
            server.port(),
            server.url("/status")
        )))
        .await
        .expect("registers");
    let snap = runtime.check("patterns").await.expect("known");
    assert_eq!(snap.status, HealthStatus::Healthy, "{snap:?}");
    let found =
        |key: &str| detail(&snap, key).unwrap_or_else(|| panic!("no detail {key}: {snap:?}"));
    // Each counts its program and a 128 KiB cache: 4 MiB, less the guest's
    // own memory, holds a few dozen at most.
    let held: usize = found("held").parse().expect("a count");
    assert!((5..32).contains(&held), "{snap:?}");
    assert!(found("error").contains("sandbox.memory_limit"), "{snap:?}");
    // Letting them go gave the room back, and the one compiled then works.
    assert_eq!(found("again"), "Ok(true)", "{snap:?}");
    runtime.shutdown().await;
}
