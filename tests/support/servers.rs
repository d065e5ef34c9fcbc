//! Real servers for the catalogue tests: the programs from Debian's packages
//! (and moto from PyPI), each started on free 127.0.0.1 ports in a fresh
//! temporary directory of its own, and stopped again.
//!
//! `scripts/install-test-deps.sh` installs every program used here. A missing
//! program makes [`RealServer::start`] panic with the package to install.
//!
//! Every server runs in a process group of its own, writes its logs into its
//! directory (see [`RealServer::log`]) and is stopped, its whole process group
//! with it, when the [`RealServer`] is dropped. Servers left behind by a test
//! process that was killed are reaped by the next test process that starts a
//! server.
//!
//! What each kind offers (`user`/`password` come from [`Options`]):
//!
//! | kind | protocol on `port()` | credentials |
//! | --- | --- | --- |
//! | Prometheus, Alertmanager, BlackboxExporter | HTTP (`/-/healthy`, `/-/ready`) | none |
//! | Redis | RESP | `requirepass password`; a `user` other than `default` is also an ACL user with that password |
//! | Postgres | PostgreSQL wire protocol; unix socket in `dir()` | superuser `user` (default `postgres`); trust, or SCRAM-SHA-256 over TCP when a password is set |
//! | MariaDb | MySQL protocol; socket `dir()/mysqld.sock` | `user` (default `root`) `@'127.0.0.1'` with `password` (default empty), all privileges |
//! | Nats | NATS (JetStream on) | `--user`/`--pass` when a password is set (user default `sandport`) |
//! | Mosquitto | MQTT 3.1.1/5 | anonymous, or only `user` (default `sandport`) with `password` |
//! | RabbitMq | AMQP 0-9-1, no plugins | `guest`/`guest`, or `user` (default `guest`) with `password` |
//! | Moto | S3 and IAM over HTTP, region `us-east-1`, SigV4 enforced | see [`RealServer::moto_setup`] |
//!
//! Environment: `SANDPORT_MOTO_SERVER` (path of `moto_server`),
//! `SANDPORT_PG_BIN` (PostgreSQL's bin directory), `SANDPORT_SERVER_TIMINGS`
//! (print start times), `SANDPORT_KEEP_SERVER_DIRS` (keep the directories).

use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Once, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A server program that the tests can start.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    Prometheus,
    Alertmanager,
    BlackboxExporter,
    Redis,
    Postgres,
    MariaDb,
    Nats,
    Mosquitto,
    RabbitMq,
    Moto,
}

const ALL_KINDS: [Kind; 10] = [
    Kind::Prometheus,
    Kind::Alertmanager,
    Kind::BlackboxExporter,
    Kind::Redis,
    Kind::Postgres,
    Kind::MariaDb,
    Kind::Nats,
    Kind::Mosquitto,
    Kind::RabbitMq,
    Kind::Moto,
];

/// Credentials for the kinds that have them; ignored by the others.
#[derive(Default, Clone, Debug)]
pub struct Options {
    pub user: Option<String>,
    pub password: Option<String>,
}

/// A running server. Stopped, and its directory removed, when dropped
/// (set `SANDPORT_KEEP_SERVER_DIRS=1` to keep the directories).
pub struct RealServer {
    kind: Kind,
    port: u16,
    /// Ports the server uses besides `port` (rabbitmq: distribution, epmd).
    extra_ports: Vec<u16>,
    dir: PathBuf,
    /// The server itself, leader of its process group.
    child: Option<Child>,
    /// Helpers started before the server (rabbitmq's epmd), stopped after it.
    helpers: Vec<Child>,
    /// Log files, setup ones first.
    logs: Vec<PathBuf>,
    user: Option<String>,
    /// Moto: the IAM user's access key id and secret.
    moto_keys: Option<(String, String)>,
    stopped: bool,
    /// `port`, bound without listening once the server is stopped.
    held_port: Option<tokio::net::TcpSocket>,
}

impl Kind {
    /// A short lower-case name, used in directory names and messages.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Prometheus => "prometheus",
            Kind::Alertmanager => "alertmanager",
            Kind::BlackboxExporter => "blackbox",
            Kind::Redis => "redis",
            Kind::Postgres => "postgres",
            Kind::MariaDb => "mariadb",
            Kind::Nats => "nats",
            Kind::Mosquitto => "mosquitto",
            Kind::RabbitMq => "rabbitmq",
            Kind::Moto => "moto",
        }
    }

    /// How long the server may take to become ready.
    fn ready_timeout(self) -> Duration {
        Duration::from_secs(match self {
            Kind::RabbitMq => 60,
            Kind::Postgres | Kind::MariaDb | Kind::Moto => 30,
            _ => 20,
        })
    }

    /// The signal that stops the server cleanly and quickly.
    fn stop_signal(self) -> &'static str {
        match self {
            // postgres: SIGINT is "fast" shutdown, SIGTERM ("smart") waits for
            // every client to disconnect; nats-server: SIGINT is a clean stop
            // (SIGTERM is too, but SIGINT is what its docs use).
            Kind::Postgres | Kind::Nats => "INT",
            _ => "TERM",
        }
    }

    fn stop_timeout(self) -> Duration {
        Duration::from_secs(match self {
            Kind::RabbitMq | Kind::MariaDb => 30,
            _ => 10,
        })
    }
}

/// Why a start attempt failed.
struct StartError {
    message: String,
}

impl<T: Into<String>> From<T> for StartError {
    fn from(message: T) -> Self {
        StartError {
            message: message.into(),
        }
    }
}

impl RealServer {
    /// Starts `kind` on a free 127.0.0.1 port in a fresh temp dir and returns
    /// once it is ready: accepting its protocol, not just an open port.
    ///
    /// Panics with a clear message when the program is missing (naming the
    /// Debian package and `scripts/install-test-deps.sh`), or when the server
    /// does not become ready in time (with the end of its log).
    pub fn start(kind: Kind) -> RealServer {
        RealServer::start_with(kind, Options::default())
    }

    /// [`RealServer::start`] with credentials (see the module doc for what
    /// each kind makes of them).
    pub fn start_with(kind: Kind, options: Options) -> RealServer {
        reap_orphans();
        const ATTEMPTS: usize = 3;
        for attempt in 1..=ATTEMPTS {
            let mut server = RealServer::prepare(kind);
            let started = Instant::now();
            match server.launch(&options) {
                Ok(()) => {
                    if std::env::var_os("SANDPORT_SERVER_TIMINGS").is_some() {
                        eprintln!(
                            "{} ready on port {} in {} ms",
                            kind.name(),
                            server.port,
                            started.elapsed().as_millis()
                        );
                    }
                    return server;
                }
                Err(error) => {
                    server.shut_down();
                    let log = server.log();
                    let lower = log.to_ascii_lowercase();
                    let port_taken = lower.contains("address already in use")
                        || lower.contains("eaddrinuse")
                        || lower.contains("address in use");
                    if port_taken && attempt < ATTEMPTS {
                        // Another process took one of the ports between our
                        // probe and the server's bind: try other ports.
                        continue;
                    }
                    panic!(
                        "{} did not start: {}\n--- log ({}) ---\n{}",
                        kind.name(),
                        error.message,
                        server.dir.display(),
                        tail(&log, 60)
                    );
                }
            }
        }
        unreachable!("the last attempt either returns or panics")
    }

    /// The port of the server's protocol on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's own directory (config, data, logs, unix sockets).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The user that logs in (see the module doc), for the kinds that have one.
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    /// Stops the server and every process of its group (rabbitmq's beam and
    /// epmd too), and waits for them. Idempotent. After it, the port refuses
    /// connections, and stays bound without listening until the server is
    /// dropped, so a check of the stopped server is refused rather than
    /// reaching a server a parallel test was just given the same number.
    pub fn stop(&mut self) {
        if self.stopped {
            return;
        }
        self.shut_down();
        self.held_port =
            crate::bind_without_listening((std::net::Ipv4Addr::LOCALHOST, self.port).into(), true)
                .ok();
    }

    /// [`RealServer::stop`] without holding the port: for the server's drop.
    fn shut_down(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        let mut ports = vec![self.port];
        ports.extend(&self.extra_ports);
        if let Some(child) = self.child.take() {
            stop_process(child, self.kind.stop_signal(), self.kind.stop_timeout());
        }
        while let Some(helper) = self.helpers.pop() {
            stop_process(helper, "TERM", Duration::from_secs(5));
        }
        kill_processes_in(&self.dir);
        let deadline = Instant::now() + Duration::from_secs(5);
        for port in ports {
            while port_open(port) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        let _ = fs::remove_file(self.dir.join("server.pids"));
    }

    /// The server's log so far (setup logs first), for assertion messages.
    pub fn log(&self) -> String {
        let mut text = String::new();
        for path in &self.logs {
            let content = fs::read(path)
                .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
                .unwrap_or_default();
            if self.logs.len() > 1 {
                let name = path.file_name().unwrap_or_default().to_string_lossy();
                let _ = writeln!(text, "==> {name} <==");
            }
            text.push_str(&content);
        }
        text
    }

    /// Moto only: the credentials of an IAM user allowed `s3:*`, after
    /// creating `bucket` (path-style, region `us-east-1`) with them. Returns
    /// `(access_key_id, secret_access_key)`; the same pair on every call.
    ///
    /// Moto runs with authentication enforced: requests must carry a valid
    /// SigV4 signature by this key; others get 403 (unknown key
    /// `InvalidAccessKeyId`, bad signature `SignatureDoesNotMatch`).
    pub fn moto_setup(&self, bucket: &str) -> (String, String) {
        assert_eq!(self.kind, Kind::Moto, "moto_setup is for Kind::Moto only");
        let (key, secret) = self
            .moto_keys
            .clone()
            .expect("moto started without its IAM user");
        let path = format!("/{bucket}");
        let headers = sigv4("PUT", self.port, &path, "s3", &[], &key, &secret);
        let (status, body) = http_request(self.port, "PUT", &path, &headers, &[])
            .unwrap_or_else(|e| panic!("moto: PUT {path}: {e}\n{}", tail(&self.log(), 30)));
        assert!(
            status == 200 || body.contains("BucketAlreadyOwnedByYou"),
            "moto: PUT {path} answered {status}: {body}\n{}",
            tail(&self.log(), 30)
        );
        (key, secret)
    }

    /// Picks ports and makes the directory; launches nothing yet.
    fn prepare(kind: Kind) -> RealServer {
        let extra = match kind {
            Kind::RabbitMq => 2,
            _ => 0,
        };
        let ports = free_ports(1 + extra);
        RealServer {
            kind,
            port: ports[0],
            extra_ports: ports[1..].to_vec(),
            dir: make_dir(kind),
            child: None,
            helpers: Vec::new(),
            logs: Vec::new(),
            user: None,
            moto_keys: None,
            stopped: false,
            held_port: None,
        }
    }

    fn launch(&mut self, options: &Options) -> Result<(), StartError> {
        match self.kind {
            Kind::Prometheus => self.launch_prometheus(),
            Kind::Alertmanager => self.launch_alertmanager(),
            Kind::BlackboxExporter => self.launch_blackbox(),
            Kind::Redis => self.launch_redis(options),
            Kind::Postgres => self.launch_postgres(options),
            Kind::MariaDb => self.launch_mariadb(options),
            Kind::Nats => self.launch_nats(options),
            Kind::Mosquitto => self.launch_mosquitto(options),
            Kind::RabbitMq => self.launch_rabbitmq(options),
            Kind::Moto => self.launch_moto(),
        }
    }

    fn launch_prometheus(&mut self) -> Result<(), StartError> {
        let program = require("/usr/bin/prometheus", "prometheus");
        let port = self.port;
        let config = self.dir.join("prometheus.yml");
        write_file(
            &config,
            &format!(
                "global:\n  scrape_interval: 15s\nscrape_configs:\n  - job_name: self\n    \
                 static_configs:\n      - targets: [\"127.0.0.1:{port}\"]\n"
            ),
        );
        let mut command = Command::new(program);
        command
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                self.dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"));
        self.spawn_main(command, "prometheus.log")?;
        self.wait_ready(|_| http_status(port, "/-/ready") == Some(200))
    }

    fn launch_alertmanager(&mut self) -> Result<(), StartError> {
        let program = require(
            "/usr/bin/prometheus-alertmanager",
            "prometheus-alertmanager",
        );
        let port = self.port;
        let config = self.dir.join("alertmanager.yml");
        write_file(
            &config,
            "route:\n  receiver: 'null'\nreceivers:\n  - name: 'null'\n",
        );
        let mut command = Command::new(program);
        command
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.path={}",
                self.dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            // Empty: no HA gossip (else it binds *:9094, tcp and udp).
            .arg("--cluster.listen-address=");
        self.spawn_main(command, "alertmanager.log")?;
        self.wait_ready(|_| http_status(port, "/-/ready") == Some(200))
    }

    fn launch_blackbox(&mut self) -> Result<(), StartError> {
        let program = require(
            "/usr/bin/prometheus-blackbox-exporter",
            "prometheus-blackbox-exporter",
        );
        let port = self.port;
        let config = self.dir.join("blackbox.yml");
        write_file(
            &config,
            "modules:\n  http_2xx:\n    prober: http\n    timeout: 5s\n    http:\n      \
             preferred_ip_protocol: ip4\n  tcp_connect:\n    prober: tcp\n    timeout: 5s\n    \
             tcp:\n      preferred_ip_protocol: ip4\n",
        );
        let mut command = Command::new(program);
        command
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"));
        self.spawn_main(command, "blackbox.log")?;
        self.wait_ready(|_| http_status(port, "/-/healthy") == Some(200))
    }

    fn launch_redis(&mut self, options: &Options) -> Result<(), StartError> {
        let program = require("/usr/bin/redis-server", "redis-server");
        let mut command = Command::new(program);
        command
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .arg("--dir")
            .arg(&self.dir)
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .args(["--protected-mode", "yes"]);
        if let Some(password) = &options.password {
            command.args(["--requirepass", password]);
            self.user = Some("default".into());
            if let Some(user) = options.user.as_deref().filter(|u| *u != "default") {
                command.args(["--user", user, "on", &format!(">{password}")]);
                command.args(["~*", "&*", "+@all"]);
                self.user = Some(user.into());
            }
        }
        self.spawn_main(command, "redis.log")?;
        self.wait_ready(|s| s.main_log_has("Ready to accept connections"))
    }

    fn launch_postgres(&mut self, options: &Options) -> Result<(), StartError> {
        let bin = postgres_bin();
        let user = options.user.clone().unwrap_or_else(|| "postgres".into());
        self.user = Some(user.clone());
        // postgres refuses to run as root: run it as the 'postgres' user.
        let as_postgres = if effective_uid() == 0 {
            let (uid, gid) = system_user("postgres")
                .ok_or("there is no 'postgres' user (install the Debian package postgresql)")?;
            std::os::unix::fs::chown(&self.dir, Some(uid), Some(gid))
                .map_err(|e| format!("chown {}: {e}", self.dir.display()))?;
            true
        } else {
            false
        };
        fs::set_permissions(&self.dir, fs::Permissions::from_mode(0o700))
            .map_err(|e| format!("chmod {}: {e}", self.dir.display()))?;
        let command_as = |program: &Path| {
            if as_postgres {
                let mut command = Command::new(require("/usr/bin/setpriv", "util-linux"));
                command
                    .args(["--reuid=postgres", "--regid=postgres", "--init-groups"])
                    .arg("--reset-env")
                    .arg(program);
                command
            } else {
                Command::new(program)
            }
        };

        let mut initdb = command_as(&bin.join("initdb"));
        initdb.arg("-D").arg(self.dir.join("data")).args([
            "-U",
            &user,
            "--no-sync",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
        ]);
        let pwfile = self.dir.join("pwfile");
        match &options.password {
            Some(password) => {
                write_file(&pwfile, password);
                if as_postgres {
                    let (uid, gid) = system_user("postgres").ok_or("no 'postgres' user")?;
                    std::os::unix::fs::chown(&pwfile, Some(uid), Some(gid))
                        .map_err(|e| format!("chown {}: {e}", pwfile.display()))?;
                }
                initdb
                    .args(["--auth-local=trust", "--auth-host=scram-sha-256"])
                    .arg(format!("--pwfile={}", pwfile.display()));
            }
            None => {
                initdb.arg("--auth=trust");
            }
        }
        self.run_setup(initdb, "initdb.log", Duration::from_secs(60))?;
        let _ = fs::remove_file(&pwfile);

        let mut command = command_as(&bin.join("postgres"));
        command
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-p", &self.port.to_string()])
            .args(["-c", "listen_addresses=127.0.0.1", "-k"])
            .arg(&self.dir)
            .args(["-c", "fsync=off", "-c", "full_page_writes=off"])
            .args(["-c", "synchronous_commit=off"]);
        self.spawn_main(command, "postgres.log")?;
        self.wait_ready(|s| s.main_log_has("database system is ready to accept connections"))
    }

    fn launch_mariadb(&mut self, options: &Options) -> Result<(), StartError> {
        let program = require("/usr/sbin/mariadbd", "mariadb-server");
        let root = effective_uid() == 0;
        let data = self.dir.join("data");
        fs::create_dir(self.dir.join("tmp")).map_err(|e| format!("mkdir tmp: {e}"))?;
        match mariadb_template() {
            Some(template) => copy_tree(&template, &data)
                .map_err(|e| format!("copy {} to {}: {e}", template.display(), data.display()))?,
            None => {
                let install = mariadb_install_db(&data);
                self.run_setup(install, "install-db.log", Duration::from_secs(120))?;
            }
        }

        let user = options.user.clone().unwrap_or_else(|| "root".into());
        let password = options.password.clone().unwrap_or_default();
        self.user = Some(user.clone());
        let (user, password) = (sql_quote(&user), sql_quote(&password));
        let init = self.dir.join("init.sql");
        write_file(
            &init,
            &format!(
                "CREATE USER IF NOT EXISTS '{user}'@'127.0.0.1' IDENTIFIED BY '{password}';\n\
                 ALTER USER '{user}'@'127.0.0.1' IDENTIFIED BY '{password}';\n\
                 GRANT ALL PRIVILEGES ON *.* TO '{user}'@'127.0.0.1' WITH GRANT OPTION;\n"
            ),
        );
        let mut command = Command::new(program);
        // --no-defaults must come first (else /etc/mysql/my.cnf is read).
        command.arg("--no-defaults");
        if root {
            command.arg("--user=root");
        }
        command
            .arg(format!("--datadir={}", data.display()))
            .arg("--bind-address=127.0.0.1")
            .arg(format!("--port={}", self.port))
            .arg(format!(
                "--socket={}",
                self.dir.join("mysqld.sock").display()
            ))
            .arg(format!(
                "--pid-file={}",
                self.dir.join("mysqld.pid").display()
            ))
            .arg(format!("--tmpdir={}", self.dir.join("tmp").display()))
            .args(["--skip-name-resolve", "--skip-log-bin"])
            .args(MARIADB_INNODB_ARGS)
            .arg("--innodb-flush-log-at-trx-commit=0")
            .arg(format!("--init-file={}", init.display()));
        self.spawn_main(command, "mariadbd.log")?;
        self.wait_ready(|s| s.main_log_has("ready for connections"))
    }

    fn launch_nats(&mut self, options: &Options) -> Result<(), StartError> {
        let program = require("/usr/sbin/nats-server", "nats-server");
        let mut command = Command::new(program);
        command
            .args([
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-js",
                "-sd",
            ])
            .arg(self.dir.join("jetstream"))
            .arg("-P")
            .arg(self.dir.join("nats.pid"));
        if let Some(password) = &options.password {
            let user = options.user.clone().unwrap_or_else(|| "sandport".into());
            command.args(["--user", &user, "--pass", password]);
            self.user = Some(user);
        }
        self.spawn_main(command, "nats.log")?;
        self.wait_ready(|s| s.main_log_has("Server is ready"))
    }

    fn launch_mosquitto(&mut self, options: &Options) -> Result<(), StartError> {
        let program = require("/usr/sbin/mosquitto", "mosquitto");
        let dir = self.dir.display().to_string();
        let mut config = String::new();
        if effective_uid() == 0 {
            // Else, started as root, it switches to 'mosquitto' and cannot
            // write its directory.
            config.push_str("user root\n");
        }
        let _ = writeln!(config, "listener {} 127.0.0.1", self.port);
        if let Some(password) = &options.password {
            let user = options.user.clone().unwrap_or_else(|| "sandport".into());
            let passwd = self.dir.join("passwd");
            write_file(&passwd, "");
            let mut tool = Command::new(require("/usr/bin/mosquitto_passwd", "mosquitto"));
            tool.arg("-b").arg(&passwd).args([&user, password]);
            self.run_setup(tool, "mosquitto_passwd.log", Duration::from_secs(20))?;
            let _ = writeln!(config, "allow_anonymous false\npassword_file {dir}/passwd");
            self.user = Some(user);
        } else {
            // 2.x refuses anonymous clients once a listener is configured.
            config.push_str("allow_anonymous true\n");
        }
        let _ = writeln!(
            config,
            "persistence true\npersistence_location {dir}/\nlog_dest stdout\nlog_type all"
        );
        let path = self.dir.join("mosquitto.conf");
        write_file(&path, &config);
        let mut command = Command::new(program);
        command.arg("-c").arg(&path);
        self.spawn_main(command, "mosquitto.log")?;
        let port = self.port;
        self.wait_ready(|_| port_open(port))
    }

    fn launch_rabbitmq(&mut self, options: &Options) -> Result<(), StartError> {
        let program = require("/usr/lib/rabbitmq/bin/rabbitmq-server", "rabbitmq-server");
        let epmd_program = require("/usr/bin/epmd", "erlang-base (via rabbitmq-server)");
        let (port, dist, epmd) = (self.port, self.extra_ports[0], self.extra_ports[1]);

        // A private epmd on loopback that we own: if none answers on
        // ERL_EPMD_PORT, rabbit starts `epmd -daemon` itself, which outlives it.
        let mut command = Command::new(epmd_program);
        command.args(["-port", &epmd.to_string(), "-address", "127.0.0.1"]);
        let helper = self.spawn(command, "epmd.log")?;
        self.helpers.push(helper);
        self.wait_until(Duration::from_secs(10), "epmd to listen", |_| {
            port_open(epmd)
        })?;

        write_file(&self.dir.join("enabled_plugins"), "[].\n");
        let mut erl_args = String::from("-kernel inet_dist_use_interface {127,0,0,1}");
        if let Some(password) = &options.password {
            let user = options.user.clone().unwrap_or_else(|| "guest".into());
            for value in [&user, password] {
                if !value
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.@".contains(c))
                {
                    return Err(format!(
                        "rabbitmq credentials may only use letters, digits and -_.@: {value:?}"
                    )
                    .into());
                }
            }
            // Replaces guest/guest as the user created on first boot.
            let _ = write!(
                erl_args,
                " -rabbit default_user <<\"{user}\">> -rabbit default_pass <<\"{password}\">>"
            );
            self.user = Some(user);
        } else {
            self.user = Some("guest".into());
        }
        let dir = self.dir.clone();
        let in_dir = |name: &str| dir.join(name).display().to_string();
        // Everything via the environment; no rabbitmq.conf (cuttlefish's
        // translation costs about a second).
        let mut command = Command::new(program);
        command
            .env("HOME", &dir)
            .env("ERL_EPMD_PORT", epmd.to_string())
            .env("ERL_EPMD_ADDRESS", "127.0.0.1")
            .env("RABBITMQ_NODENAME", format!("rabbit_{port}@localhost"))
            .env("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1")
            .env("RABBITMQ_NODE_PORT", port.to_string())
            .env("RABBITMQ_DIST_PORT", dist.to_string())
            .env("RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS", erl_args)
            .env("RABBITMQ_CONF_ENV_FILE", in_dir("rabbitmq-env.conf"))
            .env("RABBITMQ_CONFIG_FILE", in_dir("rabbitmq.conf"))
            .env("RABBITMQ_CONFIG_FILES", in_dir("conf.d"))
            .env("RABBITMQ_ADVANCED_CONFIG_FILE", in_dir("advanced.config"))
            .env("RABBITMQ_MNESIA_BASE", in_dir("mnesia"))
            .env("RABBITMQ_LOG_BASE", in_dir("log"))
            .env("RABBITMQ_LOGS", "-")
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", in_dir("enabled_plugins"))
            .env("RABBITMQ_PLUGINS_EXPAND_DIR", in_dir("plugins-expand"))
            .env("RABBITMQ_PID_FILE", in_dir("rabbit.pid"));
        self.spawn_main(command, "rabbitmq.log")?;
        // The AMQP listener starts last in the boot sequence.
        self.wait_ready(|s| s.main_log_has("Server startup complete") && port_open(port))
    }

    fn launch_moto(&mut self) -> Result<(), StartError> {
        let program = moto_server();
        let port = self.port;
        let mut command = Command::new(program);
        command
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            // The first 3 requests (the IAM calls below) are not
            // authenticated; every later one must be signed by a known key.
            .env("INITIAL_NO_AUTH_ACTION_COUNT", MOTO_SETUP_CALLS.to_string());
        self.spawn_main(command, "moto.log")?;
        self.wait_ready(|_| port_open(port))?;
        self.moto_keys = Some(moto_iam_user(port)?);
        Ok(())
    }

    /// Spawns `command` in its own process group, in the server's directory,
    /// with stdout and stderr going to `log_name` there.
    fn spawn(&mut self, mut command: Command, log_name: &str) -> Result<Child, StartError> {
        let log_path = self.dir.join(log_name);
        let log =
            File::create(&log_path).map_err(|e| format!("create {}: {e}", log_path.display()))?;
        let log_err = log
            .try_clone()
            .map_err(|e| format!("dup {}: {e}", log_path.display()))?;
        self.logs.push(log_path);
        command
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .process_group(0);
        let program = command.get_program().to_string_lossy().into_owned();
        let child = command
            .spawn()
            .map_err(|e| format!("cannot run {program}: {e}"))?;
        // For reap_orphans, should this test process die without stopping us.
        let mut pids = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("server.pids"))
            .map_err(|e| format!("server.pids: {e}"))?;
        let _ = writeln!(pids, "{}", child.id());
        Ok(child)
    }

    fn spawn_main(&mut self, command: Command, log_name: &str) -> Result<(), StartError> {
        let child = self.spawn(command, log_name)?;
        self.child = Some(child);
        Ok(())
    }

    /// Runs a setup program (initdb, ...) to its end.
    fn run_setup(
        &mut self,
        command: Command,
        log_name: &str,
        timeout: Duration,
    ) -> Result<(), StartError> {
        let program = command.get_program().to_string_lossy().into_owned();
        let mut child = self.spawn(command, log_name)?;
        let deadline = Instant::now() + timeout;
        loop {
            match child.try_wait() {
                Ok(Some(status)) if status.success() => return Ok(()),
                Ok(Some(status)) => return Err(format!("{program} failed: {status}").into()),
                Ok(None) if Instant::now() > deadline => {
                    signal(&format!("-{}", child.id()), "KILL");
                    let _ = child.wait();
                    return Err(format!("{program} took more than {timeout:?}").into());
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(10)),
                Err(e) => return Err(format!("waiting for {program}: {e}").into()),
            }
        }
    }

    fn wait_ready(&mut self, ready: impl FnMut(&RealServer) -> bool) -> Result<(), StartError> {
        let timeout = self.kind.ready_timeout();
        self.wait_until(timeout, "readiness", ready)
    }

    /// Polls `ready` until it holds; fails early when a process died.
    fn wait_until(
        &mut self,
        timeout: Duration,
        what: &str,
        mut ready: impl FnMut(&RealServer) -> bool,
    ) -> Result<(), StartError> {
        let deadline = Instant::now() + timeout;
        loop {
            if ready(self) {
                return Ok(());
            }
            for process in self.child.iter().chain(&self.helpers) {
                if finished(process.id()) {
                    return Err(format!(
                        "process {} ({what}) exited before it was ready",
                        process.id()
                    )
                    .into());
                }
            }
            if Instant::now() > deadline {
                return Err(format!("no {what} after {timeout:?}").into());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn main_log_has(&self, needle: &str) -> bool {
        self.logs.last().is_some_and(|path| {
            fs::read(path).is_ok_and(|bytes| {
                bytes
                    .windows(needle.len())
                    .any(|window| window == needle.as_bytes())
            })
        })
    }
}

impl Drop for RealServer {
    fn drop(&mut self) {
        self.shut_down();
        if std::env::var_os("SANDPORT_KEEP_SERVER_DIRS").is_some() {
            eprintln!("kept {} dir {}", self.kind.name(), self.dir.display());
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// Signals the process, waits for it to end (SIGKILL to its process group
/// after `timeout`), then SIGKILLs whatever is left of the group and reaps it.
fn stop_process(mut child: Child, signal_name: &str, timeout: Duration) {
    let pid = child.id();
    let group = format!("-{pid}");
    if !finished(pid) {
        signal(&pid.to_string(), signal_name);
        let deadline = Instant::now() + timeout;
        while !finished(pid) {
            if Instant::now() > deadline {
                signal(&group, "KILL");
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    // The unreaped leader keeps the group id from being reused meanwhile.
    signal(&group, "KILL");
    let _ = child.wait();
}

/// Sends a signal with kill(1) (`target` is a pid, or -pgid for a group).
fn signal(target: &str, signal_name: &str) {
    let _ = Command::new("kill")
        .args(["-s", signal_name, "--", target])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Whether the process is gone or a zombie (exited, not yet reaped).
fn finished(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .is_none_or(|(_, rest)| rest.trim_start().starts_with(['Z', 'X'])),
        Err(_) => true,
    }
}

fn effective_uid() -> u32 {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("Uid:"))
                .and_then(|ids| ids.split_whitespace().nth(1))
                .and_then(|id| id.parse().ok())
        })
        .unwrap_or(u32::MAX)
}

/// uid and gid of a user from /etc/passwd.
fn system_user(name: &str) -> Option<(u32, u32)> {
    let passwd = fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        (fields.len() > 3 && fields[0] == name)
            .then(|| Some((fields[2].parse().ok()?, fields[3].parse().ok()?)))
            .flatten()
    })
}

/// The program at `path`, or a panic that says how to install it.
fn require(path: &str, package: &str) -> PathBuf {
    let path = PathBuf::from(path);
    assert!(
        path.exists(),
        "{} is missing: install the Debian package `{package}` \
         (as root: scripts/install-test-deps.sh)",
        path.display()
    );
    path
}

/// /usr/lib/postgresql/<newest version>/bin, or $SANDPORT_PG_BIN.
fn postgres_bin() -> PathBuf {
    if let Some(dir) = std::env::var_os("SANDPORT_PG_BIN") {
        return PathBuf::from(dir);
    }
    let newest = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version: u32 = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("postgres").exists().then_some((version, bin))
        })
        .max_by_key(|(version, _)| *version);
    match newest {
        Some((_, bin)) => bin,
        None => panic!(
            "/usr/lib/postgresql/*/bin/postgres is missing: install the Debian package \
             `postgresql` (as root: scripts/install-test-deps.sh)"
        ),
    }
}

/// The workspace's target directory ($CARGO_TARGET_DIR if set).
fn target_dir() -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate lives in the workspace")
        .to_path_buf();
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => workspace.join(dir),
        None => workspace.join("target"),
    }
}

/// $SANDPORT_MOTO_SERVER, else `moto_server` on PATH, else the venv made by
/// scripts/install-test-deps.sh.
fn moto_server() -> PathBuf {
    if let Some(path) = std::env::var_os("SANDPORT_MOTO_SERVER") {
        return PathBuf::from(path);
    }
    // The pinned install first (when its python is still there), then
    // whatever PATH offers.
    let venv = target_dir().join("test-tools/moto/bin/moto_server");
    if venv.exists() && venv.with_file_name("python3").exists() {
        return venv;
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("moto_server"))
            .find(|path| {
                fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            })
    });
    if let Some(path) = on_path {
        return path;
    }
    assert!(
        venv.exists(),
        "moto_server is missing (not in $SANDPORT_MOTO_SERVER, not on PATH, not at {}): \
         run scripts/install-test-deps.sh, which pip-installs moto there",
        venv.display()
    );
    venv
}

const MARIADB_INNODB_ARGS: [&str; 2] =
    ["--innodb-log-file-size=8M", "--innodb-buffer-pool-size=32M"];

fn mariadb_install_db(data: &Path) -> Command {
    let mut command = Command::new(require("/usr/bin/mariadb-install-db", "mariadb-server"));
    command
        .arg("--no-defaults")
        .arg(format!("--datadir={}", data.display()));
    if effective_uid() == 0 {
        command.arg("--user=root");
    }
    command
        .args(["--auth-root-authentication-method=normal", "--skip-test-db"])
        .arg("--skip-name-resolve")
        .args(MARIADB_INNODB_ARGS);
    command
}

/// A pristine data directory made once by mariadb-install-db (about 2 s) and
/// copied for every server (about 50 ms), kept in the target directory and
/// keyed by the mariadbd binary. None when it cannot be made.
fn mariadb_template() -> Option<PathBuf> {
    static TEMPLATE: OnceLock<Option<PathBuf>> = OnceLock::new();
    TEMPLATE
        .get_or_init(|| {
            let binary = fs::metadata("/usr/sbin/mariadbd").ok()?;
            let modified = binary
                .modified()
                .ok()?
                .duration_since(UNIX_EPOCH)
                .ok()?
                .as_secs();
            let tools = target_dir().join("test-tools");
            let template = tools.join(format!("mariadb-data-{}-{modified}", binary.len()));
            if template.join("mysql").is_dir() {
                return Some(template);
            }
            fs::create_dir_all(&tools).ok()?;
            let building = tools.join(format!("mariadb-data.tmp-{}", std::process::id()));
            let _ = fs::remove_dir_all(&building);
            let log =
                File::create(tools.join(format!("mariadb-install-db-{}.log", std::process::id())))
                    .ok()?;
            let status = mariadb_install_db(&building)
                .stdin(Stdio::null())
                .stdout(log.try_clone().ok()?)
                .stderr(log)
                .status()
                .ok()?;
            if !status.success() {
                let _ = fs::remove_dir_all(&building);
                return None;
            }
            // Another test process may have won the race: use its template.
            if fs::rename(&building, &template).is_err() {
                let _ = fs::remove_dir_all(&building);
            }
            let _ = fs::remove_file(
                tools.join(format!("mariadb-install-db-{}.log", std::process::id())),
            );
            template.join("mysql").is_dir().then_some(template)
        })
        .clone()
}

fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    fs::create_dir(to)?;
    fs::set_permissions(to, fs::metadata(from)?.permissions())?;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else {
            fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

fn sql_quote(value: &str) -> String {
    value.replace('\\', "\\\\").replace('\'', "''")
}

fn write_file(path: &Path, content: &str) {
    fs::write(path, content).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// `n` distinct ports that were free a moment ago.
fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind a free loopback port"))
        .collect();
    listeners
        .iter()
        .map(|l| {
            l.local_addr()
                .expect("local address of a bound port")
                .port()
        })
        .collect()
}

/// A fresh directory /tmp/sp-<test pid>-<n>-<kind>, short enough for unix
/// socket paths.
fn make_dir(kind: Kind) -> PathBuf {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = PathBuf::from(format!(
            "/tmp/sp-{}-{n}-{}",
            std::process::id(),
            kind.name()
        ));
        match fs::create_dir(&dir) {
            Ok(()) => {
                // Traversable by the users the servers run as.
                fs::set_permissions(&dir, fs::Permissions::from_mode(0o755))
                    .unwrap_or_else(|e| panic!("chmod {}: {e}", dir.display()));
                return dir;
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => panic!("mkdir {}: {e}", dir.display()),
        }
    }
}

/// Stops servers whose test process died without stopping them, and removes
/// their directories. Once per test process.
fn reap_orphans() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let Ok(entries) = fs::read_dir("/tmp") else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            // sp-<test pid>-<n>-<kind>, as made by make_dir.
            let parts: Vec<&str> = name.to_str().unwrap_or_default().splitn(4, '-').collect();
            let [prefix, owner, n, kind] = parts[..] else {
                continue;
            };
            let ours = prefix == "sp"
                && n.parse::<u32>().is_ok()
                && ALL_KINDS.iter().any(|k| k.name() == kind);
            let Some(owner) = owner.parse::<u32>().ok().filter(|_| ours) else {
                continue;
            };
            let dir = entry.path();
            // Alive owner, or servers already stopped (a kept directory).
            let Ok(pids) = fs::read_to_string(dir.join("server.pids")) else {
                continue;
            };
            if Path::new(&format!("/proc/{owner}")).exists() {
                continue;
            }
            let running = processes_in(&dir);
            for pid in pids.lines().filter_map(|p| p.trim().parse::<u32>().ok()) {
                // Only if that pid is still one of ours.
                if running.contains(&pid) {
                    signal(&format!("-{pid}"), "KILL");
                }
            }
            kill_processes_in(&dir);
            let _ = fs::remove_dir_all(&dir);
        }
    });
}

/// Processes whose working directory is `dir` or below: every process a
/// server starts runs there (postgres and mariadbd move into their data
/// directory).
fn processes_in(dir: &Path) -> Vec<u32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|cwd| cwd.starts_with(dir))
        })
        .collect()
}

/// SIGKILLs the processes left in `dir` (postgres' backends, for one, run in
/// process groups of their own) and waits a little for them to go.
fn kill_processes_in(dir: &Path) {
    let left = processes_in(dir);
    if left.is_empty() {
        return;
    }
    for pid in &left {
        signal(&pid.to_string(), "KILL");
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while left.iter().any(|pid| !finished(*pid)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn port_open(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
}

fn http_status(port: u16, path: &str) -> Option<u16> {
    http_request(port, "GET", path, &[], &[])
        .ok()
        .map(|(status, _)| status)
}

/// One HTTP/1.1 exchange with `Connection: close`; returns status and body.
fn http_request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> std::io::Result<(u16, String)> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.set_write_timeout(Some(Duration::from_secs(10)))?;
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\
         Content-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        let _ = write!(request, "{name}: {value}\r\n");
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes())?;
    stream.write_all(body)?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP response: {text:?}")))?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

/// How many unauthenticated calls moto allows: those of [`moto_iam_user`].
const MOTO_SETUP_CALLS: u32 = 3;

/// Creates the IAM user `sandport` allowed s3:*, and an access key for it.
fn moto_iam_user(port: u16) -> Result<(String, String), StartError> {
    let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#;
    let calls = [
        "Action=CreateUser&UserName=sandport&Version=2010-05-08".to_string(),
        format!(
            "Action=PutUserPolicy&UserName=sandport&PolicyName=s3&PolicyDocument={}&Version=2010-05-08",
            uri_encode(policy)
        ),
        "Action=CreateAccessKey&UserName=sandport&Version=2010-05-08".to_string(),
    ];
    let mut last = String::new();
    for body in &calls {
        let content_type = (
            "Content-Type".to_string(),
            "application/x-www-form-urlencoded; charset=utf-8".to_string(),
        );
        // Signed with dummy keys: these calls are not checked (see above).
        let mut headers = sigv4(
            "POST",
            port,
            "/",
            "iam",
            body.as_bytes(),
            "testing",
            "testing",
        );
        headers.push(content_type);
        let (status, text) = http_request(port, "POST", "/", &headers, body.as_bytes())
            .map_err(|e| format!("moto IAM call {body}: {e}"))?;
        if status != 200 {
            return Err(format!("moto IAM call {body} answered {status}: {text}").into());
        }
        last = text;
    }
    let field = |name: &str| {
        let open = format!("<{name}>");
        let start = last.find(&open)? + open.len();
        let end = last[start..].find('<')? + start;
        Some(last[start..end].to_string())
    };
    match (field("AccessKeyId"), field("SecretAccessKey")) {
        (Some(key), Some(secret)) => Ok((key, secret)),
        _ => Err(format!("moto CreateAccessKey answered no key: {last}").into()),
    }
}

/// Headers (host is sent by [`http_request`]) that sign a request with AWS
/// Signature Version 4 for region us-east-1 (no query string), made by the
/// same `aws-sigv4` crate the runtime signs with.
fn sigv4(
    method: &str,
    port: u16,
    path: &str,
    service: &str,
    body: &[u8],
    key: &str,
    secret: &str,
) -> Vec<(String, String)> {
    use aws_sigv4::http_request::{
        PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
        UriPathNormalizationMode, sign,
    };
    let identity = aws_credential_types::Credentials::new(key, secret, None, None, "tests").into();
    let mut settings = SigningSettings::default();
    settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    if service == "s3" {
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    }
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name(service)
        .time(SystemTime::now())
        .settings(settings)
        .build()
        .expect("signing parameters")
        .into();
    let host = format!("127.0.0.1:{port}");
    let url = format!("http://{host}{path}");
    let request = SignableRequest::new(
        method,
        &url,
        std::iter::once(("host", host.as_str())),
        SignableBody::Bytes(body),
    )
    .expect("a signable request");
    let (instructions, _signature) = sign(request, &params).expect("signed").into_parts();
    instructions
        .into_parts()
        .0
        .into_iter()
        .map(|h| (h.name().to_string(), h.value().to_string()))
        .collect()
}

fn uri_encode(value: &str) -> String {
    value.bytes().fold(String::new(), |mut s, b| {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            s.push(char::from(b));
        } else {
            let _ = write!(s, "%{b:02X}");
        }
        s
    })
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connect(port: u16) -> TcpStream {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("connect to 127.0.0.1:{port}: {e}"));
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("set read timeout");
        stream
    }

    /// Sends `bytes` (if any) and returns what one read gets.
    fn exchange(stream: &mut TcpStream, bytes: &[u8]) -> Vec<u8> {
        stream.write_all(bytes).expect("send to the server");
        let mut buffer = vec![0u8; 4096];
        let n = stream.read(&mut buffer).expect("read from the server");
        buffer.truncate(n);
        buffer
    }

    /// Reads until `n` bytes came (or the server closed).
    fn read_at_least(stream: &mut TcpStream, n: usize) -> Vec<u8> {
        let mut data = Vec::new();
        let mut buffer = [0u8; 4096];
        while data.len() < n {
            let got = stream.read(&mut buffer).expect("read from the server");
            if got == 0 {
                break;
            }
            data.extend_from_slice(&buffer[..got]);
        }
        data
    }

    /// Stops the server; then its ports refuse, no process is left, and
    /// dropping it removes its directory.
    fn stop_and_check(mut server: RealServer) {
        let started = Instant::now();
        let mut ports = vec![server.port()];
        ports.extend(&server.extra_ports);
        let dir = server.dir().to_path_buf();
        server.stop();
        eprintln!(
            "{} stopped in {} ms",
            server.kind.name(),
            started.elapsed().as_millis()
        );
        for port in ports {
            assert!(
                !port_open(port),
                "port {port} still open after stop\n{}",
                server.log()
            );
        }
        assert_eq!(processes_in(&dir), Vec::<u32>::new(), "processes left");
        // Checked after a request, so the server's side of it may sit in
        // TIME_WAIT on the port.
        assert!(
            server.held_port.is_some(),
            "port {} not held once stopped",
            server.port()
        );
        server.stop();
        drop(server);
        assert!(!dir.exists(), "{} still exists", dir.display());
    }

    fn timed(kind: Kind, options: Options) -> RealServer {
        let started = Instant::now();
        let server = RealServer::start_with(kind, options);
        eprintln!(
            "{} ready on {} in {} ms",
            kind.name(),
            server.port(),
            started.elapsed().as_millis()
        );
        server
    }

    fn with(user: Option<&str>, password: &str) -> Options {
        Options {
            user: user.map(String::from),
            password: Some(password.into()),
        }
    }

    fn http_health(kind: Kind, path: &str, body: &str) {
        let server = timed(kind, Options::default());
        let (status, text) =
            http_request(server.port(), "GET", path, &[], &[]).expect("GET the health path");
        assert_eq!((status, text.as_str()), (200, body), "{}", server.log());
        stop_and_check(server);
    }

    #[test]
    fn prometheus() {
        http_health(
            Kind::Prometheus,
            "/-/healthy",
            "Prometheus Server is Healthy.\n",
        );
    }

    #[test]
    fn alertmanager() {
        http_health(Kind::Alertmanager, "/-/healthy", "OK");
    }

    #[test]
    fn blackbox_exporter() {
        http_health(Kind::BlackboxExporter, "/-/healthy", "Healthy");
    }

    #[test]
    fn redis() {
        let server = timed(Kind::Redis, Options::default());
        let mut stream = connect(server.port());
        assert_eq!(exchange(&mut stream, b"*1\r\n$4\r\nPING\r\n"), b"+PONG\r\n");
        stop_and_check(server);
    }

    #[test]
    fn redis_password() {
        let server = timed(Kind::Redis, with(Some("alice"), "s3cret"));
        assert_eq!(server.user(), Some("alice"));
        let mut stream = connect(server.port());
        let reply = exchange(&mut stream, b"PING\r\n");
        assert!(reply.starts_with(b"-NOAUTH"), "{reply:?}");
        let reply = exchange(&mut stream, b"AUTH alice wrong\r\n");
        assert!(reply.starts_with(b"-WRONGPASS"), "{reply:?}");
        assert_eq!(exchange(&mut stream, b"AUTH alice s3cret\r\n"), b"+OK\r\n");
        assert_eq!(exchange(&mut stream, b"AUTH s3cret\r\n"), b"+OK\r\n");
        assert_eq!(exchange(&mut stream, b"PING\r\n"), b"+PONG\r\n");
        stop_and_check(server);
    }

    fn pg_startup(user: &str) -> Vec<u8> {
        let mut message = Vec::new();
        for part in ["user", user, "database", "postgres"] {
            message.extend_from_slice(part.as_bytes());
            message.push(0);
        }
        message.push(0);
        let mut packet = ((message.len() + 8) as u32).to_be_bytes().to_vec();
        packet.extend_from_slice(&196_608u32.to_be_bytes());
        packet.extend_from_slice(&message);
        packet
    }

    #[test]
    fn postgres() {
        let server = timed(Kind::Postgres, Options::default());
        assert_eq!(server.user(), Some("postgres"));
        let mut stream = connect(server.port());
        let ssl_request = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];
        assert_eq!(exchange(&mut stream, &ssl_request), b"N");
        // Trust: AuthenticationOk straight away.
        let reply = exchange(&mut stream, &pg_startup("postgres"));
        assert_eq!(reply[..9], *b"R\0\0\0\x08\0\0\0\0", "{reply:?}");
        assert!(
            server
                .dir()
                .join(format!(".s.PGSQL.{}", server.port()))
                .exists(),
            "unix socket in dir()"
        );
        stop_and_check(server);
    }

    #[test]
    fn postgres_password() {
        let server = timed(Kind::Postgres, with(Some("alice"), "pg-pass"));
        let mut stream = connect(server.port());
        let reply = exchange(&mut stream, &pg_startup("alice"));
        // AuthenticationSASL (10) offering SCRAM-SHA-256.
        assert_eq!(reply[..9], *b"R\0\0\0\x17\0\0\0\x0a", "{reply:?}");
        assert!(reply.ends_with(b"SCRAM-SHA-256\0\0"), "{reply:?}");
        if Path::new("/usr/bin/psql").exists() {
            let psql = |password: &str| {
                Command::new("/usr/bin/psql")
                    .args(["-h", "127.0.0.1", "-p", &server.port().to_string()])
                    .args([
                        "-U",
                        "alice",
                        "-d",
                        "postgres",
                        "-Atc",
                        "select current_user",
                    ])
                    .env("PGPASSWORD", password)
                    .output()
                    .expect("run psql")
            };
            let good = psql("pg-pass");
            assert_eq!(String::from_utf8_lossy(&good.stdout), "alice\n", "{good:?}");
            assert!(!psql("wrong").status.success());
        }
        stop_and_check(server);
    }

    #[test]
    fn mariadb() {
        let server = timed(Kind::MariaDb, Options::default());
        assert_eq!(server.user(), Some("root"));
        let mut stream = connect(server.port());
        let greeting = exchange(&mut stream, &[]);
        assert_eq!(
            greeting[3..5],
            [0, 0x0a],
            "sequence 0, protocol 10: {greeting:?}"
        );
        stop_and_check(server);
    }

    #[test]
    fn mariadb_user() {
        let server = timed(Kind::MariaDb, with(Some("sandport"), "sp'pass"));
        let mut stream = connect(server.port());
        let greeting = exchange(&mut stream, &[]);
        assert_eq!(greeting[4], 0x0a, "{greeting:?}");
        if Path::new("/usr/bin/mariadb").exists() {
            let login = |password: &str| {
                Command::new("/usr/bin/mariadb")
                    .args(["--no-defaults", "-h", "127.0.0.1"])
                    .args(["-P", &server.port().to_string(), "-u", "sandport"])
                    .arg(format!("-p{password}"))
                    .args(["-N", "-e", "select current_user()"])
                    .output()
                    .expect("run mariadb")
            };
            let good = login("sp'pass");
            assert_eq!(
                String::from_utf8_lossy(&good.stdout),
                "sandport@127.0.0.1\n",
                "{good:?}"
            );
            assert!(!login("wrong").status.success());
        }
        stop_and_check(server);
    }

    #[test]
    fn nats() {
        let server = timed(Kind::Nats, Options::default());
        let mut stream = connect(server.port());
        let info = exchange(&mut stream, &[]);
        assert!(info.starts_with(b"INFO {"), "{info:?}");
        let reply = exchange(&mut stream, b"CONNECT {\"verbose\":false}\r\nPING\r\n");
        assert_eq!(reply, b"PONG\r\n");
        stop_and_check(server);
    }

    #[test]
    fn nats_password() {
        let server = timed(Kind::Nats, with(None, "pw1"));
        assert_eq!(server.user(), Some("sandport"));
        let mut stream = connect(server.port());
        let info = String::from_utf8(exchange(&mut stream, &[])).expect("INFO is text");
        assert!(info.contains("\"auth_required\":true"), "{info}");
        let reply = exchange(
            &mut stream,
            b"CONNECT {\"verbose\":false,\"user\":\"sandport\",\"pass\":\"pw1\"}\r\nPING\r\n",
        );
        assert_eq!(reply, b"PONG\r\n");
        let mut stream = connect(server.port());
        exchange(&mut stream, &[]);
        let reply = exchange(
            &mut stream,
            b"CONNECT {\"user\":\"sandport\",\"pass\":\"bad\"}\r\nPING\r\n",
        );
        assert_eq!(reply, b"-ERR 'Authorization Violation'\r\n");
        stop_and_check(server);
    }

    fn mqtt_connect(credentials: Option<(&str, &str)>) -> Vec<u8> {
        let mut flags = 0x02;
        let mut payload = vec![0, 5];
        payload.extend_from_slice(b"probe");
        if let Some((user, password)) = credentials {
            flags |= 0xc0;
            for field in [user, password] {
                payload.extend_from_slice(&(field.len() as u16).to_be_bytes());
                payload.extend_from_slice(field.as_bytes());
            }
        }
        let mut rest = b"\x00\x04MQTT\x04".to_vec();
        rest.extend_from_slice(&[flags, 0, 60]);
        rest.extend_from_slice(&payload);
        let mut packet = vec![0x10, rest.len() as u8];
        packet.extend_from_slice(&rest);
        packet
    }

    #[test]
    fn mosquitto() {
        let server = timed(Kind::Mosquitto, Options::default());
        let mut stream = connect(server.port());
        assert_eq!(exchange(&mut stream, &mqtt_connect(None)), [0x20, 2, 0, 0]);
        assert_eq!(exchange(&mut stream, &[0xc0, 0]), [0xd0, 0]);
        stop_and_check(server);
    }

    #[test]
    fn mosquitto_password() {
        let server = timed(Kind::Mosquitto, with(Some("alice"), "secret"));
        let connack =
            |credentials| exchange(&mut connect(server.port()), &mqtt_connect(credentials));
        assert_eq!(connack(None), [0x20, 2, 0, 5]);
        assert_eq!(connack(Some(("alice", "wrong"))), [0x20, 2, 0, 5]);
        assert_eq!(connack(Some(("alice", "secret"))), [0x20, 2, 0, 0]);
        stop_and_check(server);
    }

    /// Opens an AMQP 0-9-1 connection up to connection.start; returns the
    /// stream and that frame.
    fn amqp_start(port: u16) -> (TcpStream, Vec<u8>) {
        let mut stream = connect(port);
        stream
            .write_all(b"AMQP\x00\x00\x09\x01")
            .expect("send the AMQP header");
        let head = read_at_least(&mut stream, 7);
        let size = u32::from_be_bytes(head[3..7].try_into().expect("4 bytes")) as usize;
        let mut frame = head.clone();
        if frame.len() < size + 8 {
            frame.extend(read_at_least(&mut stream, size + 8 - frame.len()));
        }
        (stream, frame)
    }

    /// connection.start-ok with PLAIN; returns (class, method) of the answer,
    /// None when the server closed the connection.
    fn amqp_login(port: u16, user: &str, password: &str) -> Option<(u16, u16)> {
        let (mut stream, frame) = amqp_start(port);
        assert_eq!(frame[..1], [1], "a method frame: {frame:?}");
        assert_eq!(frame[7..11], [0, 10, 0, 10], "connection.start: {frame:?}");
        let mut payload = vec![0, 10, 0, 11, 0, 0, 0, 0, 5];
        payload.extend_from_slice(b"PLAIN");
        let response = format!("\0{user}\0{password}");
        payload.extend_from_slice(&(response.len() as u32).to_be_bytes());
        payload.extend_from_slice(response.as_bytes());
        payload.push(5);
        payload.extend_from_slice(b"en_US");
        let mut start_ok = vec![1, 0, 0];
        start_ok.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        start_ok.extend_from_slice(&payload);
        start_ok.push(0xce);
        stream
            .write_all(&start_ok)
            .expect("send connection.start-ok");
        // A refused login is a reset: this client did not announce the
        // authentication_failure_close capability.
        let mut reply = [0u8; 11];
        stream.read_exact(&mut reply).ok()?;
        Some((
            u16::from_be_bytes([reply[7], reply[8]]),
            u16::from_be_bytes([reply[9], reply[10]]),
        ))
    }

    #[test]
    fn rabbitmq() {
        let server = timed(Kind::RabbitMq, Options::default());
        let tune = Some((10, 30));
        assert_eq!(amqp_login(server.port(), "guest", "guest"), tune);
        assert_eq!(amqp_login(server.port(), "guest", "wrong"), None);
        stop_and_check(server);
    }

    #[test]
    fn rabbitmq_user() {
        let server = timed(Kind::RabbitMq, with(Some("alice"), "pw-1"));
        assert_eq!(amqp_login(server.port(), "alice", "pw-1"), Some((10, 30)));
        // guest is not created when another default user is set.
        assert_eq!(amqp_login(server.port(), "guest", "guest"), None);
        stop_and_check(server);
    }

    #[test]
    fn moto() {
        let server = timed(Kind::Moto, Options::default());
        let (key, secret) = server.moto_setup("probe-bucket");
        assert_eq!(
            server.moto_setup("probe-bucket"),
            (key.clone(), secret.clone())
        );
        let head = |path: &str, secret: &str| {
            let headers = sigv4("HEAD", server.port(), path, "s3", &[], &key, secret);
            http_request(server.port(), "HEAD", path, &headers, &[])
                .expect("HEAD a bucket")
                .0
        };
        assert_eq!(head("/probe-bucket", &secret), 200, "{}", server.log());
        assert_eq!(head("/missing-bucket", &secret), 404);
        assert_eq!(head("/probe-bucket", "wrong-secret"), 403);
        stop_and_check(server);
    }
}
