//! [`ConnectorService`] over gRPC. Every call carries a deadline; the channel
//! reconnects by itself, and read-only calls are retried with backoff while
//! the service is unreachable. Over `https://` the channel uses TLS (the
//! system's roots, or the CA given); with a token, every call carries it as
//! `authorization: Bearer`.

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use futures::StreamExt;
use std::path::PathBuf;

use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use tonic::{Code, Request, Status};

use super::{ClientError, ConnectorService, EventStream, Found, HistoryRange, ProviderAnswer};
use sandport_config::{self as config, ComponentPaths, ConnectorConfig, ConnectorType, Secrets};
use sandport_core::health::HealthSnapshot;
use sandport_core::registry::{CheckAll, ConnectorInfo};
use sandport_core::uploads::StoredComponent;
use sandport_server::grpc::pb;
use sandport_server::grpc::pb::connectors_service_client::ConnectorsServiceClient;
use sandport_server::grpc::{convert, history};

/// Deadline of one call (checks of all connectors get more).
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
const CHECK_ALL_TIMEOUT: Duration = Duration::from_secs(60);
/// Attempts of a read-only call while the service is unavailable.
const ATTEMPTS: u32 = 4;

/// The largest CA file read.
const MAX_CA_FILE: u64 = 1 << 20;

/// How the client proves itself and checks the service.
#[derive(Clone, Default)]
pub struct RemoteOptions {
    /// Sent as `authorization: Bearer <token>`.
    pub token: Option<String>,
    /// The CA (PEM) that signed the service's certificate, for `https://`
    /// addresses; without it the system's roots.
    pub ca_cert: Option<PathBuf>,
}

impl std::fmt::Debug for RemoteOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteOptions")
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("ca_cert", &self.ca_cert)
            .finish()
    }
}

#[derive(Clone)]
pub struct RemoteService {
    client: ConnectorsServiceClient<Channel>,
    authorization: Option<MetadataValue<Ascii>>,
}

impl From<Status> for ClientError {
    fn from(status: Status) -> Self {
        let message = status.message().to_string();
        match status.code() {
            Code::NotFound => ClientError::NotFound(message),
            Code::AlreadyExists => ClientError::AlreadyExists(message),
            Code::InvalidArgument => ClientError::InvalidArgument(message),
            Code::Aborted => ClientError::Conflict(message),
            Code::Unavailable => ClientError::Unavailable(message),
            Code::DeadlineExceeded => ClientError::DeadlineExceeded(message),
            Code::ResourceExhausted => ClientError::ResourceExhausted(message),
            Code::Unauthenticated => ClientError::Unauthenticated(message),
            Code::PermissionDenied => ClientError::PermissionDenied(message),
            _ => ClientError::Internal(format!("{:?}: {message}", status.code())),
        }
    }
}

/// Retries `call` with backoff (100ms, 200ms, 400ms) while it fails with
/// UNAVAILABLE. Only for calls that change nothing.
async fn retrying<T, F, Fut>(mut call: F) -> Result<T, Status>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Status>>,
{
    let mut delay = Duration::from_millis(100);
    let mut attempt = 1;
    loop {
        match call().await {
            Err(status) if status.code() == Code::Unavailable && attempt < ATTEMPTS => {
                tokio::time::sleep(delay).await;
                delay *= 2;
                attempt += 1;
            }
            other => return other,
        }
    }
}

impl RemoteService {
    /// A client for `addr` (`host:port`, `http://host:port` or
    /// `https://host:port`); connects on first use and reconnects as needed.
    pub fn connect_lazy(addr: &str, options: &RemoteOptions) -> Result<Self, String> {
        let uri = if addr.contains("://") {
            addr.to_string()
        } else {
            format!("http://{addr}")
        };
        let mut endpoint = Endpoint::from_shared(uri.clone())
            .map_err(|e| format!("not a service address: {e}"))?
            .connect_timeout(Duration::from_secs(5))
            .tcp_nodelay(true);
        if uri.starts_with("https://") {
            let tls = match &options.ca_cert {
                Some(path) => {
                    let pem = config::read_bounded(path, MAX_CA_FILE)
                        .map_err(|e| format!("cannot read the CA {}: {e}", path.display()))?;
                    ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem))
                }
                None => ClientTlsConfig::new().with_native_roots(),
            };
            endpoint = endpoint
                .tls_config(tls)
                .map_err(|e| format!("cannot set up TLS: {e}"))?;
        } else if options.ca_cert.is_some() {
            return Err("a CA certificate was given for a plain http address; write the address as https://HOST:PORT".into());
        }
        let authorization = options
            .token
            .as_deref()
            .map(|token| {
                let mut value = MetadataValue::try_from(format!("Bearer {}", token.trim()))
                    .map_err(|_| "the token has characters a header cannot carry".to_string())?;
                value.set_sensitive(true);
                Ok::<_, String>(value)
            })
            .transpose()?;
        Ok(RemoteService {
            client: ConnectorsServiceClient::new(endpoint.connect_lazy()),
            authorization,
        })
    }

    /// A call's request: its deadline, if any, and the token.
    fn request<T>(&self, message: T, timeout: Option<Duration>) -> Request<T> {
        let mut request = Request::new(message);
        if let Some(timeout) = timeout {
            request.set_timeout(timeout);
        }
        if let Some(value) = &self.authorization {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        request
    }

    fn client(&self) -> ConnectorsServiceClient<Channel> {
        self.client.clone()
    }

    fn parse(config: pb::ConnectorConfig) -> Result<ConnectorConfig, ClientError> {
        let value = convert::config_from_pb(config).map_err(ClientError::Internal)?;
        // As the service reads what API callers send, else (a path from the
        // operator's file) as it is.
        let catalog = sandport_builtins::catalog();
        config::parse_entry_value(&value, ComponentPaths::ComponentsDir, catalog)
            .or_else(|_| {
                config::parse_entry_value(&value, ComponentPaths::Anywhere(Path::new("")), catalog)
            })
            .map_err(|problems| {
                ClientError::Internal(format!(
                    "the service sent a config this client cannot read: {}",
                    problems
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("; ")
                ))
            })
    }
}

fn connector_of(info: Option<pb::ConnectorInfo>) -> Result<ConnectorInfo, ClientError> {
    info.map(convert::info_from_pb)
        .ok_or_else(|| ClientError::Internal("the answer has no connector".into()))
}

#[async_trait::async_trait]
impl ConnectorService for RemoteService {
    async fn list(
        &self,
        connector_type: Option<ConnectorType>,
        enabled_only: bool,
    ) -> Result<Vec<ConnectorInfo>, ClientError> {
        let message = pb::ListConnectorsRequest {
            r#type: connector_type
                .map(|t| convert::type_to_pb(t) as i32)
                .unwrap_or(0),
            enabled_only,
        };
        let response = retrying(|| {
            let mut client = self.client();
            async move {
                client
                    .list_connectors(self.request(message, Some(CALL_TIMEOUT)))
                    .await
            }
        })
        .await?;
        Ok(response
            .into_inner()
            .connectors
            .into_iter()
            .map(convert::info_from_pb)
            .collect())
    }

    async fn get(&self, id: &str) -> Result<(ConnectorInfo, ConnectorConfig), ClientError> {
        let message = pb::GetConnectorRequest { id: id.to_string() };
        let response = retrying(|| {
            let mut client = self.client();
            let message = message.clone();
            async move {
                client
                    .get_connector(self.request(message, Some(CALL_TIMEOUT)))
                    .await
            }
        })
        .await?
        .into_inner();
        let info = connector_of(response.connector)?;
        let config = response
            .config
            .ok_or_else(|| ClientError::Internal("the answer has no config".into()))?;
        Ok((info, Self::parse(config)?))
    }

    async fn register(&self, config: ConnectorConfig) -> Result<ConnectorInfo, ClientError> {
        let message = pb::RegisterConnectorRequest {
            config: Some(convert::config_to_pb(&config, Secrets::Keep)),
        };
        let response = self
            .client()
            .register_connector(self.request(message, Some(CALL_TIMEOUT)))
            .await?;
        connector_of(response.into_inner().connector)
    }

    async fn update(&self, config: ConnectorConfig) -> Result<ConnectorInfo, ClientError> {
        let message = pb::UpdateConnectorRequest {
            config: Some(convert::config_to_pb(&config, Secrets::Keep)),
        };
        let response = self
            .client()
            .update_connector(self.request(message, Some(CALL_TIMEOUT)))
            .await?;
        connector_of(response.into_inner().connector)
    }

    async fn remove(&self, id: &str) -> Result<(), ClientError> {
        let message = pb::RemoveConnectorRequest { id: id.to_string() };
        self.client()
            .remove_connector(self.request(message, Some(CALL_TIMEOUT)))
            .await?;
        Ok(())
    }

    async fn health_check(&self, id: &str) -> Result<HealthSnapshot, ClientError> {
        let message = pb::HealthCheckRequest {
            id: id.to_string(),
            cached: false,
        };
        let response = retrying(|| {
            let mut client = self.client();
            let message = message.clone();
            async move {
                client
                    .health_check(self.request(message, Some(CALL_TIMEOUT)))
                    .await
            }
        })
        .await?;
        Ok(convert::check_from_pb(response.into_inner()).1)
    }

    async fn health_check_all(
        &self,
        connector_type: Option<ConnectorType>,
    ) -> Result<CheckAll, ClientError> {
        let message = pb::HealthCheckAllRequest {
            r#type: connector_type
                .map(|t| convert::type_to_pb(t) as i32)
                .unwrap_or(0),
        };
        let response = retrying(|| {
            let mut client = self.client();
            async move {
                client
                    .health_check_all(self.request(message, Some(CHECK_ALL_TIMEOUT)))
                    .await
            }
        })
        .await?
        .into_inner();
        Ok(CheckAll {
            results: response
                .results
                .into_iter()
                .map(convert::check_from_pb)
                .collect(),
            unfinished: response.unfinished,
        })
    }

    async fn watch(
        &self,
        ids: Vec<String>,
        connector_type: Option<ConnectorType>,
    ) -> Result<EventStream, ClientError> {
        let message = pb::WatchHealthRequest {
            ids,
            r#type: connector_type
                .map(|t| convert::type_to_pb(t) as i32)
                .unwrap_or(0),
        };
        let stream = self
            .client()
            .watch_health(self.request(message, None))
            .await?
            .into_inner();
        Ok(stream
            .map(|item| item.map(convert::event_from_pb).map_err(ClientError::from))
            .boxed())
    }

    async fn upload_component(&self, bytes: Vec<u8>) -> Result<StoredComponent, ClientError> {
        // Each message stays well under the service's message size limit.
        const CHUNK: usize = 1 << 20;
        let chunks: Vec<pb::UploadComponentRequest> = bytes
            .chunks(CHUNK)
            .map(|chunk| pb::UploadComponentRequest {
                chunk: chunk.to_vec(),
            })
            .collect();
        let request = self.request(futures::stream::iter(chunks), Some(UPLOAD_TIMEOUT));
        let response = self.client().upload_component(request).await?;
        stored_of(response.into_inner().component)
    }

    async fn list_components(&self) -> Result<Vec<(StoredComponent, Vec<String>)>, ClientError> {
        let response = self
            .client()
            .list_components(self.request(pb::ListComponentsRequest {}, Some(CALL_TIMEOUT)))
            .await?;
        response
            .into_inner()
            .components
            .into_iter()
            .map(|c| {
                let used_by = c.used_by.clone();
                stored_of(Some(c)).map(|stored| (stored, used_by))
            })
            .collect()
    }

    async fn delete_component(&self, digest: &str) -> Result<(), ClientError> {
        let message = pb::DeleteComponentRequest {
            component: digest.to_string(),
        };
        self.client()
            .delete_component(self.request(message, Some(CALL_TIMEOUT)))
            .await?;
        Ok(())
    }

    async fn history(&self, id: &str, range: HistoryRange) -> Result<Found, ClientError> {
        let message = history::request_to_pb(id, &range);
        let response = self
            .client()
            .get_history(self.request(message, Some(CALL_TIMEOUT)))
            .await?
            .into_inner();
        Ok(history::answer_from_pb(response, range.step))
    }

    async fn test_alert_route(&self, route: &str) -> Result<Vec<ProviderAnswer>, ClientError> {
        let message = pb::TestAlertRouteRequest {
            route: route.to_string(),
        };
        let response = self
            .client()
            .test_alert_route(self.request(message, Some(CALL_TIMEOUT)))
            .await?
            .into_inner();
        Ok(response
            .results
            .into_iter()
            .map(|r| {
                let pb::ProviderResult {
                    provider,
                    status,
                    error,
                } = r;
                let answer = match u16::try_from(status) {
                    Ok(status) if status != 0 => Ok(status),
                    _ => Err(error),
                };
                (provider, answer)
            })
            .collect())
    }
}

/// How long an upload may take: a large component on a slow link.
const UPLOAD_TIMEOUT: Duration = Duration::from_secs(300);

fn stored_of(component: Option<pb::StoredComponent>) -> Result<StoredComponent, ClientError> {
    let pb::StoredComponent {
        component,
        size,
        used_by: _,
    } = component.ok_or_else(|| ClientError::Internal("the answer has no component".into()))?;
    let digest = config::parse_digest(&component).map_err(|e| {
        ClientError::Internal(format!(
            "the service named a component this client cannot read: {e}"
        ))
    })?;
    Ok(StoredComponent { digest, size })
}
