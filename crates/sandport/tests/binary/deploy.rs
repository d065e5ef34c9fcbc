//! The deployment artifacts (`deploy/`, `Dockerfile`) read as the tools that
//! consume them read them, and checked against the binary they run: the
//! alert rules through promtool, the Kubernetes manifests' ports, probes
//! and config, the dashboard's panels, the systemd unit's flags, and the
//! image's toolchain and user.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Output};

use serde_norway::Value;

use super::manifests::{
    at, bytes, documents_flag, flags, list_at, output_text, read, repo_root, serve_help, text_at,
    yaml_documents,
};
use super::support::{SANDPORT, temp_dir, write};

/// Where Debian's `prometheus` package puts promtool.
const PROMTOOL: &str = "/usr/bin/promtool";

/// The gRPC health service name that turns NOT_SERVING when shutdown begins.
const CONNECTORS_SERVICE: &str = "sandport.connectors.v1.ConnectorsService";

/// Every metric the service exports (histograms by their base name).
const EXPORTED_METRICS: &[&str] = &[
    "sandport_connector_up",
    "sandport_check_duration_seconds",
    "sandport_checks_total",
    "sandport_check_failures_total",
    "sandport_egress_requests_total",
    "sandport_egress_received_bytes_total",
    "sandport_instance_memory_bytes",
    "sandport_connectors",
    "sandport_schedule_lateness_seconds",
    "sandport_api_requests_total",
    "sandport_api_request_duration_seconds",
    "sandport_compile_cache_hits_total",
    "sandport_compile_cache_misses_total",
    "sandport_config_reloads_total",
    "sandport_config_last_reload_success",
    "sandport_build_info",
    "process_cpu_seconds_total",
    "process_resident_memory_bytes",
    "process_virtual_memory_bytes",
    "process_open_fds",
    "process_max_fds",
    "process_start_time_seconds",
    "process_threads",
];

// ------------------------------------------------------------- Prometheus

fn promtool(args: &[&str]) -> Output {
    assert!(
        Path::new(PROMTOOL).is_file(),
        "{PROMTOOL} is missing: run scripts/install-test-deps.sh (Debian's prometheus package ships it)"
    );
    Command::new(PROMTOOL)
        .args(args)
        .current_dir(repo_root().join("deploy/prometheus"))
        .output()
        .expect("run promtool")
}

#[test]
fn the_alert_rules_and_the_scrape_config_pass_promtool_and_its_unit_tests() {
    for args in [
        &["check", "rules", "sandport-alerts.yml"][..],
        &["test", "rules", "sandport-alerts.test.yml"],
        &["check", "config", "prometheus.yml"],
    ] {
        let out = promtool(args);
        assert!(
            out.status.success(),
            "promtool {}: {}",
            args.join(" "),
            output_text(&out)
        );
    }
}

#[test]
fn every_alert_has_a_unit_test_that_it_fires_and_one_that_it_does_not() {
    let rules_file = "deploy/prometheus/sandport-alerts.yml";
    let rules = &yaml_documents(rules_file)[0];
    let mut alerts = BTreeSet::new();
    for group in list_at(rules, &["groups"], rules_file) {
        for rule in list_at(group, &["rules"], rules_file) {
            let name = text_at(rule, &["alert"], rules_file);
            text_at(rule, &["labels", "severity"], rules_file);
            for key in ["summary", "description"] {
                text_at(rule, &["annotations", key], rules_file);
            }
            alerts.insert(name.to_string());
        }
    }
    let expected: BTreeSet<String> = [
        "SandportConnectorDown",
        "SandportSchedulerLate",
        "SandportConnectorQuarantined",
        "SandportConfigReloadFailed",
        "SandportTargetDown",
    ]
    .map(String::from)
    .into();
    assert_eq!(alerts, expected, "{rules_file}");
    let mut alerts_tested = BTreeSet::new();

    let tests_file = "deploy/prometheus/sandport-alerts.test.yml";
    let tests = &yaml_documents(tests_file)[0];
    for test in list_at(tests, &["tests"], tests_file) {
        // Per alert: the first minute it is expected to fire, and the last
        // minute before that it is expected not to.
        let mut cases: BTreeMap<String, (Vec<u64>, Vec<u64>)> = BTreeMap::new();
        for case in list_at(test, &["alert_rule_test"], tests_file) {
            let name = text_at(case, &["alertname"], tests_file).to_string();
            let when = minutes(text_at(case, &["eval_time"], tests_file));
            let (fires, quiet) = cases.entry(name).or_default();
            match case["exp_alerts"].as_sequence().map_or(0, Vec::len) {
                0 => quiet.push(when),
                _ => fires.push(when),
            }
        }
        for (name, (fires, quiet)) in &cases {
            assert!(alerts.contains(name), "{tests_file}: no alert {name}");
            let first = fires.iter().min().unwrap_or_else(|| {
                panic!("{tests_file}: {name} is never expected to fire in its test")
            });
            let before = first.saturating_sub(1);
            assert!(
                quiet.contains(&before),
                "{tests_file}: {name} fires at {first}m; the test must show it quiet at {before}m"
            );
            alerts_tested.insert(name.clone());
        }
    }
    assert_eq!(alerts_tested, alerts, "alerts with a unit test");
}

/// `7m`, `1h`, `90s` in whole minutes (rounded down).
fn minutes(duration: &str) -> u64 {
    let (number, unit) = duration.split_at(duration.len().saturating_sub(1));
    let number: u64 = number
        .parse()
        .unwrap_or_else(|_| panic!("`{duration}` is not a duration like 7m"));
    match unit {
        "s" => number / 60,
        "m" => number,
        "h" => number * 60,
        _ => panic!("`{duration}` is not a duration like 7m"),
    }
}

// ------------------------------------------------------------- Kubernetes

/// The documents of every file `kustomization.yaml` lists, by kind.
fn kubernetes() -> BTreeMap<String, Value> {
    let dir = "deploy/kubernetes";
    let kustomization = &yaml_documents(&format!("{dir}/kustomization.yaml"))[0];
    let listed: BTreeSet<String> = list_at(kustomization, &["resources"], "kustomization.yaml")
        .iter()
        .map(|r| r.as_str().expect("resources are file names").to_string())
        .collect();
    let present: BTreeSet<String> = std::fs::read_dir(repo_root().join(dir))
        .expect("deploy/kubernetes")
        .map(|e| e.expect("a directory entry").file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml") && n != "kustomization.yaml")
        .collect();
    assert_eq!(listed, present, "kustomization.yaml lists every manifest");
    let mut by_kind = BTreeMap::new();
    for file in &listed {
        for doc in yaml_documents(&format!("{dir}/{file}")) {
            let kind = text_at(&doc, &["kind"], file).to_string();
            text_at(&doc, &["apiVersion"], file);
            text_at(&doc, &["metadata", "name"], file);
            assert!(
                by_kind.insert(kind.clone(), doc).is_none(),
                "a second {kind}"
            );
        }
    }
    for kind in [
        "Deployment",
        "Service",
        "ConfigMap",
        "PersistentVolumeClaim",
        "NetworkPolicy",
        "Secret",
    ] {
        assert!(by_kind.contains_key(kind), "no {kind} in {dir}");
    }
    by_kind
}

fn container(manifests: &BTreeMap<String, Value>) -> &Value {
    let containers = list_at(
        &manifests["Deployment"],
        &["spec", "template", "spec", "containers"],
        "deployment.yaml",
    );
    assert_eq!(containers.len(), 1, "one container");
    &containers[0]
}

fn args(container: &Value) -> Vec<&str> {
    list_at(container, &["args"], "deployment.yaml")
        .iter()
        .map(|a| a.as_str().expect("args are strings"))
        .collect()
}

/// The value of `--flag VALUE` or `--flag=VALUE` in `args`.
fn flag_value<'a>(args: &[&'a str], flag: &str) -> &'a str {
    let prefix = format!("{flag}=");
    args.iter()
        .enumerate()
        .find_map(|(i, &arg)| match arg.strip_prefix(prefix.as_str()) {
            Some(value) => Some(value),
            None if arg == flag => args.get(i + 1).copied(),
            None => None,
        })
        .unwrap_or_else(|| panic!("no {flag} in {args:?}"))
}

/// The container's ports: name -> number.
fn container_ports(container: &Value) -> BTreeMap<String, u64> {
    list_at(container, &["ports"], "deployment.yaml")
        .iter()
        .map(|p| {
            let name = text_at(p, &["name"], "deployment.yaml").to_string();
            let number = at(p, &["containerPort"], "deployment.yaml")
                .as_u64()
                .expect("containerPort is a number");
            (name, number)
        })
        .collect()
}

/// Whether `port` (a name or a number) is one of the container's ports.
fn names_a_container_port(port: &Value, ports: &BTreeMap<String, u64>) -> Option<String> {
    match (port.as_str(), port.as_u64()) {
        (Some(name), _) => ports.contains_key(name).then(|| name.to_string()),
        (_, Some(n)) => ports
            .iter()
            .find(|(_, number)| **number == n)
            .map(|(name, _)| name.clone()),
        _ => None,
    }
}

#[test]
fn the_probes_are_grpc_probes_on_the_port_that_grpc_addr_listens_on() {
    let manifests = kubernetes();
    let container = container(&manifests);
    let args = args(container);
    let grpc_addr = flag_value(&args, "--grpc-addr");
    let port: u64 = grpc_addr
        .rsplit_once(':')
        .and_then(|(_, port)| port.parse().ok())
        .unwrap_or_else(|| panic!("--grpc-addr {grpc_addr} has no port"));
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
        let grpc = at(found, &["grpc"], "deployment.yaml");
        assert_eq!(
            grpc["port"].as_u64(),
            Some(port),
            "{probe}: a grpc probe on {port}"
        );
        let service = grpc["service"].as_str().unwrap_or("");
        if probe == "readinessProbe" {
            assert_eq!(service, CONNECTORS_SERVICE, "{probe}");
        }
    }
}

#[test]
fn the_service_and_the_network_policy_name_ports_the_container_has() {
    let manifests = kubernetes();
    let ports = container_ports(container(&manifests));
    let mut exposed = BTreeSet::new();
    for port in list_at(&manifests["Service"], &["spec", "ports"], "service.yaml") {
        let target = at(port, &["targetPort"], "service.yaml");
        let name = names_a_container_port(target, &ports)
            .unwrap_or_else(|| panic!("service.yaml: targetPort {target:?} is not in {ports:?}"));
        exposed.insert(name);
    }
    let mut reachable = BTreeSet::new();
    for rule in list_at(
        &manifests["NetworkPolicy"],
        &["spec", "ingress"],
        "networkpolicy.yaml",
    ) {
        assert!(
            !list_at(rule, &["from"], "networkpolicy.yaml").is_empty(),
            "networkpolicy.yaml: an ingress rule names who may connect"
        );
        for port in list_at(rule, &["ports"], "networkpolicy.yaml") {
            let port = at(port, &["port"], "networkpolicy.yaml");
            let name = names_a_container_port(port, &ports).unwrap_or_else(|| {
                panic!("networkpolicy.yaml: ingress port {port:?} is not in {ports:?}")
            });
            reachable.insert(name);
        }
    }
    let all: BTreeSet<String> = ports.keys().cloned().collect();
    assert_eq!(exposed, all, "the Service exposes every container port");
    assert_eq!(
        reachable, all,
        "the NetworkPolicy admits every container port"
    );
    let policy_types = list_at(
        &manifests["NetworkPolicy"],
        &["spec", "policyTypes"],
        "networkpolicy.yaml",
    );
    assert!(
        policy_types.iter().any(|t| t.as_str() == Some("Egress")),
        "networkpolicy.yaml limits egress too"
    );
}

/// The text of the file at `path` in the container, which a ConfigMap or
/// Secret volume provides: that manifest's entry for the file's name.
fn mounted_file<'a>(
    manifests: &'a BTreeMap<String, Value>,
    container: &Value,
    path: &str,
) -> &'a str {
    let (dir, file) = path.rsplit_once('/').expect("an absolute path");
    let mount = list_at(container, &["volumeMounts"], "deployment.yaml")
        .iter()
        .find(|m| m["mountPath"].as_str() == Some(dir))
        .unwrap_or_else(|| panic!("no volume is mounted at {dir} (for {path})"));
    let volume_name = text_at(mount, &["name"], "deployment.yaml");
    let volume = list_at(
        &manifests["Deployment"],
        &["spec", "template", "spec", "volumes"],
        "deployment.yaml",
    )
    .iter()
    .find(|v| v["name"].as_str() == Some(volume_name))
    .unwrap_or_else(|| panic!("no volume {volume_name}"));
    let (kind, name, data) = if let Some(map) = volume.get("configMap") {
        (
            "ConfigMap",
            text_at(map, &["name"], "deployment.yaml"),
            "data",
        )
    } else if let Some(secret) = volume.get("secret") {
        (
            "Secret",
            text_at(secret, &["secretName"], "deployment.yaml"),
            "stringData",
        )
    } else {
        panic!("{path} is on volume {volume_name}, neither a ConfigMap nor a Secret")
    };
    let source = &manifests[kind];
    assert_eq!(
        text_at(source, &["metadata", "name"], kind),
        name,
        "volume {volume_name} mounts the {kind} of this directory"
    );
    text_at(source, &[data, file], kind)
}

#[test]
fn the_configmap_connectors_yaml_passes_sandport_validate() {
    let manifests = kubernetes();
    let container = container(&manifests);
    let args = args(container);
    let config = mounted_file(&manifests, container, flag_value(&args, "--config"));
    let dir = temp_dir("deploy-configmap");
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

#[test]
fn the_tokens_file_comes_from_the_secret_and_admits_nobody_as_shipped() {
    let manifests = kubernetes();
    let container = container(&manifests);
    let args = args(container);
    let tokens = mounted_file(&manifests, container, flag_value(&args, "--tokens"));
    let parsed: Value = serde_norway::from_str(tokens).expect("the example tokens file is YAML");
    assert_eq!(
        parsed["tokens"].as_sequence().map(Vec::len),
        Some(0),
        "secret.example.yaml: {tokens}"
    );
}

#[test]
fn the_pod_runs_unprivileged_with_requests_sized_for_1000_connectors() {
    let manifests = kubernetes();
    let deployment = &manifests["Deployment"];
    let file = "deployment.yaml";
    assert_eq!(deployment["spec"]["replicas"].as_u64(), Some(1), "{file}");
    assert_eq!(
        text_at(deployment, &["spec", "strategy", "type"], file),
        "Recreate"
    );
    let pod = at(deployment, &["spec", "template", "spec"], file);
    assert_eq!(
        pod["terminationGracePeriodSeconds"].as_u64(),
        Some(30),
        "{file}"
    );
    assert_eq!(
        text_at(pod, &["securityContext", "seccompProfile", "type"], file),
        "RuntimeDefault"
    );
    let container = container(&manifests);
    let security = at(container, &["securityContext"], file);
    assert_eq!(security["readOnlyRootFilesystem"].as_bool(), Some(true));
    assert_eq!(security["allowPrivilegeEscalation"].as_bool(), Some(false));
    assert_eq!(
        security["runAsNonRoot"]
            .as_bool()
            .or(pod["securityContext"]["runAsNonRoot"].as_bool()),
        Some(true)
    );
    let dropped = list_at(security, &["capabilities", "drop"], file);
    assert!(dropped.iter().any(|c| c.as_str() == Some("ALL")), "{file}");

    let requests = at(container, &["resources", "requests"], file);
    text_at(requests, &["cpu"], file);
    let memory = bytes(text_at(requests, &["memory"], file));
    let needed = (64 << 20) + 1000 * (90 << 10);
    assert!(
        memory >= needed,
        "requests.memory {memory} is under 64Mi + 90Ki x 1000 = {needed}"
    );
    assert!(
        memory < needed + (16 << 20),
        "requests.memory {memory} is far over 64Mi + 90Ki x 1000 = {needed}"
    );
    let limit = bytes(text_at(container, &["resources", "limits", "memory"], file));
    assert!(limit >= memory, "limits.memory under requests.memory");

    let annotations = at(
        deployment,
        &["spec", "template", "metadata", "annotations"],
        file,
    );
    assert_eq!(annotations["prometheus.io/scrape"].as_str(), Some("true"));
    let ports = container_ports(container);
    assert_eq!(
        annotations["prometheus.io/port"]
            .as_str()
            .and_then(|p| p.parse::<u64>().ok()),
        ports.get("metrics").copied(),
        "prometheus.io/port is the metrics port"
    );
}

// ---------------------------------------------------------------- Grafana

/// Every panel, rows' nested panels included.
fn all_panels(panels: &[serde_json::Value]) -> Vec<&serde_json::Value> {
    let mut found = Vec::new();
    for panel in panels {
        found.push(panel);
        if let Some(nested) = panel["panels"].as_array() {
            found.extend(all_panels(nested));
        }
    }
    found
}

fn dashboard() -> serde_json::Value {
    serde_json::from_str(&read("deploy/grafana/sandport.json"))
        .expect("deploy/grafana/sandport.json is JSON")
}

#[test]
fn every_dashboard_panel_queries_the_chosen_data_source_and_ids_are_unique() {
    let dashboard = dashboard();
    let panels = all_panels(dashboard["panels"].as_array().expect("panels"));
    let mut ids = BTreeSet::new();
    let mut queried = 0;
    for panel in &panels {
        let title = panel["title"].as_str().unwrap_or("(untitled)");
        let id = panel["id"]
            .as_u64()
            .unwrap_or_else(|| panic!("panel {title}: no id"));
        assert!(ids.insert(id), "panel {title}: id {id} is used twice");
        if panel["type"] == "row" {
            continue;
        }
        assert_eq!(
            panel["datasource"]["uid"], "${datasource}",
            "panel {title}: datasource"
        );
        let targets = panel["targets"]
            .as_array()
            .unwrap_or_else(|| panic!("panel {title}: no targets"));
        assert!(!targets.is_empty(), "panel {title}: no targets");
        for target in targets {
            let expr = target["expr"].as_str().unwrap_or("");
            assert!(
                !expr.trim().is_empty(),
                "panel {title}: a target without expr"
            );
            let source = &target["datasource"];
            assert!(
                source.is_null() || source["uid"] == "${datasource}",
                "panel {title}: a target's datasource is {source}"
            );
        }
        queried += 1;
    }
    assert!(queried >= 12, "{queried} panels with queries");

    let variables = dashboard["templating"]["list"]
        .as_array()
        .expect("templating.list");
    let variable = |name: &str| {
        variables
            .iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("no template variable {name}"))
    };
    assert_eq!(variable("datasource")["type"], "datasource");
    assert_eq!(variable("datasource")["query"], "prometheus");
    for name in ["id", "type"] {
        assert_eq!(
            variable(name)["datasource"]["uid"],
            "${datasource}",
            "variable {name}: datasource"
        );
        let definition = variable(name)["definition"].as_str().unwrap_or("");
        assert!(
            definition.starts_with("label_values(sandport_connector_up")
                && definition.ends_with(&format!(", {name})")),
            "variable {name}: {definition}"
        );
    }
    assert!(
        dashboard["schemaVersion"].as_u64().is_some(),
        "schemaVersion"
    );
}

/// The metric names in PromQL text: `sandport_*` and `process_*`, a
/// histogram's series by the histogram's name.
fn metric_names(promql: &str, into: &mut BTreeSet<String>) {
    let bytes = promql.as_bytes();
    for prefix in ["sandport_", "process_"] {
        let mut from = 0;
        while let Some(found) = promql[from..].find(prefix) {
            let start = from + found;
            let mut end = start + prefix.len();
            while end < bytes.len() && (bytes[end].is_ascii_lowercase() || bytes[end] == b'_') {
                end += 1;
            }
            from = end;
            let preceded = start > 0 && {
                let c = bytes[start - 1];
                c.is_ascii_alphanumeric() || c == b'_'
            };
            if preceded || end == start + prefix.len() {
                continue;
            }
            let name = &promql[start..end];
            let name = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| name.strip_suffix(suffix))
                .unwrap_or(name);
            into.insert(name.to_string());
        }
    }
}

/// The queries of the dashboard (panel targets, template variables).
fn dashboard_queries(value: &serde_json::Value, into: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value.as_str()) {
                    ("expr" | "query" | "definition", Some(text)) => into.push(text.to_string()),
                    _ => dashboard_queries(value, into),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| dashboard_queries(v, into)),
        _ => {}
    }
}

fn dashboard_metric_names() -> BTreeSet<String> {
    let mut queries = Vec::new();
    dashboard_queries(&dashboard(), &mut queries);
    let mut names = BTreeSet::new();
    for query in &queries {
        metric_names(query, &mut names);
    }
    names
}

/// Every `sandport_*` and `process_*` metric the dashboard and the alert
/// rules query (histograms by their name, without `_bucket`, `_sum` or
/// `_count`), to be checked against what a running service exports.
pub(crate) fn metric_names_used_by_deploy() -> BTreeSet<String> {
    let mut names = dashboard_metric_names();
    let rules_file = "deploy/prometheus/sandport-alerts.yml";
    let rules = &yaml_documents(rules_file)[0];
    for group in list_at(rules, &["groups"], rules_file) {
        for rule in list_at(group, &["rules"], rules_file) {
            metric_names(text_at(rule, &["expr"], rules_file), &mut names);
        }
    }
    names
}

#[test]
fn the_dashboard_and_the_rules_query_only_exported_metrics_and_show_them_all() {
    let exported: BTreeSet<String> = EXPORTED_METRICS.iter().map(|m| m.to_string()).collect();
    let used = metric_names_used_by_deploy();
    let unknown: Vec<&String> = used.difference(&exported).collect();
    assert!(unknown.is_empty(), "not exported: {unknown:?}");
    let shown = dashboard_metric_names();
    let missing: Vec<&String> = exported.difference(&shown).collect();
    assert!(missing.is_empty(), "not on the dashboard: {missing:?}");

    let mut found = BTreeSet::new();
    metric_names(
        "histogram_quantile(0.99, rate(sandport_check_duration_seconds_bucket{x=\"my_sandport_y\"}[5m])) \
         and on (job) process_open_fds",
        &mut found,
    );
    assert_eq!(
        found,
        BTreeSet::from([
            "sandport_check_duration_seconds".to_string(),
            "process_open_fds".to_string()
        ])
    );
}

// --------------------------------------------------------------- binaries

/// The `[Service]` settings of a unit file, each key with its values.
fn unit_service_section(text: &str) -> BTreeMap<String, Vec<String>> {
    let mut settings: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut section = "";
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if line.starts_with('[') {
            section = line;
            continue;
        }
        if section == "[Service]" {
            let (key, value) = line
                .split_once('=')
                .unwrap_or_else(|| panic!("sandport.service: `{line}` is not key=value"));
            settings
                .entry(key.trim().to_string())
                .or_default()
                .push(value.trim().to_string());
        }
    }
    settings
}

#[test]
fn the_systemd_unit_notifies_reloads_on_hup_and_passes_flags_serve_accepts() {
    let file = "deploy/systemd/sandport.service";
    let unit = unit_service_section(&read(file));
    let one = |key: &str| -> &str {
        match unit.get(key).map(Vec::as_slice) {
            Some([value]) => value.as_str(),
            other => panic!("{file}: {key} should be set once, is {other:?}"),
        }
    };
    assert_eq!(one("Type"), "notify");
    assert_eq!(one("NotifyAccess"), "main");
    let reload: Vec<&str> = one("ExecReload").split_whitespace().collect();
    assert!(
        reload.first().is_some_and(|p| p.ends_with("/kill"))
            && reload.contains(&"-HUP")
            && reload.contains(&"$MAINPID"),
        "{file}: ExecReload sends SIGHUP to the service: {reload:?}"
    );
    assert!(
        !unit.contains_key("MemoryDenyWriteExecute"),
        "{file}: wasmtime compiles guests at run time, so W^X memory must stay allowed"
    );
    assert_eq!(one("LimitNOFILE"), "65536");

    let exec: Vec<&str> = one("ExecStart").split_whitespace().collect();
    assert_eq!(exec.get(1), Some(&"serve"), "{file}: ExecStart {exec:?}");
    let help = serve_help();
    for flag in flags(exec.iter().copied()) {
        assert!(
            documents_flag(&help, flag),
            "{file}: ExecStart passes {flag}, which `sandport serve --help` does not list:\n{help}"
        );
    }
    assert_eq!(
        flag_value(&exec, "--data-dir"),
        format!("/var/lib/{}", one("StateDirectory")),
        "{file}: the data dir is the StateDirectory"
    );
}

#[test]
fn the_deployment_and_the_image_pass_flags_serve_accepts() {
    let help = serve_help();
    let manifests = kubernetes();
    let deployment_args = args(container(&manifests));
    let dockerfile = Dockerfile::read();
    let cmd = dockerfile.cmd();
    for (file, args) in [
        ("deployment.yaml", deployment_args),
        ("Dockerfile", cmd.iter().map(String::as_str).collect()),
    ] {
        assert_eq!(args.first(), Some(&"serve"), "{file}: {args:?}");
        for flag in flags(args.iter().copied()) {
            assert!(
                documents_flag(&help, flag),
                "{file}: passes {flag}, which `sandport serve --help` does not list:\n{help}"
            );
        }
    }
}

// ------------------------------------------------------------- Dockerfile

/// The Dockerfile's instructions, stage by stage (continuation lines joined).
struct Dockerfile {
    stages: Vec<Vec<(String, String)>>,
}

impl Dockerfile {
    fn read() -> Dockerfile {
        let text = read("Dockerfile");
        let mut stages: Vec<Vec<(String, String)>> = Vec::new();
        let mut pending = String::new();
        for line in text.lines() {
            let line = line.trim();
            if line.starts_with('#') || (line.is_empty() && pending.is_empty()) {
                continue;
            }
            if let Some(head) = line.strip_suffix('\\') {
                pending.push_str(head);
                pending.push(' ');
                continue;
            }
            pending.push_str(line);
            let instruction = std::mem::take(&mut pending);
            let (keyword, rest) = instruction
                .split_once(char::is_whitespace)
                .unwrap_or((instruction.as_str(), ""));
            let keyword = keyword.to_ascii_uppercase();
            if keyword == "FROM" {
                stages.push(Vec::new());
            }
            stages
                .last_mut()
                .expect("Dockerfile: an instruction before the first FROM")
                .push((keyword, rest.trim().to_string()));
        }
        Dockerfile { stages }
    }

    fn all<'a>(stage: &'a [(String, String)], keyword: &'a str) -> impl Iterator<Item = &'a str> {
        stage
            .iter()
            .filter(move |(k, _)| k == keyword)
            .map(|(_, v)| v.as_str())
    }

    /// The image a stage starts from (`rust:1.95-trixie`).
    fn image(stage: &[(String, String)]) -> &str {
        let from = Self::all(stage, "FROM").next().expect("FROM");
        from.split_whitespace()
            .find(|w| !w.starts_with("--"))
            .expect("FROM names an image")
    }

    fn runtime(&self) -> &[(String, String)] {
        self.stages.last().expect("Dockerfile: no stage")
    }

    /// The runtime stage's CMD, exec form.
    fn cmd(&self) -> Vec<String> {
        let cmd = Self::all(self.runtime(), "CMD")
            .last()
            .expect("Dockerfile: the runtime stage has a CMD");
        serde_json::from_str(cmd).expect("Dockerfile: CMD in exec form (a JSON array)")
    }
}

fn workspace_rust_version() -> String {
    let manifest = read("Cargo.toml");
    manifest
        .lines()
        .find_map(|line| {
            let (key, value) = line.split_once('=')?;
            (key.trim() == "rust-version").then(|| value.trim().trim_matches('"').to_string())
        })
        .expect("Cargo.toml: rust-version")
}

#[test]
fn the_image_builds_with_the_workspace_toolchain_and_runs_as_a_non_root_user() {
    let dockerfile = Dockerfile::read();
    assert!(dockerfile.stages.len() >= 2, "a multi-stage build");
    let builder = dockerfile
        .stages
        .iter()
        .find(|stage| Dockerfile::image(stage).starts_with("rust:"))
        .expect("Dockerfile: a stage FROM the official rust image");
    let image = Dockerfile::image(builder);
    let tag = image.trim_start_matches("rust:");
    let (version, variant) = tag.split_once('-').unwrap_or((tag, ""));
    let rust_version = workspace_rust_version();
    assert!(
        version == rust_version || version.starts_with(&format!("{rust_version}.")),
        "Dockerfile: builder {image} is not the workspace's rust-version {rust_version}"
    );
    let runs: Vec<&str> = Dockerfile::all(builder, "RUN").collect();
    for needed in [
        "rustup target add wasm32-wasip2",
        "cargo build --release --locked",
    ] {
        assert!(
            runs.iter().any(|r| r.contains(needed)),
            "Dockerfile: the builder runs `{needed}`: {runs:?}"
        );
    }

    let runtime = dockerfile.runtime();
    let base = Dockerfile::image(runtime);
    assert!(
        !variant.is_empty() && base.contains(variant),
        "Dockerfile: the runtime image {base} is the builder's Debian ({variant}), for its glibc"
    );
    let user = Dockerfile::all(runtime, "USER")
        .last()
        .expect("Dockerfile: the runtime stage sets USER");
    let name = user.split(':').next().unwrap_or("");
    assert!(
        !["", "root", "0"].contains(&name),
        "Dockerfile: the runtime runs as {user}"
    );

    let exposed: BTreeSet<u64> = Dockerfile::all(runtime, "EXPOSE")
        .flat_map(str::split_whitespace)
        .map(|p| p.trim_end_matches("/tcp").parse().expect("EXPOSE a port"))
        .collect();
    let manifests = kubernetes();
    let ports: BTreeSet<u64> = container_ports(container(&manifests))
        .into_values()
        .collect();
    assert_eq!(exposed, ports, "the image exposes the Deployment's ports");
}
