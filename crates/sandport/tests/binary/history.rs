//! The check history through the binary: recorded, answered over REST,
//! gRPC and the CLI, kept across `kill -9`, and a damaged file reported
//! with its path and left as it was while the checks go on.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::support::{SANDPORT, Server, Target, temp_dir, write};

fn config(dir: &Path, port: u16, extra: &str) -> std::path::PathBuf {
    write(
        dir,
        "connectors.yaml",
        &format!(
            "{extra}connectors:\n  - {{id: web, component: http, host: 127.0.0.1, port: {port}, health_check: {{interval: 1s, timeout: 1s}}}}\n"
        ),
    )
}

async fn get(url: &str) -> (u16, Value) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let answer = reqwest::get(url).await.expect("GET");
    let status = answer.status().as_u16();
    (status, answer.json().await.expect("a JSON body"))
}

/// Polls the history until it holds at least `n` points.
async fn points_at_least(server: &Server, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = get(&format!(
            "{}/api/v1/connectors/web/history?since=1h",
            server.http
        ))
        .await;
        assert_eq!(status, 200, "{body}");
        let points = body["points"].as_array().cloned().unwrap_or_default();
        if points.len() >= n {
            return points;
        }
        assert!(
            Instant::now() < deadline,
            "the history never held {n} points: {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn every_check_is_kept_and_survives_kill_9() {
    let target = Target::start(200);
    let dir = temp_dir("history-kill");
    let config = config(&dir, target.port, "");
    let data = dir.join("data");
    let server = Server::start(&config, &data);
    let points = points_at_least(&server, 2).await;
    assert_eq!(points[0]["status"], "healthy", "{points:?}");
    assert!(points[0]["latency_ms"].as_f64().is_some(), "{points:?}");
    target.set_status(503);
    let points = loop {
        let points = points_at_least(&server, 3).await;
        if points.iter().any(|p| p["status"] == "unhealthy") {
            break points;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let failing = points
        .iter()
        .find(|p| p["status"] == "unhealthy")
        .expect("a failed check");
    assert!(
        failing["message"].as_str().unwrap_or("").contains("503"),
        "{failing}"
    );

    // Uptime counts both kinds of checks.
    let (status, uptime) = get(&format!("{}/api/v1/connectors/web/uptime", server.http)).await;
    assert_eq!(status, 200, "{uptime}");
    let day = uptime["uptime"]["day"].as_f64().expect("a day figure");
    assert!(day > 0.0 && day < 100.0, "{uptime}");
    assert_eq!(uptime["daily"].as_array().map(Vec::len), Some(90));

    // A badge for a README: the status word, and the uptime when asked.
    let badge = reqwest::get(format!(
        "{}/api/v1/connectors/web/badge.svg?uptime=day",
        server.http
    ))
    .await
    .expect("GET badge");
    assert_eq!(badge.status(), 200);
    assert!(
        badge.headers()["content-type"]
            .to_str()
            .unwrap_or_default()
            .starts_with("image/svg+xml")
    );
    let svg = badge.text().await.expect("an SVG");
    assert!(svg.starts_with("<svg") && svg.contains('%'), "{svg}");
    let (status, body) = get(&format!("{}/api/v1/connectors/nope/badge.svg", server.http)).await;
    assert_eq!(status, 404, "{body}");

    // The CLI reads the same history through gRPC.
    let cli = Command::new(SANDPORT)
        .args(["history", "web", "--since", "1h", "-o", "json"])
        .env("CONNECTORS_SERVICE_ADDR", &server.grpc)
        .output()
        .expect("run sandport history");
    assert!(cli.status.success(), "{cli:?}");
    let listed: Value = serde_json::from_slice(&cli.stdout).expect("JSON from the CLI");
    assert!(
        listed.as_array().map_or(0, Vec::len) >= points.len(),
        "{listed}"
    );
    let rollups = Command::new(SANDPORT)
        .args(["history", "web", "--step", "1h"])
        .env("CONNECTORS_SERVICE_ADDR", &server.grpc)
        .output()
        .expect("run sandport history --step");
    let table = String::from_utf8_lossy(&rollups.stdout);
    assert!(rollups.status.success(), "{rollups:?}");
    assert!(table.starts_with("START"), "{table}");
    assert!(table.contains('%'), "an uptime figure: {table}");

    // What the API showed before the crash is there after it.
    let seen: Vec<String> = points
        .iter()
        .map(|p| p["at"].as_str().unwrap_or_default().to_string())
        .collect();
    server.kill_9();
    let server = Server::start(&config, &data);
    let after = points_at_least(&server, seen.len()).await;
    let kept: Vec<&str> = after.iter().filter_map(|p| p["at"].as_str()).collect();
    for at in &seen {
        assert!(kept.contains(&at.as_str()), "{at} was lost: {kept:?}");
    }
}

#[tokio::test]
async fn a_damaged_history_file_is_reported_and_kept_while_checks_go_on() {
    let target = Target::start(200);
    let dir = temp_dir("history-damaged");
    let config = config(&dir, target.port, "");
    let data = dir.join("data");
    std::fs::create_dir_all(&data).expect("data dir");
    let file = data.join("history.db");
    let garbage = b"this is not a SQLite database, it was damaged".repeat(100);
    std::fs::write(&file, &garbage).expect("write garbage");
    let server = Server::start(&config, &data);

    // Checks go on.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, health) = get(&format!(
            "{}/api/v1/connectors/web/health?cached=true",
            server.http
        ))
        .await;
        if health["status"] == "healthy" {
            break;
        }
        assert!(Instant::now() < deadline, "never checked: {health}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The API says the history is unavailable, without the path.
    let (status, body) = get(&format!("{}/api/v1/connectors/web/history", server.http)).await;
    assert_eq!(status, 503, "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("internal error (id"), "{body}");
    assert!(!message.contains("history.db"), "{body}");
    // The log names the file and says what to do.
    let log = server.log.lock().expect("log").join("\n");
    assert!(
        log.contains(&file.display().to_string()) && log.contains("move it aside"),
        "{log}"
    );
    drop(server);
    assert_eq!(
        std::fs::read(&file).expect("the file is still there"),
        garbage,
        "the damaged file was changed"
    );
}

#[tokio::test]
async fn history_turned_off_says_so() {
    let target = Target::start(200);
    let dir = temp_dir("history-off");
    let config = config(&dir, target.port, "history: {enabled: false}\n");
    let server = Server::start(&config, &dir.join("data"));
    let (status, body) = get(&format!("{}/api/v1/connectors/web/history", server.http)).await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("history.enabled: false"),
        "{body}"
    );
    assert!(!dir.join("data/history.db").exists());
    let (status, summary) = get(&format!("{}/api/v1/status", server.http)).await;
    assert_eq!(status, 200);
    assert_eq!(summary["history"], false, "{summary}");
    assert_eq!(summary["connectors"][0]["id"], "web", "{summary}");
}
