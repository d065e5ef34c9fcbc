//! A queued message ([`Message`]) and the JSON it is stored as in the
//! outbox, new ids, and times as stored (milliseconds since 1970).
//!
//! The stored form holds no provider URL, header or key: those are read
//! from the config when the message is sent, so no secret is written to
//! disk and a changed URL applies to what is still pending.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::{ConnectorRef, Transition};

/// What a message says about its incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Firing,
    Resolved,
    Reminder,
    Test,
}

impl Kind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Kind::Firing => "firing",
            Kind::Resolved => "resolved",
            Kind::Reminder => "reminder",
            Kind::Test => "test",
        }
    }

    fn parse(text: &str) -> Option<Kind> {
        [Kind::Firing, Kind::Resolved, Kind::Reminder, Kind::Test]
            .into_iter()
            .find(|k| k.as_str() == text)
    }
}

/// One message for one provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Message {
    /// Unique per message; kept across redeliveries.
    pub alert_id: String,
    /// Shared by the firing, reminders and resolved of one incident.
    pub incident_id: String,
    pub kind: Kind,
    pub route: String,
    pub provider: String,
    /// The transition that caused it (for a reminder: the latest failing one).
    pub event: Transition,
}

impl Message {
    pub(crate) fn to_json(&self) -> String {
        json!({
            "alert_id": self.alert_id,
            "incident_id": self.incident_id,
            "kind": self.kind.as_str(),
            "route": self.route,
            "provider": self.provider,
            "event": event_to_json(&self.event),
        })
        .to_string()
    }

    pub(crate) fn from_json(text: &str) -> Result<Message, String> {
        let value: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let kind = text_at(&value, "kind")?;
        Ok(Message {
            alert_id: text_at(&value, "alert_id")?,
            incident_id: text_at(&value, "incident_id")?,
            kind: Kind::parse(&kind).ok_or_else(|| format!("unknown kind `{kind}`"))?,
            route: text_at(&value, "route")?,
            provider: text_at(&value, "provider")?,
            event: event_from_value(value.get("event").unwrap_or(&Value::Null))?,
        })
    }
}

fn text_at(value: &Value, key: &str) -> Result<String, String> {
    value
        .get(key)
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| format!("no `{key}`"))
}

pub(crate) fn event_to_json(t: &Transition) -> Value {
    json!({
        "connector": {
            "id": t.connector.id,
            "name": t.connector.name,
            "type": t.connector.connector_type,
            "tags": t.connector.tags,
        },
        "status": t.status,
        "previous": t.previous,
        "message": t.message,
        "since": to_millis(t.since),
        "details": t.details.iter().map(|(k, v)| json!([k, v])).collect::<Vec<_>>(),
    })
}

pub(crate) fn event_from_value(value: &Value) -> Result<Transition, String> {
    let connector = value.get("connector").ok_or("no `connector`")?;
    let strings = |v: Option<&Value>| -> Vec<String> {
        v.and_then(Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .filter_map(|i| i.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let details = value
        .get("details")
        .and_then(Value::as_array)
        .map(|pairs| {
            pairs
                .iter()
                .filter_map(|pair| {
                    let pair = strings(Some(pair));
                    match &pair[..] {
                        [k, v] => Some((k.clone(), v.clone())),
                        _ => None,
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(Transition {
        connector: ConnectorRef {
            id: text_at(connector, "id")?,
            name: text_at(connector, "name")?,
            connector_type: text_at(connector, "type")?,
            tags: strings(connector.get("tags")),
        },
        status: text_at(value, "status")?,
        previous: text_at(value, "previous")?,
        message: text_at(value, "message")?,
        since: from_millis(value.get("since").and_then(Value::as_i64).unwrap_or(0)),
        details,
    })
}

pub(crate) fn to_millis(at: SystemTime) -> i64 {
    match at.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX),
    }
}

pub(crate) fn from_millis(ms: i64) -> SystemTime {
    let magnitude = Duration::from_millis(ms.unsigned_abs());
    if ms >= 0 {
        UNIX_EPOCH + magnitude
    } else {
        UNIX_EPOCH - magnitude
    }
}

/// 128 random bits as 32 hex digits. Without the OS's randomness (which
/// does not happen on the platforms Sandport runs on) it falls back to the
/// time and a counter, which are still unique within one process.
pub(crate) fn new_id() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let count = COUNTER.fetch_add(1, Ordering::Relaxed);
        bytes[..8].copy_from_slice(&(nanos as u64).to_be_bytes());
        bytes[8..].copy_from_slice(&(count ^ u64::from(std::process::id())).to_be_bytes());
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A number in `0..1` for jitter.
pub(crate) fn random_fraction() -> f64 {
    match getrandom::u64() {
        Ok(n) => (n >> 11) as f64 / (1u64 << 53) as f64,
        Err(_) => 0.5,
    }
}
