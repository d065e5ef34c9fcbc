//! Transitions in, messages out: firing, resolved, silences, retries,
//! restarts, reminders, slow providers, test messages.

use super::*;

#[tokio::test]
async fn down_fires_once_and_up_resolves_once_for_the_same_incident() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Recorder::new();
    let alerts = start(config(), &dir.path().join("outbox.db"), &rx);

    alerts.notify(transition("pg", "healthy", "unhealthy"));
    // failing -> failing sends nothing new.
    alerts.notify(transition("pg", "unhealthy", "unavailable"));
    alerts.notify(transition("pg", "unavailable", "healthy"));
    settle(&alerts, "firing and resolved", |s| {
        s.sent == 2 && s.open_incidents == 0
    })
    .await;

    assert_eq!(rx.accepted_kinds("pg"), ["firing", "resolved"]);
    let got = rx.accepted();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].url, HOOK);
    assert_eq!(got[0].field("incident_id"), got[1].field("incident_id"));
    assert_ne!(got[0].field("alert_id"), got[1].field("alert_id"));
    assert_eq!(got[0].field("status"), "unhealthy");
    assert_eq!(got[1].field("status"), "healthy");
    assert_eq!(got[1].field("previous_status"), "unavailable");
    assert!(
        got[0]
            .headers
            .iter()
            .any(|(k, v)| k == "Content-Type" && v == "application/json")
    );
    let stats = alerts.stats();
    assert_eq!((stats.retries, stats.failed, stats.dropped), (0, 0, 0));
    alerts.shutdown().await;
}

#[tokio::test]
async fn each_matching_route_alerts_its_own_providers() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Recorder::new();
    let mut config = config();
    config
        .providers
        .push(webhook("db-team", "https://db.example.com/hook"));
    config.routes.push(Route {
        matcher: Match {
            tags: vec!["prod".into()],
            ..Match::default()
        },
        ..route("prod", &["db-team"])
    });
    config.routes.push(Route {
        matcher: Match {
            ids: vec!["other".into()],
            ..Match::default()
        },
        ..route("other-only", &["db-team"])
    });
    let alerts = start(config, &dir.path().join("outbox.db"), &rx);
    alerts.notify(transition("pg", "healthy", "unhealthy"));
    settle(&alerts, "two firings", |s| s.sent == 2).await;
    let mut urls: Vec<String> = rx.accepted().iter().map(|r| r.url.clone()).collect();
    urls.sort();
    assert_eq!(urls, ["https://db.example.com/hook", HOOK]);
    let routes: Vec<String> = rx.accepted().iter().map(|r| r.field("route")).collect();
    assert!(routes.contains(&"all".to_string()) && routes.contains(&"prod".to_string()));
    assert_eq!(alerts.stats().open_incidents, 2);
    alerts.shutdown().await;
}

#[tokio::test]
async fn resolved_is_not_sent_when_the_route_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Recorder::new();
    let mut config = config();
    config.routes[0].send_on_resolved = false;
    let alerts = start(config, &dir.path().join("outbox.db"), &rx);
    alerts.notify(transition("pg", "healthy", "unhealthy"));
    alerts.notify(transition("pg", "unhealthy", "healthy"));
    // A second connector's firing, queued after the first one's recovery,
    // shows that recovery was handled.
    alerts.notify(transition("redis", "healthy", "unhealthy"));
    settle(&alerts, "both firings", |s| {
        s.sent == 2 && s.open_incidents == 1
    })
    .await;
    assert_eq!(rx.accepted_kinds("pg"), ["firing"]);
    assert_eq!(rx.accepted_kinds("redis"), ["firing"]);
    alerts.shutdown().await;
}

#[tokio::test]
async fn a_maintenance_window_silences_its_connectors_only() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Recorder::new();
    let mut config = config();
    config.maintenance.push(maintenance_now(&["pg"]));
    let alerts = start(config, &dir.path().join("outbox.db"), &rx);
    alerts.notify(transition("pg", "healthy", "unhealthy"));
    alerts.notify(transition("redis", "healthy", "unhealthy"));
    settle(&alerts, "redis firing", |s| s.sent == 1).await;
    assert_eq!(rx.accepted_kinds("pg"), Vec::<String>::new());
    assert_eq!(rx.accepted_kinds("redis"), ["firing"]);
    assert_eq!(alerts.stats().open_incidents, 1);
    // No incident was opened, so recovery sends nothing either.
    alerts.notify(transition("pg", "unhealthy", "healthy"));
    alerts.notify(transition("redis", "unhealthy", "healthy"));
    settle(&alerts, "redis resolved", |s| s.sent == 2).await;
    assert_eq!(rx.accepted_kinds("pg"), Vec::<String>::new());
    alerts.shutdown().await;
}

#[tokio::test]
async fn a_failing_receiver_gets_the_message_later_with_one_alert_id() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Recorder::new();
    rx.set(HOOK, Mode::Answer(503));
    let alerts = start(config(), &dir.path().join("outbox.db"), &rx);
    alerts.notify(transition("pg", "healthy", "unhealthy"));
    wait_for("three failed attempts", || alerts.stats().retries >= 3).await;
    rx.set(HOOK, Mode::Unreachable);
    let seen = rx.all().len();
    wait_for("an unreachable attempt", || rx.all().len() > seen + 1).await;
    rx.set(HOOK, Mode::Answer(429));
    let seen = rx.all().len();
    wait_for("a rate-limited attempt", || rx.all().len() > seen + 1).await;
    rx.set(HOOK, Mode::Answer(204));
    settle(&alerts, "the delivery", |s| s.sent == 1).await;

    let all = rx.all();
    assert!(all.len() >= 6, "{}", all.len());
    let ids: Vec<String> = all.iter().map(|r| r.field("alert_id")).collect();
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    assert_eq!(rx.accepted().len(), 1);
    let stats = alerts.stats();
    assert_eq!(stats.failed, 0);
    assert!(stats.retries >= 5, "{stats:?}");
    alerts.shutdown().await;
}

#[tokio::test]
async fn a_refusal_is_final() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Recorder::new();
    rx.set(HOOK, Mode::Answer(404));
    let alerts = start(config(), &dir.path().join("outbox.db"), &rx);
    alerts.notify(transition("pg", "healthy", "unhealthy"));
    settle(&alerts, "the refusal", |s| s.failed == 1).await;
    assert_eq!(rx.all().len(), 1);
    assert_eq!(alerts.stats().retries, 0);
    alerts.shutdown().await;
}

#[tokio::test]
async fn a_message_older_than_the_retry_limit_is_given_up() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Recorder::new();
    rx.set(HOOK, Mode::Unreachable);
    let transport: Arc<dyn Transport> = rx.clone();
    let tuning = Tuning {
        give_up_after: Duration::ZERO,
        ..tuning()
    };
    let alerts =
        Alerts::start_with(config(), &dir.path().join("outbox.db"), transport, tuning).unwrap();
    alerts.notify(transition("pg", "healthy", "unhealthy"));
    settle(&alerts, "giving up", |s| s.failed == 1).await;
    assert_eq!(rx.all().len(), 1);
    alerts.shutdown().await;
}

#[tokio::test]
async fn a_restart_redelivers_pending_messages_and_keeps_incidents_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("outbox.db");
    let rx = Recorder::new();
    rx.set(HOOK, Mode::Unreachable);
    let alerts = start(config(), &path, &rx);
    alerts.notify(transition("pg", "healthy", "unhealthy"));
    wait_for("a failed attempt", || alerts.stats().retries >= 1).await;
    alerts.shutdown().await;
    drop(alerts);
    let first_id = rx.all()[0].field("alert_id");
    let incident = rx.all()[0].field("incident_id");

    let rx2 = Recorder::new();
    let alerts = start(config(), &path, &rx2);
    settle(&alerts, "redelivery", |s| s.sent == 1).await;
    let got = rx2.accepted();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].field("alert_id"), first_id);
    assert_eq!(got[0].field("kind"), "firing");
    assert_eq!(alerts.stats().open_incidents, 1);

    // After the restart the host reports `unknown -> failing`: the incident
    // is still open, so nothing fires again; `-> healthy` resolves it.
    alerts.notify(transition("pg", "unknown", "unhealthy"));
    alerts.notify(transition("pg", "unhealthy", "healthy"));
    settle(&alerts, "resolved", |s| {
        s.sent == 2 && s.open_incidents == 0
    })
    .await;
    assert_eq!(rx2.accepted_kinds("pg"), ["firing", "resolved"]);
    assert_eq!(rx2.accepted()[1].field("incident_id"), incident);
    alerts.shutdown().await;
}

#[tokio::test]
async fn unknown_to_passing_after_a_restart_resolves_the_open_incident() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("outbox.db");
    let rx = Recorder::new();
    let alerts = start(config(), &path, &rx);
    alerts.notify(transition("pg", "healthy", "unhealthy"));
    settle(&alerts, "firing", |s| s.sent == 1).await;
    drop(alerts);

    let alerts = start(config(), &path, &rx);
    wait_for("the incident is loaded", || {
        alerts.stats().open_incidents == 1
    })
    .await;
    alerts.notify(transition("pg", "unknown", "healthy"));
    settle(&alerts, "resolved", |s| {
        s.sent == 1 && s.open_incidents == 0
    })
    .await;
    assert_eq!(rx.accepted_kinds("pg"), ["firing", "resolved"]);

    // With nothing open, `unknown -> failing` opens a new incident.
    alerts.notify(transition("pg", "unknown", "unavailable"));
    settle(&alerts, "a new firing", |s| s.sent == 2).await;
    let got = rx.accepted();
    assert_eq!(got.len(), 3);
    assert_ne!(got[2].field("incident_id"), got[0].field("incident_id"));
    alerts.shutdown().await;
}

#[tokio::test]
async fn reminders_repeat_while_the_incident_is_open() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Recorder::new();
    let mut config = config();
    // Below the config's 1m minimum: the engine takes any interval.
    config.routes[0].repeat_interval = Some(Duration::from_millis(20));
    let alerts = start(config, &dir.path().join("outbox.db"), &rx);
    alerts.notify(transition("pg", "healthy", "unhealthy"));
    alerts.notify(transition("pg", "unhealthy", "unavailable"));
    wait_for("three reminders", || {
        rx.accepted_kinds("pg")
            .iter()
            .filter(|k| *k == "reminder")
            .count()
            >= 3
    })
    .await;
    // Reminders say what the connector is now (the failing -> failing
    // change may come after the first reminder on a loaded machine).
    wait_for("a reminder saying unavailable", || {
        rx.accepted()
            .iter()
            .any(|r| r.field("kind") == "reminder" && r.field("status") == "unavailable")
    })
    .await;
    alerts.notify(transition("pg", "unavailable", "healthy"));
    settle(&alerts, "resolved", |s| s.open_incidents == 0).await;
    wait_for("the resolved message", || {
        rx.accepted_kinds("pg").contains(&"resolved".to_string())
    })
    .await;
    let got = rx.accepted();
    let incident = got[0].field("incident_id");
    assert!(got.iter().all(|r| r.field("incident_id") == incident));
    assert_eq!(got[0].field("kind"), "firing");
    let ids: std::collections::HashSet<String> = got.iter().map(|r| r.field("alert_id")).collect();
    assert_eq!(ids.len(), got.len(), "every message has its own alert_id");
    alerts.shutdown().await;
}

#[tokio::test]
async fn reminders_are_silenced_by_maintenance() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("outbox.db");
    let rx = Recorder::new();
    // pg's incident opens before its window...
    let alerts = start(config(), &path, &rx);
    alerts.notify(transition("pg", "healthy", "unhealthy"));
    settle(&alerts, "pg firing", |s| s.sent == 1).await;
    alerts.shutdown().await;

    // ...and after a restart into the window, with reminders due every
    // 20 ms, only redis (outside the window) is reminded.
    let mut config = config();
    config.routes[0].repeat_interval = Some(Duration::from_millis(20));
    config.maintenance.push(maintenance_now(&["pg"]));
    let rx2 = Recorder::new();
    let alerts = start(config, &path, &rx2);
    assert_eq!(alerts.stats().open_incidents, 1);
    alerts.notify(transition("redis", "healthy", "unhealthy"));
    wait_for("three redis reminders", || {
        rx2.accepted_kinds("redis")
            .iter()
            .filter(|k| *k == "reminder")
            .count()
            >= 3
    })
    .await;
    assert_eq!(rx2.accepted_kinds("pg"), Vec::<String>::new());
    assert_eq!(alerts.stats().open_incidents, 2);
    alerts.shutdown().await;
}

#[tokio::test]
async fn a_hanging_provider_does_not_hold_back_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Recorder::new();
    let slow = "https://slow.example.com/hook";
    rx.set(slow, Mode::Hang);
    let mut config = config();
    config.providers.push(webhook("slow", slow));
    config.routes[0].providers = vec!["slow".into(), "hook".into()];
    let transport: Arc<dyn Transport> = rx.clone();
    let tuning = Tuning {
        timeout: Duration::from_secs(3600),
        ..tuning()
    };
    let alerts =
        Alerts::start_with(config, &dir.path().join("outbox.db"), transport, tuning).unwrap();
    for i in 0..6 {
        alerts.notify(transition(&format!("c{i}"), "healthy", "unhealthy"));
    }
    wait_for("six deliveries to the live provider", || {
        rx.accepted().iter().filter(|r| r.url == HOOK).count() == 6
    })
    .await;
    wait_for("the six to the slow provider pending", || {
        alerts.stats().pending == 6
    })
    .await;
    let to_slow = rx.all().iter().filter(|r| r.url == slow).count();
    assert_eq!(to_slow, 2, "the slow provider holds two sends at a time");
    alerts.shutdown().await;
}

#[tokio::test]
async fn test_route_sends_a_marked_message_to_each_provider_now() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Recorder::new();
    let mut config = config();
    let other = "https://other.example.com/x";
    rx.set(other, Mode::Answer(500));
    config.providers.push(webhook("other", other));
    config.routes.push(route("both", &["hook", "other"]));
    let alerts = start(config, &dir.path().join("outbox.db"), &rx);
    let answers = alerts.test_route("both").await.unwrap();
    assert_eq!(
        answers,
        [
            ("hook".to_string(), Ok(200)),
            ("other".to_string(), Ok(500))
        ]
    );
    let got = rx.all();
    assert_eq!(got.len(), 2);
    assert!(got.iter().all(|r| r.field("kind") == "test"));
    assert_eq!(alerts.stats().sent, 0, "tests do not go through the outbox");

    let err = alerts.test_route("nope").await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "no alert route is named `nope`; routes: all, both"
    );

    rx.set(HOOK, Mode::Unreachable);
    let answers = alerts.test_route("all").await.unwrap();
    let reason = answers[0].1.clone().unwrap_err();
    assert!(
        !reason.contains("hooks.example.com"),
        "the URL is a secret: {reason}"
    );
    alerts.shutdown().await;
    assert!(matches!(
        alerts.test_route("all").await,
        Err(crate::AlertsError::Stopped)
    ));
}

#[tokio::test]
async fn a_removed_route_forgets_its_incidents_and_a_removed_provider_its_messages() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Recorder::new();
    rx.set(HOOK, Mode::Unreachable);
    let alerts = start(config(), &dir.path().join("outbox.db"), &rx);
    alerts.notify(transition("pg", "healthy", "unhealthy"));
    wait_for("an attempt", || alerts.stats().retries >= 1).await;
    assert_eq!(alerts.stats().open_incidents, 1);
    alerts.reconfigure(AlertsConfig::default());
    settle(&alerts, "the message dropped", |s| {
        s.failed == 1 && s.open_incidents == 0
    })
    .await;
    alerts.shutdown().await;
}

#[tokio::test]
async fn notify_after_shutdown_is_counted_as_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Recorder::new();
    let alerts = start(config(), &dir.path().join("outbox.db"), &rx);
    alerts.shutdown().await;
    alerts.notify(transition("pg", "healthy", "unhealthy"));
    alerts.notify(transition("pg", "unhealthy", "healthy"));
    assert_eq!(alerts.stats().dropped, 2);
    assert!(rx.all().is_empty());
}

#[test]
fn start_outside_a_runtime_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let rx: Arc<dyn Transport> = Recorder::new();
    let result = Alerts::start(config(), &dir.path().join("outbox.db"), rx);
    assert!(matches!(result, Err(crate::AlertsError::NoRuntime)));
}

#[tokio::test]
async fn a_forgotten_connector_closes_its_incidents_without_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Recorder::new();
    let alerts = start(config(), &dir.path().join("outbox.db"), &rx);
    alerts.notify(transition("pg", "healthy", "unhealthy"));
    settle(&alerts, "firing", |s| s.sent == 1 && s.open_incidents == 1).await;
    alerts.forget("pg");
    settle(&alerts, "the incident closed", |s| s.open_incidents == 0).await;
    // Passing again resolves nothing: the incident is gone.
    alerts.notify(transition("pg", "unknown", "healthy"));
    alerts.notify(transition("redis", "healthy", "unhealthy"));
    settle(&alerts, "redis firing", |s| s.sent == 2).await;
    assert_eq!(rx.accepted_kinds("pg"), ["firing"]);
    alerts.shutdown().await;
}

#[tokio::test]
async fn a_provider_gets_an_incidents_messages_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Recorder::new();
    rx.set(HOOK, Mode::Hang);
    let transport: Arc<dyn Transport> = rx.clone();
    let tuning = Tuning {
        timeout: Duration::from_secs(3600),
        ..tuning()
    };
    let alerts =
        Alerts::start_with(config(), &dir.path().join("outbox.db"), transport, tuning).unwrap();
    alerts.notify(transition("pg", "healthy", "unhealthy"));
    alerts.notify(transition("pg", "unhealthy", "healthy"));
    alerts.notify(transition("redis", "healthy", "unhealthy"));
    // The provider has two slots: redis's firing got the second one, so
    // pg's resolved was held back behind its firing, which hangs.
    wait_for("two sends", || rx.all().len() == 2).await;
    let sent: Vec<(String, String)> = rx
        .all()
        .iter()
        .map(|r| {
            (
                r.body["connector"]["id"].as_str().unwrap().to_string(),
                r.field("kind"),
            )
        })
        .collect();
    assert_eq!(
        sent,
        [
            ("pg".to_string(), "firing".to_string()),
            ("redis".to_string(), "firing".to_string())
        ]
    );
    alerts.shutdown().await;
}
