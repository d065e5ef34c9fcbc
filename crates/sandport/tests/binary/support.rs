//! Helpers: a controllable HTTP target, temp dirs, and a running service.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const SANDPORT: &str = env!("CARGO_BIN_EXE_sandport");

/// A loopback HTTP target whose answer (status, delay) can be changed.
#[derive(Clone)]
pub struct Target {
    pub port: u16,
    status: Arc<AtomicU16>,
    delay_ms: Arc<AtomicU64>,
}

impl Target {
    pub fn start(status: u16) -> Target {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let target = Target {
            port,
            status: Arc::new(AtomicU16::new(status)),
            delay_ms: Arc::new(AtomicU64::new(0)),
        };
        let shared = target.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let shared = shared.clone();
                std::thread::spawn(move || {
                    let mut buf = [0u8; 4096];
                    let _ = stream.read(&mut buf);
                    let delay = shared.delay_ms.load(Ordering::SeqCst);
                    if delay > 0 {
                        std::thread::sleep(Duration::from_millis(delay));
                    }
                    let status = shared.status.load(Ordering::SeqCst);
                    let body = "ok";
                    let _ = write!(
                        stream,
                        "HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                });
            }
        });
        target
    }

    pub fn set_status(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }

    pub fn set_delay(&self, delay: Duration) {
        self.delay_ms
            .store(delay.as_millis() as u64, Ordering::SeqCst);
    }
}

/// A loopback port with nothing listening on it, held for the rest of the
/// test process: bound but never listening, so connections are refused,
/// and no server a parallel test starts can be given the same number.
pub fn closed_port() -> u16 {
    static HELD: Mutex<Vec<tokio::net::TcpSocket>> = Mutex::new(Vec::new());
    let socket = tokio::net::TcpSocket::new_v4().expect("a TCP socket");
    socket
        .bind((std::net::Ipv4Addr::LOCALHOST, 0).into())
        .expect("bind");
    let port = socket.local_addr().expect("addr").port();
    HELD.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(socket);
    port
}

/// A connector crate's component as the build scripts left it.
pub fn guest_wasm(crate_name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    target.join(format!("guests/wasm32-wasip2/guest/{crate_name}.wasm"))
}

/// A fresh directory under the system temp dir.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sandport-bin-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write file");
    path
}

/// `sandport serve` on ephemeral ports, killed when dropped.
pub struct Server {
    child: Child,
    pub grpc: String,
    pub http: String,
    /// `http://ADDR` of `--metrics-addr`, when given.
    pub metrics: Option<String>,
    pub log: Arc<Mutex<Vec<String>>>,
}

impl Server {
    pub fn start(config: &Path, data_dir: &Path) -> Server {
        Self::start_with(config, data_dir, &[])
    }

    pub fn start_with(config: &Path, data_dir: &Path, extra: &[&str]) -> Server {
        Self::start_env(config, data_dir, extra, &[])
    }

    pub fn start_env(
        config: &Path,
        data_dir: &Path,
        extra: &[&str],
        env: &[(&str, &Path)],
    ) -> Server {
        let mut child = Command::new(SANDPORT)
            .args([
                "serve",
                "--grpc-addr",
                "127.0.0.1:0",
                "--http-addr",
                "127.0.0.1:0",
                "--config",
            ])
            .arg(config)
            .arg("--data-dir")
            .arg(data_dir)
            .args(extra)
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .env_remove("CONNECTORS_SERVICE_ADDR")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn sandport serve");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("sandport is listening") {
                    let _ = tx.send(line.clone());
                }
                sink.lock().expect("log").push(line);
            }
        });
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("serve did not start: {:?}", log.lock().map(|l| l.clone())));
        // The line is text (`grpc=ADDR ...`) or, with --log-format json,
        // one JSON object.
        let json: Option<serde_json::Value> = serde_json::from_str(&line).ok();
        let field = |name: &str| -> Option<String> {
            if let Some(json) = &json {
                return json[name].as_str().map(str::to_string);
            }
            let start = line.find(&format!("{name}="))? + name.len() + 1;
            Some(line[start..].split_whitespace().next()?.to_string())
        };
        let address = |name: &str| format!("http://{}", field(name).expect("an address field"));
        Server {
            grpc: address("grpc"),
            http: address("http"),
            metrics: field("metrics")
                .filter(|m| m.parse::<std::net::SocketAddr>().is_ok())
                .map(|m| format!("http://{m}")),
            child,
            log,
        }
    }

    /// SIGHUP: reload the config file.
    pub fn hangup(&self) -> std::process::ExitStatus {
        Command::new("kill")
            .args(["-HUP", &self.child.id().to_string()])
            .status()
            .expect("kill -HUP")
    }

    pub fn kill_9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then the exit status within `limit`.
    pub fn terminate(mut self, limit: Duration) -> std::process::ExitStatus {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(sent.success());
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "serve did not stop within {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A test CA, and the certificates it signs for 127.0.0.1.
pub struct TestCa {
    key: rcgen::KeyPair,
    params: rcgen::CertificateParams,
    /// The CA's certificate.
    pub pem: String,
}

impl TestCa {
    pub fn new(name: &str) -> TestCa {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, format!("{name} test CA"));
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let pem = params.self_signed(&key).expect("ca").pem();
        TestCa { key, params, pem }
    }

    /// (certificate PEM, key PEM) for 127.0.0.1, with common name `cn` (if
    /// any), for `usages`.
    pub fn leaf(
        &self,
        cn: Option<&str>,
        usages: &[rcgen::ExtendedKeyUsagePurpose],
    ) -> (String, String) {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params =
            rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).expect("params");
        if let Some(cn) = cn {
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, cn);
        }
        params.extended_key_usages = usages.to_vec();
        let issuer = rcgen::Issuer::from_params(&self.params, &self.key);
        let cert = params.signed_by(&key, &issuer).expect("sign");
        (cert.pem(), key.serialize_pem())
    }
}
