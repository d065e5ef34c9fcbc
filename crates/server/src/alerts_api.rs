//! The alerts over both APIs: `POST /api/v1/alerts/test/{route}` and gRPC
//! `TestAlertRoute` (admin: each sends a message to a team) send a marked
//! test message to every provider of a route now; `GET /api/v1/alerts/status`
//! counts what was sent, retried and given up.

use std::sync::Arc;

use axum::Extension;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::{Value, json};

use sandport_core::service::{AlertTestError, Service};

use crate::auth::Caller;
use crate::grpc::pb;
use crate::rest_error::{ApiError, ApiResult, audited};

pub(crate) async fn test(
    State(service): State<Arc<Service>>,
    caller: Option<Extension<Caller>>,
    Path(route): Path<String>,
) -> ApiResult<Json<Value>> {
    let result = match service.test_alert_route(&route).await {
        Ok(results) => {
            let results: Vec<Value> = results
                .into_iter()
                .map(|(provider, answer)| match answer {
                    Ok(status) => json!({"provider": provider, "status": status}),
                    Err(error) => json!({"provider": provider, "error": error}),
                })
                .collect();
            Ok(Json(json!({"route": route, "results": results})))
        }
        Err(e @ AlertTestError::UnknownRoute(_)) => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            e.to_string(),
        )),
        Err(e) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "alerts_unavailable",
            e.to_string(),
        )),
    };
    audited(caller, "POST /api/v1/alerts/test/{route}", &route, result)
}

pub(crate) async fn status(State(service): State<Arc<Service>>) -> Json<Value> {
    let Some(alerts) = service.alerts() else {
        return Json(json!({"enabled": false}));
    };
    let sandport_alerts::AlertStats {
        pending,
        sent,
        retries,
        failed,
        dropped,
        open_incidents,
    } = alerts.stats();
    Json(json!({
        "enabled": true,
        "pending": pending,
        "sent": sent,
        "retries": retries,
        "failed": failed,
        "dropped": dropped,
        "open_incidents": open_incidents,
    }))
}

/// gRPC `TestAlertRoute`.
pub(crate) async fn test_pb(
    service: &Service,
    route: &str,
) -> Result<pb::TestAlertRouteResponse, tonic::Status> {
    match service.test_alert_route(route).await {
        Ok(results) => Ok(pb::TestAlertRouteResponse {
            results: results
                .into_iter()
                .map(|(provider, answer)| match answer {
                    Ok(status) => pb::ProviderResult {
                        provider,
                        status: u32::from(status),
                        error: String::new(),
                    },
                    Err(error) => pb::ProviderResult {
                        provider,
                        status: 0,
                        error,
                    },
                })
                .collect(),
        }),
        Err(e @ AlertTestError::UnknownRoute(_)) => Err(tonic::Status::not_found(e.to_string())),
        Err(e) => Err(tonic::Status::unavailable(e.to_string())),
    }
}
