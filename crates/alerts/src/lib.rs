//! Alerting: a connector's change of status becomes messages to the
//! providers of each route that covers it (webhook, Slack, Discord,
//! PagerDuty), kept in a SQLite outbox until a provider takes them.
//!
//! The host calls [`Alerts::notify`] with each [`Transition`]; nothing on
//! its side waits for a provider. A failing connector opens one incident
//! per matching route ("firing"), passing again closes it ("resolved"),
//! and a route's `repeat_interval` sends reminders in between. Open
//! incidents and undelivered messages live in the outbox, so a restart
//! neither alerts twice nor forgets to resolve, and redelivers what was
//! pending with the same `alert_id` (delivery is at least once; receivers
//! de-duplicate on `alert_id`). Messages leave through the host's
//! [`Transport`], so they pass its egress rules.
//!
//! Layout:
//! - this file: the types the host codes against;
//! - `handle`: [`Alerts`], the handle (start, notify, reconfigure, test,
//!   stats, shutdown);
//! - `engine`: the one task that turns transitions into incidents and
//!   messages, and sends reminders;
//! - `delivery`: sending queued messages: concurrency per provider,
//!   timeouts, backoff, what counts as delivered;
//! - `outbox`: the SQLite file of pending messages and open incidents;
//! - `message`: a queued message and its stored form;
//! - `payload`: a message in each provider's format, with `escape`
//!   keeping a guest's text from forming mentions, links or markup.
#![forbid(unsafe_code)]

mod delivery;
mod engine;
mod escape;
mod handle;
mod message;
mod outbox;
mod payload;

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::SystemTime;

pub use handle::Alerts;
pub use sandport_config::AlertsConfig;

/// The connector a transition is about, as routes and maintenance windows
/// match it. `name` is whatever the connector's entry says and is treated
/// as hostile text in every message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectorRef {
    pub id: String,
    pub name: String,
    pub connector_type: String,
    pub tags: Vec<String>,
}

/// A change of a connector's reported status. Statuses: `healthy` and
/// `degraded` pass; `unhealthy` and `unavailable` fail; `unknown` means not
/// checked yet (as after a start). `message` and `details` come from the
/// guest and are hostile text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub connector: ConnectorRef,
    pub status: String,
    pub previous: String,
    pub message: String,
    /// When the connector entered `status`.
    pub since: SystemTime,
    pub details: Vec<(String, String)>,
}

/// How the host sends a message: an HTTP POST through its vetted egress.
/// The answer is the HTTP status code, or why no answer came. The error
/// text is logged; the URL in it is replaced before logging, since webhook
/// URLs are credentials.
pub trait Transport: Send + Sync + 'static {
    fn post(
        &self,
        url: String,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    ) -> Pin<Box<dyn Future<Output = Result<u16, String>> + Send>>;
}

/// Counters since start; `pending` and `open_incidents` are current.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AlertStats {
    /// Messages in the outbox, not delivered yet.
    pub pending: u64,
    /// Messages a provider accepted (2xx).
    pub sent: u64,
    /// Attempts that failed and were scheduled again.
    pub retries: u64,
    /// Messages given up: refused (4xx other than 408 and 429), undeliverable
    /// for 24 hours, or for a provider no longer configured.
    pub failed: u64,
    /// Transitions dropped because the engine's queue was full (or it had
    /// stopped), and messages not queued because the outbox held its
    /// maximum (100,000).
    pub dropped: u64,
    /// Incidents open now, over all routes.
    pub open_incidents: u64,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AlertsError {
    #[error(
        "the alert outbox {path} is damaged ({reason}); move it aside (pending alerts in it are lost) and restart to create a new one"
    )]
    Damaged { path: PathBuf, reason: String },
    #[error(
        "the alert outbox {path} was written by a newer Sandport (schema {found}, this one knows {known}); upgrade, or move the file aside"
    )]
    NewerSchema {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error(
        "cannot open the alert outbox {path}: {source}; check that its directory exists and is writable"
    )]
    Outbox {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("alerts must start inside a tokio runtime")]
    NoRuntime,
    #[error("no alert route is named `{name}`; routes: {known}")]
    UnknownRoute { name: String, known: String },
    #[error("alerting has stopped")]
    Stopped,
}

/// Whether a status passes, fails, or says nothing yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Health {
    Pass,
    Fail,
    Unknown,
}

impl Health {
    pub(crate) fn of(status: &str) -> Health {
        match status {
            "healthy" | "degraded" => Health::Pass,
            "unhealthy" | "unavailable" => Health::Fail,
            _ => Health::Unknown,
        }
    }
}

#[cfg(test)]
mod tests;
