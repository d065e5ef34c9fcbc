//! Why a request failed, in the kinds of the contract's `http-error`, with
//! the root cause in words an operator knows.

use std::time::Duration;

use super::resolve;

/// Why a request failed; mirrors the WIT `http-error` variant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EgressError {
    #[error("{0}")]
    Denied(String),
    #[error("invalid request: {0}")]
    InvalidUrl(String),
    #[error("{0}")]
    Timeout(String),
    #[error("{0}")]
    Connect(String),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("{0}")]
    TooLarge(String),
    #[error("{0}")]
    Other(String),
}

pub(super) fn timed_out(timeout: Duration) -> EgressError {
    EgressError::Timeout(format!(
        "timed out after {}",
        crate::health::format_latency(timeout)
    ))
}

/// Turns reqwest's error into the WIT error kinds, with the root cause in
/// words an operator knows ("connection refused").
pub(super) fn classify(error: reqwest::Error, timeout: Duration) -> EgressError {
    if error.is_timeout() {
        return timed_out(timeout);
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&error);
    let mut root = error.to_string();
    while let Some(e) = source {
        if let Some(refused) = e.downcast_ref::<resolve::AddressRefused>() {
            return EgressError::Denied(format!("denied: {refused}"));
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            match io.kind() {
                std::io::ErrorKind::ConnectionRefused => {
                    return EgressError::Connect("connection refused".into());
                }
                std::io::ErrorKind::ConnectionReset => {
                    return EgressError::Connect("connection reset by peer".into());
                }
                std::io::ErrorKind::TimedOut => return timed_out(timeout),
                _ => {}
            }
        }
        if e.downcast_ref::<rustls::Error>().is_some() {
            return EgressError::Tls(e.to_string());
        }
        root = e.to_string();
        source = e.source();
    }
    if error.is_connect() {
        if root.contains("dns error") || root.contains("failed to lookup") {
            return EgressError::Connect(format!("could not resolve the host name ({root})"));
        }
        return EgressError::Connect(root);
    }
    EgressError::Other(root)
}
