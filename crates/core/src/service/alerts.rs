//! The alerts (`sandport-alerts`) wired to the runtime: reported status
//! changes go to the engine, and its messages go out through the same
//! egress as a connector's requests, so a provider URL reaches only what a
//! connector with that endpoint could (its own origin; internal addresses
//! only when named exactly; metadata and link-local addresses never).

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use sandport_alerts::{Alerts, ConnectorRef, Transition, Transport};
use sandport_config::AlertsConfig;

use crate::budget::Budget;
use crate::egress::{CallUsage, Egress, HttpClient, Request};
use crate::observe::{CheckObserver, Checked};

/// The outbox's file name in the data directory.
pub const ALERTS_FILE: &str = "alerts.db";

/// How long one delivery may take, connection and answer.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// Starts the alerts on the outbox in `dir`. `None` (logged) when the
/// outbox cannot be used: the service runs on, without alerts.
pub fn start(config: AlertsConfig, dir: &Path, http: &HttpClient) -> Option<Alerts> {
    let transport = Arc::new(EgressTransport { http: http.clone() });
    match Alerts::start(config, &dir.join(ALERTS_FILE), transport) {
        Ok(alerts) => Some(alerts),
        Err(e) => {
            tracing::error!("{e}; the service runs without alerts");
            None
        }
    }
}

/// Tells the engine of every change of a reported status.
pub struct AlertFeed(pub Alerts);

impl CheckObserver for AlertFeed {
    fn checked(&self, check: &Checked<'_>) {
        let Checked {
            id,
            name,
            connector_type,
            tags,
            status: _,
            message,
            details,
            failure: _,
            latency: _,
            checked_at: _,
            reported,
            previous,
            since,
            message_changed: _,
        } = check;
        if reported == previous {
            return;
        }
        self.0.notify(Transition {
            connector: ConnectorRef {
                id: id.to_string(),
                name: name.to_string(),
                connector_type: connector_type.as_str().to_string(),
                tags: tags.to_vec(),
            },
            status: reported.as_str().to_string(),
            previous: previous.as_str().to_string(),
            message: message.to_string(),
            since: *since,
            details: details.to_vec(),
        });
    }
}

/// Sends each message through an egress built for its URL.
struct EgressTransport {
    http: HttpClient,
}

impl Transport for EgressTransport {
    fn post(
        &self,
        url: String,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    ) -> Pin<Box<dyn Future<Output = Result<u16, String>> + Send>> {
        let http = self.http.clone();
        Box::pin(async move {
            let parsed = url::Url::parse(&url).map_err(|_| "the provider's URL does not parse")?;
            // A webhook URL is a credential: errors never show it.
            let hide = |e: &dyn std::fmt::Display| {
                e.to_string()
                    .replace(parsed.as_str(), "the provider's URL")
                    .replace(&url, "the provider's URL")
            };
            let egress = Egress::for_url(&http, &parsed).map_err(|e| hide(&e))?;
            let mut headers = headers;
            if !headers
                .iter()
                .any(|(name, _)| name.eq_ignore_ascii_case("content-type"))
            {
                headers.push(("content-type".into(), "application/json".into()));
            }
            let request = egress
                .prepare(Request {
                    method: "POST".into(),
                    url: url.clone(),
                    headers,
                    body: Some(body),
                    timeout: Some(SEND_TIMEOUT),
                })
                .map_err(|e| hide(&e))?;
            let budget = Budget::new(SEND_TIMEOUT);
            let mut usage = CallUsage::default();
            let send = egress.send_prepared(&request, budget, &mut usage);
            match tokio::time::timeout(SEND_TIMEOUT, send).await {
                Ok(Ok(response)) => Ok(response.status),
                Ok(Err(e)) => Err(hide(&e)),
                Err(_) => Err(format!("no answer within {SEND_TIMEOUT:?}")),
            }
        })
    }
}

/// Why a test message could not be sent.
#[derive(Debug, thiserror::Error)]
pub enum AlertTestError {
    #[error("{0}")]
    UnknownRoute(String),
    #[error("alerting is unavailable: {0}")]
    Unavailable(String),
}

impl super::Service {
    /// Sends a test message to each provider of `route` now; each
    /// provider's HTTP status, or why there was none.
    pub async fn test_alert_route(
        &self,
        route: &str,
    ) -> Result<Vec<(String, Result<u16, String>)>, AlertTestError> {
        let Some(alerts) = self.alerts() else {
            return Err(AlertTestError::Unavailable(
                "the alert outbox could not be opened (see the service's log)".into(),
            ));
        };
        alerts.test_route(route).await.map_err(|e| match e {
            sandport_alerts::AlertsError::UnknownRoute { .. } => {
                AlertTestError::UnknownRoute(e.to_string())
            }
            other => AlertTestError::Unavailable(other.to_string()),
        })
    }
}
