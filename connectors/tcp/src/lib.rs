//! A generic TCP check: connects to `host:port` and, if told to, sends
//! bytes and looks for a substring in the first answer.
//!
//! - healthy: the connection opened (and, with `expect`, the answer held the
//!   expected bytes); the message says how long the connect took.
//! - unhealthy: the connection was refused, timed out or denied by the
//!   sandbox, or the answer did not hold `expect` (the message quotes what
//!   came instead, escaped).
//! - never degraded.
//!
//! | setting | default | meaning |
//! |---|---|---|
//! | `send` | | text to send after connecting; `\r`, `\n`, `\t`, `\0`, `\\` and `\xHH` are unescaped |
//! | `send_hex` | | bytes to send, as hex (spaces allowed); instead of `send` |
//! | `expect` | | the answer must contain this (same escapes) |
//! | `expect_hex` | | the same, as hex; instead of `expect` |
//! | `read_bytes` | `1024` | how much of the answer to read at most (1 to 65536) |
//!
//! The answer is read until it holds `expect`, `read_bytes` arrived, the
//! server closed the connection or ~90% of `health_check.timeout` passed.
//! Without `expect` nothing is read. Credentials are not used.

use sandport_sdk::tcp as session;

use sandport_sdk::{Config, Connector, ConnectorType, Error, HealthReport, export_connector};
use session::{Filled, MAX_BUFFERED, Target, escape, millis};

struct Tcp {
    target: Target,
    send: Option<Vec<u8>>,
    expect: Option<Vec<u8>>,
    read_bytes: usize,
}

/// Unescapes `\r`, `\n`, `\t`, `\0`, `\\` and `\xHH`.
fn unescape(key: &str, text: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        let next = bytes.get(i + 1).copied();
        let (byte, used) = match next {
            Some(b'r') => (b'\r', 2),
            Some(b'n') => (b'\n', 2),
            Some(b't') => (b'\t', 2),
            Some(b'0') => (0, 2),
            Some(b'\\') => (b'\\', 2),
            Some(b'x') => {
                let hex = text.get(i + 2..i + 4).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) if hex.len() == 2 => (b, 4),
                    _ => {
                        return Err(format!(
                            "settings.{key}: `\\x` must be followed by two hex digits"
                        ));
                    }
                }
            }
            _ => {
                return Err(format!(
                    "settings.{key}: unknown escape at byte {i}; use \\r \\n \\t \\0 \\\\ or \\xHH"
                ));
            }
        };
        out.push(byte);
        i += used;
    }
    Ok(out)
}

fn unhex(key: &str, text: &str) -> Result<Vec<u8>, String> {
    let digits: Vec<u8> = text
        .bytes()
        .filter(|b| !b.is_ascii_whitespace() && *b != b':')
        .collect();
    if !digits.len().is_multiple_of(2) {
        return Err(format!("settings.{key}: an odd number of hex digits"));
    }
    digits
        .chunks(2)
        .map(|pair| {
            std::str::from_utf8(pair)
                .ok()
                .and_then(|s| u8::from_str_radix(s, 16).ok())
                .ok_or_else(|| format!("settings.{key}: `{}` is not hex", escape(pair, 2)))
        })
        .collect()
}

/// One of `text_key` (escaped text) or `hex_key`.
fn bytes_setting(
    config: &Config,
    text_key: &str,
    hex_key: &str,
) -> Result<Option<Vec<u8>>, String> {
    let bytes = match (config.setting(text_key), config.setting(hex_key)) {
        (Some(_), Some(_)) => {
            return Err(format!(
                "settings: set `{text_key}` or `{hex_key}`, not both"
            ));
        }
        (Some(text), None) => unescape(text_key, text)?,
        (None, Some(hex)) => unhex(hex_key, hex)?,
        (None, None) => return Ok(None),
    };
    if bytes.is_empty() {
        return Err(format!("settings.{text_key}: is empty"));
    }
    Ok(Some(bytes))
}

impl Connector for Tcp {
    const NAME: &'static str = "TCP";
    const TYPE: ConnectorType = ConnectorType::Custom;
    const DESCRIPTION: &'static str = "Generic TCP port check";

    fn new(config: &Config) -> Result<Self, String> {
        if config.port == 0 {
            return Err("port: the tcp connector needs a port".into());
        }
        let read_bytes = match config.setting("read_bytes") {
            None => 1024,
            Some(text) => match text.trim().parse::<usize>() {
                Ok(n) if (1..=MAX_BUFFERED).contains(&n) => n,
                _ => {
                    return Err(format!(
                        "settings.read_bytes: `{text}` is not a number from 1 to {MAX_BUFFERED}"
                    ));
                }
            },
        };
        let expect = bytes_setting(config, "expect", "expect_hex")?;
        if let Some(expect) = &expect
            && expect.len() > read_bytes
        {
            return Err(format!(
                "settings.expect: is longer than settings.read_bytes ({read_bytes})"
            ));
        }
        Ok(Tcp {
            target: Target::new("tcp", config),
            send: bytes_setting(config, "send", "send_hex")?,
            expect,
            read_bytes,
        })
    }

    fn health_check(&mut self) -> Result<HealthReport, Error> {
        let mut session = self.target.open()?;
        let connected = format!("connected in {}", millis(session.connect_time));
        let mut report = HealthReport::healthy()
            .detail("connect_ms", session.connect_time.as_millis().to_string());
        if let Some(send) = &self.send {
            session.send(send, "sending settings.send")?;
            report = report.detail("sent_bytes", send.len().to_string());
        }
        let Some(expect) = &self.expect else {
            session.close();
            return Ok(report.message(connected));
        };
        let quoted = format!("\"{}\"", escape(expect, 80));
        let found = |buf: &[u8]| {
            buf.windows(expect.len())
                .any(|window| window == expect.as_slice())
        };
        let outcome = loop {
            if found(&session.buf) {
                break None;
            }
            if session.buf.len() >= self.read_bytes {
                break Some(format!(
                    "expected {quoted} in the first {} bytes, got \"{}\"",
                    self.read_bytes,
                    escape(&session.buf[..self.read_bytes], 200)
                ));
            }
            match session.try_fill("waiting for the answer")? {
                Filled::More => {}
                Filled::End if session.buf.is_empty() => {
                    break Some(format!(
                        "expected {quoted}, but the server closed the connection without sending anything"
                    ));
                }
                Filled::End => {
                    break Some(format!(
                        "expected {quoted}, got \"{}\" and then the connection closed",
                        escape(&session.buf, 200)
                    ));
                }
                Filled::TimedOut if session.buf.is_empty() => {
                    break Some(format!(
                        "expected {quoted}, got nothing within {}",
                        session.clock.elapsed_text()
                    ));
                }
                Filled::TimedOut => {
                    break Some(format!(
                        "expected {quoted}, got \"{}\" and nothing more within {}",
                        escape(&session.buf, 200),
                        session.clock.elapsed_text()
                    ));
                }
            }
        };
        let answer = escape(&session.buf[..session.buf.len().min(self.read_bytes)], 200);
        session.close();
        match outcome {
            Some(why) => Err(self.target.error(why)),
            None => Ok(report
                .message(format!("{connected}; the answer contains {quoted}"))
                .detail("answer", answer)),
        }
    }

    fn endpoint(&self, _config: &Config) -> String {
        self.target.label.clone()
    }
}

export_connector!(Tcp);
