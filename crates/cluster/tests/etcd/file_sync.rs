//! A reloaded config file made the registry's file entries: created,
//! replaced and removed with compare-and-swap, the API's entries left
//! alone, two nodes reloading one file at once converging.

use sandport_cluster::{FileSync, Origin, Store};

use crate::support::Etcd;
use crate::{entry, full_entry};

const PREFIX: &str = "/sandport/";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_file_entries_follow_the_file_and_the_api_entries_stay() {
    let etcd = Etcd::start();
    let store = Store::new(&etcd.connect("node-a", PREFIX).await);
    store
        .seed(&[entry("kept", 1), entry("changed", 2), entry("dropped", 3)])
        .await
        .unwrap();
    store.create(&entry("api-only", 4)).await.unwrap();
    store.create(&entry("api-claimed", 5)).await.unwrap();

    let file = [
        entry("kept", 1),
        entry("changed", 20),
        entry("added", 6),
        entry("api-claimed", 50),
        full_entry(),
    ];
    let sync = store.sync_file(&file).await.unwrap();
    assert_eq!(
        sync,
        FileSync {
            created: vec!["added".into(), "web".into()],
            updated: vec!["changed".into()],
            removed: vec!["dropped".into()],
            unchanged: 1,
            skipped: vec!["api-claimed".into()],
            failed: Vec::new(),
        }
    );
    let listing = store.list().await.unwrap();
    let mut held: Vec<(String, Origin, Option<u64>)> = listing
        .entries
        .iter()
        .map(|e| (e.id.clone(), e.origin, e.entry["port"].as_u64()))
        .collect();
    held.sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(
        held,
        [
            ("added".into(), Origin::File, Some(6)),
            ("api-claimed".into(), Origin::Api, Some(5)),
            ("api-only".into(), Origin::Api, Some(4)),
            ("changed".into(), Origin::File, Some(20)),
            ("kept".into(), Origin::File, Some(1)),
            ("web".into(), Origin::File, Some(8443)),
        ]
    );

    // Again: nothing left to do, and no write.
    let before = store.list().await.unwrap().revision;
    let again = store.sync_file(&file).await.unwrap();
    assert_eq!((again.unchanged, again.created.len()), (4, 0));
    assert!(again.updated.is_empty() && again.removed.is_empty());
    assert_eq!(store.list().await.unwrap().revision, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_reloading_one_file_at_once_converge_without_an_error() {
    let etcd = Etcd::start();
    let a = Store::new(&etcd.connect("node-a", PREFIX).await);
    let b = Store::new(&etcd.connect("node-b", PREFIX).await);
    let old: Vec<_> = (0..40).map(|i| entry(&format!("c{i}"), 1000 + i)).collect();
    a.seed(&old).await.unwrap();
    // Half changed, a quarter removed, new ones added.
    let new: Vec<_> = (0..30)
        .map(|i| {
            entry(
                &format!("c{i}"),
                if i % 2 == 0 { 2000 + i } else { 1000 + i },
            )
        })
        .chain((40..60).map(|i| entry(&format!("c{i}"), 3000 + i)))
        .collect();
    let (ra, rb) = tokio::join!(a.sync_file(&new), b.sync_file(&new));
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    assert!(
        ra.failed.is_empty() && rb.failed.is_empty(),
        "{ra:?} {rb:?}"
    );
    // Every change was made by one node or the other, exactly once.
    let mut created = [ra.created.clone(), rb.created.clone()].concat();
    created.sort();
    assert_eq!(created.len(), 20, "{created:?}");
    let mut removed = [ra.removed.clone(), rb.removed.clone()].concat();
    removed.sort();
    assert_eq!(removed.len(), 10, "{removed:?}");

    let listing = a.list().await.unwrap();
    let mut held: Vec<(String, u64)> = listing
        .entries
        .iter()
        .map(|e| (e.id.clone(), e.entry["port"].as_u64().unwrap()))
        .collect();
    held.sort();
    let mut want: Vec<(String, u64)> = new
        .iter()
        .map(|c| (c.id.clone(), u64::from(c.port)))
        .collect();
    want.sort();
    assert_eq!(held, want);
}
