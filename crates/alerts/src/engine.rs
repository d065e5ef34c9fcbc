//! The engine: one task that owns the open incidents and the send queue.
//! It turns each [`Transition`] into incidents opened or closed and
//! messages queued, sends reminders, applies a new config, and settles
//! finished sends. Every change is written to the outbox (on a blocking
//! thread) before the messages it queues are sent.
//!
//! Per route and connector: passing -> failing opens an incident and fires
//! (unless a maintenance window covering the connector is active);
//! failing -> failing only refreshes what reminders say; unknown -> failing
//! opens one only if none is open; passing again (from any status) closes
//! every incident of the connector and, where the route says so, sends
//! "resolved". An unknown status (not checked yet) changes nothing.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use sandport_config::{AlertsConfig, Route};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::delivery::{Outcome, Queue, Settled, Step, Tuning};
use crate::message::{Kind, Message, new_id};
use crate::outbox::{Incident, Outbox};
use crate::payload::takes;
use crate::{AlertStats, AlertsError, Health, Transition, Transport};

pub(crate) enum Command {
    Transition(Box<Transition>),
    /// Close the connector's incidents without a message.
    Forget(String),
}

/// The counters behind [`AlertStats`], shared with the handle.
#[derive(Default)]
pub(crate) struct Counters {
    pub pending: AtomicU64,
    pub sent: AtomicU64,
    pub retries: AtomicU64,
    pub failed: AtomicU64,
    pub dropped: AtomicU64,
    pub open_incidents: AtomicU64,
}

impl Counters {
    pub(crate) fn snapshot(&self) -> AlertStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        AlertStats {
            pending: get(&self.pending),
            sent: get(&self.sent),
            retries: get(&self.retries),
            failed: get(&self.failed),
            dropped: get(&self.dropped),
            open_incidents: get(&self.open_incidents),
        }
    }

    fn add(counter: &AtomicU64) -> u64 {
        counter.fetch_add(1, Ordering::Relaxed) + 1
    }
}

struct Open {
    incident: Incident,
    next_reminder: Option<Instant>,
}

/// Incidents by (route, connector id).
type Key = (String, String);

pub(crate) struct Engine {
    outbox: Outbox,
    config_rx: watch::Receiver<Arc<AlertsConfig>>,
    config: Arc<AlertsConfig>,
    queue: Queue,
    incidents: HashMap<Key, Open>,
    counters: Arc<Counters>,
}

/// When the reminder after `incident`'s last message is due under `route`.
fn reminder_at(incident: &Incident, route: &Route) -> Option<Instant> {
    let every = route.repeat_interval?;
    let due = incident.last_sent.checked_add(every)?;
    let wait = due.duration_since(SystemTime::now()).unwrap_or_default();
    Some(Instant::now() + wait)
}

impl Engine {
    /// Reads what the outbox holds: its messages are sent again, its
    /// incidents stay open (those of routes no longer configured are
    /// forgotten).
    pub(crate) fn load(
        outbox: Outbox,
        config_rx: watch::Receiver<Arc<AlertsConfig>>,
        transport: Arc<dyn Transport>,
        counters: Arc<Counters>,
        tuning: Tuning,
    ) -> Result<Engine, AlertsError> {
        let fail = |e| Outbox::error(outbox.path(), e);
        let pending = outbox.pending().map_err(fail)?;
        let incidents = outbox.incidents().map_err(fail)?;
        let config = Arc::clone(&config_rx.borrow());
        let mut queue = Queue::new(transport, tuning);
        if !pending.is_empty() {
            tracing::info!(
                outbox = %outbox.path().display(),
                "sending {} alert(s) left in the outbox",
                pending.len()
            );
        }
        for stored in pending {
            queue.push(stored.message, stored.queued_at);
        }
        let mut engine = Engine {
            outbox,
            config_rx,
            config,
            queue,
            incidents: HashMap::new(),
            counters,
        };
        for incident in incidents {
            let key = (incident.route.clone(), incident.connector.clone());
            engine.incidents.insert(
                key,
                Open {
                    incident,
                    next_reminder: None,
                },
            );
        }
        engine.schedule_reminders_or_forget(false);
        engine.publish();
        Ok(engine)
    }

    pub(crate) async fn run(
        mut self,
        mut commands: mpsc::Receiver<Command>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        loop {
            // Checked on every turn, not only when the timer fires, so that a
            // steady stream of transitions cannot starve the reminders.
            if self.next_reminder().is_some_and(|at| at <= Instant::now()) {
                self.remind_due().await;
            }
            for settled in self.queue.start_due(&self.config) {
                self.settle(settled).await;
            }
            self.publish();
            let wake = [self.queue.next_due(), self.next_reminder()]
                .into_iter()
                .flatten()
                .min();
            let sleep = async move {
                match wake {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                _ = shutdown.changed() => break,
                changed = self.config_rx.changed() => match changed {
                    Ok(()) => self.reconfigure().await,
                    Err(_) => break,
                },
                Some(step) = self.queue.next_finished(), if self.queue.sending() => match step {
                    Step::Retrying => { Counters::add(&self.counters.retries); }
                    Step::Settled(settled) => self.settle(*settled).await,
                },
                command = commands.recv() => match command {
                    Some(Command::Transition(t)) => self.on_transition(*t).await,
                    Some(Command::Forget(connector)) => self.forget(&connector).await,
                    None => break,
                },
                // What is due is done at the top of the loop.
                () = sleep => {}
            }
        }
        self.publish();
    }

    fn publish(&self) {
        let c = &self.counters;
        c.pending.store(self.queue.len() as u64, Ordering::Relaxed);
        c.open_incidents
            .store(self.incidents.len() as u64, Ordering::Relaxed);
    }

    fn next_reminder(&self) -> Option<Instant> {
        self.incidents
            .values()
            .filter_map(|o| o.next_reminder)
            .min()
    }

    /// Runs `write` on the outbox on a blocking thread. A failure is logged:
    /// the messages still go out from memory, but would not survive a
    /// restart.
    async fn write(
        &self,
        what: &'static str,
        write: impl FnOnce(&Outbox) -> rusqlite::Result<()> + Send + 'static,
    ) {
        let outbox = self.outbox.clone();
        let result = tokio::task::spawn_blocking(move || write(&outbox)).await;
        let error = match result {
            Ok(Ok(())) => return,
            Ok(Err(e)) => e.to_string(),
            Err(e) => e.to_string(),
        };
        tracing::error!(
            outbox = %self.outbox.path().display(),
            "could not {what} in the alert outbox: {error}; alerts still go out but would not survive a restart"
        );
    }

    /// One message per provider of `route` that takes `kind`.
    fn messages(
        &self,
        route: &Route,
        kind: Kind,
        incident_id: &str,
        event: &Transition,
    ) -> Vec<Message> {
        let mut out = Vec::new();
        for name in &route.providers {
            let Some(provider) = self.config.provider(name) else {
                continue;
            };
            if !takes(provider.provider_type, kind) {
                continue;
            }
            if out.len() >= self.queue.room() {
                let dropped = Counters::add(&self.counters.dropped);
                tracing::error!(
                    provider = %name,
                    route = %route.name,
                    connector = %event.connector.id,
                    dropped,
                    "the alert outbox is full; dropping a {} message",
                    kind.as_str()
                );
                continue;
            }
            out.push(Message {
                alert_id: new_id(),
                incident_id: incident_id.to_string(),
                kind,
                route: route.name.clone(),
                provider: name.clone(),
                event: event.clone(),
            });
        }
        out
    }

    fn enqueue(&mut self, messages: Vec<Message>, now: SystemTime) {
        for message in messages {
            self.queue.push(message, now);
        }
    }

    async fn on_transition(&mut self, t: Transition) {
        let now = SystemTime::now();
        let config = Arc::clone(&self.config);
        let c = &t.connector;
        match (Health::of(&t.status), Health::of(&t.previous)) {
            (Health::Fail, previous) => {
                let routes = config
                    .routes
                    .iter()
                    .filter(|r| r.matcher.matches(&c.id, &c.connector_type, &c.tags));
                for route in routes {
                    let key = (route.name.clone(), c.id.clone());
                    if let Some(open) = self.incidents.get_mut(&key) {
                        open.incident.event = t.clone();
                        let incident = open.incident.clone();
                        self.write("update an incident", move |o| {
                            o.save_incident(&incident, &[], now)
                        })
                        .await;
                        continue;
                    }
                    if previous == Health::Fail {
                        continue;
                    }
                    if config.in_maintenance(&c.id, &c.connector_type, &c.tags, now) {
                        tracing::info!(
                            connector = %c.id,
                            route = %route.name,
                            "connector is {} during a maintenance window; no alert",
                            t.status
                        );
                        continue;
                    }
                    let incident = Incident {
                        route: route.name.clone(),
                        connector: c.id.clone(),
                        incident_id: new_id(),
                        opened_at: now,
                        last_sent: now,
                        event: t.clone(),
                    };
                    let messages = self.messages(route, Kind::Firing, &incident.incident_id, &t);
                    tracing::info!(
                        connector = %c.id,
                        route = %route.name,
                        incident_id = %incident.incident_id,
                        "connector is {}; alerting {} provider(s)",
                        t.status,
                        messages.len()
                    );
                    let (saved, queued) = (incident.clone(), messages.clone());
                    self.write("open an incident", move |o| {
                        o.save_incident(&saved, &queued, now)
                    })
                    .await;
                    let next_reminder = reminder_at(&incident, route);
                    self.incidents.insert(
                        key,
                        Open {
                            incident,
                            next_reminder,
                        },
                    );
                    self.enqueue(messages, now);
                }
            }
            (Health::Pass, _) => {
                let keys: Vec<Key> = self
                    .incidents
                    .keys()
                    .filter(|(_, connector)| *connector == c.id)
                    .cloned()
                    .collect();
                for key in keys {
                    let Some(open) = self.incidents.remove(&key) else {
                        continue;
                    };
                    let incident_id = &open.incident.incident_id;
                    let messages = match config.route(&key.0) {
                        Some(route) if route.send_on_resolved => {
                            self.messages(route, Kind::Resolved, incident_id, &t)
                        }
                        _ => Vec::new(),
                    };
                    tracing::info!(
                        connector = %c.id,
                        route = %key.0,
                        incident_id = %incident_id,
                        "connector is {} again; incident closed, {} message(s)",
                        t.status,
                        messages.len()
                    );
                    let queued = messages.clone();
                    let (route, connector) = key;
                    self.write("close an incident", move |o| {
                        o.close_incident(&route, &connector, &queued, now)
                    })
                    .await;
                    self.enqueue(messages, now);
                }
            }
            (Health::Unknown, _) => {}
        }
    }

    async fn forget(&mut self, connector: &str) {
        let keys: Vec<Key> = self
            .incidents
            .keys()
            .filter(|(_, c)| c == connector)
            .cloned()
            .collect();
        for key in keys {
            self.incidents.remove(&key);
            tracing::info!(
                connector = %key.1,
                route = %key.0,
                "the connector is gone; its open incident is closed without a message"
            );
            let (route, connector) = key;
            self.write("forget an incident", move |o| {
                o.close_incident(&route, &connector, &[], SystemTime::now())
            })
            .await;
        }
    }

    async fn remind_due(&mut self) {
        let now = Instant::now();
        let wall = SystemTime::now();
        let config = Arc::clone(&self.config);
        let due: Vec<Key> = self
            .incidents
            .iter()
            .filter(|(_, o)| o.next_reminder.is_some_and(|at| at <= now))
            .map(|(k, _)| k.clone())
            .collect();
        for key in due {
            let route = config.route(&key.0);
            let Some(open) = self.incidents.get_mut(&key) else {
                continue;
            };
            let Some((route, every)) = route.and_then(|r| Some((r, r.repeat_interval?))) else {
                open.next_reminder = None;
                continue;
            };
            open.next_reminder = Some(now + every);
            let c = &open.incident.event.connector;
            if config.in_maintenance(&c.id, &c.connector_type, &c.tags, wall) {
                continue;
            }
            open.incident.last_sent = wall;
            let incident = open.incident.clone();
            let messages = self.messages(
                route,
                Kind::Reminder,
                &incident.incident_id,
                &incident.event,
            );
            let queued = messages.clone();
            self.write("queue a reminder", move |o| {
                o.save_incident(&incident, &queued, wall)
            })
            .await;
            self.enqueue(messages, wall);
        }
    }

    async fn reconfigure(&mut self) {
        self.config = Arc::clone(&self.config_rx.borrow_and_update());
        let forgotten = self.schedule_reminders_or_forget(true);
        for (route, connector) in forgotten {
            self.write("forget an incident", move |o| {
                o.close_incident(&route, &connector, &[], SystemTime::now())
            })
            .await;
        }
    }

    /// Sets each incident's next reminder under the current config and
    /// drops those whose route is gone (from the outbox too unless
    /// `deferred`, which returns them for the caller to delete).
    fn schedule_reminders_or_forget(&mut self, deferred: bool) -> Vec<Key> {
        let mut forgotten = Vec::new();
        let config = Arc::clone(&self.config);
        self.incidents
            .retain(|key, open| match config.route(&key.0) {
                Some(route) => {
                    open.next_reminder = reminder_at(&open.incident, route);
                    true
                }
                None => {
                    tracing::info!(
                        route = %key.0,
                        connector = %key.1,
                        "the alert route is gone; its open incident is forgotten"
                    );
                    forgotten.push(key.clone());
                    false
                }
            });
        if !deferred {
            for (route, connector) in forgotten.drain(..) {
                if let Err(e) =
                    self.outbox
                        .close_incident(&route, &connector, &[], SystemTime::now())
                {
                    tracing::error!(outbox = %self.outbox.path().display(), "could not forget an incident: {e}");
                }
            }
        }
        forgotten
    }

    async fn settle(&mut self, settled: Settled) {
        let Settled {
            message,
            outcome,
            gave_up,
        } = settled;
        let alert_id = message.alert_id.clone();
        self.write("delete a settled message", move |o| {
            o.delete_message(&alert_id)
        })
        .await;
        match outcome {
            Outcome::Delivered => {
                Counters::add(&self.counters.sent);
                tracing::debug!(
                    provider = %message.provider,
                    alert_id = %message.alert_id,
                    kind = message.kind.as_str(),
                    "alert delivered"
                );
            }
            Outcome::Refused(reason) | Outcome::Retry(reason) => {
                Counters::add(&self.counters.failed);
                let why = if gave_up {
                    "given up"
                } else {
                    "refused; not trying again"
                };
                tracing::error!(
                    provider = %message.provider,
                    alert_id = %message.alert_id,
                    kind = message.kind.as_str(),
                    connector = %message.event.connector.id,
                    "alert {why} ({reason})"
                );
            }
        }
    }
}
