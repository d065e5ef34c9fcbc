//! Cluster mode's service against a store that records what it is asked
//! and fails when told to.

use std::sync::{Arc, Mutex};

use super::*;
use crate::egress::test_server::KeepAliveServer;
use crate::registry::RuntimeOptions;

/// Records each call as `put <id> <change>` or `remove <id>`; answers the
/// next call with `fail` when it is set.
#[derive(Default)]
struct Recorder {
    calls: Mutex<Vec<String>>,
    fail: Mutex<Option<ChangeError>>,
}

impl Recorder {
    fn answer(&self, call: String) -> Result<(), ChangeError> {
        self.calls.lock().expect("calls").push(call);
        self.fail.lock().expect("fail").take().map_or(Ok(()), Err)
    }

    fn calls(&self) -> Vec<String> {
        self.calls.lock().expect("calls").clone()
    }

    fn fail_next(&self, error: ChangeError) {
        *self.fail.lock().expect("fail") = Some(error);
    }
}

impl ChangeStore for Recorder {
    fn put<'a>(&'a self, config: &'a ConnectorConfig, change: Change) -> ChangeFuture<'a> {
        let call = format!("put {} {change:?}", config.id);
        Box::pin(async move { self.answer(call) })
    }

    fn remove<'a>(&'a self, id: &'a str) -> ChangeFuture<'a> {
        let call = format!("remove {id}");
        Box::pin(async move { self.answer(call) })
    }

    /// Records `reload <ids>` and answers that every entry was created.
    fn reload<'a>(&'a self, configs: &'a [ConnectorConfig]) -> FileChangesFuture<'a> {
        let ids: Vec<String> = configs.iter().map(|c| c.id.clone()).collect();
        let call = format!("reload {}", ids.join(","));
        Box::pin(async move {
            self.answer(call)?;
            Ok(FileChanges {
                created: ids,
                ..FileChanges::default()
            })
        })
    }
}

struct Cluster {
    service: Arc<Service>,
    store: Arc<Recorder>,
    server: KeepAliveServer,
    dir: tempfile::TempDir,
}

/// A service in cluster mode whose config file lists one connector,
/// `seeded`.
async fn cluster() -> Cluster {
    let server = KeepAliveServer::start().await;
    let dir = tempfile::tempdir().expect("a directory");
    let path = dir.path().join("connectors.yaml");
    std::fs::write(
        &path,
        format!(
            "connectors:\n  - {{id: seeded, component: http, host: 127.0.0.1, port: {}, health_check: {{interval: 5s, path: /}}}}\n",
            server.port
        ),
    )
    .expect("write the config");
    let store = Arc::new(Recorder::default());
    let changes: Arc<dyn ChangeStore> = store.clone();
    let (service, problems) = Service::start(ServiceOptions {
        config: Some(path),
        data_dir: Some(dir.path().join("data")),
        changes: Some(changes),
        runtime: RuntimeOptions {
            schedule: false,
            cache_dir: None,
            ..RuntimeOptions::default()
        },
        ..ServiceOptions::default()
    })
    .await
    .expect("started");
    assert!(problems.is_empty(), "{problems:?}");
    Cluster {
        service: Arc::new(service),
        store,
        server,
        dir,
    }
}

fn http(server: &KeepAliveServer, id: &str, interval: &str) -> ConnectorConfig {
    sandport_config::parse_entry(
        &format!(
            "{{id: {id}, component: http, host: 127.0.0.1, port: {}, health_check: {{interval: {interval}, path: /}}}}",
            server.port
        ),
        std::path::Path::new("."),
        sandport_builtins::catalog(),
    )
    .expect("a valid entry")
}

fn interval(service: &Service, id: &str) -> std::time::Duration {
    let (_, config) = service.get(id).expect("registered");
    config.health_check.interval
}

#[tokio::test]
async fn cluster_mode_seeds_from_the_file_and_keeps_changes_in_the_store() {
    let Cluster {
        service,
        store,
        server,
        dir,
    } = cluster().await;
    assert!(service.in_cluster());
    assert!(
        service.runtime().list(None).is_empty(),
        "the file only seeds"
    );
    let seeded: Vec<String> = service.seed_entries().into_iter().map(|c| c.id).collect();
    assert_eq!(seeded, ["seeded"]);
    assert_eq!(service.state_path(), None);

    service
        .register(http(&server, "c", "5s"))
        .await
        .expect("registered");
    service
        .update(http(&server, "c", "7s"))
        .await
        .expect("updated");
    assert_eq!(interval(&service, "c"), std::time::Duration::from_secs(7));
    service.remove("c").await.expect("removed");
    assert_eq!(
        store.calls(),
        ["put c Register", "put c Update", "remove c"]
    );
    assert!(
        !dir.path().join("data").join("registry.json").exists(),
        "no state file"
    );
    service.shutdown().await;
}

#[tokio::test]
async fn a_change_the_store_refuses_is_undone_in_the_runtime() {
    let Cluster {
        service,
        store,
        server,
        dir: _dir,
    } = cluster().await;

    store.fail_next(ChangeError::Unavailable("no quorum".into()));
    let refused = service.register(http(&server, "c", "5s")).await;
    match refused {
        Err(ServiceError::Unavailable(message)) => assert!(
            message.contains("unavailable") && message.contains("no quorum"),
            "{message}"
        ),
        other => panic!("{other:?}"),
    }
    assert!(service.get("c").is_err(), "the registration was undone");

    service
        .register(http(&server, "c", "5s"))
        .await
        .expect("registered");
    store.fail_next(ChangeError::Conflict("changed on another node".into()));
    let refused = service.update(http(&server, "c", "7s")).await;
    assert!(
        matches!(refused, Err(ServiceError::Conflict(_))),
        "{refused:?}"
    );
    assert_eq!(interval(&service, "c"), std::time::Duration::from_secs(5));

    store.fail_next(ChangeError::NotFound("c".into()));
    let refused = service.remove("c").await;
    assert!(
        matches!(refused, Err(ServiceError::NotFound(_))),
        "{refused:?}"
    );
    assert!(service.get("c").is_ok(), "kept first, so not removed");

    store.fail_next(ChangeError::AlreadyExists("d".into()));
    let refused = service.register(http(&server, "d", "5s")).await;
    assert!(
        matches!(refused, Err(ServiceError::AlreadyExists(_))),
        "{refused:?}"
    );
    assert!(service.get("d").is_err());
    service.shutdown().await;
}

#[tokio::test]
async fn changes_from_the_cluster_reach_the_runtime_only_and_apply_once() {
    let Cluster {
        service,
        store,
        server,
        dir: _dir,
    } = cluster().await;
    service
        .apply_put(http(&server, "c", "5s"))
        .await
        .expect("registered");
    // A check marks the entry: an update would start it anew.
    service.check("c").await.expect("checked");
    service
        .apply_put(http(&server, "c", "5s"))
        .await
        .expect("the same");
    let health = service.health("c").expect("registered");
    assert!(
        health.checked_at.is_some(),
        "an identical config changed nothing"
    );

    service
        .apply_put(http(&server, "c", "7s"))
        .await
        .expect("updated");
    assert_eq!(interval(&service, "c"), std::time::Duration::from_secs(7));
    assert_eq!(service.health("c").expect("registered").checked_at, None);

    service.apply_remove("c").await.expect("removed");
    assert!(service.get("c").is_err());
    service.apply_remove("c").await.expect("not there is fine");
    assert!(store.calls().is_empty(), "{:?}", store.calls());
    service.shutdown().await;
}

#[tokio::test]
async fn uploads_are_refused_in_cluster_mode() {
    let Cluster {
        service, dir: _dir, ..
    } = cluster().await;
    match service.upload_component(b"\0asm".to_vec()).await {
        Err(ServiceError::Conflict(message)) => {
            assert!(message.contains("cluster mode"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        service.upload_slot(),
        Err(ServiceError::Conflict(_))
    ));
    service.shutdown().await;
}

#[tokio::test]
async fn a_reload_in_cluster_mode_goes_to_the_store_not_to_the_runtime() {
    let Cluster {
        service,
        store,
        server,
        dir,
    } = cluster().await;
    let path = dir.path().join("connectors.yaml");
    std::fs::write(
        &path,
        format!(
            "connectors:\n  - {{id: seeded, component: http, host: 127.0.0.1, port: {p}}}\n  - {{id: added, component: http, host: 127.0.0.1, port: {p}}}\n",
            p = server.port
        ),
    )
    .expect("write the config");
    let report = service.reload_config().await.expect("reloaded");
    assert!(report.applied, "{report:?}");
    assert_eq!(report.added, ["seeded", "added"]);
    assert_eq!(store.calls(), ["reload seeded,added"]);
    assert!(
        service.runtime().list(None).is_empty(),
        "the node applies the change as it follows the cluster"
    );

    // A broken file reaches no store.
    std::fs::write(&path, "connectors:\n  - {id: broken, port: nope}\n").expect("write");
    let report = service.reload_config().await.expect("a report");
    assert!(!report.applied && !report.problems.is_empty(), "{report:?}");
    assert_eq!(store.calls().len(), 1);

    // The store out of reach: the reload fails as unavailable.
    std::fs::write(
        &path,
        format!(
            "connectors:\n  - {{id: seeded, component: http, host: 127.0.0.1, port: {}}}\n",
            server.port
        ),
    )
    .expect("write");
    store.fail_next(ChangeError::Unavailable("etcd is down".into()));
    assert!(matches!(
        service.reload_config().await,
        Err(ServiceError::Unavailable(_))
    ));
    let last = service.last_reload().expect("recorded");
    assert!(!last.applied, "{last:?}");
    service.shutdown().await;
}
