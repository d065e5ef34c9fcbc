//! Test support: HTTP servers on loopback that impersonate the health
//! endpoints of real services, and helpers to build connector configs.
#![allow(
    clippy::disallowed_methods,
    reason = "test servers read their own pipes, logs and fixtures"
)]

pub mod servers;
pub mod soak;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use sandport_config::ConnectorConfig;

/// Path of the misbehaving test guest, built by `build.rs`.
pub const HOSTILE_WASM: &str = env!("SANDPORT_HOSTILE_WASM");

/// What a route answers.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub body: String,
    pub delay: Duration,
    pub headers: Vec<(String, String)>,
}

impl Reply {
    pub fn ok(body: impl Into<String>) -> Self {
        Reply::status(200, body)
    }

    pub fn status(status: u16, body: impl Into<String>) -> Self {
        Reply {
            status,
            body: body.into(),
            delay: Duration::ZERO,
            headers: Vec::new(),
        }
    }

    pub fn slow(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// A request the server received.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub headers: HeaderMap,
}

#[derive(Default)]
struct Shared {
    routes: HashMap<String, Reply>,
    seen: Vec<Seen>,
    /// Off for long runs: every recorded request keeps the connection's
    /// read buffer alive (its headers are slices of it).
    forget: bool,
}

/// An HTTP server on 127.0.0.1 with a port of its own. Unknown paths answer
/// 404. Stops when dropped.
pub struct FakeServer {
    pub addr: SocketAddr,
    shared: Arc<Mutex<Shared>>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeServer {
    pub async fn start(routes: &[(&str, Reply)]) -> FakeServer {
        let shared = Arc::new(Mutex::new(Shared {
            routes: routes
                .iter()
                .map(|(p, r)| (p.to_string(), r.clone()))
                .collect(),
            seen: Vec::new(),
            forget: false,
        }));
        let app = Router::new().fallback(answer).with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let addr = listener.local_addr().expect("local address");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeServer { addr, shared, task }
    }

    /// A Prometheus that is healthy and ready.
    pub async fn prometheus() -> FakeServer {
        FakeServer::start(&[
            ("/-/healthy", Reply::ok("Prometheus Server is Healthy.\n")),
            ("/-/ready", Reply::ok("Prometheus Server is Ready.\n")),
        ])
        .await
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Changes what `path` answers.
    pub fn set(&self, path: &str, reply: Reply) {
        self.lock().routes.insert(path.to_string(), reply);
    }

    /// Records no more requests ([`FakeServer::seen`] stays as it is): for
    /// a server that answers for a long time, such as the soak's.
    pub fn forget_requests(&self) {
        self.lock().forget = true;
    }

    /// Requests received so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.lock().seen.clone()
    }

    pub fn hits(&self, path: &str) -> usize {
        self.lock().seen.iter().filter(|s| s.path == path).count()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.lock().expect("test server state")
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn answer(State(shared): State<Arc<Mutex<Shared>>>, request: Request) -> Response {
    let path = request.uri().path().to_string();
    let reply = {
        let mut shared = shared.lock().expect("test server state");
        if !shared.forget {
            shared.seen.push(Seen {
                method: request.method().to_string(),
                path: path.clone(),
                headers: request.headers().clone(),
            });
        }
        shared.routes.get(&path).cloned()
    };
    let reply = reply.unwrap_or_else(|| Reply::status(404, "not found"));
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let mut builder = Response::builder()
        .status(StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR));
    for (name, value) in &reply.headers {
        builder = builder.header(name, value);
    }
    builder
        .body(Body::from(reply.body))
        .unwrap_or_else(|_| Response::new(Body::empty()))
}

/// A port on 127.0.0.1 with nothing listening on it.
pub fn closed_port() -> u16 {
    closed_port_on(std::net::Ipv4Addr::LOCALHOST.into())
}

/// A port on `ip` with nothing listening on it, held for the rest of the
/// test process (see [`bind_without_listening`]).
pub fn closed_port_on(ip: std::net::IpAddr) -> u16 {
    static HELD: Mutex<Vec<tokio::net::TcpSocket>> = Mutex::new(Vec::new());
    let socket = bind_without_listening((ip, 0).into(), false).expect("bind a loopback port");
    let port = socket.local_addr().expect("local address").port();
    HELD.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(socket);
    port
}

/// A socket bound to `addr` that never listens: connections to its port are
/// refused, and while it is held no bind to port 0 is given the number. A
/// port that was only learnt and released could be handed to the next
/// server a parallel test starts, and a check meant to be refused would
/// reach that server instead. `reuse_address` lets the bind past an earlier
/// owner's connections in TIME_WAIT.
pub(crate) fn bind_without_listening(
    addr: SocketAddr,
    reuse_address: bool,
) -> std::io::Result<tokio::net::TcpSocket> {
    let socket = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4(),
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6(),
    }?;
    socket.set_reuseaddr(reuse_address)?;
    socket.bind(addr)?;
    Ok(socket)
}

/// The value of a snapshot's detail, if it has one by that key.
pub fn detail<'a>(snapshot: &'a sandport_core::HealthSnapshot, key: &str) -> Option<&'a str> {
    snapshot
        .details
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// Parses one config entry written in YAML, panicking with the problems.
pub fn entry(yaml: &str) -> ConnectorConfig {
    sandport_config::parse_entry(yaml, Path::new("."), sandport_builtins::catalog()).unwrap_or_else(
        |problems| {
            let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
            panic!("bad test config:\n{}", text.join("\n"))
        },
    )
}

/// Parses a whole config file written in YAML (entries with problems are
/// left out and listed in `problems`, as the service loads them).
pub fn config(yaml: &str) -> sandport_config::Loaded {
    sandport_config::parse(yaml, "test", Path::new("."), sandport_builtins::catalog())
        .unwrap_or_else(|e| panic!("bad test config file: {e}"))
}

/// A runtime without the scheduler: tests call checks themselves.
pub fn runtime() -> sandport_core::Runtime {
    sandport_core::Runtime::new(sandport_core::RuntimeOptions {
        schedule: false,
        cache_dir: None,
        ..Default::default()
    })
    .expect("runtime starts")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, TcpListener, TcpStream};

    fn assert_held_and_refused(ip: IpAddr) {
        let port = closed_port_on(ip);
        // std's listener asks for SO_REUSEADDR, so this bind succeeds on a
        // port that was only learnt and released.
        let taken = TcpListener::bind((ip, port));
        assert!(
            taken.is_err(),
            "{ip} port {port} could be bound by another server"
        );
        let refused = TcpStream::connect((ip, port)).map(drop);
        assert_eq!(
            refused.map_err(|e| e.kind()),
            Err(std::io::ErrorKind::ConnectionRefused)
        );
    }

    #[test]
    fn a_closed_port_stays_refused_and_cannot_be_taken_by_another_server() {
        assert_held_and_refused(Ipv4Addr::LOCALHOST.into());
        if TcpListener::bind((Ipv6Addr::LOCALHOST, 0)).is_ok() {
            assert_held_and_refused(Ipv6Addr::LOCALHOST.into());
        }
    }
}
