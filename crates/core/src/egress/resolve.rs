//! Name resolution done by the host, per connector, with every address
//! vetted before reqwest may connect to it.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use super::EgressPolicy;
use sandport_policy::ip;

/// Turns a host name into addresses.
pub trait Lookup: Send + Sync {
    fn lookup(
        &self,
        host: String,
    ) -> Pin<Box<dyn Future<Output = std::io::Result<Vec<IpAddr>>> + Send>>;
}

/// The system resolver (getaddrinfo, on a blocking thread).
pub struct SystemLookup;

impl Lookup for SystemLookup {
    fn lookup(
        &self,
        host: String,
    ) -> Pin<Box<dyn Future<Output = std::io::Result<Vec<IpAddr>>> + Send>> {
        Box::pin(async move {
            let addrs = tokio::net::lookup_host((host.as_str(), 0)).await?;
            Ok(addrs.map(|a| a.ip()).collect())
        })
    }
}

/// Every address of a name was refused. Found in reqwest's error chain and
/// reported to the guest as `denied`.
#[derive(Debug)]
pub struct AddressRefused(String);

impl std::fmt::Display for AddressRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for AddressRefused {}

pub struct VettingResolver {
    policy: Arc<EgressPolicy>,
    lookup: Arc<dyn Lookup>,
}

impl VettingResolver {
    pub fn new(policy: Arc<EgressPolicy>, lookup: Arc<dyn Lookup>) -> Self {
        VettingResolver { policy, lookup }
    }
}

impl Resolve for VettingResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_ascii_lowercase();
        let grant = self.policy.grant_for_host(&host);
        let lookup = self.lookup.lookup(host.clone());
        Box::pin(async move {
            let Some(grant) = grant else {
                return Err(
                    AddressRefused(format!("{host} is not in this connector's allowlist")).into(),
                );
            };
            let addresses = lookup.await?;
            let mut refusals = Vec::new();
            let allowed: Vec<SocketAddr> = addresses
                .into_iter()
                .filter_map(|address| match ip::vet(address, grant) {
                    Ok(()) => Some(SocketAddr::new(ip::canonical(address), 0)),
                    Err(why) => {
                        refusals.push(why);
                        None
                    }
                })
                .collect();
            if allowed.is_empty() {
                let why = if refusals.is_empty() {
                    "no addresses".to_string()
                } else {
                    refusals.join("; ")
                };
                return Err(AddressRefused(format!("{host} resolves to {why}")).into());
            }
            let addrs: Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}
