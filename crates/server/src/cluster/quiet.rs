//! Peers that let a call run out of time, left alone for a while.
//!
//! A member whose API is wedged while its lease lives on (the process
//! keeps its etcd keep-alive going, its gRPC server does not answer) stays
//! a member, so every read that asks the members (ListConnectors' uptime,
//! the status page, GetHistory) would wait the whole limit for it, on
//! every request. After one call to a peer times out, calls to it fail at
//! once for [`QUIET_FOR`]; then it is asked again. A peer that answers
//! anything, even an error, is not quiet.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

/// How long a peer whose call timed out is not asked: the default lease
/// TTL, so that a peer that is gone for good has left the members by then.
pub(super) const QUIET_FOR: Duration = Duration::from_secs(10);

/// When each quiet peer last let a call time out.
#[derive(Debug, Default)]
pub(super) struct Quiet(Mutex<HashMap<String, Instant>>);

impl Quiet {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Instant>> {
        // Each critical section leaves the map consistent.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How long ago `peer` let a call time out, while that is less than
    /// [`QUIET_FOR`]; `None` when it may be asked.
    pub(super) fn since(&self, peer: &str, now: Instant) -> Option<Duration> {
        let mut quiet = self.lock();
        let ago = now.saturating_duration_since(*quiet.get(peer)?);
        if ago < QUIET_FOR {
            return Some(ago);
        }
        quiet.remove(peer);
        None
    }

    /// A call to `peer` timed out at `now`.
    pub(super) fn timed_out(&self, peer: &str, now: Instant) {
        let mut quiet = self.lock();
        // Only peers quiet now are kept: the map holds at most the members.
        quiet.retain(|_, at| now.saturating_duration_since(*at) < QUIET_FOR);
        quiet.insert(peer.to_string(), now);
    }

    /// `peer` answered.
    pub(super) fn answered(&self, peer: &str) {
        let mut quiet = self.lock();
        if !quiet.is_empty() {
            quiet.remove(peer);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_that_timed_out_is_quiet_until_the_period_ends_or_it_answers() {
        let quiet = Quiet::default();
        let start = Instant::now();
        assert_eq!(quiet.since("b", start), None);
        quiet.timed_out("b", start);
        let later = start + Duration::from_secs(3);
        assert_eq!(quiet.since("b", later), Some(Duration::from_secs(3)));
        assert_eq!(
            quiet.since("c", later),
            None,
            "only the peer that timed out"
        );
        assert_eq!(quiet.since("b", start + QUIET_FOR), None, "asked again");
        assert!(quiet.lock().is_empty(), "and forgotten");

        quiet.timed_out("b", start);
        quiet.answered("b");
        assert_eq!(quiet.since("b", later), None, "an answer ends it");
    }

    #[test]
    fn only_peers_quiet_now_are_kept() {
        let quiet = Quiet::default();
        let start = Instant::now();
        for n in 0..100 {
            quiet.timed_out(&format!("n{n}"), start);
        }
        quiet.timed_out("last", start + QUIET_FOR);
        assert_eq!(quiet.lock().len(), 1);
    }

    #[tokio::test]
    async fn a_peer_that_hangs_costs_one_wait_then_is_not_called() {
        use std::sync::Arc;

        use sandport_cluster::NodeId;
        use sandport_core::service::ForwardError;

        use super::super::forward::{ApiProtection, PeerCredentials, PeerForwarder, peer_access};
        use crate::grpc::pb;
        use crate::grpc::pb::connectors_service_client::ConnectorsServiceClient;

        // The kernel accepts its connections; nothing ever answers.
        let hung = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
        let address = hung.local_addr().expect("its address").to_string();
        let access = peer_access(
            &ApiProtection {
                tls: None,
                tokens: false,
            },
            &PeerCredentials {
                ca: None,
                token: None,
            },
        )
        .expect("plain calls");
        let me = NodeId::new("a").expect("a node id");
        let forwarder = PeerForwarder::new(me, Arc::default(), &access).expect("a forwarder");
        let ask = || {
            forwarder.call(
                "b",
                &address,
                Duration::from_millis(300),
                |channel| async move {
                    ConnectorsServiceClient::new(channel)
                        .get_connector(pb::GetConnectorRequest { id: "c1".into() })
                        .await
                },
            )
        };
        let first = ask().await;
        assert!(
            matches!(first, Err(ForwardError::TimedOut { ref peer, .. }) if peer == "b"),
            "{first:?}"
        );
        let second = ask().await;
        assert!(
            matches!(second, Err(ForwardError::Unreachable { ref message, .. }) if message.contains("timed out")),
            "{second:?}"
        );
        drop(hung);
    }
}
