//! `GetHistory`, and the uptime figures `ListConnectors`/`GetConnector`
//! carry: the history store over gRPC.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use tonic::Status;

use sandport_core::service::{HistoryUnavailable, Service};
use sandport_history::{History, HistoryError, Rollup, StoredPoint, Uptime};

use super::pb;

/// The most raw points one answer carries.
const MAX_POINTS: u32 = 10_000;
const HOUR: u64 = 3600;

fn unavailable(e: HistoryUnavailable) -> Status {
    match e {
        HistoryUnavailable::Disabled => Status::unavailable(e.to_string()),
        other => Status::unavailable(crate::internal::report(&other)),
    }
}

fn failed(e: HistoryError) -> Status {
    match e {
        HistoryError::BadRange(message) => Status::invalid_argument(message),
        other => Status::unavailable(crate::internal::report(&other)),
    }
}

async fn ask<T: Send + 'static>(
    service: &Service,
    query: impl FnOnce(&History) -> Result<T, HistoryError> + Send + 'static,
) -> Result<T, Status> {
    let history = service.history().map_err(unavailable)?.clone();
    match tokio::task::spawn_blocking(move || query(&history)).await {
        Ok(answer) => answer.map_err(failed),
        Err(e) => Err(Status::internal(crate::internal::report(&e))),
    }
}

pub async fn get_history(
    service: &Service,
    request: pb::GetHistoryRequest,
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
    service.health(&id).map_err(super::status)?;
    let step = match u64::try_from(step_seconds) {
        Ok(0) => None,
        Ok(secs) if secs % HOUR == 0 => Some(Duration::from_secs(secs)),
        _ => {
            return Err(Status::invalid_argument(format!(
                "step_seconds: {step_seconds} is not 0 (raw points) or a whole number of hours"
            )));
        }
    };
    let until = match until {
        Some(t) => time(t, "until")?,
        None => SystemTime::now(),
    };
    let since = match since {
        Some(t) => time(t, "since")?,
        None => until
            .checked_sub(step.map_or(Duration::from_secs(HOUR), |s| s * 24))
            .unwrap_or(SystemTime::UNIX_EPOCH),
    };
    if since > until {
        return Err(Status::invalid_argument("since: after `until`"));
    }
    let key = id.clone();
    let (points, rollups) = match step {
        None => {
            let limit = if limit == 0 {
                1000
            } else {
                limit.min(MAX_POINTS)
            } as usize;
            let points = ask(service, move |h| h.points(&key, since, until, limit)).await?;
            (points.iter().map(point_to_pb).collect(), Vec::new())
        }
        Some(step) => {
            let rollups = ask(service, move |h| h.rollups(&key, since, until, step)).await?;
            (Vec::new(), rollups.iter().map(rollup_to_pb).collect())
        }
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

fn rollup_to_pb(r: &Rollup) -> pb::HistoryRollup {
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

/// Every connector's uptime, or none when there is no history (the
/// connectors are listed all the same).
pub async fn uptimes(service: &Service) -> HashMap<String, Uptime> {
    let now = SystemTime::now();
    match ask(service, move |h| h.uptime_all(now)).await {
        Ok(all) => all,
        Err(e) => {
            tracing::debug!("connectors listed without uptime: {}", e.message());
            HashMap::new()
        }
    }
}
