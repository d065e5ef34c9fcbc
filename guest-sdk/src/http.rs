//! Outbound HTTP through the host.
//!
//! The host decides what is allowed: a URL outside the connector's allowlist
//! fails with [`ErrorKind::Denied`]. Credentials from the config are attached
//! by the host to requests bound for the connector's own endpoint.

use std::cell::{Cell, OnceCell};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::bindings::sandport::connector::http_client::{self as wit, HttpError};

/// Sends a `GET` to `url`, once. A request sent on every check is better
/// kept in the connector as a [`Request`]: the host keeps one parsed from
/// its second send on.
pub fn get(url: &str) -> Result<Response, Error> {
    Request::get(url).send()
}

/// A request being built; send it with [`Request::send`], as often as the
/// connector likes: sending does not consume it. From its second send on,
/// the host keeps it parsed, and a send hands over nothing but a handle.
#[derive(Debug, Clone)]
pub struct Request {
    /// Kept as the host wants it, so that a send lowers it as it is.
    wire: wit::Request,
    /// `"GET http://host/path"`, shared with every response and error.
    label: Arc<str>,
    prepared: Prepared,
}

/// The host's parsed copy of a request sent more than once: a request sent
/// once (`http::get`) is not worth the extra call.
#[derive(Default)]
struct Prepared {
    /// Set at the first send; at the second, the request is prepared.
    sent: Cell<bool>,
    /// Set once prepared; stays empty if the host refused (the request is
    /// then sent as it is, and the answer says why).
    handle: OnceCell<Option<wit::PreparedRequest>>,
}

impl Clone for Prepared {
    /// A clone is a request of its own, not yet sent.
    fn clone(&self) -> Self {
        Prepared::default()
    }
}

impl fmt::Debug for Prepared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let prepared = self.handle.get().is_some_and(Option::is_some);
        f.debug_struct("Prepared")
            .field("prepared", &prepared)
            .finish()
    }
}

impl Request {
    /// A request with any method (`GET`, `HEAD`, `POST`, ...).
    pub fn new(method: impl Into<String>, url: impl Into<String>) -> Self {
        let (method, url) = (method.into(), url.into());
        Request {
            label: Arc::from(format!("{method} {url}")),
            wire: wit::Request {
                method,
                url,
                headers: Vec::new(),
                body: None,
                timeout_ms: None,
            },
            prepared: Prepared::default(),
        }
    }

    /// A `GET` request.
    pub fn get(url: impl Into<String>) -> Self {
        Self::new("GET", url)
    }

    /// A `POST` request with a body.
    pub fn post(url: impl Into<String>, body: impl Into<Vec<u8>>) -> Self {
        Self::new("POST", url).body(body)
    }

    /// Adds a header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.wire_mut().headers.push((name.into(), value.into()));
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.wire_mut().body = Some(body.into());
        self
    }

    /// Sets a timeout; the host caps it at what is left of the check's deadline.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.wire_mut().timeout_ms = Some(u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX));
        self
    }

    /// The request to change: the host's copy, if any, is let go.
    fn wire_mut(&mut self) -> &mut wit::Request {
        self.prepared = Prepared::default();
        &mut self.wire
    }

    /// Sends the request through the host.
    pub fn send(&self) -> Result<Response, Error> {
        let result = match self.prepared() {
            Some(prepared) => prepared.send(),
            None => wit::send(&self.wire),
        };
        match result {
            Ok((status, held)) => Ok(Response {
                label: self.label.clone(),
                status,
                held,
                body: OnceCell::new(),
            }),
            Err(error) => Err(Error::from_wit(self.label.clone(), error)),
        }
    }

    /// The host's copy of this request, made at its second send.
    fn prepared(&self) -> Option<&wit::PreparedRequest> {
        if !self.prepared.sent.replace(true) {
            return None;
        }
        self.prepared
            .handle
            .get_or_init(|| wit::prepare(&self.wire).ok())
            .as_ref()
    }
}

/// A response. Its headers and body stay in the host until asked for
/// (most checks read only the status); they count against the connector's
/// memory limit until the response is dropped.
pub struct Response {
    label: Arc<str>,
    /// The status code.
    pub status: u16,
    held: wit::Response,
    /// The body once asked for.
    body: OnceCell<Vec<u8>>,
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Response")
            .field("request", &self.label)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

impl Response {
    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The first header with this name (case-insensitive). Each call asks
    /// the host.
    pub fn header(&self, name: &str) -> Option<String> {
        self.held.header(name)
    }

    /// Every header as `(name, value)`, in the order received; names in
    /// lower case.
    pub fn headers(&self) -> Vec<(String, String)> {
        self.held.headers()
    }

    /// The body (capped by the host), copied from the host on the first call.
    pub fn body(&self) -> &[u8] {
        self.body.get_or_init(|| self.held.body())
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(self.body()).into_owned()
    }

    /// Whether `pattern` matches somewhere in the body. The host searches
    /// its copy: the body is not copied into the connector, whose memory
    /// would keep the room it took. Err (a check fails with it) when the
    /// search gave up: the pattern needs more states on this body than the
    /// host keeps for it.
    pub fn body_matches(&self, pattern: &Pattern) -> Result<bool, crate::Error> {
        self.held
            .body_matches(&pattern.held)
            .map_err(|why| crate::Error::new(format!("/{pattern}/: {why}")))
    }

    /// `"GET http://host/path returned 503"`: the usual failure message.
    pub fn describe_status(&self) -> String {
        format!("{} returned {}", self.label, self.status)
    }

    /// The response if its status is 2xx, else an error saying what came back.
    pub fn expect_success(self) -> Result<Response, crate::Error> {
        if self.is_success() {
            Ok(self)
        } else {
            Err(crate::Error::new(self.describe_status()))
        }
    }
}

/// A regular expression compiled and kept by the host, for
/// [`Response::body_matches`]. The syntax is that of Rust's `regex` crate
/// with ASCII classes (no `\p{..}`), matched against bytes; a search takes
/// time linear in the body. Keep one in the connector rather than compiling
/// it for every check; each counts against the connector's memory limit
/// (its program and a 128 KiB cache) until dropped.
pub struct Pattern {
    source: String,
    held: wit::Pattern,
}

impl Pattern {
    /// Compiles `regex`; Err says why it cannot be used.
    pub fn new(regex: &str) -> Result<Pattern, String> {
        Ok(Pattern {
            source: regex.to_string(),
            held: wit::Pattern::compile(regex)?,
        })
    }

    /// A pattern that matches `text` itself (every character literal).
    pub fn literal(text: &str) -> Result<Pattern, String> {
        let mut regex = String::with_capacity(text.len() + 8);
        for c in text.chars() {
            if "\\.+*?()|[]{}^$#&-~".contains(c) {
                regex.push('\\');
            }
            regex.push(c);
        }
        Ok(Pattern {
            source: text.to_string(),
            held: wit::Pattern::compile(&regex)?,
        })
    }

    /// What it was made from: the regex, or the literal text.
    pub fn as_str(&self) -> &str {
        &self.source
    }
}

impl fmt::Debug for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Pattern").field(&self.source).finish()
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl From<Response> for crate::HealthReport {
    /// A healthy report saying what answered.
    fn from(response: Response) -> Self {
        crate::HealthReport::healthy().message(response.describe_status())
    }
}

/// What went wrong with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The URL is outside the connector's allowlist.
    Denied,
    /// The URL or a header could not be parsed.
    InvalidUrl,
    /// No answer in time.
    Timeout,
    /// The connection could not be made.
    Connect,
    /// The TLS handshake failed.
    Tls,
    /// The body is larger than the host allows.
    TooLarge,
    /// Anything else.
    Other,
}

/// A failed request: `"GET http://127.0.0.1:9090/-/healthy: connection refused"`.
#[derive(Debug, Clone)]
pub struct Error {
    kind: ErrorKind,
    /// `"GET http://host/path"`.
    label: Arc<str>,
    message: String,
}

impl Error {
    fn from_wit(label: Arc<str>, error: HttpError) -> Self {
        let (kind, message) = match error {
            HttpError::Denied(m) => (ErrorKind::Denied, m),
            HttpError::InvalidUrl(m) => (ErrorKind::InvalidUrl, m),
            HttpError::Timeout(m) => (ErrorKind::Timeout, m),
            HttpError::Connect(m) => (ErrorKind::Connect, m),
            HttpError::Tls(m) => (ErrorKind::Tls, m),
            HttpError::TooLarge(m) => (ErrorKind::TooLarge, m),
            HttpError::Other(m) => (ErrorKind::Other, m),
        };
        Error {
            kind,
            label,
            message,
        }
    }

    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The host's message alone, e.g. `"connection refused"`.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.label, self.message)
    }
}

impl std::error::Error for Error {}

/// The status codes a check accepts, from a setting like `200-299,401`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusRanges(Vec<(u16, u16)>);

impl StatusRanges {
    /// Reads `settings.<key>` (or `default` when it is unset). The error
    /// names the setting and the part that is not a code or range.
    pub fn from_setting(config: &crate::Config, key: &str, default: &str) -> Result<Self, String> {
        let spec = config.setting(key).unwrap_or(default);
        let bad = |part: &str| {
            format!("settings.{key}: `{part}` is not a status code or range like 200-299")
        };
        let ranges = spec
            .split(',')
            .map(str::trim)
            .filter(|part| !part.is_empty())
            .map(|part| {
                let (low, high) = part.split_once('-').unwrap_or((part, part));
                let low: u16 = low.trim().parse().map_err(|_| bad(part))?;
                let high: u16 = high.trim().parse().map_err(|_| bad(part))?;
                if !(100..=599).contains(&low) || !(low..=599).contains(&high) {
                    return Err(bad(part));
                }
                Ok((low, high))
            })
            .collect::<Result<Vec<_>, String>>()?;
        if ranges.is_empty() {
            return Err(format!("settings.{key}: names no status code"));
        }
        Ok(StatusRanges(ranges))
    }

    /// Whether `status` is one of the codes.
    pub fn contains(&self, status: u16) -> bool {
        self.0.iter().any(|(lo, hi)| (*lo..=*hi).contains(&status))
    }
}

impl std::fmt::Display for StatusRanges {
    /// `200-299,401`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, (lo, hi)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            if lo == hi {
                write!(f, "{lo}")?;
            } else {
                write!(f, "{lo}-{hi}")?;
            }
        }
        Ok(())
    }
}
