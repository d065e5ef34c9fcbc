//! Targets for the checks: a handful of loopback servers on their own
//! ports that answer at once, or one real server.
//!
//! - HTTP: every built-in's health request answered as the service would
//!   ([`table::ANSWERS`]);
//! - the small TCP exchanges (RESP, NATS, MQTT) answered by
//!   [`protocols`];
//! - PostgreSQL, MariaDB and RabbitMQ: the real servers ([`real`]).
//!
//! The bench's own servers run in a child process (this binary's hidden
//! `targets` command), not in the process under measurement, so that the
//! service's RSS and CPU figures hold only the service, and so that 10,000
//! pooled connections do not count twice against one process's open-files
//! limit. The real servers are child processes too.

mod protocols;
mod real;
pub mod table;

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};

use anyhow::{Context, bail};

use table::Serves;

/// The servers in this process: binds `count` loopback ports, prints
/// `ports P1,P2,...` and serves `serves` until stdin is closed (the parent
/// exited).
pub async fn serve(count: usize, serves: Serves) -> anyhow::Result<()> {
    anyhow::ensure!(
        serves.is_loopback_fake(),
        "{serves:?} is a real server; the targets process answers HTTP, RESP, NATS and MQTT"
    );
    let mut ports = Vec::new();
    for _ in 0..count {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("bind a loopback port")?;
        ports.push(listener.local_addr().context("local address")?.port());
        if serves == Serves::Http {
            tokio::spawn(async move {
                if let Err(e) = axum::serve(listener, table::router()).await {
                    eprintln!("target server failed: {e}");
                }
            });
        } else {
            tokio::spawn(accept(listener, serves));
        }
    }
    let list: Vec<String> = ports.iter().map(u16::to_string).collect();
    println!("ports {}", list.join(","));
    // Serve until the parent goes away.
    tokio::task::spawn_blocking(|| {
        let mut sink = Vec::new();
        let _ = std::io::stdin().read_to_end(&mut sink);
    })
    .await
    .context("wait for stdin to close")?;
    Ok(())
}

/// Answers each connection of `listener` with the exchange of `serves`.
async fn accept(listener: tokio::net::TcpListener, serves: Serves) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                eprintln!("target server: accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        tokio::spawn(async move {
            let _ = match serves {
                Serves::Redis => protocols::redis(stream).await,
                Serves::Nats => protocols::nats(stream).await,
                Serves::Mqtt => protocols::mqtt(stream).await,
                _ => Ok(()),
            };
        });
    }
}

/// The target servers' child process (or the real server); stopped when
/// dropped.
pub struct Targets {
    pub ports: Vec<u16>,
    /// `None` for servers someone else runs ([`Targets::external`]).
    child: Option<Child>,
    /// The real server, for the built-ins that talk to one.
    real: Option<real::Real>,
    /// What the targets are, for the method line.
    pub about: String,
}

impl Targets {
    /// Starts `count` HTTP target servers in a child process.
    pub fn spawn(count: usize) -> anyhow::Result<Targets> {
        Targets::spawn_serving(count, Serves::Http)
    }

    /// The targets of built-in `builtin`: `count` servers of the bench's
    /// own, or one real server.
    pub fn for_builtin(builtin: &table::Builtin, count: usize) -> anyhow::Result<Targets> {
        if builtin.serves.is_loopback_fake() {
            return Targets::spawn_serving(count, builtin.serves);
        }
        let (server, about) = real::start(builtin.serves)?;
        Ok(Targets {
            ports: vec![server.port()],
            child: None,
            real: Some(server),
            about,
        })
    }

    /// Starts `count` target servers of `serves` in a child process.
    fn spawn_serving(count: usize, serves: Serves) -> anyhow::Result<Targets> {
        let exe = std::env::current_exe().context("the bench's own path")?;
        let protocol = match serves {
            Serves::Http => "http",
            Serves::Redis => "redis",
            Serves::Nats => "nats",
            Serves::Mqtt => "mqtt",
            other => bail!("{other:?} is a real server, not the bench's own"),
        };
        let mut child = Command::new(exe)
            .args(["targets", "--servers", &count.to_string()])
            .args(["--serves", protocol])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("start the target servers")?;
        let stdout = child.stdout.take().context("the targets' stdout")?;
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .context("read the targets' ports")?;
        let Some(list) = line.trim().strip_prefix("ports ") else {
            let _ = child.kill();
            bail!("the target servers did not start: {line:?}");
        };
        let ports = list
            .split(',')
            .map(|p| p.parse::<u16>().context("a target port"))
            .collect::<anyhow::Result<Vec<u16>>>()?;
        Ok(Targets {
            ports,
            child: Some(child),
            real: None,
            about: format!("{count} {} (child process)", serves.about()),
        })
    }

    /// Servers on these loopback ports that someone else runs (e.g. an
    /// nginx, to compare with a user's set-up).
    pub fn external(ports: Vec<u16>) -> Targets {
        Targets {
            about: format!("{} servers someone else runs", ports.len()),
            ports,
            child: None,
            real: None,
        }
    }

    /// The process id of the servers' process (0 for external servers).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// The URL of target `i` (round-robin over the servers).
    pub fn url(&self, i: usize, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port(i))
    }

    pub fn port(&self, i: usize) -> u16 {
        self.ports[i % self.ports.len()]
    }
}

impl Drop for Targets {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.real = None;
    }
}
