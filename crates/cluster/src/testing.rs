//! A real etcd for tests, of this crate and of the ones above it (feature
//! `testing`): one member of Debian's `etcd-server` on free loopback ports
//! (client and peer) with a data directory of its own, ready when it says
//! so, killed when dropped. `kill` and `resume` keep the ports and the
//! data, as an etcd that goes down and comes back. `start_tls` serves
//! clients over TLS only and asks each for a certificate its CA signed.
//!
//! Test code: it panics, with the reason and etcd's log, when etcd cannot
//! be started.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{Cluster, ClusterOptions};

const ETCD: &str = "/usr/bin/etcd";

pub struct Etcd {
    dir: tempfile::TempDir,
    client_port: u16,
    peer_port: u16,
    child: Option<Child>,
    /// Serving clients over TLS, asking for client certificates.
    tls: Option<Pki>,
}

/// A CA, etcd's server certificate and a client certificate, as PEM files
/// in the etcd's directory.
pub struct Pki {
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

impl Pki {
    fn write(dir: &Path) -> Pki {
        let ca_key = rcgen::KeyPair::generate().expect("key");
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "etcd test CA");
        ca_params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let ca_pem = ca_params.self_signed(&ca_key).expect("ca").pem();
        let issuer = rcgen::Issuer::from_params(&ca_params, &ca_key);
        let leaf = |usage| {
            let key = rcgen::KeyPair::generate().expect("key");
            let mut params =
                rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).expect("params");
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, "sandport");
            params.extended_key_usages = vec![usage];
            let cert = params.signed_by(&key, &issuer).expect("sign");
            (cert.pem(), key.serialize_pem())
        };
        let (server_cert, server_key) = leaf(rcgen::ExtendedKeyUsagePurpose::ServerAuth);
        let (client_cert, client_key) = leaf(rcgen::ExtendedKeyUsagePurpose::ClientAuth);
        let file = |name: &str, pem: &str| {
            let path = dir.join(name);
            std::fs::write(&path, pem).expect("write a PEM file");
            path
        };
        Pki {
            ca: file("ca.pem", &ca_pem),
            server_cert: file("server.pem", &server_cert),
            server_key: file("server-key.pem", &server_key),
            client_cert: file("client.pem", &client_cert),
            client_key: file("client-key.pem", &client_key),
        }
    }
}

impl Etcd {
    pub fn start() -> Etcd {
        Etcd::start_with(false)
    }

    /// An etcd that serves clients over TLS only and asks each for a
    /// certificate its CA signed.
    pub fn start_tls() -> Etcd {
        Etcd::start_with(true)
    }

    fn start_with(tls: bool) -> Etcd {
        assert!(
            Path::new(ETCD).exists(),
            "{ETCD} is missing: install the Debian package `etcd-server` (as root: scripts/install-test-deps.sh)"
        );
        let dir = tempfile::Builder::new()
            .prefix("sp-etcd-")
            .tempdir()
            .expect("a temporary directory");
        let [client_port, peer_port] = free_ports();
        let tls = tls.then(|| Pki::write(dir.path()));
        let mut etcd = Etcd {
            dir,
            client_port,
            peer_port,
            child: None,
            tls,
        };
        etcd.resume();
        etcd
    }

    /// `etcd://127.0.0.1:<client port>` (`etcds://` with TLS).
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "etcds" } else { "etcd" };
        format!("{scheme}://127.0.0.1:{}", self.client_port)
    }

    pub fn pki(&self) -> Option<&Pki> {
        self.tls.as_ref()
    }

    /// Options for `node` with a short lease and call timeout, so that
    /// expiry and outage tests take seconds.
    pub fn options(&self, node: &str) -> ClusterOptions {
        let mut options = ClusterOptions::parse(&self.url(), node).expect("valid options");
        options.lease_ttl = Duration::from_secs(2);
        options.call_timeout = Duration::from_secs(1);
        options
    }

    /// A connection as `node`, under `prefix`.
    pub async fn connect(&self, node: &str, prefix: &str) -> Cluster {
        let mut options = self.options(node);
        options.prefix = prefix.to_string();
        Cluster::connect(&options).await.expect("connects to etcd")
    }

    /// Kills etcd (SIGKILL: no goodbye to its clients).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts etcd (again) on the same ports and data, and waits until it
    /// is healthy.
    pub fn resume(&mut self) {
        assert!(self.child.is_none(), "etcd is running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("etcd.log"))
            .expect("the log file");
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let client = format!("{scheme}://127.0.0.1:{}", self.client_port);
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let mut command = Command::new(ETCD);
        if let Some(pki) = &self.tls {
            command
                .arg(format!("--cert-file={}", pki.server_cert.display()))
                .arg(format!("--key-file={}", pki.server_key.display()))
                .arg(format!("--trusted-ca-file={}", pki.ca.display()))
                .arg("--client-cert-auth");
        }
        let child = command
            .arg("--name=test")
            .arg(format!("--data-dir={}", self.data_dir().display()))
            .arg(format!("--listen-client-urls={client}"))
            .arg(format!("--advertise-client-urls={client}"))
            .arg(format!("--listen-peer-urls={peer}"))
            .arg(format!("--initial-advertise-peer-urls={peer}"))
            .arg(format!("--initial-cluster=test={peer}"))
            .arg("--initial-cluster-state=new")
            // Quick elections and lease checks on one loopback member.
            .arg("--heartbeat-interval=50")
            .arg("--election-timeout=500")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("the log file"))
            .stderr(log)
            .spawn()
            .expect("start etcd");
        self.child = Some(child);
        self.wait_healthy(Duration::from_secs(30));
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn wait_healthy(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if self.healthy() {
                return;
            }
            if let Some(child) = &mut self.child
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!(
                    "etcd exited ({status}) before it was ready; log:\n{}",
                    self.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "etcd not healthy after {timeout:?}; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `GET /health` answers `"health":"true"` once etcd has a leader;
    /// over TLS, the log says it serves clients.
    fn healthy(&self) -> bool {
        if self.tls.is_some() {
            return TcpStream::connect(("127.0.0.1", self.client_port)).is_ok()
                && self.log().contains("ready to serve client requests");
        }
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.client_port)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
        let request = "GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
        if stream.write_all(request.as_bytes()).is_err() {
            return false;
        }
        // HTTP/1.0: the answer ends when etcd closes; a few hundred bytes.
        let mut answer = Vec::new();
        let mut buf = [0u8; 1024];
        while answer.len() < 64 << 10 {
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            }
        }
        String::from_utf8_lossy(&answer).contains("\"health\":\"true\"")
    }

    fn log(&self) -> String {
        // etcd's log for one test: a few hundred KiB at most.
        sandport_config::read_bounded_text(&self.dir.path().join("etcd.log"), 16 << 20)
            .unwrap_or_default()
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Two distinct ports that were free a moment ago.
pub fn free_ports() -> [u16; 2] {
    let a = TcpListener::bind("127.0.0.1:0").expect("bind a free loopback port");
    let b = TcpListener::bind("127.0.0.1:0").expect("bind a free loopback port");
    let port = |l: &TcpListener| l.local_addr().expect("a bound address").port();
    [port(&a), port(&b)]
}
