//! Published statuses: written only on a change, gone with the owner's
//! lease or the connector.

use std::time::Duration;

use sandport_cluster::{
    ConnectorStatus, MemberInfo, Membership, StatusEvent, StatusPublisher, Store,
};

use crate::entry;
use crate::support::Etcd;

const PREFIX: &str = "/sandport/";

fn status(word: &str) -> ConnectorStatus {
    ConnectorStatus {
        status: word.into(),
        message: String::new(),
        since_ms: 1_700_000_000_000,
        checked_by: "node-a".into(),
    }
}

/// How many times etcd has written the key since it was created.
async fn versions(etcd: &Etcd, key: &str) -> i64 {
    let mut client = etcd_client::Client::connect([etcd.url().replace("etcd://", "http://")], None)
        .await
        .unwrap();
    let response = client.get(key, None).await.unwrap();
    response.kvs().first().map_or(0, |kv| kv.version())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_status_makes_no_write() {
    let etcd = Etcd::start();
    let cluster = etcd.connect("node-a", PREFIX).await;
    let store = Store::new(&cluster);
    store.create(&entry("grafana", 3000)).await.unwrap();
    let membership = Membership::join(&cluster, &MemberInfo::starting_now("a:1"))
        .await
        .unwrap();
    let mut publisher = StatusPublisher::new(&cluster, &membership);

    assert!(
        publisher
            .publish("grafana", &status("healthy"))
            .await
            .unwrap()
    );
    for _ in 0..10 {
        assert!(
            !publisher
                .publish("grafana", &status("healthy"))
                .await
                .unwrap()
        );
    }
    assert_eq!(publisher.writes(), 1);
    assert_eq!(versions(&etcd, "/sandport/status/grafana").await, 1);

    assert!(
        publisher
            .publish("grafana", &status("unhealthy"))
            .await
            .unwrap()
    );
    assert!(
        !publisher
            .publish("grafana", &status("unhealthy"))
            .await
            .unwrap()
    );
    assert_eq!(publisher.writes(), 2);
    assert_eq!(versions(&etcd, "/sandport/status/grafana").await, 2);

    // Forgotten (ownership moved away and back): written again once.
    publisher.forget("grafana");
    assert!(
        publisher
            .publish("grafana", &status("unhealthy"))
            .await
            .unwrap()
    );
    assert_eq!(versions(&etcd, "/sandport/status/grafana").await, 3);

    let (statuses, _) = store.statuses().await.unwrap();
    assert_eq!(statuses["grafana"], status("unhealthy"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statuses_go_with_the_owner_and_with_the_connector() {
    let etcd = Etcd::start();
    let owner = etcd.connect("node-a", PREFIX).await;
    let reader = Store::new(&etcd.connect("node-b", PREFIX).await);
    let store = Store::new(&owner);
    store.create(&entry("grafana", 3000)).await.unwrap();
    store.create(&entry("loki", 3100)).await.unwrap();
    let (_, revision) = reader.statuses().await.unwrap();
    let mut watch = reader.watch_statuses(revision + 1);

    let membership = Membership::join(&owner, &MemberInfo::starting_now("a:1"))
        .await
        .unwrap();
    let mut publisher = StatusPublisher::new(&owner, &membership);
    publisher
        .publish("grafana", &status("healthy"))
        .await
        .unwrap();
    publisher.publish("loki", &status("healthy")).await.unwrap();
    // A check that ends after its connector was removed publishes nothing.
    store.remove("loki", None).await.unwrap();
    publisher.forget("loki");
    assert!(
        !publisher
            .publish("loki", &status("unhealthy"))
            .await
            .unwrap()
    );

    let mut events = Vec::new();
    let next = async |watch: &mut sandport_cluster::StatusWatch| {
        tokio::time::timeout(Duration::from_secs(5), watch.next())
            .await
            .expect("delivered")
            .unwrap()
    };
    while events.len() < 3 {
        events.extend(next(&mut watch).await);
    }
    assert_eq!(
        events,
        [
            StatusEvent::Published {
                id: "grafana".into(),
                status: status("healthy")
            },
            StatusEvent::Published {
                id: "loki".into(),
                status: status("healthy")
            },
            StatusEvent::Cleared { id: "loki".into() },
        ]
    );

    // The owner leaves: its statuses go with its lease.
    membership.leave().await.unwrap();
    assert_eq!(
        next(&mut watch).await,
        [StatusEvent::Cleared {
            id: "grafana".into()
        }]
    );
    assert!(reader.statuses().await.unwrap().0.is_empty());
}
