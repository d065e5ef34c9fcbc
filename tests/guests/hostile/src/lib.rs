//! A connector that misbehaves as its `settings.mode` says, so that the tests
//! can prove the host contains it:
//!
//! - `loop`: spins forever in `health-check`.
//! - `alloc`: allocates memory until the host refuses.
//! - `say`: GETs `settings.url`; healthy when it answers 2xx, unhealthy
//!   otherwise, either way with `settings.message` as the message and
//!   `settings.detail_key: settings.detail` as a detail (hostile text for
//!   the status page and the alerts).
//! - `fetch`: GETs `settings.url` (with `settings.request_timeout_ms` as the
//!   request's own timeout, if set) and reports what happened.
//! - `panic`: panics in `health-check`.
//! - `fail-init`: refuses to initialise.
//! - `init-loop`: spins forever in `initialize`.
//! - `log-and-print`: logs, prints to stdout/stderr, then reports healthy.
//! - `credentials`: reports what `credentials.get` gives it.
//! - `leak`: healthy, but keeps 256 KiB more memory after every check.
//! - `count`: healthy, with the number of checks this instance has run.
//! - `recurse`: recurses without end (stack overflow).
//! - `big-string`: answers with a 4 MB message and a huge detail.
//! - `log-flood`: logs and prints in a tight loop, then reports healthy.
//! - `host-loop`: calls the host's HTTP client in a tight loop.
//! - `raw-send`: GETs `settings.url` through the import `http-client.send`
//!   itself, not the SDK, asks the `response` the host holds for one header
//!   (`X-ONE`), every header and the body, and reports what it got.
//! - `hold-headers`: GETs `settings.url` again and again, keeping every
//!   response (and so the headers and body the host holds for it) until a
//!   request fails; then lets them go, GETs it once more, and reports what
//!   it saw.
//! - `hold-patterns`: has the host compile a body pattern again and again,
//!   keeping every one, until it is refused; lets them go, compiles one
//!   more, and searches a GET of `settings.url` with it. Reports what it saw.
//! - `hold-prepared`: prepares a 32 KiB POST to `settings.url` again and
//!   again, keeping every `prepared-request` (which the host holds) until
//!   one is refused; sends the first, lets them all go, prepares and sends
//!   once more, and prepares one for a URL outside the allowlist, which
//!   the host admits and then refuses to send. Reports what it saw.
//! - `resend`: sends one SDK request to `settings.url` three times, and
//!   reports the statuses and whether the host held the request prepared
//!   after the first send and after the second.
//! - `tcp`: connects to `settings.tcp_host:tcp_port` through the host's
//!   resolver, sends `PING\r\n` and reports the first line of the answer.
//! - `snoop`: looks for files, environment, arguments, and for the secret
//!   whose reverse is `settings.needle_reversed` anywhere in its config (the
//!   reverse, so that the settings themselves do not hold it), and reports
//!   what it found.
//! - `tcp-raw`: the same, but connects to `settings.tcp_host` as an IP
//!   without asking the host first.
//! - `hold-sockets`: connects to `settings.tcp_host:tcp_port` again and
//!   again (at most 2,000 times), keeping every connection, in this
//!   instance, across checks, until one fails; reports how many it holds
//!   and why the last failed. With `settings.release: 'true'` it then lets
//!   them all go and reports whether one more connection opens (`again`).

use sandport_sdk::{Config, Connector, ConnectorType, Error, HealthReport, export_connector, http};

struct Hostile {
    config_text: String,
    mode: String,
    url: String,
    checks: u64,
    kept: Vec<Vec<u8>>,
    sockets: Vec<std::net::TcpStream>,
    settings: Vec<(String, String)>,
}

impl Hostile {
    /// `GET settings.url` as the WIT record, for the modes that call an
    /// import themselves rather than through the SDK.
    fn raw_get(&self) -> sandport_sdk::bindings::sandport::connector::http_client::Request {
        sandport_sdk::bindings::sandport::connector::http_client::Request {
            method: "GET".into(),
            url: self.url.clone(),
            headers: Vec::new(),
            body: None,
            timeout_ms: None,
        }
    }

    fn setting(&self, key: &str) -> String {
        self.settings
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    }
}

impl Connector for Hostile {
    const NAME: &'static str = "Hostile";
    const TYPE: ConnectorType = ConnectorType::Custom;

    fn new(config: &Config) -> Result<Self, String> {
        let mode = config.setting("mode").unwrap_or("count").to_string();
        if mode == "fail-init" {
            return Err("settings.mode is fail-init, so initialisation fails".into());
        }
        if mode == "init-loop" {
            let mut n: u64 = 0;
            loop {
                n = std::hint::black_box(n.wrapping_add(1));
            }
        }
        Ok(Hostile {
            config_text: format!("{config:?}"),
            mode,
            url: config.setting("url").unwrap_or_default().to_string(),
            checks: 0,
            kept: Vec::new(),
            sockets: Vec::new(),
            settings: config.settings.clone(),
        })
    }

    fn health_check(&mut self) -> Result<HealthReport, Error> {
        self.checks += 1;
        match self.mode.as_str() {
            "loop" => {
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            "alloc" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            "panic" => panic!("hostile guest panicked on purpose"),
            "recurse" => Ok(HealthReport::healthy().detail("depth", recurse(0).to_string())),
            "big-string" => Ok(
                HealthReport::unhealthy("m".repeat(4 << 20)).detail("huge", "d".repeat(1 << 20))
            ),
            "log-flood" => {
                for i in 0..20_000 {
                    sandport_sdk::log::info!("flood line {i}");
                    println!("flood print {i}");
                }
                Ok(HealthReport::healthy())
            }
            "tcp" | "tcp-raw" => {
                use std::io::{BufRead, BufReader, Write};
                let host = self.setting("tcp_host");
                let port: u16 = self
                    .setting("tcp_port")
                    .parse()
                    .map_err(|_| Error::new("settings.tcp_port"))?;
                let timeout = std::time::Duration::from_secs(2);
                let mut stream = if self.mode == "tcp" {
                    sandport_sdk::net::connect(&host, port, timeout)?
                } else {
                    let ip: std::net::IpAddr =
                        host.parse().map_err(|_| Error::new("settings.tcp_host"))?;
                    std::net::TcpStream::connect_timeout(&(ip, port).into(), timeout)
                        .map_err(|e| Error::new(format!("{host}:{port}: {e}")))?
                };
                stream
                    .write_all(b"PING\r\n")
                    .map_err(|e| Error::new(e.to_string()))?;
                let mut line = String::new();
                BufReader::new(stream)
                    .read_line(&mut line)
                    .map_err(|e| Error::new(e.to_string()))?;
                Ok(HealthReport::healthy().detail("reply", line.trim().to_string()))
            }
            "hold-sockets" => {
                let host = self.setting("tcp_host");
                let port: u16 = self
                    .setting("tcp_port")
                    .parse()
                    .map_err(|_| Error::new("settings.tcp_port"))?;
                let timeout = std::time::Duration::from_secs(2);
                let connect = || sandport_sdk::net::connect(&host, port, timeout);
                let mut error = String::from("none");
                while self.sockets.len() < 2000 {
                    match connect() {
                        Ok(stream) => self.sockets.push(stream),
                        Err(e) => {
                            error = e.to_string();
                            break;
                        }
                    }
                }
                let mut report = HealthReport::healthy()
                    .detail("held", self.sockets.len().to_string())
                    .detail("error", error);
                if self.setting("release") == "true" {
                    self.sockets.clear();
                    let again = connect().map_or_else(|e| e.to_string(), |_| "connected".into());
                    report = report.detail("again", again);
                }
                Ok(report)
            }
            "snoop" => {
                let needle: String = self.setting("needle_reversed").chars().rev().collect();
                let files = ["/", ".", "/etc", "/tmp"]
                    .iter()
                    .filter(|dir| std::fs::read_dir(dir).is_ok())
                    .count();
                #[allow(
                    clippy::disallowed_methods,
                    reason = "a hostile guest tries to read a host file; the sandbox must refuse"
                )]
                let passwd = std::fs::read("/etc/passwd").is_ok();
                let report = HealthReport::healthy()
                    .detail("dirs", files.to_string())
                    .detail("passwd", passwd.to_string())
                    .detail("env", std::env::vars().count().to_string())
                    .detail("args", std::env::args().count().to_string())
                    .detail(
                        "secret_seen",
                        self.config_text.contains(&needle).to_string(),
                    )
                    .detail("config_len", self.config_text.len().to_string());
                Ok(report)
            }
            "host-loop" => loop {
                let _ = http::get(&self.url);
            },
            "say" => {
                // What an attacker's guest may say: its text, its detail.
                let up = http::Request::get(&self.url)
                    .send()
                    .is_ok_and(|r| r.is_success());
                let report = if up {
                    HealthReport::healthy().message(self.setting("message"))
                } else {
                    HealthReport::unhealthy(self.setting("message"))
                };
                Ok(report.detail(self.setting("detail_key"), self.setting("detail")))
            }
            "fetch" => {
                let mut request = http::Request::get(&self.url);
                if let Ok(ms) = self.setting("request_timeout_ms").parse() {
                    request = request.timeout(std::time::Duration::from_millis(ms));
                }
                Ok(HealthReport::from(request.send()?))
            }
            "raw-send" => {
                use sandport_sdk::bindings::sandport::connector::http_client as wit;
                let request = self.raw_get();
                match wit::send(&request) {
                    Ok((status, response)) => {
                        let mut report = HealthReport::healthy()
                            .detail("status", status.to_string())
                            .detail("body", String::from_utf8_lossy(&response.body()));
                        if let Some(value) = response.header("X-ONE") {
                            report = report.detail("asked x-one", value);
                        }
                        for (name, value) in response.headers() {
                            report = report.detail(name, value);
                        }
                        Ok(report)
                    }
                    Err(error) => Ok(HealthReport::unhealthy(format!("{error:?}"))),
                }
            }
            "hold-headers" => {
                let request = http::Request::get(&self.url);
                // Reserved up front, so that what runs out is the room
                // for headers, not for this list.
                let mut held = Vec::with_capacity(1024);
                let error = loop {
                    match request.send() {
                        Ok(response) => held.push(response),
                        Err(error) => break error,
                    }
                };
                let first = held.first();
                let names = first.map(|r| r.headers()).unwrap_or_default();
                let names: Vec<&str> = names.iter().map(|(name, _)| name.as_str()).collect();
                let fat = first.and_then(|r| r.header("X-Fat")).map_or(0, |v| v.len());
                let body = first.map_or(0, |r| r.body().len());
                let held_count = held.len();
                drop(held);
                let again = request
                    .send()
                    .map(|r| r.header("x-fat").map_or(0, |v| v.len()).to_string())
                    .unwrap_or_else(|e| e.to_string());
                Ok(HealthReport::healthy()
                    .detail("held", held_count.to_string())
                    .detail("error", error.to_string())
                    .detail("kind", format!("{:?}", error.kind()))
                    .detail("names", names.join(","))
                    .detail("fat", fat.to_string())
                    .detail("body", body.to_string())
                    .detail("again", again))
            }
            "resend" => {
                let request = http::Request::get(&self.url);
                let prepared = |request: &http::Request| {
                    format!("{request:?}")
                        .contains("prepared: true")
                        .to_string()
                };
                let first = request.send()?.status;
                let after_first = prepared(&request);
                let second = request.send()?.status;
                let after_second = prepared(&request);
                let third = request.send()?.status;
                Ok(HealthReport::healthy()
                    .detail("statuses", format!("{first},{second},{third}"))
                    .detail("prepared after one", after_first)
                    .detail("prepared after two", after_second))
            }
            "hold-patterns" => {
                use sandport_sdk::http::Pattern;
                let mut held = Vec::new();
                let error = loop {
                    match Pattern::new("(?i)operational") {
                        Ok(pattern) => held.push(pattern),
                        Err(error) => break error,
                    }
                };
                let held_count = held.len();
                drop(held);
                let again = Pattern::new("(?i)operational")
                    .map_err(|e| e.to_string())
                    .and_then(|pattern| {
                        let response =
                            http::get(&self.setting("url")).map_err(|e| e.to_string())?;
                        response.body_matches(&pattern).map_err(|e| e.to_string())
                    });
                Ok(HealthReport::healthy()
                    .detail("held", held_count.to_string())
                    .detail("error", error)
                    .detail("again", format!("{again:?}")))
            }
            "hold-prepared" => {
                use sandport_sdk::bindings::sandport::connector::http_client as wit;
                let status = |sent: Result<(u16, wit::Response), wit::HttpError>| {
                    sent.map_or_else(|e| format!("{e:?}"), |(status, _)| status.to_string())
                };
                let mut request = self.raw_get();
                request.method = "POST".into();
                request.body = Some(vec![b'p'; 32 * 1024]);
                let mut held = Vec::with_capacity(1024);
                let error = loop {
                    match wit::prepare(&request) {
                        Ok(prepared) => held.push(prepared),
                        Err(error) => break error,
                    }
                };
                let first = held.first().map(|p| status(p.send()));
                let held_count = held.len();
                drop(held);
                let again = wit::prepare(&request).map(|p| status(p.send()));
                request.url = "http://10.1.2.3/".into();
                let elsewhere = wit::prepare(&request).map(|p| status(p.send()));
                Ok(HealthReport::healthy()
                    .detail("held", held_count.to_string())
                    .detail("error", format!("{error:?}"))
                    .detail("first", first.unwrap_or_default())
                    .detail("again", format!("{again:?}"))
                    .detail("elsewhere", format!("{elsewhere:?}")))
            }
            "credentials" => Ok(match sandport_sdk::credentials::get() {
                None => HealthReport::healthy().detail("credentials", "none"),
                Some(c) => HealthReport::healthy()
                    .detail("credentials", "shared")
                    .detail("username", c.username.unwrap_or_default())
                    .detail("secret", c.secret),
            }),
            "leak" => {
                // Keeps 256 KiB more after every check.
                self.kept.push(std::hint::black_box(vec![1u8; 256 * 1024]));
                Ok(HealthReport::healthy().detail("kept", self.kept.len().to_string()))
            }
            "log-and-print" => {
                sandport_sdk::log::info!("hello from the guest log");
                println!("hello from guest stdout");
                eprintln!("hello from guest stderr");
                Ok(HealthReport::healthy())
            }
            _ => Ok(HealthReport::healthy().detail("checks", self.checks.to_string())),
        }
    }
}

#[inline(never)]
#[allow(unconditional_recursion)] // the point of this mode
fn recurse(depth: u64) -> u64 {
    let frame = std::hint::black_box([depth; 64]);
    recurse(depth + 1) + frame[7]
}

export_connector!(Hostile);
