//! MinIO: healthy when `GET /minio/health/live` (or the configured path)
//! answers 2xx and `GET /minio/health/ready` answers 2xx. Live but not
//! ready is degraded (the node cannot serve, often for lack of quorum);
//! not live is unhealthy. Both probes are unauthenticated. `ready` is
//! reported in the details.

use sandport_sdk::{Config, Connector, ConnectorType, Error, HealthReport, export_connector, http};

struct Minio {
    live: http::Request,
    ready: http::Request,
}

/// MinIO's `X-Minio-Server-Status` (e.g. `offline`), for messages.
fn server_status(response: &http::Response) -> String {
    response
        .header("x-minio-server-status")
        .map(|s| format!(" (server status: {s})"))
        .unwrap_or_default()
}

impl Connector for Minio {
    const NAME: &'static str = "MinIO";
    const TYPE: ConnectorType = ConnectorType::Storage;
    const DESCRIPTION: &'static str = "MinIO object storage";

    fn new(config: &Config) -> Result<Self, String> {
        Ok(Minio {
            live: config.health_request("/minio/health/live"),
            ready: http::Request::get(config.url("/minio/health/ready")),
        })
    }

    fn health_check(&mut self) -> Result<HealthReport, Error> {
        let live = self.live.send()?;
        if !live.is_success() {
            return Err(Error::new(format!(
                "{}{}",
                live.describe_status(),
                server_status(&live)
            )));
        }
        Ok(match self.ready.send() {
            Ok(ready) if ready.is_success() => HealthReport::from(live).detail("ready", "ready"),
            Ok(ready) => HealthReport::degraded(format!(
                "live but not ready (no quorum?): {}{}",
                ready.describe_status(),
                server_status(&ready)
            ))
            .detail("ready", format!("not ready ({})", ready.status)),
            Err(error) => HealthReport::degraded(format!("live but not ready: {error}"))
                .detail("ready", format!("unknown ({})", error.message())),
        })
    }
}

export_connector!(Minio);
