//! Running it like infrastructure: `/metrics` scraped and checked by
//! Prometheus's own parser, the config file reloaded (on change and on
//! SIGHUP) with exactly the changed entries replaced, systemd readiness,
//! and JSON logs.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use sandport_server::grpc::pb;
use sandport_server::grpc::pb::connectors_service_client::ConnectorsServiceClient;

use super::support::{Server, Target, closed_port, guest_wasm, temp_dir, write};

const PROMTOOL: &str = "/usr/bin/promtool";

fn entry(id: &str, port: u16, extra: &str) -> String {
    format!(
        "  - {{id: {id}, component: http, host: 127.0.0.1, port: {port}, health_check: {{interval: 1s, timeout: 1s}}{extra}}}\n"
    )
}

/// One sample: its labels and value.
type Samples = BTreeMap<String, Vec<(BTreeMap<String, String>, f64)>>;

/// The samples of a Prometheus text exposition, by metric name. Only what
/// the tests read; `promtool check metrics` is the real parser.
fn samples(text: &str) -> Samples {
    let mut out = Samples::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (series, value) = line.rsplit_once(' ').expect("a sample line has a value");
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("a number in {line}")),
        };
        let (name, labels) = match series.split_once('{') {
            None => (series, BTreeMap::new()),
            Some((name, rest)) => {
                let rest = rest.strip_suffix('}').expect("labels end with }");
                let labels = rest
                    .split("\",")
                    .filter(|pair| !pair.is_empty())
                    .map(|pair| {
                        let (key, value) = pair.split_once("=\"").expect("key=\"value\"");
                        (key.to_string(), value.trim_end_matches('"').to_string())
                    })
                    .collect();
                (name, labels)
            }
        };
        out.entry(name.to_string())
            .or_default()
            .push((labels, value));
    }
    out
}

/// The value of `name` whose labels include every pair of `with`.
fn value(samples: &Samples, name: &str, with: &[(&str, &str)]) -> Option<f64> {
    samples.get(name)?.iter().find_map(|(labels, value)| {
        with.iter()
            .all(|(k, v)| labels.get(*k).map(String::as_str) == Some(*v))
            .then_some(*value)
    })
}

async fn scrape(base: &str) -> (String, String) {
    let answer = reqwest::get(format!("{base}/metrics"))
        .await
        .expect("GET /metrics");
    assert_eq!(answer.status(), 200);
    let content_type = answer.headers()["content-type"]
        .to_str()
        .expect("a content type")
        .to_string();
    (content_type, answer.text().await.expect("a body"))
}

fn promtool_check_metrics(text: &str) {
    use std::io::Write;
    assert!(
        Path::new(PROMTOOL).exists(),
        "{PROMTOOL} is missing: run scripts/install-test-deps.sh (Debian's prometheus package)"
    );
    let mut child = std::process::Command::new(PROMTOOL)
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run promtool");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write the exposition");
    let output = child.wait_with_output().expect("promtool output");
    assert!(
        output.status.success(),
        "promtool check metrics refused the exposition:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Polls `until` on fresh scrapes for up to 30 s.
async fn scrape_until(base: &str, what: &str, until: impl Fn(&Samples) -> bool) -> Samples {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let parsed = samples(&scrape(base).await.1);
        if until(&parsed) {
            return parsed;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn metrics_count_checks_and_calls_and_pass_promtool() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let target = Target::start(200);
    let dir = temp_dir("metrics");
    let yaml = format!(
        "connectors:\n{}{}",
        entry("up", target.port, ""),
        entry("down", closed_port(), "")
    );
    let config = write(&dir, "connectors.yaml", &yaml);
    let server = Server::start_with(
        &config,
        &dir.join("data"),
        &["--metrics-addr", "127.0.0.1:0"],
    );
    let metrics = server
        .metrics
        .clone()
        .expect("the metrics listener's address");

    let parsed = scrape_until(&server.http, "two checks of each connector", |s| {
        let checks =
            |id| value(s, "sandport_check_duration_seconds_count", &[("id", id)]).unwrap_or(0.0);
        checks("up") >= 2.0 && checks("down") >= 2.0
    })
    .await;
    let up = [("id", "up"), ("type", "custom")];
    assert_eq!(value(&parsed, "sandport_connector_up", &up), Some(1.0));
    assert_eq!(
        value(&parsed, "sandport_connector_up", &[("id", "down")]),
        Some(0.0)
    );
    let healthy = value(
        &parsed,
        "sandport_checks_total",
        &[("id", "up"), ("status", "healthy")],
    );
    assert!(healthy.is_some_and(|n| n >= 2.0), "{healthy:?}");
    assert!(
        value(
            &parsed,
            "sandport_checks_total",
            &[("id", "down"), ("status", "unhealthy")]
        )
        .is_some_and(|n| n >= 2.0)
    );
    let count = value(&parsed, "sandport_check_duration_seconds_count", &up);
    let inf = value(
        &parsed,
        "sandport_check_duration_seconds_bucket",
        &[("id", "up"), ("le", "+Inf")],
    );
    assert_eq!(count, inf, "the +Inf bucket holds every check");
    assert!(
        value(&parsed, "sandport_egress_requests_total", &up).is_some_and(|n| n >= 2.0),
        "each check of `up` sent a request"
    );
    assert!(value(&parsed, "sandport_egress_received_bytes_total", &up).is_some_and(|n| n >= 4.0));
    assert!(value(&parsed, "sandport_instance_memory_bytes", &up).is_some_and(|n| n > 0.0));
    assert_eq!(
        value(&parsed, "sandport_connectors", &[("status", "healthy")]),
        Some(1.0)
    );
    assert_eq!(
        value(&parsed, "sandport_connectors", &[("status", "unhealthy")]),
        Some(1.0)
    );
    assert!(
        value(&parsed, "sandport_schedule_lateness_seconds_count", &[]).is_some_and(|n| n >= 4.0)
    );
    assert!(value(&parsed, "process_resident_memory_bytes", &[]).is_some_and(|n| n > 1e6));
    assert!(value(&parsed, "process_open_fds", &[]).is_some_and(|n| n > 3.0));
    assert!(value(&parsed, "process_cpu_seconds_total", &[]).is_some_and(|n| n > 0.0));
    assert_eq!(
        value(
            &parsed,
            "sandport_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        Some(1.0)
    );

    // API calls, by method and code, both APIs.
    let mut grpc = ConnectorsServiceClient::connect(server.grpc.clone())
        .await
        .expect("connect");
    grpc.list_connectors(pb::ListConnectorsRequest::default())
        .await
        .expect("list");
    let missing = grpc
        .get_connector(pb::GetConnectorRequest { id: "nope".into() })
        .await;
    assert_eq!(missing.err().map(|s| s.code()), Some(tonic::Code::NotFound));
    let _ = reqwest::get(format!("{}/api/v1/connectors/nope", server.http)).await;
    let parsed = samples(&scrape(&server.http).await.1);
    let calls = |labels: &[(&str, &str)]| value(&parsed, "sandport_api_requests_total", labels);
    assert_eq!(
        calls(&[
            ("api", "grpc"),
            ("method", "ListConnectors"),
            ("code", "OK")
        ]),
        Some(1.0)
    );
    assert_eq!(
        calls(&[
            ("api", "grpc"),
            ("method", "GetConnector"),
            ("code", "NotFound")
        ]),
        Some(1.0)
    );
    assert_eq!(
        calls(&[
            ("api", "rest"),
            ("method", "GET /api/v1/connectors/{id}"),
            ("code", "404")
        ]),
        Some(1.0),
        "REST calls are labelled by route, not by path"
    );
    assert!(calls(&[("api", "rest"), ("method", "GET /metrics"), ("code", "200")]).is_some());
    assert!(
        value(
            &parsed,
            "sandport_api_request_duration_seconds_count",
            &[("api", "grpc"), ("method", "ListConnectors")]
        )
        .is_some_and(|n| n >= 1.0)
    );

    // Prometheus's own parser and linter accept it; OpenMetrics on request.
    let (content_type, text) = scrape(&metrics).await;
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    promtool_check_metrics(&text);
    let open = reqwest::Client::new()
        .get(format!("{metrics}/metrics"))
        .header(
            "accept",
            "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.4",
        )
        .send()
        .await
        .expect("scrape");
    assert!(
        open.headers()["content-type"]
            .to_str()
            .is_ok_and(|t| t.starts_with("application/openmetrics-text"))
    );
    let open = open.text().await.expect("body");
    assert!(
        open.trim_end().ends_with("# EOF"),
        "OpenMetrics ends with # EOF"
    );
    // The metrics listener serves nothing else.
    let other = reqwest::get(format!("{metrics}/api/v1/connectors"))
        .await
        .expect("GET");
    assert_eq!(other.status(), 404);

    // Every metric the dashboard and the alert rules use is exported.
    for name in super::deploy::metric_names_used_by_deploy() {
        let found = text.lines().any(|line| {
            line.strip_prefix("# TYPE ")
                .and_then(|rest| rest.split(' ').next())
                .is_some_and(|declared| {
                    name == declared
                        || name
                            .strip_suffix("_total")
                            .is_some_and(|base| base == declared.trim_end_matches("_total"))
                })
        });
        assert!(
            found,
            "deploy/ uses `{name}`, which /metrics does not export"
        );
    }

    // A removed connector's series go with it.
    grpc.remove_connector(pb::RemoveConnectorRequest { id: "down".into() })
        .await
        .expect("remove");
    let (_, text) = scrape(&metrics).await;
    assert!(
        !text.contains("id=\"down\""),
        "series of a removed connector remain"
    );
}

async fn reload_status(server: &Server) -> serde_json::Value {
    reqwest::get(format!("{}/api/v1/config/status", server.http))
        .await
        .expect("GET config status")
        .json()
        .await
        .expect("JSON")
}

/// Waits for a reload after `seen` (an `at` of an earlier one, or null).
async fn next_reload(server: &Server, seen: &serde_json::Value) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = reload_status(server).await;
        let last = &status["last_reload"];
        if !last.is_null() && last["at"] != *seen {
            return last.clone();
        }
        assert!(Instant::now() < deadline, "no reload happened: {status}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn checks_of(parsed: &Samples, id: &str) -> f64 {
    value(
        parsed,
        "sandport_check_duration_seconds_count",
        &[("id", id)],
    )
    .unwrap_or(0.0)
}

#[tokio::test]
async fn a_changed_config_file_replaces_exactly_the_changed_entries() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let target = Target::start(200);
    let dir = temp_dir("reload");
    // A component file the config names: changing its bytes is a change.
    let wasm = std::fs::read(guest_wasm("sandport_connector_http")).expect("the http component");
    std::fs::write(dir.join("mine.wasm"), &wasm).expect("write the component");
    let file_entry = format!(
        "  - {{id: file, component: ./mine.wasm, host: 127.0.0.1, port: {}, health_check: {{interval: 1s, timeout: 1s}}}}\n",
        target.port
    );
    let v1 = format!(
        "connectors:\n{}{}{}{file_entry}",
        entry("same", target.port, ""),
        entry("changed", target.port, ""),
        entry("gone", target.port, ""),
    );
    let config = write(&dir, "connectors.yaml", &v1);
    let server = Server::start(&config, &dir.join("data"));
    assert_eq!(reload_status(&server).await["reloadable"], true);
    let before = scrape_until(&server.http, "checks of every entry", |s| {
        ["same", "changed", "gone", "file"]
            .iter()
            .all(|id| checks_of(s, id) >= 3.0)
    })
    .await;

    // Changed: `changed` gets a tag, `gone` goes, `new` comes, `same` and
    // `file` stay as they were.
    let v2 = format!(
        "connectors:\n{}{}{}{file_entry}",
        entry("same", target.port, ""),
        entry("changed", target.port, ", tags: [edited]"),
        entry("new", target.port, ""),
    );
    // Written beside and renamed over, as editors and kubectl do.
    write(&dir, "connectors.yaml.tmp", &v2);
    std::fs::rename(dir.join("connectors.yaml.tmp"), &config).expect("rename");
    let report = next_reload(&server, &serde_json::Value::Null).await;
    assert_eq!(report["applied"], true, "{report}");
    assert_eq!(report["added"], serde_json::json!(["new"]), "{report}");
    assert_eq!(report["removed"], serde_json::json!(["gone"]), "{report}");
    assert_eq!(
        report["replaced"],
        serde_json::json!(["changed"]),
        "{report}"
    );
    assert_eq!(report["unchanged"], 2, "{report}");
    let after = samples(&scrape(&server.http).await.1);
    // An untouched connector keeps its instance and counts on; a replaced
    // one starts from zero.
    assert!(checks_of(&after, "same") >= checks_of(&before, "same"));
    assert!(checks_of(&after, "file") >= checks_of(&before, "file"));
    assert!(checks_of(&after, "changed") < checks_of(&before, "changed"));
    assert_eq!(checks_of(&after, "gone"), 0.0);

    // New bytes at the component's path (a custom section appended: still
    // the same connector, another digest) replace `file` alone.
    let mut changed = wasm.clone();
    changed.extend_from_slice(&[0x00, 0x06, 0x04, b'n', b'o', b't', b'e', b'!']);
    std::fs::write(dir.join("mine.wasm"), &changed).expect("rewrite the component");
    let seen = report["at"].clone();
    let _ = Server::hangup(&server);
    let report = next_reload(&server, &seen).await;
    assert_eq!(report["replaced"], serde_json::json!(["file"]), "{report}");
    assert_eq!(report["unchanged"], 3, "{report}");

    // A file with a problem changes nothing, and says so.
    let seen = report["at"].clone();
    let broken = v2.replace("interval: 1s", "interval: soon");
    write(&dir, "connectors.yaml", &broken);
    let report = next_reload(&server, &seen).await;
    assert_eq!(report["applied"], false, "{report}");
    let problems = report["problems"].to_string();
    assert!(problems.contains("health_check.interval"), "{problems}");
    let listed = reqwest::get(format!("{}/api/v1/connectors", server.http))
        .await
        .expect("list")
        .json::<serde_json::Value>()
        .await
        .expect("JSON");
    let ids: Vec<&str> = listed
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|c| c["id"].as_str())
        .collect();
    assert_eq!(ids, ["changed", "file", "new", "same"]);
    let parsed = samples(&scrape(&server.http).await.1);
    assert_eq!(
        value(&parsed, "sandport_config_last_reload_success", &[]),
        Some(0.0)
    );
    assert!(
        value(
            &parsed,
            "sandport_config_reloads_total",
            &[("result", "failed")]
        )
        .is_some_and(|n| n >= 1.0)
    );

    // An entry changed through the API belongs to the API from then on.
    let update = serde_json::json!({
        "id": "same", "component": "http", "host": "127.0.0.1", "port": target.port,
        "tags": ["api"], "health_check": {"interval": "1s", "timeout": "1s"}
    });
    let answer = reqwest::Client::new()
        .put(format!("{}/api/v1/connectors/same", server.http))
        .json(&update)
        .send()
        .await
        .expect("PUT");
    assert_eq!(answer.status(), 200);
    let seen = report["at"].clone();
    let v3 = format!(
        "connectors:\n{}{}{file_entry}",
        entry("changed", target.port, ", tags: [edited]"),
        entry("new", target.port, ""),
    );
    write(&dir, "connectors.yaml", &v3);
    let report = next_reload(&server, &seen).await;
    assert_eq!(report["applied"], true, "{report}");
    assert_eq!(report["removed"], serde_json::json!([]), "{report}");
    let same = reqwest::get(format!("{}/api/v1/connectors/same", server.http))
        .await
        .expect("GET");
    assert_eq!(
        same.status(),
        200,
        "an API-updated entry left the file's hands"
    );

    // A replacement that cannot start leaves the running instance alone,
    // and the reload says so.
    let seen = report["at"].clone();
    let v4 = v3.replace(
        &entry("changed", target.port, ", tags: [edited]"),
        &format!(
            "  - {{id: changed, component: ./missing.wasm, host: 127.0.0.1, port: {}}}\n",
            target.port
        ),
    );
    assert_ne!(v3, v4);
    write(&dir, "connectors.yaml", &v4);
    let report = next_reload(&server, &seen).await;
    assert_eq!(report["applied"], true, "{report}");
    assert_eq!(report["replaced"], serde_json::json!([]), "{report}");
    let problems = report["problems"].to_string();
    assert!(
        problems.contains("changed") && problems.contains("the running instance was kept"),
        "{problems}"
    );
    let kept: serde_json::Value =
        reqwest::get(format!("{}/api/v1/connectors/changed", server.http))
            .await
            .expect("GET")
            .json()
            .await
            .expect("JSON");
    assert_eq!(
        kept["connector"]["tags"],
        serde_json::json!(["edited"]),
        "{kept}"
    );
    let parsed = samples(&scrape(&server.http).await.1);
    assert_eq!(
        value(&parsed, "sandport_config_last_reload_success", &[]),
        Some(0.0)
    );
}

#[tokio::test]
async fn serve_tells_systemd_when_it_is_ready_and_when_it_stops() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let target = Target::start(200);
    let dir = temp_dir("notify");
    let config = write(
        &dir,
        "connectors.yaml",
        &format!("connectors:\n{}", entry("one", target.port, "")),
    );
    let socket_path = dir.join("notify.sock");
    let socket = std::os::unix::net::UnixDatagram::bind(&socket_path).expect("bind");
    socket
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    let server = Server::start_env(
        &config,
        &dir.join("data"),
        &[],
        &[("NOTIFY_SOCKET", &socket_path)],
    );
    let mut buf = [0u8; 256];
    let n = socket.recv(&mut buf).expect("READY=1 within 60 s");
    assert_eq!(std::str::from_utf8(&buf[..n]).ok(), Some("READY=1\n"));
    // Ready means answering.
    let answer = reqwest::get(format!("{}/readyz", server.http))
        .await
        .expect("readyz");
    assert_eq!(answer.status(), 200);
    let status = server.terminate(Duration::from_secs(20));
    assert!(status.success(), "{status:?}");
    let n = socket.recv(&mut buf).expect("STOPPING=1");
    assert_eq!(std::str::from_utf8(&buf[..n]).ok(), Some("STOPPING=1\n"));
}

#[tokio::test]
async fn json_logs_are_one_object_a_line_with_the_connector_as_a_field() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let target = Target::start(200);
    let dir = temp_dir("json-logs");
    let config = write(
        &dir,
        "connectors.yaml",
        &format!("connectors:\n{}", entry("jsonny", closed_port(), "")),
    );
    let server = Server::start_with(&config, &dir.join("data"), &["--log-format", "json"]);
    drop(target);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let lines = server.log.lock().expect("log").clone();
        let parsed: Vec<serde_json::Value> = lines
            .iter()
            .map(|line| {
                serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
            })
            .collect();
        let status_change = parsed
            .iter()
            .find(|line| line["connector"] == "jsonny" && line["status"] == "unhealthy");
        if let Some(line) = status_change {
            assert_eq!(line["level"], "INFO", "{line}");
            assert!(line["message"].is_string(), "{line}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no status line for jsonny: {lines:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
