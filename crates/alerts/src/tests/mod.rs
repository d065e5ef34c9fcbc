//! Tests of the engine through [`Alerts`], with a recording [`Transport`]
//! that can be told to fail, refuse or hang per URL. Short delays stand in
//! for the real ones; every wait is for a condition, with a generous
//! timeout, never for a time.

mod engine;
mod outbox;

use std::collections::HashMap;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use sandport_config::{
    AlertsConfig, ConnectorType, MaintenanceWindow, Match, Provider, ProviderType, Route, Schedule,
    Secret,
};
use serde_json::Value;

use crate::delivery::Tuning;
use crate::{AlertStats, Alerts, ConnectorRef, Transition, Transport};

/// How the fake receiver at one URL answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Answer(u16),
    /// No connection: the transport's error.
    Unreachable,
    /// Never answers (the send times out).
    Hang,
}

/// One POST the receiver saw.
#[derive(Debug, Clone)]
struct Received {
    url: String,
    body: Value,
    headers: Vec<(String, String)>,
    /// Whether it answered 2xx.
    accepted: bool,
}

impl Received {
    fn field(&self, key: &str) -> String {
        self.body[key].as_str().unwrap_or_default().to_string()
    }
}

#[derive(Default)]
struct Recorder {
    received: Mutex<Vec<Received>>,
    modes: Mutex<HashMap<String, Mode>>,
}

impl Recorder {
    fn new() -> Arc<Recorder> {
        Arc::new(Recorder::default())
    }

    fn set(&self, url: &str, mode: Mode) {
        self.modes.lock().unwrap().insert(url.to_string(), mode);
    }

    fn all(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// Messages a receiver took (2xx), in order.
    fn accepted(&self) -> Vec<Received> {
        self.all().into_iter().filter(|r| r.accepted).collect()
    }

    fn accepted_kinds(&self, connector: &str) -> Vec<String> {
        self.accepted()
            .iter()
            .filter(|r| r.body["connector"]["id"] == connector)
            .map(|r| r.field("kind"))
            .collect()
    }
}

impl Transport for Recorder {
    fn post(
        &self,
        url: String,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    ) -> Pin<Box<dyn Future<Output = Result<u16, String>> + Send>> {
        let mode = self
            .modes
            .lock()
            .unwrap()
            .get(&url)
            .copied()
            .unwrap_or(Mode::Answer(200));
        let body = serde_json::from_slice(&body).expect("every body is JSON");
        let accepted = matches!(mode, Mode::Answer(200..=299));
        self.received.lock().unwrap().push(Received {
            url: url.clone(),
            body,
            headers,
            accepted,
        });
        match mode {
            Mode::Answer(code) => Box::pin(async move { Ok(code) }),
            Mode::Unreachable => Box::pin(async move { Err(format!("connection refused: {url}")) }),
            Mode::Hang => Box::pin(std::future::pending()),
        }
    }
}

const HOOK: &str = "https://hooks.example.com/hook";

fn tuning() -> Tuning {
    Tuning {
        timeout: Duration::from_secs(5),
        first_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(50),
        ..Tuning::default()
    }
}

fn webhook(name: &str, url: &str) -> Provider {
    Provider {
        name: name.into(),
        provider_type: ProviderType::Webhook,
        url: Secret::new(url),
        headers: Default::default(),
        routing_key: None,
    }
}

fn route(name: &str, providers: &[&str]) -> Route {
    Route {
        name: name.into(),
        matcher: Match::default(),
        providers: providers.iter().map(|p| p.to_string()).collect(),
        send_on_resolved: true,
        repeat_interval: None,
    }
}

/// One webhook provider `hook` and one route `all` covering every
/// connector.
fn config() -> AlertsConfig {
    AlertsConfig {
        providers: vec![webhook("hook", HOOK)],
        routes: vec![route("all", &["hook"])],
        maintenance: Vec::new(),
    }
}

fn maintenance_now(ids: &[&str]) -> MaintenanceWindow {
    let now = SystemTime::now();
    MaintenanceWindow {
        name: "now".into(),
        matcher: Match {
            ids: ids.iter().map(|i| i.to_string()).collect(),
            types: vec![ConnectorType::Database],
            tags: Vec::new(),
        },
        schedule: Schedule::Once {
            start: now - Duration::from_secs(3600),
            end: now + Duration::from_secs(3600),
        },
    }
}

fn transition(id: &str, previous: &str, status: &str) -> Transition {
    Transition {
        connector: ConnectorRef {
            id: id.into(),
            name: format!("{id} server"),
            connector_type: "database".into(),
            tags: vec!["prod".into()],
        },
        status: status.into(),
        previous: previous.into(),
        message: format!("{id} is {status}"),
        since: SystemTime::now(),
        details: vec![("attempt".into(), "1".into())],
    }
}

fn start(config: AlertsConfig, outbox: &Path, transport: &Arc<Recorder>) -> Alerts {
    let transport: Arc<dyn Transport> = transport.clone();
    Alerts::start_with(config, outbox, transport, tuning()).expect("alerts start")
}

/// Waits until `done` holds, polling; fails after a minute.
async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Waits until nothing is pending and `done` holds.
async fn settle(alerts: &Alerts, what: &str, mut done: impl FnMut(AlertStats) -> bool) {
    wait_for(what, || {
        let stats = alerts.stats();
        stats.pending == 0 && done(stats)
    })
    .await;
}
