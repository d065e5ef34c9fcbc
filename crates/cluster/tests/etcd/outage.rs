//! etcd down: every call fails as unavailable within the call timeout,
//! membership is given up after the TTL, and everything works again when
//! etcd is back on the same ports and data.

use std::time::{Duration, Instant};

use sandport_cluster::{
    Cluster, ClusterError, Liveness, MemberInfo, Membership, RegistryEvent, Store,
};

use crate::entry;
use crate::support::{Etcd, eventually};

const PREFIX: &str = "/sandport/";

/// The call timeout in the tests' options (1 s), plus slack for a loaded
/// machine: the point is that no call hangs.
const WITHIN: Duration = Duration::from_secs(3);

async fn unavailable_in_time<T: std::fmt::Debug>(
    what: &str,
    call: impl Future<Output = Result<T, ClusterError>>,
) {
    let started = Instant::now();
    let result = call.await;
    let took = started.elapsed();
    match result {
        Err(e) if e.is_unavailable() => {
            assert!(e.to_string().contains("etcd is unavailable"), "{e}");
        }
        other => panic!("{what}: {other:?}"),
    }
    assert!(took < WITHIN, "{what} took {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_fail_as_unavailable_without_hanging_and_recover_after_a_restart() {
    let mut etcd = Etcd::start();
    let cluster = etcd.connect("node-a", PREFIX).await;
    let store = Store::new(&cluster);
    store.create(&entry("before", 1)).await.unwrap();
    let mut watch = store.watch(store.list().await.unwrap().revision + 1);

    etcd.kill();
    unavailable_in_time("list", store.list()).await;
    unavailable_in_time("create", store.create(&entry("during", 2))).await;
    unavailable_in_time("get", store.get("before")).await;
    unavailable_in_time("remove", store.remove("before", None)).await;
    unavailable_in_time("seed", store.seed(&[entry("s", 3)])).await;
    unavailable_in_time("statuses", store.statuses()).await;

    // Connecting to a dead etcd fails within the timeout too.
    let started = Instant::now();
    let err = Cluster::connect(&etcd.options("node-b")).await.unwrap_err();
    assert!(err.is_unavailable(), "{err:?}");
    assert!(
        started.elapsed() < WITHIN,
        "connect took {:?}",
        started.elapsed()
    );

    // The watch ends with an error rather than waiting forever.
    let ended = tokio::time::timeout(Duration::from_secs(5), watch.next())
        .await
        .expect("the watch notices the outage");
    assert!(ended.unwrap_err().is_unavailable());

    etcd.resume();
    let back = eventually(Duration::from_secs(10), async || store.list().await.is_ok()).await;
    assert!(back, "the same client works again after the restart");
    assert_eq!(store.list().await.unwrap().entries.len(), 1);
    store.create(&entry("after", 4)).await.unwrap();
    // The watch resumes where it stopped and sees the write made after
    // the restart.
    let mut seen = Vec::new();
    while !seen
        .iter()
        .any(|e| matches!(e, RegistryEvent::Put(p) if p.id == "after"))
    {
        match tokio::time::timeout(Duration::from_secs(5), watch.next())
            .await
            .expect("delivered")
        {
            Ok(events) => seen.extend(events),
            Err(e) => assert!(e.is_unavailable(), "{e:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_call_is_bounded_by_the_timeout() {
    let mut etcd = Etcd::start();
    let store = Store::new(&etcd.connect("node-a", PREFIX).await);
    etcd.kill();
    for _ in 0..3 {
        unavailable_in_time("list", store.list()).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_cut_off_for_longer_than_the_ttl_knows_it_is_no_longer_a_member() {
    let mut etcd = Etcd::start();
    let cluster = etcd.connect("node-a", PREFIX).await;
    let membership = Membership::join(&cluster, &MemberInfo::starting_now("a:1"))
        .await
        .unwrap();
    let mut liveness = membership.liveness();

    let cut = Instant::now();
    etcd.kill();
    tokio::time::timeout(Duration::from_secs(8), liveness.changed())
        .await
        .expect("told soon after the TTL")
        .unwrap();
    assert!(matches!(&*liveness.borrow(), Liveness::Lost { .. }));
    let took = cut.elapsed();
    // Not before the TTL (2 s) since the last renewal, which was at most
    // TTL/3 before the cut.
    assert!(
        took >= Duration::from_millis(1300),
        "lost after only {took:?}"
    );

    etcd.resume();
    let rejoined = eventually(Duration::from_secs(15), async || {
        Membership::join(&cluster, &MemberInfo::starting_now("a:1"))
            .await
            .is_ok()
    })
    .await;
    assert!(rejoined, "joins again once etcd is back");
}
