//! Per-instance state: everything one connector's `Store` holds, built in one
//! place, plus the host side of the imports the guest may call.

use std::sync::Arc;

use crate::budget::Budget;
use wasmtime::ResourceLimiter;
use wasmtime::component::{Resource, ResourceTable};
use wasmtime_wasi::sockets::SocketAddrUse;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::bindings::sandport::connector::{credentials, http_client, logging, network, types};
use super::offstack::Offstack;
use super::sockets::{NodeSockets, SocketHost, SocketQuota};
use super::stdio::{GuestOutput, LogLimiter, log_line};
use crate::egress::{self, CallUsage, Egress, EgressError};

pub struct GuestState {
    pub(super) connector_id: Arc<str>,
    wasi: WasiCtx,
    pub(super) table: ResourceTable,
    pub(super) limits: Limits,
    egress: Egress,
    /// The current export call's time; host calls never run past it.
    pub(super) budget: Budget,
    /// Whether the current call had a request denied by the egress policy.
    pub(super) denied: bool,
    /// The current call's egress so far.
    pub(super) usage: CallUsage,
    log_limiter: Arc<LogLimiter>,
    /// What `credentials.get` answers: set only when the entry shares them.
    credential: Option<credentials::Credential>,
    /// Where imports put work to be polled off the fiber stack.
    pub(super) offstack: Offstack,
    /// The TCP sockets it holds, against its cap and the node's budget.
    pub(super) socket_quota: SocketQuota,
}

impl GuestState {
    /// Bytes of randomness one call may ask for.
    const MAX_RANDOM_BYTES: u64 = 64 * 1024;
    /// Handles (streams, pollables, ...) a guest may hold at once.
    const MAX_RESOURCES: usize = 1024;

    pub fn new(
        config: &sandport_config::ConnectorConfig,
        egress: Egress,
        node_sockets: Arc<NodeSockets>,
    ) -> Self {
        let connector_id: Arc<str> = Arc::from(config.id.as_str());
        let memory_limit = config.sandbox.memory_limit;
        // Deny-all WASI: no preopened directories, no environment, no
        // arguments, no sockets, no name lookups. Output goes to the log.
        let log_limiter = Arc::new(LogLimiter::new());
        let tcp = egress.tcp_allowed();
        let wasi = WasiCtxBuilder::new()
            .stdout(GuestOutput::new(
                connector_id.clone(),
                "stdout",
                log_limiter.clone(),
            ))
            .stderr(GuestOutput::new(
                connector_id.clone(),
                "stderr",
                log_limiter.clone(),
            ))
            // TCP only to addresses the egress policy opened (see the
            // `network` import); no listening, no UDP.
            .allow_tcp(true)
            .socket_addr_check(move |address, usage| {
                let allowed = match usage {
                    SocketAddrUse::TcpConnect => {
                        let allowed = tcp.permits(address);
                        // A child of the check's span when tracing is on.
                        tracing::debug_span!("tcp connect", server.address = %address, allowed)
                            .in_scope(|| ());
                        allowed
                    }
                    // The implicit bind of a connect.
                    SocketAddrUse::TcpBind => address.ip().is_unspecified() && address.port() == 0,
                    _ => false,
                };
                Box::pin(async move { allowed })
            })
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            // Host-side allocation limits: what a guest can make the host
            // allocate on its behalf.
            .max_random_size(Self::MAX_RANDOM_BYTES)
            .build();
        let mut table = ResourceTable::new();
        table.set_max_capacity(Self::MAX_RESOURCES);
        GuestState {
            connector_id,
            wasi,
            table,
            limits: Limits::new(memory_limit),
            egress,
            budget: Budget::new(std::time::Duration::ZERO),
            denied: false,
            usage: CallUsage::default(),
            log_limiter,
            credential: shared_credential(config),
            offstack: Offstack::default(),
            socket_quota: SocketQuota::new(node_sockets, config.sandbox.max_sockets as usize),
        }
    }
}

impl WasiView for GuestState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl SocketHost for GuestState {
    fn socket_quota(&mut self) -> &mut SocketQuota {
        &mut self.socket_quota
    }

    fn connector_id(&self) -> &str {
        &self.connector_id
    }
}

/// Memory and table caps for one instance: the memory limit covers all its
/// linear memories together. Records a refused memory growth so that the
/// resulting trap can be reported as `out-of-memory`.
pub struct Limits {
    memory_limit: usize,
    memory_used: usize,
    /// Bytes the host keeps for the guest (responses and prepared requests
    /// it holds handles to); they count against the limit as its memory does.
    held: usize,
    pub(super) memory_refused: bool,
}

impl Limits {
    const MAX_TABLE_ELEMENTS: usize = 100_000;

    /// Bytes of linear memory the instance holds now.
    pub(super) fn memory_used(&self) -> usize {
        self.memory_used
    }

    fn new(memory_limit: u64) -> Self {
        Limits {
            memory_limit: usize::try_from(memory_limit).unwrap_or(usize::MAX),
            memory_used: 0,
            held: 0,
            memory_refused: false,
        }
    }

    /// Room a hold leaves under the limit, so that the guest can still
    /// grow its memory by a page and be told why the hold was refused (the
    /// message is lowered into its memory).
    const HOLD_RESERVE: usize = 64 * 1024;

    /// Counts `bytes` the host keeps for the guest; false, counting
    /// nothing, if they do not fit under the limit.
    fn hold(&mut self, bytes: usize) -> bool {
        let total = (self.memory_used)
            .saturating_add(self.held)
            .saturating_add(bytes)
            .saturating_add(Self::HOLD_RESERVE);
        if total > self.memory_limit {
            return false;
        }
        self.held += bytes;
        true
    }

    pub(super) fn release(&mut self, bytes: usize) {
        self.held = self.held.saturating_sub(bytes);
    }
}

impl ResourceLimiter for Limits {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let total = self
            .memory_used
            .saturating_sub(current)
            .saturating_add(desired);
        if total.saturating_add(self.held) > self.memory_limit {
            self.memory_refused = true;
            return Ok(false);
        }
        self.memory_used = total;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= Self::MAX_TABLE_ELEMENTS)
    }

    fn instances(&self) -> usize {
        32
    }

    fn tables(&self) -> usize {
        32
    }

    fn memories(&self) -> usize {
        8
    }
}

impl types::Host for GuestState {}

impl http_client::Host for GuestState {
    async fn send(
        &mut self,
        request: http_client::Request,
    ) -> wasmtime::Result<Result<(u16, Resource<HeldResponse>), http_client::HttpError>> {
        Ok(self
            .round_trip(request)
            .await?
            .and_then(|response| self.hold_response(response)))
    }

    fn prepare(
        &mut self,
        request: http_client::Request,
    ) -> wasmtime::Result<Result<Resource<PreparedRequest>, http_client::HttpError>> {
        let request = match self.parse(request) {
            Ok(request) => request,
            Err(error) => return Ok(Err(error)),
        };
        let charge = request.size();
        let held = PreparedRequest {
            request: Arc::new(request),
            charge,
        };
        Ok(self
            .hold("the prepared request", charge, held)
            .map_err(NoRoom::into_http))
    }
}

/// A whole response while the guest holds its handle (a `response`):
/// headers and body cross only when asked for.
pub struct HeldResponse {
    headers: http::HeaderMap,
    body: Vec<u8>,
    /// What it counts against the instance's memory limit.
    charge: usize,
}

impl HeldResponse {
    pub(super) fn body(&self) -> &[u8] {
        &self.body
    }
}

/// Every header of `map` as the guest sees them: names in lower case,
/// values with bytes that are not UTF-8 replaced.
fn header_list(map: &http::HeaderMap) -> Vec<(String, String)> {
    map.iter()
        .map(|(name, value)| (name.as_str().to_string(), header_text(value)))
        .collect()
}

fn header_text(value: &http::HeaderValue) -> String {
    String::from_utf8_lossy(value.as_bytes()).into_owned()
}

impl http_client::HostResponse for GuestState {
    fn header(
        &mut self,
        response: Resource<HeldResponse>,
        name: String,
    ) -> wasmtime::Result<Option<String>> {
        let held = self.table.get(&response)?;
        Ok(held.headers.get(name.as_str()).map(header_text))
    }

    fn headers(
        &mut self,
        response: Resource<HeldResponse>,
    ) -> wasmtime::Result<Vec<(String, String)>> {
        Ok(header_list(&self.table.get(&response)?.headers))
    }

    fn body(&mut self, response: Resource<HeldResponse>) -> wasmtime::Result<Vec<u8>> {
        Ok(self.table.get(&response)?.body.clone())
    }

    fn body_matches(
        &mut self,
        response: Resource<HeldResponse>,
        pattern: Resource<super::pattern::HeldPattern>,
    ) -> wasmtime::Result<Result<bool, String>> {
        GuestState::body_matches(self, &response, &pattern)
    }

    fn drop(&mut self, response: Resource<HeldResponse>) -> wasmtime::Result<()> {
        let held = self.table.delete(response)?;
        self.limits.release(held.charge);
        Ok(())
    }
}

/// Why the host cannot hold one more thing for the guest; the message
/// says what to change.
#[derive(Debug)]
pub(super) enum NoRoom {
    /// Over the instance's memory limit.
    Memory(String),
    /// Over the handles one instance may hold.
    Handles(String),
}

impl NoRoom {
    pub(super) fn into_http(self) -> http_client::HttpError {
        match self {
            NoRoom::Memory(m) => http_client::HttpError::TooLarge(m),
            NoRoom::Handles(m) => http_client::HttpError::Other(m),
        }
    }

    pub(super) fn into_message(self) -> String {
        match self {
            NoRoom::Memory(m) | NoRoom::Handles(m) => m,
        }
    }
}

impl GuestState {
    /// Puts `held` (`what`, `charge` bytes) in the table for the guest to
    /// hold, if the instance's memory limit has room for it.
    pub(super) fn hold<T: Send + 'static>(
        &mut self,
        what: &str,
        charge: usize,
        held: T,
    ) -> Result<Resource<T>, NoRoom> {
        if !self.limits.hold(charge) {
            return Err(NoRoom::Memory(format!(
                "{what} ({}) would not fit in what is left of the connector's memory (sandbox.memory_limit)",
                sandport_config::format_size(charge as u64)
            )));
        }
        self.table.push(held).map_err(|_| {
            self.limits.release(charge);
            NoRoom::Handles(format!(
                "the connector holds {} handles (responses, streams, ...) at once; drop some before sending another request",
                Self::MAX_RESOURCES
            ))
        })
    }

    /// One request through the egress policy, off the fiber stack.
    async fn round_trip(
        &mut self,
        request: http_client::Request,
    ) -> wasmtime::Result<Result<egress::Response, http_client::HttpError>> {
        match self.parse(request) {
            Ok(request) => self.send_prepared(request).await,
            Err(error) => Ok(Err(error)),
        }
    }

    /// The guest's request parsed by the egress, or why it cannot be sent.
    fn parse(
        &mut self,
        request: http_client::Request,
    ) -> Result<egress::Prepared, http_client::HttpError> {
        let request = egress::Request {
            method: request.method,
            url: request.url,
            headers: request.headers,
            body: request.body,
            timeout: request
                .timeout_ms
                .map(|ms| std::time::Duration::from_millis(u64::from(ms))),
        };
        self.egress
            .prepare(request)
            .map_err(|error| self.failed(error))
    }

    /// Sends a parsed request, owned or shared with a `prepared-request`.
    async fn send_prepared<P>(
        &mut self,
        request: P,
    ) -> wasmtime::Result<Result<egress::Response, http_client::HttpError>>
    where
        P: std::borrow::Borrow<egress::Prepared> + Send + 'static,
    {
        // Off the fiber stack: hyper and reqwest poll deep (see `offstack`).
        let egress = self.egress.clone();
        let (budget, mut usage) = (self.budget, self.usage);
        let (result, usage) = self
            .offstack
            .run(async move {
                let result = egress
                    .send_prepared(request.borrow(), budget, &mut usage)
                    .await;
                (result, usage)
            })
            .await
            .ok_or_else(|| wasmtime::Error::msg("the HTTP request was dropped"))?;
        self.usage = usage;
        Ok(result.map_err(|error| self.failed(error)))
    }

    /// Notes a failed request (a denial marks the call) and says why in the
    /// guest's terms.
    fn failed(&mut self, error: EgressError) -> http_client::HttpError {
        tracing::debug!(connector = %self.connector_id, %error, "guest HTTP request failed");
        match error {
            EgressError::Denied(m) => {
                self.denied = true;
                http_client::HttpError::Denied(m)
            }
            EgressError::InvalidUrl(m) => http_client::HttpError::InvalidUrl(m),
            EgressError::Timeout(m) => http_client::HttpError::Timeout(m),
            EgressError::Connect(m) => http_client::HttpError::Connect(m),
            EgressError::Tls(m) => http_client::HttpError::Tls(m),
            EgressError::TooLarge(m) => http_client::HttpError::TooLarge(m),
            EgressError::Other(m) => http_client::HttpError::Other(m),
        }
    }

    /// Keeps a whole response for the guest (a `response`): only its status
    /// crosses now.
    fn hold_response(
        &mut self,
        response: egress::Response,
    ) -> Result<(u16, Resource<HeldResponse>), http_client::HttpError> {
        let charge = egress::headers_size(&response.headers) + response.body.len();
        let held = HeldResponse {
            headers: response.headers,
            body: response.body,
            charge,
        };
        self.hold("the response", charge, held)
            .map(|handle| (response.status, handle))
            .map_err(NoRoom::into_http)
    }
}

/// A request the host keeps parsed while the guest holds its handle.
pub struct PreparedRequest {
    /// Shared with the sends in flight.
    request: Arc<egress::Prepared>,
    /// What it counts against the instance's memory limit.
    charge: usize,
}

impl http_client::HostPreparedRequest for GuestState {
    async fn send(
        &mut self,
        request: Resource<PreparedRequest>,
    ) -> wasmtime::Result<Result<(u16, Resource<HeldResponse>), http_client::HttpError>> {
        let prepared = self.table.get(&request)?.request.clone();
        Ok(self
            .send_prepared(prepared)
            .await?
            .and_then(|response| self.hold_response(response)))
    }

    fn drop(&mut self, request: Resource<PreparedRequest>) -> wasmtime::Result<()> {
        let held = self.table.delete(request)?;
        self.limits.release(held.charge);
        Ok(())
    }
}

impl network::Host for GuestState {
    async fn resolve(
        &mut self,
        host: String,
        port: u16,
    ) -> wasmtime::Result<Result<Vec<String>, String>> {
        let result = self.egress.resolve_tcp(&host, port).await;
        if let Err(why) = &result
            && why.starts_with("denied")
        {
            self.denied = true;
        }
        Ok(result.map(|addresses| addresses.iter().map(ToString::to_string).collect()))
    }
}

impl credentials::Host for GuestState {
    fn get(&mut self) -> wasmtime::Result<Option<credentials::Credential>> {
        Ok(self.credential.clone())
    }
}

/// The entry's credentials as the guest may see them, if it may.
fn shared_credential(config: &sandport_config::ConnectorConfig) -> Option<credentials::Credential> {
    use sandport_config::{Auth, ComponentRef};
    let builtin_shares = matches!(&config.component, ComponentRef::Builtin(name)
        if sandport_builtins::shares_credentials(name));
    if !(config.auth.share_with_connector || builtin_shares) {
        return None;
    }
    let (username, secret) = match &config.auth.auth {
        Auth::None => return None,
        Auth::Basic { username, password } => (Some(username.clone()), password),
        Auth::Bearer { token } => (None, token),
        Auth::ApiKey { key } => (None, key),
        // Signing needs the host's clock and the request; no guest needs it.
        Auth::AwsSigV4 { .. } => return None,
    };
    Some(credentials::Credential {
        username,
        secret: secret.expose().to_string(),
    })
}

impl logging::Host for GuestState {
    fn log(&mut self, level: logging::Level, message: String) -> wasmtime::Result<()> {
        let level = match level {
            logging::Level::Trace => tracing::Level::TRACE,
            logging::Level::Debug => tracing::Level::DEBUG,
            logging::Level::Info => tracing::Level::INFO,
            logging::Level::Warn => tracing::Level::WARN,
            logging::Level::Error => tracing::Level::ERROR,
        };
        log_line(
            &self.log_limiter,
            &self.connector_id,
            level,
            "log",
            &message,
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_bytes_and_linear_memory_share_one_limit() {
        let mut limits = Limits::new(1 << 20);
        assert!(limits.memory_growing(0, 512 * 1024, None).expect("asks"));
        // 512 KiB used; a hold must leave a page for the guest.
        assert!(!limits.hold(512 * 1024 - Limits::HOLD_RESERVE + 1));
        assert!(limits.hold(256 * 1024));
        // Growing into what the hold took is refused, and recorded.
        assert!(
            !limits
                .memory_growing(512 * 1024, 900 * 1024, None)
                .expect("asks")
        );
        assert!(limits.memory_refused);
        limits.release(256 * 1024);
        assert!(
            limits
                .memory_growing(512 * 1024, 900 * 1024, None)
                .expect("asks")
        );
        assert_eq!(limits.memory_used(), 900 * 1024);
    }

    #[test]
    fn a_header_reaches_the_guest_with_a_lower_case_name_and_text_for_bad_bytes() {
        let name = http::HeaderName::from_static("x-fat");
        let value = http::HeaderValue::from_bytes(b"caf\xe9").expect("a header value");
        let mut map = http::HeaderMap::new();
        map.insert(name, value);
        assert_eq!(
            header_list(&map),
            [("x-fat".to_string(), "caf\u{fffd}".to_string())]
        );
        assert_eq!(egress::headers_size(&map), 5 + 4 + egress::HEADER_OVERHEAD);
    }
}
