//! Live checks sent to the connector's owner: the core's [`Forwarder`]
//! over the peers' gRPC APIs.
//!
//! The live members' addresses come from the member watch (`members.rs`
//! sets them where it sets the ownership), and the owner is picked with
//! the same [`owner`] function, so a forwarded check goes where the
//! connector's instance is. Each call carries [`FORWARDED_BY`]: the node
//! receiving it checks locally whatever its own view of the members, so
//! that two nodes that disagree for a moment cannot bounce a check back
//! and forth.
//!
//! The peers' APIs are protected as this node's own is: the client speaks
//! TLS when the API does, and sends a bearer token when the API takes
//! tokens ([`peer_access`] decides, at start, whether forwarding can be
//! on).

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Mutex, PoisonError, RwLock};
use std::time::Duration;

use sandport_cluster::{MemberInfo, NodeId, owner};
use sandport_config::ConnectorType;
use sandport_core::CheckAll;
use sandport_core::service::{
    ForwardError, ForwardFuture, Forwarded, Forwarder, Found, HistoryRange, PeerRound, ReadsFuture,
    Recorded, RecordedAsk, RoundsFuture,
};
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Request, Status};

use super::peer_tls::{PeerTls, PeerTlsFiles};
use crate::grpc::pb::connectors_service_client::ConnectorsServiceClient;
use crate::grpc::{FORWARDED_BY, convert, pb};

/// Added to the connector's check timeout for a forwarded check: the
/// connection, the owner's wait for the instance, the answer's trip.
const MARGIN: Duration = Duration::from_secs(2);
/// The longest wait for a connection to a peer.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// The largest answer of a peer's round accepted (about 200 bytes a
/// connector).
const MAX_ROUND_MESSAGE: usize = 256 << 20;

/// The live members' API addresses, and a channel to each peer asked so
/// far. Shared by the member watch, which sets them, and the forwarder.
#[derive(Debug, Default)]
pub(super) struct Peers {
    members: RwLock<BTreeMap<NodeId, String>>,
    /// By address; a channel reconnects by itself.
    channels: Mutex<HashMap<String, Channel>>,
    /// Peers not asked for a while after a call to them timed out.
    quiet: super::quiet::Quiet,
}

impl Peers {
    /// The live members changed; channels to addresses no member has any
    /// more are dropped.
    pub(super) fn set_members(&self, live: &BTreeMap<NodeId, MemberInfo>) {
        let members: BTreeMap<NodeId, String> = live
            .iter()
            .map(|(node, info)| (node.clone(), info.address.clone()))
            .collect();
        self.channels
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|address, _| members.values().any(|a| a == address));
        *self.members.write().unwrap_or_else(PoisonError::into_inner) = members;
    }

    /// Every live member but `me`, with its address.
    fn others(&self, me: &NodeId) -> Vec<(String, String)> {
        self.members
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|(node, _)| *node != me)
            .map(|(node, address)| (node.to_string(), address.clone()))
            .collect()
    }

    fn route(&self, me: &NodeId, id: &str) -> Route {
        route(
            me,
            &self.members.read().unwrap_or_else(PoisonError::into_inner),
            id,
        )
    }
}

/// Where a live check of one connector runs.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Route {
    Here,
    Peer { node: String, address: String },
}

/// The live member rendezvous hashing ranks first for `id`: here when
/// that is `me` or no member is known.
fn route(me: &NodeId, members: &BTreeMap<NodeId, String>, id: &str) -> Route {
    match owner(id, members.keys()) {
        Some(node) if node != me => Route::Peer {
            node: node.to_string(),
            address: members.get(node).cloned().unwrap_or_default(),
        },
        _ => Route::Here,
    }
}

/// How this node's own API is protected: its peers' are alike.
#[derive(Debug, Clone, Default)]
pub struct ApiProtection {
    /// `--tls-cert`, `--tls-key` and `--client-ca`, when the API serves TLS.
    pub tls: Option<ApiTlsFiles>,
    /// Whether the API takes tokens.
    pub tokens: bool,
}

#[derive(Debug, Clone)]
pub struct ApiTlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_ca: Option<PathBuf>,
}

/// What the operator gave this node to call its peers.
#[derive(Clone, Default)]
pub struct PeerCredentials {
    /// `--cluster-peer-ca`.
    pub ca: Option<PathBuf>,
    /// The token of `--cluster-token-file`.
    pub token: Option<String>,
}

impl std::fmt::Debug for PeerCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerCredentials")
            .field("ca", &self.ca)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// How to call the peers, once [`peer_access`] found it possible.
#[derive(Clone)]
pub struct PeerAccess {
    /// The CA the peers' certificates are checked against, and this node's
    /// client certificate and key when the peers ask for one (mTLS).
    tls: Option<(PathBuf, Option<(PathBuf, PathBuf)>)>,
    token: Option<String>,
}

/// Why live checks are not forwarded: each names the flag that is missing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ForwardingOff {
    #[error(
        "the API serves TLS, so calling the other nodes needs a CA to trust their certificates: give --cluster-peer-ca (or --client-ca)"
    )]
    NoPeerCa,
    #[error(
        "the API takes tokens, so calling the other nodes needs one: give --cluster-token-file with a token of at least the read role on the other nodes"
    )]
    NoToken,
    #[error("cannot set up the client for the other nodes: {0}")]
    Client(String),
}

/// Whether this node can call its peers' APIs, protected as its own is,
/// with what it was given: the peers' CA is `--cluster-peer-ca`, else the
/// API's client CA; the client certificate is the API's own, presented
/// when the API asks for client certificates.
pub fn peer_access(
    api: &ApiProtection,
    credentials: &PeerCredentials,
) -> Result<PeerAccess, ForwardingOff> {
    let tls = match &api.tls {
        None => None,
        Some(files) => {
            let ca = credentials
                .ca
                .clone()
                .or_else(|| files.client_ca.clone())
                .ok_or(ForwardingOff::NoPeerCa)?;
            let identity = files
                .client_ca
                .as_ref()
                .map(|_| (files.cert.clone(), files.key.clone()));
            Some((ca, identity))
        }
    };
    let token = match (&credentials.token, api.tokens) {
        (Some(token), _) => Some(token.clone()),
        (None, true) => return Err(ForwardingOff::NoToken),
        (None, false) => None,
    };
    Ok(PeerAccess { tls, token })
}

/// The core's [`Forwarder`]: asks the owner's gRPC API.
pub(super) struct PeerForwarder {
    me: NodeId,
    peers: std::sync::Arc<Peers>,
    tls: Option<PeerTls>,
    authorization: Option<MetadataValue<Ascii>>,
    forwarded_by: MetadataValue<Ascii>,
}

impl PeerForwarder {
    /// Reads the files `access` names.
    pub(super) fn new(
        me: NodeId,
        peers: std::sync::Arc<Peers>,
        access: &PeerAccess,
    ) -> Result<PeerForwarder, ForwardingOff> {
        let tls = match &access.tls {
            None => None,
            Some((ca, identity)) => Some(
                PeerTls::load(PeerTlsFiles {
                    ca: ca.clone(),
                    identity: identity.clone(),
                })
                .map_err(ForwardingOff::Client)?,
            ),
        };
        let authorization = access
            .token
            .as_deref()
            .map(|token| {
                let mut value = MetadataValue::try_from(format!("Bearer {}", token.trim()))
                    .map_err(|_| {
                        ForwardingOff::Client(
                            "the token has characters a header cannot carry".into(),
                        )
                    })?;
                value.set_sensitive(true);
                Ok(value)
            })
            .transpose()?;
        // A node id is letters, digits, `-`, `_` and `.`: always a valid
        // header value.
        let forwarded_by = MetadataValue::try_from(me.as_str())
            .map_err(|_| ForwardingOff::Client("the node id cannot be sent in a header".into()))?;
        Ok(PeerForwarder {
            me,
            peers,
            tls,
            authorization,
            forwarded_by,
        })
    }

    /// The cached channel to `address`, made (lazily connecting) if new.
    fn channel(&self, address: &str) -> Result<Channel, String> {
        let tls = self.tls.as_ref().map(PeerTls::current);
        let mut channels = self
            .peers
            .channels
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if tls.as_ref().is_some_and(|(_, changed)| *changed) {
            // Made with the previous certificates.
            channels.clear();
        }
        if let Some(channel) = channels.get(address) {
            return Ok(channel.clone());
        }
        // The advertised address is `host:port`; the scheme is this
        // node's choice, as its own API's.
        let host_port = address.split_once("://").map_or(address, |(_, rest)| rest);
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let mut endpoint = Endpoint::from_shared(format!("{scheme}://{host_port}"))
            .map_err(|e| format!("not an address: {e}"))?
            .connect_timeout(CONNECT_TIMEOUT)
            .tcp_nodelay(true);
        if let Some((tls, _)) = tls {
            endpoint = endpoint
                .tls_config(tls)
                .map_err(|e| format!("cannot set up TLS: {e}"))?;
        }
        let channel = endpoint.connect_lazy();
        channels.insert(address.to_string(), channel.clone());
        Ok(channel)
    }

    /// A request carrying this node's name and, when the peers take
    /// tokens, its token.
    pub(super) fn request<T>(&self, message: T, limit: Duration) -> Request<T> {
        let mut request = Request::new(message);
        request.set_timeout(limit);
        let metadata = request.metadata_mut();
        metadata.insert(FORWARDED_BY, self.forwarded_by.clone());
        if let Some(value) = &self.authorization {
            metadata.insert("authorization", value.clone());
        }
        request
    }

    /// One call to `peer` at `address`, bounded by `limit` as a whole:
    /// the channel's own timeouts do not cover every wait (a peer that
    /// accepts and never answers).
    pub(super) async fn call<T, F, Fut>(
        &self,
        peer: &str,
        address: &str,
        limit: Duration,
        call: F,
    ) -> Result<T, ForwardError>
    where
        F: FnOnce(Channel) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, Status>>,
    {
        let quiet = &self.peers.quiet;
        if let Some(ago) = quiet.since(peer, tokio::time::Instant::now()) {
            return Err(ForwardError::Unreachable {
                peer: peer.to_string(),
                message: format!(
                    "a call to it timed out {}s ago; it is asked again {}s after that",
                    ago.as_secs(),
                    super::quiet::QUIET_FOR.as_secs()
                ),
            });
        }
        let channel = self
            .channel(address)
            .map_err(|message| ForwardError::Unreachable {
                peer: peer.to_string(),
                message,
            })?;
        let answer = tokio::time::timeout(limit, call(channel)).await;
        match answer {
            Err(_) => {
                quiet.timed_out(peer, tokio::time::Instant::now());
                Err(ForwardError::TimedOut {
                    peer: peer.to_string(),
                    after: limit,
                })
            }
            Ok(Err(status)) => {
                quiet.answered(peer);
                Err(failure(peer.to_string(), &status, limit))
            }
            Ok(Ok(response)) => {
                quiet.answered(peer);
                Ok(response.into_inner())
            }
        }
    }

    /// Every other live member, with its address.
    pub(super) fn others(&self) -> Vec<(String, String)> {
        self.peers.others(&self.me)
    }

    /// `peer`'s round over what it owns.
    async fn round(
        &self,
        peer: String,
        address: String,
        connector_type: Option<ConnectorType>,
        limit: Duration,
    ) -> Result<PeerRound, ForwardError> {
        let r#type = connector_type.map_or(0, |t| convert::type_to_pb(t) as i32);
        // The peer's round ends a little before this wait does, so that
        // its answer (unfinished checks marked) arrives in time.
        let theirs = limit.saturating_sub((limit / 10).min(Duration::from_millis(500)));
        let request = self.request(pb::HealthCheckAllRequest { r#type }, theirs);
        let pb::HealthCheckAllResponse {
            results,
            unfinished,
        } = self
            .call(&peer, &address, limit, |channel| async move {
                // A peer's round over thousands of connectors passes
                // tonic's default 4 MiB for a message.
                ConnectorsServiceClient::new(channel)
                    .max_decoding_message_size(MAX_ROUND_MESSAGE)
                    .health_check_all(request)
                    .await
            })
            .await?;
        Ok(PeerRound {
            peer,
            round: CheckAll {
                results: results.into_iter().map(convert::check_from_pb).collect(),
                unfinished,
            },
        })
    }

    async fn ask(&self, id: &str, check_timeout: Duration) -> Result<Forwarded, ForwardError> {
        let (peer, address) = match self.peers.route(&self.me, id) {
            Route::Here => return Ok(Forwarded::CheckHere),
            Route::Peer { node, address } => (node, address),
        };
        let limit = check_timeout.saturating_add(MARGIN);
        let request = self.request(
            pb::HealthCheckRequest {
                id: id.to_string(),
                cached: false,
            },
            limit,
        );
        let answer = self
            .call(&peer, &address, limit, |channel| async move {
                ConnectorsServiceClient::new(channel)
                    .health_check(request)
                    .await
            })
            .await?;
        Ok(Forwarded::Owner {
            peer,
            health: convert::check_from_pb(answer).1,
        })
    }
}

impl Forwarder for PeerForwarder {
    fn check<'a>(&'a self, id: &'a str, check_timeout: Duration) -> ForwardFuture<'a> {
        Box::pin(self.ask(id, check_timeout))
    }

    fn check_all<'a>(
        &'a self,
        connector_type: Option<ConnectorType>,
        limit: Duration,
    ) -> RoundsFuture<'a> {
        let rounds = self
            .peers
            .others(&self.me)
            .into_iter()
            .map(|(peer, address)| self.round(peer, address, connector_type, limit));
        Box::pin(futures::future::join_all(rounds))
    }

    fn history<'a>(&'a self, id: &'a str, range: HistoryRange) -> ReadsFuture<'a, Found> {
        Box::pin(self.histories(id, range))
    }

    fn recorded<'a>(&'a self, ask: &'a RecordedAsk) -> ReadsFuture<'a, Recorded> {
        Box::pin(self.records(ask))
    }
}

/// What a peer's error status means for the caller.
fn failure(peer: String, status: &Status, limit: Duration) -> ForwardError {
    let message = status.message().to_string();
    match status.code() {
        Code::Unavailable | Code::Unknown => ForwardError::Unreachable { peer, message },
        Code::DeadlineExceeded | Code::Cancelled => ForwardError::TimedOut { peer, after: limit },
        _ => ForwardError::Refused {
            peer,
            message: format!("{:?}: {message}", status.code()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str) -> NodeId {
        NodeId::new(name).expect("a node id")
    }

    fn members(names: &[&str]) -> BTreeMap<NodeId, String> {
        names
            .iter()
            .map(|n| (node(n), format!("{n}:50051")))
            .collect()
    }

    #[test]
    fn a_check_goes_to_the_owner_and_stays_here_when_this_node_owns_it_or_none_is_known() {
        let live = members(&["a", "b", "c"]);
        for n in 0..300 {
            let id = format!("c{n}");
            let first = owner(&id, live.keys()).expect("an owner").clone();
            for me in live.keys() {
                let expected = if *me == first {
                    Route::Here
                } else {
                    Route::Peer {
                        node: first.to_string(),
                        address: format!("{first}:50051"),
                    }
                };
                assert_eq!(route(me, &live, &id), expected, "{id} asked of {me}");
            }
            assert_eq!(route(&node("a"), &BTreeMap::new(), &id), Route::Here);
        }
    }

    #[test]
    fn a_node_that_is_not_a_member_sends_every_check_to_a_member() {
        let live = members(&["a", "b"]);
        let outsider = node("d");
        for n in 0..100 {
            assert!(matches!(
                route(&outsider, &live, &format!("c{n}")),
                Route::Peer { .. }
            ));
        }
    }

    fn tls(client_ca: Option<&str>) -> Option<ApiTlsFiles> {
        Some(ApiTlsFiles {
            cert: "api.pem".into(),
            key: "api.key".into(),
            client_ca: client_ca.map(PathBuf::from),
        })
    }

    fn credentials(ca: Option<&str>, token: Option<&str>) -> PeerCredentials {
        PeerCredentials {
            ca: ca.map(PathBuf::from),
            token: token.map(String::from),
        }
    }

    #[test]
    fn peers_are_called_as_the_api_is_protected_or_forwarding_is_off_naming_the_flag() {
        let plain = ApiProtection::default();
        let access = peer_access(&plain, &credentials(None, None)).expect("plain");
        assert!(access.tls.is_none() && access.token.is_none());

        let tokens = ApiProtection {
            tls: None,
            tokens: true,
        };
        assert_eq!(
            peer_access(&tokens, &credentials(None, None)).err(),
            Some(ForwardingOff::NoToken)
        );
        let access = peer_access(&tokens, &credentials(None, Some("t"))).expect("a token");
        assert_eq!(access.token.as_deref(), Some("t"));

        let server_tls = ApiProtection {
            tls: tls(None),
            tokens: false,
        };
        assert_eq!(
            peer_access(&server_tls, &credentials(None, None)).err(),
            Some(ForwardingOff::NoPeerCa)
        );
        let access = peer_access(&server_tls, &credentials(Some("peers.pem"), None)).expect("ca");
        assert_eq!(
            access.tls,
            Some(("peers.pem".into(), None)),
            "no client certificate"
        );

        let mutual = ApiProtection {
            tls: tls(Some("clients.pem")),
            tokens: true,
        };
        let access = peer_access(&mutual, &credentials(None, Some("t"))).expect("mtls");
        let identity: Option<(PathBuf, PathBuf)> = Some(("api.pem".into(), "api.key".into()));
        assert_eq!(
            access.tls,
            Some(("clients.pem".into(), identity.clone())),
            "the client CA stands in for the peers' CA"
        );
        let access =
            peer_access(&mutual, &credentials(Some("peers.pem"), Some("t"))).expect("mtls");
        assert_eq!(access.tls, Some(("peers.pem".into(), identity)));
    }

    #[test]
    fn a_peers_error_is_told_apart_for_the_log() {
        let limit = Duration::from_secs(3);
        let peer = || "b".to_string();
        assert!(matches!(
            failure(peer(), &Status::unavailable("refused"), limit),
            ForwardError::Unreachable { .. }
        ));
        assert!(matches!(
            failure(peer(), &Status::deadline_exceeded("late"), limit),
            ForwardError::TimedOut { .. }
        ));
        assert!(matches!(
            failure(peer(), &Status::unauthenticated("who"), limit),
            ForwardError::Refused { .. }
        ));
    }
}
