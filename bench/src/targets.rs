//! Loopback HTTP targets for the checks: a handful of servers on their own
//! ports that answer every path with `200 Healthy.` at once.
//!
//! They run in a child process (this binary's hidden `targets` command), not
//! in the process under measurement, so that the service's RSS and CPU
//! figures hold only the service, and so that 10,000 pooled connections do
//! not count twice against one process's open-files limit.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};

use anyhow::{Context, bail};

/// The servers in this process: binds `count` loopback ports, prints
/// `ports P1,P2,...` and serves until stdin is closed (the parent exited).
pub async fn serve(count: usize) -> anyhow::Result<()> {
    let mut ports = Vec::new();
    for _ in 0..count {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("bind a loopback port")?;
        ports.push(listener.local_addr().context("local address")?.port());
        let app = axum::Router::new().fallback(|| async { "Healthy.\n" });
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                eprintln!("target server failed: {e}");
            }
        });
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

/// The target servers' child process; killed when dropped.
pub struct Targets {
    pub ports: Vec<u16>,
    /// `None` for servers someone else runs ([`Targets::external`]).
    child: Option<Child>,
}

impl Targets {
    /// Starts `count` target servers in a child process.
    pub fn spawn(count: usize) -> anyhow::Result<Targets> {
        let exe = std::env::current_exe().context("the bench's own path")?;
        let mut child = Command::new(exe)
            .args(["targets", "--servers", &count.to_string()])
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
        })
    }

    /// Servers on these loopback ports that someone else runs (e.g. an
    /// nginx, to compare with a user's set-up).
    pub fn external(ports: Vec<u16>) -> Targets {
        Targets { ports, child: None }
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
    }
}
