//! Jaeger: healthy when the query service (default port 16686) answers 2xx
//! on `/` or the configured path.

use sandport_sdk::{Config, Connector, ConnectorType, Error, HealthReport, export_connector, http};

struct Jaeger {
    request: http::Request,
}

impl Connector for Jaeger {
    const NAME: &'static str = "Jaeger";
    const TYPE: ConnectorType = ConnectorType::Observability;
    const DESCRIPTION: &'static str = "Jaeger distributed tracing query service";

    fn new(config: &Config) -> Result<Self, String> {
        Ok(Jaeger {
            request: config.health_request("/"),
        })
    }

    fn health_check(&mut self) -> Result<HealthReport, Error> {
        Ok(self.request.send()?.expect_success()?.into())
    }
}

export_connector!(Jaeger);
