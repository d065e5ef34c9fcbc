//! The REST API (axum), the same operations as gRPC:
//!
//! | route | what |
//! |---|---|
//! | `GET /api/v1/connectors[?type=&enabled_only=]` | list, with cached status |
//! | `POST /api/v1/connectors` | register (body: an entry as in `connectors.yaml`, as JSON) |
//! | `GET /api/v1/connectors/{id}` | info + config, secrets redacted |
//! | `PUT /api/v1/connectors/{id}` | replace |
//! | `DELETE /api/v1/connectors/{id}` | remove |
//! | `GET /api/v1/connectors/{id}/health` | live check (`?cached=true`: the last result) |
//! | `GET /api/v1/health` | every connector's cached status |
//! | `PUT /api/v1/components` | upload a component (body: its bytes); entries name it `sha256:<digest>` |
//! | `GET /api/v1/components` | uploaded components and the connectors naming each |
//! | `DELETE /api/v1/components/{digest}` | delete an unused uploaded component |
//! | `GET /healthz`, `GET /readyz` | liveness, readiness (503 while shutting down) |
//! | `GET /api/v1/alerts/status` | alerts sent, pending, retried, given up |
//! | `POST /api/v1/alerts/test/{route}` | send a test message to each provider of a route |
//! | `GET /` | the status page (see `status_page`); its data and history routes are in `status_api` |
//!
//! Errors are JSON: `{"error": {"code": "...", "message": "...", "problems": [...]}}`.
//!
//! [`guarded_router`] puts the gate of [`crate::guard`] (tokens, roles, load
//! shedding, the per-call timeout) and the body cap in front; admin calls
//! are written to the audit log by their handlers, which know the id.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::Extension;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use sandport_config::{self as config, ConnectorType, Secrets};
use sandport_core::health::{HealthSnapshot, format_latency};
use sandport_core::registry::ConnectorInfo;
use sandport_core::service::Service;

use crate::auth::Caller;
use crate::guard::{Guard, rest_guard};
use crate::rest_error::{ApiError, ApiResult, audited};

/// [`router`] behind the guard, with the request body capped at
/// `max_body_size`. A route that takes uploads (a component) gets its own
/// cap by adding `.layer(DefaultBodyLimit::max(limits.max_upload_size))` to
/// that route alone, which overrides this one; and, being a mutating call,
/// needs `admin` like every verb but `GET`.
pub fn guarded_router(
    service: Arc<Service>,
    guard: Arc<Guard>,
    metrics: Arc<crate::metrics::Metrics>,
) -> Router {
    let limits = *guard.limits();
    let api = metrics.api();
    router(service)
        .merge(crate::metrics::router(metrics))
        .route_layer(axum::middleware::from_fn(crate::metrics::tag_route))
        .layer(DefaultBodyLimit::max(limits.max_body_size))
        .layer(axum::middleware::from_fn_with_state(guard, rest_guard))
        .layer(crate::metrics::ApiMetricsLayer::new(
            api,
            crate::metrics::Api::Rest,
        ))
}

/// The REST router over `service`.
pub fn router(service: Arc<Service>) -> Router {
    Router::new()
        .route("/api/v1/connectors", get(list).post(register))
        .route(
            "/api/v1/connectors/{id}",
            get(get_one).put(update).delete(remove),
        )
        .route("/api/v1/connectors/{id}/health", get(check))
        .route("/api/v1/health", get(health_all))
        .route(
            "/api/v1/components",
            get(crate::components::list).put(crate::components::put),
        )
        .route(
            "/api/v1/components/{digest}",
            axum::routing::delete(crate::components::delete),
        )
        .route("/api/v1/config/status", get(crate::config_api::status))
        .route(
            "/api/v1/config/reload",
            axum::routing::post(crate::config_api::reload),
        )
        .merge(crate::status_api::router())
        .route("/api/v1/alerts/status", get(crate::alerts_api::status))
        .route(
            "/api/v1/alerts/test/{route}",
            axum::routing::post(crate::alerts_api::test),
        )
        .merge(crate::status_page::router())
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(ready))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "method not allowed on this route",
            )
        })
        .with_state(service)
}

fn time(t: Option<SystemTime>) -> Value {
    t.map(|t| Value::String(humantime::format_rfc3339_millis(t).to_string()))
        .unwrap_or(Value::Null)
}

fn latency(d: Option<Duration>) -> (Value, Value) {
    match d {
        Some(d) => (json!(format_latency(d)), json!(d.as_secs_f64() * 1000.0)),
        None => (Value::Null, Value::Null),
    }
}

/// A health snapshot as JSON.
pub fn health_json(id: &str, h: &HealthSnapshot) -> Value {
    let HealthSnapshot {
        status,
        since,
        message,
        details,
        failure,
        latency: took,
        checked_at,
        consecutive_failures,
        consecutive_successes,
    } = h;
    let (latency, latency_ms) = latency(*took);
    let details: serde_json::Map<String, Value> =
        details.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
    json!({
        "id": id,
        "status": status.as_str(),
        "since": time(*since),
        "message": message,
        "latency": latency,
        "latency_ms": latency_ms,
        "checked_at": time(*checked_at),
        "consecutive_failures": consecutive_failures,
        "consecutive_successes": consecutive_successes,
        "failure": failure.as_ref().map(|f| f.as_str()),
        "details": details,
    })
}

/// A connector's info as JSON.
pub fn info_json(info: &ConnectorInfo) -> Value {
    json!({
        "id": info.id,
        "name": info.name,
        "type": info.connector_type.as_str(),
        "description": info.description,
        "endpoint": info.endpoint,
        "enabled": info.enabled,
        "mode": info.mode.as_str(),
        "metadata": info.metadata,
        "tags": info.tags,
        "component_digest": info.component_digest,
        "health": health_json(&info.id, &info.health),
    })
}

#[derive(Deserialize)]
struct ListQuery {
    #[serde(rename = "type")]
    connector_type: Option<String>,
    #[serde(default)]
    enabled_only: bool,
}

fn parse_type(text: Option<&str>) -> ApiResult<Option<ConnectorType>> {
    match text {
        None | Some("") => Ok(None),
        Some(t) => ConnectorType::parse(t).map(Some).ok_or_else(|| {
            let names: Vec<&str> = ConnectorType::ALL.iter().map(|t| t.as_str()).collect();
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_type",
                format!("type `{t}` is not one of: {}", names.join(", ")),
            )
        }),
    }
}

async fn list(
    State(service): State<Arc<Service>>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> ApiResult<Json<Value>> {
    let Query(query) = query?;
    let filter = parse_type(query.connector_type.as_deref())?;
    let items: Vec<Value> = service
        .list(filter, query.enabled_only)
        .iter()
        .map(info_json)
        .collect();
    Ok(Json(Value::Array(items)))
}

fn entry_from_json(body: Value) -> ApiResult<serde_norway::Value> {
    serde_norway::to_value(body).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_json",
            e.to_string(),
        )
    })
}

async fn register(
    State(service): State<Arc<Service>>,
    caller: Option<Extension<Caller>>,
    body: Result<Json<Value>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let id = body
        .as_ref()
        .ok()
        .and_then(|Json(b)| b.get("id")?.as_str().map(str::to_string))
        .unwrap_or_else(|| "-".into());
    let result = async {
        let Json(body) = body?;
        let config = service.parse_entry(&entry_from_json(body)?)?;
        let info = service.register(config).await?;
        Ok((StatusCode::CREATED, Json(info_json(&info))))
    }
    .await;
    audited(caller, "POST /api/v1/connectors", &id, result)
}

async fn get_one(
    State(service): State<Arc<Service>>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let (info, config) = service.get(&id)?;
    let config =
        serde_json::to_value(config::to_value(&config, Secrets::Redact)).unwrap_or(Value::Null);
    Ok(Json(
        json!({"connector": info_json(&info), "config": config}),
    ))
}

async fn update(
    State(service): State<Arc<Service>>,
    caller: Option<Extension<Caller>>,
    Path(id): Path<String>,
    body: Result<Json<Value>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    let result = update_inner(&service, &id, body).await;
    audited(caller, "PUT /api/v1/connectors/{id}", &id, result)
}

async fn update_inner(
    service: &Arc<Service>,
    id: &str,
    body: Result<Json<Value>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    let Json(mut body) = body?;
    let Some(object) = body.as_object_mut() else {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_config",
            "the body must be a JSON object",
        ));
    };
    match object.get("id") {
        None => {
            object.insert("id".into(), json!(id));
        }
        Some(Value::String(body_id)) if *body_id == id => {}
        Some(other) => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_config",
                format!("id: the body says {other} but the URL says \"{id}\""),
            ));
        }
    }
    let config = service.parse_entry(&entry_from_json(body)?)?;
    let info = service.update(config).await?;
    Ok(Json(info_json(&info)))
}

async fn remove(
    State(service): State<Arc<Service>>,
    caller: Option<Extension<Caller>>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let result = service
        .remove(&id)
        .await
        .map(|()| StatusCode::NO_CONTENT)
        .map_err(ApiError::from);
    audited(caller, "DELETE /api/v1/connectors/{id}", &id, result)
}

#[derive(Deserialize)]
struct CheckQuery {
    /// The last result, without checking now.
    #[serde(default)]
    cached: bool,
}

async fn check(
    State(service): State<Arc<Service>>,
    Path(id): Path<String>,
    query: Result<Query<CheckQuery>, QueryRejection>,
) -> ApiResult<Json<Value>> {
    let Query(query) = query?;
    let snapshot = if query.cached {
        service.health(&id)?
    } else {
        service.check(&id).await?
    };
    Ok(Json(health_json(&id, &snapshot)))
}

async fn health_all(State(service): State<Arc<Service>>) -> Json<Value> {
    let items: Vec<Value> = service
        .list(None, false)
        .iter()
        .map(|info| health_json(&info.id, &info.health))
        .collect();
    Json(Value::Array(items))
}

async fn ready(State(service): State<Arc<Service>>) -> Response {
    if service.is_shutting_down() {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "shutting down"})),
        )
            .into_response()
    } else {
        Json(json!({"status": "ready"})).into_response()
    }
}
