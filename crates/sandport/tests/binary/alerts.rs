//! Alerts through the binary, with local receivers: one alert when a
//! connector goes down (after its threshold), one when it recovers, none
//! for flapping below the threshold or during maintenance; a receiver that
//! is down gets the alert later, and a restart in between delivers it once
//! by id. Guest text reaches Slack and Discord without forming a mention
//! or a link.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::support::{Server, Target, guest_wasm, temp_dir, write};

/// A webhook receiver: keeps every POST it accepted, answers with the
/// status set (503 to act as a receiver that is down).
#[derive(Clone)]
struct Receiver {
    port: u16,
    status: Arc<AtomicU16>,
    accepted: Arc<Mutex<Vec<(String, Value)>>>,
    refused: Arc<Mutex<usize>>,
}

impl Receiver {
    fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let receiver = Receiver {
            port: listener.local_addr().expect("addr").port(),
            status: Arc::new(AtomicU16::new(200)),
            accepted: Arc::default(),
            refused: Arc::default(),
        };
        let shared = receiver.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let shared = shared.clone();
                std::thread::spawn(move || shared.serve(stream));
            }
        });
        receiver
    }

    fn serve(&self, mut stream: std::net::TcpStream) {
        let mut reader = BufReader::new(stream.try_clone().expect("clone"));
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).is_err() {
            return;
        }
        let path = request_line
            .split_whitespace()
            .nth(1)
            .unwrap_or("/")
            .to_string();
        let mut length = 0;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() || line.trim().is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; length];
        let _ = reader.read_exact(&mut body);
        let status = self.status.load(Ordering::SeqCst);
        if status == 200 {
            let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
            self.accepted.lock().expect("accepted").push((path, json));
        } else {
            *self.refused.lock().expect("refused") += 1;
        }
        let _ = write!(
            stream,
            "HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
        );
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The accepted webhook messages of `kind` (firing, resolved, ...).
    fn of_kind(&self, kind: &str) -> Vec<Value> {
        self.accepted
            .lock()
            .expect("accepted")
            .iter()
            .filter(|(path, body)| path == "/hook" && body["kind"] == kind)
            .map(|(_, body)| body.clone())
            .collect()
    }

    fn wait_for(&self, kind: &str, n: usize, within: Duration) -> Vec<Value> {
        let deadline = Instant::now() + within;
        loop {
            let found = self.of_kind(kind);
            if found.len() >= n {
                return found;
            }
            assert!(
                Instant::now() < deadline,
                "{n} `{kind}` alert(s) never came; accepted: {:?}",
                self.accepted.lock().map(|a| a.clone())
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn config(dir: &Path, receiver: &Receiver, target: &Target, extra: &str) -> PathBuf {
    write(
        dir,
        "connectors.yaml",
        &format!(
            "alerts:\n  providers:\n    - {{name: hook, type: webhook, url: \"{}\"}}\n  routes:\n    - {{name: all, providers: [hook], send_on_resolved: true}}\n{extra}connectors:\n  - {{id: web, component: http, host: 127.0.0.1, port: {}, health_check: {{interval: 1s, timeout: 1s, failure_threshold: 3}}}}\n",
            receiver.url("/hook"),
            target.port
        ),
    )
}

/// Waits until the cached reported status is `status`.
async fn reported(server: &Server, status: &str) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let body: Value = reqwest::get(format!(
            "{}/api/v1/connectors/web/health?cached=true",
            server.http
        ))
        .await
        .expect("GET health")
        .json()
        .await
        .expect("JSON");
        if body["status"] == status {
            return;
        }
        assert!(Instant::now() < deadline, "never {status}: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn down_fires_once_after_the_threshold_and_up_resolves_once() {
    let receiver = Receiver::start();
    let target = Target::start(200);
    let dir = temp_dir("alerts-down-up");
    let server = Server::start(&config(&dir, &receiver, &target, ""), &dir.join("data"));
    reported(&server, "healthy").await;

    // Flapping below the threshold (two failures, then a pass) fires nothing.
    for _ in 0..3 {
        target.set_status(503);
        tokio::time::sleep(Duration::from_millis(1500)).await;
        target.set_status(200);
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
    assert!(
        receiver.of_kind("firing").is_empty(),
        "flapping fired: {:?}",
        receiver.of_kind("firing")
    );

    target.set_status(503);
    reported(&server, "unhealthy").await;
    let firing = receiver.wait_for("firing", 1, Duration::from_secs(15));
    assert_eq!(firing[0]["connector"]["id"], "web");
    assert_eq!(firing[0]["status"], "unhealthy");
    assert_eq!(firing[0]["previous_status"], "healthy");
    assert!(firing[0]["message"].as_str().unwrap_or("").contains("503"));
    for key in ["alert_id", "incident_id", "since", "sent_at"] {
        assert!(firing[0][key].is_string(), "{key} in {}", firing[0]);
    }

    target.set_status(200);
    let resolved = receiver.wait_for("resolved", 1, Duration::from_secs(15));
    assert_eq!(resolved[0]["incident_id"], firing[0]["incident_id"]);
    assert_ne!(resolved[0]["alert_id"], firing[0]["alert_id"]);
    // Still down for a while longer would not repeat (no repeat_interval).
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(receiver.of_kind("firing").len(), 1);
    assert_eq!(receiver.of_kind("resolved").len(), 1);
}

#[tokio::test]
async fn a_maintenance_window_silences_the_route() {
    let receiver = Receiver::start();
    let target = Target::start(503);
    let dir = temp_dir("alerts-maintenance");
    let now = std::time::SystemTime::now();
    let window = format!(
        "  maintenance:\n    - {{name: now, match: {{ids: [web]}}, start: \"{}\", end: \"{}\"}}\n",
        humantime::format_rfc3339_seconds(now - Duration::from_secs(3600)),
        humantime::format_rfc3339_seconds(now + Duration::from_secs(3600)),
    );
    // The window goes inside `alerts:`, after the routes.
    let path = config(&dir, &receiver, &target, "");
    let text = std::fs::read_to_string(&path).expect("config");
    let text = text.replacen("connectors:\n", &format!("{window}connectors:\n"), 1);
    std::fs::write(&path, text).expect("write config");
    let server = Server::start(&path, &dir.join("data"));
    reported(&server, "unhealthy").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        receiver.accepted.lock().expect("accepted").is_empty(),
        "an alert during maintenance: {:?}",
        receiver.accepted.lock().map(|a| a.clone())
    );
}

#[tokio::test]
async fn a_receiver_that_is_down_gets_the_alert_later_once_even_across_a_restart() {
    let receiver = Receiver::start();
    receiver.status.store(503, Ordering::SeqCst);
    let target = Target::start(503);
    let dir = temp_dir("alerts-outbox");
    let config = config(&dir, &receiver, &target, "");
    let data = dir.join("data");
    let server = Server::start(&config, &data);
    reported(&server, "unhealthy").await;
    // Refused at least once: the alert is in the outbox.
    let deadline = Instant::now() + Duration::from_secs(15);
    while *receiver.refused.lock().expect("refused") == 0 {
        assert!(Instant::now() < deadline, "no delivery was tried");
        std::thread::sleep(Duration::from_millis(100));
    }
    server.kill_9();

    receiver.status.store(200, Ordering::SeqCst);
    let server = Server::start(&config, &data);
    let firing = receiver.wait_for("firing", 1, Duration::from_secs(30));
    // The connector is still down after the restart: no second incident.
    reported(&server, "unhealthy").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let firing_again = receiver.of_kind("firing");
    assert_eq!(firing_again.len(), 1, "{firing_again:?}");
    assert_eq!(firing_again[0]["alert_id"], firing[0]["alert_id"]);
}

#[tokio::test]
async fn guest_text_forms_no_mention_or_link_in_slack_or_discord() {
    let receiver = Receiver::start();
    let target = Target::start(503);
    let dir = temp_dir("alerts-hostile");
    std::fs::copy(
        guest_wasm("sandport_guest_hostile"),
        dir.join("hostile.wasm"),
    )
    .expect("copy guest");
    let hostile = "<!channel> @everyone <@U123> [x](http://evil.example) <http://evil.example|click> <script>alert(1)</script> javascript:alert(1)";
    let config = write(
        &dir,
        "connectors.yaml",
        &format!(
            "alerts:\n  providers:\n    - {{name: slack, type: slack, url: \"{}\"}}\n    - {{name: discord, type: discord, url: \"{}\"}}\n    - {{name: hook, type: webhook, url: \"{}\"}}\n  routes:\n    - {{providers: [slack, discord, hook]}}\nconnectors:\n  - id: web\n    component: ./hostile.wasm\n    host: 127.0.0.1\n    port: {}\n    health_check: {{interval: 1s, timeout: 1s}}\n    settings: {{mode: say, url: 'http://127.0.0.1:{}/', message: '{hostile}', detail_key: '<@here>', detail: '[y](http://evil.example)'}}\n",
            receiver.url("/slack"),
            receiver.url("/discord"),
            receiver.url("/hook"),
            target.port,
            target.port,
        ),
    );
    let server = Server::start(&config, &dir.join("data"));
    reported(&server, "unhealthy").await;
    receiver.wait_for("firing", 1, Duration::from_secs(15));
    let deadline = Instant::now() + Duration::from_secs(15);
    let (slack, discord) = loop {
        let accepted = receiver.accepted.lock().expect("accepted").clone();
        let find = |path: &str| {
            accepted
                .iter()
                .find(|(p, _)| p == path)
                .map(|(_, b)| b.clone())
        };
        if let (Some(slack), Some(discord)) = (find("/slack"), find("/discord")) {
            break (slack, discord);
        }
        assert!(Instant::now() < deadline, "slack and discord: {accepted:?}");
        std::thread::sleep(Duration::from_millis(100));
    };
    let text = slack["text"].as_str().expect("slack text");
    for formed in ["<!channel>", "<@U123>", "<http", "<!here", "<@here>"] {
        assert!(!text.contains(formed), "slack formed {formed}: {text}");
    }
    assert!(
        text.contains("&lt;!channel&gt;"),
        "the text is kept, escaped: {text}"
    );
    let content = discord["content"].as_str().expect("discord content");
    assert_eq!(discord["allowed_mentions"]["parse"], Value::Array(vec![]));
    for formed in ["@everyone", "](http", "<@U123>"] {
        assert!(
            !content.contains(formed) || content.contains(&format!("\\{formed}")),
            "discord formed {formed}: {content}"
        );
    }
    assert!(!content.contains("[x](http"), "a masked link: {content}");
    // The webhook carries the text as JSON text, exactly.
    let hook = receiver.of_kind("firing");
    assert_eq!(hook[0]["message"], hostile);
    drop(server);
}
