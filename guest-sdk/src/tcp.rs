//! One TCP conversation under the check's deadline: what the built-in TCP
//! connectors (`redis`, `postgresql`, `mysql`, `nats`, `mqtt`, `rabbitmq`,
//! `tcp`) are written with.
//!
//! Every connect, read and write is bounded by what is left of ~90% of the
//! entry's `health_check.timeout`, so a connector reports "timed out after
//! 4500ms waiting for ..." itself before the host cuts the call off. Reads
//! are capped at [`MAX_BUFFERED`] bytes, and nothing here panics on what a
//! server sends.
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::socket::{Connection, Failure};
use crate::{Config, Error, net};

/// The most a session buffers from the server.
pub const MAX_BUFFERED: usize = 64 * 1024;

/// The share of `health_check.timeout` a connector gives itself (the rest
/// is left for the host, so the connector can say what it was waiting for).
const BUDGET_PERCENT: u64 = 90;

/// Where a connector connects to, and its deadline.
#[derive(Clone)]
pub struct Target {
    /// e.g. `redis://127.0.0.1:6379`, used in every message.
    pub label: String,
    /// The entry's host.
    pub host: String,
    /// The entry's port.
    pub port: u16,
    budget: Duration,
}

impl Target {
    /// The entry's host and port, labelled with `scheme`.
    pub fn new(scheme: &str, config: &Config) -> Target {
        let host = config.host.trim_start_matches('[').trim_end_matches(']');
        let shown = if host.contains(':') {
            format!("[{host}]")
        } else {
            host.to_string()
        };
        let timeout = u64::from(config.health_check.timeout_ms);
        let timeout = if timeout == 0 { 5_000 } else { timeout };
        Target {
            label: format!("{scheme}://{shown}:{}", config.port),
            host: host.to_string(),
            port: config.port,
            budget: Duration::from_millis((timeout * BUDGET_PERCENT / 100).max(1)),
        }
    }

    /// Starts the clock of one check.
    pub fn clock(&self) -> Clock {
        let started = Instant::now();
        Clock {
            started,
            deadline: started + self.budget,
        }
    }

    /// Connects, within what is left of `clock`.
    pub fn connect(&self, clock: &Clock) -> Result<Session, Error> {
        let remaining = clock.remaining();
        if remaining < Duration::from_millis(1) {
            return Err(self.error(Failure::TimedOut.describe("connecting", clock)));
        }
        let addresses = net::resolve(&self.host, self.port).map_err(|e| {
            // The SDK says "host:port: why"; say it with the scheme.
            let text = e.to_string();
            let why = text
                .strip_prefix(&format!("{}:{}: ", self.host, self.port))
                .unwrap_or(&text);
            self.error(why)
        })?;
        let mut last = None;
        for address in addresses {
            let remaining = clock.remaining();
            if remaining < Duration::from_millis(1) {
                last = Some(Failure::TimedOut.describe("connecting", clock));
                break;
            }
            let before = Instant::now();
            match Connection::connect(SocketAddr::new(address, self.port), clock.deadline) {
                Ok(conn) => {
                    return Ok(Session {
                        conn,
                        label: self.label.clone(),
                        clock: *clock,
                        connect_time: before.elapsed(),
                        buf: Vec::new(),
                    });
                }
                Err(failure) => last = Some(failure.describe("connecting", clock)),
            }
        }
        Err(self.error(last.unwrap_or_else(|| "no address to connect to".to_string())))
    }

    /// Starts the clock of one check and connects within it; the clock is
    /// the session's [`Session::clock`].
    pub fn open(&self) -> Result<Session, Error> {
        self.connect(&self.clock())
    }

    /// `label: message`.
    pub fn error(&self, message: impl std::fmt::Display) -> Error {
        Error::new(format!("{}: {message}", self.label))
    }
}

/// The start and deadline of one check.
#[derive(Clone, Copy)]
pub struct Clock {
    started: Instant,
    deadline: Instant,
}

impl Failure {
    /// The failure as the end of a check's message; `what` is the step it
    /// interrupted, e.g. "connecting" or "sending PING". Refusals and
    /// denials read the same at every step, so they name none.
    fn describe(self, what: &str, clock: &Clock) -> String {
        match self {
            Failure::Refused => "connection refused".to_string(),
            Failure::Denied => "denied by the sandbox".to_string(),
            Failure::TimedOut => format!("timed out after {} {what}", clock.elapsed_text()),
            Failure::Reset => format!("the server reset the connection while {what}"),
            Failure::Closed => format!("the server closed the connection while {what}"),
            Failure::Other(why) => format!("{why} while {what}"),
        }
    }
}

impl Clock {
    /// Time left before the deadline (zero once passed).
    pub fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    /// Time since the check started.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// This clock with its deadline brought forward to at most `max` from
    /// now (for waits that are a courtesy, like a goodbye's answer).
    pub fn capped(self, max: Duration) -> Clock {
        Clock {
            started: self.started,
            deadline: self.deadline.min(Instant::now() + max),
        }
    }

    /// e.g. `4500ms`.
    pub fn elapsed_text(&self) -> String {
        format!("{}ms", self.started.elapsed().as_millis())
    }
}

/// What one read brought.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filled {
    /// More bytes are in the buffer.
    More,
    /// The server closed the connection (or reset it after sending bytes).
    End,
    /// Nothing arrived before the deadline.
    TimedOut,
}

/// An open connection and the bytes read from it but not yet consumed.
pub struct Session {
    conn: Connection,
    /// The target's label, e.g. `redis://127.0.0.1:6379`.
    pub label: String,
    /// The check's deadline.
    pub clock: Clock,
    /// How long the TCP connect took.
    pub connect_time: Duration,
    /// Bytes received and not yet taken.
    pub buf: Vec<u8>,
}

impl Session {
    /// `label: message`.
    pub fn error(&self, message: impl std::fmt::Display) -> Error {
        Error::new(format!("{}: {message}", self.label))
    }

    fn timed_out(&self, what: &str) -> Error {
        self.failed(Failure::TimedOut, what)
    }

    fn failed(&self, failure: Failure, what: &str) -> Error {
        self.error(failure.describe(what, &self.clock))
    }

    /// Writes all of `bytes`; `what` completes "timed out after 12ms ...",
    /// e.g. "sending PING".
    pub fn send(&mut self, bytes: &[u8], what: &str) -> Result<(), Error> {
        let remaining = self.clock.remaining();
        if remaining < Duration::from_millis(1) {
            return Err(self.timed_out(what));
        }
        self.conn
            .write_all(bytes, self.clock.deadline)
            .map_err(|failure| self.failed(failure, what))
    }

    /// Reads once more into the buffer. `Ok(false)`: the server closed the
    /// connection (end of stream). A reset after some bytes arrived counts
    /// as an end of stream too, so a caller still sees those bytes.
    pub fn fill(&mut self, what: &str) -> Result<bool, Error> {
        match self.try_fill(what)? {
            Filled::More => Ok(true),
            Filled::End => Ok(false),
            Filled::TimedOut => Err(self.timed_out(what)),
        }
    }

    /// [`Session::fill`], with a timeout as a value rather than an error.
    pub fn try_fill(&mut self, what: &str) -> Result<Filled, Error> {
        if self.buf.len() >= MAX_BUFFERED {
            return Err(self.error(format!(
                "the server sent more than {} KiB while {what}",
                MAX_BUFFERED / 1024
            )));
        }
        if self.clock.remaining() < Duration::from_millis(1) {
            return Ok(Filled::TimedOut);
        }
        let room = (MAX_BUFFERED - self.buf.len()).min(4096);
        match self.conn.read(room, self.clock.deadline) {
            Ok(Some(bytes)) => {
                self.buf.extend_from_slice(&bytes);
                Ok(Filled::More)
            }
            Ok(None) => Ok(Filled::End),
            Err(Failure::TimedOut) => Ok(Filled::TimedOut),
            Err(Failure::Reset) if !self.buf.is_empty() => Ok(Filled::End),
            Err(failure) => Err(self.failed(failure, what)),
        }
    }

    /// Reads until `done` finds a complete unit in the buffer and returns
    /// what it returned, e.g. the length of a frame. Err on timeout, on end
    /// of stream ("the server closed the connection ...") and past
    /// [`MAX_BUFFERED`].
    pub fn read_until<T>(
        &mut self,
        what: &str,
        mut done: impl FnMut(&[u8]) -> Option<T>,
    ) -> Result<T, Error> {
        loop {
            if let Some(found) = done(&self.buf) {
                return Ok(found);
            }
            if !self.fill(what)? {
                return Err(self.closed(what));
            }
        }
    }

    /// The error for an end of stream, quoting what the server did send.
    pub fn closed(&self, what: &str) -> Error {
        if self.buf.is_empty() {
            self.error(format!("the server closed the connection while {what}"))
        } else {
            self.error(format!(
                "the server closed the connection while {what}, after sending \"{}\"",
                escape(&self.buf, 120)
            ))
        }
    }

    /// Waits for at least `n` bytes.
    pub fn need(&mut self, n: usize, what: &str) -> Result<(), Error> {
        self.read_until(what, |buf| (buf.len() >= n).then_some(()))
    }

    /// The big-endian `u32` at `offset` in the buffer (a length or a code
    /// in a binary protocol), or `None` if fewer bytes are buffered.
    pub fn be_u32(&self, offset: usize) -> Option<u32> {
        let bytes = self.buf.get(offset..offset.checked_add(4)?)?;
        Some(u32::from_be_bytes(bytes.try_into().ok()?))
    }

    /// Removes and returns the first `n` buffered bytes (fewer if fewer are
    /// buffered).
    pub fn take(&mut self, n: usize) -> Vec<u8> {
        let n = n.min(self.buf.len());
        self.buf.drain(..n).collect()
    }

    /// One line, without its `\r\n` or `\n`, of at most `max` bytes.
    pub fn read_line(&mut self, max: usize, what: &str) -> Result<Vec<u8>, Error> {
        let end = self.read_until(what, |buf| match buf.iter().position(|&b| b == b'\n') {
            Some(i) => Some(Ok(i)),
            None if buf.len() > max => Some(Err(())),
            None => None,
        })?;
        let Ok(end) = end else {
            return Err(self.error(format!(
                "the server sent a line longer than {max} bytes {what}: {}",
                escape(&self.buf, 120)
            )));
        };
        let mut line = self.take(end + 1);
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        Ok(line)
    }

    /// Closes both directions, ignoring errors.
    pub fn close(self) {
        self.conn.shutdown();
    }
}

/// Server bytes as printable text: ASCII as it is, `\r`, `\n`, `\t`, other
/// bytes as `\xHH`, cut after `max` bytes with `…`.
pub fn escape(bytes: &[u8], max: usize) -> String {
    let mut out = String::new();
    for &b in bytes.iter().take(max) {
        match b {
            b'\r' => out.push_str("\\r"),
            b'\n' => out.push_str("\\n"),
            b'\t' => out.push_str("\\t"),
            b'\\' => out.push_str("\\\\"),
            b'"' => out.push_str("\\\""),
            0x20..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    if bytes.len() > max {
        out.push('…');
    }
    out
}

/// Text from a server (an error message, a version) for a message or a
/// detail: lossy UTF-8, control characters as spaces, trimmed, at most
/// `max` characters.
pub fn text(bytes: &[u8], max: usize) -> String {
    let s = String::from_utf8_lossy(bytes);
    let mut out: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(max)
        .collect();
    if s.chars().count() > max {
        out.push('…');
    }
    out.trim().to_string()
}

/// `12ms`, or `0.4ms` below a millisecond.
pub fn millis(d: Duration) -> String {
    if d < Duration::from_millis(1) {
        // Tenths, rounded, in integers: float formatting would add its code
        // and tables to every TCP connector (2.7 KB of data segment, which
        // each instance copies into its memory, and 19 KB of code).
        let tenths = (d.as_micros() + 50) / 100;
        format!("{}.{}ms", tenths / 10, tenths % 10)
    } else {
        format!("{}ms", d.as_millis())
    }
}
