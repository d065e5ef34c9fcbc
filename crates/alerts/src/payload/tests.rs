//! Each provider's format, fed a connector whose name, message and details
//! were written by an attacker: valid JSON every time, the data kept where
//! the format is data (webhook, PagerDuty), and no mention, link or markup
//! formed where it is chat text (Slack, Discord).

use std::collections::BTreeMap;
use std::time::SystemTime;

use sandport_config::{Secret, parse_time};
use serde_json::Value;

use super::*;
use crate::escape;
use crate::{ConnectorRef, Transition};

const HOSTILE: &[&str] = &[
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "javascript:alert(1)",
    "<!channel> <!here> <@U123> <#C42>",
    "@everyone @here",
    "[x](http://evil)",
    "<http://evil|click>",
    "`code` *bold* _it_ ~strike~ ||spoiler|| > quote # head",
    "line\nbreak\r\n\u{2028}sep & amp",
    "\\[escaped](http://evil.example/\\)",
];

fn hostile_message(kind: Kind) -> Message {
    Message {
        alert_id: "a1b2".into(),
        incident_id: "c3d4".into(),
        kind,
        route: "prod-db".into(),
        provider: "p".into(),
        event: Transition {
            connector: ConnectorRef {
                id: "pg".into(),
                name: HOSTILE.join(" "),
                connector_type: "database".into(),
                tags: vec!["prod".into()],
            },
            status: "unhealthy".into(),
            previous: "healthy".into(),
            message: HOSTILE.join(" | "),
            since: parse_time("2026-12-24T02:00:00Z").unwrap(),
            details: HOSTILE
                .iter()
                .enumerate()
                .map(|(i, h)| (format!("{h}{i}"), h.to_string()))
                .collect(),
        },
    }
}

fn provider(provider_type: ProviderType) -> Provider {
    Provider {
        name: "p".into(),
        provider_type,
        url: Secret::new("https://hooks.example.com/secret-path"),
        headers: BTreeMap::from([("X-Key".to_string(), Secret::new("k-123"))]),
        routing_key: Some(Secret::new("rk-456")),
    }
}

const KINDS: [Kind; 4] = [Kind::Firing, Kind::Resolved, Kind::Reminder, Kind::Test];

/// The request's body, checked to be JSON with no raw `<`, `>` or `&`.
fn body(request: &Request) -> Value {
    let text = std::str::from_utf8(&request.body).unwrap();
    for c in ['<', '>', '&', '\u{2028}'] {
        assert!(!text.contains(c), "raw {c:?} in {text}");
    }
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

fn sent(provider_type: ProviderType, kind: Kind) -> (Request, Value) {
    let request = render(
        &provider(provider_type),
        &hostile_message(kind),
        SystemTime::now(),
    )
    .unwrap_or_else(|| panic!("{provider_type} takes {kind:?}"));
    let value = body(&request);
    (request, value)
}

#[test]
fn webhook_keeps_the_data_exactly_and_escapes_it_as_json() {
    let at = parse_time("2026-12-24T03:00:00Z").unwrap();
    for kind in KINDS {
        let m = hostile_message(kind);
        let request = render(&provider(ProviderType::Webhook), &m, at).unwrap();
        let v = body(&request);
        assert_eq!(request.url, "https://hooks.example.com/secret-path");
        assert!(request.headers.contains(&("X-Key".into(), "k-123".into())));
        assert!(
            request
                .headers
                .contains(&("Content-Type".into(), "application/json".into()))
        );
        assert_eq!(v["alert_id"], "a1b2");
        assert_eq!(v["incident_id"], "c3d4");
        assert_eq!(v["kind"], kind.as_str());
        assert_eq!(v["connector"]["id"], "pg");
        assert_eq!(v["connector"]["name"], m.event.connector.name.as_str());
        assert_eq!(v["connector"]["type"], "database");
        assert_eq!(v["connector"]["tags"], serde_json::json!(["prod"]));
        assert_eq!(v["status"], "unhealthy");
        assert_eq!(v["previous_status"], "healthy");
        assert_eq!(v["message"], m.event.message.as_str());
        for (k, value) in &m.event.details {
            assert_eq!(v["details"][k], value.as_str());
        }
        assert_eq!(v["since"], "2026-12-24T02:00:00Z");
        assert_eq!(v["sent_at"], "2026-12-24T03:00:00Z");
    }
}

#[test]
fn webhook_bounds_what_it_quotes() {
    let mut m = hostile_message(Kind::Firing);
    m.event.message = "x".repeat(100_000);
    m.event.details = (0..500)
        .map(|i| (format!("k{i}"), "v".repeat(10_000)))
        .collect();
    let request = render(&provider(ProviderType::Webhook), &m, SystemTime::now()).unwrap();
    assert!(request.body.len() < 300_000, "{}", request.body.len());
    let v = body(&request);
    assert_eq!(v["details"].as_object().unwrap().len(), 50);
}

/// The parts of a Slack text outside code spans.
fn outside_code(text: &str) -> Vec<&str> {
    text.split('`').step_by(2).collect()
}

#[test]
fn slack_text_forms_no_mention_link_or_formatting() {
    for kind in KINDS {
        let (_, v) = sent(ProviderType::Slack, kind);
        let text = v["text"].as_str().unwrap();
        assert_eq!(v.as_object().unwrap().len(), 1, "{v}");
        // No `<` at all: no `<!channel>`, `<@U123>` or `<http://x|y>`.
        assert!(!text.contains('<') && !text.contains('>'), "{text}");
        assert_eq!(text.matches('`').count() % 2, 0, "{text}");
        for part in outside_code(text) {
            for word in [
                "script", "evil", "alert(", "channel", "everyone", "here", "*", "_", "~", "|",
            ] {
                assert!(
                    !part.contains(word),
                    "{word:?} outside a code span in {text}"
                );
            }
        }
        if kind != Kind::Test {
            assert!(text.contains("&lt;!channel&gt;"), "{text}");
            assert!(text.contains("&amp; amp"), "{text}");
        }
    }
}

#[test]
fn slack_code_spans_cannot_be_closed_by_the_guest() {
    let quoted = escape::slack("a`b``c <!here>\nd");
    assert_eq!(quoted, "`aˋbˋˋc &lt;!here&gt; d`");
    assert_eq!(escape::slack("  "), "(none)");
}

/// Characters that must never stand unescaped in a Discord text we send.
const DISCORD_MARKUP: [char; 9] = ['[', ']', '<', '>', '*', '_', '~', '`', '|'];

fn unescaped(text: &str) -> Vec<char> {
    let mut found = Vec::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            chars.next();
        } else if DISCORD_MARKUP.contains(&c) {
            found.push(c);
        }
    }
    found
}

#[test]
fn discord_content_forms_no_mention_link_or_markdown() {
    for kind in KINDS {
        let (_, v) = sent(ProviderType::Discord, kind);
        assert_eq!(v["allowed_mentions"], serde_json::json!({ "parse": [] }));
        let content = v["content"].as_str().unwrap();
        assert!(
            content.chars().count() <= 2000,
            "{}",
            content.chars().count()
        );
        assert_eq!(unescaped(content), Vec::<char>::new(), "{content}");
        // `<@U123>` and `<http://x|y>` are covered by no unescaped `<`.
        for bad in ["@everyone", "@here", "://", "]("] {
            assert!(!content.contains(bad), "{bad:?} in {content}");
        }
        assert!(!content.contains('\r') && !content.contains('\u{2028}'));
    }
}

#[test]
fn discord_escapes_every_markdown_character_of_guest_text() {
    for text in HOSTILE {
        let quoted = escape::discord(text);
        let mut chars = quoted.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '\\' {
                let next = chars.next();
                assert!(next.is_some_and(|n| !n.is_alphanumeric()), "{quoted}");
                continue;
            }
            assert!(!"*_~`|<>[]()#:-".contains(c), "unescaped {c:?} in {quoted}");
            assert_ne!(c, '\n');
        }
    }
    assert_eq!(
        escape::discord("[x](http://e)"),
        "\\[x\\]\\(http\\:\u{200B}//e\\)"
    );
    assert_eq!(escape::discord("@everyone"), "@\u{200B}everyone");
}

#[test]
fn discord_content_stays_under_its_limit() {
    let mut m = hostile_message(Kind::Firing);
    m.event.connector.name = "*".repeat(5000);
    m.event.message = "@".repeat(5000);
    let request = render(&provider(ProviderType::Discord), &m, SystemTime::now()).unwrap();
    let v = body(&request);
    let content = v["content"].as_str().unwrap();
    assert!(content.chars().count() <= 2000);
    assert_eq!(unescaped(content), Vec::<char>::new());
    assert!(!content.contains("@@"));
}

#[test]
fn pagerduty_triggers_and_resolves_one_incident_and_skips_reminders() {
    let (request, v) = sent(ProviderType::PagerDuty, Kind::Firing);
    assert_eq!(request.url, "https://hooks.example.com/secret-path");
    assert_eq!(v["routing_key"], "rk-456");
    assert_eq!(v["event_action"], "trigger");
    assert_eq!(v["dedup_key"], "c3d4");
    let payload = &v["payload"];
    assert_eq!(payload["severity"], "critical");
    assert_eq!(payload["source"], "pg");
    let summary = payload["summary"].as_str().unwrap();
    assert!(summary.chars().count() <= 1024);
    assert!(!summary.contains('\n'));
    assert!(
        summary.starts_with("<script>"),
        "kept as text, escaped only as JSON: {summary}"
    );
    assert_eq!(payload["custom_details"]["alert_id"], "a1b2");
    assert_eq!(
        payload["custom_details"]["details"]["[x](http://evil)5"],
        "[x](http://evil)"
    );

    let (_, v) = sent(ProviderType::PagerDuty, Kind::Resolved);
    assert_eq!(v["event_action"], "resolve");
    assert_eq!(v["dedup_key"], "c3d4");
    assert_eq!(v["routing_key"], "rk-456");

    let (_, v) = sent(ProviderType::PagerDuty, Kind::Test);
    assert_eq!(v["payload"]["severity"], "info");
    assert!(
        v["payload"]["summary"]
            .as_str()
            .unwrap()
            .starts_with("TEST")
    );

    assert!(
        render(
            &provider(ProviderType::PagerDuty),
            &hostile_message(Kind::Reminder),
            SystemTime::now()
        )
        .is_none()
    );
    assert!(!takes(ProviderType::PagerDuty, Kind::Reminder));
    assert!(takes(ProviderType::Slack, Kind::Reminder));
}

#[test]
fn chat_formats_say_what_happened() {
    for (kind, words) in [
        (Kind::Firing, "FIRING"),
        (Kind::Resolved, "RESOLVED"),
        (Kind::Reminder, "STILL FAILING"),
        (Kind::Test, "TEST"),
    ] {
        for provider_type in [ProviderType::Slack, ProviderType::Discord] {
            let (_, v) = sent(provider_type, kind);
            let text = v["text"].as_str().or(v["content"].as_str()).unwrap();
            assert!(text.contains(words), "{provider_type}: {text}");
            assert!(text.contains("prod"), "the route is named: {text}");
        }
    }
    assert_eq!(escape::one_line("ab\ncd", 10), "ab cd");
    assert_eq!(escape::one_line("abcdef", 3), "abc…");
}
