//! Join, leave, lease expiry, duplicate node ids.

use std::time::{Duration, Instant};

use sandport_cluster::{ClusterError, Liveness, MemberInfo, MemberWatch, Membership, NodeId};

use crate::support::Etcd;

const PREFIX: &str = "/sandport/";

fn names(watch: &MemberWatch) -> Vec<String> {
    watch.members().keys().map(NodeId::to_string).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_join_and_leave_and_every_watch_sees_it() {
    let etcd = Etcd::start();
    let a = etcd.connect("node-a", PREFIX).await;
    let b = etcd.connect("node-b", PREFIX).await;
    let mut watch = MemberWatch::new(&a);
    assert!(watch.changed().await.unwrap().is_empty());

    let joined_a = Membership::join(&a, &MemberInfo::starting_now("10.0.0.1:50051"))
        .await
        .unwrap();
    watch.changed().await.unwrap();
    assert_eq!(names(&watch), ["node-a"]);
    let joined_b = Membership::join(&b, &MemberInfo::starting_now("10.0.0.2:50051"))
        .await
        .unwrap();
    watch.changed().await.unwrap();
    assert_eq!(names(&watch), ["node-a", "node-b"]);
    let info = &watch.members()[&NodeId::new("node-b").unwrap()];
    assert_eq!(info.address, "10.0.0.2:50051");
    assert!(info.started_at_ms > 0);

    joined_b.leave().await.unwrap();
    watch.changed().await.unwrap();
    assert_eq!(names(&watch), ["node-a"]);
    // A fresh watch starts from the members now.
    let mut fresh = MemberWatch::new(&b);
    assert_eq!(fresh.changed().await.unwrap().len(), 1);
    joined_a.leave().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_that_stops_renewing_is_gone_after_the_ttl() {
    let etcd = Etcd::start();
    let a = etcd.connect("node-a", PREFIX).await;
    let b = etcd.connect("node-b", PREFIX).await;
    let _joined_a = Membership::join(&a, &MemberInfo::starting_now("a:1"))
        .await
        .unwrap();
    let joined_b = Membership::join(&b, &MemberInfo::starting_now("b:1"))
        .await
        .unwrap();
    let mut watch = MemberWatch::new(&a);
    assert_eq!(watch.changed().await.unwrap().len(), 2);

    // Dropped without leave: keep-alive stops, as when the node is killed.
    let stopped = Instant::now();
    drop(joined_b);
    let members = tokio::time::timeout(Duration::from_secs(10), watch.changed())
        .await
        .expect("the member leaves within the TTL and etcd's expiry check")
        .unwrap();
    assert_eq!(members.len(), 1);
    let took = stopped.elapsed();
    // Lease TTL 2 s from the last renewal, which was at most TTL/3 before
    // the drop; etcd checks expiry every 500 ms.
    assert!(
        took >= Duration::from_millis(1300),
        "gone after only {took:?}"
    );
    // With slack for a loaded machine.
    assert!(took <= Duration::from_secs(6), "gone after {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_lease_is_gone_is_told_it_lost_membership() {
    let etcd = Etcd::start();
    let a = etcd.connect("node-a", PREFIX).await;
    let joined = Membership::join(&a, &MemberInfo::starting_now("a:1"))
        .await
        .unwrap();
    let mut liveness = joined.liveness();
    assert_eq!(*liveness.borrow(), Liveness::Member);

    // Another client revokes the lease: what etcd does when it expires.
    let mut client = etcd_client::Client::connect([etcd.url().replace("etcd://", "http://")], None)
        .await
        .unwrap();
    client.lease_revoke(joined.lease_id()).await.unwrap();
    tokio::time::timeout(Duration::from_secs(6), liveness.changed())
        .await
        .expect("told at the next renewal")
        .unwrap();
    assert!(
        matches!(&*liveness.borrow(), Liveness::Lost { .. }),
        "{:?}",
        *liveness.borrow()
    );
    // The node can join again under a new lease.
    let again = Membership::join(&a, &MemberInfo::starting_now("a:1"))
        .await
        .unwrap();
    assert_ne!(again.lease_id(), joined.lease_id());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_id_held_by_a_live_node_is_refused() {
    let etcd = Etcd::start();
    let first = etcd.connect("node-a", PREFIX).await;
    let twin = etcd.connect("node-a", PREFIX).await;
    let _held = Membership::join(&first, &MemberInfo::starting_now("10.0.0.1:50051"))
        .await
        .unwrap();
    let started = Instant::now();
    let err = Membership::join(&twin, &MemberInfo::starting_now("10.0.0.9:50051"))
        .await
        .unwrap_err();
    match &err {
        ClusterError::NodeIdTaken { node_id, address } => {
            assert_eq!(node_id, "node-a");
            assert_eq!(address, "10.0.0.1:50051");
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("another --node-id"), "{err}");
    // It waited one TTL (2 s) for a dead holder's lease to run out, not
    // much more (slack for a loaded machine).
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_node_takes_its_id_back_once_the_old_lease_expires() {
    let etcd = Etcd::start();
    let before = etcd.connect("node-a", PREFIX).await;
    let killed = Membership::join(&before, &MemberInfo::starting_now("a:1"))
        .await
        .unwrap();
    drop(killed);
    let after = etcd.connect("node-a", PREFIX).await;
    let rejoined = Membership::join(&after, &MemberInfo::starting_now("a:2"))
        .await
        .unwrap();
    let mut watch = MemberWatch::new(&after);
    let members = watch.changed().await.unwrap();
    assert_eq!(members[&NodeId::new("node-a").unwrap()].address, "a:2");
    rejoined.leave().await.unwrap();
}
