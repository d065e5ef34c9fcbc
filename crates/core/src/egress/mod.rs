//! Egress: the only door from a guest to the outside world.
//!
//! Every request a guest sends is parsed by [`Egress::prepare`] (once, for
//! one it sends again and again) and goes through [`Egress::send_prepared`],
//! which
//! - checks the URL against the connector's [`EgressPolicy`] (and every
//!   redirect hop again; at most [`MAX_REDIRECTS`]),
//! - resolves names itself and connects only to addresses that pass
//!   [`ip::vet`] for the rule that admitted the host (no DNS rebinding
//!   window: reqwest is handed the vetted addresses and nothing else),
//! - attaches the connector's credentials, and only to its own endpoint,
//! - bounds the request by the timeout the guest asked for (the current
//!   call's deadline bounds it from outside: the sandbox drops the call),
//! - caps the response body,
//! - takes the entry's secret values out of the answer it hands back
//!   (`scrub`), so that a target echoing the credentials does not show
//!   them to the guest.
//!
//! Each connector gets its own [`reqwest::Client`] (its resolver carries the
//! connector's policy), so connections to its endpoint are reused within a
//! check and, for a connector checked often, from check to check; all
//! clients share one TLS configuration. The client is built at the
//! connector's first request: one that never speaks HTTP (the TCP
//! connectors) never holds one. A connector checked far apart (the
//! schedule's `KEEP_WARM_UP_TO`) lets its client, and with it its
//! connections, go after each scheduled check
//! ([`Egress::release_connections`]).

mod credentials;
mod errors;
mod request;
mod resolve;
mod scrub;
mod sigv4;

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue, Method};
use sandport_config::ConnectorConfig;
use sandport_policy::ip;
use url::Url;

use crate::budget::Budget;
use credentials::Credentials;
use errors::{classify, timed_out};
use scrub::Scrubber;

pub use errors::EgressError;
#[cfg(test)]
pub use request::HEADER_OVERHEAD;
pub use request::{Prepared, Request, Response, headers_size};
pub use resolve::{Lookup, SystemLookup};
pub use sandport_policy::{EgressPolicy, HostRule, RuleError, TcpAllowed};

pub const MAX_REDIRECTS: usize = 5;

/// What one guest call has used of its egress allowance so far.
#[derive(Debug, Default, Clone, Copy)]
pub struct CallUsage {
    pub requests: u32,
    pub bytes: u64,
}

/// What every connector's HTTP client shares: the TLS configuration and
/// the name lookup. Cheap to clone.
#[derive(Clone)]
pub struct HttpClient {
    tls: Arc<rustls::ClientConfig>,
    lookup: Arc<dyn Lookup>,
}

impl HttpClient {
    pub fn new() -> Result<Self, String> {
        Self::with_lookup(Arc::new(SystemLookup))
    }

    /// With another name lookup (tests use this to make names resolve to
    /// addresses of their choosing).
    pub fn with_lookup(lookup: Arc<dyn Lookup>) -> Result<Self, String> {
        use rustls_platform_verifier::ConfigVerifierExt;
        // A process may only install one default crypto provider; losing the
        // race to another caller is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let tls = rustls::ClientConfig::with_platform_verifier()
            .map_err(|e| format!("cannot set up TLS: {e}"))?;
        Ok(HttpClient {
            tls: Arc::new(tls),
            lookup,
        })
    }

    fn client_for(&self, policy: Arc<EgressPolicy>) -> Result<reqwest::Client, reqwest::Error> {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .user_agent(concat!("sandport/", env!("CARGO_PKG_VERSION")))
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(4)
            .dns_resolver(Arc::new(resolve::VettingResolver::new(
                policy,
                self.lookup.clone(),
            )))
            .tls_backend_preconfigured((*self.tls).clone())
            .build()
    }
}

/// One connector's view of the outside world.
#[derive(Clone)]
pub struct Egress {
    /// Built by [`Egress::client`] at the first request (~2.5 KiB a
    /// connector), dropped by [`Egress::release_connections`]; shared by the
    /// clones, so they share its connections.
    client: Arc<Mutex<Option<reqwest::Client>>>,
    /// The URLs parsed last, newest at the end: a connector sends the same
    /// few on every check (`prometheus` two), and parsing one (host, IDNA,
    /// path) was a tenth of a check's host work.
    recent_urls: Arc<std::sync::Mutex<Vec<Url>>>,
    http: HttpClient,
    tcp: Arc<TcpAllowed>,
    policy: Arc<EgressPolicy>,
    credentials: Arc<Credentials>,
    /// Only for an entry with secrets.
    scrubber: Option<Arc<Scrubber>>,
    max_response: u64,
    max_requests: u32,
    max_bytes: u64,
}

impl Egress {
    pub fn new(client: &HttpClient, config: &ConnectorConfig) -> Result<Self, RuleError> {
        let policy = Arc::new(EgressPolicy::new(
            HostRule::origin(config.scheme.as_str(), &config.host, config.port)?,
            config.sandbox.allowed_hosts.clone(),
        ));
        let tcp = TcpAllowed::seeded(&policy);
        Ok(Egress {
            client: Arc::default(),
            recent_urls: Arc::default(),
            http: client.clone(),
            tcp: Arc::new(tcp),
            policy,
            credentials: Arc::new(Credentials::from_config(config)),
            scrubber: Scrubber::from_config(config).map(Arc::new),
            max_response: config.sandbox.max_response_size,
            max_requests: config.sandbox.max_requests_per_call,
            max_bytes: config.sandbox.max_bytes_per_call,
        })
    }

    /// An egress for the host's own messages to `url` (an alert
    /// provider): the same policy a connector with that endpoint would
    /// have (its own origin, its addresses vetted the same way), no
    /// credentials, and small caps: a provider's answer is only read for
    /// its status.
    pub fn for_url(client: &HttpClient, url: &Url) -> Result<Self, RuleError> {
        let host = url.host_str().unwrap_or_default();
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let port = url.port_or_known_default().unwrap_or(443);
        let policy = Arc::new(EgressPolicy::new(
            HostRule::origin(url.scheme(), host, port)?,
            Vec::new(),
        ));
        Ok(Egress {
            client: Arc::default(),
            recent_urls: Arc::default(),
            http: client.clone(),
            tcp: Arc::new(TcpAllowed::seeded(&policy)),
            policy,
            credentials: Arc::default(),
            scrubber: None,
            max_response: 64 << 10,
            max_requests: u32::try_from(MAX_REDIRECTS + 1).unwrap_or(u32::MAX),
            max_bytes: 1 << 20,
        })
    }

    /// The connector's HTTP client, built at the first call (again after
    /// [`Egress::release_connections`]). A clone: the requests it sends keep
    /// its pool alive even if the connector's slot is emptied meanwhile.
    fn client(&self) -> Result<reqwest::Client, EgressError> {
        if let Some(client) = &*lock(&self.client) {
            return Ok(client.clone());
        }
        // Built outside the lock: it takes a while, and the lock is the
        // egress clones' (a connector's calls run one at a time anyway).
        let built = self
            .http
            .client_for(self.policy.clone())
            .map_err(|e| EgressError::Other(format!("cannot create the HTTP client: {e}")))?;
        // A concurrent first request may have won; its client is as good.
        Ok(lock(&self.client).get_or_insert(built).clone())
    }

    /// Drops the connector's client and with it the connections it pools
    /// (once no request of it is running): for a connector whose next check
    /// is too far away for a kept connection to pay (the schedule's
    /// `KEEP_WARM_UP_TO`). The next request builds a client anew.
    pub fn release_connections(&self) {
        let released = lock(&self.client).take();
        drop(released);
    }

    /// Whether the connector holds an HTTP client (and so, perhaps, pooled
    /// connections).
    #[cfg(test)]
    pub(crate) fn holds_client(&self) -> bool {
        lock(&self.client).is_some()
    }

    /// URLs kept per connector by [`Egress::parse_url`].
    const RECENT_URLS: usize = 4;

    /// `text` as a URL. Serialising a parsed URL and parsing that again
    /// gives the same URL, so a text equal to a kept URL's serialisation is
    /// that URL.
    fn parse_url(&self, text: &str) -> Result<Url, EgressError> {
        let recent = || {
            self.recent_urls
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        };
        if let Some(url) = recent().iter().rev().find(|url| url.as_str() == text) {
            return Ok(url.clone());
        }
        let url =
            Url::parse(text).map_err(|e| EgressError::InvalidUrl(format!("`{text}`: {e}")))?;
        let mut recent = recent();
        // Another spelling of a kept URL replaces it.
        recent.retain(|kept| kept != &url);
        if recent.len() == Self::RECENT_URLS {
            recent.remove(0);
        }
        recent.push(url.clone());
        Ok(url)
    }

    /// The addresses the guest may open TCP connections to.
    pub fn tcp_allowed(&self) -> Arc<TcpAllowed> {
        self.tcp.clone()
    }

    /// Resolves `host` for a TCP connection to `port`: only if the policy
    /// opens `host:port` to TCP, and only the addresses that pass
    /// [`ip::vet`]. They are remembered as allowed for wasi:sockets.
    pub async fn resolve_tcp(&self, host: &str, port: u16) -> Result<Vec<IpAddr>, String> {
        let host = host.trim().trim_end_matches('.').to_ascii_lowercase();
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let (key, literal) = match bare.parse::<IpAddr>() {
            Ok(address) => {
                let canonical = ip::canonical(address);
                let key = match canonical {
                    IpAddr::V4(v4) => v4.to_string(),
                    IpAddr::V6(v6) => format!("[{v6}]"),
                };
                (key, Some(canonical))
            }
            Err(_) => (host.clone(), None),
        };
        let Some(grant) = self.policy.tcp_grant(&key, port) else {
            return Err(format!(
                "denied: {host}:{port} is not open to TCP for this connector (its own endpoint and tcp:// rules in sandbox.allowed_hosts are)"
            ));
        };
        let candidates = match literal {
            Some(address) => vec![address],
            None => self
                .http
                .lookup
                .lookup(host.clone())
                .await
                .map_err(|e| format!("cannot resolve {host}: {e}"))?,
        };
        let mut allowed = Vec::new();
        let mut refused = Vec::new();
        for address in candidates {
            match ip::vet(address, grant) {
                Ok(()) => allowed.push(ip::canonical(address)),
                Err(why) => refused.push(why),
            }
        }
        if allowed.is_empty() {
            return Err(format!("denied: {host} resolves to {}", refused.join("; ")));
        }
        for address in &allowed {
            if !self.tcp.insert(SocketAddr::new(*address, port)) {
                return Err(format!(
                    "denied: this connector already holds {} TCP destinations",
                    TcpAllowed::MAX
                ));
            }
        }
        Ok(allowed)
    }

    /// Parses `request` for [`Egress::send_prepared`], which may send it
    /// as often as the guest likes. Whether the policy admits the URL is
    /// decided at each send, not here.
    pub fn prepare(&self, request: Request) -> Result<Prepared, EgressError> {
        let name = request.method.trim();
        let method = if name.bytes().any(|b| b.is_ascii_lowercase()) {
            Method::from_bytes(name.to_ascii_uppercase().as_bytes())
        } else {
            Method::from_bytes(name.as_bytes())
        };
        let method = method.map_err(|_| {
            EgressError::InvalidUrl(format!("`{}` is not an HTTP method", request.method))
        })?;
        let url = self.parse_url(&request.url)?;
        let mut headers = HeaderMap::new();
        for (name, value) in &request.headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| EgressError::InvalidUrl(format!("`{name}` is not a header name")))?;
            if name == http::header::HOST {
                return Err(EgressError::Denied(
                    "denied: the Host header is set by the host from the URL".into(),
                ));
            }
            let value = HeaderValue::from_str(value).map_err(|_| {
                EgressError::InvalidUrl(format!("the value of header `{name}` is not valid"))
            })?;
            headers.append(name, value);
        }
        // A POST, PUT or PATCH without a body says so, as curl does: some
        // servers answer 411 Length Required otherwise, and hyper leaves
        // the header out of an empty body.
        if matches!(method, Method::POST | Method::PUT | Method::PATCH)
            && request.body.as_ref().is_none_or(Vec::is_empty)
            && !headers.contains_key(http::header::CONTENT_LENGTH)
        {
            headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from_static("0"));
        }
        Ok(Prepared {
            method,
            url,
            headers,
            body: request.body.map(bytes::Bytes::from),
            timeout: request.timeout,
        })
    }

    /// Sends `request`, giving up at the timeout the guest asked for if it
    /// ends before `budget`. The budget itself is the caller's to enforce:
    /// the sandbox drops the whole guest call, this request included, when
    /// the call's deadline passes. (A timer of its own here would cost every
    /// check a timer registration and never fire first; the call's deadline
    /// is armed before the guest runs.)
    pub(crate) async fn send_prepared(
        &self,
        request: &Prepared,
        budget: Budget,
        usage: &mut CallUsage,
    ) -> Result<Response, EgressError> {
        // Messages name the limit that applies: the guest's own timeout if
        // it is the shorter, else the whole call's.
        let result = match request.timeout {
            Some(asked) if asked < budget.left() => {
                tokio::time::timeout(asked, self.send_unbounded(request, asked, usage))
                    .await
                    .unwrap_or_else(|_| Err(timed_out(asked)))
            }
            _ => self.send_unbounded(request, budget.limit, usage).await,
        };
        match &self.scrubber {
            None => result,
            Some(scrubber) => scrub(scrubber, result),
        }
    }

    /// [`Egress::send_prepared`] without a timer; `limit` is the time limit
    /// that applies, for messages.
    async fn send_unbounded(
        &self,
        first: &Prepared,
        limit: Duration,
        usage: &mut CallUsage,
    ) -> Result<Response, EgressError> {
        // Made only when a response redirects.
        let mut redirected: Option<Prepared> = None;
        for _hop in 0..=MAX_REDIRECTS {
            let request = redirected.as_ref().unwrap_or(first);
            let url = &request.url;
            let Some(grant) = self.policy.grant_for_url(url) else {
                return Err(EgressError::Denied(format!(
                    "denied: {url} is outside this connector's allowlist ({})",
                    self.policy.describe()
                )));
            };
            // Names are vetted by the resolver; IP literals never reach it.
            let literal = match url.host() {
                Some(url::Host::Ipv4(v4)) => Some(std::net::IpAddr::V4(v4)),
                Some(url::Host::Ipv6(v6)) => Some(std::net::IpAddr::V6(v6)),
                _ => None,
            };
            if let Some(address) = literal
                && let Err(why) = ip::vet(address, grant)
            {
                return Err(EgressError::Denied(format!("denied: {url}: {why}")));
            }
            if usage.requests >= self.max_requests {
                return Err(EgressError::Other(format!(
                    "request limit reached: at most {} requests per call (sandbox.max_requests_per_call)",
                    self.max_requests
                )));
            }
            let client = self.client()?;
            usage.requests += 1;
            let mut builder = client
                .request(request.method.clone(), url.clone())
                .headers(request.headers.clone());
            let own = self.policy.is_own(url);
            if own {
                for (name, value) in &self.credentials.headers {
                    builder = builder.header(name, value);
                }
            }
            if let Some(body) = &request.body {
                builder = builder.body(body.clone());
            }
            let mut outgoing = builder.build().map_err(|e| classify(e, limit))?;
            if own && let Some(signer) = &self.credentials.sigv4 {
                signer
                    .sign(&mut outgoing, std::time::SystemTime::now())
                    .map_err(EgressError::Other)?;
            }
            // A child of the check's span when tracing is on; nothing
            // otherwise. Headers are never recorded.
            let span = tracing::debug_span!(
                "http request",
                http.request.method = %request.method,
                url.full = tracing::field::Empty,
                http.response.status_code = tracing::field::Empty,
            );
            if !span.is_disabled() {
                span.record("url.full", tracing::field::display(shown(url)));
            }
            let response = tracing::Instrument::instrument(client.execute(outgoing), span.clone())
                .await
                .map_err(|e| classify(e, limit))?;
            let status = response.status();
            span.record("http.response.status_code", status.as_u16());
            if status.is_redirection()
                && let Some(location) = response.headers().get(http::header::LOCATION)
            {
                let location = location.to_str().map_err(|_| {
                    EgressError::Other(format!("{url} redirected to an unreadable location"))
                })?;
                let next = url.join(location).map_err(|e| {
                    EgressError::Other(format!("{url} redirected to `{location}`: {e}"))
                })?;
                if !self.policy.permits(&next) {
                    return Err(EgressError::Denied(format!(
                        "denied: {url} redirected to {next}, which is outside this connector's allowlist ({})",
                        self.policy.describe()
                    )));
                }
                let mut next = Prepared {
                    url: next,
                    ..request.clone()
                };
                if status == http::StatusCode::SEE_OTHER
                    || (matches!(status.as_u16(), 301 | 302) && next.method == Method::POST)
                {
                    next.method = Method::GET;
                    next.body = None;
                    next.headers.remove(http::header::CONTENT_LENGTH);
                }
                redirected = Some(next);
                continue;
            }
            return self.read(response, limit, usage).await;
        }
        Err(EgressError::Other(format!(
            "more than {MAX_REDIRECTS} redirects, last to {}",
            redirected.as_ref().unwrap_or(first).url
        )))
    }

    async fn read(
        &self,
        mut response: reqwest::Response,
        timeout: Duration,
        usage: &mut CallUsage,
    ) -> Result<Response, EgressError> {
        let status = response.status().as_u16();
        let call_left = self.max_bytes.saturating_sub(usage.bytes);
        let cap = self.max_response.min(call_left);
        let too_large = || {
            EgressError::TooLarge(if cap < self.max_response {
                format!(
                    "the responses of this call passed the {} the host allows per call (sandbox.max_bytes_per_call)",
                    sandport_config::format_size(self.max_bytes)
                )
            } else {
                format!(
                    "the response body is larger than the {} the host allows (sandbox.max_response_size)",
                    sandport_config::format_size(self.max_response)
                )
            })
        };
        if response.content_length().is_some_and(|len| len > cap) {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| classify(e, timeout))? {
            if (body.len() + chunk.len()) as u64 > cap {
                usage.bytes += body.len() as u64;
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        usage.bytes += body.len() as u64;
        Ok(Response {
            status,
            headers: std::mem::take(response.headers_mut()),
            body,
        })
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Every critical section leaves the value consistent.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// `url` as a trace shows it: no user, password, query or fragment, which
/// could carry a secret the connector was given.
fn shown(url: &Url) -> Url {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.set_query(None);
    shown.set_fragment(None);
    shown
}

/// `result` with the entry's secrets taken out of everything the guest
/// will see: the headers and body of a response, the text of an error
/// (which may quote a redirect's `Location`).
fn scrub(
    scrubber: &Scrubber,
    result: Result<Response, EgressError>,
) -> Result<Response, EgressError> {
    match result {
        Ok(mut response) => {
            scrubber.headers(&mut response.headers);
            scrubber.body(&mut response.body);
            Ok(response)
        }
        Err(error) => Err(match error {
            EgressError::Denied(m) => EgressError::Denied(scrubber.text(m)),
            EgressError::InvalidUrl(m) => EgressError::InvalidUrl(scrubber.text(m)),
            EgressError::Timeout(m) => EgressError::Timeout(scrubber.text(m)),
            EgressError::Connect(m) => EgressError::Connect(scrubber.text(m)),
            EgressError::Tls(m) => EgressError::Tls(scrubber.text(m)),
            EgressError::TooLarge(m) => EgressError::TooLarge(scrubber.text(m)),
            EgressError::Other(m) => EgressError::Other(scrubber.text(m)),
        }),
    }
}

#[cfg(test)]
mod release_tests;
#[cfg(test)]
pub(crate) mod test_server;
#[cfg(test)]
mod tests;
