//! [`ConnectorService`] over an in-process [`Service`].

use std::sync::Arc;

use futures::StreamExt;
use tokio_stream::wrappers::BroadcastStream;

use super::{ClientError, ConnectorService, EventStream, Found, HistoryRange, ProviderAnswer};
use sandport_config::{ConnectorConfig, ConnectorType, Problem};
use sandport_core::health::HealthSnapshot;
use sandport_core::registry::{CheckAll, ConnectorInfo};
use sandport_core::service::{Service, ServiceOptions, StartError};
use sandport_core::uploads::StoredComponent;

#[derive(Clone)]
pub struct LocalService {
    service: Arc<Service>,
}

impl LocalService {
    pub async fn start(options: ServiceOptions) -> Result<(Self, Vec<Problem>), StartError> {
        let (service, problems) = Service::start(options).await?;
        Ok((
            LocalService {
                service: Arc::new(service),
            },
            problems,
        ))
    }

    pub fn new(service: Arc<Service>) -> Self {
        LocalService { service }
    }

    /// Closes every connector.
    pub async fn shutdown(&self) {
        self.service.shutdown().await;
    }
}

#[async_trait::async_trait]
impl ConnectorService for LocalService {
    async fn list(
        &self,
        connector_type: Option<ConnectorType>,
        enabled_only: bool,
    ) -> Result<Vec<ConnectorInfo>, ClientError> {
        Ok(self.service.list(connector_type, enabled_only))
    }

    async fn get(&self, id: &str) -> Result<(ConnectorInfo, ConnectorConfig), ClientError> {
        Ok(self.service.get(id)?)
    }

    async fn register(&self, config: ConnectorConfig) -> Result<ConnectorInfo, ClientError> {
        Ok(self.service.register(config).await?)
    }

    async fn update(&self, config: ConnectorConfig) -> Result<ConnectorInfo, ClientError> {
        Ok(self.service.update(config).await?)
    }

    async fn remove(&self, id: &str) -> Result<(), ClientError> {
        Ok(self.service.remove(id).await?)
    }

    async fn health_check(&self, id: &str) -> Result<HealthSnapshot, ClientError> {
        Ok(self.service.check(id).await?)
    }

    async fn health_check_all(
        &self,
        connector_type: Option<ConnectorType>,
    ) -> Result<CheckAll, ClientError> {
        Ok(self.service.check_all(connector_type, None).await)
    }

    async fn watch(
        &self,
        ids: Vec<String>,
        connector_type: Option<ConnectorType>,
    ) -> Result<EventStream, ClientError> {
        let stream = BroadcastStream::new(self.service.subscribe()).filter_map(move |event| {
            let keep = match event {
                Ok(e)
                    if (ids.is_empty() || ids.contains(&e.id))
                        && connector_type.is_none_or(|t| t == e.connector_type) =>
                {
                    Some(Ok(e))
                }
                _ => None,
            };
            std::future::ready(keep)
        });
        Ok(stream.boxed())
    }

    async fn upload_component(&self, bytes: Vec<u8>) -> Result<StoredComponent, ClientError> {
        let _slot = self.service.upload_slot()?;
        Ok(self.service.upload_component(bytes).await?)
    }

    async fn list_components(&self) -> Result<Vec<(StoredComponent, Vec<String>)>, ClientError> {
        Ok(self.service.list_components().await?)
    }

    async fn delete_component(&self, digest: &str) -> Result<(), ClientError> {
        Ok(self.service.remove_component(digest).await?)
    }

    async fn history(&self, id: &str, range: HistoryRange) -> Result<Found, ClientError> {
        Ok(self.service.history_of(id, range).await?.found)
    }

    async fn test_alert_route(&self, route: &str) -> Result<Vec<ProviderAnswer>, ClientError> {
        Ok(self.service.test_alert_route(route).await?)
    }
}
