//! The `sandport` binary as scripts and operators use it: exit codes, the
//! JSON shape, config errors, and a clean stop on SIGTERM.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::support::{SANDPORT, Target, closed_port, guest_wasm};

fn serve_status(status: u16) -> u16 {
    Target::start(status).port
}

fn write_config(name: &str, yaml: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sandport-cli-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("connectors.yaml");
    std::fs::write(&path, yaml).expect("write config");
    path
}

fn sandport(args: &[&str]) -> Output {
    Command::new(SANDPORT)
        .args(args)
        .env_remove("SANDPORT_CONFIG")
        .env_remove("CONNECTORS_SERVICE_ADDR")
        .env("RUST_LOG", "warn")
        .output()
        .expect("run sandport")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn check_exits_0_when_every_connector_is_healthy() {
    let port = serve_status(200);
    let config = write_config(
        "healthy",
        &format!(
            "connectors:\n  - {{id: prometheus, host: 127.0.0.1, port: {port}}}\n  - {{id: jaeger, host: 127.0.0.1, port: {port}}}\n"
        ),
    );
    let out = sandport(&["check", "--config", config.to_str().expect("utf-8")]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(stdout.starts_with("ID"), "{stdout}");
    assert_eq!(
        stdout.lines().filter(|l| l.contains("healthy")).count(),
        2,
        "{stdout}"
    );
}

#[test]
fn check_json_has_the_documented_shape_and_exits_1_when_one_is_down() {
    let up = serve_status(200);
    let down = closed_port();
    let config = write_config(
        "json",
        &format!(
            "connectors:\n  - {{id: prometheus, host: 127.0.0.1, port: {up}}}\n  - {{id: jaeger, host: 127.0.0.1, port: {down}}}\n"
        ),
    );
    let out = sandport(&[
        "check",
        "--config",
        config.to_str().expect("utf-8"),
        "--output",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let items: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
    let items = items.as_array().expect("an array");
    assert_eq!(items.len(), 2);
    for item in items {
        for key in ["id", "status", "message", "latency_ms"] {
            assert!(item.get(key).is_some(), "missing {key} in {item}");
        }
        assert!(item["latency_ms"].as_f64().is_some(), "{item}");
    }
    let by_id = |id: &str| items.iter().find(|i| i["id"] == id).expect("present");
    assert_eq!(by_id("prometheus")["status"], "healthy");
    assert_eq!(by_id("jaeger")["status"], "unhealthy");
    assert!(
        by_id("jaeger")["message"]
            .as_str()
            .expect("string")
            .contains("connection refused"),
        "{}",
        by_id("jaeger")
    );
}

#[test]
fn check_of_named_ids_checks_only_those_and_unknown_ids_exit_2() {
    let port = serve_status(200);
    let config = write_config(
        "named",
        &format!(
            "connectors:\n  - {{id: prometheus, host: 127.0.0.1, port: {port}}}\n  - {{id: jaeger, host: 127.0.0.1, port: {}}}\n",
            closed_port()
        ),
    );
    let path = config.to_str().expect("utf-8");
    let out = sandport(&["check", "--config", path, "prometheus", "-o", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let items: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(items.as_array().map(Vec::len), Some(1));

    let out = sandport(&["check", "--config", path, "nosuch"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("nosuch"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_bad_entry_exits_2_naming_entry_and_key_while_the_others_are_still_checked() {
    let port = serve_status(200);
    let config = write_config(
        "bad-entry",
        &format!(
            "connectors:\n  - {{id: prometheus, host: 127.0.0.1, port: {port}}}\n  - {{id: grafana, host: 127.0.0.1, port: {port}, health_check: {{interval: soon}}}}\n"
        ),
    );
    let out = sandport(&["check", "--config", config.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("connectors[1] (id \"grafana\")"),
        "{stderr}"
    );
    assert!(stderr.contains("health_check.interval"), "{stderr}");
    assert!(
        text(&out.stdout).contains("prometheus"),
        "the good entry is still checked"
    );
}

#[test]
fn an_unreadable_or_malformed_config_exits_2_with_a_clear_error() {
    let out = sandport(&["check", "--config", "/nonexistent/connectors.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("cannot read config file"),
        "{}",
        text(&out.stderr)
    );

    let config = write_config("malformed", "connectors: [ {id: x\n");
    let out = sandport(&["check", "--config", config.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("not valid YAML"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn validate_prints_every_problem() {
    let config = write_config(
        "validate",
        "connectors:\n  - {id: grafana, port: 70000, colour: blue}\n  - {id: prometheus}\n  - {id: prometheus}\n  - {id: mystery}\n  - {id: web, component: http, port: 80, settings: {body_matches: '('}}\n",
    );
    let out = sandport(&["validate", "--config", config.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(2));
    let stdout = text(&out.stdout);
    for needle in [
        "port",
        "colour",
        "duplicate id",
        "mystery",
        "settings.body_matches",
    ] {
        assert!(stdout.contains(needle), "no `{needle}` in:\n{stdout}");
    }

    let out = sandport(&["validate"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains("3 connector(s)"));
}

#[test]
fn serve_runs_until_sigterm_and_exits_cleanly() {
    let port = serve_status(200);
    let config = write_config(
        "serve",
        &format!(
            "connectors:\n  - {{id: prometheus, host: 127.0.0.1, port: {port}, health_check: {{interval: 1s, timeout: 1s}}}}\n"
        ),
    );
    let mut child = Command::new(SANDPORT)
        .args([
            "serve",
            "--grpc-addr",
            "127.0.0.1:0",
            "--http-addr",
            "127.0.0.1:0",
        ])
        .args(["--config", config.to_str().expect("utf-8")])
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let started = Instant::now();
    let mut seen_healthy = false;
    while started.elapsed() < Duration::from_secs(20) {
        let Some(Ok(line)) = lines.next() else { break };
        if line.contains("healthy") && line.contains("prometheus") {
            seen_healthy = true;
            break;
        }
    }
    assert!(seen_healthy, "serve never logged a healthy check");
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            assert!(status.success(), "exit status {status}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "serve did not stop after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(rest.iter().any(|l| l.contains("shutting down")), "{rest:?}");
}

#[test]
fn test_connector_passes_a_good_component_and_fails_a_hostile_one() {
    let good = guest_wasm("sandport_connector_prometheus");
    let out = sandport(&["test-connector", good.to_str().expect("utf-8")]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.trim_end().ends_with("12 passed, 0 failed"),
        "{stdout}"
    );

    let hostile = guest_wasm("sandport_guest_hostile");
    let dir = std::env::temp_dir().join(format!("sandport-kit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let entry = dir.join("entry.yaml");
    std::fs::write(&entry, "settings: {mode: loop}\nhealth_check: {path: /}\n").expect("write");
    let out = sandport(&[
        "test-connector",
        hostile.to_str().expect("utf-8"),
        "--entry",
        entry.to_str().expect("utf-8"),
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("FAIL  target up: healthy"), "{stdout}");
}

#[test]
fn new_writes_a_project_and_says_what_to_run_next_and_build_names_what_it_cannot_build() {
    let dir = std::env::temp_dir().join(format!("sandport-cli-new-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let project = dir.join("my-check");
    let path = project.to_str().expect("utf-8");
    let out = sandport(&["new", "--lang", "python", path]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains(&format!(
            "sandport test-connector {path}/build/my-check.wasm"
        )),
        "{stdout}"
    );
    assert!(project.join("app.py").is_file());
    assert!(project.join("wit/connector.wit").is_file());

    let again = sandport(&["new", "--lang", "rust", path]);
    assert_eq!(again.status.code(), Some(2));
    assert!(
        text(&again.stderr).contains("is not empty"),
        "{}",
        text(&again.stderr)
    );

    let bad = sandport(&["new", "--lang", "cobol", path]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        text(&bad.stderr).contains("rust, python, js"),
        "{}",
        text(&bad.stderr)
    );

    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).expect("dir");
    let out = sandport(&["build", empty.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
    assert!(
        text(&out.stderr).contains("is not a connector project"),
        "{}",
        text(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}
