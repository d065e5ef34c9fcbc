//! Alertmanager: healthy when `GET /-/healthy` (or the configured path)
//! answers 2xx and `GET /-/ready` answers 2xx; healthy but not ready is
//! degraded, anything but 2xx from `/-/healthy` is unhealthy. `ready` is
//! reported in the details.

use sandport_sdk::{Config, Connector, ConnectorType, Error, HealthReport, export_connector, http};

struct Alertmanager {
    healthy_url: String,
    ready_url: String,
}

impl Connector for Alertmanager {
    const NAME: &'static str = "Alertmanager";
    const TYPE: ConnectorType = ConnectorType::Observability;
    const DESCRIPTION: &'static str = "Prometheus Alertmanager";

    fn new(config: &Config) -> Result<Self, String> {
        Ok(Alertmanager {
            healthy_url: config.url(config.health_path_or("/-/healthy")),
            ready_url: config.url("/-/ready"),
        })
    }

    fn health_check(&mut self) -> Result<HealthReport, Error> {
        let healthy = http::get(&self.healthy_url)?.expect_success()?;
        Ok(match http::get(&self.ready_url) {
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
