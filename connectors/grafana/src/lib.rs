//! Grafana: `GET /api/health` must answer 2xx with JSON; `"database": "ok"`
//! is healthy, any other database state is degraded. The version and
//! commit are reported in the details.

use sandport_sdk::{Config, Connector, ConnectorType, Error, HealthReport, export_connector, http};
use serde_json::Value;

struct Grafana {
    url: String,
    request: http::Request,
}

impl Connector for Grafana {
    const NAME: &'static str = "Grafana";
    const TYPE: ConnectorType = ConnectorType::Observability;
    const DESCRIPTION: &'static str = "Grafana dashboards";

    fn new(config: &Config) -> Result<Self, String> {
        let url = config.url(config.health_path_or("/api/health"));
        Ok(Grafana {
            request: http::Request::get(&url),
            url,
        })
    }

    fn health_check(&mut self) -> Result<HealthReport, Error> {
        let response = self.request.send()?.expect_success()?;
        let body: Value = serde_json::from_slice(response.body()).map_err(|e| {
            Error::new(format!(
                "GET {} returned a body that is not JSON: {e}",
                self.url
            ))
        })?;
        let text = |key: &str| body.get(key).and_then(Value::as_str).map(str::to_string);
        let database = text("database").ok_or_else(|| {
            Error::new(format!("GET {} returned no \"database\" field", self.url))
        })?;
        let report = if database == "ok" {
            HealthReport::healthy().message(response.describe_status())
        } else {
            HealthReport::degraded(format!("Grafana reports database: {database}"))
        };
        Ok(report
            .detail("database", database)
            .details_from(["version", "commit"].map(|key| (key, text(key)))))
    }
}

export_connector!(Grafana);
