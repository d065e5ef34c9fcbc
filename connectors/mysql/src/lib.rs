//! MySQL and MariaDB: the server's greeting, and a login when a user is
//! configured.
//!
//! A MySQL server speaks first: its handshake packet (protocol 10) names the
//! version. Without a user the check stops there. With a user (`auth`'s
//! username, or `settings.user`) it logs in with `mysql_native_password`
//! and says goodbye with `COM_QUIT`, which keeps the server's log clean: a
//! client that hangs up after the greeting is logged by MariaDB as
//! "Aborted connection ... closed normally without authentication", and
//! counts towards `max_connect_errors` on MySQL, which blocks a host
//! (1129) after that many in a row. A user without a password and without
//! privileges (`CREATE USER 'sandport'@'monitor-host'`) is enough.
//!
//! - healthy: the greeting arrived (and the login, if any, succeeded). Also
//!   healthy when the user's account needs an authentication plugin other
//!   than `mysql_native_password` (MySQL 8's `caching_sha2_password`, ...):
//!   the message says the login was not verified.
//! - degraded: 1040 "Too many connections" (no free connection).
//! - unhealthy: the connection fails or times out, the server is not
//!   MySQL, 1129 (this host is blocked after too many connection errors),
//!   1130 (this host may not connect), 1045 (the login was refused: wrong
//!   user or password), or any other error.
//!
//! Details: `server_version` (without the `5.5.5-` prefix MariaDB sends),
//! `protocol`, `ssl` (`supported` / `not offered`), `auth_plugin`, and
//! `user` when logging in. Settings: `user` (when `auth` has no username).
//! Credentials: `auth: {type: basic, username, password}`. TLS is not used.

use sandport_sdk::tcp as session;

use sandport_sdk::{
    Config, Connector, ConnectorType, Error, HealthReport, HealthStatus, credentials,
    export_connector,
};
use session::{Session, Target, escape, text};

const CLIENT_LONG_PASSWORD: u32 = 0x1;
const CLIENT_SSL: u32 = 0x800;
const CLIENT_PROTOCOL_41: u32 = 0x200;
const CLIENT_SECURE_CONNECTION: u32 = 0x8000;
const CLIENT_PLUGIN_AUTH: u32 = 0x8_0000;
const NATIVE: &str = "mysql_native_password";
/// The largest packet accepted before logging in.
const MAX_PACKET: usize = 16 * 1024;

struct Mysql {
    target: Target,
    user: Option<String>,
}

/// A MySQL packet: sequence id and payload.
fn read_packet(session: &mut Session, what: &str) -> Result<(u8, Vec<u8>), Error> {
    session.need(4, what)?;
    let len = usize::from(session.buf[0])
        | usize::from(session.buf[1]) << 8
        | usize::from(session.buf[2]) << 16;
    if len == 0 || len > MAX_PACKET {
        return Err(session.error(format!(
            "not a MySQL server? it sent \"{}\"",
            escape(&session.buf, 80)
        )));
    }
    let seq = session.buf[3];
    session.need(4 + len, what)?;
    let packet = session.take(4 + len);
    Ok((seq, packet[4..].to_vec()))
}

fn write_packet(session: &mut Session, seq: u8, payload: &[u8], what: &str) -> Result<(), Error> {
    let len = u32::try_from(payload.len())
        .unwrap_or(u32::MAX)
        .to_le_bytes();
    let mut packet = vec![len[0], len[1], len[2], seq];
    packet.extend_from_slice(payload);
    session.send(&packet, what)
}

/// An error packet: code and message.
fn parse_error(payload: &[u8]) -> (u16, String) {
    let code = match payload.get(1..3) {
        Some(b) => u16::from_le_bytes([b[0], b[1]]),
        None => 0,
    };
    let mut message = payload.get(3..).unwrap_or(&[]);
    if message.first() == Some(&b'#') {
        message = message.get(6..).unwrap_or(&[]);
    }
    (code, text(message, 300))
}

/// The greeting's fields this check uses.
struct Greeting {
    version: String,
    capabilities: u32,
    scramble: Vec<u8>,
    plugin: String,
}

fn cstring(bytes: &[u8]) -> (&[u8], &[u8]) {
    match bytes.iter().position(|&b| b == 0) {
        Some(end) => (&bytes[..end], &bytes[end + 1..]),
        None => (bytes, &[]),
    }
}

fn parse_greeting(payload: &[u8]) -> Option<Greeting> {
    let (version, rest) = cstring(payload.get(1..)?);
    // connection id (4), scramble part 1 (8), filler (1), capabilities (2)
    let scramble1 = rest.get(4..12)?;
    let low = rest.get(13..15)?;
    let mut capabilities = u32::from(u16::from_le_bytes([low[0], low[1]]));
    let mut scramble = scramble1.to_vec();
    let mut plugin = String::new();
    // charset (1), status (2), capabilities high (2), scramble length (1),
    // reserved (10), scramble part 2, plugin name
    if let Some(high) = rest.get(18..20) {
        capabilities |= u32::from(u16::from_le_bytes([high[0], high[1]])) << 16;
        let tail = rest.get(31..).unwrap_or(&[]);
        let scramble_len = usize::from(*rest.get(20).unwrap_or(&0));
        let part2_len = scramble_len.saturating_sub(8).max(13).min(tail.len());
        let part2 = &tail[..part2_len];
        // The second part ends with a NUL that is not part of the scramble.
        scramble.extend_from_slice(part2.strip_suffix(&[0]).unwrap_or(part2));
        if capabilities & CLIENT_PLUGIN_AUTH != 0 {
            plugin = text(cstring(&tail[part2_len..]).0, 64);
        }
    }
    Some(Greeting {
        version: text(version, 100),
        capabilities,
        scramble,
        plugin,
    })
}

/// `mysql_native_password`: SHA1(pw) XOR SHA1(scramble + SHA1(SHA1(pw))).
fn native_password(password: &str, scramble: &[u8]) -> Vec<u8> {
    if password.is_empty() {
        return Vec::new();
    }
    let stage1 = sha1(password.as_bytes());
    let stage2 = sha1(&stage1);
    let mut input = scramble.get(..20).unwrap_or(scramble).to_vec();
    input.extend_from_slice(&stage2);
    let mix = sha1(&input);
    stage1.iter().zip(mix).map(|(a, b)| a ^ b).collect()
}

/// SHA-1 (FIPS 180-4), for the password scramble only.
fn sha1(data: &[u8]) -> [u8; 20] {
    let mut h: [u32; 5] = [
        0x6745_2301,
        0xEFCD_AB89,
        0x98BA_DCFE,
        0x1032_5476,
        0xC3D2_E1F0,
    ];
    let mut message = data.to_vec();
    let bits = (data.len() as u64).wrapping_mul(8);
    message.push(0x80);
    while message.len() % 64 != 56 {
        message.push(0);
    }
    message.extend_from_slice(&bits.to_be_bytes());
    for block in message.chunks_exact(64) {
        let mut w = [0u32; 80];
        for (i, word) in block.chunks_exact(4).enumerate() {
            w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = h;
        for (i, &word) in w.iter().enumerate() {
            let (f, k) = match i {
                0..=19 => ((b & c) | (!b & d), 0x5A82_7999),
                20..=39 => (b ^ c ^ d, 0x6ED9_EBA1),
                40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1B_BCDC),
                _ => (b ^ c ^ d, 0xCA62_C1D6),
            };
            let t = a
                .rotate_left(5)
                .wrapping_add(f)
                .wrapping_add(e)
                .wrapping_add(k)
                .wrapping_add(word);
            e = d;
            d = c;
            c = b.rotate_left(30);
            b = a;
            a = t;
        }
        for (x, y) in h.iter_mut().zip([a, b, c, d, e]) {
            *x = x.wrapping_add(y);
        }
    }
    let mut out = [0u8; 20];
    for (chunk, word) in out.chunks_exact_mut(4).zip(h) {
        chunk.copy_from_slice(&word.to_be_bytes());
    }
    out
}

fn handshake_response(user: &str, auth: &[u8]) -> Vec<u8> {
    let flags =
        CLIENT_LONG_PASSWORD | CLIENT_PROTOCOL_41 | CLIENT_SECURE_CONNECTION | CLIENT_PLUGIN_AUTH;
    let mut out = flags.to_le_bytes().to_vec();
    out.extend_from_slice(&(1u32 << 24).to_le_bytes()); // max packet size
    out.push(0x21); // utf8_general_ci
    out.extend_from_slice(&[0; 23]);
    out.extend_from_slice(user.as_bytes());
    out.push(0);
    out.push(u8::try_from(auth.len()).unwrap_or(0));
    out.extend_from_slice(auth);
    out.extend_from_slice(NATIVE.as_bytes());
    out.push(0);
    out
}

/// A server error as a report or an error.
fn server_error(
    target: &Target,
    report: HealthReport,
    code: u16,
    message: &str,
) -> Result<HealthReport, Error> {
    match code {
        1040 => Ok(HealthReport {
            status: HealthStatus::Degraded,
            ..report
        }
        .message(format!(
            "MySQL has no free connection: {message} (1040); raise max_connections or find the clients holding them"
        ))),
        1129 => Err(target.error(format!(
            "MySQL blocks this host after too many connection errors: {message} (1129); run FLUSH HOSTS (mysqladmin flush-hosts) on the server, and raise max_connect_errors"
        ))),
        1130 => Err(target.error(format!(
            "MySQL does not let this host connect: {message} (1130); create the user for this host"
        ))),
        _ => Err(target.error(format!("MySQL refused the connection: {message} ({code})"))),
    }
}

impl Connector for Mysql {
    const NAME: &'static str = "MySQL";
    const TYPE: ConnectorType = ConnectorType::Database;
    const DESCRIPTION: &'static str = "MySQL or MariaDB server (greeting, optional login)";

    fn new(config: &Config) -> Result<Self, String> {
        Ok(Mysql {
            target: Target::new("mysql", config),
            user: config
                .setting("user")
                .map(str::trim)
                .filter(|u| !u.is_empty())
                .map(str::to_string),
        })
    }

    fn health_check(&mut self) -> Result<HealthReport, Error> {
        let mut session = self.target.open()?;
        let (_, payload) = read_packet(&mut session, "waiting for the greeting")?;
        let report = HealthReport::healthy();
        match payload.first() {
            Some(0xff) => {
                session.close();
                let (code, message) = parse_error(&payload);
                return server_error(&self.target, report, code, &message);
            }
            Some(10) => {}
            _ => {
                return Err(session.error(format!(
                    "not a MySQL server, or one older than 4.1: the greeting is \"{}\"",
                    escape(&payload, 80)
                )));
            }
        }
        let Some(greeting) = parse_greeting(&payload) else {
            return Err(session.error(format!(
                "not a MySQL server? the greeting is cut short: \"{}\"",
                escape(&payload, 80)
            )));
        };
        let version = greeting
            .version
            .strip_prefix("5.5.5-")
            .unwrap_or(&greeting.version)
            .to_string();
        let ssl = if greeting.capabilities & CLIENT_SSL != 0 {
            "supported"
        } else {
            "not offered"
        };
        let mut report = report
            .detail("server_version", version.clone())
            .detail("protocol", "10")
            .detail("ssl", ssl);
        if !greeting.plugin.is_empty() {
            report = report.detail("auth_plugin", greeting.plugin.clone());
        }

        let credential = credentials::get();
        let user = credential
            .as_ref()
            .and_then(|c| c.username.clone())
            .filter(|u| !u.is_empty())
            .or_else(|| self.user.clone());
        let Some(user) = user else {
            session.close();
            return Ok(report.message(format!("MySQL {version} is accepting connections")));
        };
        let password = credential.map(|c| c.secret).unwrap_or_default();
        report = report.detail("user", user.clone());

        let what = "waiting for the answer to the login";
        let auth = native_password(&password, &greeting.scramble);
        write_packet(
            &mut session,
            1,
            &handshake_response(&user, &auth),
            "sending the login",
        )?;
        // At most one switch of plugin.
        for _ in 0..2 {
            let (seq, answer) = read_packet(&mut session, what)?;
            match answer.first() {
                Some(0x00) => {
                    let _ = write_packet(&mut session, 0, &[0x01], "sending COM_QUIT");
                    session.close();
                    return Ok(report.message(format!(
                        "MySQL {version} is accepting connections; logged in as {user}"
                    )));
                }
                Some(0xff) => {
                    session.close();
                    let (code, message) = parse_error(&answer);
                    if code == 1045 {
                        let hint = if password.is_empty() {
                            "set auth (type: basic) with the user's password"
                        } else {
                            "check auth's username and password"
                        };
                        return Err(self.target.error(format!(
                            "MySQL refused the credentials: {message} (1045); {hint}"
                        )));
                    }
                    return server_error(&self.target, report, code, &message);
                }
                Some(0xfe) => {
                    let (plugin, data) = cstring(answer.get(1..).unwrap_or(&[]));
                    let plugin = text(plugin, 64);
                    if plugin != NATIVE {
                        session.close();
                        return Ok(report
                            .message(format!(
                                "MySQL {version} is accepting connections; the login was not verified: user {user} needs the {plugin} plugin, which this check does not speak"
                            ))
                            .detail("login", format!("not verified ({plugin})")));
                    }
                    let scramble = data.strip_suffix(&[0]).unwrap_or(data);
                    let auth = native_password(&password, scramble);
                    write_packet(
                        &mut session,
                        seq.wrapping_add(1),
                        &auth,
                        "sending the login",
                    )?;
                }
                _ => {
                    session.close();
                    return Ok(report
                        .message(format!(
                            "MySQL {version} is accepting connections; the login was not verified: the server asked for more than mysql_native_password"
                        ))
                        .detail("login", "not verified"));
                }
            }
        }
        session.close();
        Err(self
            .target
            .error("the server switched authentication plugins more than once"))
    }

    fn endpoint(&self, _config: &Config) -> String {
        self.target.label.clone()
    }
}

export_connector!(Mysql);
