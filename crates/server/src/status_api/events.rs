//! `GET /api/v1/status/events`: the health feed `WatchHealth` streams, as
//! server-sent events for the status page. A reader that falls behind is
//! told to fetch the whole summary again (`resync`) rather than being
//! handed a gap; every stream ends when the service begins to shut down.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::{Stream, StreamExt};
use serde_json::json;
use tokio_stream::wrappers::BroadcastStream;

use sandport_core::registry::HealthEvent;
use sandport_core::service::Service;

use crate::rest_error::{ApiError, ApiResult};

/// Comments that keep idle connections (and proxies) from timing out.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// Feeds open at once, all callers together: each holds a connection and a
/// place in the health broadcast.
pub const MAX_FEEDS: usize = 256;

static FEEDS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(MAX_FEEDS);

pub async fn stream(
    State(service): State<Arc<Service>>,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let Ok(place) = FEEDS.try_acquire() else {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "resource_exhausted",
            format!("{MAX_FEEDS} status feeds are open, the most the service keeps; close one"),
        ));
    };
    let events = BroadcastStream::new(service.subscribe())
        .map(move |event| {
            // Held for as long as the stream lives.
            let _place = &place;
            Ok(match event {
                Ok(event) => health_event(&event),
                Err(lagged) => {
                    tracing::debug!("a status page fell behind: {lagged}");
                    Event::default().event("resync").data("{}")
                }
            })
        })
        .take_until(service.shutdown_started());
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)))
}

fn health_event(e: &HealthEvent) -> Event {
    let HealthEvent {
        id,
        connector_type: _,
        status,
        previous,
        message,
        failure,
        checked_at,
    } = e;
    let at = humantime::format_rfc3339_millis(*checked_at).to_string();
    let data = json!({
        "id": id,
        "status": status.as_str(),
        "previous_status": previous.as_str(),
        "message": message,
        "failure": failure.as_ref().map(|f| f.as_str()),
        "checked_at": at,
        // Events are sent when the reported status changes.
        "since": at,
    });
    Event::default().event("health").data(data.to_string())
}
