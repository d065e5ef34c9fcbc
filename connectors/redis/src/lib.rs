//! Redis (and Valkey, KeyDB, ...): `PING` over RESP.
//!
//! - healthy: `PING` answers `+PONG` (after `AUTH` succeeded, when the entry
//!   has credentials). Details: `redis_version`, `redis_mode` and
//!   `uptime_in_seconds` from `INFO server` when the user may run it.
//! - unhealthy: the connection fails or times out, `AUTH` is refused
//!   ("Redis refused the credentials: WRONGPASS ..."), the server wants a
//!   password the entry does not have ("Redis requires a password: set
//!   auth ..."), or `PING` answers anything else (e.g. `-LOADING`).
//! - never degraded.
//!
//! Credentials: `auth: {type: basic, username, password}` sends
//! `AUTH username password` (Redis 6 ACL users; the username `default` or an
//! empty one sends `AUTH password`, which also works before Redis 6);
//! `auth: {type: bearer, token}` sends `AUTH token`. No settings. TLS is not
//! supported.

use sandport_sdk::tcp as session;

use sandport_sdk::{
    Config, Connector, ConnectorType, Error, HealthReport, credentials, export_connector,
};
use session::{Session, Target, escape, millis, text};

struct Redis {
    target: Target,
}

/// One RESP2 reply (arrays are not expected from the commands sent here).
#[derive(Debug, PartialEq)]
enum Reply {
    Simple(Vec<u8>),
    Error(Vec<u8>),
    Integer(Vec<u8>),
    Bulk(Option<Vec<u8>>),
    Array(Vec<u8>),
}

/// Parses one reply from the front of `buf`: `Ok(None)` while incomplete,
/// `Err` when the bytes are not RESP.
fn parse(buf: &[u8]) -> Result<Option<(Reply, usize)>, ()> {
    let Some(&kind) = buf.first() else {
        return Ok(None);
    };
    if !b"+-:$*".contains(&kind) {
        return Err(());
    }
    let Some(eol) = buf.windows(2).position(|w| w == b"\r\n") else {
        // A RESP header line is short; anything long without CRLF is not RESP.
        return if buf.len() > 8 * 1024 {
            Err(())
        } else {
            Ok(None)
        };
    };
    let line = buf[1..eol].to_vec();
    let after = eol + 2;
    let reply = match kind {
        b'+' => Reply::Simple(line),
        b'-' => Reply::Error(line),
        b':' => Reply::Integer(line),
        b'*' => Reply::Array(line),
        _ => {
            let len: i64 = std::str::from_utf8(&line)
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or(())?;
            if len < 0 {
                return Ok(Some((Reply::Bulk(None), after)));
            }
            let len = usize::try_from(len).map_err(|_| ())?;
            if len > session::MAX_BUFFERED {
                return Err(());
            }
            let end = after + len;
            if buf.len() < end + 2 {
                return Ok(None);
            }
            if &buf[end..end + 2] != b"\r\n" {
                return Err(());
            }
            return Ok(Some((Reply::Bulk(Some(buf[after..end].to_vec())), end + 2)));
        }
    };
    Ok(Some((reply, after)))
}

/// A command as a RESP array of bulk strings.
fn command(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn call(session: &mut Session, args: &[&[u8]], name: &str) -> Result<Reply, Error> {
    session.send(&command(args), &format!("sending {name}"))?;
    let what = format!("waiting for the reply to {name}");
    let (reply, used) = session
        .read_until(&what, |buf| match parse(buf) {
            Ok(Some(found)) => Some(Ok(found)),
            Ok(None) => None,
            Err(()) => Some(Err(())),
        })?
        .map_err(|()| {
            session.error(format!(
                "not a Redis server? it answered {name} with \"{}\"",
                escape(&session.buf, 120)
            ))
        })?;
    session.take(used);
    Ok(reply)
}

fn unexpected(session: &Session, name: &str, reply: &Reply) -> Error {
    session.error(format!("unexpected answer to {name}: {reply:?}"))
}

/// A server error, with advice for the ones an operator can act on.
fn refused(error: &[u8]) -> String {
    let message = text(error, 300);
    let code = message.split(' ').next().unwrap_or("");
    match code {
        "NOAUTH" => "Redis requires a password: set auth (type: basic with the password, \
                     or bearer with the password as token)"
            .to_string(),
        "LOADING" => format!("Redis is loading its dataset into memory: {message}"),
        "BUSY" => format!("Redis is busy running a script: {message}"),
        "MASTERDOWN" => format!("the replica has lost its master: {message}"),
        "DENIED" => format!(
            "Redis refuses this client (protected mode): set a password on the server \
             and in auth, or bind it to this interface: {message}"
        ),
        _ => format!("PING answered {message}"),
    }
}

impl Connector for Redis {
    const NAME: &'static str = "Redis";
    const TYPE: ConnectorType = ConnectorType::Database;
    const DESCRIPTION: &'static str = "Redis server (PING over RESP)";

    fn new(config: &Config) -> Result<Self, String> {
        Ok(Redis {
            target: Target::new("redis", config),
        })
    }

    fn health_check(&mut self) -> Result<HealthReport, Error> {
        let mut session = self.target.open()?;
        if let Some(credential) = credentials::get() {
            let user = credential
                .username
                .as_deref()
                .filter(|u| !u.is_empty() && *u != "default");
            let secret = credential.secret.as_bytes();
            let args: Vec<&[u8]> = match user {
                Some(user) => vec![b"AUTH", user.as_bytes(), secret],
                None => vec![b"AUTH", secret],
            };
            match call(&mut session, &args, "AUTH")? {
                Reply::Simple(_) => {}
                Reply::Error(e) if e.starts_with(b"DENIED") => {
                    return Err(session.error(refused(&e)));
                }
                Reply::Error(e) => {
                    let message = text(&e, 300);
                    let message = message.trim_end_matches('.');
                    let hint = if message.contains("without any password configured") {
                        "; the server has no password, so remove auth from the entry"
                    } else {
                        "; check auth's username and password"
                    };
                    return Err(
                        session.error(format!("Redis refused the credentials: {message}{hint}"))
                    );
                }
                other => return Err(unexpected(&session, "AUTH", &other)),
            }
        }
        let sent = std::time::Instant::now();
        match call(&mut session, &[b"PING"], "PING")? {
            Reply::Simple(pong) if pong == b"PONG" => {}
            Reply::Error(e) => return Err(session.error(refused(&e))),
            other => return Err(unexpected(&session, "PING", &other)),
        }
        let mut report = HealthReport::healthy()
            .message(format!("PING answered PONG in {}", millis(sent.elapsed())));
        // Facts, when the user may ask; a refusal changes nothing.
        if let Ok(Reply::Bulk(Some(info))) = call(&mut session, &[b"INFO", b"server"], "INFO") {
            let info = String::from_utf8_lossy(&info);
            for line in info.lines() {
                if let Some((key, value)) = line.split_once(':')
                    && ["redis_version", "redis_mode", "uptime_in_seconds"].contains(&key)
                {
                    report = report.detail(key, text(value.as_bytes(), 100));
                }
            }
        }
        session.close();
        Ok(report)
    }

    fn endpoint(&self, _config: &Config) -> String {
        self.target.label.clone()
    }
}

export_connector!(Redis);
