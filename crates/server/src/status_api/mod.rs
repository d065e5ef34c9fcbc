//! What the checks found, over REST: a connector's history and uptime, the
//! summary the status page reads, its live feed (server-sent events), and
//! a badge.
//!
//! | route | what |
//! |---|---|
//! | `GET /api/v1/connectors/{id}/history?since=&until=&step=&limit=` | raw checks, or rollups by `step` |
//! | `GET /api/v1/connectors/{id}/uptime` | uptime over 24 h / 7 d / 30 d, status since, 90 daily figures |
//! | `GET /api/v1/connectors/{id}/badge.svg[?uptime=day\|week\|month]` | a status or uptime badge |
//! | `GET /api/v1/status` | every connector with its uptime, bars and latency line; recent incidents |
//! | `GET /api/v1/status/events` | status changes as server-sent events |
//!
//! History queries read SQLite, so they run on a blocking thread.

mod events;
pub mod query;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::Json;
use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value, json};

use sandport_core::service::{
    Found, HistoryQueryError, HistoryRange, HistoryUnavailable, Recorded, RecordedAsk, Service,
    latency_since,
};
use sandport_history::{Passed, Rollup, StoredPoint, Tallies, Uptime};

use crate::rest_error::{ApiError, ApiResult};
use query::{Step, parse_step, parse_time};

/// Days in the status page's uptime bar.
pub const DAILY_BARS: u32 = 90;
/// Incidents the status page lists.
const INCIDENTS: usize = 50;

/// The routes, for the REST router to merge (its state is the service).
pub fn router() -> Router<Arc<Service>> {
    Router::new()
        .route("/api/v1/connectors/{id}/history", get(history))
        .route("/api/v1/connectors/{id}/uptime", get(uptime))
        .route("/api/v1/connectors/{id}/badge.svg", get(badge))
        .route("/api/v1/status", get(summary))
        .route("/api/v1/status/events", get(events::stream))
}

fn time(t: SystemTime) -> Value {
    json!(humantime::format_rfc3339_millis(t).to_string())
}

fn opt_time(t: Option<SystemTime>) -> Value {
    t.map_or(Value::Null, time)
}

fn ms(d: Option<Duration>) -> Value {
    d.map_or(Value::Null, |d| json!(d.as_secs_f64() * 1000.0))
}

/// No history to ask: turned off is the operator's choice and said as it
/// is; a file that failed is in the log (with its path), not in the answer.
fn unavailable(e: HistoryUnavailable) -> ApiError {
    let message = match e {
        HistoryUnavailable::Disabled => e.to_string(),
        other => crate::internal::report(&other),
    };
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "history_unavailable",
        message,
    )
}

fn query_failed(e: HistoryQueryError) -> ApiError {
    match e {
        HistoryQueryError::NotFound(_) => {
            ApiError::new(StatusCode::NOT_FOUND, "not_found", e.to_string())
        }
        HistoryQueryError::BadRange(message) => bad_query(message),
        HistoryQueryError::Unavailable(e) => unavailable(e),
        other => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "history_unavailable",
            crate::internal::report(&other),
        ),
    }
}

/// What the cluster recorded (this node alone outside one).
async fn recorded(service: &Service, ask: RecordedAsk) -> ApiResult<Recorded> {
    service.recorded(ask).await.map_err(query_failed)
}

/// `id`'s tallies, with `days` daily ones.
async fn tallies_of(service: &Service, id: &str, days: u32) -> ApiResult<Tallies> {
    let ask = RecordedAsk {
        id: Some(id.to_string()),
        days,
        latency: false,
        incidents: 0,
        now: SystemTime::now(),
    };
    let mut found = recorded(service, ask).await?;
    Ok(found.tallies.remove(id).unwrap_or_else(|| Tallies {
        daily: vec![Passed::default(); days as usize],
        ..Tallies::default()
    }))
}

#[derive(Deserialize)]
struct HistoryQuery {
    since: Option<String>,
    until: Option<String>,
    step: Option<String>,
    limit: Option<usize>,
}

async fn history(
    State(service): State<Arc<Service>>,
    Path(id): Path<String>,
    query: Result<Query<HistoryQuery>, QueryRejection>,
) -> ApiResult<Json<Value>> {
    let Query(query) = query?;
    let HistoryQuery {
        since,
        until,
        step,
        limit,
    } = query;
    let now = SystemTime::now();
    let at = |text: Option<String>| {
        text.map(|t| parse_time(&t, now))
            .transpose()
            .map_err(bad_query)
    };
    let range = HistoryRange {
        since: at(since)?,
        until: at(until)?,
        step: match parse_step(step.as_deref()).map_err(bad_query)? {
            Step::Raw => None,
            Step::Every(step) => Some(step),
        },
        limit,
    };
    let answer = service.history_of(&id, range).await.map_err(query_failed)?;
    let points: Vec<Value> = match &answer.found {
        Found::Points(points) => points.iter().map(point_json).collect(),
        Found::Rollups(rollups) => rollups.iter().map(rollup_json).collect(),
    };
    Ok(Json(json!({
        "id": id,
        "since": time(answer.since),
        "until": time(answer.until),
        "step": step.unwrap_or_else(|| "raw".into()),
        "points": points,
    })))
}

fn bad_query(message: String) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_query", message)
}

fn point_json(p: &StoredPoint) -> Value {
    let StoredPoint {
        at,
        status,
        reported,
        latency,
        failure,
        message,
    } = p;
    json!({
        "at": time(*at),
        "status": status.as_str(),
        "reported": reported.as_str(),
        "latency_ms": ms(Some(*latency)),
        "failure": failure,
        "message": message,
    })
}

fn rollup_json(r: &Rollup) -> Value {
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
    } = counts;
    json!({
        "start": time(*start),
        "count": counts.total(),
        "healthy": healthy,
        "degraded": degraded,
        "unhealthy": unhealthy,
        "unavailable": unavailable,
        "unknown": unknown,
        "uptime": percent(counts.passing(), counts.total()),
        "latency_ms": {"p50": ms(*p50), "p95": ms(*p95), "max": ms(*max)},
    })
}

fn percent(passing: u64, total: u64) -> Value {
    if total == 0 {
        Value::Null
    } else {
        json!(passing as f64 * 100.0 / total as f64)
    }
}

fn uptime_json(u: &Uptime) -> Value {
    json!({"day": u.day, "week": u.week, "month": u.month})
}

async fn uptime(
    State(service): State<Arc<Service>>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let health = service.health(&id)?;
    let tallies = tallies_of(&service, &id, DAILY_BARS).await?;
    Ok(Json(json!({
        "id": id,
        "status": health.status.as_str(),
        "since": opt_time(health.since),
        "uptime": uptime_json(&tallies.uptime()),
        "daily": tallies.daily(),
    })))
}

#[derive(Deserialize)]
struct BadgeQuery {
    uptime: Option<String>,
    label: Option<String>,
}

async fn badge(
    State(service): State<Arc<Service>>,
    Path(id): Path<String>,
    query: Result<Query<BadgeQuery>, QueryRejection>,
) -> ApiResult<Response> {
    let Query(query) = query?;
    let health = service.health(&id)?;
    let figure = match query.uptime.as_deref() {
        None => None,
        Some(window @ ("day" | "week" | "month")) => {
            let u = tallies_of(&service, &id, 0).await?.uptime();
            Some(match window {
                "day" => u.day,
                "week" => u.week,
                _ => u.month,
            })
        }
        Some(other) => {
            return Err(bad_query(format!(
                "uptime `{other}` is not one of: day, week, month"
            )));
        }
    };
    let label = query.label.unwrap_or_else(|| id.clone());
    let svg = crate::status_page::badge(&label, health.status.as_str(), figure.flatten());
    Ok(crate::status_page::badge_response(svg))
}

/// The status page's data: one answer for every connector.
async fn summary(State(service): State<Arc<Service>>) -> ApiResult<Json<Value>> {
    let now = SystemTime::now();
    let list = service.list(None, false);
    let ask = RecordedAsk {
        id: None,
        days: DAILY_BARS,
        latency: true,
        incidents: INCIDENTS,
        now,
    };
    let figures = match service.recorded(ask).await {
        Ok(found) => Some(Figures::new(found, now)),
        Err(HistoryQueryError::Unavailable(e)) => {
            tracing::debug!("status page without history: {e}");
            None
        }
        Err(e) => {
            tracing::warn!("the status page's history query failed: {e}");
            None
        }
    };
    let names: HashMap<&str, &str> = list
        .iter()
        .map(|c| (c.id.as_str(), c.name.as_str()))
        .collect();
    let connectors: Vec<Value> = list
        .iter()
        .map(|c| {
            let h = &c.health;
            let uptime = figures.as_ref().and_then(|f| f.uptime.get(&c.id));
            let daily = figures.as_ref().and_then(|f| f.daily.get(&c.id));
            let line = figures.as_ref().and_then(|f| f.latency.get(&c.id));
            let line = line.cloned().unwrap_or_else(|| vec![None; 24]);
            json!({
                "id": c.id,
                "name": c.name,
                "type": c.connector_type.as_str(),
                "tags": c.tags,
                "enabled": c.enabled,
                "status": h.status.as_str(),
                "since": opt_time(h.since),
                "message": h.message,
                "latency_ms": ms(h.latency),
                "checked_at": opt_time(h.checked_at),
                "uptime": uptime.map_or(json!({"day": null, "week": null, "month": null}), uptime_json),
                "daily": daily.cloned().unwrap_or_default(),
                "latency_24h": line,
            })
        })
        .collect();
    let incidents: Vec<Value> = figures
        .as_ref()
        .map(|f| {
            f.incidents
                .iter()
                .map(|i| {
                    json!({
                        "connector": i.connector,
                        "name": names.get(i.connector.as_str()).copied().unwrap_or(i.connector.as_str()),
                        "status": i.status.as_str(),
                        "previous_status": i.previous.as_str(),
                        "message": i.message,
                        "at": time(i.at),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(Json(json!({
        "generated_at": time(now),
        "history": figures.is_some(),
        "connectors": connectors,
        "incidents": incidents,
    })))
}

/// What the status page shows of the history, for every connector.
struct Figures {
    uptime: HashMap<String, Uptime>,
    daily: HashMap<String, Vec<Option<f64>>>,
    latency: HashMap<String, Vec<Option<f64>>>,
    incidents: Vec<sandport_history::Incident>,
}

impl Figures {
    fn new(found: Recorded, now: SystemTime) -> Figures {
        let Recorded {
            tallies,
            latency,
            incidents,
        } = found;
        let since = latency_since(now);
        let latency = latency
            .into_iter()
            .map(|(id, rollups)| {
                let mut line = vec![None; 24];
                for r in rollups {
                    let Ok(offset) = r.start.duration_since(since) else {
                        continue;
                    };
                    let slot = (offset.as_secs() / 3600) as usize;
                    if let Some(cell) = line.get_mut(slot) {
                        *cell = r.p50.map(|d| d.as_secs_f64() * 1000.0);
                    }
                }
                (id, line)
            })
            .collect();
        Figures {
            uptime: tallies
                .iter()
                .map(|(id, t)| (id.clone(), t.uptime()))
                .collect(),
            daily: tallies
                .iter()
                .map(|(id, t)| (id.clone(), t.daily()))
                .collect(),
            latency,
            incidents,
        }
    }
}
