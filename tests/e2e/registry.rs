//! The registry: scheduling, disabled connectors, removal, duplicates.

use std::time::Duration;

use sandport_config::ConnectorType;
use sandport_core::HealthStatus;
use sandport_tests::{FakeServer, entry};

#[tokio::test]
async fn the_scheduler_checks_on_the_interval_and_caches_the_result() {
    let server = FakeServer::prometheus().await;
    let runtime =
        sandport_core::Runtime::new(sandport_core::RuntimeOptions::default()).expect("runtime");
    runtime
        .register(entry(&format!(
            "{{id: prometheus, host: 127.0.0.1, port: {}, health_check: {{interval: 1s, timeout: 1s}}}}",
            server.port()
        )))
        .await
        .expect("registers");
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let hits = server.hits("/-/healthy");
    assert!(
        (2..=5).contains(&hits),
        "expected about 3 checks in 3.5s, saw {hits}"
    );
    let (info, _) = runtime.get("prometheus").expect("registered");
    assert_eq!(info.health.status, HealthStatus::Healthy);
    assert!(info.health.checked_at.is_some());

    runtime.remove("prometheus").await.expect("removed");
    let after_removal = server.hits("/-/healthy");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        server.hits("/-/healthy"),
        after_removal,
        "no checks after removal"
    );
    assert!(
        runtime.remove("prometheus").await.is_err(),
        "second removal is NotFound"
    );
}

#[tokio::test]
async fn a_disabled_connector_is_unavailable_and_never_called() {
    let server = FakeServer::prometheus().await;
    let runtime =
        sandport_core::Runtime::new(sandport_core::RuntimeOptions::default()).expect("runtime");
    runtime
        .register(entry(&format!(
            "{{id: prometheus, enabled: false, host: 127.0.0.1, port: {}, health_check: {{interval: 1s, timeout: 1s}}}}",
            server.port()
        )))
        .await
        .expect("registers");
    let snap = runtime.check("prometheus").await.expect("known");
    assert_eq!(snap.status, HealthStatus::Unavailable);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(
        server.seen().is_empty(),
        "a disabled connector is never called"
    );
}

#[tokio::test]
async fn info_comes_from_the_guest_and_the_config() {
    let runtime = sandport_tests::runtime();
    let info = runtime
        .register(entry(
            "{id: prom-eu, component: prometheus, name: Prometheus EU, host: 10.1.2.3, port: 9090, tags: [eu], metadata: {region: eu-west}}",
        ))
        .await
        .expect("registers");
    assert_eq!(info.name, "Prometheus EU");
    assert_eq!(info.connector_type, ConnectorType::Observability);
    assert_eq!(info.endpoint, "http://10.1.2.3:9090");
    assert_eq!(info.tags, vec!["eu".to_string()]);
    assert_eq!(
        info.metadata.get("region").map(String::as_str),
        Some("eu-west")
    );
    assert_eq!(info.component_digest.len(), 64);
    assert_eq!(info.health.status, HealthStatus::Unknown);
}

#[tokio::test]
async fn duplicate_ids_are_refused_and_the_first_stays() {
    let runtime = sandport_tests::runtime();
    let config = entry("{id: jaeger, host: 127.0.0.1}");
    let (a, b) = tokio::join!(runtime.register(config.clone()), runtime.register(config));
    assert!(a.is_ok() != b.is_ok(), "exactly one registration wins");
    assert_eq!(runtime.list(None).len(), 1);
    assert!(
        runtime
            .register(entry("{id: jaeger, host: 127.0.0.1}"))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn list_filters_by_type() {
    let runtime = sandport_tests::runtime();
    runtime
        .register(entry("{id: jaeger, host: 127.0.0.1}"))
        .await
        .expect("registers");
    runtime
        .register(entry(
            "{id: web, component: http, host: 127.0.0.1, port: 8080}",
        ))
        .await
        .expect("registers");
    let ids = |t| {
        runtime
            .list(Some(t))
            .into_iter()
            .map(|i| i.id)
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(ConnectorType::Observability), vec!["jaeger"]);
    assert_eq!(ids(ConnectorType::Custom), vec!["web"]);
    assert!(ids(ConnectorType::Database).is_empty());
}

#[tokio::test]
async fn a_missing_component_file_is_refused_with_its_path() {
    let runtime = sandport_tests::runtime();
    let err = runtime
        .register(entry(
            "{id: ghost, component: ./nowhere/ghost.wasm, host: 127.0.0.1, port: 80}",
        ))
        .await
        .expect_err("missing file");
    let text = err.to_string();
    assert!(
        text.contains("ghost.wasm") && text.contains("cannot read"),
        "{text}"
    );
}

#[tokio::test]
async fn a_file_that_is_not_a_component_is_refused() {
    let dir = std::env::temp_dir().join(format!("sandport-e2e-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("junk.wasm");
    std::fs::write(&path, b"\0asm but not really").expect("write");
    let runtime = sandport_tests::runtime();
    let err = runtime
        .register(entry(&format!(
            "{{id: junk, component: '{}', host: 127.0.0.1, port: 80}}",
            path.display()
        )))
        .await
        .expect_err("junk");
    assert!(
        err.to_string()
            .contains("is not a WebAssembly component (unknown WebAssembly version or layer)"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_connectors_of_one_component_compile_once_and_check_concurrently() {
    let server = FakeServer::prometheus().await;
    let mut yaml = String::from("connectors:\n");
    for i in 0..300 {
        yaml.push_str(&format!(
            "  - {{id: p{i}, component: prometheus, host: 127.0.0.1, port: {}}}\n  - {{id: h{i}, component: '{}', host: 127.0.0.1, port: {}}}\n",
            server.port(),
            sandport_tests::HOSTILE_WASM,
            server.port()
        ));
    }
    let loaded = sandport_tests::config(&yaml);
    assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
    let runtime = sandport_tests::runtime();
    let problems = runtime.load(loaded).await;
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(runtime.list(None).len(), 600);
    assert_eq!(
        runtime.compiled_components(),
        2,
        "one compilation per distinct component"
    );
    let results = runtime.check_all(None).await;
    assert_eq!(results.len(), 600);
    let unhealthy: Vec<_> = results
        .iter()
        .filter(|(_, h)| h.status != HealthStatus::Healthy)
        .collect();
    assert!(
        unhealthy.is_empty(),
        "{:?}",
        &unhealthy[..unhealthy.len().min(3)]
    );
    assert_eq!(server.hits("/-/healthy"), 300);
    runtime.shutdown().await;
    assert!(runtime.list(None).is_empty());
}

#[tokio::test]
async fn a_component_importing_what_the_sandbox_does_not_offer_is_refused_with_the_list() {
    let component = wat::parse_str(
        r#"(component
            (import "evil:net/raw-socket@1.0.0" (instance))
            (import "wasi:cli/environment@0.2.0" (instance))
            (import "acme:spy/keylogger" (instance))
        )"#,
    )
    .expect("valid component text");
    let dir = std::env::temp_dir().join(format!("sandport-imports-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("spy.wasm");
    std::fs::write(&path, component).expect("write");
    let runtime = sandport_tests::runtime();
    let err = runtime
        .register(entry(&format!(
            "{{id: spy, component: '{}', host: 127.0.0.1, port: 80}}",
            path.display()
        )))
        .await
        .expect_err("refused");
    let text = err.to_string();
    assert!(
        text.contains("evil:net/raw-socket@1.0.0") && text.contains("acme:spy/keylogger"),
        "{text}"
    );
    assert!(
        !text.contains("wasi:cli/environment"),
        "allowed imports are not listed: {text}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A component built for another version of the contract is refused at
/// registration, saying what it was built for and what to rebuild with.
#[tokio::test]
async fn a_component_built_for_another_contract_version_is_refused_with_how_to_rebuild() {
    let dir = std::env::temp_dir().join(format!("sandport-contract-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let runtime = sandport_tests::runtime();
    for (id, version) in [("older", "0.1.0"), ("next", "0.2.2"), ("newer", "0.3.0")] {
        let component = wat::parse_str(format!(
            r#"(component
                (import "sandport:connector/logging@{version}" (instance))
                (import "wasi:cli/environment@0.2.0" (instance))
            )"#
        ))
        .expect("valid component text");
        let path = dir.join(format!("{id}.wasm"));
        std::fs::write(&path, component).expect("write");
        let err = runtime
            .register(entry(&format!(
                "{{id: {id}, component: '{}', host: 127.0.0.1, port: 80}}",
                path.display()
            )))
            .await
            .expect_err("refused");
        let text = err.to_string();
        for part in [
            format!("{id}.wasm was built for sandport:connector@{version}"),
            "this Sandport runs sandport:connector@0.2.1".to_string(),
            "rebuild it with the SDK of this release".to_string(),
        ] {
            assert!(text.contains(&part), "{part}: {text}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_component_built_for_contract_0_2_0_still_loads_and_checks() {
    // 0.2.1 only adds to 0.2.0: a component built before it runs as it did.
    let server = FakeServer::start(&[("/up", sandport_tests::Reply::ok("fine"))]).await;
    let runtime = sandport_tests::runtime();
    runtime
        .register(entry(&format!(
            "{{id: old, component: '{}', host: 127.0.0.1, port: {}, health_check: {{path: /up}}}}",
            env!("SANDPORT_CONTRACT_0_2_0_WASM"),
            server.port()
        )))
        .await
        .expect("a 0.2.0 component registers");
    let snap = runtime.check("old").await.expect("known id");
    assert_eq!(snap.status, HealthStatus::Healthy, "{snap:?}");
    assert!(
        snap.message.ends_with("/up returned 200"),
        "{}",
        snap.message
    );
    assert_eq!(server.hits("/up"), 1);
    runtime.shutdown().await;
}

#[tokio::test]
async fn a_component_sha256_pin_is_enforced() {
    use sha2::Digest;
    let bytes = std::fs::read(sandport_tests::HOSTILE_WASM).expect("guest built");
    let digest: String = sha2::Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let runtime = sandport_tests::runtime();
    let yaml = |id: &str, sha: &str| {
        format!(
            "{{id: {id}, component: '{}', component_sha256: '{sha}', host: 127.0.0.1, port: 80}}",
            sandport_tests::HOSTILE_WASM
        )
    };
    runtime
        .register(entry(&yaml("pinned", &digest)))
        .await
        .expect("the right digest loads");
    let wrong = "0".repeat(64);
    let err = runtime
        .register(entry(&yaml("tampered", &wrong)))
        .await
        .expect_err("refused");
    let text = err.to_string();
    assert!(text.contains(&digest) && text.contains(&wrong), "{text}");
    assert!(runtime.get("tampered").is_err());
}

#[tokio::test]
async fn registrations_past_the_node_budget_are_refused_with_the_figures() {
    let runtime = sandport_core::Runtime::new(sandport_core::RuntimeOptions {
        schedule: false,
        max_instances: 3,
        memory_budget: Some(100 << 20),
        ..Default::default()
    })
    .expect("runtime");
    let yaml = |id: &str, memory: &str, enabled: bool| {
        format!(
            "{{id: {id}, component: http, port: 80, enabled: {enabled}, sandbox: {{memory_limit: {memory}}}}}"
        )
    };
    runtime
        .register(entry(&yaml("a", "32MiB", true)))
        .await
        .expect("fits");
    runtime
        .register(entry(&yaml("b", "32MiB", true)))
        .await
        .expect("fits");
    let err = runtime
        .register(entry(&yaml("c", "64MiB", true)))
        .await
        .expect_err("too big");
    let text = err.to_string();
    assert!(
        matches!(err, sandport_core::RegisterError::ResourceExhausted { .. }),
        "{text}"
    );
    assert!(
        text.contains("64 MiB") && text.contains("100 MiB"),
        "{text}"
    );
    assert_eq!(err.key(), "sandbox.memory_limit");
    runtime
        .register(entry(&yaml("d", "16MiB", true)))
        .await
        .expect("fits");
    let err = runtime
        .register(entry(&yaml("e", "1MiB", true)))
        .await
        .expect_err("no instances left");
    assert!(err.to_string().contains("3 of at most 3"), "{err}");
    // No key of the entry would make it fit.
    assert_eq!(err.key(), "");
    runtime
        .register(entry(&yaml("off", "64MiB", false)))
        .await
        .expect("a disabled connector runs no instance");
    assert_eq!(runtime.list(None).len(), 4);
}

#[tokio::test]
async fn the_memory_budget_counts_what_the_host_holds_beside_each_limit() {
    // Two limits of 32 MiB fill a 64 MiB budget on their own; with what
    // the host holds for each connector (64 KiB) the second does not fit.
    let runtime = sandport_core::Runtime::new(sandport_core::RuntimeOptions {
        schedule: false,
        memory_budget: Some(64 << 20),
        ..Default::default()
    })
    .expect("runtime");
    let yaml = |id: &str, memory: &str| {
        format!("{{id: {id}, component: http, port: 80, sandbox: {{memory_limit: {memory}}}}}")
    };
    runtime
        .register(entry(&yaml("a", "32MiB")))
        .await
        .expect("fits");
    let err = runtime
        .register(entry(&yaml("b", "32MiB")))
        .await
        .expect_err("the host's share does not fit");
    let text = err.to_string();
    assert!(text.contains("64 KiB the host holds"), "{text}");
    assert_eq!(err.key(), "sandbox.memory_limit");
    runtime
        .register(entry(&yaml("b", "31MiB")))
        .await
        .expect("fits beside the host's share");
}

#[tokio::test]
async fn a_second_start_loads_the_compiled_component_from_the_cache_and_survives_damage() {
    let dir = std::env::temp_dir().join(format!("sandport-cache-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let options = sandport_core::RuntimeOptions {
        schedule: false,
        cache_dir: Some(dir.clone()),
        ..Default::default()
    };
    let server = FakeServer::prometheus().await;
    let config = entry(&format!(
        "{{id: cached, component: '{}', host: 127.0.0.1, port: {}}}",
        sandport_tests::HOSTILE_WASM,
        server.port()
    ));
    let start = |expect_hits: usize| {
        let options = options.clone();
        let config = config.clone();
        async move {
            let runtime = sandport_core::Runtime::new(options).expect("runtime");
            runtime.register(config).await.expect("registers");
            assert_eq!(runtime.cache_hits(), expect_hits);
            let snap = runtime.check("cached").await.expect("known");
            assert_eq!(snap.status, HealthStatus::Healthy, "{snap:?}");
            runtime.shutdown().await;
        }
    };
    start(0).await;
    start(1).await;
    // Damage every cached file: the next start recompiles and still works.
    for file in std::fs::read_dir(&dir).expect("cache dir") {
        let path = file.expect("entry").path();
        let mut bytes = std::fs::read(&path).expect("read");
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0xff;
        std::fs::write(&path, bytes).expect("write");
    }
    start(0).await;
    start(1).await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// Memory mappings of this process (Linux), the resource that ran out first
/// at about 9,400 instances with wasmtime's default memory layout.
fn mappings() -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .map(|m| m.lines().count())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_instance_costs_few_memory_mappings() {
    let runtime = sandport_tests::runtime();
    runtime
        .register(entry(
            "{id: warm, component: prometheus, host: 127.0.0.1, port: 9}",
        ))
        .await
        .expect("registers");
    let before = mappings();
    let mut yaml = String::from("connectors:\n");
    for i in 0..500 {
        yaml.push_str(&format!(
            "  - {{id: p{i}, component: prometheus, host: 127.0.0.1, port: 9}}\n"
        ));
    }
    let loaded = sandport_tests::config(&yaml);
    assert!(runtime.load(loaded).await.is_empty());
    let added = mappings() - before;
    // The kernel allows 65,530 per process by default, and the registry
    // derives its instance limit from it with this figure (the default
    // layout took 6.9 and failed at about 9,400). A few of the mappings
    // added are the process's own (a malloc arena, a thread's stack), which
    // the limit's headroom is for.
    let per_instance = sandport_core::MAPPINGS_PER_INSTANCE;
    assert!(
        added <= 500 * per_instance + 50,
        "{added} mappings for 500 instances, more than the {per_instance} each the instance limit assumes"
    );
}

#[tokio::test]
async fn a_component_file_is_read_once_per_version_and_a_replaced_file_is_read_again() {
    use sha2::Digest;
    let dir = std::env::temp_dir().join(format!("sandport-by-path-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("connector.wasm");
    let hostile = std::fs::read(sandport_tests::HOSTILE_WASM).expect("guest built");
    std::fs::write(&path, &hostile).expect("write");
    let runtime = sandport_tests::runtime();
    let yaml = |id: &str| {
        format!(
            "{{id: {id}, component: '{}', host: 127.0.0.1, port: 9}}",
            path.display()
        )
    };
    let first = runtime.register(entry(&yaml("a"))).await.expect("a");
    let again = runtime.register(entry(&yaml("b"))).await.expect("b");
    assert_eq!(first.component_digest, again.component_digest);

    // Another component at the same path: the next registration sees it.
    let http = std::path::Path::new(sandport_tests::HOSTILE_WASM)
        .with_file_name("sandport_connector_http.wasm");
    let replacement = std::fs::read(&http).expect("http connector built");
    std::fs::write(&path, &replacement).expect("replace");
    let replaced = runtime.register(entry(&yaml("c"))).await.expect("c");
    let digest = format!("{:x}", sha2::Sha256::digest(&replacement));
    assert_eq!(replaced.component_digest, digest);
    assert_eq!(replaced.description, "Generic HTTP endpoint check");
    let _ = std::fs::remove_dir_all(&dir);
}
