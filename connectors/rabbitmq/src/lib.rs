//! RabbitMQ (and other AMQP 0-9-1 brokers): the AMQP handshake.
//!
//! The check sends the AMQP 0-9-1 protocol header and reads the broker's
//! `connection.start`. Without credentials it stops there. With credentials
//! it logs in (`PLAIN`), opens the virtual host (`settings.vhost`, default
//! `/`) and closes the connection properly (`connection.close`), so the
//! broker logs a normal client.
//!
//! - healthy: `connection.start` arrived (and, with credentials, the login
//!   and `connection.open` succeeded). Details from the server properties:
//!   `product`, `version`, `platform`, `cluster_name`, and `amqp` (the
//!   protocol version). Also healthy when the broker offers no `PLAIN`
//!   mechanism or asks for a challenge: the message says the login was not
//!   verified.
//! - unhealthy: the connection fails or times out, the server answers with
//!   a protocol header (it does not speak AMQP 0-9-1, e.g. an AMQP 1.0-only
//!   broker), the credentials are refused (`ACCESS_REFUSED`), the user may
//!   not open the virtual host (`NOT_ALLOWED`), or the broker closes the
//!   connection with another error.
//! - never degraded. (Memory and disk alarms are not visible over AMQP
//!   before publishing; RabbitMQ's management API would show them, and this
//!   connector does not use it.)
//!
//! Settings: `vhost` (default `/`), `username` (for `bearer` auth).
//! Credentials: `auth: {type: basic, username, password}`; `auth: {type:
//! bearer, token}` sends the token as the password (RabbitMQ's OAuth 2
//! plugin), with `settings.username` (default empty). TLS (5671) is not
//! supported.

use sandport_sdk::tcp as session;

use sandport_sdk::{
    Config, Connector, ConnectorType, Error, HealthReport, credentials, export_connector,
};
use session::{Session, Target, escape, text};

const HEADER: &[u8; 8] = b"AMQP\x00\x00\x09\x01";
const FRAME_END: u8 = 0xce;
const MAX_FRAME: usize = 60 * 1024;

struct Rabbit {
    target: Target,
    vhost: String,
    username: Option<String>,
}

/// A method frame on channel 0: class, method and arguments.
struct Method {
    class: u16,
    method: u16,
    args: Vec<u8>,
}

/// Reads frames until a method frame (heartbeats are skipped). A protocol
/// header instead of a frame is an error naming the version offered.
fn read_method(session: &mut Session, what: &str) -> Result<Method, Error> {
    for _ in 0..16 {
        session.need(7, what)?;
        if session.buf.starts_with(b"AMQP") {
            session.need(8, what).ok();
            let h = session.buf.clone();
            let offered = match h.get(4..8) {
                Some(&[0, major, minor, revision]) => format!("AMQP {major}-{minor}-{revision}"),
                Some(&[id, major, minor, revision]) => {
                    format!("AMQP {major}.{minor}.{revision} (protocol id {id})")
                }
                _ => format!("\"{}\"", escape(&h, 16)),
            };
            return Err(session.error(format!(
                "the broker does not speak AMQP 0-9-1: it answered with the protocol header of {offered}; point the entry at an AMQP 0-9-1 listener (RabbitMQ: 5672)"
            )));
        }
        let kind = session.buf[0];
        let size = session
            .be_u32(3)
            .and_then(|size| usize::try_from(size).ok())
            .unwrap_or(usize::MAX);
        if !(1..=8).contains(&kind) || size > MAX_FRAME {
            return Err(session.error(format!(
                "not an AMQP broker? it answered \"{}\"",
                escape(&session.buf, 60)
            )));
        }
        session.need(7 + size + 1, what)?;
        let frame = session.take(7 + size + 1);
        if frame[7 + size] != FRAME_END {
            return Err(session.error("a frame does not end with 0xCE: not an AMQP broker?"));
        }
        let payload = &frame[7..7 + size];
        match kind {
            1 => {
                let mut reader = Reader(payload);
                let (Some(class), Some(method)) = (reader.u16(), reader.u16()) else {
                    return Err(session.error("a method frame shorter than 4 bytes"));
                };
                return Ok(Method {
                    class,
                    method,
                    args: reader.0.to_vec(),
                });
            }
            8 => continue, // heartbeat
            _ => {
                return Err(session.error(format!(
                    "expected a method frame, got a frame of type {kind}"
                )));
            }
        }
    }
    Err(session.error("no method frame among the first 16 frames"))
}

/// Reads AMQP values from the front of a byte slice.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, tail) = (self.0.get(..n)?, self.0.get(n..)?);
        self.0 = tail;
        Some(head)
    }

    fn u8(&mut self) -> Option<u8> {
        Some(self.bytes(1)?[0])
    }

    fn u16(&mut self) -> Option<u16> {
        let b = self.bytes(2)?;
        Some(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Option<u32> {
        let b = self.bytes(4)?;
        Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn shortstr(&mut self) -> Option<&'a [u8]> {
        let n = self.u8()?;
        self.bytes(usize::from(n))
    }

    fn longstr(&mut self) -> Option<&'a [u8]> {
        let n = usize::try_from(self.u32()?).ok()?;
        self.bytes(n)
    }

    /// A field table's long-string entries; nested values are skipped.
    /// Stops (keeping what it found) at a type it does not know.
    fn table_strings(&mut self) -> Option<Vec<(String, String)>> {
        let mut table = Reader(self.longstr()?);
        let mut out = Vec::new();
        while !table.0.is_empty() {
            let Some(name) = table.shortstr() else { break };
            let Some(kind) = table.u8() else { break };
            let skip = match kind {
                b'S' => {
                    let Some(value) = table.longstr() else { break };
                    out.push((text(name, 64), text(value, 200)));
                    continue;
                }
                b'F' | b'A' | b'x' => match table.u32().and_then(|n| usize::try_from(n).ok()) {
                    Some(n) => n,
                    None => break,
                },
                b't' | b'b' | b'B' => 1,
                b's' | b'u' => 2,
                b'I' | b'i' | b'f' => 4,
                b'D' => 5,
                b'l' | b'L' | b'd' | b'T' => 8,
                b'V' => 0,
                _ => break,
            };
            if table.bytes(skip).is_none() {
                break;
            }
        }
        Some(out)
    }
}

/// Writes AMQP values.
#[derive(Default)]
struct Writer(Vec<u8>);

impl Writer {
    fn u16(mut self, v: u16) -> Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }

    fn u32(mut self, v: u32) -> Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }

    fn raw(mut self, b: &[u8]) -> Self {
        self.0.extend_from_slice(b);
        self
    }

    fn shortstr(mut self, s: &[u8]) -> Self {
        let n = s.len().min(255);
        self.0.push(n as u8);
        self.0.extend_from_slice(&s[..n]);
        self
    }

    fn longstr(self, s: &[u8]) -> Self {
        self.u32(u32::try_from(s.len()).unwrap_or(u32::MAX)).raw(s)
    }
}

fn method_frame(class: u16, method: u16, args: Writer) -> Vec<u8> {
    let payload = Writer::default().u16(class).u16(method).raw(&args.0).0;
    let mut frame = Writer::default()
        .raw(&[1])
        .u16(0)
        .u32(u32::try_from(payload.len()).unwrap_or(u32::MAX))
        .raw(&payload)
        .0;
    frame.push(FRAME_END);
    frame
}

/// connection.close's reply code and text.
fn close_reason(args: &[u8]) -> String {
    let mut r = Reader(args);
    let code = r.u16().unwrap_or(0);
    let reason = r.shortstr().map(|t| text(t, 300)).unwrap_or_default();
    format!("{reason} ({code})")
}

impl Connector for Rabbit {
    const NAME: &'static str = "RabbitMQ";
    const TYPE: ConnectorType = ConnectorType::Messaging;
    const DESCRIPTION: &'static str = "RabbitMQ broker (AMQP 0-9-1 handshake)";

    fn new(config: &Config) -> Result<Self, String> {
        let vhost = config.setting("vhost").unwrap_or("/").to_string();
        if vhost.is_empty() || vhost.len() > 255 {
            return Err("settings.vhost: must be 1 to 255 bytes".into());
        }
        Ok(Rabbit {
            target: Target::new("amqp", config),
            vhost,
            username: config.setting("username").map(str::to_string),
        })
    }

    fn health_check(&mut self) -> Result<HealthReport, Error> {
        let mut session = self.target.open()?;
        session.send(HEADER, "sending the protocol header")?;
        let start = read_method(&mut session, "waiting for connection.start")?;
        if (start.class, start.method) == (10, 50) {
            session.close();
            return Err(self.target.error(format!(
                "the broker closed the connection: {}",
                close_reason(&start.args)
            )));
        }
        if (start.class, start.method) != (10, 10) {
            session.close();
            return Err(self.target.error(format!(
                "expected connection.start, got method {}.{}",
                start.class, start.method
            )));
        }
        let mut args = Reader(&start.args);
        let (major, minor) = (args.u8().unwrap_or(0), args.u8().unwrap_or(0));
        let properties = args.table_strings().unwrap_or_default();
        let mechanisms = args.longstr().map(|m| text(m, 200)).unwrap_or_default();
        let mut report = HealthReport::healthy().detail("amqp", format!("{major}-{minor}"));
        let mut product = String::from("the broker");
        for (key, value) in &properties {
            if ["product", "version", "platform", "cluster_name"].contains(&key.as_str()) {
                report = report.detail(key.clone(), value.clone());
            }
        }
        let get = |key: &str| {
            properties
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone())
        };
        if let Some(name) = get("product") {
            product = match get("version") {
                Some(version) => format!("{name} {version}"),
                None => name,
            };
        }

        let Some(credential) = credentials::get() else {
            session.close();
            return Ok(report.message(format!(
                "{product} answered the AMQP handshake (connection.start)"
            )));
        };
        if !mechanisms.split(' ').any(|m| m == "PLAIN") {
            session.close();
            return Ok(report.message(format!(
                "{product} answered the AMQP handshake; the login was not verified: it offers {mechanisms:?}, not PLAIN"
            )));
        }
        let user = credential
            .username
            .clone()
            .or_else(|| self.username.clone())
            .unwrap_or_default();
        let mut response = vec![0];
        response.extend_from_slice(user.as_bytes());
        response.push(0);
        response.extend_from_slice(credential.secret.as_bytes());
        // Client properties: product, and the capability that makes RabbitMQ
        // say why a login failed instead of hanging up.
        let capability = Writer::default()
            .shortstr(b"authentication_failure_close")
            .raw(b"t\x01");
        let properties = Writer::default()
            .shortstr(b"product")
            .raw(b"S")
            .longstr(b"sandport")
            .shortstr(b"capabilities")
            .raw(b"F")
            .longstr(&capability.0);
        let start_ok = Writer::default()
            .longstr(&properties.0)
            .shortstr(b"PLAIN")
            .longstr(&response)
            .shortstr(b"en_US");
        session.send(
            &method_frame(10, 11, start_ok),
            "sending connection.start-ok",
        )?;
        let login_refused = |reason: String| {
            self.target.error(format!(
                "RabbitMQ refused the credentials: {reason}; check auth's username and password"
            ))
        };
        let tune = match read_method(&mut session, "waiting for the answer to the login") {
            Ok(tune) => tune,
            Err(_) if session.buf.is_empty() && session.clock.remaining().as_millis() > 0 => {
                // Brokers without authentication_failure_close hang up.
                session.close();
                return Err(login_refused("it closed the connection".into()));
            }
            Err(e) => return Err(e),
        };
        match (tune.class, tune.method) {
            (10, 30) => {}
            (10, 50) => {
                session.close();
                return Err(login_refused(close_reason(&tune.args)));
            }
            (10, 20) => {
                session.close();
                return Ok(report.message(format!(
                    "{product} answered the AMQP handshake; the login was not verified: the broker sent a challenge (connection.secure)"
                )));
            }
            (class, method) => {
                session.close();
                return Err(self.target.error(format!(
                    "expected connection.tune, got method {class}.{method}"
                )));
            }
        }
        let mut tune_args = Reader(&tune.args);
        let channel_max = tune_args.u16().unwrap_or(0);
        let frame_max = tune_args.u32().unwrap_or(0);
        let tune_ok = Writer::default().u16(channel_max).u32(frame_max).u16(0);
        let open = Writer::default()
            .shortstr(self.vhost.as_bytes())
            .shortstr(b"")
            .raw(&[0]);
        let mut out = method_frame(10, 31, tune_ok);
        out.extend_from_slice(&method_frame(10, 40, open));
        session.send(&out, "sending connection.open")?;
        let opened = read_method(&mut session, "waiting for connection.open-ok")?;
        match (opened.class, opened.method) {
            (10, 41) => {}
            (10, 50) => {
                let _ = session.send(
                    &method_frame(10, 51, Writer::default()),
                    "sending connection.close-ok",
                );
                session.close();
                return Err(self.target.error(format!(
                    "RabbitMQ does not let {user:?} open the virtual host {:?}: {}; grant the user permissions on it or set settings.vhost",
                    self.vhost,
                    close_reason(&opened.args)
                )));
            }
            (class, method) => {
                session.close();
                return Err(self.target.error(format!(
                    "expected connection.open-ok, got method {class}.{method}"
                )));
            }
        }
        // Goodbye; the broker's close-ok is waited for briefly (500 ms at
        // most), not required.
        let close = Writer::default()
            .u16(200)
            .shortstr(b"sandport health check")
            .u16(0)
            .u16(0);
        if session
            .send(&method_frame(10, 50, close), "sending connection.close")
            .is_ok()
        {
            session.clock = session.clock.capped(std::time::Duration::from_millis(500));
            let _ = read_method(&mut session, "waiting for connection.close-ok");
        }
        session.close();
        Ok(report.message(format!(
            "{product} accepted the login of {user:?} to the virtual host {:?}",
            self.vhost
        )))
    }

    fn endpoint(&self, _config: &Config) -> String {
        self.target.label.clone()
    }
}

export_connector!(Rabbit);
