//! MQTT brokers (Mosquitto, EMQX, HiveMQ, VerneMQ, ...): an MQTT 3.1.1
//! `CONNECT` with a clean session, the broker's `CONNACK`, then
//! `DISCONNECT`.
//!
//! - healthy: `CONNACK` accepts the connection (return code 0).
//! - unhealthy: the connection fails or times out, the server is not an
//!   MQTT broker, or `CONNACK` refuses: 4 "bad username or password" and
//!   5 "not authorized" (with a hint to set `auth` when the entry has
//!   none), 1 "unacceptable protocol version", 2 "identifier rejected",
//!   3 "server unavailable".
//! - never degraded.
//!
//! Settings: `client_id` (default `sandport-<id>-<6 hex digits>`, random per
//! instance, so two Sandports never take over each other's session; set a
//! shorter one of letters and digits for brokers that keep to the 23
//! characters the specification guarantees), `username` (for `bearer`
//! auth). Credentials: `auth: {type: basic, username, password}`; `auth:
//! {type: bearer, token}` sends the token as the password, with
//! `settings.username` (default empty) as the username. Keep-alive 30 s. TLS
//! (8883) is not supported.

use sandport_sdk::tcp as session;

use std::hash::{BuildHasher, Hasher};

use sandport_sdk::{
    Config, Connector, ConnectorType, Error, HealthReport, credentials, export_connector,
};
use session::{Target, escape, millis};

struct Mqtt {
    target: Target,
    client_id: String,
    username: Option<String>,
}

/// A random number from the standard library's randomly keyed hasher
/// (seeded from `wasi:random`).
fn random() -> u64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(0x5a5a);
    hasher.finish()
}

/// Appends an MQTT UTF-8 string (two-byte length, then the bytes).
fn put_string(out: &mut Vec<u8>, s: &[u8]) {
    let len = u16::try_from(s.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&s[..usize::from(len)]);
}

fn connect_packet(client_id: &str, username: Option<&str>, password: Option<&str>) -> Vec<u8> {
    let mut flags = 0x02; // clean session
    let mut payload = Vec::new();
    put_string(&mut payload, client_id.as_bytes());
    if let Some(user) = username {
        flags |= 0x80;
        put_string(&mut payload, user.as_bytes());
    }
    if let Some(password) = password {
        flags |= 0x40;
        put_string(&mut payload, password.as_bytes());
    }
    let mut body = vec![0, 4, b'M', b'Q', b'T', b'T', 4, flags, 0, 30]; // level 4, keep-alive 30 s
    body.extend_from_slice(&payload);
    let mut packet = vec![0x10];
    // Remaining length, 7 bits at a time.
    let mut len = body.len();
    loop {
        let mut byte = (len % 128) as u8;
        len /= 128;
        if len > 0 {
            byte |= 0x80;
        }
        packet.push(byte);
        if len == 0 {
            break;
        }
    }
    packet.extend_from_slice(&body);
    packet
}

impl Connector for Mqtt {
    const NAME: &'static str = "MQTT";
    const TYPE: ConnectorType = ConnectorType::Messaging;
    const DESCRIPTION: &'static str = "MQTT broker (CONNECT and CONNACK)";

    fn new(config: &Config) -> Result<Self, String> {
        let client_id = match config.setting("client_id") {
            Some(id) if id.is_empty() || id.len() > 65_535 => {
                return Err("settings.client_id: must be 1 to 65535 bytes".into());
            }
            Some(id) => id.to_string(),
            None => {
                let id: String = config
                    .id
                    .chars()
                    .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
                    .take(40)
                    .collect();
                format!("sandport-{id}-{:06x}", random() & 0xff_ffff)
            }
        };
        Ok(Mqtt {
            target: Target::new("mqtt", config),
            client_id,
            username: config.setting("username").map(str::to_string),
        })
    }

    fn health_check(&mut self) -> Result<HealthReport, Error> {
        let credential = credentials::get();
        let (username, password) = match &credential {
            Some(c) => (
                Some(
                    c.username
                        .clone()
                        .or_else(|| self.username.clone())
                        .unwrap_or_default(),
                ),
                Some(c.secret.as_str()),
            ),
            None => (self.username.clone(), None),
        };
        let mut session = self.target.open()?;
        let sent = std::time::Instant::now();
        let packet = connect_packet(&self.client_id, username.as_deref(), password);
        session.send(&packet, "sending CONNECT")?;
        session.need(4, "waiting for CONNACK")?;
        let connack = session.take(4);
        if connack[0] != 0x20 || connack[1] != 0x02 {
            session.close();
            return Err(self.target.error(format!(
                "not an MQTT broker, or one without MQTT 3.1.1? it answered CONNECT with \"{}\"",
                escape(&connack, 40)
            )));
        }
        let code = connack[3];
        if code == 0 {
            let _ = session.send(&[0xe0, 0x00], "sending DISCONNECT");
            session.close();
            return Ok(HealthReport::healthy()
                .message(format!(
                    "CONNACK accepted the connection in {}",
                    millis(sent.elapsed())
                ))
                .detail("client_id", self.client_id.clone()));
        }
        session.close();
        let why = match code {
            1 => "unacceptable protocol version: the broker does not speak MQTT 3.1.1".to_string(),
            2 => format!(
                "identifier rejected: the broker refuses the client id {:?}; set settings.client_id to at most 23 letters and digits",
                self.client_id
            ),
            3 => "server unavailable: the broker is up but its MQTT service is not".to_string(),
            4 | 5 => {
                let what = if code == 4 {
                    "bad username or password"
                } else {
                    "not authorized"
                };
                if credential.is_some() {
                    format!("{what}; check auth's username and password")
                } else {
                    format!("{what}: the broker wants credentials; set auth (type: basic)")
                }
            }
            other => format!("return code {other}"),
        };
        Err(self
            .target
            .error(format!("the MQTT broker refused the connection ({why})")))
    }

    fn endpoint(&self, _config: &Config) -> String {
        self.target.label.clone()
    }
}

export_connector!(Mqtt);
