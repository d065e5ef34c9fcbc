//! Connectors written in other languages, run like the built-ins.

use sandport_core::HealthStatus;
use sandport_tests::{FakeServer, Reply, closed_port, entry};

/// A component built by tests/build.rs, or a failure saying why it was not.
macro_rules! example {
    ($env:literal) => {{
        let path: &'static str = env!($env);
        assert!(
            !path.is_empty(),
            "{} was not built: {}",
            $env,
            env!(concat!($env, "_ERROR"))
        );
        path
    }};
}
pub(crate) use example;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_http_connector_checks_like_the_rust_one() {
    http_example_checks_like_the_rust_one(example!("SANDPORT_PYTHON_HTTP_WASM")).await;
}

/// The Python SDK keeps a request sent again in the host and leaves each
/// response there until it is let go: more checks than the host lets an
/// instance hold handles (1,024) show that neither piles up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_connector_checked_again_and_again_holds_no_more_than_one_check() {
    checked_again_and_again(example!("SANDPORT_PYTHON_HTTP_WASM")).await;
}

/// The JavaScript SDK copies each response out of the host and drops its
/// handle at once, rather than when the engine collects it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_javascript_connector_checked_again_and_again_holds_no_more_than_one_check() {
    checked_again_and_again(example!("SANDPORT_JS_HTTP_WASM")).await;
}

/// More checks of `component` than the host lets an instance hold handles;
/// every one healthy.
async fn checked_again_and_again(component: &str) {
    let server = FakeServer::start(&[("/ok", Reply::ok("all systems operational"))]).await;
    let runtime = example_runtime(component);
    runtime
        .register(entry(&format!(
            "{{id: again, component: '{component}', host: 127.0.0.1, port: {}, settings: {{path: /ok, body_contains: operational}}}}",
            server.port()
        )))
        .await
        .expect("register");
    for i in 0..1_100 {
        let snapshot = runtime.check("again").await.expect("check");
        assert_eq!(
            snapshot.status,
            HealthStatus::Healthy,
            "check {i}: {}",
            snapshot.message
        );
    }
    assert!(server.hits("/ok") >= 1_100, "{}", server.hits("/ok"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_javascript_http_connector_checks_like_the_rust_one() {
    http_example_checks_like_the_rust_one(example!("SANDPORT_JS_HTTP_WASM")).await;
}

/// A runtime without the scheduler whose compiled-component cache sits
/// beside `component`: a big component is compiled once per target
/// directory, not once per test.
fn example_runtime(component: &str) -> sandport_core::Runtime {
    sandport_core::Runtime::new(sandport_core::RuntimeOptions {
        schedule: false,
        cache_dir: std::path::Path::new(component)
            .parent()
            .map(|dir| dir.join("cache")),
        ..Default::default()
    })
    .expect("runtime")
}

async fn http_example_checks_like_the_rust_one(component: &str) {
    let server = FakeServer::start(&[
        ("/ok", Reply::ok("all systems operational")),
        ("/login", Reply::status(401, "who are you")),
    ])
    .await;
    let runtime = example_runtime(component);
    let yaml = |id: &str, port: u16, settings: &str| {
        format!(
            "{{id: {id}, component: '{}', host: 127.0.0.1, port: {port}, settings: {{{settings}}}}}",
            component
        )
    };
    let port = server.port();
    for (id, settings) in [
        ("ok", "path: /ok, body_contains: operational"),
        ("login", "path: /login, expected_status: '200-299,401'"),
        ("strict", "path: /login"),
        ("body", "path: /ok, body_not_matches: 'operational$'"),
    ] {
        runtime
            .register(entry(&yaml(id, port, settings)))
            .await
            .expect(id);
    }
    runtime
        .register(entry(&yaml("down", closed_port(), "path: /")))
        .await
        .expect("down");
    let results = runtime.check_all(None).await;
    let get = |id: &str| {
        results
            .iter()
            .find(|(i, _)| i == id)
            .map(|(_, s)| s.clone())
            .expect(id)
    };
    assert_eq!(get("ok").status, HealthStatus::Healthy, "{:?}", get("ok"));
    assert_eq!(
        get("login").status,
        HealthStatus::Healthy,
        "{:?}",
        get("login")
    );
    let strict = get("strict");
    assert_eq!(strict.status, HealthStatus::Unhealthy);
    assert_eq!(
        strict.message,
        format!("GET http://127.0.0.1:{port}/login returned 401, expected 200-299")
    );
    assert!(
        get("body")
            .message
            .contains("but the body matches /operational$/"),
        "{:?}",
        get("body")
    );
    assert!(
        get("down").message.ends_with(": connection refused"),
        "{:?}",
        get("down")
    );

    let err = runtime
        .register(entry(&yaml("bad", port, "expected_status: '2xx'")))
        .await
        .expect_err("refused");
    assert!(
        err.to_string().contains("settings.expected_status"),
        "{err}"
    );
}
