//! Cluster mode end to end: several `sandport serve --cluster` nodes on one
//! real etcd. The registry is shared (seeded once from the file, changed
//! through any node), each connector is checked by exactly one live node
//! (rendezvous hashing over the members), a killed node's share is taken
//! over within the lease TTL, and an etcd outage fails writes quickly while
//! the checks go on.
//!
//! Who checks a connector is seen two ways, neither by source port: every
//! connector asks the test's target for a path of its own (`/<id>`), so
//! the target counts the checks of each connector over time, and each
//! node's `/metrics` counts the requests that node sent for each
//! connector (`sandport_egress_requests_total`), which grows only on the
//! node that checks it.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use sandport_server::grpc::pb;
use tonic::Code;

use super::support::{temp_dir, write};
use super::support_cluster::{Etcd, Hits, Node, NodeSpec};

/// `--cluster-lease-ttl`: short, so that a killed node's share moves in
/// seconds.
const LEASE_TTL: Duration = Duration::from_secs(3);
const LEASE_TTL_ARG: &str = "3s";
/// Every connector's `health_check.interval`.
const INTERVAL: Duration = Duration::from_secs(1);
/// How long a change made through one node may take to show on the others
/// (a watch event: well under a second unloaded).
const PROPAGATION: Duration = Duration::from_secs(20);
/// Room for a loaded CI machine on top of what the design promises.
const SLACK: Duration = Duration::from_secs(6);
/// The measurement window for check rates.
const WINDOW: Duration = Duration::from_secs(5);

const NODES: [&str; 3] = ["node-a", "node-b", "node-c"];

/// Nine connectors the rendezvous hash spreads three to a node over
/// `NODES`; without `node-b`, its three go to both others (two and one).
fn check_ids() -> Vec<String> {
    (1..=9).map(|i| format!("check-{i}")).collect()
}

/// The rendezvous weight the cluster documents and pins:
/// `fmix64(fnv1a64(connector ++ [0xff] ++ node))`.
fn weight(connector: &str, node: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in connector
        .as_bytes()
        .iter()
        .chain(&[0xff])
        .chain(node.as_bytes())
    {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// The member that should check `connector`: the highest weight, a tie
/// to the larger node id.
fn owner(connector: &str, members: &[&str]) -> String {
    members
        .iter()
        .max_by_key(|node| (weight(connector, node), **node))
        .expect("at least one member")
        .to_string()
}

fn owners(ids: &[String], members: &[&str]) -> BTreeMap<String, String> {
    ids.iter()
        .map(|id| (id.clone(), owner(id, members)))
        .collect()
}

fn share(owners: &BTreeMap<String, String>, node: &str) -> Vec<String> {
    owners
        .iter()
        .filter(|(_, o)| *o == node)
        .map(|(id, _)| id.clone())
        .collect()
}

/// A config file entry checked every second at `/<id>` of the target.
fn yaml_entry(id: &str, port: u16) -> String {
    format!(
        "  - {{id: {id}, component: http, host: 127.0.0.1, port: {port}, health_check: {{interval: 1s, timeout: 1s, path: /{id}}}}}\n"
    )
}

/// The same as an API entry.
fn grpc_entry(id: &str, port: u16) -> pb::ConnectorConfig {
    pb::ConnectorConfig {
        id: id.into(),
        component: "http".into(),
        host: "127.0.0.1".into(),
        port: i32::from(port),
        r#type: pb::ConnectorType::Custom.into(),
        health_check: Some(pb::HealthCheckConfig {
            interval_ms: 1000,
            timeout_ms: 1000,
            path: format!("/{id}"),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn strings(ids: &[&str]) -> Vec<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

/// An etcd, a target, and nodes that share one config file. Fields drop
/// in order: the nodes are killed before etcd.
struct Rig {
    nodes: Vec<Node>,
    specs: Vec<NodeSpec>,
    hits: Hits,
    etcd: Etcd,
}

impl Rig {
    /// Starts etcd and `nodes` (at once, then waits for each), with the
    /// connectors `ids` in the config file they seed the cluster from.
    async fn start(name: &str, nodes: &[&str], ids: &[String]) -> Rig {
        let etcd = Etcd::start();
        let hits = Hits::start();
        let dir = temp_dir(name);
        let mut yaml = String::from("connectors:");
        if ids.is_empty() {
            yaml.push_str(" []\n");
        } else {
            yaml.push('\n');
            for id in ids {
                yaml.push_str(&yaml_entry(id, hits.port));
            }
        }
        let config = write(&dir, "connectors.yaml", &yaml);
        let specs: Vec<NodeSpec> = nodes
            .iter()
            .map(|id| NodeSpec {
                id: id.to_string(),
                cluster: etcd.url(),
                config: config.clone(),
                data_dir: dir.join(id),
                lease_ttl: LEASE_TTL_ARG.to_string(),
            })
            .collect();
        let mut rig = Rig {
            nodes: specs.iter().map(Node::spawn).collect(),
            specs,
            hits,
            etcd,
        };
        for node in &mut rig.nodes {
            node.ready().await;
        }
        rig
    }

    fn node(&self, id: &str) -> &Node {
        self.nodes
            .iter()
            .find(|n| n.id == id)
            .unwrap_or_else(|| panic!("{id} is not running"))
    }

    fn running(&self) -> Vec<&Node> {
        self.nodes.iter().collect()
    }

    fn take(&mut self, id: &str) -> Node {
        let at = self
            .nodes
            .iter()
            .position(|n| n.id == id)
            .unwrap_or_else(|| panic!("{id} is not running"));
        self.nodes.remove(at)
    }

    /// `kill -9`.
    fn kill_9(&mut self, id: &str) {
        self.take(id).kill_9();
    }

    /// SIGTERM, and the exit.
    fn stop(&mut self, id: &str) {
        self.take(id).terminate();
    }

    /// Starts `id` again: the same node id, config file and data
    /// directory.
    async fn restart(&mut self, id: &str) {
        let spec = self
            .specs
            .iter()
            .find(|s| s.id == id)
            .expect("a node of the rig")
            .clone();
        let mut node = Node::spawn(&spec);
        node.ready().await;
        self.nodes.push(node);
    }
}

impl Drop for Rig {
    /// A failing test shows what each node logged last.
    fn drop(&mut self) {
        if std::thread::panicking() {
            for node in &self.nodes {
                eprintln!("--- {} log (last lines) ---\n{}", node.id, node.log());
            }
        }
    }
}

/// Polls `probe` every 100 ms until it answers `Ok`, for at most `within`;
/// the panic names `what` and the last state the probe described.
/// Returns how long it took.
async fn eventually(
    what: &str,
    within: Duration,
    mut probe: impl AsyncFnMut() -> Result<(), String>,
) -> Duration {
    let started = Instant::now();
    loop {
        let last = match probe().await {
            Ok(()) => return started.elapsed(),
            Err(last) => last,
        };
        assert!(
            started.elapsed() < within,
            "not within {within:?}: {what}; last seen: {last}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Asserts that `probe` answers `Ok` at every poll for `period`.
async fn holds_for(
    what: &str,
    period: Duration,
    mut probe: impl AsyncFnMut() -> Result<(), String>,
) {
    let started = Instant::now();
    while started.elapsed() < period {
        if let Err(seen) = probe().await {
            panic!("no longer holds: {what}; seen: {seen}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until every node in `nodes` lists exactly `ids`.
async fn await_ids(nodes: &[&Node], ids: &[String]) {
    let mut want = ids.to_vec();
    want.sort();
    for node in nodes {
        eventually(
            &format!("{} lists {want:?}", node.id),
            PROPAGATION,
            async || {
                let seen = node.ids().await.map_err(|e| format!("{e:?}"))?;
                if seen == want {
                    Ok(())
                } else {
                    Err(format!("{seen:?}"))
                }
            },
        )
        .await;
    }
}

/// Waits until every node reports `want` as its whole list of ids and
/// statuses.
async fn await_statuses(nodes: &[&Node], want: &BTreeMap<String, pb::ConnectorStatus>) {
    eventually(
        &format!("every node reports {want:?}"),
        Duration::from_secs(30),
        async || {
            for node in nodes {
                let seen = node.statuses().await.map_err(|e| format!("{e:?}"))?;
                if seen != *want {
                    return Err(format!("{}: {seen:?}", node.id));
                }
            }
            Ok(())
        },
    )
    .await;
}

/// Which nodes sent requests for each of `ids` during a window of two and
/// a half check intervals (two checks of each, unloaded).
async fn checkers(nodes: &[&Node], ids: &[String]) -> BTreeMap<String, Vec<String>> {
    let mut before = Vec::new();
    for node in nodes {
        before.push(node.egress_requests().await);
    }
    tokio::time::sleep(INTERVAL * 5 / 2).await;
    let mut seen: BTreeMap<String, Vec<String>> =
        ids.iter().map(|id| (id.clone(), Vec::new())).collect();
    for (node, before) in nodes.iter().zip(before) {
        let after = node.egress_requests().await;
        for id in ids {
            let count = |counts: &BTreeMap<String, f64>| counts.get(id).copied().unwrap_or(0.0);
            if count(&after) > count(&before) {
                seen.get_mut(id).expect("an id").push(node.id.clone());
            }
        }
    }
    seen
}

/// Waits until, over one such window, each connector of `expected` is
/// checked by its expected owner and by no other node.
async fn await_owners(nodes: &[&Node], expected: &BTreeMap<String, String>, within: Duration) {
    let ids: Vec<String> = expected.keys().cloned().collect();
    let want: BTreeMap<String, Vec<String>> = expected
        .iter()
        .map(|(id, owner)| (id.clone(), vec![owner.clone()]))
        .collect();
    eventually(
        "each connector is checked by its owner alone",
        within,
        async || {
            let seen = checkers(nodes, &ids).await;
            if seen == want {
                Ok(())
            } else {
                Err(format!("checked by {seen:?}, want {want:?}"))
            }
        },
    )
    .await;
}

/// Checks at one interval each, for the connector's path on the target,
/// as bounds over a window of `length`: at least 40 % of the ticks
/// (checks go on, even on a loaded machine), and at most the ticks plus
/// two (no second node checks it too: that would double the count).
fn rate_bounds(length: Duration) -> (usize, usize) {
    let ticks = length.as_secs_f64() / INTERVAL.as_secs_f64();
    ((ticks * 0.4).floor() as usize, ticks.ceil() as usize + 2)
}

/// Counts the requests for each of `ids` over the next `WINDOW` and
/// asserts each count lies within [`rate_bounds`].
async fn assert_checked_once_per_interval(hits: &Hits, ids: &[String], when: &str) {
    let from = Instant::now();
    tokio::time::sleep(WINDOW).await;
    let to = Instant::now();
    let (low, high) = rate_bounds(to - from);
    let counts: BTreeMap<&str, usize> = ids
        .iter()
        .map(|id| (id.as_str(), hits.count(&format!("/{id}"), from, to)))
        .collect();
    for (id, count) in &counts {
        assert!(
            (low..=high).contains(count),
            "{when}: {id} was checked {count} times in {:?} (want {low}..={high} at one check a second); all: {counts:?}",
            to - from
        );
    }
}

fn register(entry: pb::ConnectorConfig) -> pb::RegisterConnectorRequest {
    pb::RegisterConnectorRequest {
        config: Some(entry),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_file_is_seeded_once_and_changes_through_any_node_reach_every_node() {
    let seeded = strings(&["s1", "s2"]);
    let mut rig = Rig::start("cluster-registry", &NODES, &seeded).await;
    let port = rig.hits.port;
    await_ids(&rig.running(), &seeded).await;

    // Registered through A: C gets it, every node lists it.
    rig.node("node-a")
        .client()
        .await
        .register_connector(register(grpc_entry("r1", port)))
        .await
        .expect("register r1 on node-a");
    let c = rig.node("node-c");
    eventually("node-c gets r1", PROPAGATION, async || {
        let got = c
            .client()
            .await
            .get_connector(pb::GetConnectorRequest { id: "r1".into() })
            .await
            .map_err(|e| e.to_string())?
            .into_inner();
        let config = got.config.expect("a config");
        assert_eq!(config.port, i32::from(port));
        assert_eq!(config.component, "http");
        Ok(())
    })
    .await;
    await_ids(&rig.running(), &strings(&["r1", "s1", "s2"])).await;

    // Updated through B: every node shows the new description.
    let mut updated = grpc_entry("r1", port);
    updated.description = "updated through node-b".into();
    rig.node("node-b")
        .client()
        .await
        .update_connector(pb::UpdateConnectorRequest {
            config: Some(updated),
        })
        .await
        .expect("update r1 on node-b");
    for node in rig.running() {
        eventually(
            &format!("{} shows the update", node.id),
            PROPAGATION,
            async || {
                let got = node
                    .client()
                    .await
                    .get_connector(pb::GetConnectorRequest { id: "r1".into() })
                    .await
                    .map_err(|e| e.to_string())?
                    .into_inner();
                let description = got.connector.expect("info").description;
                if description == "updated through node-b" {
                    Ok(())
                } else {
                    Err(description)
                }
            },
        )
        .await;
    }

    // Removed through C: gone everywhere.
    rig.node("node-c")
        .client()
        .await
        .remove_connector(pb::RemoveConnectorRequest { id: "r1".into() })
        .await
        .expect("remove r1 on node-c");
    let a = rig.node("node-a");
    eventually("node-a no longer finds r1", PROPAGATION, async || {
        match a
            .client()
            .await
            .get_connector(pb::GetConnectorRequest { id: "r1".into() })
            .await
        {
            Err(e) if e.code() == Code::NotFound => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    await_ids(&rig.running(), &seeded).await;

    // A seeded entry removed stays removed: a node that starts again with
    // the same file does not seed it a second time.
    rig.node("node-a")
        .client()
        .await
        .remove_connector(pb::RemoveConnectorRequest { id: "s1".into() })
        .await
        .expect("remove s1 on node-a");
    let left = strings(&["s2"]);
    await_ids(&rig.running(), &left).await;
    rig.stop("node-c");
    rig.restart("node-c").await;
    await_ids(&rig.running(), &left).await;
    let nodes = rig.running();
    holds_for(
        "every node lists s2 alone after node-c started again",
        Duration::from_secs(3),
        async || {
            for node in &nodes {
                let ids = node.ids().await.map_err(|e| format!("{e:?}"))?;
                if ids != left {
                    return Err(format!("{}: {ids:?}", node.id));
                }
            }
            Ok(())
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_connector_is_checked_by_exactly_one_node_and_every_node_reports_the_same_statuses() {
    let ids = check_ids();
    let expected = owners(&ids, &NODES);
    for node in NODES {
        assert!(
            !share(&expected, node).is_empty(),
            "the ids give {node} a share: {expected:?}"
        );
    }
    let rig = Rig::start("cluster-owners", &NODES, &ids).await;
    rig.hits.set_status("/check-2", 503);
    rig.hits.set_status("/check-6", 503);

    await_owners(&rig.running(), &expected, Duration::from_secs(30)).await;
    assert_checked_once_per_interval(&rig.hits, &ids, "three nodes").await;

    // The owner publishes what it finds; every node reports the same.
    let mut statuses: BTreeMap<String, pb::ConnectorStatus> = ids
        .iter()
        .map(|id| (id.clone(), pb::ConnectorStatus::Healthy))
        .collect();
    statuses.insert("check-2".into(), pb::ConnectorStatus::Unhealthy);
    statuses.insert("check-6".into(), pb::ConnectorStatus::Unhealthy);
    await_statuses(&rig.running(), &statuses).await;

    // A change reaches every node, both ways.
    rig.hits.set_status("/check-1", 503);
    statuses.insert("check-1".into(), pb::ConnectorStatus::Unhealthy);
    await_statuses(&rig.running(), &statuses).await;
    rig.hits.set_status("/check-1", 200);
    statuses.insert("check-1".into(), pb::ConnectorStatus::Healthy);
    await_statuses(&rig.running(), &statuses).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_nodes_share_is_taken_over_within_the_ttl_and_moves_back_when_it_returns() {
    let mut ids = check_ids();
    let mut rig = Rig::start("cluster-failover", &NODES, &ids).await;
    let port = rig.hits.port;
    await_owners(
        &rig.running(),
        &owners(&ids, &NODES),
        Duration::from_secs(30),
    )
    .await;

    // Registered through B just before it dies: not lost with it.
    rig.node("node-b")
        .client()
        .await
        .register_connector(register(grpc_entry("via-b", port)))
        .await
        .expect("register via-b on node-b");
    ids.push("via-b".into());
    ids.sort();
    await_ids(&rig.running(), &ids).await;
    let expected = owners(&ids, &NODES);
    let b_share = share(&expected, "node-b");
    assert!(!b_share.is_empty(), "the ids give node-b a share");

    rig.kill_9("node-b");
    let killed = Instant::now();
    // Anything after this comes from A or C (B's last request, sent just
    // before the kill, may be counted a moment after it).
    let after = killed + Duration::from_millis(500);
    let hits = &rig.hits;
    let took = eventually(
        "node-b's share is checked by the survivors",
        Duration::from_secs(30),
        async || {
            let waiting: Vec<&String> = b_share
                .iter()
                .filter(|id| hits.first_since(&format!("/{id}"), after).is_none())
                .collect();
            if waiting.is_empty() {
                Ok(())
            } else {
                Err(format!("not checked since the kill: {waiting:?}"))
            }
        },
    )
    .await;
    let limit = LEASE_TTL + INTERVAL + SLACK;
    assert!(
        took <= limit,
        "node-b's share was taken over {took:?} after the kill (TTL {LEASE_TTL:?} + interval {INTERVAL:?}, at most {limit:?})"
    );

    let survivors = ["node-a", "node-c"];
    await_owners(
        &rig.running(),
        &owners(&ids, &survivors),
        Duration::from_secs(20),
    )
    .await;
    assert_checked_once_per_interval(&rig.hits, &ids, "after node-b was killed").await;
    await_ids(&rig.running(), &ids).await;

    // B comes back under its id: its share moves back to it, with no
    // connector checked twice for longer than one check.
    let back = Instant::now();
    rig.restart("node-b").await;
    await_owners(&rig.running(), &expected, Duration::from_secs(30)).await;
    let settled = Instant::now();
    let (_, high) = rate_bounds(settled - back);
    for id in &b_share {
        let count = rig.hits.count(&format!("/{id}"), back, settled);
        assert!(
            count <= high + 1,
            "{id} was checked {count} times in the {:?} node-b took to take it back (at most {} at one check a second and one overlap)",
            settled - back,
            high + 1
        );
    }
    assert_checked_once_per_interval(&rig.hits, &ids, "after node-b came back").await;
    await_ids(&rig.running(), &ids).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_registers_of_one_id_on_two_nodes_let_exactly_one_win() {
    let rig = Rig::start("cluster-race", &["node-a", "node-c"], &[]).await;
    let port = rig.hits.port;
    let mut a = rig.node("node-a").client().await;
    let mut c = rig.node("node-c").client().await;
    let entry = |id: &str, via: &str| {
        let mut entry = grpc_entry(id, port);
        entry.description = format!("through {via}");
        // No checks: the race is about the registry.
        entry.health_check = Some(pb::HealthCheckConfig {
            enabled: Some(false),
            ..Default::default()
        });
        entry
    };

    let mut winners = BTreeMap::new();
    for i in 0..20 {
        let id = format!("race-{i}");
        let (on_a, on_c) = tokio::join!(
            a.register_connector(register(entry(&id, "node-a"))),
            c.register_connector(register(entry(&id, "node-c"))),
        );
        let (winner, loser) = match (on_a, on_c) {
            (Ok(_), Err(lost)) => ("node-a", lost),
            (Err(lost), Ok(_)) => ("node-c", lost),
            (Ok(_), Ok(_)) => panic!("{id}: both registers succeeded"),
            (Err(x), Err(y)) => panic!("{id}: both registers failed: {x:?}, {y:?}"),
        };
        assert_eq!(
            loser.code(),
            Code::AlreadyExists,
            "{id}: the loser's answer: {loser:?}"
        );
        winners.insert(id, format!("through {winner}"));
    }

    // Both nodes hold the winner's entry for every id.
    for node in rig.running() {
        eventually(
            &format!("{} holds every winner", node.id),
            PROPAGATION,
            async || {
                let listed = node
                    .client()
                    .await
                    .list_connectors(pb::ListConnectorsRequest::default())
                    .await
                    .map_err(|e| e.to_string())?
                    .into_inner();
                let seen: BTreeMap<String, String> = listed
                    .connectors
                    .into_iter()
                    .map(|c| (c.id, c.description))
                    .collect();
                if seen == winners {
                    Ok(())
                } else {
                    Err(format!("{seen:?}"))
                }
            },
        )
        .await;
    }
}

/// How soon a write must fail while etcd is down: the cluster's etcd call
/// timeout (5 s by default) and slack; the point is that it does not hang.
const UNAVAILABLE_WITHIN: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_etcd_down_registers_fail_fast_as_unavailable_and_checks_go_on() {
    let members = ["node-a", "node-b"];
    let mut ids = strings(&["d1", "d2", "d3", "d4"]);
    let mut rig = Rig::start("cluster-outage", &members, &ids).await;
    let port = rig.hits.port;
    await_owners(
        &rig.running(),
        &owners(&ids, &members),
        Duration::from_secs(30),
    )
    .await;
    let healthy: BTreeMap<String, pb::ConnectorStatus> = ids
        .iter()
        .map(|id| (id.clone(), pb::ConnectorStatus::Healthy))
        .collect();
    await_statuses(&rig.running(), &healthy).await;

    rig.etcd.kill();
    let down = Instant::now();
    let attempt = async |node: &Node, id: &str| {
        let mut client = node.client().await;
        let started = Instant::now();
        let answer = tokio::time::timeout(
            Duration::from_secs(30),
            client.register_connector(register(grpc_entry(id, port))),
        )
        .await
        .unwrap_or_else(|_| panic!("{}: register hung with etcd down", node.id));
        let took = started.elapsed();
        let err = answer.expect_err("register succeeded with etcd down");
        assert_eq!(err.code(), Code::Unavailable, "{}: {err:?}", node.id);
        assert!(
            took <= UNAVAILABLE_WITHIN,
            "{}: register failed only after {took:?}",
            node.id
        );
    };
    tokio::join!(
        attempt(rig.node("node-a"), "during-a"),
        attempt(rig.node("node-b"), "during-b"),
    );

    // The checks go on past the lease TTL: nobody can take over while
    // etcd is down, so each node keeps its share.
    let past_ttl = (down + LEASE_TTL + 2 * INTERVAL).saturating_duration_since(Instant::now());
    tokio::time::sleep(past_ttl).await;
    assert_checked_once_per_interval(&rig.hits, &ids, "etcd down").await;

    // etcd back: a register works again (retried while the nodes
    // reconnect), and the failed ones left nothing behind.
    rig.etcd.resume();
    let a = rig.node("node-a");
    eventually(
        "a register on node-a works again",
        Duration::from_secs(30),
        async || match a
            .client()
            .await
            .register_connector(register(grpc_entry("after", port)))
            .await
        {
            Ok(_) => Ok(()),
            // An earlier attempt that timed out may have landed.
            Err(e) if e.code() == Code::AlreadyExists => Ok(()),
            Err(e) if e.code() == Code::Unavailable => Err(format!("{e:?}")),
            Err(e) => panic!("register after the outage: {e:?}"),
        },
    )
    .await;
    ids.push("after".into());
    ids.sort();
    await_ids(&rig.running(), &ids).await;
    await_owners(
        &rig.running(),
        &owners(&ids, &members),
        Duration::from_secs(30),
    )
    .await;
    assert_checked_once_per_interval(&rig.hits, &ids, "etcd back").await;
}

/// The description every node shows for `id`.
async fn description(node: &Node, id: &str) -> Result<String, String> {
    let got = node
        .client()
        .await
        .get_connector(pb::GetConnectorRequest { id: id.into() })
        .await
        .map_err(|e| e.to_string())?
        .into_inner();
    Ok(got.connector.ok_or("no info")?.description)
}

/// `POST /api/v1/config/reload` on `node`: the status and the answer.
async fn reload(node: &Node) -> (u16, serde_json::Value) {
    let answer = reqwest::Client::new()
        .post(format!("{}/api/v1/config/reload", node.http))
        .send()
        .await
        .expect("POST reload");
    let status = answer.status().as_u16();
    (status, answer.json().await.expect("JSON"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reloaded_config_file_reaches_every_node_and_leaves_the_api_entries_alone() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let seeded = strings(&["changed", "dropped", "kept"]);
    let rig = Rig::start("cluster-reload", &NODES, &seeded).await;
    let port = rig.hits.port;
    await_ids(&rig.running(), &seeded).await;
    let mut api = grpc_entry("api", port);
    api.description = "registered through the API".into();
    rig.node("node-a")
        .client()
        .await
        .register_connector(register(api))
        .await
        .expect("register api on node-a");
    await_ids(
        &rig.running(),
        &strings(&["api", "changed", "dropped", "kept"]),
    )
    .await;

    // One entry added, one changed, one removed; the API's id named too.
    let edited = format!(
        "connectors:\n{}{}  - {{id: changed, description: edited, component: http, host: 127.0.0.1, port: {port}, health_check: {{interval: 1s, timeout: 1s, path: /changed}}}}\n  - {{id: api, description: from the file, component: http, host: 127.0.0.1, port: {port}}}\n",
        yaml_entry("kept", port),
        yaml_entry("added", port),
    );
    let config = rig.specs[0].config.clone();
    let dir = config.parent().expect("a directory").to_path_buf();
    write(&dir, "connectors.yaml.tmp", &edited);
    std::fs::rename(dir.join("connectors.yaml.tmp"), &config).expect("rename");
    // Each node also sees the file change and reloads it: the reloads
    // converge, and the API's entry is skipped by every one.
    let (status, report) = reload(rig.node("node-b")).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["applied"], true, "{report}");
    assert_eq!(report["skipped"], serde_json::json!(["api"]), "{report}");
    assert_eq!(report["problems"], serde_json::json!([]), "{report}");
    let new_set = strings(&["added", "api", "changed", "kept"]);
    await_ids(&rig.running(), &new_set).await;
    for node in rig.running() {
        eventually(
            &format!("{} shows the file's change and the API's entry", node.id),
            PROPAGATION,
            async || {
                let changed = description(node, "changed").await?;
                let api = description(node, "api").await?;
                if changed == "edited" && api == "registered through the API" {
                    Ok(())
                } else {
                    Err(format!("changed: {changed:?}, api: {api:?}"))
                }
            },
        )
        .await;
    }

    // A broken file changes nothing, on any node.
    write(
        &dir,
        "connectors.yaml",
        &edited.replace("interval: 1s", "interval: soon"),
    );
    let (status, answer) = reload(rig.node("node-c")).await;
    assert_eq!(status, 422, "{answer}");
    let status: serde_json::Value =
        reqwest::get(format!("{}/api/v1/config/status", rig.node("node-c").http))
            .await
            .expect("GET config status")
            .json()
            .await
            .expect("JSON");
    assert_eq!(status["last_reload"]["applied"], false, "{status}");
    holds_for(
        "every node keeps the reloaded set",
        Duration::from_secs(2),
        async || {
            for node in rig.running() {
                let ids = node.ids().await.map_err(|e| format!("{e:?}"))?;
                if ids != new_set {
                    return Err(format!("{}: {ids:?}", node.id));
                }
                let changed = description(node, "changed").await?;
                if changed != "edited" {
                    return Err(format!("{}: changed: {changed:?}", node.id));
                }
            }
            Ok(())
        },
    )
    .await;
}
