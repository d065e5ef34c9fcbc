//! Alertmanager: healthy when `GET /-/healthy` (or the configured path)
//! answers 2xx and `GET /-/ready` answers 2xx; healthy but not ready is
//! degraded, anything but 2xx from `/-/healthy` is unhealthy. `ready` is
//! reported in the details.

use sandport_sdk::{Config, Connector, ConnectorType, Error, HealthReport, export_connector, http};

struct Alertmanager {
    healthy: http::Request,
    ready: http::Request,
}

impl Connector for Alertmanager {
    const NAME: &'static str = "Alertmanager";
    const TYPE: ConnectorType = ConnectorType::Observability;
    const DESCRIPTION: &'static str = "Prometheus Alertmanager";

    fn new(config: &Config) -> Result<Self, String> {
        Ok(Alertmanager {
            healthy: config.health_request("/-/healthy"),
            ready: http::Request::get(config.url("/-/ready")),
        })
    }

    fn health_check(&mut self) -> Result<HealthReport, Error> {
        let healthy = self.healthy.send()?.expect_success()?;
        Ok(match self.ready.send() {
            Ok(ready) if ready.is_success() => HealthReport::from(healthy).detail("ready", "ready"),
            Ok(ready) => HealthReport::degraded(format!(
                "healthy but not ready: {}",
                ready.describe_status()
            ))
            .detail("ready", format!("not ready ({})", ready.status)),
            Err(error) => HealthReport::degraded(format!("healthy but not ready: {error}"))
                .detail("ready", format!("unknown ({})", error.message())),
        })
    }
}

export_connector!(Alertmanager);
