//! Prometheus: healthy when `GET /-/healthy` (or the configured path) answers
//! 2xx; `/-/ready` is reported in the details.

use sandport_sdk::{Config, Connector, ConnectorType, Error, HealthReport, export_connector, http};

struct Prometheus {
    healthy: http::Request,
    ready: http::Request,
}

impl Connector for Prometheus {
    const NAME: &'static str = "Prometheus";
    const TYPE: ConnectorType = ConnectorType::Observability;
    const DESCRIPTION: &'static str = "Prometheus monitoring server";

    fn new(config: &Config) -> Result<Self, String> {
        Ok(Prometheus {
            healthy: config.health_request("/-/healthy"),
            ready: http::Request::get(config.url("/-/ready")),
        })
    }

    fn health_check(&mut self) -> Result<HealthReport, Error> {
        let report = HealthReport::from(self.healthy.send()?.expect_success()?);
        let ready = match self.ready.send() {
            Ok(response) if response.is_success() => "ready".to_string(),
            Ok(response) => format!("not ready ({})", response.status),
            Err(error) => format!("unknown ({})", error.message()),
        };
        Ok(report.detail("ready", ready))
    }
}

export_connector!(Prometheus);
