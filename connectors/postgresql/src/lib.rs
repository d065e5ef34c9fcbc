//! PostgreSQL (and servers that speak its protocol, e.g. PgBouncer): the
//! start of a connection, without logging in.
//!
//! The first check sends an `SSLRequest` (its one-byte answer, `S` or `N`,
//! proves a PostgreSQL server and gives the `ssl` detail), then every check
//! sends a `StartupMessage`
//! (protocol 3.0) and reads the server's first answer. It never sends a
//! password: an authentication request already shows the server accepts
//! connections. With `trust` it reads on to `ReadyForQuery` and says goodbye
//! with `Terminate`.
//!
//! - healthy: the server asks for authentication or lets the user in
//!   ("accepting connections; authentication: scram-sha-256"). Also
//!   healthy when it refuses this particular login for a reason that does
//!   not say the server is unwell (unknown role or database, no `pg_hba.conf`
//!   entry, ...): the message says so and the `startup_error` detail holds
//!   `SQLSTATE: message`.
//! - degraded: SQLSTATE class 53, insufficient resources; above all 53300
//!   "sorry, too many clients already" (no free connection slot).
//! - unhealthy: the connection fails or times out, the server is not
//!   PostgreSQL, or it refuses with class 57 (57P03 "the database system is
//!   starting up / shutting down / in recovery mode / not accepting
//!   connections"), 58 (system error) or XX (internal error).
//!
//! Settings: `user` (default: the username of `auth`, else `postgres`),
//! `database` (default: the user), `ssl_probe` (default `true`; `false`
//! skips the `SSLRequest`). The `SSLRequest` is sent on the first check of
//! an instance only and its answer kept: a server with `ssl = on` logs each
//! abandoned TLS handshake ("could not accept SSL connection: EOF
//! detected"), once per check would be noise. Details: `ssl`
//! (`supported` / `not offered`), `authentication`, `user`, and with
//! `trust` also `server_version` and `in_hot_standby`.

use sandport_sdk::tcp as session;

use sandport_sdk::{
    Config, Connector, ConnectorType, Error, HealthReport, HealthStatus, credentials,
    export_connector,
};
use session::{Session, Target, escape, text};

/// `SSLRequest`: length 8, code 80877103.
const SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];
/// `Terminate`.
const TERMINATE: [u8; 5] = [b'X', 0, 0, 0, 4];
/// The largest message accepted from the server before logging in.
const MAX_MESSAGE: usize = 32 * 1024;

struct Postgres {
    target: Target,
    user: Option<String>,
    database: Option<String>,
    ssl_probe: bool,
    /// The answer to `SSLRequest`, asked once per instance.
    ssl: Option<&'static str>,
}

/// The fields of an `ErrorResponse`.
#[derive(Default)]
struct ServerError {
    code: String,
    message: String,
    detail: String,
}

impl ServerError {
    fn parse(body: &[u8]) -> ServerError {
        let mut error = ServerError::default();
        let mut rest = body;
        while let Some((&field, tail)) = rest.split_first() {
            if field == 0 {
                break;
            }
            let end = tail.iter().position(|&b| b == 0).unwrap_or(tail.len());
            let value = text(&tail[..end], 300);
            match field {
                b'C' => error.code = value,
                b'M' => error.message = value,
                b'D' => error.detail = value,
                _ => {}
            }
            rest = tail.get(end + 1..).unwrap_or(&[]);
        }
        error
    }

    /// `message (CODE)`, with the detail when there is one.
    fn describe(&self) -> String {
        let mut out = self.message.clone();
        if !self.detail.is_empty() {
            out.push_str(&format!(": {}", self.detail));
        }
        if !self.code.is_empty() {
            out.push_str(&format!(" ({})", self.code));
        }
        out
    }
}

fn startup_message(user: &str, database: &str) -> Vec<u8> {
    let mut params = Vec::new();
    for (key, value) in [
        ("user", user),
        ("database", database),
        ("application_name", "sandport"),
    ] {
        params.extend_from_slice(key.as_bytes());
        params.push(0);
        params.extend_from_slice(value.as_bytes());
        params.push(0);
    }
    params.push(0);
    let len = u32::try_from(8 + params.len()).unwrap_or(u32::MAX);
    let mut out = len.to_be_bytes().to_vec();
    out.extend_from_slice(&196_608u32.to_be_bytes()); // protocol 3.0
    out.extend_from_slice(&params);
    out
}

/// The name of an authentication request (`AuthenticationXxx`).
fn auth_method(body: &[u8]) -> String {
    let code = body
        .get(..4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        .unwrap_or(u32::MAX);
    match code {
        0 => "trust".into(),
        2 => "kerberos".into(),
        3 => "password".into(),
        5 => "md5".into(),
        7 => "gss".into(),
        9 => "sspi".into(),
        10 => {
            let names: Vec<String> = body
                .get(4..)
                .unwrap_or(&[])
                .split(|&b| b == 0)
                .filter(|name| !name.is_empty())
                .map(|name| text(name, 40).to_ascii_lowercase())
                .collect();
            if names.is_empty() {
                "sasl".into()
            } else {
                names.join(", ")
            }
        }
        other => format!("method {other}"),
    }
}

/// Reads one message: its type and body.
fn read_message(session: &mut Session, what: &str) -> Result<(u8, Vec<u8>), Error> {
    session.need(5, what)?;
    let kind = session.buf[0];
    let len = session
        .be_u32(1)
        .and_then(|len| usize::try_from(len).ok())
        .unwrap_or(usize::MAX);
    if !(4..=MAX_MESSAGE).contains(&len) || !kind.is_ascii_alphabetic() {
        return Err(session.error(format!(
            "not a PostgreSQL server? it answered with \"{}\"",
            escape(&session.buf, 80)
        )));
    }
    session.need(1 + len, what)?;
    let message = session.take(1 + len);
    Ok((kind, message[5..].to_vec()))
}

impl Connector for Postgres {
    const NAME: &'static str = "PostgreSQL";
    const TYPE: ConnectorType = ConnectorType::Database;
    const DESCRIPTION: &'static str = "PostgreSQL server (connection startup, no login)";

    fn new(config: &Config) -> Result<Self, String> {
        let ssl_probe = match config.setting("ssl_probe").map(str::trim) {
            None | Some("true") => true,
            Some("false") => false,
            Some(other) => {
                return Err(format!(
                    "settings.ssl_probe: `{other}` is not true or false"
                ));
            }
        };
        let non_empty = |key: &str| {
            config
                .setting(key)
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_string)
        };
        Ok(Postgres {
            target: Target::new("postgresql", config),
            user: non_empty("user"),
            database: non_empty("database"),
            ssl_probe,
            ssl: None,
        })
    }

    fn health_check(&mut self) -> Result<HealthReport, Error> {
        let user = credentials::get()
            .and_then(|c| c.username)
            .filter(|u| !u.is_empty())
            .or_else(|| self.user.clone())
            .unwrap_or_else(|| "postgres".to_string());
        let database = self.database.clone().unwrap_or_else(|| user.clone());
        let clock = self.target.clock();
        let mut session = self.target.connect(&clock)?;
        let mut report = HealthReport::healthy();

        if self.ssl_probe && self.ssl.is_none() {
            session.send(&SSL_REQUEST, "sending SSLRequest")?;
            session.need(1, "waiting for the answer to SSLRequest")?;
            let (ssl, reuse) = match session.buf[0] {
                b'S' => ("supported", false),
                b'N' => ("not offered", session.buf.len() == 1),
                // Servers older than 7.0 send an error and hang up.
                b'E' => ("not supported", false),
                _ => {
                    return Err(session.error(format!(
                        "not a PostgreSQL server? it answered SSLRequest with \"{}\"",
                        escape(&session.buf, 40)
                    )));
                }
            };
            self.ssl = Some(ssl);
            if !reuse {
                // After `S` the server expects a TLS handshake: start over
                // in clear text on a new connection.
                session.close();
                session = self.target.connect(&clock)?;
            } else {
                session.take(1);
            }
        }
        if let Some(ssl) = self.ssl {
            report = report.detail("ssl", ssl);
        }

        report = report.detail("user", user.clone());
        session.send(&startup_message(&user, &database), "sending StartupMessage")?;
        let what = "waiting for the answer to StartupMessage";
        let mut method: Option<String> = None;
        // Bounded by the deadline (every read checks it) and a count.
        for _ in 0..1000 {
            let (kind, body) = read_message(&mut session, what)?;
            match kind {
                b'R' => {
                    let name = auth_method(&body);
                    report = report.detail("authentication", name.clone());
                    if name != "trust" {
                        // Leave without answering: a client that hangs up
                        // at the password prompt is not logged.
                        session.close();
                        return Ok(report
                            .message(format!("accepting connections; authentication: {name}")));
                    }
                    method = Some(name);
                }
                b'S' => {
                    let mut parts = body.split(|&b| b == 0);
                    let name = parts.next().unwrap_or(&[]);
                    let value = parts.next().unwrap_or(&[]);
                    if name == b"server_version" || name == b"in_hot_standby" {
                        report = report.detail(text(name, 40), text(value, 100));
                    }
                }
                b'Z' => {
                    let _ = session.send(&TERMINATE, "sending Terminate");
                    session.close();
                    return Ok(report.message("accepting connections; authentication: trust"));
                }
                b'E' => {
                    session.close();
                    let error = ServerError::parse(&body);
                    let class = error.code.get(..2).unwrap_or("");
                    return match (error.code.as_str(), class) {
                        ("53300", _) => Ok(degraded(
                            report,
                            format!(
                                "PostgreSQL has no free connection slot: {}; raise max_connections or find the clients holding them",
                                error.describe()
                            ),
                        )),
                        (_, "53") => Ok(degraded(
                            report,
                            format!("PostgreSQL is short of resources: {}", error.describe()),
                        )),
                        ("57P03", _) => Err(self.target.error(format!(
                            "PostgreSQL is not accepting connections yet: {}",
                            error.describe()
                        ))),
                        (_, "57" | "58" | "XX") => Err(self.target.error(format!(
                            "PostgreSQL is not accepting connections: {}",
                            error.describe()
                        ))),
                        _ => {
                            let how = if method.is_some() {
                                "was let in (trust) and then refused"
                            } else {
                                "was refused"
                            };
                            Ok(report
                                .message(format!(
                                    "accepting connections; user {user:?} {how}: {}",
                                    error.describe()
                                ))
                                .detail(
                                    "startup_error",
                                    format!("{}: {}", error.code, error.message),
                                ))
                        }
                    };
                }
                // Notices, BackendKeyData, NegotiateProtocolVersion.
                _ => {}
            }
        }
        session.close();
        Err(self
            .target
            .error("the server sent over 1000 messages without ReadyForQuery"))
    }

    fn endpoint(&self, _config: &Config) -> String {
        self.target.label.clone()
    }
}

fn degraded(report: HealthReport, message: String) -> HealthReport {
    HealthReport {
        status: HealthStatus::Degraded,
        ..report
    }
    .message(message)
}

export_connector!(Postgres);
