//! [`Alerts`]: the handle the host holds. It starts the engine task, hands
//! it transitions without waiting, swaps its config, sends test messages
//! and reads its counters.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use sandport_config::AlertsConfig;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::delivery::Tuning;
use crate::engine::{Command, Counters, Engine};
use crate::message::{Kind, Message, new_id};
use crate::outbox::Outbox;
use crate::payload::render;
use crate::{AlertStats, AlertsError, ConnectorRef, Transition, Transport};

/// Alerting, running. Cheap to clone; every clone drives the same engine,
/// which stops at [`Alerts::shutdown`] or when the last clone is dropped.
#[derive(Clone)]
pub struct Alerts {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Alerts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Alerts")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

struct Inner {
    commands: mpsc::Sender<Command>,
    config: watch::Sender<Arc<AlertsConfig>>,
    shutdown: watch::Sender<bool>,
    task: Mutex<Option<JoinHandle<()>>>,
    counters: Arc<Counters>,
    transport: Arc<dyn Transport>,
    tuning: Tuning,
}

impl Alerts {
    /// Opens (or creates) the outbox at `outbox` and starts the engine on
    /// the current tokio runtime. What the outbox holds is sent again and
    /// its open incidents stay open. A file that is not a sound outbox is
    /// an error naming it, and is left as it is.
    pub fn start(
        config: AlertsConfig,
        outbox: &Path,
        transport: Arc<dyn Transport>,
    ) -> Result<Alerts, AlertsError> {
        Self::start_with(config, outbox, transport, Tuning::default())
    }

    pub(crate) fn start_with(
        config: AlertsConfig,
        outbox: &Path,
        transport: Arc<dyn Transport>,
        tuning: Tuning,
    ) -> Result<Alerts, AlertsError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| AlertsError::NoRuntime)?;
        let outbox = Outbox::open(outbox)?;
        let (config_tx, config_rx) = watch::channel(Arc::new(config));
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let (commands_tx, commands_rx) = mpsc::channel(tuning.queue.max(1));
        let counters = Arc::new(Counters::default());
        let engine = Engine::load(
            outbox,
            config_rx,
            Arc::clone(&transport),
            Arc::clone(&counters),
            tuning,
        )?;
        let task = runtime.spawn(engine.run(commands_rx, shutdown_rx));
        Ok(Alerts {
            inner: Arc::new(Inner {
                commands: commands_tx,
                config: config_tx,
                shutdown: shutdown_tx,
                task: Mutex::new(Some(task)),
                counters,
                transport,
                tuning,
            }),
        })
    }

    /// Hands a change of status to the engine and returns at once. If the
    /// engine is that far behind (or stopped), the transition is dropped,
    /// counted in [`AlertStats::dropped`] and logged.
    pub fn notify(&self, transition: Transition) {
        let connector = transition.connector.id.clone();
        if let Err(e) = self
            .inner
            .commands
            .try_send(Command::Transition(Box::new(transition)))
        {
            let dropped = self.inner.counters.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            // Logged at 1, 2, 4, 8, ... so an overflow cannot flood the log.
            if dropped.is_power_of_two() {
                let why = match e {
                    mpsc::error::TrySendError::Full(_) => "its queue is full",
                    mpsc::error::TrySendError::Closed(_) => "it has stopped",
                };
                tracing::warn!(
                    %connector,
                    dropped,
                    "alerting dropped a status change because {why}"
                );
            }
        }
    }

    /// Closes the open incidents of a connector that no longer exists (it
    /// was removed), without a "resolved" message, so that no reminder is
    /// sent for it and a new connector with its id starts afresh. Like
    /// [`Alerts::notify`], it never waits.
    pub fn forget(&self, connector_id: &str) {
        let command = Command::Forget(connector_id.to_string());
        if self.inner.commands.try_send(command).is_err() {
            let dropped = self.inner.counters.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            tracing::warn!(
                connector = connector_id,
                dropped,
                "alerting could not take a removed connector; its incidents stay open"
            );
        }
    }

    /// Applies a new config: new routes and providers apply to the next
    /// transitions and to pending messages; incidents of removed routes are
    /// forgotten.
    pub fn reconfigure(&self, config: AlertsConfig) {
        self.inner.config.send_replace(Arc::new(config));
    }

    /// Sends a message marked as a test to each provider of `route` now,
    /// outside the outbox, and gives each provider's answer (the HTTP
    /// status, or why there was none) in the route's order.
    pub async fn test_route(
        &self,
        route: &str,
    ) -> Result<Vec<(String, Result<u16, String>)>, AlertsError> {
        if *self.inner.shutdown.borrow() {
            return Err(AlertsError::Stopped);
        }
        let config = Arc::clone(&self.inner.config.borrow());
        let Some(found) = config.route(route) else {
            let known: Vec<&str> = config.routes.iter().map(|r| r.name.as_str()).collect();
            return Err(AlertsError::UnknownRoute {
                name: route.to_string(),
                known: if known.is_empty() {
                    "none".into()
                } else {
                    known.join(", ")
                },
            });
        };
        let now = SystemTime::now();
        let incident_id = new_id();
        let mut sends = Vec::new();
        for name in &found.providers {
            let message = Message {
                alert_id: new_id(),
                incident_id: incident_id.clone(),
                kind: Kind::Test,
                route: found.name.clone(),
                provider: name.clone(),
                event: test_event(now),
            };
            let request = config
                .provider(name)
                .and_then(|provider| render(provider, &message, now));
            let transport = Arc::clone(&self.inner.transport);
            let timeout = self.inner.tuning.timeout;
            sends.push((
                name.clone(),
                tokio::spawn(async move {
                    let Some(request) = request else {
                        return Err("this provider is not configured".to_string());
                    };
                    let url = request.url.clone();
                    let send = transport.post(request.url, request.headers, request.body);
                    match tokio::time::timeout(timeout, send).await {
                        Ok(Ok(code)) => Ok(code),
                        Ok(Err(reason)) => Err(reason.replace(&url, "<provider url>")),
                        Err(_) => Err(format!("no answer within {}s", timeout.as_secs_f32())),
                    }
                }),
            ));
        }
        let mut answers = Vec::new();
        for (name, send) in sends {
            let answer = send
                .await
                .unwrap_or_else(|e| Err(format!("the send failed: {e}")));
            answers.push((name, answer));
        }
        Ok(answers)
    }

    pub fn stats(&self) -> AlertStats {
        self.inner.counters.snapshot()
    }

    /// Stops the engine and waits for it. Sends in flight are abandoned;
    /// every message not delivered stays in the outbox for the next start.
    pub async fn shutdown(&self) {
        self.inner.shutdown.send_replace(true);
        let task = self
            .inner
            .task
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        if let Some(task) = task
            && let Err(e) = task.await
            && e.is_panic()
        {
            tracing::error!("the alerting engine panicked: {e}");
        }
    }
}

/// What a test message says about "its" connector: none is involved.
fn test_event(now: SystemTime) -> Transition {
    Transition {
        connector: ConnectorRef {
            id: "sandport-test".into(),
            name: "Sandport test".into(),
            connector_type: "custom".into(),
            tags: Vec::new(),
        },
        status: "test".into(),
        previous: "test".into(),
        message: "This is a test message sent by an operator; no connector is affected.".into(),
        since: now,
        details: Vec::new(),
    }
}
