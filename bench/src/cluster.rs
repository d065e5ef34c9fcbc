//! Part 9: a cluster of `sandport serve` nodes on one real etcd, over the
//! same connectors with 1, 2 and 3 nodes: checks/s, CPU per check and RSS
//! per node, etcd's writes and bytes per connector per minute in the
//! steady state, and (with three nodes) the failover time after `kill -9`
//! of one node. Every process shares this machine's cores, so the CPU per
//! check is the figure to compare across node counts, not checks/s; the
//! first count, the reference, is measured again last (see [`run`]).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::report::{self, Row};
use crate::serve::{self, TempDir};
use crate::targets::Targets;

/// Part 9's command line.
#[derive(clap::Args)]
pub struct Args {
    #[arg(long, default_value_t = 30_000)]
    connectors: usize,
    /// Node counts, comma-separated.
    #[arg(long, default_value = "1,2,3", value_delimiter = ',')]
    nodes: Vec<usize>,
    /// The connectors' check interval, in seconds.
    #[arg(long, default_value_t = 30)]
    interval: u64,
    /// `--cluster-lease-ttl`, in seconds.
    #[arg(long, default_value_t = 10)]
    lease_ttl: u64,
    /// Seconds the steady state is measured over.
    #[arg(long, default_value_t = 60)]
    window: u64,
    #[arg(long, default_value_t = 8)]
    servers: usize,
    /// The release `sandport` binary [default: beside this one].
    #[arg(long)]
    sandport: Option<PathBuf>,
}

impl From<Args> for Options {
    fn from(args: Args) -> Options {
        let Args {
            connectors,
            nodes,
            interval,
            lease_ttl,
            window,
            servers,
            sandport,
        } = args;
        Options {
            connectors,
            nodes,
            interval: Duration::from_secs(interval.max(1)),
            lease_ttl: Duration::from_secs(lease_ttl.max(1)),
            window: Duration::from_secs(window.max(1)),
            servers: servers.max(1),
            sandport,
        }
    }
}

pub struct Options {
    pub connectors: usize,
    pub nodes: Vec<usize>,
    pub interval: Duration,
    pub lease_ttl: Duration,
    /// How long the steady state is measured.
    pub window: Duration,
    pub servers: usize,
    pub sandport: Option<PathBuf>,
}

/// A node's process, killed when dropped.
struct Node {
    id: String,
    child: Child,
    http: String,
    log: PathBuf,
    _data: TempDir,
}

impl Node {
    fn spawn(
        binary: &Path,
        config: &Path,
        cluster: &str,
        id: &str,
        options: &Options,
    ) -> anyhow::Result<Node> {
        let data = TempDir::new(id)?;
        let grpc = serve::free_port()?;
        let http = serve::free_port()?;
        let log = data.path().join("serve.log");
        let out = std::fs::File::create(&log).context("create a node's log")?;
        let err = out.try_clone().context("dup a node's log")?;
        let child = Command::new(binary)
            .arg("serve")
            .arg("--config")
            .arg(config)
            .arg("--data-dir")
            .arg(data.path())
            .args(["--grpc-addr", &format!("127.0.0.1:{grpc}")])
            .args(["--http-addr", &format!("127.0.0.1:{http}")])
            .args(["--cluster", cluster, "--node-id", id])
            .args([
                "--cluster-lease-ttl",
                &format!("{}s", options.lease_ttl.as_secs()),
            ])
            .args(["--max-connectors", &options.connectors.to_string()])
            .arg("--no-watch")
            .env("SANDPORT_CACHE_DIR", data.path().join("cache"))
            .env_remove("RUST_LOG")
            .env_remove("CONNECTORS_SERVICE_ADDR")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .with_context(|| format!("run {}", binary.display()))?;
        Ok(Node {
            id: id.to_string(),
            child,
            http: format!("http://127.0.0.1:{http}"),
            log,
            _data: data,
        })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// The node's `/metrics`, read as (checks by connector id, connectors
    /// it owns); None while it does not answer.
    async fn scrape(&mut self, client: &reqwest::Client) -> anyhow::Result<Option<Scrape>> {
        if let Some(status) = self.child.try_wait().context("wait for a node")? {
            bail!("{} exited ({status}):\n{}", self.id, self.log_tail());
        }
        let Ok(response) = client.get(format!("{}/metrics", self.http)).send().await else {
            return Ok(None);
        };
        let Ok(text) = response.text().await else {
            return Ok(None);
        };
        Ok(Some(Scrape::parse(&text)))
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Default)]
struct Scrape {
    checks: BTreeMap<String, f64>,
    owned: f64,
}

impl Scrape {
    fn parse(text: &str) -> Scrape {
        let mut scrape = Scrape::default();
        for line in text.lines() {
            if let Some(value) = line.strip_prefix("sandport_cluster_owned_connectors ") {
                scrape.owned = value.trim().parse().unwrap_or(0.0);
            } else if let Some(rest) = line.strip_prefix("sandport_checks_total{")
                && let Some((labels, value)) = rest.split_once("} ")
                && let Some(id) = labels
                    .split(',')
                    .find_map(|l| l.strip_prefix("id=\""))
                    .and_then(|v| v.strip_suffix('"'))
                && let Ok(value) = value.trim().parse::<f64>()
            {
                *scrape.checks.entry(id.to_string()).or_insert(0.0) += value;
            }
        }
        scrape
    }

    fn total(&self) -> f64 {
        self.checks.values().sum()
    }
}

/// etcd's own counters of what its clients asked.
#[derive(Default, Clone, Copy)]
struct EtcdTraffic {
    writes: f64,
    bytes: f64,
}

async fn etcd_traffic(client: &reqwest::Client, url: &str) -> anyhow::Result<EtcdTraffic> {
    let text = client
        .get(format!("{url}/metrics"))
        .send()
        .await
        .context("etcd's /metrics")?
        .text()
        .await
        .context("etcd's /metrics")?;
    let mut traffic = EtcdTraffic::default();
    for line in text.lines() {
        let Some((name, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let value: f64 = value.parse().unwrap_or(0.0);
        let name = name.split('{').next().unwrap_or(name);
        match name {
            "etcd_mvcc_put_total" | "etcd_mvcc_delete_total" | "etcd_mvcc_txn_total" => {
                traffic.writes += value;
            }
            "etcd_network_client_grpc_received_bytes_total"
            | "etcd_network_client_grpc_sent_bytes_total" => traffic.bytes += value,
            _ => {}
        }
    }
    Ok(traffic)
}

/// One node count's steady state.
struct Steady {
    nodes: usize,
    checks_per_s: f64,
    /// Per node: (CPU per check, RSS KiB, checks).
    per_node: Vec<(Duration, u64, f64)>,
    writes_per_connector_minute: f64,
    bytes_per_connector_minute: f64,
}

/// Measures each node count in turn, the first (the reference) again
/// last, and reports them.
pub async fn run(options: &Options) -> anyhow::Result<Vec<Row>> {
    let binary = serve::binary(options.sandport.as_deref())?;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .context("an HTTP client")?;
    let targets = Targets::spawn(options.servers)?;
    let dir = TempDir::new("cluster")?;
    let keys = format!(
        "interval: {}s, timeout: 5s, path: /-/healthy",
        options.interval.as_secs()
    );
    let config = serve::write_config(
        dir.path(),
        options.connectors,
        &["http"],
        &targets,
        Some(&keys),
    )?;
    println!(
        "method: {} `http` connectors (ids c00000..) on {}, checked every {}; for each node count a fresh etcd (Debian's etcd-server, one member on loopback) and `sandport serve --cluster` nodes (lease TTL {}); once the nodes own every connector and one interval has passed, the steady state is measured over {} from each node's /metrics and /proc and from etcd's /metrics",
        report::thousands(options.connectors as u64),
        targets.about,
        report::human(options.interval),
        report::human(options.lease_ttl),
        report::human(options.window),
    );
    let map_count: usize = std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(65_530);
    // The first count is the reference, measured first and again last:
    // on a shared VM the same binary's CPU per check drifts by more than
    // the 15% being judged from one run to the next (242 to 312 µs for one
    // node), so the others are compared with the mean of the two.
    let mut order = options.nodes.clone();
    if let [first, _, ..] = options.nodes[..] {
        order.push(first);
    }
    let mut measured = Vec::new();
    for &n in &order {
        // Each connector holds about four mappings; each node needs room.
        let needed = options.connectors.div_ceil(n) * 4 + 4_096;
        if needed > map_count {
            println!(
                "-- {n} node(s): skipped: each would hold {} connectors, which need vm.max_map_count ≥ {needed} (it is {map_count}); raise it with `sysctl -w vm.max_map_count={}`",
                report::thousands(options.connectors.div_ceil(n) as u64),
                needed.next_power_of_two()
            );
            continue;
        }
        let (steady, failover) = one_count(&binary, &config, n, options, &http).await?;
        print_steady(&steady, options);
        measured.push((steady, failover));
    }
    Ok(rows(&measured, options))
}

/// The report's rows: each count once, its CPU per check against the
/// reference (the first count, the mean of its runs).
fn rows(measured: &[(Steady, Option<Duration>)], options: &Options) -> Vec<Row> {
    let Some((first, _)) = measured.first() else {
        return Vec::new();
    };
    let cpu_of = |steady: &Steady| mean(steady.per_node.iter().map(|(cpu, _, _)| *cpu));
    let reference: Vec<Duration> = measured
        .iter()
        .filter(|(steady, _)| steady.nodes == first.nodes)
        .map(|(steady, _)| cpu_of(steady))
        .collect();
    let base = mean(reference.iter().copied());
    let mut rows = Vec::new();
    let mut shown = BTreeSet::new();
    for (steady, failover) in measured {
        let n = steady.nodes;
        if !shown.insert(n) {
            continue;
        }
        let cpu = cpu_of(steady);
        rows.push(Row::info(
            9,
            format!(
                "{n} node(s) over {} connectors: checks/s (all nodes)",
                report::thousands(options.connectors as u64)
            ),
            format!("{:.0}", steady.checks_per_s),
        ));
        if n == first.nodes && reference.len() > 1 {
            rows.push(Row::info(
                9,
                format!("{n} node(s): CPU per check per node, measured first and again last (the reference: their mean)"),
                reference
                    .iter()
                    .map(|cpu| format!("{:.1} µs", cpu.as_secs_f64() * 1e6))
                    .collect::<Vec<_>>()
                    .join(" / "),
            ));
        } else {
            let ratio = cpu.as_secs_f64() / base.as_secs_f64().max(f64::MIN_POSITIVE);
            rows.push(Row::target(
                9,
                format!(
                    "{n} node(s): CPU per check per node (mean), against {} node(s)'",
                    first.nodes
                ),
                format!("{:.1} µs ({ratio:.2}×)", cpu.as_secs_f64() * 1e6),
                "≤ 1.15×",
                ratio <= 1.15,
            ));
        }
        rows.push(Row::info(
            9,
            format!("{n} node(s): RSS per node"),
            steady
                .per_node
                .iter()
                .map(|(_, rss, _)| format!("{} MiB", rss / 1024))
                .collect::<Vec<_>>()
                .join(", "),
        ));
        let checks_per_minute = 60.0 / options.interval.as_secs_f64();
        rows.push(Row::target(
            9,
            format!("{n} node(s): etcd writes per connector per minute, steady ({checks_per_minute:.0} checks each)"),
            format!("{:.4} ({:.0} bytes)", steady.writes_per_connector_minute, steady.bytes_per_connector_minute),
            "no write per unchanged check",
            steady.writes_per_connector_minute < checks_per_minute / 10.0,
        ));
        if let Some(took) = *failover {
            let goal = options.lease_ttl + options.interval;
            rows.push(Row::target(
                9,
                format!("{n} nodes: failover after kill -9 of one (until every connector it owned was checked by a survivor)"),
                report::human(took),
                format!("≤ {} (TTL + interval)", report::human(goal)),
                took <= goal,
            ));
        }
    }
    rows
}

fn mean(values: impl Iterator<Item = Duration>) -> Duration {
    let all: Vec<Duration> = values.collect();
    if all.is_empty() {
        return Duration::ZERO;
    }
    all.iter().sum::<Duration>() / u32::try_from(all.len()).unwrap_or(u32::MAX)
}

fn print_steady(steady: &Steady, options: &Options) {
    println!(
        "-- {} node(s): {:.0} checks/s; etcd {:.4} writes and {:.0} bytes per connector per minute",
        steady.nodes,
        steady.checks_per_s,
        steady.writes_per_connector_minute,
        steady.bytes_per_connector_minute
    );
    for (i, (cpu, rss, checks)) in steady.per_node.iter().enumerate() {
        println!(
            "   node-{}: {checks:.0} checks in {} ({:.1} µs of CPU each), RSS {} MiB",
            i + 1,
            report::human(options.window),
            cpu.as_secs_f64() * 1e6,
            rss / 1024
        );
    }
}

/// Starts etcd and `n` nodes, measures the steady state and, with three
/// or more nodes, the failover.
async fn one_count(
    binary: &Path,
    config: &Path,
    n: usize,
    options: &Options,
    http: &reqwest::Client,
) -> anyhow::Result<(Steady, Option<Duration>)> {
    let etcd = tokio::task::spawn_blocking(sandport_cluster::testing::Etcd::start)
        .await
        .context("start etcd")?;
    let etcd_http = etcd.url().replacen("etcd://", "http://", 1);
    let mut nodes = Vec::new();
    for i in 1..=n {
        nodes.push(Node::spawn(
            binary,
            config,
            &etcd.url(),
            &format!("node-{i}"),
            options,
        )?);
    }
    // Every connector owned, by the nodes' own count.
    let since = Instant::now();
    loop {
        let mut owned = 0.0;
        for node in &mut nodes {
            owned += node.scrape(http).await?.map_or(0.0, |s| s.owned);
        }
        if owned as usize >= options.connectors {
            break;
        }
        if since.elapsed() > Duration::from_secs(600) {
            bail!(
                "the {n} node(s) own {owned} of {} connectors after 10 min",
                options.connectors
            );
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    println!(
        "-- {n} node(s) own every connector after {}",
        report::human(since.elapsed())
    );
    tokio::time::sleep(options.interval + Duration::from_secs(2)).await;
    // The first statuses are published one connector at a time: the
    // steady state starts when etcd has seen no write for a while.
    let quiet = Instant::now();
    let mut writes = etcd_traffic(http, &etcd_http).await?.writes;
    loop {
        tokio::time::sleep(Duration::from_secs(3)).await;
        let now = etcd_traffic(http, &etcd_http).await?.writes;
        if now == writes || quiet.elapsed() > Duration::from_secs(300) {
            break;
        }
        writes = now;
    }
    println!(
        "-- {n} node(s): the first statuses were all published {} later",
        report::human(quiet.elapsed())
    );

    let mut before = Vec::new();
    for node in &mut nodes {
        let scrape = node.scrape(http).await?.unwrap_or_default();
        let cpu = report::cpu_time(Some(node.pid())).unwrap_or_default();
        before.push((scrape.total(), cpu));
    }
    let etcd_before = etcd_traffic(http, &etcd_http).await?;
    let start = Instant::now();
    tokio::time::sleep(options.window).await;
    let elapsed = start.elapsed();
    let etcd_after = etcd_traffic(http, &etcd_http).await?;
    let mut per_node = Vec::new();
    let mut total = 0.0;
    let mut last = Vec::new();
    for (node, (checks, cpu)) in nodes.iter_mut().zip(&before) {
        let scrape = node.scrape(http).await?.unwrap_or_default();
        let spent = report::cpu_time(Some(node.pid()))
            .unwrap_or_default()
            .saturating_sub(*cpu);
        let done = scrape.total() - checks;
        total += done;
        let each = if done > 0.0 {
            spent.div_f64(done)
        } else {
            Duration::ZERO
        };
        let rss = report::status_kib(Some(node.pid()), "VmRSS").unwrap_or(0);
        per_node.push((each, rss, done));
        last.push(scrape);
    }
    let minutes = elapsed.as_secs_f64() / 60.0;
    let per = |v: f64| v / options.connectors as f64 / minutes;
    let steady = Steady {
        nodes: n,
        checks_per_s: total / elapsed.as_secs_f64(),
        per_node,
        writes_per_connector_minute: per(etcd_after.writes - etcd_before.writes),
        bytes_per_connector_minute: per(etcd_after.bytes - etcd_before.bytes),
    };
    let failover = if n >= 3 {
        Some(failover(&mut nodes, &last, options, http).await?)
    } else {
        None
    };
    drop(nodes);
    drop(etcd);
    Ok((steady, failover))
}

/// Kills the last node and waits until every connector it checked in the
/// window has been checked by a survivor since.
async fn failover(
    nodes: &mut Vec<Node>,
    last: &[Scrape],
    options: &Options,
    http: &reqwest::Client,
) -> anyhow::Result<Duration> {
    let victim_index = nodes.len() - 1;
    let orphans: BTreeSet<String> = last[victim_index]
        .checks
        .iter()
        .filter(|(_, checks)| **checks > 0.0)
        .map(|(id, _)| id.clone())
        .collect();
    let mut victim = nodes.remove(victim_index);
    let killed = Instant::now();
    let _ = victim.child.kill();
    let _ = victim.child.wait();
    let limit = options.lease_ttl + options.interval * 3;
    let mut waiting = orphans.clone();
    while !waiting.is_empty() {
        if killed.elapsed() > limit {
            bail!(
                "{} of {} connectors of the killed node were not checked by a survivor within {}",
                waiting.len(),
                orphans.len(),
                report::human(limit)
            );
        }
        for (node, before) in nodes.iter_mut().zip(last) {
            if let Some(now) = node.scrape(http).await? {
                waiting.retain(|id| {
                    now.checks.get(id).copied().unwrap_or(0.0)
                        <= before.checks.get(id).copied().unwrap_or(0.0)
                });
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let took = killed.elapsed();
    println!(
        "-- failover: the {} connectors of the killed node were all checked by a survivor {} after kill -9",
        orphans.len(),
        report::human(took)
    );
    Ok(took)
}
