//! Ownership against a loopback server: the requests it answers say which
//! checks ran.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::broadcast::error::TryRecvError;
use tokio::time::Instant;

use super::super::check::run_check;
use super::*;
use crate::egress::test_server::KeepAliveServer;
use crate::registry::RuntimeOptions;

fn runtime(schedule: bool, ownership: Ownership, max_instances: usize) -> Runtime {
    Runtime::new(RuntimeOptions {
        schedule,
        cache_dir: None,
        max_instances,
        ownership,
        ..RuntimeOptions::default()
    })
    .expect("a runtime")
}

/// An `http` connector against `server`, checked every `interval`.
fn http(server: &KeepAliveServer, id: &str, interval: &str) -> sandport_config::ConnectorConfig {
    sandport_config::parse_entry(
        &format!(
            "{{id: {id}, component: http, host: 127.0.0.1, port: {}, health_check: {{interval: {interval}, timeout: {interval}, path: /}}}}",
            server.port
        ),
        std::path::Path::new("."),
        sandport_builtins::catalog(),
    )
    .expect("a valid entry")
}

/// Longer than a 2 s interval's first check (within 2 s).
const TWO_TICKS: Duration = Duration::from_millis(2500);

#[test]
fn ownership_answers_by_its_kind() {
    assert!(Ownership::all().owns("a"));
    assert!(!Ownership::none().owns("a"));
    let only_b = Ownership::from_fn(|id| id == "b");
    assert!(!only_b.owns("a"));
    assert!(only_b.clone().owns("b"));
    assert!(Ownership::default().owns("a"));
}

#[tokio::test]
async fn a_connector_not_owned_is_registered_without_an_instance_or_a_schedule() {
    let server = KeepAliveServer::start().await;
    let runtime = runtime(true, Ownership::none(), 10);
    let info = runtime.register(http(&server, "c", "2s")).await;
    assert_eq!(info.expect("registered").id, "c");
    assert!(!runtime.owns("c"));
    assert!(!runtime.runs_here("c"));
    assert_eq!(runtime.memory_used("c").await.expect("known"), None);
    tokio::time::sleep(TWO_TICKS).await;
    assert_eq!(
        server.requests(),
        0,
        "no check runs on a node that does not own it"
    );
    assert_eq!(runtime.health("c").expect("known").checked_at, None);
    runtime.shutdown().await;
}

#[tokio::test]
async fn ownership_given_starts_the_schedule_soon() {
    let server = KeepAliveServer::start().await;
    let runtime = runtime(true, Ownership::none(), 10);
    runtime
        .register(http(&server, "c", "2s"))
        .await
        .expect("registered");
    runtime.set_ownership(Ownership::all()).await;
    assert!(runtime.owns("c") && runtime.runs_here("c"));
    assert!(
        server.wait_requests(1, TWO_TICKS).await,
        "a check soon after ownership was given"
    );
    // The first check started the instance, which stays for the next.
    let health = tokio::time::timeout(TWO_TICKS, async {
        loop {
            let health = runtime.health("c").expect("known");
            if health.checked_at.is_some() {
                return health;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("a recorded check");
    assert_eq!(health.status, HealthStatus::Healthy);
    assert!(runtime.memory_used("c").await.expect("known").is_some());
    runtime.shutdown().await;
}

#[tokio::test]
async fn ownership_taken_away_stops_the_checks_and_drops_the_instance() {
    let server = KeepAliveServer::start().await;
    let runtime = runtime(true, Ownership::all(), 10);
    runtime
        .register(http(&server, "c", "2s"))
        .await
        .expect("registered");
    assert!(runtime.memory_used("c").await.expect("known").is_some());
    assert!(
        server.wait_requests(1, TWO_TICKS).await,
        "checked while owned"
    );

    let generation = runtime.ownership_generation();
    runtime.set_ownership(Ownership::none()).await;
    assert_eq!(
        runtime.ownership_generation(),
        generation + 1,
        "a sweep over the owned connectors sees that it must run again"
    );
    assert!(!runtime.runs_here("c"));
    assert_eq!(runtime.memory_used("c").await.expect("known"), None);
    let after = server.requests();
    tokio::time::sleep(TWO_TICKS).await;
    assert_eq!(server.requests(), after, "no check after ownership went");
    // Config, info and last health stay.
    let (info, config) = runtime.get("c").expect("still registered");
    assert_eq!(config.id, "c");
    assert_eq!(info.health.status, HealthStatus::Healthy);
    runtime.shutdown().await;
}

#[tokio::test]
async fn a_check_in_flight_when_ownership_goes_finishes_and_leaves_no_instance() {
    let server = KeepAliveServer::start().await;
    let runtime = runtime(false, Ownership::all(), 10);
    runtime
        .register(http(&server, "c", "5s"))
        .await
        .expect("registered");
    let entry = runtime.entry("c").expect("the entry");

    // A scheduled check past its ownership test, waiting for the instance.
    let held = entry.instance.lock().await;
    let check = tokio::spawn({
        let (runtime, entry) = (runtime.clone(), entry.clone());
        async move { run_check(&runtime.inner, &entry, Some(Instant::now())).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let taken = tokio::spawn({
        let runtime = runtime.clone();
        async move { runtime.set_ownership(Ownership::none()).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(held);
    check.await.expect("the check");
    taken.await.expect("the change");

    assert_eq!(server.requests(), 1, "the check in flight finished");
    assert_eq!(runtime.memory_used("c").await.expect("known"), None);
    run_check(&runtime.inner, &entry, Some(Instant::now())).await;
    assert_eq!(server.requests(), 1, "no scheduled check after it");
    runtime.shutdown().await;
}

#[tokio::test]
async fn a_live_check_of_a_connector_not_owned_runs_and_drops_its_instance() {
    let server = KeepAliveServer::start().await;
    let runtime = runtime(true, Ownership::none(), 10);
    runtime
        .register(http(&server, "c", "2s"))
        .await
        .expect("registered");
    let health = runtime.check("c").await.expect("known");
    assert_eq!(health.status, HealthStatus::Healthy);
    assert_eq!(server.requests(), 1);
    assert_eq!(runtime.memory_used("c").await.expect("known"), None);
    tokio::time::sleep(TWO_TICKS).await;
    assert_eq!(server.requests(), 1, "and no schedule follows it");
    runtime.shutdown().await;
}

#[tokio::test]
async fn an_update_of_a_connector_not_owned_leaves_no_instance() {
    let server = KeepAliveServer::start().await;
    let runtime = runtime(true, Ownership::none(), 10);
    runtime
        .register(http(&server, "c", "2s"))
        .await
        .expect("registered");
    let old = runtime.entry("c").expect("the entry");
    runtime
        .update(http(&server, "c", "3s"))
        .await
        .expect("updated");
    let new = runtime.entry("c").expect("the entry");
    assert!(!Arc::ptr_eq(&old, &new));
    assert!(old.instance.lock().await.is_none(), "the old instance");
    assert!(new.instance.lock().await.is_none(), "the new instance");
    tokio::time::sleep(TWO_TICKS).await;
    assert_eq!(server.requests(), 0);
    runtime.shutdown().await;
}

#[tokio::test]
async fn admission_counts_only_connectors_owned_here() {
    let server = KeepAliveServer::start().await;
    let runtime = runtime(false, Ownership::from_fn(|id| id == "a"), 1);
    runtime
        .register(http(&server, "a", "5s"))
        .await
        .expect("owned, fits");
    // Past the limit of one, but not run here.
    runtime
        .register(http(&server, "b", "5s"))
        .await
        .expect("not owned");
    runtime
        .register(http(&server, "c", "5s"))
        .await
        .expect("not owned");
    assert_eq!(runtime.memory_used("b").await.expect("known"), None);

    // An owned one past the limit is refused, as on a single node.
    runtime.set_ownership(Ownership::all()).await;
    let refused = runtime.register(http(&server, "d", "5s")).await;
    assert!(
        matches!(refused, Err(RegisterError::ResourceExhausted { .. })),
        "{refused:?}"
    );
    assert!(runtime.runs_here("a"));
    for id in ["b", "c"] {
        assert!(runtime.owns(id) && !runtime.runs_here(id), "{id}");
        let health = runtime.health(id).expect("known");
        assert_eq!(health.status, HealthStatus::Unhealthy, "{id}");
        assert!(
            health.message.contains("at most 1 connector instances")
                && health.message.contains("--max-connectors"),
            "{}",
            health.message
        );
        assert!(runtime.check(id).await.is_ok(), "a live check still runs");
        assert_eq!(runtime.memory_used(id).await.expect("known"), None, "{id}");
    }

    // Room made by a loss of ownership goes to the next owned one.
    runtime
        .set_ownership(Ownership::from_fn(|id| id != "a"))
        .await;
    assert!(!runtime.runs_here("a"));
    assert!(runtime.runs_here("b"));
    assert!(!runtime.runs_here("c"));
    runtime.shutdown().await;
}

#[tokio::test]
async fn remote_health_is_recorded_and_announced_only_on_a_change() {
    let server = KeepAliveServer::start().await;
    let runtime = runtime(false, Ownership::none(), 10);
    runtime
        .register(http(&server, "c", "5s"))
        .await
        .expect("registered");
    let mut events = runtime.subscribe();
    let since = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(2_000);
    let remote = |status, message: &str| RemoteHealth {
        status,
        message: message.into(),
        since: Some(since),
        checked_at: Some(at),
    };

    runtime
        .record_remote_health("c", remote(HealthStatus::Healthy, "ok\nfine"))
        .expect("known");
    let health = runtime.health("c").expect("known");
    assert_eq!(
        (
            health.status,
            health.message.as_str(),
            health.since,
            health.checked_at
        ),
        (HealthStatus::Healthy, "ok fine", Some(since), Some(at))
    );
    assert_eq!(health.failure, None);
    let event = events.try_recv().expect("an event");
    assert_eq!(
        (event.status, event.previous, event.checked_at),
        (HealthStatus::Healthy, HealthStatus::Unknown, at)
    );

    runtime
        .record_remote_health("c", remote(HealthStatus::Healthy, "still ok"))
        .expect("known");
    assert_eq!(runtime.health("c").expect("known").message, "still ok");
    assert!(matches!(events.try_recv(), Err(TryRecvError::Empty)));

    runtime
        .record_remote_health("c", remote(HealthStatus::Unhealthy, "down"))
        .expect("known");
    let event = events.try_recv().expect("an event");
    assert_eq!(
        (event.status, event.previous),
        (HealthStatus::Unhealthy, HealthStatus::Healthy)
    );

    assert!(
        runtime
            .record_remote_health("nope", remote(HealthStatus::Healthy, "ok"))
            .is_err()
    );
    assert_eq!(server.requests(), 0);
    runtime.shutdown().await;
}

#[tokio::test]
async fn remote_health_of_an_owned_connector_is_ignored() {
    let server = KeepAliveServer::start().await;
    let runtime = runtime(false, Ownership::all(), 10);
    runtime
        .register(http(&server, "c", "5s"))
        .await
        .expect("registered");
    let before = runtime.health("c").expect("known");
    let mut events = runtime.subscribe();
    let remote = RemoteHealth {
        status: HealthStatus::Unhealthy,
        message: "down".into(),
        since: None,
        checked_at: None,
    };
    assert!(runtime.record_remote_health("c", remote).is_ok());
    assert_eq!(runtime.health("c").expect("known"), before);
    assert!(matches!(events.try_recv(), Err(TryRecvError::Empty)));
    runtime.shutdown().await;
}
