//! The control plane's view of the Connectors Service: one trait,
//! [`ConnectorService`], with an in-process implementation
//! ([`LocalService`]) and a gRPC one ([`RemoteService`]).
//! [`from_env`] picks remote when `CONNECTORS_SERVICE_ADDR` is set.

mod local;
mod remote;

use futures::stream::BoxStream;

pub use local::LocalService;
pub use remote::{RemoteOptions, RemoteService};

use sandport_config::{ComponentRef, ConnectorConfig, ConnectorType};
use sandport_core::health::HealthSnapshot;
use sandport_core::registry::{CheckAll, ConnectorInfo, HealthEvent};
use sandport_core::service::{AlertTestError, HistoryQueryError, ServiceError, ServiceOptions};
pub use sandport_core::service::{Found, HistoryRange};
use sandport_core::uploads::{StoredComponent, UploadError};

/// The variable naming a remote service, e.g. `http://127.0.0.1:50051`.
pub const ADDR_VAR: &str = "CONNECTORS_SERVICE_ADDR";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    Conflict(String),
    #[error("the service is unavailable: {0}")]
    Unavailable(String),
    #[error("the deadline passed: {0}")]
    DeadlineExceeded(String),
    #[error("{0}")]
    ResourceExhausted(String),
    #[error(
        "the service did not accept the credentials: {0} (give a token with --token or SANDPORT_TOKEN)"
    )]
    Unauthenticated(String),
    #[error("the service refused the call: {0}")]
    PermissionDenied(String),
    #[error("{0}")]
    Internal(String),
}

impl From<ServiceError> for ClientError {
    fn from(error: ServiceError) -> Self {
        let message = error.to_string();
        match error {
            ServiceError::NotFound(_) => ClientError::NotFound(message),
            ServiceError::AlreadyExists(_) => ClientError::AlreadyExists(message),
            ServiceError::Invalid(_) | ServiceError::Rejected(_) => {
                ClientError::InvalidArgument(message)
            }
            ServiceError::Conflict(_) => ClientError::Conflict(message),
            ServiceError::ShuttingDown | ServiceError::Unavailable(_) => {
                ClientError::Unavailable(message)
            }
            ServiceError::ResourceExhausted(_) => ClientError::ResourceExhausted(message),
            ServiceError::Upload(error) => match error {
                UploadError::TooLarge { .. } | UploadError::NotAComponent(_) => {
                    ClientError::InvalidArgument(message)
                }
                UploadError::Full { .. } => ClientError::ResourceExhausted(message),
                UploadError::NotFound(_) => ClientError::NotFound(message),
                UploadError::InUse { .. } => ClientError::Conflict(message),
                _ => ClientError::Internal(message),
            },
            _ => ClientError::Internal(message),
        }
    }
}

impl From<AlertTestError> for ClientError {
    fn from(error: AlertTestError) -> Self {
        let message = error.to_string();
        match error {
            AlertTestError::UnknownRoute(_) => ClientError::NotFound(message),
            _ => ClientError::Unavailable(message),
        }
    }
}

impl From<HistoryQueryError> for ClientError {
    fn from(error: HistoryQueryError) -> Self {
        let message = error.to_string();
        match error {
            HistoryQueryError::NotFound(_) => ClientError::NotFound(message),
            HistoryQueryError::BadRange(_) => ClientError::InvalidArgument(message),
            HistoryQueryError::Unavailable(_) => ClientError::Unavailable(message),
            _ => ClientError::Internal(message),
        }
    }
}

pub type EventStream = BoxStream<'static, Result<HealthEvent, ClientError>>;

/// What a control plane does with the Connectors Service.
#[async_trait::async_trait]
pub trait ConnectorService: Send + Sync {
    async fn list(
        &self,
        connector_type: Option<ConnectorType>,
        enabled_only: bool,
    ) -> Result<Vec<ConnectorInfo>, ClientError>;
    /// Info and config (secrets redacted).
    async fn get(&self, id: &str) -> Result<(ConnectorInfo, ConnectorConfig), ClientError>;
    async fn register(&self, config: ConnectorConfig) -> Result<ConnectorInfo, ClientError>;
    async fn update(&self, config: ConnectorConfig) -> Result<ConnectorInfo, ClientError>;
    async fn remove(&self, id: &str) -> Result<(), ClientError>;
    /// A live check.
    async fn health_check(&self, id: &str) -> Result<HealthSnapshot, ClientError>;
    /// Live checks of all (of one type).
    async fn health_check_all(
        &self,
        connector_type: Option<ConnectorType>,
    ) -> Result<CheckAll, ClientError>;
    /// Status changes, as they happen.
    async fn watch(
        &self,
        ids: Vec<String>,
        connector_type: Option<ConnectorType>,
    ) -> Result<EventStream, ClientError>;
    /// Stores a component; entries name it `sha256:<digest>`.
    async fn upload_component(&self, bytes: Vec<u8>) -> Result<StoredComponent, ClientError>;
    /// The uploaded components, each with the ids of the connectors naming it.
    async fn list_components(&self) -> Result<Vec<(StoredComponent, Vec<String>)>, ClientError>;
    /// Deletes an uploaded component no connector names.
    async fn delete_component(&self, digest: &str) -> Result<(), ClientError>;
    /// One connector's recorded checks: raw points, or rollups by step.
    async fn history(&self, id: &str, range: HistoryRange) -> Result<Found, ClientError>;
    /// Sends a test message to each provider of an alert route: each
    /// provider's HTTP status, or why there was none.
    async fn test_alert_route(&self, route: &str) -> Result<Vec<ProviderAnswer>, ClientError>;
}

/// A provider and what it answered to a test message.
pub type ProviderAnswer = (String, Result<u16, String>);

/// The largest component file the client reads to upload it.
const MAX_UPLOAD_READ: u64 = 1 << 30;

/// An entry from the operator's own file may name a component file, but a
/// service runs only components it holds (a built-in, an uploaded one, a
/// file in its components directory): such a file is uploaded, and the
/// entry names it by digest from then on.
pub async fn upload_file_component(
    service: &dyn ConnectorService,
    mut config: ConnectorConfig,
) -> Result<ConnectorConfig, ClientError> {
    if let ComponentRef::Path(path) = &config.component {
        let file = path.clone();
        let bytes = tokio::task::spawn_blocking(move || {
            sandport_config::read_bounded(&file, MAX_UPLOAD_READ)
        })
        .await
        .map_err(|e| ClientError::Internal(e.to_string()))?
        .map_err(|e| {
            ClientError::InvalidArgument(format!("cannot read component {}: {e}", path.display()))
        })?;
        let stored = service.upload_component(bytes).await?;
        config.component = ComponentRef::Uploaded(stored.digest);
    }
    Ok(config)
}

/// Where the client got its service from.
pub enum Backend {
    Local(LocalService),
    Remote(RemoteService),
}

impl Backend {
    pub fn service(&self) -> &dyn ConnectorService {
        match self {
            Backend::Local(s) => s,
            Backend::Remote(s) => s,
        }
    }
}

/// Remote when `CONNECTORS_SERVICE_ADDR` is set (reached with `remote`'s
/// token and CA), else an in-process service started with `local`. Config
/// problems of the local service are returned for the caller to show.
pub async fn from_env(
    local: ServiceOptions,
    remote: &RemoteOptions,
) -> Result<(Backend, Vec<sandport_config::Problem>), FromEnvError> {
    match std::env::var(ADDR_VAR) {
        Ok(addr) if !addr.trim().is_empty() => {
            let remote = RemoteService::connect_lazy(addr.trim(), remote)
                .map_err(|e| FromEnvError::Remote(format!("{ADDR_VAR}={addr}: {e}")))?;
            Ok((Backend::Remote(remote), Vec::new()))
        }
        _ => {
            let (local, problems) = LocalService::start(local).await?;
            Ok((Backend::Local(local), problems))
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FromEnvError {
    #[error(transparent)]
    Local(#[from] sandport_core::service::StartError),
    #[error("{0}")]
    Remote(String),
}
