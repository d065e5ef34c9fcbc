//! The check history and uptime read alike on every node of a cluster:
//! a node answering `GetHistory`, `ListConnectors`' uptime or the REST
//! uptime adds up what every live member recorded of the connector.
//!
//! To have one connector's checks recorded on two nodes, node-c gets no
//! token for its peers: it cannot forward, so its live checks of node-a's
//! connector run (and are recorded) on node-c, while the target fails
//! them. node-a's own checks pass. A node reading the history must then
//! show both: the points of both nodes, and an uptime of the passing
//! checks of both over the checks of both.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use sandport_server::grpc::pb;

use super::cluster_forward::{NODES, Rig, WITHIN, eventually, live_check, owned_by};
use super::support_cluster::Node;

/// `id`'s raw points up to `until` as `node` answers; `local_only` asks
/// for the node's own records, as a peer does.
async fn points(
    node: &Node,
    id: &str,
    until: SystemTime,
    local_only: bool,
) -> Vec<pb::HistoryPoint> {
    let mut request = node.request(pb::GetHistoryRequest {
        id: id.into(),
        since: None,
        until: Some(until.into()),
        step_seconds: 0,
        limit: 0,
    });
    if local_only {
        request.metadata_mut().insert(
            "x-sandport-forwarded-by",
            "the-test".parse().expect("a header"),
        );
    }
    node.client()
        .await
        .get_history(request)
        .await
        .expect("GetHistory answers")
        .into_inner()
        .points
}

/// `id`'s day uptime in `node`'s `ListConnectors`.
async fn listed_uptime(node: &Node, id: &str) -> Option<f64> {
    let listed = node
        .client()
        .await
        .list_connectors(node.request(pb::ListConnectorsRequest::default()))
        .await
        .expect("ListConnectors answers")
        .into_inner();
    listed
        .connectors
        .into_iter()
        .find(|c| c.id == id)
        .and_then(|c| c.uptime)
        .and_then(|u| u.day)
}

/// `id`'s day uptime in `node`'s REST `/uptime`.
async fn rest_uptime(node: &Node, id: &str) -> Option<f64> {
    let mut get = node
        .http_client()
        .get(format!("{}/api/v1/connectors/{id}/uptime", node.http));
    if let Some(token) = &node.token {
        get = get.bearer_auth(token);
    }
    let body: serde_json::Value = get
        .send()
        .await
        .expect("REST answers")
        .json()
        .await
        .expect("JSON");
    body["uptime"]["day"].as_f64()
}

fn passing(points: &[pb::HistoryPoint]) -> usize {
    points
        .iter()
        .filter(|p| {
            matches!(
                p.status(),
                pb::ConnectorStatus::Healthy | pb::ConnectorStatus::Degraded
            )
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_and_uptime_read_alike_on_every_node_adding_up_what_each_recorded() {
    let id = owned_by("node-a");
    let rig = Rig::start_node_c_without_peer_token("cluster-history", &id).await;
    rig.settled(&id).await;

    // Two failing checks recorded on node-c, one passing more on node-a.
    rig.hits.set_status(&format!("/{id}"), 500);
    for _ in 0..2 {
        let answer = live_check(rig.node("node-c"), &id).await.expect("answers");
        assert_ne!(answer.status(), pb::ConnectorStatus::Healthy);
    }
    rig.hits.set_status(&format!("/{id}"), 200);
    let answer = live_check(rig.node("node-b"), &id).await.expect("answers");
    assert_eq!(answer.status(), pb::ConnectorStatus::Healthy);

    // Each node's own records, once the writers have committed them.
    let until = SystemTime::now() + Duration::from_secs(1);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let own: BTreeMap<&str, Vec<pb::HistoryPoint>> = {
        let mut own = BTreeMap::new();
        for node in NODES {
            own.insert(node, points(rig.node(node), &id, until, true).await);
        }
        own
    };
    assert!(
        own["node-c"].len() >= 2 && passing(&own["node-c"]) == 0,
        "node-c recorded its failing checks: {:?}",
        own["node-c"]
    );
    assert!(passing(&own["node-a"]) >= 2, "{:?}", own["node-a"]);
    let mut all: Vec<pb::HistoryPoint> = own.values().flatten().cloned().collect();
    all.sort_by_key(|p| {
        let at = p.at.expect("a time");
        (at.seconds, at.nanos)
    });
    let total = all.len();
    let expected = passing(&all) as f64 * 100.0 / total as f64;
    assert!(expected < 100.0, "node-c's failures count");

    // node-a and node-b read every member's records; node-c, which cannot
    // call its peers, reads its own.
    for node in ["node-a", "node-b"] {
        let node = rig.node(node);
        let merged = points(node, &id, until, false).await;
        assert_eq!(merged, all, "{}'s history is every node's", node.id);
        eventually("the merged uptime", WITHIN, || async {
            let listed = listed_uptime(node, &id).await;
            let rest = rest_uptime(node, &id).await;
            if listed == Some(expected) && rest == Some(expected) {
                Ok(())
            } else {
                Err(format!(
                    "{}: listed {listed:?}, REST {rest:?}, expected {expected}",
                    node.id
                ))
            }
        })
        .await;
    }
    assert_eq!(
        points(rig.node("node-c"), &id, until, false).await,
        own["node-c"]
    );

    // A member that dies is left out, and the read still answers.
    let mut rig = rig;
    rig.nodes.get_mut("node-c").expect("node-c runs").kill_9();
    let merged = points(rig.node("node-b"), &id, until, false).await;
    assert_eq!(merged.len(), total - own["node-c"].len());
    let log = rig.node("node-b").log();
    assert!(
        log.contains("answering without its records until it answers"),
        "the missing member is logged:\n{log}"
    );
}
