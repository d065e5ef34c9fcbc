//! History reads across the cluster, over the peers' gRPC APIs: the
//! [`Forwarder`](sandport_core::service::Forwarder)'s `history` (the
//! public `GetHistory`, marked as forwarded so that the peer answers with
//! its own records only) and `recorded` (`proto/cluster.proto`'s
//! `Recorded`), and the `PeerService` that answers the latter.
//!
//! A peer's answer is input like any other: counts are added with
//! saturation, daily lists are cut to the days asked, incidents to the
//! number asked, and the message size is bounded.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tonic::{Request, Response, Status};

use sandport_core::service::{
    ForwardError, Found, HistoryQueryError, HistoryRange, Recorded, RecordedAsk, Service,
};
use sandport_history::{Incident, Passed, Tallies};

use super::forward::PeerForwarder;
use crate::grpc::history::{
    answer_from_pb, request_to_pb, rollup_from_pb, rollup_to_pb, status_from_pb, status_to_pb,
};
use crate::grpc::pb;
use crate::grpc::pb::peer::peer_service_client::PeerServiceClient;
use crate::grpc::pb::peer::peer_service_server::{PeerService, PeerServiceServer};
use crate::grpc::pb::peer::{
    ConnectorRecord, Incident as PbIncident, Passed as PbPassed, RecordedRequest, RecordedResponse,
};

/// The longest wait for a peer's records: a read answers without them
/// after it.
const READ_LIMIT: Duration = Duration::from_secs(5);
/// The largest answer accepted from a peer (about 400 bytes a connector
/// with 90 daily tallies and a latency line).
const MAX_READ_MESSAGE: usize = 64 << 20;
/// The most incidents one read asks for.
pub const MAX_INCIDENTS: usize = 1000;
/// The most daily tallies one read asks for (what the history keeps in
/// memory).
const MAX_DAYS: u32 = 92;
const HOUR: Duration = Duration::from_secs(3600);

impl PeerForwarder {
    /// Every other live member's records of `id` over `range`.
    pub(super) async fn histories(
        &self,
        id: &str,
        range: HistoryRange,
    ) -> Vec<Result<(String, Found), ForwardError>> {
        let asks = self.others().into_iter().map(|(peer, address)| async move {
            let request = self.request(request_to_pb(id, &range), READ_LIMIT);
            let answer = self
                .call(&peer, &address, READ_LIMIT, |channel| async move {
                    pb::connectors_service_client::ConnectorsServiceClient::new(channel)
                        .max_decoding_message_size(MAX_READ_MESSAGE)
                        .get_history(request)
                        .await
                })
                .await?;
            Ok((peer, answer_from_pb(answer, range.step)))
        });
        futures::future::join_all(asks).await
    }

    /// Every other live member's [`Recorded`] for `ask`.
    pub(super) async fn records(
        &self,
        ask: &RecordedAsk,
    ) -> Vec<Result<(String, Recorded), ForwardError>> {
        let asks = self.others().into_iter().map(|(peer, address)| async move {
            let request = self.request(ask_to_pb(ask), READ_LIMIT);
            let answer = self
                .call(&peer, &address, READ_LIMIT, |channel| async move {
                    PeerServiceClient::new(channel)
                        .max_decoding_message_size(MAX_READ_MESSAGE)
                        .recorded(request)
                        .await
                })
                .await?;
            Ok((peer, recorded_from_pb(answer, ask)))
        });
        futures::future::join_all(asks).await
    }
}

fn ask_to_pb(ask: &RecordedAsk) -> RecordedRequest {
    let RecordedAsk {
        id,
        days,
        latency,
        incidents,
        now,
    } = ask;
    RecordedRequest {
        id: id.clone().unwrap_or_default(),
        days: *days,
        latency: *latency,
        incidents: u32::try_from(*incidents).unwrap_or(u32::MAX),
        now: Some(prost_types::Timestamp::from(*now)),
    }
}

/// A peer's question, checked.
fn ask_from_pb(request: RecordedRequest) -> Result<RecordedAsk, Status> {
    let RecordedRequest {
        id,
        days,
        latency,
        incidents,
        now,
    } = request;
    if days > MAX_DAYS {
        return Err(Status::invalid_argument(format!(
            "days: at most {MAX_DAYS}, not {days}"
        )));
    }
    let now = now
        .and_then(|t| SystemTime::try_from(t).ok())
        .ok_or_else(|| Status::invalid_argument("now: missing, or not a time this node can use"))?;
    Ok(RecordedAsk {
        id: (!id.is_empty()).then_some(id),
        days,
        latency,
        incidents: (incidents as usize).min(MAX_INCIDENTS),
        now,
    })
}

fn passed_to_pb(p: Passed) -> Option<PbPassed> {
    let Passed { passing, total } = p;
    Some(PbPassed { passing, total })
}

fn passed_from_pb(p: Option<PbPassed>) -> Passed {
    let PbPassed { passing, total } = p.unwrap_or_default();
    // A passing count over the total is no figure: taken as the total.
    Passed {
        passing: passing.min(total),
        total,
    }
}

fn recorded_to_pb(recorded: Recorded) -> RecordedResponse {
    let Recorded {
        tallies,
        mut latency,
        incidents,
    } = recorded;
    let connectors = tallies
        .into_iter()
        .map(|(id, t)| {
            let Tallies {
                day,
                week,
                month,
                daily,
            } = t;
            let line = latency.remove(&id).unwrap_or_default();
            ConnectorRecord {
                day: passed_to_pb(day),
                week: passed_to_pb(week),
                month: passed_to_pb(month),
                daily: daily.into_iter().filter_map(passed_to_pb).collect(),
                latency: line.iter().map(rollup_to_pb).collect(),
                id,
            }
        })
        .collect();
    let incidents = incidents
        .into_iter()
        .map(|i| {
            let Incident {
                connector,
                status,
                previous,
                message,
                at,
            } = i;
            PbIncident {
                connector,
                status: status_to_pb(status).into(),
                previous: status_to_pb(previous).into(),
                message,
                at: Some(prost_types::Timestamp::from(at)),
            }
        })
        .collect();
    RecordedResponse {
        connectors,
        incidents,
    }
}

/// A peer's answer, cut to what was asked.
fn recorded_from_pb(answer: RecordedResponse, ask: &RecordedAsk) -> Recorded {
    let RecordedResponse {
        connectors,
        incidents,
    } = answer;
    let mut tallies = HashMap::with_capacity(connectors.len());
    let mut latency = HashMap::new();
    for record in connectors {
        let ConnectorRecord {
            id,
            day,
            week,
            month,
            daily,
            latency: line,
        } = record;
        if ask.id.as_ref().is_some_and(|asked| *asked != id) {
            continue;
        }
        let skip = daily.len().saturating_sub(ask.days as usize);
        let daily = daily
            .into_iter()
            .skip(skip)
            .map(|p| passed_from_pb(Some(p)))
            .collect();
        if ask.latency {
            let line: Vec<_> = line
                .into_iter()
                .take(24)
                .map(|r| rollup_from_pb(r, HOUR))
                .collect();
            latency.insert(id.clone(), line);
        }
        tallies.insert(
            id,
            Tallies {
                day: passed_from_pb(day),
                week: passed_from_pb(week),
                month: passed_from_pb(month),
                daily,
            },
        );
    }
    let incidents = incidents
        .into_iter()
        .take(ask.incidents)
        .map(|i| {
            let PbIncident {
                connector,
                status,
                previous,
                message,
                at,
            } = i;
            Incident {
                connector,
                status: status_from_pb(status),
                previous: status_from_pb(previous),
                message,
                at: at
                    .and_then(|t| SystemTime::try_from(t).ok())
                    .unwrap_or(SystemTime::UNIX_EPOCH),
            }
        })
        .collect();
    Recorded {
        tallies,
        latency,
        incidents,
    }
}

/// Answers the other nodes' `Recorded` with this node's own records.
pub struct PeerApi {
    service: Arc<Service>,
}

impl PeerApi {
    /// The service, its answers bounded as the peers read them.
    pub fn server(service: Arc<Service>) -> PeerServiceServer<PeerApi> {
        PeerServiceServer::new(PeerApi { service }).max_encoding_message_size(MAX_READ_MESSAGE)
    }
}

#[tonic::async_trait]
impl PeerService for PeerApi {
    async fn recorded(
        &self,
        request: Request<RecordedRequest>,
    ) -> Result<Response<RecordedResponse>, Status> {
        let ask = ask_from_pb(request.into_inner())?;
        match self.service.recorded_here(Arc::new(ask)).await {
            Ok(recorded) => Ok(Response::new(recorded_to_pb(recorded))),
            Err(HistoryQueryError::BadRange(message)) => Err(Status::invalid_argument(message)),
            Err(e) => Err(Status::unavailable(crate::internal::report(&e))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask(id: Option<&str>, days: u32, latency: bool, incidents: usize) -> RecordedAsk {
        RecordedAsk {
            id: id.map(String::from),
            days,
            latency,
            incidents,
            now: SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
        }
    }

    fn passed(passing: u64, total: u64) -> Option<PbPassed> {
        Some(PbPassed { passing, total })
    }

    #[test]
    fn a_question_survives_the_trip_and_a_bad_one_is_refused_naming_the_field() {
        let asked = ask(Some("a"), 90, true, 50);
        assert_eq!(ask_from_pb(ask_to_pb(&asked)).expect("valid"), asked);
        let all = ask(None, 0, false, 0);
        assert_eq!(ask_from_pb(ask_to_pb(&all)).expect("valid"), all);

        let mut too_long = ask_to_pb(&asked);
        too_long.days = 93;
        let refused = ask_from_pb(too_long).expect_err("93 days");
        assert!(refused.message().starts_with("days:"), "{refused:?}");
        let mut no_clock = ask_to_pb(&asked);
        no_clock.now = None;
        assert!(
            ask_from_pb(no_clock)
                .expect_err("no now")
                .message()
                .starts_with("now:")
        );
        let mut greedy = ask_to_pb(&asked);
        greedy.incidents = u32::MAX;
        assert_eq!(
            ask_from_pb(greedy).expect("capped").incidents,
            MAX_INCIDENTS
        );
    }

    #[test]
    fn a_peers_answer_is_cut_to_what_was_asked() {
        let record = |id: &str| ConnectorRecord {
            id: id.into(),
            day: passed(7, 3),
            week: passed(1, 2),
            month: None,
            daily: (0..200).filter_map(|n| passed(n, n)).collect(),
            latency: vec![pb::HistoryRollup::default(); 100],
        };
        let answer = RecordedResponse {
            connectors: vec![record("a"), record("someone-else")],
            incidents: vec![PbIncident::default(); 10],
        };
        let asked = ask(Some("a"), 3, true, 2);
        let got = recorded_from_pb(answer, &asked);
        assert_eq!(got.tallies.len(), 1, "only the connector asked about");
        let a = &got.tallies["a"];
        assert_eq!(
            a.day,
            Passed {
                passing: 3,
                total: 3
            },
            "passing cut to total"
        );
        assert_eq!(a.month, Passed::default());
        assert_eq!(
            a.daily,
            vec![
                Passed {
                    passing: 197,
                    total: 197
                },
                Passed {
                    passing: 198,
                    total: 198
                },
                Passed {
                    passing: 199,
                    total: 199
                },
            ],
            "the last days asked for"
        );
        assert_eq!(got.latency["a"].len(), 24);
        assert_eq!(got.incidents.len(), 2);

        let back = recorded_from_pb(recorded_to_pb(got.clone()), &asked);
        assert_eq!(back, got, "what a node sends is what the other reads");
    }
}
