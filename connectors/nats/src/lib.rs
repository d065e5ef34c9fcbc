//! NATS: the server's `INFO`, then `CONNECT` and `PING`.
//!
//! - healthy: `PING` answers `PONG` after `CONNECT` (with the entry's
//!   credentials, if any). Also healthy when `INFO` says the server requires
//!   TLS, which this check does not speak: the message says it stopped at
//!   `INFO`.
//! - unhealthy: the connection fails or times out, the server is not NATS,
//!   or it answers `-ERR`, e.g. `'Authorization Violation'` ("NATS requires
//!   authentication: set auth ..." without credentials, "NATS refused the
//!   credentials ..." with them).
//! - never degraded.
//!
//! Details from `INFO`: `server_name`, `version`, `auth_required`,
//! `jetstream`. Credentials: `auth: {type: basic, username, password}` sends
//! `user`/`pass`, `auth: {type: bearer, token}` sends `auth_token`. NKey and
//! JWT (decentralised) authentication are not supported. No settings.

use sandport_sdk::tcp as session;

use sandport_sdk::{
    Config, Connector, ConnectorType, Error, HealthReport, credentials, export_connector,
};
use session::{Target, escape, millis, text};

/// The longest line accepted (an `INFO` of a large cluster lists its URLs).
const MAX_LINE: usize = 32 * 1024;

struct Nats {
    target: Target,
}

/// A top-level value of the `INFO` object this check looks at.
#[derive(Debug, PartialEq)]
enum Value {
    Str(String),
    Bool(bool),
    Other,
}

/// The top-level members of a JSON object, strings and booleans decoded,
/// everything else skipped. `None` when it is not a JSON object.
fn parse_object(json: &[u8]) -> Option<Vec<(String, Value)>> {
    let mut p = Parser { s: json, i: 0 };
    p.ws();
    p.eat(b'{')?;
    let mut out = Vec::new();
    p.ws();
    if p.eat(b'}').is_some() {
        return Some(out);
    }
    loop {
        p.ws();
        let key = p.string()?;
        p.ws();
        p.eat(b':')?;
        p.ws();
        let value = match p.peek()? {
            b'"' => Value::Str(p.string()?),
            b't' if p.s[p.i..].starts_with(b"true") => {
                p.i += 4;
                Value::Bool(true)
            }
            b'f' if p.s[p.i..].starts_with(b"false") => {
                p.i += 5;
                Value::Bool(false)
            }
            _ => {
                p.skip_value()?;
                Value::Other
            }
        };
        out.push((key, value));
        p.ws();
        match p.peek()? {
            b',' => p.i += 1,
            b'}' => return Some(out),
            _ => return None,
        }
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn eat(&mut self, b: u8) -> Option<()> {
        (self.peek()? == b).then(|| self.i += 1)
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\r' | b'\n')) {
            self.i += 1;
        }
    }

    /// A string; escapes other than `\"` and `\\` are kept as written.
    fn string(&mut self) -> Option<String> {
        self.eat(b'"')?;
        let mut out = Vec::new();
        loop {
            let b = self.peek()?;
            self.i += 1;
            match b {
                b'"' => return Some(String::from_utf8_lossy(&out).into_owned()),
                b'\\' => {
                    let e = self.peek()?;
                    self.i += 1;
                    match e {
                        b'"' | b'\\' | b'/' => out.push(e),
                        _ => out.extend_from_slice(&[b'\\', e]),
                    }
                }
                _ => out.push(b),
            }
        }
    }

    /// Skips a number, literal, array or object.
    fn skip_value(&mut self) -> Option<()> {
        let mut depth = 0usize;
        loop {
            match self.peek()? {
                b'"' => {
                    self.string()?;
                    continue;
                }
                b'{' | b'[' => depth += 1,
                b'}' | b']' if depth == 0 => return Some(()),
                b'}' | b']' => {
                    depth -= 1;
                    if depth == 0 {
                        self.i += 1;
                        return Some(());
                    }
                }
                b',' if depth == 0 => return Some(()),
                _ => {}
            }
            self.i += 1;
        }
    }
}

/// A JSON string literal.
fn json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

impl Connector for Nats {
    const NAME: &'static str = "NATS";
    const TYPE: ConnectorType = ConnectorType::Messaging;
    const DESCRIPTION: &'static str = "NATS server (CONNECT and PING)";

    fn new(config: &Config) -> Result<Self, String> {
        Ok(Nats {
            target: Target::new("nats", config),
        })
    }

    fn health_check(&mut self) -> Result<HealthReport, Error> {
        let mut session = self.target.open()?;
        let line = session.read_line(MAX_LINE, "waiting for INFO")?;
        if line.starts_with(b"-ERR") {
            session.close();
            return Err(self
                .target
                .error(format!("NATS refused the connection: {}", text(&line, 300))));
        }
        let info = line
            .strip_prefix(b"INFO")
            .and_then(parse_object)
            .ok_or_else(|| {
                session.error(format!(
                    "not a NATS server? it greeted with \"{}\"",
                    escape(&line, 120)
                ))
            })?;
        let get = |key: &str| info.iter().find(|(k, _)| k == key).map(|(_, v)| v);
        let mut report = HealthReport::healthy();
        for key in ["server_name", "version"] {
            if let Some(Value::Str(value)) = get(key) {
                report = report.detail(key, text(value.as_bytes(), 100));
            }
        }
        let auth_required = get("auth_required") == Some(&Value::Bool(true));
        report = report.detail("auth_required", auth_required.to_string());
        if let Some(Value::Bool(jetstream)) = get("jetstream") {
            report = report.detail("jetstream", jetstream.to_string());
        }
        if get("tls_required") == Some(&Value::Bool(true)) {
            session.close();
            return Ok(report.detail("tls_required", "true").message(
                "NATS answers; it requires TLS, which this check does not speak, so it stopped at INFO",
            ));
        }

        let credential = credentials::get();
        let mut connect = format!(
            "CONNECT {{\"verbose\":false,\"pedantic\":false,\"tls_required\":false,\"name\":\"sandport\",\"lang\":\"rust\",\"version\":\"{}\",\"protocol\":1,\"echo\":false",
            env!("CARGO_PKG_VERSION")
        );
        if let Some(c) = &credential {
            match c.username.as_deref() {
                Some(user) => connect.push_str(&format!(
                    ",\"user\":{},\"pass\":{}",
                    json_string(user),
                    json_string(&c.secret)
                )),
                None => connect.push_str(&format!(",\"auth_token\":{}", json_string(&c.secret))),
            }
        }
        connect.push_str("}\r\nPING\r\n");
        let sent = std::time::Instant::now();
        session.send(connect.as_bytes(), "sending CONNECT")?;
        // The server may send +OK, PING or a new INFO before the PONG.
        for _ in 0..100 {
            let line = session.read_line(MAX_LINE, "waiting for the answer to PING")?;
            if line == b"PONG" {
                session.close();
                return Ok(
                    report.message(format!("PING answered PONG in {}", millis(sent.elapsed())))
                );
            }
            if let Some(error) = line.strip_prefix(b"-ERR") {
                session.close();
                let error = text(error, 300);
                let message = if error
                    .to_ascii_lowercase()
                    .contains("authorization violation")
                {
                    if credential.is_some() {
                        format!("NATS refused the credentials: {error}; check auth")
                    } else {
                        format!(
                            "NATS requires authentication ({error}): set auth (basic: user and password, or bearer: a token)"
                        )
                    }
                } else {
                    format!("NATS answered -ERR {error}")
                };
                return Err(self.target.error(message));
            }
            if line == b"PING" {
                session.send(b"PONG\r\n", "answering PING")?;
            } else if !(line == b"+OK" || line.starts_with(b"INFO")) {
                session.close();
                return Err(self.target.error(format!(
                    "unexpected answer to PING: \"{}\"",
                    escape(&line, 120)
                )));
            }
        }
        session.close();
        Err(self.target.error("no PONG among the first 100 lines"))
    }

    fn endpoint(&self, _config: &Config) -> String {
        self.target.label.clone()
    }
}

export_connector!(Nats);
