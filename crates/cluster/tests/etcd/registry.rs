//! The registry: create races, compare-and-swap, watch, listing, seeding,
//! and the entry's round trip through etcd.

use std::time::Duration;

use sandport_cluster::{ClusterError, Origin, RegistryEvent, SeedOutcome, Store};
use sandport_config::ComponentPaths;

use crate::support::Etcd;
use crate::{Builtins, entry, full_entry};

const PREFIX: &str = "/sandport/";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_two_nodes_registering_one_id_at_once_exactly_one_wins() {
    let etcd = Etcd::start();
    let a = Store::new(&etcd.connect("node-a", PREFIX).await);
    let b = Store::new(&etcd.connect("node-b", PREFIX).await);
    let mut races = Vec::new();
    for i in 0..50u16 {
        let (a, b) = (a.clone(), b.clone());
        races.push(tokio::spawn(async move {
            let id = format!("race-{i}");
            let (from_a, from_b) = (entry(&id, 1000 + i), entry(&id, 2000 + i));
            let (ra, rb) = tokio::join!(a.create(&from_a), b.create(&from_b));
            (id, ra, rb)
        }));
    }
    for race in races {
        let (id, ra, rb) = race.await.unwrap();
        match (&ra, &rb) {
            (Ok(_), Err(ClusterError::AlreadyExists { id: lost }))
            | (Err(ClusterError::AlreadyExists { id: lost }), Ok(_)) => assert_eq!(lost, &id),
            other => panic!("{id}: {other:?}"),
        }
    }
    let listing = a.list().await.unwrap();
    assert_eq!(listing.entries.len(), 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_or_removal_from_a_stale_revision_is_refused() {
    let etcd = Etcd::start();
    let store = Store::new(&etcd.connect("node-a", PREFIX).await);
    let created = store.create(&entry("grafana", 3000)).await.unwrap();
    let updated = store
        .update(&entry("grafana", 3001), created)
        .await
        .unwrap();
    assert!(updated > created);

    let err = store
        .update(&entry("grafana", 3002), created)
        .await
        .unwrap_err();
    match err {
        ClusterError::Conflict {
            id,
            expected,
            actual,
        } => {
            assert_eq!(
                (id.as_str(), expected, actual),
                ("grafana", created, updated)
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        store.remove("grafana", Some(created)).await,
        Err(ClusterError::Conflict { .. })
    ));
    let current = store.get("grafana").await.unwrap().unwrap();
    assert_eq!(current.mod_revision, updated);
    assert_eq!(current.entry["port"].as_u64(), Some(3001));

    store.remove("grafana", Some(updated)).await.unwrap();
    assert_eq!(store.get("grafana").await.unwrap(), None);
    assert!(matches!(
        store.update(&entry("grafana", 3003), updated).await,
        Err(ClusterError::NotFound { .. })
    ));
    assert!(matches!(
        store.remove("grafana", None).await,
        Err(ClusterError::NotFound { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_sees_puts_and_removals_from_another_node() {
    let etcd = Etcd::start();
    let here = Store::new(&etcd.connect("node-a", PREFIX).await);
    let there = Store::new(&etcd.connect("node-b", PREFIX).await);
    let listing = here.list().await.unwrap();
    let mut watch = here.watch(listing.revision + 1);

    let created = there.create(&entry("loki", 3100)).await.unwrap();
    there.update(&entry("loki", 3101), created).await.unwrap();
    there.remove("loki", None).await.unwrap();

    let mut events = Vec::new();
    while events.len() < 3 {
        let batch = tokio::time::timeout(Duration::from_secs(5), watch.next())
            .await
            .expect("the watch delivers")
            .unwrap();
        events.extend(batch);
    }
    match &events[..] {
        [
            RegistryEvent::Put(first),
            RegistryEvent::Put(second),
            RegistryEvent::Removed { id, .. },
        ] => {
            assert_eq!((first.id.as_str(), first.mod_revision), ("loki", created));
            assert_eq!(second.entry["port"].as_u64(), Some(3101));
            assert_eq!(second.origin, Origin::Api);
            assert_eq!(id, "loki");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_comes_back_from_etcd_as_the_same_config() {
    let etcd = Etcd::start();
    let store = Store::new(&etcd.connect("node-a", PREFIX).await);
    let original = full_entry();
    store.create(&original).await.unwrap();
    let stored = store.get("web").await.unwrap().unwrap();
    let again =
        sandport_config::parse_entry_value(&stored.entry, ComponentPaths::ComponentsDir, &Builtins)
            .expect("parses");
    assert_eq!(again, original);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listing_spans_pages_at_one_revision() {
    let etcd = Etcd::start();
    let store = Store::new(&etcd.connect("node-a", PREFIX).await);
    let ids: Vec<String> = (0..250).map(|i| format!("c-{i:03}")).collect();
    for (i, id) in ids.iter().enumerate() {
        store.create(&entry(id, 1 + i as u16)).await.unwrap();
    }
    let listing = store.list().await.unwrap();
    let listed: Vec<&str> = listing.entries.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(listed, ids);
    assert!(listing.unreadable.is_empty());
    assert_eq!(
        listing.revision,
        listing.entries.last().unwrap().mod_revision
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_config_file_seeds_the_registry_once() {
    let etcd = Etcd::start();
    let a = Store::new(&etcd.connect("node-a", PREFIX).await);
    let b = Store::new(&etcd.connect("node-b", PREFIX).await);
    let file_a = [entry("prometheus", 9090), entry("grafana", 3000)];
    let file_b = [entry("prometheus", 9999), entry("jaeger", 16686)];
    let (ra, rb) = tokio::join!(a.seed(&file_a), b.seed(&file_b));
    let outcomes = [ra.unwrap(), rb.unwrap()];
    assert!(
        outcomes.contains(&SeedOutcome::AlreadySeeded),
        "{outcomes:?}"
    );
    let winner = if outcomes[0] == SeedOutcome::AlreadySeeded {
        &file_b
    } else {
        &file_a
    };

    let listing = a.list().await.unwrap();
    let mut expected: Vec<_> = winner.iter().map(|c| (c.id.clone(), c.port)).collect();
    expected.sort();
    let got: Vec<_> = listing
        .entries
        .iter()
        .map(|e| (e.id.clone(), e.entry["port"].as_u64().unwrap() as u16))
        .collect();
    assert_eq!(got, expected);
    assert!(listing.entries.iter().all(|e| e.origin == Origin::File));

    // Later seeds, with other entries or none, change nothing.
    assert_eq!(a.seed(&file_b).await.unwrap(), SeedOutcome::AlreadySeeded);
    assert_eq!(a.seed(&[]).await.unwrap(), SeedOutcome::AlreadySeeded);
    assert_eq!(a.list().await.unwrap().entries.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_larger_than_one_txn_is_seeded_in_batches() {
    let etcd = Etcd::start();
    let store = Store::new(&etcd.connect("node-a", PREFIX).await);
    let file: Vec<_> = (0..300)
        .map(|i| entry(&format!("s-{i:03}"), 1 + i))
        .collect();
    match store.seed(&file).await.unwrap() {
        // 300 entries at 127 per txn, then the marker.
        SeedOutcome::Seeded {
            entries: 300,
            txns: 4,
        } => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(store.list().await.unwrap().entries.len(), 300);
    assert_eq!(
        store.seed(&file[..1]).await.unwrap(),
        SeedOutcome::AlreadySeeded
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_over_the_size_limit_is_refused_before_etcd_sees_it() {
    let etcd = Etcd::start();
    let store = Store::new(&etcd.connect("node-a", PREFIX).await);
    let mut big = entry("big", 80);
    big.metadata
        .insert("blob".into(), "x".repeat(sandport_cluster::MAX_VALUE_BYTES));
    match store.create(&big).await {
        Err(e @ ClusterError::TooLarge { .. }) => assert!(e.to_string().contains("big"), "{e}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(store.get("big").await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefixes_keep_two_clusters_apart() {
    let etcd = Etcd::start();
    let blue = Store::new(&etcd.connect("node-a", "/blue/").await);
    let green = Store::new(&etcd.connect("node-a", "/green/").await);
    blue.create(&entry("shared-id", 1)).await.unwrap();
    green.create(&entry("shared-id", 2)).await.unwrap();
    assert_eq!(blue.list().await.unwrap().entries.len(), 1);
    assert_eq!(
        green.get("shared-id").await.unwrap().unwrap().entry["port"].as_u64(),
        Some(2)
    );
}
