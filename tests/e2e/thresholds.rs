//! Flap control: `health_check.failure_threshold` / `success_threshold`
//! hold the reported status, while observers hear every check as it was.

use std::sync::{Arc, Mutex};

use sandport_core::{CheckObserver, Checked, HealthStatus, Observers, RuntimeOptions};
use sandport_tests::{FakeServer, Reply, entry};

/// Keeps (raw status, reported status, message_changed) of each check.
#[derive(Default)]
struct Seen(Mutex<Vec<(HealthStatus, HealthStatus, bool, String)>>);

impl CheckObserver for Seen {
    fn checked(&self, check: &Checked<'_>) {
        self.0.lock().unwrap().push((
            check.status,
            check.reported,
            check.message_changed,
            check.message.to_string(),
        ));
    }
}

#[tokio::test]
async fn a_failure_run_shorter_than_the_threshold_is_never_reported() {
    let server = FakeServer::prometheus().await;
    let seen = Arc::new(Seen::default());
    let runtime = sandport_core::Runtime::new(RuntimeOptions {
        schedule: false,
        cache_dir: None,
        observers: Observers::new(vec![seen.clone()]),
        ..Default::default()
    })
    .expect("runtime");
    runtime
        .register(entry(&format!(
            "{{id: prometheus, host: 127.0.0.1, port: {}, health_check: {{failure_threshold: 3, success_threshold: 2}}}}",
            server.port()
        )))
        .await
        .expect("registers");
    let mut events = runtime.subscribe();
    let up = || Reply::ok("Prometheus Server is Healthy.");
    let down = || Reply::status(503, "down");
    // (target answer, reported status after the check)
    let steps = [
        (up(), HealthStatus::Healthy),
        (down(), HealthStatus::Healthy),
        (down(), HealthStatus::Healthy),
        (up(), HealthStatus::Healthy),
        (down(), HealthStatus::Healthy),
        (down(), HealthStatus::Healthy),
        (down(), HealthStatus::Unhealthy),
        (up(), HealthStatus::Unhealthy),
        (up(), HealthStatus::Healthy),
    ];
    for (round, (reply, expected)) in steps.into_iter().enumerate() {
        server.set("/-/healthy", reply);
        let snap = runtime.check("prometheus").await.expect("known");
        assert_eq!(snap.status, expected, "check {round}: {snap:?}");
    }
    let seen = seen.0.lock().unwrap().clone();
    let raw: Vec<HealthStatus> = seen.iter().map(|s| s.0).collect();
    use HealthStatus::{Healthy as H, Unhealthy as U};
    assert_eq!(
        raw,
        [H, U, U, H, U, U, U, H, H],
        "observers hear each check as it was"
    );
    // A message is new when the check's side or text changes.
    let changed: Vec<bool> = seen.iter().map(|s| s.2).collect();
    assert_eq!(
        changed,
        [true, true, false, true, true, false, false, true, false],
        "{seen:?}"
    );
    // Only the two changes of the reported status were announced.
    let mut announced = Vec::new();
    while let Ok(event) = events.try_recv() {
        announced.push((event.previous, event.status));
    }
    assert_eq!(
        announced,
        [(HealthStatus::Unknown, H), (H, U), (U, H)],
        "events follow the reported status"
    );
}
