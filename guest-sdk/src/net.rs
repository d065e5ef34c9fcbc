//! Raw TCP for connectors of databases and brokers.
//!
//! The host resolves names and vets every address; a connection succeeds
//! only to an address [`resolve`] returned (or an IP literal the allowlist
//! names). Everything else is refused by the sandbox.

use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::Duration;

use crate::Error;

/// The addresses of `host` this connector may connect to on `port`.
pub fn resolve(host: &str, port: u16) -> Result<Vec<IpAddr>, Error> {
    let texts = crate::bindings::sandport::connector::network::resolve(host, port)
        .map_err(|why| Error::new(format!("{host}:{port}: {why}")))?;
    Ok(texts.iter().filter_map(|t| t.parse().ok()).collect())
}

/// Connects to `host:port`, trying each allowed address in turn.
pub fn connect(host: &str, port: u16, timeout: Duration) -> Result<TcpStream, Error> {
    let mut last = None;
    for address in resolve(host, port)? {
        match connect_to(SocketAddr::new(address, port), timeout) {
            Ok(stream) => {
                let _ = stream.set_read_timeout(Some(timeout));
                let _ = stream.set_write_timeout(Some(timeout));
                return Ok(stream);
            }
            Err(e) => last = Some(e),
        }
    }
    Err(Error::new(match last {
        Some(e) => format!("{host}:{port}: {}", describe(&e)),
        None => format!("{host}:{port}: no address to connect to"),
    }))
}

/// One connection attempt that checks its outcome: on wasm32-wasip2,
/// `TcpStream::connect_timeout` returns Ok for a connection that failed (the
/// error waits in SO_ERROR, readable once), which would report a refused
/// connection as open and never try the next address.
fn connect_to(address: SocketAddr, timeout: Duration) -> std::io::Result<TcpStream> {
    let stream = TcpStream::connect_timeout(&address, timeout)?;
    match stream.take_error() {
        Ok(Some(e)) | Err(e) => return Err(e),
        Ok(None) => {}
    }
    stream.peer_addr()?;
    Ok(stream)
}

fn describe(error: &std::io::Error) -> String {
    match error.kind() {
        std::io::ErrorKind::ConnectionRefused => "connection refused".into(),
        std::io::ErrorKind::TimedOut => "timed out".into(),
        std::io::ErrorKind::PermissionDenied => "denied by the sandbox".into(),
        _ => error.to_string(),
    }
}
