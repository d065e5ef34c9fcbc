//! One TCP connection over `wasi:sockets`, every wait bounded by a deadline:
//! the transport under [`crate::tcp::Session`].
//!
//! Why not `std::net::TcpStream`: on wasm32-wasip2 std reaches the sockets
//! through wasi-libc, whose socket layer imports all of `wasi:sockets`, UDP
//! included (78 imports for the `redis` connector against 20 for an HTTP
//! one), and the host spends memory on every import of every instance: an
//! idle TCP connector held 53–57 KiB against 36 KiB for `prometheus`.
//! Calling the few functions a TCP client needs directly keeps the rest
//! out of the component (45 imports, 45–47 KiB). (`sandport_sdk::net::connect` still hands authors a std
//! `TcpStream`.)

use std::net::SocketAddr;
use std::time::Instant;

use wasip2::clocks::monotonic_clock;
use wasip2::io::poll::{self, Pollable};
use wasip2::io::streams::{InputStream, OutputStream, StreamError};
use wasip2::sockets::instance_network;
use wasip2::sockets::network::{
    ErrorCode, IpAddressFamily, IpSocketAddress, Ipv4SocketAddress, Ipv6SocketAddress,
};
use wasip2::sockets::tcp::{ShutdownType, TcpSocket};
use wasip2::sockets::tcp_create_socket;

/// Why an operation failed, in the words a message needs.
#[derive(Debug)]
pub(crate) enum Failure {
    Refused,
    Denied,
    TimedOut,
    Reset,
    Closed,
    Other(String),
}

impl Failure {
    fn from_code(code: ErrorCode) -> Failure {
        match code {
            ErrorCode::ConnectionRefused => Failure::Refused,
            ErrorCode::AccessDenied => Failure::Denied,
            ErrorCode::Timeout => Failure::TimedOut,
            ErrorCode::ConnectionReset => Failure::Reset,
            ErrorCode::ConnectionAborted => Failure::Closed,
            other => Failure::Other(other.name().replace('-', " ")),
        }
    }

    fn from_stream(error: StreamError) -> Failure {
        match error {
            StreamError::Closed => Failure::Closed,
            // The error's code needs wasi:sockets' unstable
            // `network-error-code`; its text names the kind.
            StreamError::LastOperationFailed(e) => {
                let text = e.to_debug_string();
                if text.to_ascii_lowercase().contains("reset") {
                    Failure::Reset
                } else {
                    Failure::Other(text)
                }
            }
        }
    }
}

/// An open connection. Fields drop in order: the streams are children of
/// the socket and must go first.
pub(crate) struct Connection {
    input: InputStream,
    output: OutputStream,
    socket: TcpSocket,
}

impl Connection {
    /// Connects to `address`, giving up at `deadline`.
    pub(crate) fn connect(address: SocketAddr, deadline: Instant) -> Result<Connection, Failure> {
        let family = match address {
            SocketAddr::V4(_) => IpAddressFamily::Ipv4,
            SocketAddr::V6(_) => IpAddressFamily::Ipv6,
        };
        let socket = tcp_create_socket::create_tcp_socket(family).map_err(Failure::from_code)?;
        let network = instance_network::instance_network();
        socket
            .start_connect(&network, remote(address))
            .map_err(Failure::from_code)?;
        let connected = socket.subscribe();
        let (input, output) = loop {
            match socket.finish_connect() {
                Ok(streams) => break streams,
                Err(ErrorCode::WouldBlock) => {
                    if !wait(&connected, deadline) {
                        return Err(Failure::TimedOut);
                    }
                }
                Err(code) => return Err(Failure::from_code(code)),
            }
        };
        drop(connected);
        Ok(Connection {
            input,
            output,
            socket,
        })
    }

    /// Writes all of `bytes` and flushes them.
    pub(crate) fn write_all(&self, mut bytes: &[u8], deadline: Instant) -> Result<(), Failure> {
        let writable = self.output.subscribe();
        while !bytes.is_empty() {
            let room = self.output.check_write().map_err(Failure::from_stream)?;
            if room == 0 {
                if !wait(&writable, deadline) {
                    return Err(Failure::TimedOut);
                }
                continue;
            }
            let n = usize::try_from(room).map_or(bytes.len(), |room| room.min(bytes.len()));
            self.output
                .write(&bytes[..n])
                .map_err(Failure::from_stream)?;
            bytes = &bytes[n..];
        }
        self.output.flush().map_err(Failure::from_stream)?;
        // The flush is done once the stream takes writes again.
        while self.output.check_write().map_err(Failure::from_stream)? == 0 {
            if !wait(&writable, deadline) {
                return Err(Failure::TimedOut);
            }
        }
        Ok(())
    }

    /// Up to `max` bytes, at least one; `None` at the end of the stream.
    pub(crate) fn read(&self, max: usize, deadline: Instant) -> Result<Option<Vec<u8>>, Failure> {
        let readable = self.input.subscribe();
        loop {
            match self.input.read(max as u64) {
                Ok(bytes) if bytes.is_empty() => {
                    if !wait(&readable, deadline) {
                        return Err(Failure::TimedOut);
                    }
                }
                Ok(bytes) => return Ok(Some(bytes)),
                Err(StreamError::Closed) => return Ok(None),
                Err(e) => return Err(Failure::from_stream(e)),
            }
        }
    }

    /// Closes both directions, ignoring errors.
    pub(crate) fn shutdown(&self) {
        let _ = self.socket.shutdown(ShutdownType::Both);
    }
}

/// Waits until `ready` fires or `deadline` passes; false on the deadline.
fn wait(ready: &Pollable, deadline: Instant) -> bool {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return ready.ready();
    }
    let nanos = u64::try_from(left.as_nanos()).unwrap_or(u64::MAX);
    let timer = monotonic_clock::subscribe_duration(nanos);
    poll::poll(&[ready, &timer]).contains(&0)
}

fn remote(address: SocketAddr) -> IpSocketAddress {
    match address {
        SocketAddr::V4(v4) => {
            let [a, b, c, d] = v4.ip().octets();
            IpSocketAddress::Ipv4(Ipv4SocketAddress {
                port: v4.port(),
                address: (a, b, c, d),
            })
        }
        SocketAddr::V6(v6) => {
            let [a, b, c, d, e, f, g, h] = v6.ip().segments();
            IpSocketAddress::Ipv6(Ipv6SocketAddress {
                port: v6.port(),
                flow_info: v6.flowinfo(),
                address: (a, b, c, d, e, f, g, h),
                scope_id: v6.scope_id(),
            })
        }
    }
}
