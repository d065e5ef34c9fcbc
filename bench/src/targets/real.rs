//! Real servers for the built-ins whose health exchange is too big to
//! imitate (PostgreSQL, MySQL, AMQP): Debian's packages
//! (`scripts/install-test-deps.sh` installs them), each on a free loopback
//! port, in a child process group of its own, stopped when dropped.
//!
//! Each allows more connections than the runtime checks at once (1,024
//! permits), so that a `check_all` of 10,000 connectors is answered, not
//! refused for want of a slot:
//!
//! - PostgreSQL: started here (the tests' launcher takes no settings) with
//!   `max_connections` 1,200, scram-sha-256 for TCP logins (the connector
//!   stops at the authentication request, as it does against a server that
//!   wants a password);
//! - MariaDB: the tests' launcher, then `SET GLOBAL max_connections`;
//! - RabbitMQ: the tests' launcher (no connection limit).

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use sandport_tests::servers::{Kind, RealServer};

use super::table::Serves;

/// Connection slots of the real servers: above the runtime's 1,024
/// concurrent checks.
pub const MAX_CONNECTIONS: u32 = 1_200;

pub enum Real {
    Postgres(Postgres),
    Test(Box<RealServer>),
}

impl Real {
    pub fn port(&self) -> u16 {
        match self {
            Real::Postgres(p) => p.port,
            Real::Test(s) => s.port(),
        }
    }
}

/// Starts the real server `serves` names; returns it and what it is.
pub fn start(serves: Serves) -> anyhow::Result<(Real, String)> {
    match serves {
        Serves::Postgres => {
            let server = Postgres::start()?;
            let about = format!(
                "PostgreSQL {} (Debian's package) on 127.0.0.1, max_connections {MAX_CONNECTIONS}, scram-sha-256 for TCP logins",
                server.version
            );
            Ok((Real::Postgres(server), about))
        }
        Serves::MariaDb => {
            let server = test_server(Kind::MariaDb)?;
            let socket = server.dir().join("mysqld.sock");
            let output = Command::new("/usr/bin/mariadb")
                .arg(format!("--socket={}", socket.display()))
                .args(["--user=root", "--batch", "--skip-column-names", "-e"])
                .arg(format!(
                    "SET GLOBAL max_connections = {MAX_CONNECTIONS}; SELECT VERSION()"
                ))
                .output()
                .context("run the mariadb client (Debian package mariadb-client)")?;
            ensure!(
                output.status.success(),
                "SET GLOBAL max_connections on MariaDB failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            );
            let version = String::from_utf8_lossy(&output.stdout).trim().to_string();
            let about = format!(
                "MariaDB {version} (Debian's package) on 127.0.0.1, max_connections {MAX_CONNECTIONS}, user root without a password"
            );
            Ok((Real::Test(Box::new(server)), about))
        }
        Serves::RabbitMq => {
            let server = test_server(Kind::RabbitMq)?;
            Ok((
                Real::Test(Box::new(server)),
                "RabbitMQ (Debian's package) on 127.0.0.1, no plugins, guest/guest".to_string(),
            ))
        }
        other => bail!("{other:?} is answered by the bench's own targets, not a real server"),
    }
}

/// The tests' launcher, whose failures are panics with the server's log.
fn test_server(kind: Kind) -> anyhow::Result<RealServer> {
    std::panic::catch_unwind(|| RealServer::start(kind)).map_err(|panic| {
        let why = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        anyhow::anyhow!("{} did not start: {why}", kind.name())
    })
}

pub struct Postgres {
    child: Child,
    dir: PathBuf,
    port: u16,
    version: String,
}

impl Postgres {
    fn start() -> anyhow::Result<Postgres> {
        let bin = postgres_bin()?;
        let version = bin
            .parent()
            .and_then(Path::file_name)
            .map(|v| v.to_string_lossy().into_owned())
            .unwrap_or_default();
        let dir = std::env::temp_dir().join(format!("sandport-bench-pg-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
        // postgres refuses to run as root: then it runs as 'postgres'.
        let root = fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
        let owner = if root {
            let owner = system_user("postgres")
                .context("there is no 'postgres' user (install the Debian package postgresql)")?;
            std::os::unix::fs::chown(&dir, Some(owner.0), Some(owner.1))
                .with_context(|| format!("chown {}", dir.display()))?;
            Some(owner)
        } else {
            None
        };
        let as_owner = |program: &Path| match owner {
            Some((uid, gid)) => {
                let mut command = Command::new(program);
                command.uid(uid).gid(gid).env_clear();
                command
            }
            None => Command::new(program),
        };
        let pwfile = dir.join("pwfile");
        fs::write(&pwfile, "bench-password\n").context("write the password file")?;
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(&pwfile, Some(uid), Some(gid)).context("chown pwfile")?;
        }
        let initdb = as_owner(&bin.join("initdb"))
            .arg("-D")
            .arg(dir.join("data"))
            .args([
                "-U",
                "postgres",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
            ])
            .args(["--auth-local=trust", "--auth-host=scram-sha-256"])
            .arg(format!("--pwfile={}", pwfile.display()))
            .output()
            .context("run initdb")?;
        ensure!(
            initdb.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&initdb.stderr).trim()
        );
        let port = free_port()?;
        let log = dir.join("postgres.log");
        let log_file = fs::File::create(&log).context("create postgres.log")?;
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(&log, Some(uid), Some(gid)).context("chown postgres.log")?;
        }
        let child = as_owner(&bin.join("postgres"))
            .arg("-D")
            .arg(dir.join("data"))
            .args(["-p", &port.to_string(), "-k"])
            .arg(&dir)
            .args(["-c", "listen_addresses=127.0.0.1"])
            .args(["-c", &format!("max_connections={MAX_CONNECTIONS}")])
            .args(["-c", "fsync=off", "-c", "synchronous_commit=off"])
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().context("dup postgres.log")?)
            .stderr(log_file)
            .process_group(0)
            .spawn()
            .context("start postgres")?;
        let server = Postgres {
            child,
            dir,
            port,
            version,
        };
        let started = Instant::now();
        loop {
            let text = fs::read_to_string(&log).unwrap_or_default();
            if text.contains("ready to accept connections") {
                return Ok(server);
            }
            if started.elapsed() > Duration::from_secs(60) {
                bail!("PostgreSQL was not ready within 60 s; its log:\n{text}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // SIGINT: the fast shutdown, every backend with it.
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// /usr/lib/postgresql/<newest version>/bin.
fn postgres_bin() -> anyhow::Result<PathBuf> {
    fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version: u32 = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("postgres").exists().then_some((version, bin))
        })
        .max_by_key(|(version, _)| *version)
        .map(|(_, bin)| bin)
        .context("/usr/lib/postgresql/*/bin/postgres is missing: install the Debian package postgresql (scripts/install-test-deps.sh)")
}

/// uid and gid of a user from /etc/passwd.
fn system_user(name: &str) -> Option<(u32, u32)> {
    let passwd = fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        if fields.len() > 3 && fields[0] == name {
            Some((fields[2].parse().ok()?, fields[3].parse().ok()?))
        } else {
            None
        }
    })
}

fn free_port() -> anyhow::Result<u16> {
    let listener =
        std::net::TcpListener::bind("127.0.0.1:0").context("find a free loopback port")?;
    Ok(listener.local_addr().context("local address")?.port())
}
