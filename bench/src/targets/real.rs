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
//! - MariaDB: started here too, with `max_connections` and `back_log` 1,200
//!   (the default backlog, sized from 151 connections, drops some of 1,000
//!   connections opened at once, whose checks then time out);
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
    Own(Daemon),
    Test(Box<RealServer>),
}

impl Real {
    pub fn port(&self) -> u16 {
        match self {
            Real::Own(d) => d.port,
            Real::Test(s) => s.port(),
        }
    }
}

/// Starts the real server `serves` names; returns it and what it is.
pub fn start(serves: Serves) -> anyhow::Result<(Real, String)> {
    match serves {
        Serves::Postgres => {
            let server = postgres()?;
            let about = format!(
                "PostgreSQL {} (Debian's package) on 127.0.0.1, max_connections {MAX_CONNECTIONS}, scram-sha-256 for TCP logins",
                server.version
            );
            Ok((Real::Own(server), about))
        }
        Serves::MariaDb => {
            let server = mariadb()?;
            let about = format!(
                "MariaDB {} (Debian's package) on 127.0.0.1, max_connections and back_log {MAX_CONNECTIONS}, user root without a password",
                server.version
            );
            Ok((Real::Own(server), about))
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

/// A server started here, in its own directory and process group.
pub struct Daemon {
    child: Child,
    dir: PathBuf,
    port: u16,
    version: String,
    /// The signal of a clean, fast stop.
    stop: &'static str,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args([&format!("-{}", self.stop), &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// A fresh directory of the bench's own for `what`.
fn fresh_dir(what: &str) -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("sandport-bench-{what}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    Ok(dir)
}

/// Runs a setup program to its end; its error output on failure.
fn setup(mut command: Command, what: &str) -> anyhow::Result<()> {
    let output = command.output().with_context(|| format!("run {what}"))?;
    ensure!(
        output.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&output.stderr).trim()
    );
    Ok(())
}

/// Starts `command` (listening on `port`) logging to `log` (owned by
/// `owner`), then waits for `ready` in the log.
fn spawn_daemon(
    mut command: Command,
    dir: PathBuf,
    port: u16,
    log: &Path,
    owner: Option<(u32, u32)>,
    ready: &str,
    stop: &'static str,
) -> anyhow::Result<Daemon> {
    let log_file = fs::File::create(log).with_context(|| format!("create {}", log.display()))?;
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::chown(log, Some(uid), Some(gid))
            .with_context(|| format!("chown {}", log.display()))?;
    }
    let program = command.get_program().to_string_lossy().into_owned();
    let child = command
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().context("dup the log")?)
        .stderr(log_file)
        .process_group(0)
        .spawn()
        .with_context(|| format!("start {program}"))?;
    let mut daemon = Daemon {
        child,
        dir,
        port,
        version: String::new(),
        stop,
    };
    let started = Instant::now();
    loop {
        let text = fs::read_to_string(log).unwrap_or_default();
        if text.contains(ready) {
            return Ok(daemon);
        }
        if let Ok(Some(status)) = daemon.child.try_wait() {
            bail!("{program} exited ({status}); its log:\n{text}");
        }
        if started.elapsed() > Duration::from_secs(60) {
            bail!("{program} was not ready within 60 s; its log:\n{text}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn postgres() -> anyhow::Result<Daemon> {
    let bin = postgres_bin()?;
    let version = bin
        .parent()
        .and_then(Path::file_name)
        .map(|v| v.to_string_lossy().into_owned())
        .unwrap_or_default();
    let dir = fresh_dir("postgres")?;
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
    let as_owner = |program: &Path| {
        let mut command = Command::new(program);
        if let Some((uid, gid)) = owner {
            command.uid(uid).gid(gid).env_clear();
        }
        command
    };
    let pwfile = dir.join("pwfile");
    fs::write(&pwfile, "bench-password\n").context("write the password file")?;
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::chown(&pwfile, Some(uid), Some(gid)).context("chown pwfile")?;
    }
    let mut initdb = as_owner(&bin.join("initdb"));
    initdb
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
        .arg(format!("--pwfile={}", pwfile.display()));
    setup(initdb, "initdb")?;
    let port = free_port()?;
    let mut command = as_owner(&bin.join("postgres"));
    command
        .arg("-D")
        .arg(dir.join("data"))
        .args(["-p", &port.to_string(), "-k"])
        .arg(&dir)
        .args(["-c", "listen_addresses=127.0.0.1"])
        .args(["-c", &format!("max_connections={MAX_CONNECTIONS}")])
        .args(["-c", "fsync=off", "-c", "synchronous_commit=off"]);
    let log = dir.join("postgres.log");
    // SIGINT: the fast shutdown, every backend with it.
    let mut daemon = spawn_daemon(
        command,
        dir,
        port,
        &log,
        owner,
        "ready to accept connections",
        "INT",
    )?;
    daemon.version = version;
    Ok(daemon)
}

fn mariadb() -> anyhow::Result<Daemon> {
    let program = "/usr/sbin/mariadbd";
    ensure!(
        Path::new(program).exists(),
        "{program} is missing: install the Debian package mariadb-server (scripts/install-test-deps.sh)"
    );
    let dir = fresh_dir("mariadb")?;
    let data = dir.join("data");
    fs::create_dir(dir.join("tmp")).context("create mariadb's tmp")?;
    let root = fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
    let as_root = if root {
        vec!["--user=root"]
    } else {
        Vec::new()
    };
    let innodb = ["--innodb-log-file-size=8M", "--innodb-buffer-pool-size=32M"];
    let mut install = Command::new("/usr/bin/mariadb-install-db");
    install
        .arg("--no-defaults")
        .arg(format!("--datadir={}", data.display()))
        .args(&as_root)
        .args(["--auth-root-authentication-method=normal", "--skip-test-db"])
        .arg("--skip-name-resolve")
        .args(innodb);
    setup(install, "mariadb-install-db")?;
    // With --skip-name-resolve, root@localhost is the unix socket only.
    let init = dir.join("init.sql");
    fs::write(
        &init,
        "CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY '';\n\
         GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;\n",
    )
    .context("write init.sql")?;
    let port = free_port()?;
    let mut command = Command::new(program);
    // --no-defaults must come first (else /etc/mysql/my.cnf is read).
    command
        .arg("--no-defaults")
        .args(&as_root)
        .arg(format!("--datadir={}", data.display()))
        .arg("--bind-address=127.0.0.1")
        .arg(format!("--port={port}"))
        .arg(format!("--socket={}", dir.join("mysqld.sock").display()))
        .arg(format!("--pid-file={}", dir.join("mysqld.pid").display()))
        .arg(format!("--tmpdir={}", dir.join("tmp").display()))
        .args(["--skip-name-resolve", "--skip-log-bin"])
        .args(innodb)
        .arg("--innodb-flush-log-at-trx-commit=0")
        .arg(format!("--max-connections={MAX_CONNECTIONS}"))
        .arg(format!("--back-log={MAX_CONNECTIONS}"))
        .arg(format!("--init-file={}", init.display()));
    let log = dir.join("mariadbd.log");
    let mut daemon = spawn_daemon(
        command,
        dir,
        port,
        &log,
        None,
        "ready for connections",
        "TERM",
    )?;
    // "Version: '10.11.6-MariaDB-0+deb12u1'  socket: ..."
    let text = fs::read_to_string(&log).unwrap_or_default();
    daemon.version = text
        .split_once("Version: '")
        .and_then(|(_, rest)| rest.split_once('\''))
        .map(|(version, _)| version.to_string())
        .unwrap_or_default();
    Ok(daemon)
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
