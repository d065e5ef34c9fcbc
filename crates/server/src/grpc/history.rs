//! `GetHistory`, and the uptime figures `ListConnectors`/`GetConnector`
//! carry: the history store over gRPC.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use tonic::Status;

use sandport_core::service::{
    Found, HistoryQueryError, HistoryRange, HistoryUnavailable, RecordedAsk, Service,
};
use sandport_history::{Rollup, StoredPoint, Uptime};

use super::pb;

fn unavailable(e: HistoryUnavailable) -> Status {
    match e {
        HistoryUnavailable::Disabled => Status::unavailable(e.to_string()),
        other => Status::unavailable(crate::internal::report(&other)),
    }
}

/// What a failed history question is to a gRPC caller; store failures
/// are logged with an id, not sent.
fn query_status(e: HistoryQueryError) -> Status {
    match e {
        HistoryQueryError::NotFound(_) => Status::not_found(e.to_string()),
        HistoryQueryError::BadRange(message) => Status::invalid_argument(message),
        HistoryQueryError::Unavailable(e) => unavailable(e),
        other => Status::unavailable(crate::internal::report(&other)),
    }
}

/// `forwarded`: another node asks for this node's own records, which it
/// merges with the others'.
pub async fn get_history(
    service: &Service,
    request: pb::GetHistoryRequest,
    forwarded: bool,
) -> Result<pb::GetHistoryResponse, Status> {
    let pb::GetHistoryRequest {
        id,
        since,
        until,
        step_seconds,
        limit,
    } = request;
    if id.is_empty() {
        return Err(Status::invalid_argument("id: missing"));
    }
    let step = match u64::try_from(step_seconds) {
        Ok(0) => None,
        Ok(secs) => Some(Duration::from_secs(secs)),
        Err(_) => {
            return Err(Status::invalid_argument(format!(
                "step_seconds: {step_seconds} is not 0 (raw points) or a whole number of hours"
            )));
        }
    };
    let range = HistoryRange {
        since: since.map(|t| time(t, "since")).transpose()?,
        until: until.map(|t| time(t, "until")).transpose()?,
        step,
        limit: (limit != 0).then_some(limit as usize),
    };
    let answer = if forwarded {
        service.history_here(&id, range).await
    } else {
        service.history_of(&id, range).await
    }
    .map_err(query_status)?;
    let (points, rollups) = match &answer.found {
        Found::Points(points) => (points.iter().map(point_to_pb).collect(), Vec::new()),
        Found::Rollups(rollups) => (Vec::new(), rollups.iter().map(rollup_to_pb).collect()),
    };
    Ok(pb::GetHistoryResponse {
        id,
        points,
        rollups,
    })
}

fn time(t: prost_types::Timestamp, field: &str) -> Result<SystemTime, Status> {
    SystemTime::try_from(t)
        .map_err(|_| Status::invalid_argument(format!("{field}: not a time this service can use")))
}

/// A client's question, for [`get_history`] on the other side.
pub fn request_to_pb(id: &str, range: &HistoryRange) -> pb::GetHistoryRequest {
    let HistoryRange {
        since,
        until,
        step,
        limit,
    } = *range;
    pb::GetHistoryRequest {
        id: id.to_string(),
        since: since.map(prost_types::Timestamp::from),
        until: until.map(prost_types::Timestamp::from),
        step_seconds: step.map_or(0, |s| i64::try_from(s.as_secs()).unwrap_or(i64::MAX)),
        limit: limit.map_or(0, |n| u32::try_from(n).unwrap_or(u32::MAX)),
    }
}

/// The answer as a client reads it (`step`: the one it asked for).
pub fn answer_from_pb(answer: pb::GetHistoryResponse, step: Option<Duration>) -> Found {
    let pb::GetHistoryResponse {
        id: _,
        points,
        rollups: buckets,
    } = answer;
    match step {
        None => Found::Points(points.into_iter().map(point_from_pb).collect()),
        Some(step) => Found::Rollups(
            buckets
                .into_iter()
                .map(|r| rollup_from_pb(r, step))
                .collect(),
        ),
    }
}

fn at(t: Option<prost_types::Timestamp>) -> SystemTime {
    t.and_then(|t| SystemTime::try_from(t).ok())
        .unwrap_or(SystemTime::UNIX_EPOCH)
}

fn from_micros(us: i64) -> Duration {
    Duration::from_micros(u64::try_from(us).unwrap_or(0))
}

fn point_from_pb(p: pb::HistoryPoint) -> StoredPoint {
    let pb::HistoryPoint {
        at: when,
        status,
        reported,
        latency_us,
        failure,
        message,
    } = p;
    StoredPoint {
        at: at(when),
        status: status_from_pb(status),
        reported: status_from_pb(reported),
        latency: from_micros(latency_us),
        failure: (!failure.is_empty()).then_some(failure),
        message,
    }
}

pub(crate) fn rollup_from_pb(r: pb::HistoryRollup, step: Duration) -> Rollup {
    let pb::HistoryRollup {
        start,
        healthy,
        degraded,
        unhealthy,
        unavailable,
        unknown,
        p50_us,
        p95_us,
        max_us,
    } = r;
    Rollup {
        start: at(start),
        step,
        counts: sandport_history::StatusCounts {
            healthy,
            degraded,
            unhealthy,
            unavailable,
            unknown,
        },
        p50: p50_us.map(from_micros),
        p95: p95_us.map(from_micros),
        max: max_us.map(from_micros),
    }
}

pub(crate) fn status_from_pb(value: i32) -> sandport_history::Status {
    use sandport_history::Status as S;
    match pb::ConnectorStatus::try_from(value) {
        Ok(pb::ConnectorStatus::Healthy) => S::Healthy,
        Ok(pb::ConnectorStatus::Degraded) => S::Degraded,
        Ok(pb::ConnectorStatus::Unhealthy) => S::Unhealthy,
        Ok(pb::ConnectorStatus::Unavailable) => S::Unavailable,
        _ => S::Unknown,
    }
}

pub fn status_to_pb(status: sandport_history::Status) -> pb::ConnectorStatus {
    use sandport_history::Status as S;
    match status {
        S::Healthy => pb::ConnectorStatus::Healthy,
        S::Degraded => pb::ConnectorStatus::Degraded,
        S::Unhealthy => pb::ConnectorStatus::Unhealthy,
        S::Unavailable => pb::ConnectorStatus::Unavailable,
        S::Unknown => pb::ConnectorStatus::Unknown,
    }
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

fn point_to_pb(p: &StoredPoint) -> pb::HistoryPoint {
    let StoredPoint {
        at,
        status,
        reported,
        latency,
        failure,
        message,
    } = p;
    pb::HistoryPoint {
        at: Some(prost_types::Timestamp::from(*at)),
        status: status_to_pb(*status).into(),
        reported: status_to_pb(*reported).into(),
        latency_us: micros(*latency),
        failure: failure.clone().unwrap_or_default(),
        message: message.clone(),
    }
}

pub(crate) fn rollup_to_pb(r: &Rollup) -> pb::HistoryRollup {
    let Rollup {
        start,
        step: _,
        counts,
        p50,
        p95,
        max,
    } = r;
    let sandport_history::StatusCounts {
        healthy,
        degraded,
        unhealthy,
        unavailable,
        unknown,
    } = *counts;
    pb::HistoryRollup {
        start: Some(prost_types::Timestamp::from(*start)),
        healthy,
        degraded,
        unhealthy,
        unavailable,
        unknown,
        p50_us: p50.map(micros),
        p95_us: p95.map(micros),
        max_us: max.map(micros),
    }
}

pub fn uptime_to_pb(u: &Uptime) -> pb::Uptime {
    pb::Uptime {
        day: u.day,
        week: u.week,
        month: u.month,
    }
}

/// Every connector's uptime (`id`'s alone, if given), or none when there
/// is no history (the connectors are listed all the same). In a cluster,
/// the counts every live member recorded, added up.
pub async fn uptimes(service: &Service, id: Option<&str>) -> HashMap<String, Uptime> {
    let ask = RecordedAsk {
        id: id.map(str::to_string),
        days: 0,
        latency: false,
        incidents: 0,
        now: SystemTime::now(),
    };
    match service.recorded(ask).await {
        Ok(recorded) => recorded
            .tallies
            .into_iter()
            // No check in the month (whose window holds the day's): no
            // figure, as for a connector never checked.
            .filter(|(_, t)| t.month.total > 0)
            .map(|(id, t)| (id, t.uptime()))
            .collect(),
        Err(e) => {
            tracing::debug!("connectors listed without uptime: {e}");
            HashMap::new()
        }
    }
}
