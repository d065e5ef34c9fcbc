//! A live `HealthCheck` asked of a node that does not own the connector is
//! answered by the owner, and a `HealthCheckAll` asked of any node checks
//! each connector once, on its owner: three `sandport serve --cluster`
//! nodes on one real etcd, plain gRPC on loopback.
//!
//! Who checked is read from each node's `/metrics`
//! (`sandport_egress_requests_total` by connector, which grows only on the
//! node that sent the check's request) and from the test's target, which
//! counts the requests for each connector's own path. The connector is
//! checked once an hour, so after its first scheduled check every request
//! is a live check's.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sandport_cluster::{NodeId, owner};
use sandport_server::auth::digest_hex;
use sandport_server::grpc::pb;

use super::support::{TestCa, temp_dir, write};
use super::support_cluster::{Etcd, Hits, Node, NodeSpec};

pub(super) const NODES: [&str; 3] = ["node-a", "node-b", "node-c"];
const LEASE_TTL_ARG: &str = "3s";
/// Room for a loaded machine: node start, etcd watch events, a check.
pub(super) const WITHIN: Duration = Duration::from_secs(30);

/// The first of `check-N` that rendezvous hashing gives `node` among
/// `NODES`.
pub(super) fn owned_by(node: &str) -> String {
    let members: Vec<NodeId> = NODES
        .iter()
        .map(|n| NodeId::new(n).expect("a node id"))
        .collect();
    (1..)
        .map(|n| format!("check-{n}"))
        .find(|id| owner(id, members.iter()).is_some_and(|o| o.as_str() == node))
        .expect("some connector is the node's")
}

/// Polls `probe` every 100 ms until it answers `Some`, for at most `within`.
pub(super) async fn eventually<T, F, Fut>(what: &str, within: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + within;
    loop {
        match probe().await {
            Ok(value) => return value,
            Err(last) if Instant::now() >= deadline => {
                panic!("{what} not within {within:?}; last: {last}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// The requests `node` sent for `id`.
async fn egress(node: &Node, id: &str) -> f64 {
    node.egress_requests()
        .await
        .get(id)
        .copied()
        .unwrap_or_default()
}

/// A live (not cached) check of `id` asked of `node`.
pub(super) async fn live_check(
    node: &Node,
    id: &str,
) -> Result<pb::HealthCheckResponse, tonic::Status> {
    node.client()
        .await
        .health_check(node.request(pb::HealthCheckRequest {
            id: id.into(),
            cached: false,
        }))
        .await
        .map(tonic::Response::into_inner)
}

/// A node's certificate serves its API and, as its client certificate,
/// calls its peers.
const NODE_USAGES: [rcgen::ExtendedKeyUsagePurpose; 2] = [
    rcgen::ExtendedKeyUsagePurpose::ServerAuth,
    rcgen::ExtendedKeyUsagePurpose::ClientAuth,
];

/// The token the tests' calls send (admin), and the one the nodes send
/// each other (read).
const CALLER: &str = "caller-token-0123456789";
const PEER: &str = "peer-token-0123456789";

/// A tokens file admitting [`CALLER`] and the peers' token, and the file
/// `--cluster-token-file` reads the latter from.
struct Tokens {
    tokens: PathBuf,
    peer_token: PathBuf,
}

impl Tokens {
    fn write(dir: &Path) -> Tokens {
        let tokens = write(
            dir,
            "tokens.yaml",
            &format!(
                "tokens:\n  - {{name: test, role: admin, sha256: {}}}\n  - {{name: peers, role: read, sha256: {}}}\n",
                digest_hex(CALLER),
                digest_hex(PEER)
            ),
        );
        let peer_token = write(dir, "peer-token", &format!("{PEER}\n"));
        Tokens { tokens, peer_token }
    }
}

pub(super) struct Rig {
    pub(super) nodes: BTreeMap<&'static str, Node>,
    pub(super) hits: Hits,
    _etcd: Etcd,
}

impl Rig {
    /// Starts etcd and the three nodes; `flags(node)` gives a node's
    /// extra flags and the token the test's calls send it; with `ca`, the
    /// nodes serve TLS with certificates it signed.
    pub(super) async fn start(
        name: &str,
        ids: &[&str],
        flags: impl Fn(&str) -> (Vec<String>, Option<String>),
        ca: Option<&str>,
    ) -> Rig {
        let etcd = Etcd::start();
        let hits = Hits::start();
        let dir = temp_dir(name);
        let mut yaml = String::from("connectors:\n");
        for id in ids {
            yaml.push_str(&format!(
                "  - {{id: {id}, component: http, host: 127.0.0.1, port: {}, health_check: {{interval: 1h, timeout: 2s, path: /{id}}}}}\n",
                hits.port
            ));
        }
        let config = write(&dir, "connectors.yaml", &yaml);
        let mut nodes: BTreeMap<&'static str, Node> = NODES
            .iter()
            .map(|id| {
                let spec = NodeSpec {
                    id: id.to_string(),
                    cluster: etcd.url(),
                    config: config.clone(),
                    data_dir: dir.join(id),
                    lease_ttl: LEASE_TTL_ARG.to_string(),
                };
                let (extra, token) = flags(id);
                let mut node = Node::spawn_with(&spec, &extra, token.as_deref());
                if let Some(ca) = ca {
                    node.trust(ca);
                }
                (*id, node)
            })
            .collect();
        for node in nodes.values_mut() {
            node.ready().await;
        }
        Rig {
            nodes,
            hits,
            _etcd: etcd,
        }
    }

    /// The three nodes taking tokens; node-a and node-b call their peers
    /// with the peers' token, node-c has none (it cannot call them).
    pub(super) async fn start_node_c_without_peer_token(name: &str, id: &str) -> Rig {
        let files = temp_dir(&format!("{name}-files"));
        let Tokens { tokens, peer_token } = Tokens::write(&files);
        Rig::start(
            name,
            &[id],
            |node| {
                let mut flags = vec!["--tokens".to_string(), tokens.display().to_string()];
                if node != "node-c" {
                    flags.push("--cluster-token-file".into());
                    flags.push(peer_token.display().to_string());
                }
                (flags, Some(CALLER.to_string()))
            },
            None,
        )
        .await
    }

    /// Every node sees all three members, and node-a made its first
    /// scheduled check of `id`: from here on only live checks send
    /// requests for it.
    pub(super) async fn settled(&self, id: &str) {
        eventually("the owner's first check", WITHIN, || async {
            let sent = egress(self.node("node-a"), id).await;
            if sent >= 1.0 {
                Ok(())
            } else {
                Err(format!("node-a sent {sent}"))
            }
        })
        .await;
        for node in NODES {
            eventually("three members everywhere", WITHIN, || async {
                let members = members(self.node(node)).await;
                if members == Some(3.0) {
                    Ok(())
                } else {
                    Err(format!("{node} sees {members:?}"))
                }
            })
            .await;
        }
    }

    pub(super) fn node(&self, id: &str) -> &Node {
        self.nodes
            .get(id)
            .unwrap_or_else(|| panic!("{id} is not running"))
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for node in self.nodes.values() {
                eprintln!("--- {} log (last lines) ---\n{}", node.id, node.log());
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_check_on_a_non_owner_runs_on_the_owner_and_falls_back_when_the_owner_dies() {
    let id = owned_by("node-a");
    let mut rig = Rig::start("cluster-forward", &[&id], |_| (Vec::new(), None), None).await;
    let path = format!("/{id}");

    rig.settled(&id).await;

    let owner_before = egress(rig.node("node-a"), &id).await;
    let asked_before = egress(rig.node("node-b"), &id).await;
    let start = Instant::now();
    let answer = live_check(rig.node("node-b"), &id)
        .await
        .expect("the live check answers");
    assert_eq!(answer.id, id);
    assert_eq!(answer.status(), pb::ConnectorStatus::Healthy, "{answer:?}");
    assert_eq!(
        egress(rig.node("node-a"), &id).await,
        owner_before + 1.0,
        "the owner ran the check"
    );
    assert_eq!(
        egress(rig.node("node-b"), &id).await,
        asked_before,
        "the node asked sent nothing: it held no instance"
    );
    assert_eq!(rig.hits.count(&path, start, Instant::now()), 1);
    assert_eq!(
        egress(rig.node("node-c"), &id).await,
        0.0,
        "the third node took no part"
    );

    // The owner dies without a word: the node asked still answers, first
    // by checking itself while the dead owner's lease lasts, then through
    // the new owner.
    rig.nodes.get_mut("node-a").expect("node-a runs").kill_9();
    let killed = Instant::now();
    let answer = live_check(rig.node("node-b"), &id)
        .await
        .expect("a live check answers with the owner gone");
    assert_eq!(answer.status(), pb::ConnectorStatus::Healthy, "{answer:?}");
    assert!(
        killed.elapsed() < Duration::from_secs(10),
        "answered in {:?}",
        killed.elapsed()
    );
    let answered_here =
        egress(rig.node("node-b"), &id).await + egress(rig.node("node-c"), &id).await;
    assert!(answered_here >= 1.0, "a live node checked");
    let log = rig.node("node-b").log();
    assert!(
        log.contains("checking on this node until it answers"),
        "the fallback is logged:\n{log}"
    );
}

/// `sandport_cluster_members` as `node` exposes it.
async fn members(node: &Node) -> Option<f64> {
    let mut get = node.http_client().get(format!("{}/metrics", node.http));
    if let Some(token) = &node.token {
        get = get.bearer_auth(token);
    }
    let text = get.send().await.ok()?.text().await.ok()?;
    text.lines()
        .find_map(|line| line.strip_prefix("sandport_cluster_members "))
        .and_then(|v| v.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_tokens_a_node_with_the_peer_token_forwards_and_one_without_checks_itself() {
    let id = owned_by("node-a");
    let rig = Rig::start_node_c_without_peer_token("cluster-forward-tokens", &id).await;
    rig.settled(&id).await;
    let log = rig.node("node-c").log();
    assert!(
        log.contains("--cluster-token-file"),
        "node-c says once why it does not forward:\n{log}"
    );

    // node-b forwards, with its token, to the owner.
    let owner_before = egress(rig.node("node-a"), &id).await;
    let answer = live_check(rig.node("node-b"), &id)
        .await
        .expect("node-b's live check answers");
    assert_eq!(answer.status(), pb::ConnectorStatus::Healthy, "{answer:?}");
    assert_eq!(egress(rig.node("node-a"), &id).await, owner_before + 1.0);
    assert_eq!(egress(rig.node("node-b"), &id).await, 0.0);

    // node-c cannot call its peers: it checks itself, as before.
    let answer = live_check(rig.node("node-c"), &id)
        .await
        .expect("node-c's live check answers");
    assert_eq!(answer.status(), pb::ConnectorStatus::Healthy, "{answer:?}");
    assert_eq!(egress(rig.node("node-c"), &id).await, 1.0);
    assert_eq!(
        egress(rig.node("node-a"), &id).await,
        owner_before + 1.0,
        "the owner was not asked"
    );
}

/// `HealthCheckAll` asked of `node`, with a deadline.
async fn check_all(node: &Node) -> pb::HealthCheckAllResponse {
    let mut request = node.request(pb::HealthCheckAllRequest { r#type: 0 });
    request.set_timeout(Duration::from_secs(20));
    node.client()
        .await
        .health_check_all(request)
        .await
        .expect("HealthCheckAll answers")
        .into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_check_all_on_one_node_checks_each_connector_once_on_its_owner() {
    let ids: Vec<String> = NODES.iter().map(|node| owned_by(node)).collect();
    let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let mut rig = Rig::start("cluster-check-all", &id_refs, |_| (Vec::new(), None), None).await;
    rig.settled(&ids[0]).await;
    for (node, id) in NODES.iter().zip(&ids) {
        eventually("each owner's first check", WITHIN, || async {
            let sent = egress(rig.node(node), id).await;
            if sent >= 1.0 {
                Ok(())
            } else {
                Err(format!("{node} sent {sent} for {id}"))
            }
        })
        .await;
    }
    let sent = async |rig: &Rig| {
        let mut sent = BTreeMap::new();
        for node in NODES {
            for id in &ids {
                sent.insert((node, id.clone()), egress(rig.node(node), id).await);
            }
        }
        sent
    };

    let before = sent(&rig).await;
    let start = Instant::now();
    let all = check_all(rig.node("node-b")).await;
    let answered: Vec<&str> = all.results.iter().map(|r| r.id.as_str()).collect();
    let mut sorted = id_refs.clone();
    sorted.sort_unstable();
    assert_eq!(answered, sorted, "every connector, sorted by id");
    assert!(all.unfinished.is_empty(), "{all:?}");
    for result in &all.results {
        assert_eq!(result.status(), pb::ConnectorStatus::Healthy, "{result:?}");
    }
    let after = sent(&rig).await;
    for (owner, id) in NODES.iter().zip(&ids) {
        assert_eq!(
            rig.hits.count(&format!("/{id}"), start, Instant::now()),
            1,
            "{id} checked once"
        );
        for node in NODES {
            let grew = after[&(node, id.clone())] - before[&(node, id.clone())];
            let expected = if node == *owner { 1.0 } else { 0.0 };
            assert_eq!(grew, expected, "{node}'s requests for {id} (owner {owner})");
        }
    }

    // node-c dies without a word: the next round still answers for every
    // connector, its own checked by a live node, the others once each.
    rig.nodes.get_mut("node-c").expect("node-c runs").kill_9();
    let start = Instant::now();
    let all = check_all(rig.node("node-b")).await;
    let answered: Vec<&str> = all.results.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(answered, sorted);
    for result in &all.results {
        assert_eq!(result.status(), pb::ConnectorStatus::Healthy, "{result:?}");
    }
    for id in &ids[..2] {
        assert_eq!(
            rig.hits.count(&format!("/{id}"), start, Instant::now()),
            1,
            "{id} checked once"
        );
    }
    assert!(
        rig.hits
            .count(&format!("/{}", ids[2]), start, Instant::now())
            >= 1
    );
    let log = rig.node("node-b").log();
    assert!(
        log.contains("checking its connectors on this node until it answers"),
        "the fallback is logged:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_mutual_tls_with_tokens_live_checks_and_rounds_reach_the_owner() {
    let id = owned_by("node-a");
    let pki = TestCa::new("cluster");
    let files = temp_dir("cluster-forward-tls-files");
    let ca = write(&files, "ca.pem", &pki.pem);
    let Tokens { tokens, peer_token } = Tokens::write(&files);
    let rig = Rig::start(
        "cluster-forward-tls",
        &[&id],
        |node| {
            let (cert, key) = pki.leaf(Some(node), &NODE_USAGES);
            let cert = write(&files, &format!("{node}.crt"), &cert);
            let key = write(&files, &format!("{node}.key"), &key);
            let flags = [
                ("--tls-cert", &cert),
                ("--tls-key", &key),
                // Client certificates signed by the CA are asked for; the
                // peers' CA defaults to it.
                ("--client-ca", &ca),
                ("--tokens", &tokens),
                ("--cluster-token-file", &peer_token),
            ]
            .iter()
            .flat_map(|(flag, path)| [flag.to_string(), path.display().to_string()])
            .collect();
            (flags, Some(CALLER.to_string()))
        },
        Some(&pki.pem),
    )
    .await;
    rig.settled(&id).await;
    for node in NODES {
        let log = rig.node(node).log();
        assert!(
            !log.contains("run on the node asked"),
            "{node} forwards over TLS:\n{log}"
        );
    }

    let owner_before = egress(rig.node("node-a"), &id).await;
    let answer = live_check(rig.node("node-b"), &id)
        .await
        .expect("node-b's live check answers");
    assert_eq!(answer.status(), pb::ConnectorStatus::Healthy, "{answer:?}");
    assert_eq!(egress(rig.node("node-a"), &id).await, owner_before + 1.0);
    assert_eq!(egress(rig.node("node-b"), &id).await, 0.0);

    let all = check_all(rig.node("node-c")).await;
    assert_eq!(all.results.len(), 1, "{all:?}");
    assert_eq!(all.results[0].status(), pb::ConnectorStatus::Healthy);
    assert_eq!(egress(rig.node("node-a"), &id).await, owner_before + 2.0);
    assert_eq!(egress(rig.node("node-c"), &id).await, 0.0);
    let log = rig.node("node-b").log() + &rig.node("node-c").log();
    assert!(
        !log.contains("checking on this node until it answers")
            && !log.contains("checking its connectors on this node"),
        "no call fell back:\n{log}"
    );

    // node-b's certificate is renewed in place: its API and its calls to
    // the others take the new one without a restart.
    let (cert, key) = pki.leaf(Some("node-b"), &NODE_USAGES);
    write(&files, "node-b.key", &key);
    write(&files, "node-b.crt", &cert);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let answer = live_check(rig.node("node-b"), &id)
        .await
        .expect("node-b's live check answers after the renewal");
    assert_eq!(answer.status(), pb::ConnectorStatus::Healthy, "{answer:?}");
    assert_eq!(egress(rig.node("node-a"), &id).await, owner_before + 3.0);
    let log = rig.node("node-b").log();
    assert!(
        log.contains("the certificates for calls to the other nodes changed; using them"),
        "{log}"
    );
}
