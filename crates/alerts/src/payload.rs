//! A [`Message`] as each provider takes it: the webhook's JSON document,
//! Slack's and Discord's chat text, PagerDuty's Events v2 event. Guest text
//! goes through `escape` on its way into each.

use std::time::SystemTime;

use sandport_config::{Provider, ProviderType, format_time};
use serde_json::{Map, Value, json};

use crate::escape::{self, MAX_TEXT, json_bytes, one_line};
use crate::message::{Kind, Message};

/// An HTTP POST ready for the transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Request {
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Bounds on what a webhook document carries of the guest's text.
const MAX_WEBHOOK_TEXT: usize = 4096;
const MAX_DETAILS: usize = 50;
/// Chat messages quote fewer details, and Discord takes 2,000 characters.
const MAX_CHAT_DETAILS: usize = 5;
const DISCORD_LIMIT: usize = 2000;

/// Whether `provider_type` is sent messages of `kind`. PagerDuty re-notifies
/// on its own escalation policy, so reminders would only add noise.
pub(crate) fn takes(provider_type: ProviderType, kind: Kind) -> bool {
    !(provider_type == ProviderType::PagerDuty && kind == Kind::Reminder)
}

/// The request for `provider`, or `None` if it takes no message of this kind.
pub(crate) fn render(provider: &Provider, m: &Message, sent_at: SystemTime) -> Option<Request> {
    if !takes(provider.provider_type, m.kind) {
        return None;
    }
    let mut headers = vec![("Content-Type".to_string(), "application/json".to_string())];
    let body = match provider.provider_type {
        ProviderType::Webhook => {
            headers.extend(
                provider
                    .headers
                    .iter()
                    .map(|(k, v)| (k.clone(), v.expose().to_string())),
            );
            webhook(m, sent_at)
        }
        ProviderType::Slack => json!({ "text": chat(m, escape::slack, usize::MAX) }),
        ProviderType::Discord => json!({
            "content": chat(m, escape::discord, DISCORD_LIMIT),
            "allowed_mentions": { "parse": [] },
        }),
        ProviderType::PagerDuty => pagerduty(
            m,
            provider
                .routing_key
                .as_ref()
                .map(|k| k.expose())
                .unwrap_or(""),
        ),
    };
    Some(Request {
        url: provider.url.expose().to_string(),
        headers,
        body: json_bytes(&body),
    })
}

/// At most `max` characters of `text`, kept as it is otherwise.
fn bounded(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

fn webhook(m: &Message, sent_at: SystemTime) -> Value {
    let t = &m.event;
    let mut details = Map::new();
    for (k, v) in t.details.iter().take(MAX_DETAILS) {
        details.insert(
            bounded(k, MAX_TEXT),
            Value::String(bounded(v, MAX_WEBHOOK_TEXT)),
        );
    }
    json!({
        "alert_id": m.alert_id,
        "incident_id": m.incident_id,
        "kind": m.kind.as_str(),
        "route": m.route,
        "connector": {
            "id": t.connector.id,
            "name": bounded(&t.connector.name, MAX_TEXT),
            "type": t.connector.connector_type,
            "tags": t.connector.tags,
        },
        "status": t.status,
        "previous_status": t.previous,
        "message": bounded(&t.message, MAX_WEBHOOK_TEXT),
        "details": details,
        "since": format_time(t.since),
        "sent_at": format_time(sent_at),
    })
}

/// The chat text of a message, every outside value through `quote`; if it
/// comes out longer than `limit` characters, without the details.
fn chat(m: &Message, quote: fn(&str) -> String, limit: usize) -> String {
    let text = chat_text(m, quote, true);
    if text.chars().count() <= limit {
        return text;
    }
    let text = chat_text(m, quote, false);
    match text.char_indices().nth(limit) {
        // A cut can split an escape only at the very end, leaving a lone
        // `\` or `@` with nothing after it, which forms nothing.
        Some((cut, _)) => text[..cut].to_string(),
        None => text,
    }
}

fn chat_text(m: &Message, quote: fn(&str) -> String, with_details: bool) -> String {
    let t = &m.event;
    let name = quote(&t.connector.name);
    let status = quote(&t.status);
    let previous = quote(&t.previous);
    let since = format_time(t.since);
    let mut lines = vec![match m.kind {
        Kind::Firing => format!("🔴 FIRING: {name} is {status} (was {previous}) since {since}"),
        Kind::Reminder => format!("🔁 STILL FAILING: {name} is {status} since {since}"),
        Kind::Resolved => format!("✅ RESOLVED: {name} is {status} again (was {previous})"),
        Kind::Test => format!(
            "🧪 TEST: a test message from Sandport for route {}; no connector is affected",
            quote(&m.route)
        ),
    }];
    if m.kind != Kind::Test {
        lines.push(format!(
            "Connector {} of type {}",
            quote(&t.connector.id),
            quote(&t.connector.connector_type)
        ));
        lines.push(format!("Message: {}", quote(&t.message)));
        if with_details && !t.details.is_empty() {
            let shown: Vec<String> = t
                .details
                .iter()
                .take(MAX_CHAT_DETAILS)
                .map(|(k, v)| format!("{} = {}", quote(&one_line(k, 50)), quote(&one_line(v, 100))))
                .collect();
            let more = t.details.len().saturating_sub(MAX_CHAT_DETAILS);
            let more = if more > 0 {
                format!(" (and {more} more)")
            } else {
                String::new()
            };
            lines.push(format!("Details: {}{more}", shown.join(", ")));
        }
    }
    lines.push(format!(
        "Route {} · incident {} · alert {}",
        quote(&m.route),
        quote(&m.incident_id),
        quote(&m.alert_id)
    ));
    lines.join("\n")
}

fn pagerduty(m: &Message, routing_key: &str) -> Value {
    let t = &m.event;
    if m.kind == Kind::Resolved {
        return json!({
            "routing_key": routing_key,
            "event_action": "resolve",
            "dedup_key": m.incident_id,
        });
    }
    let (summary, severity) = match m.kind {
        Kind::Test => (
            format!(
                "TEST from Sandport for route {}: no connector is affected",
                m.route
            ),
            "info",
        ),
        _ => (
            format!(
                "{} ({}) is {}: {}",
                t.connector.name, t.connector.id, t.status, t.message
            ),
            "critical",
        ),
    };
    let details: Map<String, Value> = t
        .details
        .iter()
        .take(MAX_DETAILS)
        .map(|(k, v)| (bounded(k, MAX_TEXT), Value::String(bounded(v, 1024))))
        .collect();
    json!({
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": m.incident_id,
        "client": "Sandport",
        "payload": {
            // PagerDuty shows the summary as plain text and takes 1,024
            // characters of it.
            "summary": one_line(&summary, 1000),
            "source": one_line(&t.connector.id, MAX_TEXT),
            "severity": severity,
            "timestamp": format_time(t.since),
            "component": one_line(&t.connector.name, MAX_TEXT),
            "group": t.connector.connector_type,
            "class": t.status,
            "custom_details": {
                "alert_id": m.alert_id,
                "kind": m.kind.as_str(),
                "route": m.route,
                "previous_status": t.previous,
                "message": bounded(&t.message, MAX_WEBHOOK_TEXT),
                "tags": t.connector.tags,
                "details": details,
            },
        },
    })
}

#[cfg(test)]
mod tests;
