//! Grafana Loki and Tempo (the built-in `tempo` is this component with
//! port 3200): healthy when `GET /ready` (or the configured path) answers
//! 2xx (both say `ready`); anything else is unhealthy, with the first line
//! of the answer in the message (e.g. `Ingester not ready: waiting for
//! 15s after being ready`). A longer answer (`Some services are not
//! Running: ...`) is reported whole in the `answer` detail.

use sandport_sdk::{Config, Connector, ConnectorType, Error, HealthReport, export_connector, http};

struct Loki {
    request: http::Request,
}

/// The non-empty lines of a text body, trimmed; none for an HTML page.
fn lines(body: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(body);
    let lines: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| l.chars().take(200).collect())
        .collect();
    if lines.first().is_some_and(|l| l.starts_with('<')) {
        Vec::new()
    } else {
        lines
    }
}

impl Connector for Loki {
    const NAME: &'static str = "Loki/Tempo";
    const TYPE: ConnectorType = ConnectorType::Observability;
    const DESCRIPTION: &'static str = "Grafana Loki or Tempo: the /ready endpoint";

    fn new(config: &Config) -> Result<Self, String> {
        Ok(Loki {
            request: config.health_request("/ready"),
        })
    }

    fn health_check(&mut self) -> Result<HealthReport, Error> {
        let response = self.request.send()?;
        if response.is_success() {
            return Ok(response.into());
        }
        let lines = lines(response.body());
        Ok(match lines.first() {
            None => HealthReport::unhealthy(response.describe_status()),
            Some(first) => {
                let report =
                    HealthReport::unhealthy(format!("{}: {first}", response.describe_status()));
                if lines.len() > 1 {
                    let whole: Vec<&str> = lines.iter().take(20).map(String::as_str).collect();
                    report.detail("answer", whole.join("; "))
                } else {
                    report
                }
            }
        })
    }
}

export_connector!(Loki);
