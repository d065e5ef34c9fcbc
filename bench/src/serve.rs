//! `sandport serve` as a child process, for the parts that measure the
//! service as an operator runs it: the release binary, a config file, its
//! own data and cache directories, gRPC and REST on free loopback ports.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use sandport_server::grpc::pb;
use sandport_server::grpc::pb::connectors_service_client::ConnectorsServiceClient;
use tonic::transport::{Channel, Endpoint};

use crate::targets::Targets;

/// The release `sandport` binary: `--sandport`, else beside this binary
/// (`target/release/`).
pub fn binary(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    let path = match given {
        Some(path) => path.to_path_buf(),
        None => std::env::current_exe()
            .context("the bench's own path")?
            .with_file_name("sandport"),
    };
    if !path.is_file() {
        bail!(
            "{} is missing: build it first with `cargo build --release -p sandport` (or pass --sandport PATH)",
            path.display()
        );
    }
    if let Ok(modified) = path.metadata().and_then(|m| m.modified())
        && let Ok(age) = modified.elapsed()
    {
        println!(
            "sandport binary: {} (built {} min ago)",
            path.display(),
            age.as_secs() / 60
        );
    }
    Ok(path)
}

/// A directory under the system's temp dir, removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(what: &str) -> anyhow::Result<TempDir> {
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "sandport-bench-{}-{}-{what}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).with_context(|| format!("create {}", path.display()))?;
        Ok(TempDir(path))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("bind a loopback port")?;
    Ok(listener.local_addr().context("local address")?.port())
}

/// Writes a `connectors.yaml` of `count` entries (ids `c00000`..), cycling
/// through `components`, each pointed at a target server.
/// `health_check`, if given, is every entry's `health_check` map, inside
/// its braces (e.g. `interval: 1s, timeout: 1s`).
pub fn write_config(
    dir: &Path,
    count: usize,
    components: &[&str],
    targets: &Targets,
    health_check: Option<&str>,
) -> anyhow::Result<PathBuf> {
    let mut yaml = String::from("connectors:\n");
    let health = health_check
        .map(|keys| format!(", health_check: {{{keys}}}"))
        .unwrap_or_default();
    for i in 0..count {
        let component = components[i % components.len()];
        yaml.push_str(&format!(
            "  - {{id: c{i:05}, name: bench {i}, component: {component}, host: 127.0.0.1, port: {}{health}}}\n",
            targets.port(i)
        ));
    }
    let path = dir.join("connectors.yaml");
    std::fs::write(&path, yaml).with_context(|| format!("write {}", path.display()))?;
    Ok(path)
}

/// A running `sandport serve`; [`Serve::stop`] stops it, and dropping it
/// kills it.
pub struct Serve {
    child: Child,
    pub grpc: String,
    log: PathBuf,
    _data: TempDir,
}

impl Serve {
    /// Starts the service on `config` with `cache_dir` as its compiled-
    /// component cache (`SANDPORT_CACHE_DIR`).
    pub fn spawn(binary: &Path, config: &Path, cache_dir: &Path) -> anyhow::Result<Serve> {
        let data = TempDir::new("data")?;
        let grpc_port = free_port()?;
        let http_port = free_port()?;
        let log = data.path().join("serve.log");
        let out = std::fs::File::create(&log).context("create the serve log")?;
        let err = out.try_clone().context("dup the serve log")?;
        let child = Command::new(binary)
            .arg("--config")
            .arg(config)
            .arg("--data-dir")
            .arg(data.path())
            .arg("serve")
            .arg("--grpc-addr")
            .arg(format!("127.0.0.1:{grpc_port}"))
            .arg("--http-addr")
            .arg(format!("127.0.0.1:{http_port}"))
            .env("SANDPORT_CACHE_DIR", cache_dir)
            .env_remove("RUST_LOG")
            .env_remove("CONNECTORS_SERVICE_ADDR")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .with_context(|| format!("run {}", binary.display()))?;
        Ok(Serve {
            child,
            grpc: format!("http://127.0.0.1:{grpc_port}"),
            log,
            _data: data,
        })
    }

    /// Stops sandport as an operator would, with SIGTERM, and waits for it
    /// to drain and exit (a build instrumented for profile-guided
    /// optimisation writes its profile then); SIGKILL if it has not exited
    /// within 15 s. It takes this process's gRPC `clients` and drops them
    /// first: sandport drains its connections before it exits, and a
    /// connection closed by its client needs no GOAWAY round.
    pub async fn stop(mut self, clients: Vec<ConnectorsServiceClient<Channel>>) {
        drop(clients);
        if let Ok(pid) = libc::pid_t::try_from(self.child.id()) {
            // SAFETY: kill(2) takes no pointers; the child has not been
            // waited for, so the pid is still ours.
            unsafe { libc::kill(pid, libc::SIGTERM) };
            let since = Instant::now();
            while since.elapsed() < Duration::from_secs(15) {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            println!("sandport did not stop within 15 s of SIGTERM; killed it");
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The end of the service's log, for error messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// A gRPC client on a new connection.
    pub async fn client(&self) -> anyhow::Result<ConnectorsServiceClient<Channel>> {
        let channel = Endpoint::from_shared(self.grpc.clone())
            .context("the gRPC endpoint")?
            .connect_timeout(Duration::from_millis(200))
            .tcp_nodelay(true)
            .connect()
            .await
            .context("connect to the gRPC API")?;
        Ok(ConnectorsServiceClient::new(channel))
    }

    /// Polls `ListConnectors` until it lists `count` connectors; returns the
    /// time since `since`.
    pub async fn wait_listed(
        &mut self,
        count: usize,
        since: Instant,
        timeout: Duration,
    ) -> anyhow::Result<Duration> {
        loop {
            if let Some(status) = self.child.try_wait().context("wait for sandport")? {
                bail!("sandport serve exited ({status}):\n{}", self.log_tail());
            }
            // What this attempt saw, for the message if the wait runs out.
            let last = match self.client().await {
                Err(e) => format!("cannot connect: {e:#}"),
                Ok(mut client) => {
                    // One slow answer must not use up the whole wait.
                    let call = client.list_connectors(pb::ListConnectorsRequest::default());
                    match tokio::time::timeout(Duration::from_secs(20), call).await {
                        Err(_) => "ListConnectors did not answer within 20s".to_string(),
                        Ok(Err(status)) => format!("ListConnectors failed: {status}"),
                        Ok(Ok(list)) if list.get_ref().connectors.len() >= count => {
                            return Ok(since.elapsed());
                        }
                        Ok(Ok(list)) => format!("{} listed", list.get_ref().connectors.len()),
                    }
                }
            };
            if since.elapsed() > timeout {
                bail!(
                    "sandport did not list {count} connectors within {timeout:?} (last attempt: {last}):\n{}",
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
}

impl Drop for Serve {
    /// For the paths that end early (an error): no time to drain.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
