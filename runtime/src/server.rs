//! Runs the gRPC and REST APIs over one [`Service`] until a shutdown signal,
//! then drains: readiness and gRPC health turn NOT_SERVING, listeners stop
//! accepting, in-flight calls get [`DRAIN_GRACE`] to finish, and every
//! connector is closed.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::grpc::{ConnectorsServiceServer, GrpcApi, pb};
use crate::service::Service;

/// How long NOT_SERVING is announced before the listeners close.
pub const ANNOUNCE_SHUTDOWN: Duration = Duration::from_millis(300);

/// How long in-flight calls may take once shutdown has begun.
pub const DRAIN_GRACE: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    #[error("cannot set up gRPC reflection: {0}")]
    Reflection(String),
    #[error("the gRPC server failed: {0}")]
    Grpc(String),
    #[error("the HTTP server failed: {0}")]
    Http(String),
}

/// Serves until `shutdown` resolves, then drains and closes the connectors.
pub async fn serve(
    service: Arc<Service>,
    grpc: TcpListener,
    http: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_serving::<ConnectorsServiceServer<GrpcApi>>()
        .await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|e| ServeError::Reflection(e.to_string()))?;

    let stop = service.shutdown_started();
    let grpc_stop = service.shutdown_started();
    let grpc_server = tonic::transport::Server::builder()
        .add_service(health_service)
        .add_service(reflection)
        .add_service(GrpcApi::new(service.clone()).into_server())
        // Small answers must not wait for Nagle's algorithm.
        .serve_with_incoming_shutdown(
            tonic::transport::server::TcpIncoming::from(grpc).with_nodelay(Some(true)),
            grpc_stop,
        );
    let http = axum::serve::ListenerExt::tap_io(http, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let http_server = axum::serve(http, crate::rest::router(service.clone()))
        .with_graceful_shutdown(stop)
        .into_future();

    let grpc_task = tokio::spawn(grpc_server);
    let http_task = tokio::spawn(http_server);
    let aborts = [grpc_task.abort_handle(), http_task.abort_handle()];

    shutdown.await;
    tracing::info!("shutting down: draining in-flight calls");
    health
        .set_not_serving::<ConnectorsServiceServer<GrpcApi>>()
        .await;
    // Give health watchers (and load balancers polling) a moment to see
    // NOT_SERVING before the listeners close.
    tokio::time::sleep(ANNOUNCE_SHUTDOWN).await;
    service.begin_shutdown();

    let drained = tokio::time::timeout(DRAIN_GRACE, async {
        let grpc = grpc_task.await;
        let http = http_task.await;
        (grpc, http)
    })
    .await;
    service.shutdown().await;
    match drained {
        Err(_) => {
            tracing::warn!("in-flight calls did not finish within {DRAIN_GRACE:?}; stopped them");
            aborts.iter().for_each(tokio::task::AbortHandle::abort);
            Ok(())
        }
        Ok((grpc, http)) => {
            grpc.map_err(|e| ServeError::Grpc(e.to_string()))?
                .map_err(|e| ServeError::Grpc(e.to_string()))?;
            http.map_err(|e| ServeError::Http(e.to_string()))?
                .map_err(|e| ServeError::Http(e.to_string()))?;
            Ok(())
        }
    }
}
