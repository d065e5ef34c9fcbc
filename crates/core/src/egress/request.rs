//! A request as a guest asks for it, kept parsed for sending again, and the
//! response handed back; with what each holds, for the memory limit of
//! whoever keeps it for a guest.

use std::time::Duration;

use http::{HeaderMap, Method};
use url::Url;

/// A request as the guest asked for it.
#[derive(Debug)]
pub struct Request {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
    pub timeout: Option<Duration>,
}

/// A request parsed by [`Egress::prepare`], ready to be sent again and
/// again.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub(super) method: Method,
    pub(super) url: Url,
    pub(super) headers: HeaderMap,
    /// Shared by every send of it.
    pub(super) body: Option<bytes::Bytes>,
    pub(super) timeout: Option<Duration>,
}

impl Prepared {
    /// Bytes counted for the request beyond its URL, headers and body:
    /// about what the structures spend.
    const OVERHEAD: usize = 256;

    /// About the bytes it holds, for the memory limit of whoever keeps it.
    pub fn size(&self) -> usize {
        Self::OVERHEAD
            + self.url.as_str().len()
            + headers_size(&self.headers)
            + self.body.as_ref().map_or(0, bytes::Bytes::len)
    }
}

/// Bytes counted for each header beyond its name and value: about what a
/// `HeaderMap` spends on an entry.
pub const HEADER_OVERHEAD: usize = 64;

/// About the bytes `headers` hold, for the memory limit of whoever keeps
/// them for a guest (a prepared request's, a held response's).
pub fn headers_size(headers: &HeaderMap) -> usize {
    headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + HEADER_OVERHEAD)
        .sum()
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    /// As received: turning them into strings is left to whoever hands them
    /// on, and only for the ones asked for.
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}
