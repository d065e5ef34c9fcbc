//! The gRPC API (`proto/connectors.proto`): thin handlers that translate
//! messages, call the [`Service`], and map its errors to status codes.
//! The admin calls write their audit line here, where the connector id is
//! known; who may call what is decided before, in [`crate::guard`].

pub mod convert;

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use tokio::time::Instant;
use tokio_stream::wrappers::BroadcastStream;
use tonic::{Request, Response, Status};

use sandport_core::service::Service;

use crate::audit;
use crate::auth::Caller;

pub(crate) mod errors;
pub mod history;
/// The generated protobuf and gRPC code.
pub mod pb;

pub(crate) use errors::status;

use pb::connectors_service_server::ConnectorsService;
pub use pb::connectors_service_server::ConnectorsServiceServer;

/// Marks a live `HealthCheck` another node of a cluster forwarded (its
/// value: that node's id). Such a call is checked here, whoever owns the
/// connector by this node's view, so that a check is never forwarded
/// twice.
pub const FORWARDED_BY: &str = "x-sandport-forwarded-by";

/// Time kept back from a client's deadline to send the answer.
const DEADLINE_MARGIN: Duration = Duration::from_millis(50);

pub struct GrpcApi {
    service: Arc<Service>,
}

impl GrpcApi {
    pub fn new(service: Arc<Service>) -> Self {
        GrpcApi { service }
    }

    pub fn into_server(self) -> ConnectorsServiceServer<Self> {
        ConnectorsServiceServer::new(self)
    }

    fn parse_config(
        &self,
        config: Option<pb::ConnectorConfig>,
    ) -> Result<sandport_config::ConnectorConfig, Status> {
        let config = config.ok_or_else(|| Status::invalid_argument("config: missing"))?;
        let value = convert::config_from_pb(config).map_err(Status::invalid_argument)?;
        self.service.parse_entry(&value).map_err(status)
    }
}

/// The caller the guard put in the request (anonymous when the API runs
/// without tokens, or is served without the guard).
pub(crate) fn caller_of<T>(request: &Request<T>) -> std::sync::Arc<str> {
    request
        .extensions()
        .get::<Caller>()
        .map_or_else(|| Caller::anonymous().name, |c| c.name.clone())
}

/// Writes the audit line of an admin call.
pub(crate) fn audited<T>(
    who: &str,
    method: &str,
    id: &str,
    result: Result<T, Status>,
) -> Result<T, Status> {
    audit::record(
        who,
        method,
        if id.is_empty() { "-" } else { id },
        &audit::grpc_outcome(&result),
    );
    result
}

fn required_id(id: &str) -> Result<&str, Status> {
    if id.is_empty() {
        Err(Status::invalid_argument("id: missing"))
    } else {
        Ok(id)
    }
}

/// The client's deadline from the `grpc-timeout` header (e.g. `500m`).
fn client_deadline<T>(request: &Request<T>) -> Option<Instant> {
    let text = request.metadata().get("grpc-timeout")?.to_str().ok()?;
    let (digits, unit) = text.split_at(text.len().checked_sub(1)?);
    let n: u64 = digits.parse().ok()?;
    let timeout = match unit {
        "H" => Duration::from_secs(n.saturating_mul(3600)),
        "M" => Duration::from_secs(n.saturating_mul(60)),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    };
    Some(Instant::now() + timeout.saturating_sub(DEADLINE_MARGIN))
}

type EventStream = Pin<Box<dyn Stream<Item = Result<pb::HealthEvent, Status>> + Send>>;

#[tonic::async_trait]
impl ConnectorsService for GrpcApi {
    async fn list_connectors(
        &self,
        request: Request<pb::ListConnectorsRequest>,
    ) -> Result<Response<pb::ListConnectorsResponse>, Status> {
        let request = request.into_inner();
        let filter = convert::type_from_pb(request.r#type).map_err(Status::invalid_argument)?;
        let connectors = self
            .service
            .list(filter, request.enabled_only)
            .iter()
            .map(convert::info_to_pb)
            .collect::<Vec<_>>();
        let uptimes = history::uptimes(&self.service, None).await;
        let connectors = connectors
            .into_iter()
            .map(|mut c| {
                c.uptime = uptimes.get(&c.id).map(history::uptime_to_pb);
                c
            })
            .collect();
        Ok(Response::new(pb::ListConnectorsResponse { connectors }))
    }

    async fn get_connector(
        &self,
        request: Request<pb::GetConnectorRequest>,
    ) -> Result<Response<pb::GetConnectorResponse>, Status> {
        let request = request.into_inner();
        let (info, config) = self
            .service
            .get(required_id(&request.id)?)
            .map_err(status)?;
        let mut connector = convert::info_to_pb(&info);
        connector.uptime = history::uptimes(&self.service, Some(&info.id))
            .await
            .get(&info.id)
            .map(history::uptime_to_pb);
        Ok(Response::new(pb::GetConnectorResponse {
            connector: Some(connector),
            config: Some(convert::config_to_pb(
                &config,
                sandport_config::Secrets::Redact,
            )),
        }))
    }

    async fn register_connector(
        &self,
        request: Request<pb::RegisterConnectorRequest>,
    ) -> Result<Response<pb::RegisterConnectorResponse>, Status> {
        let who = caller_of(&request);
        let config = request.into_inner().config;
        let id = config.as_ref().map(|c| c.id.clone()).unwrap_or_default();
        let result = async {
            let config = self.parse_config(config)?;
            let info = self.service.register(config).await.map_err(status)?;
            Ok(Response::new(pb::RegisterConnectorResponse {
                connector: Some(convert::info_to_pb(&info)),
            }))
        }
        .await;
        audited(&who, "RegisterConnector", &id, result)
    }

    async fn update_connector(
        &self,
        request: Request<pb::UpdateConnectorRequest>,
    ) -> Result<Response<pb::UpdateConnectorResponse>, Status> {
        let who = caller_of(&request);
        let config = request.into_inner().config;
        let id = config.as_ref().map(|c| c.id.clone()).unwrap_or_default();
        let result = async {
            let config = self.parse_config(config)?;
            let info = self.service.update(config).await.map_err(status)?;
            Ok(Response::new(pb::UpdateConnectorResponse {
                connector: Some(convert::info_to_pb(&info)),
            }))
        }
        .await;
        audited(&who, "UpdateConnector", &id, result)
    }

    async fn remove_connector(
        &self,
        request: Request<pb::RemoveConnectorRequest>,
    ) -> Result<Response<pb::RemoveConnectorResponse>, Status> {
        let who = caller_of(&request);
        let request = request.into_inner();
        let result = async {
            self.service
                .remove(required_id(&request.id)?)
                .await
                .map_err(status)?;
            Ok(Response::new(pb::RemoveConnectorResponse {}))
        }
        .await;
        audited(&who, "RemoveConnector", &request.id, result)
    }

    async fn health_check(
        &self,
        request: Request<pb::HealthCheckRequest>,
    ) -> Result<Response<pb::HealthCheckResponse>, Status> {
        let forwarded = request.metadata().contains_key(FORWARDED_BY);
        let request = request.into_inner();
        let id = required_id(&request.id)?;
        let snapshot = if request.cached {
            self.service.health(id).map_err(status)?
        } else if forwarded {
            self.service.check_here(id).await.map_err(status)?
        } else {
            self.service.check(id).await.map_err(status)?
        };
        Ok(Response::new(convert::check_to_pb(
            id.to_string(),
            snapshot,
        )))
    }

    async fn health_check_all(
        &self,
        request: Request<pb::HealthCheckAllRequest>,
    ) -> Result<Response<pb::HealthCheckAllResponse>, Status> {
        let deadline = client_deadline(&request);
        let forwarded = request.metadata().contains_key(FORWARDED_BY);
        let filter =
            convert::type_from_pb(request.into_inner().r#type).map_err(Status::invalid_argument)?;
        // A round another node forwarded covers what this node owns; the
        // asking node merges the members' rounds.
        let all = if forwarded {
            self.service.check_all_owned(filter, deadline).await
        } else {
            self.service.check_all(filter, deadline).await
        };
        Ok(Response::new(pb::HealthCheckAllResponse {
            results: all
                .results
                .into_iter()
                .map(|(id, h)| convert::check_to_pb(id, h))
                .collect(),
            unfinished: all.unfinished,
        }))
    }

    async fn upload_component(
        &self,
        request: Request<tonic::Streaming<pb::UploadComponentRequest>>,
    ) -> Result<Response<pb::UploadComponentResponse>, Status> {
        let who = caller_of(&request);
        let result = crate::components::upload(&self.service, request).await;
        audited(&who, "UploadComponent", "-", result)
    }

    async fn list_components(
        &self,
        _request: Request<pb::ListComponentsRequest>,
    ) -> Result<Response<pb::ListComponentsResponse>, Status> {
        crate::components::list_pb(&self.service)
            .await
            .map(Response::new)
    }

    async fn delete_component(
        &self,
        request: Request<pb::DeleteComponentRequest>,
    ) -> Result<Response<pb::DeleteComponentResponse>, Status> {
        let who = caller_of(&request);
        let component = request.into_inner().component;
        let result = self
            .service
            .remove_component(&component)
            .await
            .map(|()| Response::new(pb::DeleteComponentResponse {}))
            .map_err(status);
        audited(&who, "DeleteComponent", &component, result)
    }

    type WatchHealthStream = EventStream;

    async fn watch_health(
        &self,
        request: Request<pb::WatchHealthRequest>,
    ) -> Result<Response<EventStream>, Status> {
        let request = request.into_inner();
        let filter = convert::type_from_pb(request.r#type).map_err(Status::invalid_argument)?;
        let ids = request.ids;
        let events = BroadcastStream::new(self.service.subscribe())
            .filter_map(move |event| {
                let keep = match event {
                    Ok(e)
                        if (ids.is_empty() || ids.contains(&e.id))
                            && filter.is_none_or(|t| t == e.connector_type) =>
                    {
                        Some(Ok(convert::event_to_pb(&e)))
                    }
                    Ok(_) => None,
                    Err(lagged) => {
                        tracing::warn!("a health watcher fell behind: {lagged}");
                        None
                    }
                };
                std::future::ready(keep)
            })
            .take_until(self.service.shutdown_started());
        Ok(Response::new(Box::pin(events)))
    }

    async fn test_alert_route(
        &self,
        request: Request<pb::TestAlertRouteRequest>,
    ) -> Result<Response<pb::TestAlertRouteResponse>, Status> {
        let who = caller_of(&request);
        let route = request.into_inner().route;
        let result = crate::alerts_api::test_pb(&self.service, &route)
            .await
            .map(Response::new);
        audited(&who, "TestAlertRoute", &route, result)
    }

    async fn get_history(
        &self,
        request: Request<pb::GetHistoryRequest>,
    ) -> Result<Response<pb::GetHistoryResponse>, Status> {
        let forwarded = request.metadata().contains_key(FORWARDED_BY);
        history::get_history(&self.service, request.into_inner(), forwarded)
            .await
            .map(Response::new)
    }
}
