//! A misbehaving guest is contained: denied egress, deadlines, memory caps,
//! traps, and output that lands in the host's log.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sandport_core::{FailureKind, HealthStatus};
use sandport_tests::{FakeServer, HOSTILE_WASM, Reply, detail, entry, runtime};

fn hostile(id: &str, port: u16, settings: &str, extra: &str) -> sandport_config::ConnectorConfig {
    entry(&format!(
        "{{id: {id}, component: '{HOSTILE_WASM}', host: 127.0.0.1, port: {port}, settings: {{{settings}}}{extra}}}"
    ))
}

#[tokio::test]
async fn a_request_outside_the_allowlist_is_denied_naming_the_url() {
    let own = FakeServer::prometheus().await;
    let other = FakeServer::prometheus().await;
    let runtime = runtime();
    let url = other.url("/-/healthy");
    runtime
        .register(hostile(
            "nosy",
            own.port(),
            &format!("mode: fetch, url: '{url}'"),
            "",
        ))
        .await
        .expect("registers");
    let snap = runtime.check("nosy").await.expect("known");
    assert_eq!(snap.status, HealthStatus::Unhealthy);
    assert!(snap.message.contains("denied"), "{}", snap.message);
    assert!(snap.message.contains(&url), "{}", snap.message);
    assert_eq!(snap.failure, Some(FailureKind::EgressDenied));
    assert_eq!(other.seen().len(), 0, "the request never left the host");
}

#[tokio::test]
async fn cloud_metadata_and_redirects_off_the_allowlist_are_denied() {
    let own = FakeServer::start(&[(
        "/hop",
        Reply::status(302, "").header("location", "http://169.254.169.254/latest/meta-data/"),
    )])
    .await;
    let runtime = runtime();
    runtime
        .register(hostile(
            "meta",
            own.port(),
            "mode: fetch, url: 'http://169.254.169.254/latest/meta-data/'",
            "",
        ))
        .await
        .expect("registers");
    let snap = runtime.check("meta").await.expect("known");
    assert!(snap.message.contains("denied"), "{}", snap.message);

    runtime
        .register(hostile(
            "hop",
            own.port(),
            &format!("mode: fetch, url: '{}'", own.url("/hop")),
            "",
        ))
        .await
        .expect("registers");
    let snap = runtime.check("hop").await.expect("known");
    assert_eq!(snap.status, HealthStatus::Unhealthy);
    assert!(
        snap.message
            .contains("redirected to http://169.254.169.254/"),
        "{}",
        snap.message
    );
    assert!(snap.message.contains("denied"), "{}", snap.message);
}

#[tokio::test]
async fn allowed_hosts_open_exactly_the_listed_origin() {
    let own = FakeServer::prometheus().await;
    let other = FakeServer::prometheus().await;
    let runtime = runtime();
    let url = other.url("/-/healthy");
    runtime
        .register(hostile(
            "friendly",
            own.port(),
            &format!("mode: fetch, url: '{url}'"),
            &format!(
                ", sandbox: {{allowed_hosts: ['http://127.0.0.1:{}']}}",
                other.port()
            ),
        ))
        .await
        .expect("registers");
    let snap = runtime.check("friendly").await.expect("known");
    assert_eq!(snap.status, HealthStatus::Healthy, "{snap:?}");
    assert_eq!(other.hits("/-/healthy"), 1);
}

#[tokio::test]
async fn a_request_timeout_the_guest_asks_for_is_its_to_report() {
    let server =
        FakeServer::start(&[("/slow", Reply::ok("late").slow(Duration::from_secs(3)))]).await;
    let runtime = runtime();
    runtime
        .register(hostile(
            "patient",
            server.port(),
            &format!(
                "mode: fetch, url: '{}', request_timeout_ms: '200'",
                server.url("/slow")
            ),
            ", health_check: {timeout: 5s}",
        ))
        .await
        .expect("registers");
    for _ in 0..2 {
        let snap = runtime.check("patient").await.expect("known");
        assert_eq!(snap.status, HealthStatus::Unhealthy);
        // The guest's own report, not the call's deadline: it heard of the
        // timeout and said which request it was.
        assert_eq!(snap.failure, None, "{snap:?}");
        assert!(
            snap.message.contains("/slow") && snap.message.ends_with("timed out after 200ms"),
            "{}",
            snap.message
        );
        let latency = snap.latency.expect("latency recorded");
        assert!(latency < Duration::from_secs(2), "took {latency:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_that_loops_forever_is_cut_off_and_does_not_delay_others() {
    let server = FakeServer::prometheus().await;
    let runtime = runtime();
    runtime
        .register(hostile(
            "spinner",
            server.port(),
            "mode: loop",
            ", health_check: {timeout: 3s}",
        ))
        .await
        .expect("registers");
    runtime
        .register(entry(&format!(
            "{{id: prometheus, host: 127.0.0.1, port: {}, health_check: {{timeout: 5s}}}}",
            server.port()
        )))
        .await
        .expect("registers");
    let started = std::time::Instant::now();
    let results = runtime.check_all(None).await;
    let elapsed = started.elapsed();
    let spinner = &results
        .iter()
        .find(|(id, _)| id == "spinner")
        .expect("spinner")
        .1;
    let good = &results
        .iter()
        .find(|(id, _)| id == "prometheus")
        .expect("prometheus")
        .1;
    assert_eq!(spinner.status, HealthStatus::Unhealthy);
    assert_eq!(spinner.failure, Some(FailureKind::Deadline));
    assert_eq!(spinner.message, "timed out after 3s");
    assert!(
        elapsed < Duration::from_secs(5),
        "check_all took {elapsed:?}"
    );
    assert_eq!(good.status, HealthStatus::Healthy, "{good:?}");
    let good_latency = good.latency.expect("latency");
    assert!(
        good_latency < Duration::from_millis(1500),
        "the good check took {good_latency:?}"
    );

    // The trapped instance is replaced: the next check runs (and is cut off) again.
    let again = runtime.check("spinner").await.expect("known");
    assert_eq!(again.failure, Some(FailureKind::Deadline));
    assert_eq!(again.consecutive_failures, 2);
}

#[tokio::test]
async fn a_guest_that_allocates_past_its_limit_fails_cleanly() {
    let server = FakeServer::prometheus().await;
    let runtime = runtime();
    runtime
        .register(hostile(
            "hog",
            server.port(),
            "mode: alloc",
            ", sandbox: {memory_limit: 16MiB}",
        ))
        .await
        .expect("registers");
    let snap = runtime.check("hog").await.expect("known");
    assert_eq!(snap.status, HealthStatus::Unhealthy);
    assert_eq!(snap.failure, Some(FailureKind::OutOfMemory), "{snap:?}");
    assert!(snap.message.contains("16 MiB"), "{}", snap.message);
}

#[tokio::test]
async fn a_panicking_guest_is_a_trap_and_is_recreated_for_the_next_check() {
    let server = FakeServer::prometheus().await;
    let runtime = runtime();
    runtime
        .register(hostile("crashy", server.port(), "mode: panic", ""))
        .await
        .expect("registers");
    for round in 1..=2 {
        let snap = runtime.check("crashy").await.expect("known");
        assert_eq!(
            snap.failure,
            Some(FailureKind::Trap),
            "round {round}: {snap:?}"
        );
        assert!(snap.message.contains("trapped"), "{}", snap.message);
        assert_eq!(snap.consecutive_failures, round);
    }
}

#[tokio::test]
async fn a_guest_that_refuses_its_config_is_not_registered() {
    let runtime = runtime();
    let err = runtime
        .register(hostile("grumpy", 8080, "mode: fail-init", ""))
        .await
        .expect_err("refused");
    assert!(err.to_string().contains("fail-init"), "{err}");
    assert!(runtime.get("grumpy").is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_that_runs_out_of_time_is_tried_again_once_then_names_the_timeout() {
    let runtime = runtime();
    let yaml = format!(
        "connectors:\n  - {{id: stuck, component: '{HOSTILE_WASM}', host: 127.0.0.1, port: 9, settings: {{mode: init-loop}}, health_check: {{timeout: 300ms}}}}\n  - {{id: fine, component: '{HOSTILE_WASM}', host: 127.0.0.1, port: 9, health_check: {{timeout: 300ms}}}}\n"
    );
    let loaded = sandport_tests::config(&yaml);
    let started = std::time::Instant::now();
    let problems = runtime.load(loaded).await;
    let took = started.elapsed();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].key, "health_check.timeout");
    assert!(
        problems[0].message.contains("timed out after 300ms"),
        "{problems:?}"
    );
    assert!(
        problems[0]
            .message
            .ends_with("a second start, once the others had started, timed out too"),
        "{problems:?}"
    );
    // Two starts of 300 ms each.
    assert!(
        took >= std::time::Duration::from_millis(600),
        "took {took:?}"
    );
    assert!(runtime.get("stuck").is_err());
    assert!(runtime.get("fine").is_ok());
}

/// A `hold-headers` guest against a server answering `reply` at `/fat`,
/// with a 4 MiB memory limit and request and byte limits it cannot reach:
/// it holds every response until one is refused, then lets them go. What
/// any such hoard must show is asserted here: it held 10 to 127 responses,
/// the memory limit stopped it, and the instance checks fine afterwards.
/// The first check's report, for what each response held.
async fn hoard(reply: Reply) -> sandport_core::HealthSnapshot {
    let server = FakeServer::start(&[("/fat", reply)]).await;
    let runtime = runtime();
    runtime
        .register(hostile(
            "hoarder",
            server.port(),
            &format!("mode: hold-headers, url: '{}'", server.url("/fat")),
            ", sandbox: {memory_limit: 4MiB, max_requests_per_call: 1000, max_bytes_per_call: 100MiB}, health_check: {timeout: 20s}",
        ))
        .await
        .expect("registers");
    let snap = runtime.check("hoarder").await.expect("known");
    let found =
        |key: &str| detail(&snap, key).unwrap_or_else(|| panic!("no detail {key}: {snap:?}"));
    // 4 MiB holds the guest's own memory and fewer than 128 such
    // responses; the request and byte limits are not what stopped it.
    let held: usize = found("held").parse().expect("a count");
    assert!((10..128).contains(&held), "{snap:?}");
    assert_eq!(found("kind"), "TooLarge", "{snap:?}");
    assert!(found("error").contains("sandbox.memory_limit"), "{snap:?}");
    assert_eq!(server.hits("/fat"), held + 2);
    // And the instance is no worse for it.
    let again = runtime.check("hoarder").await.expect("known");
    assert_eq!(again.status, HealthStatus::Healthy, "{again:?}");
    snap
}

#[tokio::test]
async fn response_headers_held_for_a_guest_count_against_its_memory_limit_until_dropped() {
    let fat = "f".repeat(32 * 1024);
    let snap = hoard(Reply::ok("").header("X-Fat", &fat)).await;
    let found =
        |key: &str| detail(&snap, key).unwrap_or_else(|| panic!("no detail {key}: {snap:?}"));
    // Asked for by any case; listed in lower case.
    assert_eq!(found("fat"), fat.len().to_string(), "{snap:?}");
    assert_eq!(found("body"), "0", "{snap:?}");
    assert!(
        found("names").split(',').any(|name| name == "x-fat"),
        "{snap:?}"
    );
    // Dropping the responses gave the memory back.
    assert_eq!(found("again"), fat.len().to_string(), "{snap:?}");
}

#[tokio::test]
async fn response_bodies_held_for_a_guest_count_against_its_memory_limit_until_dropped() {
    let fat = "b".repeat(32 * 1024);
    let snap = hoard(Reply::ok(fat.as_str())).await;
    // The bodies stayed in the host until asked for.
    assert_eq!(
        detail(&snap, "body"),
        Some(fat.len().to_string().as_str()),
        "{snap:?}"
    );
}

#[tokio::test]
async fn prepared_requests_count_against_the_memory_limit_and_are_vetted_at_each_send() {
    let server = FakeServer::start(&[("/post", Reply::ok("taken"))]).await;
    let runtime = runtime();
    runtime
        .register(hostile(
            "preparer",
            server.port(),
            &format!("mode: hold-prepared, url: '{}'", server.url("/post")),
            ", sandbox: {memory_limit: 4MiB}, health_check: {timeout: 20s}",
        ))
        .await
        .expect("registers");
    let snap = runtime.check("preparer").await.expect("known");
    let found =
        |key: &str| detail(&snap, key).unwrap_or_else(|| panic!("no detail {key}: {snap:?}"));
    // Each holds a 32 KiB body: 4 MiB holds the guest's own memory and
    // fewer than 128 of them.
    let held: usize = found("held").parse().expect("a count");
    assert!((10..128).contains(&held), "{snap:?}");
    assert!(
        found("error").contains("TooLarge") && found("error").contains("sandbox.memory_limit"),
        "{snap:?}"
    );
    assert_eq!(found("first"), "200", "{snap:?}");
    // Letting them go gave the memory back.
    assert_eq!(found("again"), r#"Ok("200")"#, "{snap:?}");
    // Only the two sends reached the server, each with its body.
    let sent: Vec<_> = server
        .seen()
        .iter()
        .map(|seen| {
            let length = seen.headers.get("content-length");
            (seen.method.clone(), seen.path.clone(), length.cloned())
        })
        .collect();
    let post = (
        "POST".to_string(),
        "/post".to_string(),
        Some("32768".parse().expect("a value")),
    );
    assert_eq!(sent, [post.clone(), post]);
    // Preparing asks nothing of the allowlist; sending does.
    assert!(
        found("elsewhere").starts_with("Ok(")
            && found("elsewhere").contains("Denied")
            && found("elsewhere").contains("outside this connector's allowlist"),
        "{snap:?}"
    );
    assert_eq!(snap.status, HealthStatus::Healthy, "{snap:?}");
}

#[tokio::test]
async fn the_rust_sdk_has_the_host_prepare_a_request_at_its_second_send() {
    let server = FakeServer::start(&[("/h", Reply::ok("fine"))]).await;
    let runtime = runtime();
    runtime
        .register(hostile(
            "resender",
            server.port(),
            &format!("mode: resend, url: '{}'", server.url("/h")),
            "",
        ))
        .await
        .expect("registers");
    let snap = runtime.check("resender").await.expect("known");
    assert_eq!(detail(&snap, "statuses"), Some("200,200,200"), "{snap:?}");
    // One send is not worth preparing; a second is.
    assert_eq!(
        detail(&snap, "prepared after one"),
        Some("false"),
        "{snap:?}"
    );
    assert_eq!(
        detail(&snap, "prepared after two"),
        Some("true"),
        "{snap:?}"
    );
    assert_eq!(server.hits("/h"), 3);
}

#[tokio::test]
async fn a_component_calling_send_itself_gets_headers_on_demand_and_the_body() {
    let server = FakeServer::start(&[(
        "/h",
        Reply::ok("Healthy.\n")
            .header("X-One", "1")
            .header("x-two", "caf\u{e9}"),
    )])
    .await;
    let runtime = runtime();
    runtime
        .register(hostile(
            "raw",
            server.port(),
            &format!("mode: raw-send, url: '{}'", server.url("/h")),
            "",
        ))
        .await
        .expect("registers");
    let snap = runtime.check("raw").await.expect("known");
    assert_eq!(snap.status, HealthStatus::Healthy, "{snap:?}");
    for pair in [
        ("status", "200"),
        ("body", "Healthy."),
        ("asked x-one", "1"),
        ("x-one", "1"),
        ("x-two", "caf\u{e9}"),
    ] {
        assert!(
            snap.details
                .contains(&(pair.0.to_string(), pair.1.to_string())),
            "{pair:?}: {snap:?}"
        );
    }
}

#[tokio::test]
async fn instance_state_survives_between_checks() {
    let server = FakeServer::prometheus().await;
    let runtime = runtime();
    runtime
        .register(hostile("counter", server.port(), "mode: count", ""))
        .await
        .expect("registers");
    runtime.check("counter").await.expect("known");
    let snap = runtime.check("counter").await.expect("known");
    assert!(
        snap.details
            .contains(&("checks".to_string(), "2".to_string())),
        "{snap:?}"
    );
}

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn guest_logs_and_stdio_reach_the_host_log_tagged_with_the_connector() {
    // tracing caches each callsite's interest process-wide, computed by the
    // first thread to reach it; while only one dispatcher exists, from that
    // thread's default (tokio-rs/tracing#3611). A sibling test's thread,
    // which has none, would cache "never" and blind the subscriber below.
    // A second dispatcher, global and silent, makes tracing ask them all.
    let _ = tracing::subscriber::set_global_default(tracing::subscriber::NoSubscriber::default());
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    // One thread, so the thread-local subscriber sees the guest's calls.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let server = FakeServer::prometheus().await;
        let runtime = runtime();
        runtime
            .register(hostile("chatty", server.port(), "mode: log-and-print", ""))
            .await
            .expect("registers");
        let snap = runtime.check("chatty").await.expect("known");
        assert_eq!(snap.status, HealthStatus::Healthy);
        runtime.shutdown().await;
    });
    let log = String::from_utf8_lossy(&captured.0.lock().expect("log buffer")).into_owned();
    for needle in [
        "hello from the guest log",
        "hello from guest stdout",
        "hello from guest stderr",
    ] {
        let line = log
            .lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no `{needle}` in the log:\n{log}"));
        assert!(
            line.contains("connector=\"chatty\"") || line.contains("connector=chatty"),
            "{line}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_hostile_guest_gets_its_exact_outcome_while_good_connectors_stay_healthy_and_on_time()
{
    let server = FakeServer::prometheus().await;
    server.set("/huge", Reply::ok("z".repeat(3 << 20)));
    let runtime = runtime();
    let port = server.port();
    let short = ", health_check: {interval: 10s, timeout: 1s}";
    let hostile_modes: &[(&str, String)] = &[
        ("spin", "mode: loop".into()),
        ("deep", "mode: recurse".into()),
        ("hog", "mode: alloc".into()),
        ("crash", "mode: panic".into()),
        ("loud", "mode: big-string".into()),
        ("flood", "mode: log-flood".into()),
        (
            "busy",
            format!("mode: host-loop, url: '{}'", server.url("/-/healthy")),
        ),
        (
            "meta",
            "mode: fetch, url: 'http://169.254.169.254/latest/meta-data/'".into(),
        ),
        (
            "side",
            format!(
                "mode: fetch, url: 'http://127.0.0.1:{}/'",
                sandport_tests::closed_port()
            ),
        ),
        (
            "stream",
            format!("mode: fetch, url: '{}'", server.url("/huge")),
        ),
    ];
    // The flood's 40,000 host calls take 0.3-0.5 s in a debug build on 2
    // cores, and more beside other tests: it is judged on staying healthy,
    // not on speed, so it gets the good connectors' deadline.
    let generous = ", health_check: {interval: 10s, timeout: 5s}";
    for (id, settings) in hostile_modes {
        let limits = if *id == "flood" { generous } else { short };
        runtime
            .register(hostile(id, port, settings, limits))
            .await
            .unwrap_or_else(|e| panic!("{id}: {e}"));
    }
    for i in 0..5 {
        runtime
            .register(entry(&format!(
                "{{id: good{i}, component: prometheus, host: 127.0.0.1, port: {port}, health_check: {{interval: 10s, timeout: 5s}}}}"
            )))
            .await
            .expect("registers");
    }
    let started = std::time::Instant::now();
    let results = runtime.check_all(None).await;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(4), "check_all took {took:?}");
    let get = |id: &str| {
        results
            .iter()
            .find(|(i, _)| i == id)
            .map(|(_, s)| s.clone())
            .expect(id)
    };

    for i in 0..5 {
        let good = get(&format!("good{i}"));
        assert_eq!(good.status, HealthStatus::Healthy, "good{i}: {good:?}");
        // Well inside their 5s timeout: no hostile guest holds the executor.
        assert!(
            good.latency.expect("latency") < Duration::from_secs(2),
            "good{i} late: {good:?}"
        );
    }
    let expect = |id: &str, failure: Option<FailureKind>, needle: &str| {
        let s = get(id);
        assert_eq!(s.failure, failure, "{id}: {s:?}");
        assert!(
            s.message.contains(needle),
            "{id}: `{}` lacks `{needle}`",
            s.message
        );
    };
    expect("spin", Some(FailureKind::Deadline), "timed out after 1s");
    expect("deep", Some(FailureKind::Trap), "trapped");
    expect("hog", Some(FailureKind::OutOfMemory), "out of memory");
    expect("crash", Some(FailureKind::Trap), "trapped");
    expect("busy", Some(FailureKind::Deadline), "timed out after 1s");
    expect("meta", Some(FailureKind::EgressDenied), "denied");
    expect("side", Some(FailureKind::EgressDenied), "allowlist");
    expect("stream", None, "max_response_size");
    let loud = get("loud");
    assert_eq!(loud.status, HealthStatus::Unhealthy);
    assert!(
        loud.message.chars().count() <= 1025,
        "message kept at {} chars",
        loud.message.len()
    );
    assert!(loud.details.iter().all(|(_, v)| v.chars().count() <= 1025));
    let flood = get("flood");
    assert_eq!(flood.status, HealthStatus::Healthy, "{flood:?}");

    // The runtime still answers, and a second round behaves the same.
    assert_eq!(runtime.list(None).len(), hostile_modes.len() + 5);
    let again = runtime.check("good0").await.expect("known");
    assert_eq!(again.status, HealthStatus::Healthy);
    let again = runtime.check("deep").await.expect("known");
    assert_eq!(again.failure, Some(FailureKind::Trap));
}

#[tokio::test]
async fn a_guest_that_keeps_overrunning_is_quarantined_with_a_growing_backoff() {
    let server = FakeServer::prometheus().await;
    let runtime = runtime();
    runtime
        .register(hostile(
            "stubborn",
            server.port(),
            "mode: loop",
            ", health_check: {interval: 5s, timeout: 300ms}",
        ))
        .await
        .expect("registers");
    for _ in 0..2 {
        let snap = runtime.check("stubborn").await.expect("known");
        assert_eq!(snap.failure, Some(FailureKind::Deadline));
    }
    let snap = runtime.check("stubborn").await.expect("known");
    assert_eq!(snap.failure, Some(FailureKind::Quarantined), "{snap:?}");
    assert!(
        snap.message
            .contains("not called for 1s after 3 deadline overruns"),
        "{}",
        snap.message
    );

    // While quarantined the guest is not called: the answer is immediate.
    let started = std::time::Instant::now();
    let skipped = runtime.check("stubborn").await.expect("known");
    assert!(started.elapsed() < Duration::from_millis(200));
    assert_eq!(skipped.checked_at, snap.checked_at, "no new check ran");

    // After the backoff a probe runs; overrunning again doubles it.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let probe = runtime.check("stubborn").await.expect("known");
    assert!(
        probe.message.contains("not called for 2s after 4"),
        "{}",
        probe.message
    );
}

/// A TCP server on loopback answering every line with `+PONG`.
async fn pong_server() -> u16 {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut lines = BufReader::new(read).lines();
                while let Ok(Some(_)) = lines.next_line().await {
                    if write.write_all(b"+PONG\r\n").await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    port
}

#[tokio::test]
async fn tcp_reaches_the_own_endpoint_and_tcp_rules_but_nothing_else() {
    let own = pong_server().await;
    let other = pong_server().await;
    let runtime = runtime();
    let tcp = |id: &str, mode: &str, host: &str, port: u16, extra: &str| {
        entry(&format!(
            "{{id: {id}, component: '{HOSTILE_WASM}', host: 127.0.0.1, port: {own}, settings: {{mode: {mode}, tcp_host: '{host}', tcp_port: {port}}}{extra}}}"
        ))
    };
    // The connector's own host:port, by IP and by name.
    for (id, host) in [("own-ip", "127.0.0.1"), ("own-name", "localhost")] {
        let config = if host == "localhost" {
            entry(&format!(
                "{{id: {id}, component: '{HOSTILE_WASM}', host: localhost, port: {own}, settings: {{mode: tcp, tcp_host: localhost, tcp_port: {own}}}}}"
            ))
        } else {
            tcp(id, "tcp", host, own, "")
        };
        runtime.register(config).await.expect("registers");
        let snap = runtime.check(id).await.expect("known");
        assert_eq!(snap.status, HealthStatus::Healthy, "{id}: {snap:?}");
        assert!(
            snap.details.contains(&("reply".into(), "+PONG".into())),
            "{snap:?}"
        );
    }
    // Another port: refused by the host's resolver.
    runtime
        .register(tcp("other", "tcp", "127.0.0.1", other, ""))
        .await
        .expect("registers");
    let snap = runtime.check("other").await.expect("known");
    assert_eq!(snap.status, HealthStatus::Unhealthy);
    assert!(snap.message.contains("not open to TCP"), "{}", snap.message);
    assert_eq!(snap.failure, Some(FailureKind::EgressDenied));
    // Connecting without asking the host first: refused by the sandbox.
    runtime
        .register(tcp("raw", "tcp-raw", "127.0.0.1", other, ""))
        .await
        .expect("registers");
    let snap = runtime.check("raw").await.expect("known");
    assert_eq!(snap.status, HealthStatus::Unhealthy, "{snap:?}");
    assert!(!snap.details.iter().any(|(k, _)| k == "reply"), "{snap:?}");
    // A tcp:// rule opens exactly that port.
    runtime
        .register(tcp(
            "ruled",
            "tcp",
            "127.0.0.1",
            other,
            &format!(", sandbox: {{allowed_hosts: ['tcp://127.0.0.1:{other}']}}"),
        ))
        .await
        .expect("registers");
    let snap = runtime.check("ruled").await.expect("known");
    assert_eq!(snap.status, HealthStatus::Healthy, "{snap:?}");
    // Cloud metadata stays closed even on the guest's own TCP path.
    runtime
        .register(tcp("meta", "tcp", "169.254.169.254", 80, ""))
        .await
        .expect("registers");
    let snap = runtime.check("meta").await.expect("known");
    assert!(snap.message.contains("denied"), "{}", snap.message);
}

#[tokio::test]
async fn a_guest_sees_no_files_environment_arguments_or_secrets() {
    let server = FakeServer::prometheus().await;
    let runtime = runtime();
    let secret = "Zm9vYmFyLXNlY3JldA";
    let reversed: String = secret.chars().rev().collect();
    runtime
        .register(hostile(
            "snoop",
            server.port(),
            &format!("mode: snoop, needle_reversed: '{reversed}'"),
            &format!(
                ", auth: {{type: bearer, token: '{secret}', headers: {{X-Api-Secret: '{secret}'}}}}"
            ),
        ))
        .await
        .expect("registers");
    let snap = runtime.check("snoop").await.expect("known");
    let found = |key: &str| detail(&snap, key);
    assert_eq!(found("dirs"), Some("0"), "{snap:?}");
    assert_eq!(found("passwd"), Some("false"));
    assert_eq!(found("env"), Some("0"));
    assert_eq!(found("args"), Some("0"));
    assert_eq!(found("secret_seen"), Some("false"), "{snap:?}");
    assert!(found("config_len").is_some_and(|l| l.parse::<usize>().unwrap_or(0) > 100));
}

#[tokio::test]
async fn a_component_reads_the_entry_credentials_only_when_the_operator_shares_them() {
    let runtime = runtime();
    let auth = |share: &str| {
        format!(", auth: {{type: basic, username: ops, password: s3cret-value{share}}}")
    };
    for (id, extra) in [
        ("kept", auth("")),
        ("shared", auth(", share_with_connector: true")),
        ("signed", ", auth: {type: aws_sigv4, access_key_id: AKIDEXAMPLE, secret_access_key: s3cret-value, share_with_connector: true}".to_string()),
    ] {
        runtime
            .register(hostile(id, 9, "mode: credentials", &extra))
            .await
            .expect("registers");
    }
    let details = |id: &'static str| {
        let runtime = runtime.clone();
        async move {
            let snap = runtime.check(id).await.expect("known");
            assert_eq!(snap.status, HealthStatus::Healthy, "{snap:?}");
            snap.details
        }
    };
    let kept = details("kept").await;
    assert!(
        kept.contains(&("credentials".into(), "none".into())),
        "{kept:?}"
    );
    // Signing needs the request: the AWS secret is never handed out.
    let signed = details("signed").await;
    assert!(
        signed.contains(&("credentials".into(), "none".into())),
        "{signed:?}"
    );
    let shared = details("shared").await;
    assert!(
        shared.contains(&("username".into(), "ops".into())),
        "{shared:?}"
    );
    assert!(
        shared.contains(&("secret".into(), "s3cret-value".into())),
        "{shared:?}"
    );
}
