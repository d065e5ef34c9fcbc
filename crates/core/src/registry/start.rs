//! Starting a connector: its component compiled, its egress built, an
//! instance made and initialised within the entry's health-check timeout.

use std::sync::{Arc, Mutex};

use sandport_config::ConnectorConfig;

use super::{Entry, Inner, RegisterError, Runtime};
use crate::budget::Budget;
use crate::egress::Egress;
use crate::health::{FailureKind, HealthSnapshot, one_line};
use crate::quarantine::Quarantine;
use crate::sandbox::{Guest, GuestError, GuestInfo, Prepared};

impl Runtime {
    /// Compiles, instantiates and initialises a connector, not yet visible.
    pub(super) async fn build_entry(
        &self,
        config: ConnectorConfig,
    ) -> Result<Arc<Entry>, RegisterError> {
        let id = config.id.clone();
        let prepared = self.prepare(&config).await?;
        let egress =
            Egress::new(&self.inner.http, &config).map_err(|e| RegisterError::Sandbox {
                id: id.clone(),
                message: e.to_string(),
            })?;
        // A start's budget counts from when it may run: loading thousands
        // of connectors at once would otherwise spend it queued behind the
        // others' starts.
        let _start = self.inner.starts.acquire().await;
        let budget = Budget::new(config.health_check.timeout);
        let counters = crate::metrics::ConnectorCounters::default();
        let (instance, info, health) = if config.enabled {
            let mut guest = start_guest(&self.inner, &prepared, &config, &egress, budget)
                .await
                .map_err(|e| match e {
                    StartError::Refused(message) => RegisterError::Initialize {
                        id: id.clone(),
                        message: one_line(&message),
                    },
                    StartError::Sandbox(e) => start_failed(&id, e),
                })?;
            let mut info = guest.info(budget).await.map_err(|e| start_failed(&id, e))?;
            // The operator's `type` is what lists and filters go by.
            info.connector_type = config.connector_type;
            // Its first check is an interval away, or never.
            guest.release_stack();
            counters.record_call(0, 0, Some(guest.memory_used()));
            let health = if config.health_check.enabled {
                HealthSnapshot::unknown()
            } else {
                HealthSnapshot {
                    message: "scheduled health checks are disabled".into(),
                    ..HealthSnapshot::unknown()
                }
            };
            (Some(guest), info, health)
        } else {
            let info = GuestInfo {
                name: config.name.clone(),
                description: config.description.clone(),
                connector_type: config.connector_type,
                endpoint: config.endpoint(),
            };
            (
                None,
                info,
                HealthSnapshot::unavailable("disabled in config"),
            )
        };
        Ok(Arc::new(Entry {
            key: Arc::from(config.id.as_str()),
            config,
            prepared,
            egress,
            info,
            instance: tokio::sync::Mutex::new(instance),
            health: Mutex::new(health),
            duty: Mutex::new(super::schedule::Duty::default()),
            quarantine: Mutex::new(Quarantine::default()),
            counters,
        }))
    }
}

pub(super) enum StartError {
    /// The guest's `initialize` returned an error.
    Refused(String),
    Sandbox(GuestError),
}

fn start_failed(id: &str, error: GuestError) -> RegisterError {
    let (id, message) = (id.to_string(), error.message);
    if error.kind == FailureKind::Deadline {
        RegisterError::StartTimedOut { id, message }
    } else {
        RegisterError::Sandbox { id, message }
    }
}

pub(super) async fn start_guest(
    inner: &Inner,
    prepared: &Prepared,
    config: &ConnectorConfig,
    egress: &Egress,
    budget: Budget,
) -> Result<Guest, StartError> {
    let mut guest = Guest::instantiate(&inner.sandbox, prepared, config, egress.clone(), budget)
        .await
        .map_err(StartError::Sandbox)?;
    match guest.initialize(config, budget).await {
        Ok(Ok(())) => Ok(guest),
        Ok(Err(message)) => Err(StartError::Refused(message)),
        Err(e) => Err(StartError::Sandbox(e)),
    }
}
