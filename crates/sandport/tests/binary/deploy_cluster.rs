//! The cluster-mode manifests (`deploy/kubernetes/cluster/`) read as
//! kustomize reads them, and checked against each other and the binary:
//! the flags the nodes pass, the etcd addresses they name, the node ids and
//! advertised addresses, etcd's initial cluster, the probes, the network
//! policies' ports, the disruption budgets, the seed config and the pods'
//! privileges and sizes.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use serde_norway::Value;

use super::manifests::{
    at, bytes, documents_flag, flags, list_at, output_text, read, repo_root, serve_help, text_at,
    yaml_documents,
};
use super::support::{SANDPORT, temp_dir, write};

const DIR: &str = "deploy/kubernetes/cluster";

/// The gRPC health service name that turns NOT_SERVING when shutdown begins.
const CONNECTORS_SERVICE: &str = "sandport.connectors.v1.ConnectorsService";

/// Environment variables the service reads that are no flag's.
const OTHER_VARIABLES: &[&str] = &["SANDPORT_CACHE_DIR"];

/// The connectors the nodes' requests are sized for.
const SIZED_FOR: u64 = 1000;

fn number_at(value: &Value, path: &[&str], what: &str) -> u64 {
    at(value, path, what)
        .as_u64()
        .unwrap_or_else(|| panic!("{what}: {} is not a number", path.join(".")))
}

// -------------------------------------------------------------- manifests

/// The resources the kustomization applies, by kind and name, and the
/// example files it names only in a comment (applied by choice).
struct Manifests {
    objects: BTreeMap<(String, String), Value>,
    optional: BTreeSet<String>,
}

/// The file names in `# - name.yaml` comment lines.
fn commented_resources(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|line| line.trim().strip_prefix('#'))
        .filter_map(|rest| rest.trim().strip_prefix("- "))
        .map(str::trim)
        .filter(|name| name.ends_with(".yaml") && !name.contains(char::is_whitespace))
        .map(String::from)
        .collect()
}

impl Manifests {
    fn load() -> Manifests {
        let path = format!("{DIR}/kustomization.yaml");
        let kustomization = &yaml_documents(&path)[0];
        let listed: BTreeSet<String> = list_at(kustomization, &["resources"], &path)
            .iter()
            .map(|r| r.as_str().expect("resources are file names").to_string())
            .collect();
        let optional = commented_resources(&read(&path));
        let both: Vec<&String> = listed.intersection(&optional).collect();
        assert!(
            both.is_empty(),
            "{path}: listed and commented out: {both:?}"
        );
        let present: BTreeSet<String> = std::fs::read_dir(repo_root().join(DIR))
            .expect(DIR)
            .map(|e| e.expect("a directory entry").file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .filter(|n| n != "kustomization.yaml")
            .collect();
        let named: BTreeSet<String> = listed.union(&optional).cloned().collect();
        assert_eq!(
            named, present,
            "{path} lists every file of the directory (examples in a comment) and no other"
        );
        let mut objects = BTreeMap::new();
        for file in &listed {
            for doc in yaml_documents(&format!("{DIR}/{file}")) {
                let kind = text_at(&doc, &["kind"], file).to_string();
                text_at(&doc, &["apiVersion"], file);
                let name = text_at(&doc, &["metadata", "name"], file).to_string();
                assert!(
                    !objects.contains_key(&(kind.clone(), name.clone())),
                    "{file}: a second {kind} {name}"
                );
                objects.insert((kind, name), doc);
            }
        }
        Manifests { objects, optional }
    }

    fn get(&self, kind: &str, name: &str) -> &Value {
        self.objects
            .get(&(kind.to_string(), name.to_string()))
            .unwrap_or_else(|| panic!("{DIR}: no {kind} {name}"))
    }

    fn all(&self, kind: &str) -> impl Iterator<Item = (&str, &Value)> {
        self.objects
            .iter()
            .filter(move |((k, _), _)| k == kind)
            .map(|((_, name), doc)| (name.as_str(), doc))
    }

    /// The only container of a StatefulSet's pods.
    fn container(&self, statefulset: &str) -> &Value {
        let what = format!("StatefulSet {statefulset}");
        let containers = list_at(
            self.get("StatefulSet", statefulset),
            &["spec", "template", "spec", "containers"],
            &what,
        );
        assert_eq!(containers.len(), 1, "{what}: one container");
        &containers[0]
    }

    /// The StatefulSet whose pods `selector` (a `matchLabels` holder) selects.
    fn selected_statefulset(&self, selector: &Value, what: &str) -> &str {
        let found: Vec<&str> = self
            .all("StatefulSet")
            .filter(|(_, set)| selects(selector, pod_labels(set)))
            .map(|(name, _)| name)
            .collect();
        match found.as_slice() {
            [one] => one,
            other => panic!("{what}: selects the pods of {other:?}, not of one StatefulSet"),
        }
    }
}

fn pod_labels(statefulset: &Value) -> &Value {
    at(
        statefulset,
        &["spec", "template", "metadata", "labels"],
        "a StatefulSet",
    )
}

/// Whether a selector (with `matchLabels` only) selects pods with `labels`.
fn selects(selector: &Value, labels: &Value) -> bool {
    assert!(
        selector.get("matchExpressions").is_none(),
        "selectors here use matchLabels only: {selector:?}"
    );
    labels_match(&selector["matchLabels"], labels)
}

/// Whether every label of `wanted` (a map, as a Service's selector) is on
/// `labels`; an empty or missing map matches nothing here.
fn labels_match(wanted: &Value, labels: &Value) -> bool {
    wanted.as_mapping().is_some_and(|wanted| {
        !wanted.is_empty()
            && wanted
                .iter()
                .all(|(key, value)| labels.get(key) == Some(value))
    })
}

fn args(container: &Value) -> Vec<&str> {
    list_at(container, &["args"], "a container")
        .iter()
        .map(|a| a.as_str().expect("args are strings"))
        .collect()
}

/// The value of `--flag VALUE` or `--flag=VALUE` in `args`.
fn find_flag<'a>(args: &[&'a str], flag: &str) -> Option<&'a str> {
    let prefix = format!("{flag}=");
    args.iter()
        .enumerate()
        .find_map(|(i, &arg)| match arg.strip_prefix(prefix.as_str()) {
            Some(value) => Some(value),
            None if arg == flag => args.get(i + 1).copied(),
            None => None,
        })
}

fn flag_value<'a>(args: &[&'a str], flag: &str) -> &'a str {
    find_flag(args, flag).unwrap_or_else(|| panic!("no {flag} in {args:?}"))
}

/// The container's `env`, in order.
fn env(container: &Value) -> &[Value] {
    container["env"].as_sequence().map_or(&[], Vec::as_slice)
}

fn env_entry<'a>(container: &'a Value, name: &str) -> &'a Value {
    env(container)
        .iter()
        .find(|e| e["name"].as_str() == Some(name))
        .unwrap_or_else(|| panic!("no env {name}"))
}

/// A setting given as `--flag` or as its environment variable.
fn setting<'a>(container: &'a Value, flag: &str, variable: &str) -> &'a str {
    let args = args(container);
    let from_env = env(container)
        .iter()
        .find(|e| e["name"].as_str() == Some(variable))
        .map(|e| text_at(e, &["value"], variable));
    match (find_flag(&args, flag), from_env) {
        (Some(value), None) | (None, Some(value)) => value,
        (Some(_), Some(_)) => panic!("both {flag} and {variable} are set"),
        (None, None) => panic!("neither {flag} nor {variable} is set"),
    }
}

/// The container's ports: name -> number.
fn container_ports(container: &Value) -> BTreeMap<String, u64> {
    list_at(container, &["ports"], "a container")
        .iter()
        .map(|p| {
            let name = text_at(p, &["name"], "a container port").to_string();
            (name, number_at(p, &["containerPort"], "a container port"))
        })
        .collect()
}

/// The number of `port` (a name or a number) among `ports`.
fn port_number(port: &Value, ports: &BTreeMap<String, u64>) -> Option<u64> {
    match (port.as_str(), port.as_u64()) {
        (Some(name), _) => ports.get(name).copied(),
        (_, Some(n)) => ports.values().any(|p| *p == n).then_some(n),
        _ => None,
    }
}

/// The port of `host:port`.
fn port_of(address: &str) -> u64 {
    address
        .rsplit_once(':')
        .and_then(|(_, port)| port.parse().ok())
        .unwrap_or_else(|| panic!("{address} has no port"))
}

/// A pod's stable name `POD.SERVICE[.NAMESPACE[.svc[.cluster.local]]]`
/// split into the pod and the Service; the namespace may be written as the
/// `$(POD_NAMESPACE)` the kubelet fills in.
fn pod_dns_name(host: &str) -> (&str, &str) {
    let mut labels = host.splitn(3, '.');
    let pod = labels.next().unwrap_or("");
    let service = labels
        .next()
        .unwrap_or_else(|| panic!("{host}: no Service"));
    if let Some(rest) = labels.next() {
        let namespace = rest.split('.').next().unwrap_or("");
        let suffix = &rest[namespace.len()..];
        assert!(
            ["", ".svc", ".svc.cluster.local"].contains(&suffix),
            "{host}: not a pod's name under a headless Service"
        );
        assert!(!namespace.is_empty(), "{host}: an empty namespace");
    }
    (pod, service)
}

/// The headless Service a StatefulSet names, checked to select its pods
/// and to publish names before the pods are ready.
fn governing_service<'a>(manifests: &'a Manifests, statefulset: &str) -> &'a Value {
    let set = manifests.get("StatefulSet", statefulset);
    let what = format!("StatefulSet {statefulset}");
    let name = text_at(set, &["spec", "serviceName"], &what);
    let service = manifests.get("Service", name);
    assert_eq!(
        service["spec"]["clusterIP"].as_str(),
        Some("None"),
        "Service {name} is headless"
    );
    assert_eq!(
        service["spec"]["publishNotReadyAddresses"].as_bool(),
        Some(true),
        "Service {name}: a member's name must resolve before it is ready"
    );
    assert!(
        labels_match(at(service, &["spec", "selector"], name), pod_labels(set)),
        "Service {name} selects the pods of {what}"
    );
    service
}

/// The number a Service port named `name` leads to in `container`, checked
/// to be the number the Service itself listens on (names under a headless
/// Service resolve to the pods, so clients dial the container's port).
fn service_port(service: &Value, name: &str, container: &Value) -> u64 {
    let ports = container_ports(container);
    let what = text_at(service, &["metadata", "name"], "a Service");
    let port = list_at(service, &["spec", "ports"], what)
        .iter()
        .find(|p| p["name"].as_str() == Some(name))
        .unwrap_or_else(|| panic!("Service {what}: no port {name}"));
    let number = number_at(port, &["port"], what);
    let target = port_number(at(port, &["targetPort"], what), &ports)
        .unwrap_or_else(|| panic!("Service {what}: port {name} targets no container port"));
    assert_eq!(number, target, "Service {what}: port {name}");
    number
}

// ----------------------------------------------------------------- files

#[test]
fn the_kustomization_applies_every_manifest_and_leaves_the_tls_example_to_choice() {
    let manifests = Manifests::load();
    for (kind, name) in [
        ("StatefulSet", "sandport"),
        ("StatefulSet", "etcd"),
        ("Service", "sandport"),
        ("Service", "sandport-peers"),
        ("Service", "etcd"),
        ("ConfigMap", "sandport-config"),
        ("Secret", "sandport-tokens"),
        ("NetworkPolicy", "sandport"),
        ("NetworkPolicy", "etcd"),
        ("PodDisruptionBudget", "sandport"),
        ("PodDisruptionBudget", "etcd"),
    ] {
        manifests.get(kind, name);
    }
    assert_eq!(
        manifests.optional,
        BTreeSet::from(["etcd-tls.example.yaml".to_string()]),
        "the files applied by choice"
    );
    // Each example Secret holds a CA and a key pair, and a StatefulSet
    // names it in its commented TLS volume.
    let file = format!("{DIR}/etcd-tls.example.yaml");
    let statefulsets = [
        read(&format!("{DIR}/etcd-statefulset.yaml")),
        read(&format!("{DIR}/sandport-statefulset.yaml")),
    ];
    let secrets = yaml_documents(&file);
    assert_eq!(secrets.len(), 2, "{file}: etcd's and the nodes' Secrets");
    for secret in &secrets {
        assert_eq!(text_at(secret, &["kind"], &file), "Secret");
        let name = text_at(secret, &["metadata", "name"], &file);
        for key in ["ca.crt", "tls.crt", "tls.key"] {
            text_at(secret, &["stringData", key], &file);
        }
        let mounts = |text: &String| {
            text.lines()
                .filter_map(|line| line.trim().strip_prefix('#'))
                .any(|rest| rest.trim() == format!("secretName: {name}"))
        };
        assert_eq!(
            statefulsets.iter().filter(|text| mounts(text)).count(),
            1,
            "{file}: one StatefulSet mounts Secret {name} (in a comment)"
        );
    }
}

// --------------------------------------------------------------- binaries

/// The flags in `# - --flag` comment lines: options an operator turns on.
fn commented_flags(text: &str) -> Vec<&str> {
    text.lines()
        .filter_map(|line| line.trim().strip_prefix('#'))
        .filter_map(|rest| rest.trim().strip_prefix("- "))
        .filter(|arg| arg.starts_with("--"))
        .filter_map(|arg| arg.split(['=', ' ']).next())
        .collect()
}

#[test]
fn the_nodes_pass_only_flags_and_variables_that_serve_lists() {
    let help = serve_help();
    let manifests = Manifests::load();
    let container = manifests.container("sandport");
    let args = args(container);
    assert_eq!(args.first(), Some(&"serve"), "{args:?}");
    let text = read(&format!("{DIR}/sandport-statefulset.yaml"));
    let commented = commented_flags(&text);
    for flag in ["--cluster-ca", "--cluster-cert", "--cluster-key"] {
        assert!(
            commented.contains(&flag),
            "the TLS option shows {flag}: {commented:?}"
        );
    }
    for flag in flags(args.iter().copied()).into_iter().chain(commented) {
        assert!(
            documents_flag(&help, flag),
            "the sandport StatefulSet passes {flag}, which `sandport serve --help` does not list:\n{help}"
        );
    }
    for entry in env(container) {
        let name = text_at(entry, &["name"], "an env entry");
        if !name.starts_with("SANDPORT_") || OTHER_VARIABLES.contains(&name) {
            continue;
        }
        assert!(
            help.contains(&format!("[env: {name}=")),
            "the sandport StatefulSet sets {name}, which `sandport serve --help` does not list:\n{help}"
        );
    }
    let data_dir = flag_value(&args, "--data-dir");
    let cache = text_at(
        env_entry(container, "SANDPORT_CACHE_DIR"),
        &["value"],
        "env",
    );
    assert!(
        cache.starts_with(&format!("{data_dir}/")),
        "the cache ({cache}) is on the data volume ({data_dir})"
    );
}

// ------------------------------------------------------------------ nodes

#[test]
fn the_cluster_address_names_every_etcd_member_at_the_etcd_service_client_port() {
    let manifests = Manifests::load();
    let node = manifests.container("sandport");
    let cluster = setting(node, "--cluster", "SANDPORT_CLUSTER");
    let endpoints = cluster
        .strip_prefix("etcd://")
        .unwrap_or_else(|| panic!("--cluster {cluster}: etcd:// as shipped (TLS is the option)"));

    let etcd = manifests.get("StatefulSet", "etcd");
    let replicas = number_at(etcd, &["spec", "replicas"], "StatefulSet etcd");
    let service = governing_service(&manifests, "etcd");
    let service_name = text_at(service, &["metadata", "name"], "Service");
    let client_port = service_port(service, "client", manifests.container("etcd"));

    let mut members = BTreeSet::new();
    for endpoint in endpoints.split(',') {
        let (host, port) = endpoint
            .rsplit_once(':')
            .unwrap_or_else(|| panic!("--cluster: {endpoint} has no port"));
        assert_eq!(
            port.parse::<u64>().ok(),
            Some(client_port),
            "--cluster: {endpoint} names the etcd Service's client port"
        );
        let (pod, service) = pod_dns_name(host);
        assert_eq!(service, service_name, "--cluster: {endpoint}");
        assert!(members.insert(pod.to_string()), "--cluster: {pod} twice");
    }
    let expected: BTreeSet<String> = (0..replicas).map(|i| format!("etcd-{i}")).collect();
    assert_eq!(members, expected, "--cluster names every etcd member");
}

#[test]
fn each_node_is_its_pod_and_advertises_its_name_under_the_headless_service() {
    let manifests = Manifests::load();
    let set = manifests.get("StatefulSet", "sandport");
    let node = manifests.container("sandport");
    let args = args(node);
    assert!(
        find_flag(&args, "--node-id").is_none(),
        "the node id comes from the pod, not from args"
    );
    assert_eq!(
        text_at(
            env_entry(node, "SANDPORT_NODE_ID"),
            &["valueFrom", "fieldRef", "fieldPath"],
            "SANDPORT_NODE_ID"
        ),
        "metadata.name",
        "SANDPORT_NODE_ID is the pod's name, through the downward API"
    );

    let grpc_port = port_of(flag_value(&args, "--grpc-addr"));
    let peers = governing_service(&manifests, "sandport");
    let peers_name = text_at(peers, &["metadata", "name"], "Service");
    assert_eq!(service_port(peers, "grpc", node), grpc_port, "{peers_name}");
    let advertised = setting(node, "--advertise-addr", "SANDPORT_ADVERTISE_ADDR");
    let (host, port) = advertised.rsplit_once(':').expect("host:port");
    assert_eq!(port.parse::<u64>().ok(), Some(grpc_port), "{advertised}");
    assert_eq!(
        pod_dns_name(host),
        ("$(SANDPORT_NODE_ID)", peers_name),
        "{advertised}: the pod's own name under {peers_name}"
    );

    // The kubelet expands $(NAME) only for variables defined earlier in
    // the list (and leaves the text as it is otherwise).
    let mut defined = BTreeSet::new();
    for entry in env(node) {
        let name = text_at(entry, &["name"], "env");
        for used in references(entry["value"].as_str().unwrap_or("")) {
            assert!(
                defined.contains(used),
                "env {name} uses $({used}) before it is set"
            );
        }
        defined.insert(name);
    }
    for arg in &args {
        for used in references(arg) {
            assert!(
                defined.contains(used),
                "args use $({used}), which env does not set"
            );
        }
    }

    // The client Service exposes every port of the nodes.
    let ports = container_ports(node);
    let client = manifests.get("Service", "sandport");
    assert_ne!(client["spec"]["clusterIP"].as_str(), Some("None"));
    assert!(
        labels_match(
            at(client, &["spec", "selector"], "Service sandport"),
            pod_labels(set)
        ),
        "Service sandport selects the nodes"
    );
    let exposed: BTreeSet<u64> = list_at(client, &["spec", "ports"], "Service sandport")
        .iter()
        .map(|p| {
            let target = at(p, &["targetPort"], "Service sandport");
            port_number(target, &ports)
                .unwrap_or_else(|| panic!("Service sandport: targetPort {target:?}"))
        })
        .collect();
    let all: BTreeSet<u64> = ports.values().copied().collect();
    assert_eq!(exposed, all, "the client Service exposes every port");
}

/// The names in `$(NAME)` references.
fn references(text: &str) -> Vec<&str> {
    text.split("$(")
        .skip(1)
        .filter_map(|rest| rest.split_once(')').map(|(name, _)| name))
        .collect()
}

#[test]
fn the_probes_are_grpc_probes_on_the_port_that_grpc_addr_listens_on() {
    let manifests = Manifests::load();
    let container = manifests.container("sandport");
    let port = port_of(flag_value(&args(container), "--grpc-addr"));
    let ports = container_ports(container);
    assert_eq!(
        ports.get("grpc"),
        Some(&port),
        "the container port named grpc is the one --grpc-addr listens on: {ports:?}"
    );
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        let Some(found) = container.get(probe) else {
            assert_ne!(probe, "livenessProbe", "no livenessProbe");
            assert_ne!(probe, "readinessProbe", "no readinessProbe");
            continue;
        };
        for other in ["httpGet", "tcpSocket", "exec"] {
            assert!(found.get(other).is_none(), "{probe}: {other} beside grpc");
        }
        let grpc = at(found, &["grpc"], probe);
        assert_eq!(
            grpc["port"].as_u64(),
            Some(port),
            "{probe}: a grpc probe on {port}"
        );
        if probe == "readinessProbe" {
            assert_eq!(grpc["service"].as_str(), Some(CONNECTORS_SERVICE));
        }
    }
}

// ------------------------------------------------------------------- etcd

#[test]
fn etcd_initial_cluster_names_each_member_by_its_pod_under_the_headless_service() {
    let manifests = Manifests::load();
    let set = manifests.get("StatefulSet", "etcd");
    let what = "StatefulSet etcd";
    let replicas = number_at(set, &["spec", "replicas"], what);
    assert_eq!(replicas, 3, "{what}: three members, one may be away");
    let container = manifests.container("etcd");
    let image = text_at(container, &["image"], what);
    assert!(
        image.starts_with("registry.k8s.io/etcd:3.5.")
            || image.starts_with("quay.io/coreos/etcd:v3.5."),
        "{what}: an official etcd 3.5 image, not {image}"
    );
    let args = args(container);
    let service = governing_service(&manifests, "etcd");
    let service_name = text_at(service, &["metadata", "name"], "Service");
    let peer_port = service_port(service, "peer", container);
    let client_port = service_port(service, "client", container);

    assert_eq!(flag_value(&args, "--name"), "$(POD_NAME)");
    assert_eq!(
        text_at(
            env_entry(container, "POD_NAME"),
            &["valueFrom", "fieldRef", "fieldPath"],
            "POD_NAME"
        ),
        "metadata.name"
    );
    let own_url = flag_value(&args, "--initial-advertise-peer-urls");
    let mut members = BTreeSet::new();
    for member in flag_value(&args, "--initial-cluster").split(',') {
        let (name, url) = member
            .split_once('=')
            .unwrap_or_else(|| panic!("--initial-cluster: {member} is not NAME=URL"));
        let address = url
            .strip_prefix("http://")
            .unwrap_or_else(|| panic!("--initial-cluster: {url}"));
        assert_eq!(port_of(address), peer_port, "--initial-cluster: {member}");
        let (host, _) = address.rsplit_once(':').expect("host:port");
        assert_eq!(
            pod_dns_name(host),
            (name, service_name),
            "--initial-cluster: {member} is the pod's name under {service_name}"
        );
        assert_eq!(
            url.replacen(name, "$(POD_NAME)", 1),
            own_url,
            "--initial-cluster: {member} is written as each member advertises itself"
        );
        assert!(members.insert(name.to_string()), "{name} twice");
    }
    let pods: BTreeSet<String> = (0..replicas).map(|i| format!("etcd-{i}")).collect();
    assert_eq!(
        members, pods,
        "--initial-cluster names exactly the StatefulSet's pods"
    );
    assert_eq!(flag_value(&args, "--initial-cluster-state"), "new");

    for (flag, port) in [
        ("--listen-peer-urls", peer_port),
        ("--listen-client-urls", client_port),
        ("--advertise-client-urls", client_port),
    ] {
        assert_eq!(port_of(flag_value(&args, flag)), port, "{flag}");
    }
    let advertised = flag_value(&args, "--advertise-client-urls");
    let host = advertised
        .trim_start_matches("http://")
        .rsplit_once(':')
        .expect("host:port")
        .0;
    assert_eq!(pod_dns_name(host), ("$(POD_NAME)", service_name));
}

// ---------------------------------------------------------------- network

/// Whether `rules` (a policy's ingress or egress) let pods with `labels`,
/// in the policy's own namespace, connect on `port`; named ports are the
/// ports of `destination`.
fn admits(
    rules: &[Value],
    peers_key: &str,
    labels: &Value,
    port: u64,
    destination: &BTreeMap<String, u64>,
) -> bool {
    rules.iter().any(|rule| {
        let from_those_pods = rule[peers_key].as_sequence().is_some_and(|peers| {
            peers.iter().any(|peer| {
                peer.get("namespaceSelector").is_none()
                    && peer.get("ipBlock").is_none()
                    && selects(&peer["podSelector"], labels)
            })
        });
        let on_port = rule["ports"].as_sequence().is_none_or(|ports| {
            ports
                .iter()
                .any(|p| port_number(&p["port"], destination) == Some(port))
        });
        from_those_pods && on_port
    })
}

#[test]
fn the_network_policies_let_nodes_reach_etcd_and_each_other_and_etcd_its_peers() {
    let manifests = Manifests::load();
    let mut policed = BTreeSet::new();
    for (name, policy) in manifests.all("NetworkPolicy") {
        let what = format!("NetworkPolicy {name}");
        let set =
            manifests.selected_statefulset(at(policy, &["spec", "podSelector"], &what), &what);
        assert_eq!(name, set, "{what} is named after the pods it guards");
        assert!(policed.insert(set), "{what}: a second policy for {set}");
        let ports = container_ports(manifests.container(set));
        let types = list_at(policy, &["spec", "policyTypes"], &what);
        for kind in ["Ingress", "Egress"] {
            assert!(
                types.iter().any(|t| t.as_str() == Some(kind)),
                "{what}: {kind}"
            );
        }
        // Every ingress port is a port of the pods, and every port of the
        // pods is open to someone.
        let mut reachable = BTreeSet::new();
        for rule in list_at(policy, &["spec", "ingress"], &what) {
            assert!(
                !list_at(rule, &["from"], &what).is_empty(),
                "{what}: an ingress rule names who may connect"
            );
            for port in list_at(rule, &["ports"], &what) {
                let port = at(port, &["port"], &what);
                reachable.insert(port_number(port, &ports).unwrap_or_else(|| {
                    panic!("{what}: ingress port {port:?} is not in {ports:?}")
                }));
            }
        }
        let all: BTreeSet<u64> = ports.values().copied().collect();
        assert_eq!(reachable, all, "{what} admits every container port");
        // An egress rule to pods here names ports those pods have.
        for rule in list_at(policy, &["spec", "egress"], &what) {
            let Some(peers) = rule["to"].as_sequence() else {
                continue;
            };
            for peer in peers
                .iter()
                .filter(|p| p.get("namespaceSelector").is_none())
            {
                let Some(selector) = peer.get("podSelector") else {
                    continue;
                };
                let target = manifests.selected_statefulset(selector, &what);
                let target_ports = container_ports(manifests.container(target));
                for port in rule["ports"].as_sequence().map_or(&[][..], Vec::as_slice) {
                    let port = at(port, &["port"], &what);
                    assert!(
                        port_number(port, &target_ports).is_some(),
                        "{what}: egress port {port:?} is not one of {target}'s {target_ports:?}"
                    );
                }
            }
        }
    }
    assert_eq!(
        policed,
        BTreeSet::from(["etcd", "sandport"]),
        "a NetworkPolicy for each"
    );

    let grpc = port_of(flag_value(
        &args(manifests.container("sandport")),
        "--grpc-addr",
    ));
    let etcd_service = manifests.get("Service", "etcd");
    let client = service_port(etcd_service, "client", manifests.container("etcd"));
    let peer = service_port(etcd_service, "peer", manifests.container("etcd"));
    assert_eq!((client, peer), (2379, 2380), "etcd's usual ports");

    for (from, to, port, what) in [
        ("sandport", "etcd", client, "etcd's client port"),
        ("sandport", "sandport", grpc, "the gRPC port"),
        ("etcd", "etcd", peer, "the peer port"),
    ] {
        assert!(
            connects(&manifests, from, to, port),
            "the NetworkPolicies do not let {from} pods reach {to} pods on {what}"
        );
    }
    assert!(
        !connects(&manifests, "sandport", "etcd", peer),
        "the nodes have no business on etcd's peer port"
    );
}

/// Whether the pods of StatefulSet `from` may open connections to those of
/// `to` on `port`: `from`'s policy lets them out, `to`'s lets them in.
fn connects(manifests: &Manifests, from: &str, to: &str, port: u64) -> bool {
    let rules = |set: &str, key: &str| {
        manifests.get("NetworkPolicy", set)["spec"][key]
            .as_sequence()
            .cloned()
            .unwrap_or_default()
    };
    let labels = |set: &str| pod_labels(manifests.get("StatefulSet", set));
    let ports = container_ports(manifests.container(to));
    admits(&rules(from, "egress"), "to", labels(to), port, &ports)
        && admits(&rules(to, "ingress"), "from", labels(from), port, &ports)
}

#[test]
fn each_statefulset_has_a_disruption_budget_of_one_pod() {
    let manifests = Manifests::load();
    let mut budgeted = BTreeSet::new();
    for (name, budget) in manifests.all("PodDisruptionBudget") {
        let what = format!("PodDisruptionBudget {name}");
        assert_eq!(
            number_at(budget, &["spec", "maxUnavailable"], &what),
            1,
            "{what}"
        );
        let set = manifests.selected_statefulset(at(budget, &["spec", "selector"], &what), &what);
        assert!(budgeted.insert(set), "{what}: a second budget for {set}");
    }
    let sets: BTreeSet<&str> = manifests.all("StatefulSet").map(|(name, _)| name).collect();
    assert_eq!(budgeted, sets, "a PodDisruptionBudget for each StatefulSet");
}

// ----------------------------------------------------------------- config

#[test]
fn the_configmap_connectors_yaml_passes_sandport_validate() {
    let manifests = Manifests::load();
    let container = manifests.container("sandport");
    let path = flag_value(&args(container), "--config");
    let (dir, file) = path.rsplit_once('/').expect("an absolute path");
    let mount = list_at(container, &["volumeMounts"], "sandport")
        .iter()
        .find(|m| m["mountPath"].as_str() == Some(dir))
        .unwrap_or_else(|| panic!("no volume is mounted at {dir} (for {path})"));
    let volume_name = text_at(mount, &["name"], "a mount");
    let volume = list_at(
        manifests.get("StatefulSet", "sandport"),
        &["spec", "template", "spec", "volumes"],
        "StatefulSet sandport",
    )
    .iter()
    .find(|v| v["name"].as_str() == Some(volume_name))
    .unwrap_or_else(|| panic!("no volume {volume_name}"));
    let map = text_at(volume, &["configMap", "name"], volume_name);
    let config = text_at(manifests.get("ConfigMap", map), &["data", file], map);

    let dir = temp_dir("deploy-cluster-configmap");
    let path = write(&dir, "connectors.yaml", config);
    let out = Command::new(SANDPORT)
        .arg("validate")
        .arg("--config")
        .arg(&path)
        .env_remove("SANDPORT_CONFIG")
        .env_remove("CONNECTORS_SERVICE_ADDR")
        .env("RUST_LOG", "warn")
        .output()
        .expect("run sandport validate");
    assert!(out.status.success(), "{}", output_text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("config is valid: 1 connector"), "{stdout}");
    let _ = std::fs::remove_dir_all(&dir);
}

// ------------------------------------------------------------------- pods

/// The volumeClaimTemplate mounted at the directory holding `data_dir`.
fn claim_holds(set: &Value, container: &Value, data_dir: &str, what: &str) {
    let mount = list_at(container, &["volumeMounts"], what)
        .iter()
        .find(|m| {
            let at = m["mountPath"].as_str().unwrap_or("-");
            data_dir == at || data_dir.starts_with(&format!("{at}/"))
        })
        .unwrap_or_else(|| panic!("{what}: nothing is mounted at {data_dir}"));
    let name = text_at(mount, &["name"], what);
    let claim = list_at(set, &["spec", "volumeClaimTemplates"], what)
        .iter()
        .find(|c| c["metadata"]["name"].as_str() == Some(name))
        .unwrap_or_else(|| panic!("{what}: {data_dir} is not on a volumeClaimTemplate"));
    let modes = list_at(claim, &["spec", "accessModes"], what);
    assert_eq!(
        modes,
        [Value::from("ReadWriteOnce")],
        "{what}: one pod per volume"
    );
    text_at(claim, &["spec", "resources", "requests", "storage"], what);
}

#[test]
fn the_pods_run_unprivileged_keep_data_per_pod_and_are_sized_for_one_node_away() {
    let manifests = Manifests::load();
    for (name, set) in manifests.all("StatefulSet") {
        let what = format!("StatefulSet {name}");
        assert_eq!(number_at(set, &["spec", "replicas"], &what), 3, "{what}");
        assert_eq!(
            text_at(set, &["spec", "podManagementPolicy"], &what),
            "Parallel"
        );
        let pod = at(set, &["spec", "template", "spec"], &what);
        assert_eq!(
            pod["automountServiceAccountToken"].as_bool(),
            Some(false),
            "{what}"
        );
        let pod_security = at(pod, &["securityContext"], &what);
        assert_eq!(
            text_at(pod_security, &["seccompProfile", "type"], &what),
            "RuntimeDefault"
        );
        let container = manifests.container(name);
        let security = at(container, &["securityContext"], &what);
        assert_eq!(
            security["readOnlyRootFilesystem"].as_bool(),
            Some(true),
            "{what}"
        );
        assert_eq!(
            security["allowPrivilegeEscalation"].as_bool(),
            Some(false),
            "{what}"
        );
        assert_eq!(
            security["runAsNonRoot"]
                .as_bool()
                .or(pod_security["runAsNonRoot"].as_bool()),
            Some(true),
            "{what}"
        );
        let dropped = list_at(security, &["capabilities", "drop"], &what);
        assert!(dropped.iter().any(|c| c.as_str() == Some("ALL")), "{what}");
        let requests = at(container, &["resources", "requests"], &what);
        text_at(requests, &["cpu"], &what);
        let memory = bytes(text_at(requests, &["memory"], &what));
        let limit = bytes(text_at(
            container,
            &["resources", "limits", "memory"],
            &what,
        ));
        assert!(
            limit >= memory,
            "{what}: limits.memory under requests.memory"
        );
        let data_dir = flag_value(&args(container), "--data-dir");
        claim_holds(set, container, data_dir, &what);
        let annotations = at(set, &["spec", "template", "metadata", "annotations"], &what);
        assert_eq!(
            annotations["prometheus.io/port"]
                .as_str()
                .and_then(|p| p.parse::<u64>().ok()),
            container_ports(container).get("metrics").copied(),
            "{what}: prometheus.io/port is the metrics port"
        );
    }

    // While one of R nodes is away the others check N/(R-1) connectors
    // each: 64 MiB for the process plus 90 KiB per connector.
    let set = manifests.get("StatefulSet", "sandport");
    let replicas = number_at(set, &["spec", "replicas"], "StatefulSet sandport");
    let per_node = SIZED_FOR.div_ceil(replicas - 1);
    let container = manifests.container("sandport");
    let memory = bytes(text_at(
        container,
        &["resources", "requests", "memory"],
        "sandport",
    ));
    let needed = (64 << 20) + per_node * (90 << 10);
    assert!(
        memory >= needed,
        "requests.memory {memory} is under 64Mi + 90Ki x {per_node} = {needed}"
    );
    assert!(
        memory < needed + (16 << 20),
        "requests.memory {memory} is far over 64Mi + 90Ki x {per_node} = {needed}"
    );
}
