//! Uploaded components over both APIs: REST `PUT /api/v1/components` (the
//! body is the component), `GET /api/v1/components`, `DELETE
//! /api/v1/components/{digest}`, and gRPC `UploadComponent` (a client
//! stream of chunks), `ListComponents`, `DeleteComponent`.
//!
//! An upload takes one of the service's few upload slots before its first
//! byte is read, and is cut off at the service's component size limit, so
//! uploads cannot hold more than a few components in memory at once.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use futures::StreamExt;
use serde_json::{Value, json};
use tonic::{Request, Response, Status, Streaming};

use sandport_config::DIGEST_PREFIX;
use sandport_core::service::{Service, ServiceError};
use sandport_core::uploads::{StoredComponent, UploadError};

use crate::auth::Caller;
use crate::grpc::pb;
use crate::rest_error::ApiError;

fn too_large(limit: u64) -> ServiceError {
    UploadError::TooLarge { limit }.into()
}

fn stored_json(component: &StoredComponent, used_by: &[String]) -> Value {
    json!({
        "component": format!("{DIGEST_PREFIX}{}", component.digest),
        "size": component.size,
        "used_by": used_by,
    })
}

/// `PUT /api/v1/components`: the body is the component's bytes.
pub async fn put(
    State(service): State<Arc<Service>>,
    caller: Option<Extension<Caller>>,
    body: Body,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let result = receive(&service, body).await;
    crate::rest_error::audited(caller, "PUT /api/v1/components", "-", result)
}

async fn receive(
    service: &Arc<Service>,
    body: Body,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let (_slot, limit) = service.upload_slot()?;
    let mut bytes = Vec::new();
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "upload_interrupted",
                format!("the upload was interrupted: {e}"),
            )
        })?;
        if (bytes.len() + chunk.len()) as u64 > limit {
            return Err(too_large(limit).into());
        }
        bytes.extend_from_slice(&chunk);
    }
    let stored = service.upload_component(bytes).await?;
    Ok((StatusCode::CREATED, Json(stored_json(&stored, &[]))))
}

/// `GET /api/v1/components`.
pub async fn list(State(service): State<Arc<Service>>) -> Result<Json<Value>, ApiError> {
    let items = service
        .list_components()
        .await?
        .iter()
        .map(|(component, used_by)| stored_json(component, used_by))
        .collect();
    Ok(Json(Value::Array(items)))
}

/// `DELETE /api/v1/components/{digest}`.
pub async fn delete(
    State(service): State<Arc<Service>>,
    caller: Option<Extension<Caller>>,
    Path(digest): Path<String>,
) -> Result<StatusCode, ApiError> {
    let result = service
        .remove_component(&digest)
        .await
        .map(|()| StatusCode::NO_CONTENT)
        .map_err(ApiError::from);
    crate::rest_error::audited(caller, "DELETE /api/v1/components", &digest, result)
}

fn stored_pb(component: &StoredComponent, used_by: Vec<String>) -> pb::StoredComponent {
    let StoredComponent { digest, size } = component;
    pb::StoredComponent {
        component: format!("{DIGEST_PREFIX}{digest}"),
        size: *size,
        used_by,
    }
}

/// gRPC `UploadComponent`.
pub async fn upload(
    service: &Arc<Service>,
    request: Request<Streaming<pb::UploadComponentRequest>>,
) -> Result<Response<pb::UploadComponentResponse>, Status> {
    let (_slot, limit) = service.upload_slot().map_err(crate::grpc::errors::status)?;
    let mut stream = request.into_inner();
    let mut bytes = Vec::new();
    while let Some(message) = stream.message().await? {
        if (bytes.len() + message.chunk.len()) as u64 > limit {
            return Err(crate::grpc::errors::status(too_large(limit)));
        }
        bytes.extend_from_slice(&message.chunk);
    }
    let stored = service
        .upload_component(bytes)
        .await
        .map_err(crate::grpc::errors::status)?;
    Ok(Response::new(pb::UploadComponentResponse {
        component: Some(stored_pb(&stored, Vec::new())),
    }))
}

/// gRPC `ListComponents`.
pub async fn list_pb(service: &Arc<Service>) -> Result<pb::ListComponentsResponse, Status> {
    let components = service
        .list_components()
        .await
        .map_err(crate::grpc::errors::status)?
        .into_iter()
        .map(|(component, used_by)| stored_pb(&component, used_by))
        .collect();
    Ok(pb::ListComponentsResponse { components })
}
