//! Helpers for the cluster tests: a real etcd (Debian's `etcd-server`), a
//! `sandport serve` node in cluster mode, and a loopback target that
//! records every request by path, so a test can count the checks of each
//! connector. Every child process is killed when its value is dropped,
//! a panicking test's included.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use sandport_server::grpc::pb;
use sandport_server::grpc::pb::connectors_service_client::ConnectorsServiceClient;
use tonic::transport::{Certificate, Channel, ClientTlsConfig};

use super::support::SANDPORT;

pub use sandport_cluster::testing::{Etcd, free_ports};

/// How one node is started; starting it again uses the same node id,
/// config file and data directory.
#[derive(Clone)]
pub struct NodeSpec {
    pub id: String,
    pub cluster: String,
    pub config: PathBuf,
    pub data_dir: PathBuf,
    /// `--cluster-lease-ttl`, in humantime form.
    pub lease_ttl: String,
}

/// The last lines of a node's log kept for a failure message.
const LOG_LINES: usize = 400;

/// `sandport serve --cluster ... --node-id ...` on fresh loopback ports,
/// killed when dropped.
pub struct Node {
    pub id: String,
    child: Child,
    /// `http://127.0.0.1:P` of `--grpc-addr`.
    pub grpc: String,
    /// `http://127.0.0.1:Q` of `--http-addr`.
    pub http: String,
    /// Sent by the test's own calls when the node takes tokens.
    pub token: Option<String>,
    /// The CA (PEM) of the node's API certificate, when it serves TLS.
    ca: Option<String>,
    log: Arc<Mutex<VecDeque<String>>>,
    /// How it was started, to start it again on other ports.
    spec: NodeSpec,
    extra: Vec<String>,
}

impl Node {
    /// Starts the process; [`Node::ready`] waits for its API.
    pub fn spawn(spec: &NodeSpec) -> Node {
        Node::spawn_with(spec, &[], None)
    }

    /// Starts the process with `extra` flags; the test's calls send
    /// `token` (a node started with `--tokens`).
    pub fn spawn_with(spec: &NodeSpec, extra: &[String], token: Option<&str>) -> Node {
        let [grpc_port, http_port] = free_ports();
        let mut child = Command::new(SANDPORT)
            .arg("serve")
            .arg("--config")
            .arg(&spec.config)
            .arg("--data-dir")
            .arg(&spec.data_dir)
            .args(["--grpc-addr", &format!("127.0.0.1:{grpc_port}")])
            .args(["--http-addr", &format!("127.0.0.1:{http_port}")])
            .args(["--cluster", &spec.cluster])
            .args(["--node-id", &spec.id])
            .args(["--cluster-lease-ttl", &spec.lease_ttl])
            .args(extra)
            .env("RUST_LOG", "info")
            .env_remove("CONNECTORS_SERVICE_ADDR")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn sandport serve");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(VecDeque::new()));
        let sink = log.clone();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                let mut log = sink.lock().unwrap_or_else(PoisonError::into_inner);
                if log.len() == LOG_LINES {
                    log.pop_front();
                }
                log.push_back(line);
            }
        });
        Node {
            id: spec.id.clone(),
            child,
            grpc: format!("http://127.0.0.1:{grpc_port}"),
            http: format!("http://127.0.0.1:{http_port}"),
            token: token.map(String::from),
            ca: None,
            log,
            spec: spec.clone(),
            extra: extra.to_vec(),
        }
    }

    /// Calls the node over TLS from here on, trusting `ca_pem` (a node
    /// started with `--tls-cert`).
    pub fn trust(&mut self, ca_pem: &str) {
        self.grpc = self.grpc.replacen("http://", "https://", 1);
        self.http = self.http.replacen("http://", "https://", 1);
        self.ca = Some(ca_pem.to_string());
    }

    /// A channel to the gRPC API, over TLS when the node serves it.
    async fn channel(&self) -> Result<Channel, tonic::transport::Error> {
        let mut endpoint = Channel::from_shared(self.grpc.clone())
            .expect("a URI")
            .timeout(Duration::from_secs(20));
        if let Some(ca) = &self.ca {
            endpoint = endpoint
                .tls_config(ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca)))?;
        }
        endpoint.connect().await
    }

    /// An HTTP client of the REST API, trusting the node's CA.
    pub fn http_client(&self) -> reqwest::Client {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = reqwest::Client::builder();
        if let Some(ca) = &self.ca {
            builder = builder.add_root_certificate(
                reqwest::Certificate::from_pem(ca.as_bytes()).expect("a CA certificate"),
            );
        }
        builder.build().expect("an HTTP client")
    }

    /// Waits until the gRPC API lists connectors (60 s at most: the first
    /// start compiles the built-ins' components).
    pub async fn ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut port_retries = 3;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                // Its ports were free when picked; another process of a
                // test running beside it may have taken one since.
                if port_retries > 0 && self.log().contains("Address already in use") {
                    port_retries -= 1;
                    let ca = self.ca.clone();
                    *self = Node::spawn_with(&self.spec, &self.extra, self.token.as_deref());
                    if let Some(ca) = ca {
                        self.trust(&ca);
                    }
                    continue;
                }
                panic!(
                    "{} exited ({status}) before it served; log:\n{}",
                    self.id,
                    self.log()
                );
            }
            if let Ok(channel) = self.channel().await
                && ConnectorsServiceClient::new(channel)
                    .list_connectors(self.request(pb::ListConnectorsRequest::default()))
                    .await
                    .is_ok()
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not serve within 60 s; log:\n{}",
                self.id,
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A gRPC client of this node's API; no call waits longer than 20 s,
    /// so a node that hangs fails the test rather than stalling it.
    pub async fn client(&self) -> ConnectorsServiceClient<Channel> {
        let channel = self
            .channel()
            .await
            .unwrap_or_else(|e| panic!("connect to {}: {e}", self.id));
        ConnectorsServiceClient::new(channel)
    }

    /// A request carrying the node's token, if it takes one.
    pub fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        if let Some(token) = &self.token {
            let value = format!("Bearer {token}").parse().expect("a header value");
            request.metadata_mut().insert("authorization", value);
        }
        request
    }

    /// The node's ids, in order, with their statuses.
    pub async fn statuses(&self) -> Result<BTreeMap<String, pb::ConnectorStatus>, tonic::Status> {
        let listed = self
            .client()
            .await
            .list_connectors(pb::ListConnectorsRequest::default())
            .await?
            .into_inner();
        Ok(listed
            .connectors
            .into_iter()
            .map(|c| (c.id.clone(), c.status()))
            .collect())
    }

    /// The node's ids, in order.
    pub async fn ids(&self) -> Result<Vec<String>, tonic::Status> {
        Ok(self.statuses().await?.into_keys().collect())
    }

    /// `sandport_egress_requests_total` by connector id: the requests
    /// this process sent for each connector, so only its own checks.
    pub async fn egress_requests(&self) -> BTreeMap<String, f64> {
        let mut get = self.http_client().get(format!("{}/metrics", self.http));
        if let Some(token) = &self.token {
            get = get.bearer_auth(token);
        }
        let text = get
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .unwrap_or_else(|e| panic!("GET /metrics of {}: {e}", self.id))
            .text()
            .await
            .expect("the exposition");
        let mut counts = BTreeMap::new();
        for line in text.lines() {
            let Some(rest) = line.strip_prefix("sandport_egress_requests_total{") else {
                continue;
            };
            let Some((labels, value)) = rest.split_once("} ") else {
                continue;
            };
            let id = labels
                .split(',')
                .find_map(|l| l.strip_prefix("id=\""))
                .and_then(|v| v.strip_suffix('"'));
            let value = value.split_whitespace().next().map(str::parse::<f64>);
            if let (Some(id), Some(Ok(value))) = (id, value) {
                *counts.entry(id.to_string()).or_insert(0.0) += value;
            }
        }
        counts
    }

    /// SIGKILL: the node leaves no goodbye in etcd.
    pub fn kill_9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits (30 s at most) for the exit.
    pub fn terminate(&mut self) {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill -TERM");
        assert!(sent.success());
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.child.try_wait().expect("wait").is_none() {
            assert!(
                Instant::now() < deadline,
                "{} did not stop within 30 s; log:\n{}",
                self.id,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The last lines of the node's log.
    pub fn log(&self) -> String {
        let log = self.log.lock().unwrap_or_else(PoisonError::into_inner);
        log.iter().cloned().collect::<Vec<_>>().join("\n")
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill_9();
    }
}

/// A loopback HTTP target that records when each path was requested and
/// answers each path with a status of its own (200 unless set).
#[derive(Clone)]
pub struct Hits {
    pub port: u16,
    state: Arc<Mutex<HitsState>>,
}

#[derive(Default)]
struct HitsState {
    requests: HashMap<String, Vec<Instant>>,
    statuses: HashMap<String, u16>,
}

impl Hits {
    pub fn start() -> Hits {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let hits = Hits {
            port: listener.local_addr().expect("addr").port(),
            state: Arc::default(),
        };
        let shared = hits.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let shared = shared.clone();
                std::thread::spawn(move || shared.answer(stream));
            }
        });
        hits
    }

    fn answer(&self, mut stream: TcpStream) {
        let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
        let mut head = Vec::new();
        let mut buf = [0u8; 2048];
        while !head.windows(2).any(|w| w == b"\r\n") && head.len() < 16 << 10 {
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
        let at = Instant::now();
        let head = String::from_utf8_lossy(&head);
        let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
        let status = {
            let mut state = self.lock();
            state.requests.entry(path.clone()).or_default().push(at);
            state.statuses.get(&path).copied().unwrap_or(200)
        };
        let body = "ok";
        let _ = write!(
            stream,
            "HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HitsState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Answers `path` with `status` from now on.
    pub fn set_status(&self, path: &str, status: u16) {
        self.lock().statuses.insert(path.to_string(), status);
    }

    /// The requests for `path` that arrived in `[from, to)`.
    pub fn count(&self, path: &str, from: Instant, to: Instant) -> usize {
        self.lock().requests.get(path).map_or(0, |times| {
            times.iter().filter(|t| **t >= from && **t < to).count()
        })
    }

    /// The first request for `path` at or after `from`.
    pub fn first_since(&self, path: &str, from: Instant) -> Option<Instant> {
        self.lock()
            .requests
            .get(path)
            .and_then(|times| times.iter().copied().filter(|t| *t >= from).min())
    }
}
