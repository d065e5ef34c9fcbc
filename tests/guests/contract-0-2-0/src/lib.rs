//! A connector built against `sandport:connector@0.2.0` (its own copy of
//! that version's WIT, as a third party's component would be), with
//! wit-bindgen rather than the SDK, which follows the current contract. Its
//! check GETs the health path and is healthy on a 2xx, naming the status.

use std::cell::RefCell;

wit_bindgen::generate!({
    path: "wit",
    world: "connector",
});

use exports::sandport::connector::connector_api::{ConnectorConfig, Guest, HealthReport, Kind};
use sandport::connector::http_client::{self, Request};
use sandport::connector::types::HealthStatus;

thread_local! {
    static CONFIG: RefCell<Option<ConnectorConfig>> = const { RefCell::new(None) };
}

struct Contract020;

impl Guest for Contract020 {
    fn id() -> String {
        CONFIG.with_borrow(|c| c.as_ref().map(|c| c.id.clone()).unwrap_or_default())
    }

    fn name() -> String {
        "Contract 0.2.0".to_string()
    }

    fn connector_type() -> Kind {
        Kind::Custom
    }

    fn description() -> String {
        "Built against sandport:connector@0.2.0".to_string()
    }

    fn initialize(config: ConnectorConfig) -> Result<(), String> {
        CONFIG.with_borrow_mut(|c| *c = Some(config));
        Ok(())
    }

    fn health_check() -> Result<HealthReport, String> {
        let url = Self::get_endpoint();
        let request = Request {
            method: "GET".to_string(),
            url: url.clone(),
            headers: Vec::new(),
            body: None,
            timeout_ms: None,
        };
        let (status, _response) = http_client::send(&request).map_err(|e| format!("{e:?}"))?;
        Ok(HealthReport {
            status: if (200..300).contains(&status) {
                HealthStatus::Healthy
            } else {
                HealthStatus::Unhealthy
            },
            message: format!("GET {url} returned {status}"),
            details: Vec::new(),
        })
    }

    fn get_endpoint() -> String {
        CONFIG.with_borrow(|c| {
            c.as_ref()
                .map(|c| {
                    let path = if c.health_check.path.is_empty() {
                        "/"
                    } else {
                        c.health_check.path.as_str()
                    };
                    format!("{}://{}:{}{}{path}", c.scheme, c.host, c.port, c.base_path)
                })
                .unwrap_or_default()
        })
    }

    fn get_config() -> ConnectorConfig {
        CONFIG
            .with_borrow(|c| c.clone())
            .expect("initialised first")
    }

    fn close() {}
}

export!(Contract020);
